//! Harness for the end-to-end tests: each test gets a [`Sandbox`] with its own
//! `MNGR_HOME`, a scratch project directory, and a label on every container it
//! creates, and runs the real `mngr` binary against the real Docker daemon.
//!
//! Dropping the sandbox removes every container carrying its label, so a
//! failed test leaves nothing behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The label that marks containers created by one sandbox.
pub const TEST_RUN_LABEL: &str = "com.imbue.mngr.test-run";

/// The `mngr` binary under test: `$MNGR_BIN`, else `mngr` in the target
/// directory this test binary was built into.
pub fn mngr_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("MNGR_BIN") {
        return PathBuf::from(path);
    }
    let test_binary = std::env::current_exe().expect("the test binary has a path");
    // target/<profile>/deps/<test binary>
    let profile_dir = test_binary
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let candidate = profile_dir.join("mngr");
    assert!(
        candidate.exists(),
        "{} does not exist; build it with `cargo build -p mngr-cli` or set MNGR_BIN",
        candidate.display()
    );
    candidate
}

/// The local image the tests create hosts from.
pub fn test_image() -> String {
    std::env::var("MNGR_TEST_IMAGE").unwrap_or_else(|_| "mngr-base:bookworm".to_string())
}

pub struct Sandbox {
    pub run_id: String,
    home: tempfile::TempDir,
    project: tempfile::TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Self {
        Self {
            run_id: uuid::Uuid::new_v4().simple().to_string(),
            home: tempfile::tempdir().expect("create MNGR_HOME"),
            project: tempfile::tempdir().expect("create the project directory"),
        }
    }

    pub fn mngr_home(&self) -> &Path {
        self.home.path()
    }

    pub fn project_dir(&self) -> &Path {
        self.project.path()
    }

    /// The directory holding the docker instance's `hosts/` and `keys/`.
    pub fn instance_dir(&self) -> PathBuf {
        self.home
            .path()
            .join("profiles/default/providers/docker/docker")
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.instance_dir().join("keys/known_hosts")
    }

    pub fn client_key(&self) -> PathBuf {
        self.instance_dir().join("keys/docker_ssh_key")
    }

    /// A name unique to this sandbox, so tests running at once never clash.
    pub fn unique_name(&self, prefix: &str) -> String {
        format!("{prefix}-{}", &self.run_id[..10])
    }

    /// A `mngr` command in the project directory with this sandbox's environment.
    pub fn mngr_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(mngr_bin());
        command
            .args(args)
            .current_dir(self.project.path())
            .env("MNGR_HOME", self.home.path())
            .env_remove("MNGR_PROFILE")
            .env_remove("RUST_LOG")
            .env(
                "MNGR_DOCKER_EXTRA_LABELS",
                format!("{TEST_RUN_LABEL}={}", self.run_id),
            )
            .stdin(Stdio::null());
        command
    }

    /// Writes `$MNGR_HOME/config.toml`.
    pub fn write_config(&self, text: &str) {
        std::fs::write(self.home.path().join("config.toml"), text).expect("write config.toml");
    }

    /// Creates a Docker network labelled as this sandbox's and returns its name.
    pub fn create_network(&self) -> String {
        let name = format!("mngr-test-{}", &self.run_id[..12]);
        let output = docker(&[
            "network",
            "create",
            "--label",
            &format!("{TEST_RUN_LABEL}={}", self.run_id),
            &name,
        ]);
        assert!(
            output.status.success(),
            "docker network create failed:\n{}",
            describe(&output)
        );
        name
    }

    pub fn mngr(&self, args: &[&str]) -> Output {
        self.mngr_command(args).output().expect("run mngr")
    }

    /// Runs mngr and fails the test, showing its output, unless it succeeded.
    pub fn mngr_ok(&self, args: &[&str]) -> Output {
        let output = self.mngr(args);
        assert!(
            output.status.success(),
            "mngr {args:?} failed:\n{}",
            describe(&output)
        );
        output
    }

    /// Creates an agent from the test image; extra arguments follow the build argument.
    pub fn create(&self, name: &str, extra: &[&str]) -> Output {
        let image = format!("--image={}", test_image());
        let mut args = vec!["create", name, "--in", "docker", "-b", image.as_str()];
        args.extend_from_slice(extra);
        self.mngr_ok(&args)
    }

    /// `mngr list --format json`, parsed.
    pub fn list_json(&self) -> Vec<serde_json::Value> {
        let output = self.mngr_ok(&["list", "--format", "json"]);
        serde_json::from_slice(&output.stdout).expect("mngr list prints a JSON array")
    }

    pub fn list_entry(&self, name: &str) -> Option<serde_json::Value> {
        self.list_json()
            .into_iter()
            .find(|entry| entry["name"] == name)
    }

    /// Ids of this sandbox's containers, running or not.
    pub fn containers(&self) -> Vec<String> {
        let output = docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label={TEST_RUN_LABEL}={}", self.run_id),
        ]);
        String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    /// Ids of images carrying this sandbox's label, such as snapshots.
    pub fn images(&self) -> Vec<String> {
        let output = docker(&[
            "images",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("label={TEST_RUN_LABEL}={}", self.run_id),
        ]);
        let mut ids: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The stored host record of the host called `name`, parsed.
    pub fn host_record(&self, name: &str) -> (PathBuf, serde_json::Value) {
        for path in self.host_record_files() {
            let text = std::fs::read_to_string(&path).expect("read a host record");
            let record: serde_json::Value =
                serde_json::from_str(&text).expect("a host record is JSON");
            if record["certified_host_data"]["host_name"] == name {
                return (path, record);
            }
        }
        panic!("no host record for {name}");
    }

    /// Polls `mngr list` until `condition` holds for the agent's entry, or panics after `timeout`.
    pub fn wait_for_entry(
        &self,
        name: &str,
        timeout: std::time::Duration,
        condition: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let entry = self.list_entry(name).unwrap_or(serde_json::Value::Null);
            if condition(&entry) {
                return entry;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "agent {name} did not reach the expected state within {timeout:?}; last entry: {entry}"
            );
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }

    pub fn host_record_files(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.instance_dir().join("hosts")) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.extension()
                    .is_some_and(|extension| extension == "json")
            })
            .collect()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let containers = self.containers();
        if !containers.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(containers.iter().map(String::as_str));
            docker(&args);
        }
        // Networks a test created for its hosts.
        let networks = docker(&[
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("label={TEST_RUN_LABEL}={}", self.run_id),
        ]);
        for network in String::from_utf8_lossy(&networks.stdout).split_whitespace() {
            docker(&["network", "rm", network]);
        }
        // Snapshot and built images inherit their container's labels, the test label included.
        let images = self.images();
        if !images.is_empty() {
            let mut args = vec!["rmi", "-f"];
            args.extend(images.iter().map(String::as_str));
            docker(&args);
        }
    }
}

/// A TCP listener on a loopback port that forwards every connection to the
/// local Docker socket, so tests can reach the daemon through `tcp://`.
/// It stops accepting when dropped.
pub struct DockerTcpProxy {
    pub port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl DockerTcpProxy {
    pub fn start() -> Self {
        use std::net::TcpListener;
        use std::os::unix::net::UnixStream;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                let client = match listener.accept() {
                    Ok((client, _)) => client,
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                        continue;
                    }
                    Err(_) => break,
                };
                let _ = client.set_nonblocking(false);
                let Ok(daemon) = UnixStream::connect("/var/run/docker.sock") else {
                    continue;
                };
                let (Ok(mut client_reader), Ok(mut daemon_reader)) =
                    (client.try_clone(), daemon.try_clone())
                else {
                    continue;
                };
                let mut client_writer = client;
                let mut daemon_writer = daemon;
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut client_reader, &mut daemon_writer);
                    let _ = daemon_writer.shutdown(std::net::Shutdown::Write);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut daemon_reader, &mut client_writer);
                    let _ = client_writer.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        Self { port, stop }
    }
}

impl Drop for DockerTcpProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the docker CLI")
}

/// `docker inspect` of one object, parsed.
pub fn docker_inspect(name: &str) -> serde_json::Value {
    let output = docker(&["inspect", name]);
    assert!(
        output.status.success(),
        "docker inspect {name} failed:\n{}",
        describe(&output)
    );
    let mut parsed: Vec<serde_json::Value> =
        serde_json::from_slice(&output.stdout).expect("docker inspect prints JSON");
    parsed.remove(0)
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Exit status and both streams, for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        stdout(output),
        stderr(output)
    )
}
