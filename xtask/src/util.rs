//! Running external commands the way every xtask step does: echo the exact
//! command line first, then run it with the terminal attached (or capture the
//! stdout of a probe whose text a step needs). It also contains the helpers
//! the steps share: the workspace root, the cargo to call, step headers,
//! temporary directories and random names. It has no knowledge of what any
//! step is for.
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use anyhow::{bail, Context, Result};

/// Returns the workspace root, the parent of this crate's manifest directory.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest_dir.to_path_buf())
}

/// Builds a `cargo` command in the workspace root. It runs `cargo` from
/// `$PATH` rather than `$CARGO` so that echoed lines can be pasted as they
/// are. Under rustup both pick the same toolchain for this directory.
pub fn cargo() -> Command {
    let mut command = Command::new("cargo");
    command.current_dir(workspace_root());
    command
}

/// Prints a step header, set off from the commands' output by a blank line
/// and a `==>` prefix.
pub fn header(title: &str) {
    println!();
    println!("==> {title}");
}

/// Echoes `command` as a shell line, runs it with inherited stdio, and fails
/// unless it exits with status 0.
pub fn run(command: &mut Command) -> Result<()> {
    let status = run_status(command)?;
    if !status.success() {
        bail!("`{}` failed ({status})", display(command));
    }
    Ok(())
}

/// Echoes `command`, runs it with inherited stdio and returns its exit status,
/// whatever it is. Fails only when the program cannot be started.
pub fn run_status(command: &mut Command) -> Result<ExitStatus> {
    echo(command);
    command
        .status()
        .with_context(|| format!("failed to start `{}`", display(command)))
}

/// Runs `command` without echoing it and returns its stdout, for probes
/// whose command line would only be noise. Fails unless it exits with
/// status 0 and its stdout is UTF-8; the error then contains its stderr.
pub fn capture(command: &mut Command) -> Result<String> {
    let output = command
        .output()
        .with_context(|| format!("failed to start `{}`", display(command)))?;
    if !output.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            display(command),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8(output.stdout)
        .with_context(|| format!("`{}` printed output that is not UTF-8", display(command)))
}

/// Runs `command` silently and reports whether it started and exited with
/// status 0.
pub fn succeeds(command: &mut Command) -> bool {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Prints `command` the way [`display`] renders it, prefixed with `$ `.
pub fn echo(command: &Command) {
    println!("$ {}", display(command));
}

/// Renders `command` as a line a POSIX shell would run the same way: the
/// working directory as a `cd … &&` prefix, then environment assignments,
/// then the quoted program and arguments.
pub fn display(command: &Command) -> String {
    let mut words = Vec::new();
    if let Some(directory) = command.get_current_dir() {
        words.push(format!("cd {} &&", shell_quote(directory.as_os_str())));
    }
    for (key, value) in command.get_envs() {
        if let Some(value) = value {
            words.push(format!("{}={}", key.to_string_lossy(), shell_quote(value)));
        }
    }
    words.push(shell_quote(command.get_program()));
    words.extend(command.get_args().map(shell_quote));
    words.join(" ")
}

/// Quotes one word for a POSIX shell, leaving words made only of safe
/// characters bare so the echoed lines stay readable.
fn shell_quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let is_safe = |c: char| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c);
    if !word.is_empty() && word.chars().all(is_safe) {
        return word.into_owned();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// Returns `count` random bytes as lowercase hex, read from `/dev/urandom`.
pub fn random_hex(count: usize) -> Result<String> {
    let mut bytes = vec![0u8; count];
    fs::File::open("/dev/urandom")
        .and_then(|mut file| file.read_exact(&mut bytes))
        .context("failed to read random bytes from /dev/urandom")?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Reports whether `program` is an executable file in a directory on `$PATH`.
pub fn on_path(program: &str) -> bool {
    find_on_path(program).is_some()
}

/// Returns the first executable file named `program` in a `$PATH` directory.
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;

    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|directory| directory.join(program))
        .find(|candidate| {
            fs::metadata(candidate).is_ok_and(|metadata| {
                metadata.is_file() && metadata.permissions().mode() & 0o111 != 0
            })
        })
}

/// A directory under the system temporary directory that is removed, with
/// everything in it, when the value is dropped.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<tmp>/<prefix>-<random hex>`.
    pub fn new(prefix: &str) -> Result<Self> {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", random_hex(6)?));
        fs::create_dir(&path)
            .with_context(|| format!("failed to create directory {}", path.display()))?;
        Ok(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(error) = fs::remove_dir_all(&self.path) {
            eprintln!(
                "warning: failed to remove {}: {error}; remove it by hand",
                self.path.display()
            );
        }
    }
}
