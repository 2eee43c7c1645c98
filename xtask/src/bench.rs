//! `cargo xtask bench`: measures every mngr operation against the real Docker
//! daemon next to its floor, the same work done with plain `docker` and
//! `ssh`, and prints a table and writes the figures as JSON.
//!
//! Each figure is the median of N runs with min and max, all wall-clock time
//! of whole processes, as a user sees it. Everything the benchmark creates
//! carries the label `com.imbue.mngr.bench=<run id>` and is removed at the end,
//! also after a failure. It measures; it asserts no target.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{base_image, util};

const BENCH_LABEL: &str = "com.imbue.mngr.bench";

struct Options {
    runs: usize,
    json_path: Option<PathBuf>,
}

/// One row of the result table.
struct Measurement {
    operation: String,
    samples: Vec<Duration>,
    floor_name: Option<String>,
    floor: Vec<Duration>,
}

impl Measurement {
    fn new(operation: &str, samples: Vec<Duration>) -> Self {
        Self {
            operation: operation.to_string(),
            samples,
            floor_name: None,
            floor: Vec::new(),
        }
    }

    fn with_floor(mut self, floor_name: &str, floor: Vec<Duration>) -> Self {
        self.floor_name = Some(floor_name.to_string());
        self.floor = floor;
        self
    }
}

pub fn command(args: &[String]) -> Result<()> {
    let options = parse_options(args)?;

    util::header("[1/3] build mngr (release) and the base image");
    util::run(util::cargo().args(["build", "--release", "-p", "mngr-cli"]))?;
    base_image::ensure(false)?;
    let mngr = crate::test::target_directory()?
        .join("release")
        .join("mngr");

    let bench = Bench::new(mngr, options.runs)?;
    util::header(&format!("[2/3] measure ({} runs each)", options.runs));
    let result = bench.measure_all();
    util::header("[3/3] clean up");
    bench.clean_up();
    let (measurements, memory) = result?;

    print_table(&measurements, &memory);
    if let Some(path) = &options.json_path {
        fs::write(path, to_json(&measurements, &memory, options.runs)?)
            .with_context(|| format!("failed to write {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn parse_options(args: &[String]) -> Result<Options> {
    let mut options = Options {
        runs: 5,
        json_path: None,
    };
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--runs" => {
                let value = rest.next().context("--runs needs a number")?;
                options.runs = value
                    .parse()
                    .ok()
                    .filter(|runs| *runs >= 1)
                    .with_context(|| format!("--runs needs a positive number, found {value:?}"))?;
            }
            "--json" => {
                options.json_path =
                    Some(PathBuf::from(rest.next().context("--json needs a path")?));
            }
            "-h" | "--help" => {
                println!("usage: cargo xtask bench [--runs N] [--json PATH]");
                println!();
                println!(
                    "Measures mngr's operations against plain docker and ssh on the local daemon"
                );
                println!(
                    "with the image {}; N runs each (default 5).",
                    base_image::IMAGE
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}` for bench; see `cargo xtask bench --help`"),
        }
    }
    Ok(options)
}

struct Bench {
    mngr: PathBuf,
    runs: usize,
    run_id: String,
    scratch: util::TempDir,
}

/// Peak resident memory of the mngr process, in KiB.
struct Memory {
    create_kib: u64,
    list_50_kib: u64,
}

impl Bench {
    fn new(mngr: PathBuf, runs: usize) -> Result<Self> {
        let scratch = util::TempDir::new("mngr-bench")?;
        fs::create_dir_all(scratch.path().join("empty-project"))?;
        Ok(Self {
            mngr,
            runs,
            run_id: util::random_hex(8)?,
            scratch,
        })
    }

    fn home(&self) -> PathBuf {
        self.scratch.path().join("home")
    }

    fn label(&self) -> String {
        format!("{BENCH_LABEL}={}", self.run_id)
    }

    fn mngr_command(&self, args: &[&str], project: &Path) -> Command {
        let mut command = Command::new(&self.mngr);
        command
            .args(args)
            .current_dir(project)
            .env("MNGR_HOME", self.home())
            .env("MNGR_DOCKER_EXTRA_LABELS", self.label())
            .env_remove("MNGR_PROFILE")
            .stdin(Stdio::null());
        command
    }

    /// Runs mngr in the empty project and fails unless it succeeds.
    fn mngr(&self, args: &[&str]) -> Result<Output> {
        self.mngr_in(args, &self.scratch.path().join("empty-project"))
    }

    fn mngr_in(&self, args: &[&str], project: &Path) -> Result<Output> {
        let output = self.mngr_command(args, project).output()?;
        if !output.status.success() {
            bail!(
                "mngr {args:?} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(output)
    }

    fn timed_mngr(&self, args: &[&str]) -> Result<Duration> {
        let started = Instant::now();
        self.mngr(args)?;
        Ok(started.elapsed())
    }

    fn create_args<'a>(&self, name: &'a str, image: &'a str) -> Vec<&'a str> {
        vec!["create", name, "-b", image, "--idle-mode", "disabled"]
    }

    fn measure_all(&self) -> Result<(Vec<Measurement>, Memory)> {
        let image_arg = format!("--image={}", base_image::IMAGE);
        let mut measurements = Vec::new();

        println!("cold start");
        let version: Vec<Duration> = (0..self.runs * 4)
            .map(|_| time_command(Command::new(&self.mngr).arg("--version")))
            .collect::<Result<_>>()?;
        measurements.push(Measurement::new("cold start (mngr --version)", version));

        println!("create, empty project");
        let mut created = Vec::new();
        let mut create_empty = Vec::new();
        for index in 0..self.runs {
            let name = format!("bench-{}-e{index}", self.run_id);
            let started = Instant::now();
            self.mngr(&self.create_args(&name, &image_arg))?;
            self.mngr(&["exec", &name, "--", "true"])?;
            create_empty.push(started.elapsed());
            created.push(name);
        }
        let floor_create: Vec<Duration> = (0..self.runs)
            .map(|index| {
                self.floor_container_start(&format!("bench-{}-floor{index}", self.run_id))
                    .map(|(elapsed, _)| elapsed)
            })
            .collect::<Result<_>>()?;
        measurements.push(
            Measurement::new("create + exec, empty project", create_empty)
                .with_floor("docker run + sshd banner", floor_create),
        );

        println!("create, 50 MB project in 2,000 files");
        let big_project = self.scratch.path().join("big-project");
        write_big_project(&big_project)?;
        let mut create_big = Vec::new();
        for index in 0..self.runs {
            let name = format!("bench-{}-b{index}", self.run_id);
            let started = Instant::now();
            self.mngr_in(&self.create_args(&name, &image_arg), &big_project)?;
            self.mngr(&["exec", &name, "--", "true"])?;
            create_big.push(started.elapsed());
            created.push(name);
        }
        let floor_tar: Vec<Duration> = (0..self.runs)
            .map(|index| {
                self.docker_api_copy(&big_project, &format!("bench-{}-floor{index}", self.run_id))
            })
            .collect::<Result<_>>()?;
        measurements.push(
            Measurement::new("create + exec, 50 MB project", create_big).with_floor(
                "empty create + docker cp of the tar",
                add_medians(&measurements[1].samples, &floor_tar),
            ),
        );

        println!("exec");
        let first = created[0].clone();
        // mngr and its floor alternate, so a slow phase of the machine hits both.
        let port = self.ssh_port(&first)?;
        let mut exec = Vec::new();
        let mut plain_ssh = Vec::new();
        for _ in 0..self.runs * 2 {
            exec.push(self.timed_mngr(&["exec", &first, "--", "true"])?);
            plain_ssh.push(time_command(&mut self.plain_ssh(port))?);
        }
        measurements.push(
            Measurement::new("exec (mngr exec -- true)", exec)
                .with_floor("ssh with the same key", plain_ssh),
        );

        println!("snapshot");
        let mut snapshot = Vec::new();
        let mut commit = Vec::new();
        for index in 0..self.runs {
            snapshot.push(self.timed_mngr(&[
                "snapshot",
                "create",
                &first,
                "--name",
                &format!("s{index}"),
            ])?);
            commit.push(time_command(Command::new("docker").args([
                "commit",
                &format!("mngr-{first}"),
                &format!("mngr-bench-commit:{}-{index}", self.run_id),
            ]))?);
        }
        measurements.push(
            Measurement::new("snapshot create", snapshot).with_floor("docker commit", commit),
        );

        println!("stop and start");
        let mut stop = Vec::new();
        let mut start = Vec::new();
        let mut docker_stop = Vec::new();
        let mut docker_start = Vec::new();
        let floor_name = format!("bench-{}-floor0", self.run_id);
        let floor_port = self.published_port(&floor_name)?;
        for _ in 0..self.runs {
            stop.push(self.timed_mngr(&["stop", &first])?);
            start.push(self.timed_mngr(&["start", &first])?);
            docker_stop.push(time_command(
                Command::new("docker").args(["stop", &floor_name]),
            )?);
            let started = Instant::now();
            run_quietly(Command::new("docker").args(["start", &floor_name]))?;
            let port = self.published_port(&floor_name).unwrap_or(floor_port);
            wait_for_banner(port)?;
            docker_start.push(started.elapsed());
        }
        measurements.push(Measurement::new("stop", stop).with_floor("docker stop", docker_stop));
        measurements.push(
            Measurement::new("start", start).with_floor("docker start + sshd banner", docker_start),
        );

        println!("destroy");
        let mut destroy = Vec::new();
        for name in created.drain(self.runs..) {
            destroy.push(self.timed_mngr(&["destroy", &name, "--delete-snapshots"])?);
        }
        let remove: Vec<Duration> = (0..self.runs)
            .map(|index| {
                time_command(Command::new("docker").args([
                    "rm",
                    "-f",
                    &format!("bench-{}-floor{index}", self.run_id),
                ]))
            })
            .collect::<Result<_>>()?;
        measurements.push(Measurement::new("destroy", destroy).with_floor("docker rm -f", remove));

        println!("list at 0, 1, 10 and 50 hosts");
        for name in created.drain(1..) {
            self.mngr(&["destroy", &name, "--delete-snapshots"])?;
        }
        let memory_create = self.peak_memory_kib(
            &self.create_args(&format!("bench-{}-mem", self.run_id), &image_arg),
        )?;
        self.mngr(&["destroy", &format!("bench-{}-mem", self.run_id)])?;
        self.mngr(&["destroy", &first, "--delete-snapshots"])?;
        let mut hosts: Vec<String> = Vec::new();
        for target in [0_usize, 1, 10, 50] {
            while hosts.len() < target {
                let name = format!("bench-{}-l{}", self.run_id, hosts.len());
                self.mngr(&self.create_args(&name, &image_arg))?;
                // Every other host is stopped, so listing sees both states.
                if hosts.len() % 2 == 1 {
                    self.mngr(&["stop", &name, "--timeout", "1"])?;
                }
                hosts.push(name);
            }
            let list: Vec<Duration> = (0..self.runs * 2)
                .map(|_| self.timed_mngr(&["list", "--format", "json"]))
                .collect::<Result<_>>()?;
            measurements.push(Measurement::new(&format!("list, {target} hosts"), list));
        }
        let memory_list = self.peak_memory_kib(&["list", "--format", "json"])?;

        Ok((
            measurements,
            Memory {
                create_kib: memory_create,
                list_50_kib: memory_list,
            },
        ))
    }

    /// Starts a container of the base image whose PID 1 is sshd with a
    /// freshly generated host key, and returns the time until sshd sends its
    /// banner on the published loopback port.
    fn floor_container_start(&self, name: &str) -> Result<(Duration, u16)> {
        let started = Instant::now();
        run_quietly(Command::new("docker").args([
            "run",
            "-d",
            "--name",
            name,
            "--label",
            &self.label(),
            "-p",
            "127.0.0.1::22",
            base_image::IMAGE,
            "sh",
            "-c",
            "mkdir -p /run/sshd && { [ -f /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key; } && exec /usr/sbin/sshd -D -o HostKey=/etc/ssh/ssh_host_ed25519_key",
        ]))?;
        let port = self.published_port(name)?;
        wait_for_banner(port)?;
        Ok((started.elapsed(), port))
    }

    /// The time to copy `project` into a running container as one tar stream
    /// through the Docker API (`docker cp -`).
    fn docker_api_copy(&self, project: &Path, container: &str) -> Result<Duration> {
        let started = Instant::now();
        let mut tar = Command::new("tar")
            .arg("-C")
            .arg(project)
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()?;
        let tar_output = tar.stdout.take().context("tar has no stdout")?;
        let copy = Command::new("docker")
            .args(["cp", "-", &format!("{container}:/tmp")])
            .stdin(tar_output)
            .stdout(Stdio::null())
            .status()?;
        tar.wait()?;
        if !copy.success() {
            bail!("docker cp into {container} failed");
        }
        Ok(started.elapsed())
    }

    fn published_port(&self, container: &str) -> Result<u16> {
        let output = util::capture(Command::new("docker").args(["port", container, "22/tcp"]))?;
        let line = output.lines().next().unwrap_or("");
        line.rsplit(':')
            .next()
            .and_then(|port| port.trim().parse().ok())
            .with_context(|| format!("container {container} publishes no port 22: {output:?}"))
    }

    fn ssh_port(&self, name: &str) -> Result<u16> {
        let output = self.mngr(&["list", "--format", "json"])?;
        let entries: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout)?;
        entries
            .iter()
            .find(|entry| entry["name"] == name)
            .and_then(|entry| entry["ssh_port"].as_u64())
            .and_then(|port| u16::try_from(port).ok())
            .with_context(|| format!("{name} has no SSH port"))
    }

    /// `ssh` with mngr's key and known_hosts, running `true`.
    fn plain_ssh(&self, port: u16) -> Command {
        let keys = self
            .home()
            .join("profiles/default/providers/docker/docker/keys");
        let mut command = Command::new("ssh");
        command
            .args(["-F", "/dev/null", "-p", &port.to_string(), "-i"])
            .arg(keys.join("docker_ssh_key"))
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                keys.join("known_hosts").display()
            ))
            .args([
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
            ])
            // The key exchange mngr uses (ssh_utils::KEX_ALGORITHMS), so the
            // floor differs from mngr only in what mngr adds.
            .args([
                "-o",
                "KexAlgorithms=curve25519-sha256,sntrup761x25519-sha512@openssh.com",
            ])
            .args(["root@127.0.0.1", "true"]);
        command
    }

    /// Peak resident memory of one mngr run with `args`, from `wait4`.
    fn peak_memory_kib(&self, args: &[&str]) -> Result<u64> {
        let child = self
            .mngr_command(args, &self.scratch.path().join("empty-project"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let pid = i32::try_from(child.id()).context("the child's pid does not fit in pid_t")?;
        let mut status = 0;
        // SAFETY: `usage` is a plain C struct that wait4 fills in; zeroed bytes
        // are a valid value for it.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: waits for our own child, passing valid pointers to locals;
        // `child` is not waited for again afterwards.
        let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if waited != pid {
            bail!("waiting for mngr {args:?} failed");
        }
        Ok(u64::try_from(usage.ru_maxrss).unwrap_or(0))
    }

    /// Removes every container and image with this run's label; errors are
    /// printed, not returned, so cleanup always runs to the end.
    fn clean_up(&self) {
        let label = format!("label={}", self.label());
        let containers =
            util::capture(Command::new("docker").args(["ps", "-aq", "--filter", &label]))
                .unwrap_or_default();
        let containers: Vec<&str> = containers.split_whitespace().collect();
        if !containers.is_empty() {
            let _ = run_quietly(
                Command::new("docker")
                    .args(["rm", "-f", "-v"])
                    .args(&containers),
            );
        }
        let images =
            util::capture(Command::new("docker").args(["images", "-q", "--filter", &label]))
                .unwrap_or_default();
        let mut images: Vec<&str> = images.split_whitespace().collect();
        images.sort_unstable();
        images.dedup();
        if !images.is_empty() {
            let _ = run_quietly(Command::new("docker").args(["rmi", "-f"]).args(&images));
        }
        let left = util::capture(Command::new("docker").args(["ps", "-aq", "--filter", &label]))
            .unwrap_or_default();
        if left.trim().is_empty() {
            println!(
                "removed {} containers and {} images",
                containers.len(),
                images.len()
            );
        } else {
            eprintln!(
                "warning: containers labelled {} are left: {}",
                self.label(),
                left.trim()
            );
        }
    }
}

/// Writes 2,000 files of 25 KiB each (50 MiB in all) of incompressible bytes.
fn write_big_project(root: &Path) -> Result<()> {
    let mut random = fs::File::open("/dev/urandom")?;
    let mut buffer = vec![0_u8; 25 * 1024];
    for directory in 0..20 {
        let directory_path = root.join(format!("dir{directory:02}"));
        fs::create_dir_all(&directory_path)?;
        for file in 0..100 {
            random.read_exact(&mut buffer)?;
            fs::write(directory_path.join(format!("file{file:03}.bin")), &buffer)?;
        }
    }
    Ok(())
}

fn time_command(command: &mut Command) -> Result<Duration> {
    let started = Instant::now();
    run_quietly(command)?;
    Ok(started.elapsed())
}

fn run_quietly(command: &mut Command) -> Result<()> {
    let output = command.stdin(Stdio::null()).output()?;
    if !output.status.success() {
        bail!(
            "`{}` failed: {}",
            util::display(command),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Polls the loopback `port` until a server sends an SSH banner (30 s at most).
fn wait_for_banner(port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut line = String::new();
            if BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("SSH-") {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    bail!("no SSH banner on 127.0.0.1:{port} within 30 s")
}

/// `base` samples shifted by the median of `extra`, for a floor made of two
/// measured parts.
fn add_medians(base: &[Duration], extra: &[Duration]) -> Vec<Duration> {
    let extra = median(extra);
    base.iter().map(|sample| *sample + extra).collect()
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn print_table(measurements: &[Measurement], memory: &Memory) {
    println!();
    println!(
        "{:<32} {:>9} {:>9} {:>9}  {:<38} {:>9} {:>6}",
        "operation", "median", "min", "max", "floor", "floor", "ratio"
    );
    for measurement in measurements {
        let samples = &measurement.samples;
        let min = samples.iter().min().copied().unwrap_or_default();
        let max = samples.iter().max().copied().unwrap_or_default();
        let (floor_name, floor_median, ratio) = match &measurement.floor_name {
            Some(name) => {
                let floor = median(&measurement.floor);
                let ratio = milliseconds(median(samples)) / milliseconds(floor).max(0.001);
                (
                    name.as_str(),
                    format!("{:.0} ms", milliseconds(floor)),
                    format!("{ratio:.2}"),
                )
            }
            None => ("", String::new(), String::new()),
        };
        println!(
            "{:<32} {:>6.0} ms {:>6.0} ms {:>6.0} ms  {:<38} {:>9} {:>6}",
            measurement.operation,
            milliseconds(median(samples)),
            milliseconds(min),
            milliseconds(max),
            floor_name,
            floor_median,
            ratio
        );
    }
    println!(
        "peak memory: create {:.1} MiB, list at 50 hosts {:.1} MiB",
        memory.create_kib as f64 / 1024.0,
        memory.list_50_kib as f64 / 1024.0
    );
}

fn to_json(measurements: &[Measurement], memory: &Memory, runs: usize) -> Result<String> {
    let rows: Vec<serde_json::Value> = measurements
        .iter()
        .map(|measurement| {
            let samples: Vec<f64> = measurement.samples.iter().map(|sample| milliseconds(*sample)).collect();
            let floor: Vec<f64> = measurement.floor.iter().map(|sample| milliseconds(*sample)).collect();
            serde_json::json!({
                "operation": measurement.operation,
                "median_ms": milliseconds(median(&measurement.samples)),
                "min_ms": samples.iter().cloned().fold(f64::INFINITY, f64::min),
                "max_ms": samples.iter().cloned().fold(0.0, f64::max),
                "samples_ms": samples,
                "floor": measurement.floor_name,
                "floor_median_ms": measurement.floor_name.as_ref().map(|_| milliseconds(median(&measurement.floor))),
                "floor_samples_ms": floor,
            })
        })
        .collect();
    Ok(serde_json::to_string_pretty(&serde_json::json!({
        "runs": runs,
        "measurements": rows,
        "peak_memory_kib": {"create": memory.create_kib, "list_50_hosts": memory.list_50_kib},
    }))?)
}
