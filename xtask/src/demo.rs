//! `cargo xtask demo`: runs mngr's main job end to end against the local
//! Docker daemon and prints every command before it runs. The steps build
//! mngr, create a host from a scratch git project, list it, run commands in
//! it, read the agent's terminal, and destroy it. A temporary `MNGR_HOME`
//! keeps the user's `~/.mngr` out of reach, and the host is destroyed also
//! when a step fails (but not when a signal kills the demo). It does not check
//! mngr's output beyond what the demo shows: the agent's greeting and an exit
//! code.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{base_image, test, util};

/// How long to wait for the agent's greeting to appear in its tmux pane.
const GREETING_TIMEOUT: Duration = Duration::from_secs(5);
const GREETING: &str = "hello from";

/// Runs `cargo xtask demo`.
pub fn command(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        if arg == "-h" || arg == "--help" {
            println!("usage: cargo xtask demo");
            println!();
            println!("Builds mngr (release), creates a Docker host from a scratch project,");
            println!("runs commands in it and destroys it. Uses a temporary MNGR_HOME.");
            println!("Set MNGR_DEMO_IMAGE to start the host from another local image");
            println!("(default {}, built when missing).", base_image::IMAGE);
            return Ok(());
        }
        bail!("unknown argument `{arg}` for demo; see `cargo xtask demo --help`");
    }

    util::header("[1/5] build mngr (release)");
    util::run(util::cargo().args(["build", "--release", "-p", "mngr-cli"]))?;
    let mngr_bin = test::target_directory()?.join("release").join("mngr");

    util::header("[2/5] pick the host image");
    let image = demo_image()?;

    util::header("[3/5] create a scratch MNGR_HOME and project");
    let home = util::TempDir::new("mngr-demo-home")?;
    let project = util::TempDir::new("mngr-demo-project")?;
    println!("MNGR_HOME: {}", home.path().display());
    println!("project:   {}", project.path().display());
    write_project(project.path())?;

    let mngr = Mngr {
        bin: mngr_bin,
        home: home.path().to_path_buf(),
        project: project.path().to_path_buf(),
    };
    let name = format!("demo-{}", util::random_hex(3)?);

    util::header(&format!("[4/5] run host {name}"));
    // The guard exists before `create` runs, because a create that fails
    // halfway can still leave a container behind.
    let mut host = HostGuard {
        mngr: &mngr,
        name: name.clone(),
        destroy_attempted: false,
    };
    exercise_host(&mngr, &name, &image)?;

    util::header(&format!("[5/5] destroy host {name}"));
    host.destroy()?;
    util::echo(&host_containers_command(&name));
    let remaining = host_containers(&name)?;
    if !remaining.is_empty() {
        bail!(
            "`mngr destroy {name}` succeeded but containers {remaining:?} remain; the cleanup below removes them"
        );
    }
    println!("no container labelled com.imbue.mngr.host-name={name} remains");
    Ok(())
}

/// Returns `MNGR_DEMO_IMAGE` if it names a local image, else
/// [`base_image::IMAGE`], building it when missing.
fn demo_image() -> Result<String> {
    if let Some(image) = std::env::var("MNGR_DEMO_IMAGE")
        .ok()
        .filter(|image| !image.is_empty())
    {
        if !base_image::image_exists(&image) {
            bail!(
                "MNGR_DEMO_IMAGE={image} is not a local image (no registry can be reached to pull it); \
                 check `docker images` or unset MNGR_DEMO_IMAGE to use {}",
                base_image::IMAGE
            );
        }
        println!("using {image} from MNGR_DEMO_IMAGE");
        return Ok(image);
    }
    base_image::ensure(false)?;
    Ok(base_image::IMAGE.to_owned())
}

/// Fills `project` with a one-commit git repository plus one untracked and
/// one ignored file, so the host's file listing shows which of them mngr
/// copied.
fn write_project(project: &Path) -> Result<()> {
    let files = [
        ("README.md", "# mngr demo project\n\nA scratch project that `cargo xtask demo` copies into a host.\n"),
        ("hello.sh", "echo \"hello from $(hostname) in $(pwd)\"; ls\n"),
        (".gitignore", "local.env\n"),
        ("untracked.txt", "This file is not committed.\n"),
        ("local.env", "DEMO_SETTING=ignored-by-git\n"),
    ];
    for (name, contents) in files {
        let path = project.join(name);
        fs::write(&path, contents)
            .with_context(|| format!("failed to write {}", path.display()))?;
        println!("wrote {name}");
    }

    let git = || {
        let mut git = Command::new("git");
        git.current_dir(project);
        git
    };
    util::run(git().args(["init", "--quiet"]))?;
    util::run(git().args(["add", "README.md", "hello.sh", ".gitignore"]))?;
    util::run(git().args([
        "-c",
        "user.name=mngr demo",
        "-c",
        "user.email=demo@mngr.invalid",
        "-c",
        "commit.gpgsign=false",
        "commit",
        "--quiet",
        "--message",
        "Add demo project",
    ]))?;
    util::run(git().args(["status", "--short", "--ignored"]))
}

/// Runs the demo's commands against host `name`, from `create` up to but not
/// including `destroy`.
fn exercise_host(mngr: &Mngr, name: &str, image: &str) -> Result<()> {
    util::run(&mut mngr.command([
        "create",
        name,
        "--in",
        "docker",
        "-b",
        &format!("--image={image}"),
        "--",
        "bash",
        "-c",
        "bash hello.sh; exec bash",
    ]))?;

    util::run(&mut mngr.command(["list"]))?;
    util::run(&mut mngr.command(["list", "--format", "json"]))?;
    util::run(&mut mngr.command(["exec", name, "--", "ls", "-la"]))?;

    show_agent_terminal(mngr, name)?;

    let status = util::run_status(&mut mngr.command(["exec", name, "--", "sh", "-c", "exit 3"]))?;
    match status.code() {
        Some(3) => println!("exit code: 3 (the command's exit code came back through mngr exec)"),
        Some(code) => {
            bail!("`mngr exec {name} -- sh -c 'exit 3'` returned exit code {code}, expected 3")
        }
        None => bail!("`mngr exec {name} -- sh -c 'exit 3'` ended without an exit code ({status})"),
    }
    Ok(())
}

/// Prints the agent's tmux pane, retrying for up to [`GREETING_TIMEOUT`]
/// because the agent may not have printed its greeting yet when `create`
/// returns.
fn show_agent_terminal(mngr: &Mngr, name: &str) -> Result<()> {
    let mut capture = mngr.command(["exec", name, "--", "tmux", "capture-pane", "-p", "-t", name]);
    util::echo(&capture);
    let started = Instant::now();
    let mut announced_wait = false;
    loop {
        let output = capture
            .stderr(Stdio::inherit())
            .output()
            .context("failed to start mngr exec")?;
        let pane = String::from_utf8_lossy(&output.stdout);
        let pane = pane.trim_end();
        if output.status.success() && pane.contains(GREETING) {
            println!("{pane}");
            return Ok(());
        }
        if started.elapsed() >= GREETING_TIMEOUT {
            println!(
                "{}",
                if pane.is_empty() {
                    "(the pane is empty)"
                } else {
                    pane
                }
            );
            bail!(
                "the agent's pane in host {name} did not show \"{GREETING}\" within {}s (last capture: {})",
                GREETING_TIMEOUT.as_secs(),
                output.status
            );
        }
        if !announced_wait {
            println!(
                "(no \"{GREETING}\" in the pane yet; retrying for up to {}s)",
                GREETING_TIMEOUT.as_secs()
            );
            announced_wait = true;
        }
        thread::sleep(Duration::from_millis(500));
    }
}

/// Builds the `docker ps` command that lists the ids of all containers,
/// running or not, that carry host `name`'s label.
fn host_containers_command(name: &str) -> Command {
    let mut command = Command::new("docker");
    command.args([
        "ps",
        "-a",
        "--filter",
        &format!("label=com.imbue.mngr.host-name={name}"),
        "-q",
    ]);
    command
}

/// Returns the ids that [`host_containers_command`] lists, without echoing it.
fn host_containers(name: &str) -> Result<Vec<String>> {
    let ids = util::capture(&mut host_containers_command(name))?;
    Ok(ids.split_whitespace().map(str::to_owned).collect())
}

/// The built `mngr` binary, run with the demo's `MNGR_HOME` from the scratch
/// project directory.
struct Mngr {
    bin: PathBuf,
    home: PathBuf,
    project: PathBuf,
}

impl Mngr {
    /// Builds a `mngr` command. Stdin is closed so that no command waits for
    /// input or attaches to the agent's terminal.
    fn command<'a>(&self, args: impl IntoIterator<Item = &'a str>) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .args(args)
            .current_dir(&self.project)
            .env("MNGR_HOME", &self.home)
            .stdin(Stdio::null());
        command
    }
}

/// Destroys the demo's host when dropped unless [`HostGuard::destroy`]
/// already tried, then removes any container still labelled with the host's
/// name. The name carries random hex, so the label matches only this demo's
/// containers.
///
/// NOTE: Drop does not run when a signal (Ctrl-C included) kills the demo,
/// so an interrupted demo leaves its host running. Remove it with
/// `docker rm -f $(docker ps -aq --filter label=com.imbue.mngr.host-name=NAME)`.
struct HostGuard<'a> {
    mngr: &'a Mngr,
    name: String,
    destroy_attempted: bool,
}

impl HostGuard<'_> {
    /// Runs `mngr destroy`. Whatever it returns, dropping the guard later
    /// still removes leftover containers.
    fn destroy(&mut self) -> Result<()> {
        self.destroy_attempted = true;
        util::run(&mut self.mngr.command(["destroy", &self.name]))
    }
}

impl Drop for HostGuard<'_> {
    fn drop(&mut self) {
        if !self.destroy_attempted {
            println!();
            println!("==> cleanup: destroy host {}", self.name);
            if let Err(error) = util::run(&mut self.mngr.command(["destroy", &self.name])) {
                eprintln!("warning: {error:#}");
            }
        }

        let remaining = match host_containers(&self.name) {
            Ok(ids) => ids,
            Err(error) => {
                eprintln!(
                    "warning: failed to list host {}'s containers: {error:#}",
                    self.name
                );
                return;
            }
        };
        if remaining.is_empty() {
            return;
        }
        println!("removing leftover containers of host {}", self.name);
        if let Err(error) = util::run(
            Command::new("docker")
                .args(["rm", "-f", "-v"])
                .args(&remaining),
        ) {
            eprintln!(
                "warning: {error:#}; remove them with `docker rm -f {}`",
                remaining.join(" ")
            );
        }
    }
}
