//! SSH connections to one host: the options every `ssh` invocation of mngr
//! shares ([`SshTarget`]) and a multiplexed master connection that runs
//! remote commands ([`SshConnector`]).
//!
//! Every connection ignores the user's `~/.ssh/config`, authenticates only
//! with mngr's client key and checks the host key strictly against mngr's own
//! `known_hosts`. Installing keys and pinning host keys belong to the `keys`
//! and `known_hosts` modules.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use std::num::NonZeroUsize;

use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder, Stdio};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::error::SshError;

/// Everything needed to reach sshd in one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Private key that mngr authenticates with.
    pub identity_file: PathBuf,
    /// mngr's own `known_hosts`, which must already pin this host's key.
    pub known_hosts_file: PathBuf,
}

impl SshTarget {
    /// Returns `user@host`.
    pub fn destination(&self) -> String {
        format!("{}@{}", self.user, self.host)
    }

    /// Returns the `ssh` options shared by every invocation: no user config,
    /// only our key, no agent, strict host key checking against our
    /// `known_hosts`, no password or keyboard-interactive prompts.
    pub fn ssh_options(&self) -> Vec<String> {
        let mut options = vec![
            "-F".to_owned(),
            "/dev/null".to_owned(),
            "-p".to_owned(),
            self.port.to_string(),
            "-i".to_owned(),
            escape_percent(&self.identity_file),
        ];

        let settings = [
            "IdentitiesOnly=yes".to_owned(),
            "IdentityAgent=none".to_owned(),
            "StrictHostKeyChecking=yes".to_owned(),
            format!(
                "UserKnownHostsFile={}",
                ssh_config_path(&self.known_hosts_file)
            ),
            "GlobalKnownHostsFile=/dev/null".to_owned(),
            "PasswordAuthentication=no".to_owned(),
            "KbdInteractiveAuthentication=no".to_owned(),
            format!("KexAlgorithms={KEX_ALGORITHMS}"),
            "BatchMode=yes".to_owned(),
            "LogLevel=ERROR".to_owned(),
            "ConnectTimeout=10".to_owned(),
        ];
        for setting in settings {
            options.push("-o".to_owned());
            options.push(setting);
        }

        options
    }

    /// Builds `ssh <options> <destination> <remote_command>` without a
    /// terminal, for one command whose streams and exit code pass through.
    /// The remote login shell interprets `remote_command`. Not spawned.
    pub fn command(&self, remote_command: &str) -> std::process::Command {
        let mut command = std::process::Command::new("ssh");
        command
            .args(self.ssh_options())
            .arg(self.destination())
            .arg(remote_command);
        command
    }

    /// Builds `ssh <options> -t <destination> <remote_command>` for an
    /// interactive terminal, without spawning it. The remote login shell
    /// interprets `remote_command`.
    pub fn interactive_command(&self, remote_command: &str) -> std::process::Command {
        let mut command = std::process::Command::new("ssh");
        command
            .args(self.ssh_options())
            .arg("-t")
            .arg(self.destination())
            .arg(remote_command);
        command
    }
}

/// Exit code and captured output of a remote command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// `None` when the remote process was killed by a signal or exited with
    /// status 255, which ssh reports identically.
    pub exit_code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// An open SSH master connection to one host. Commands run over it without a
/// new handshake each time.
#[derive(Debug)]
pub struct SshConnector {
    target: SshTarget,
    session: Session,
}

impl SshConnector {
    /// Opens a master connection to `target`, giving up after `timeout`.
    ///
    /// A host key that is missing from or differs from `target.known_hosts_file`
    /// fails the connection, [`SshError::HostKeyMismatch`] for a differing key.
    pub async fn connect(target: SshTarget, timeout: Duration) -> Result<SshConnector, SshError> {
        let destination = target.destination();

        // openssh 0.11's builder has no setting for GlobalKnownHostsFile or
        // IdentityAgent, so they go through a client config file of mngr's own.
        if !target.identity_file.exists() {
            return Err(SshError::Connect {
                destination: format!("{destination}:{}", target.port),
                detail: format!(
                    "the client key {} does not exist; starting the host again installs a new key",
                    target.identity_file.display()
                ),
            });
        }
        let config_file = write_client_config(&target)?;
        let mut builder = SessionBuilder::default();
        builder
            .user(target.user.clone())
            .port(target.port)
            .keyfile(escape_percent(&target.identity_file))
            .known_hosts_check(KnownHosts::Strict)
            .user_known_hosts_file(ssh_config_path(&target.known_hosts_file))
            .config_file(&config_file)
            // A master left behind by a killed mngr exits on its own once its
            // last session ends.
            .control_persist(ControlPersist::IdleFor(MASTER_IDLE_SECONDS))
            .connect_timeout(timeout.max(Duration::from_secs(1)));

        // ConnectTimeout covers only the TCP connect, so bound the handshake too.
        // Limitation: when this deadline fires, the `ssh -M` process that
        // openssh spawned keeps running until the server or ssh closes the connection.
        let session = match tokio::time::timeout(timeout, builder.connect(&target.host)).await {
            Ok(Ok(session)) => session,
            Ok(Err(err)) => return Err(connect_error(&target, &err)),
            Err(_) => {
                return Err(SshError::Connect {
                    destination: format!("{destination}:{}", target.port),
                    detail: format!(
                        "the SSH handshake did not finish within {} s",
                        timeout.as_secs_f64()
                    ),
                })
            }
        };

        tracing::debug!(destination = %destination, port = target.port, "opened SSH master connection");
        Ok(SshConnector { target, session })
    }

    pub fn target(&self) -> &SshTarget {
        &self.target
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Runs `shell_command` through the remote login shell with stdin closed,
    /// capturing stdout and stderr. A non-zero exit code is not an error.
    pub async fn run(&self, shell_command: &str) -> Result<CommandOutput, SshError> {
        self.run_with_optional_stdin(shell_command, None::<tokio::io::Empty>)
            .await
    }

    /// Runs `shell_command` through the remote login shell with this process's
    /// stdin, stdout and stderr, and returns its exit code.
    pub async fn run_inherited(&self, shell_command: &str) -> Result<Option<i32>, SshError> {
        let status = self
            .session
            .raw_command(shell_command)
            .stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .status()
            .await;
        self.exit_code(shell_command, status).await
    }

    /// Runs `shell_command` through the remote login shell with stdin fed from
    /// `input` until its end, capturing stdout and stderr.
    ///
    /// If the remote command exits before reading all of `input`, the rest is
    /// discarded and the exit code and stderr tell why.
    pub async fn run_with_stdin<R: AsyncRead + Unpin + Send>(
        &self,
        shell_command: &str,
        input: R,
    ) -> Result<CommandOutput, SshError> {
        self.run_with_optional_stdin(shell_command, Some(input))
            .await
    }

    /// Closes the master connection.
    pub async fn close(self) -> Result<(), SshError> {
        let destination = self.target.destination();
        self.session.close().await.map_err(|err| SshError::Connect {
            destination,
            detail: format!(
                "failed to close the master connection: {}",
                error_chain(&err)
            ),
        })
    }

    async fn run_with_optional_stdin<R: AsyncRead + Unpin + Send>(
        &self,
        shell_command: &str,
        input: Option<R>,
    ) -> Result<CommandOutput, SshError> {
        let stdin = if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        let mut child = self
            .session
            .raw_command(shell_command)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .await
            .map_err(|err| command_error(shell_command, &err))?;

        let child_stdin = child.stdin().take();
        let child_stdout = child.stdout().take();
        let child_stderr = child.stderr().take();

        // Feeding stdin and draining both output pipes concurrently keeps a
        // full pipe on either side from blocking the remote command.
        let feed = async {
            match (input, child_stdin) {
                (Some(input), Some(child_stdin)) => feed_stdin(input, child_stdin).await,
                _ => Ok(()),
            }
        };
        let (fed, stdout, stderr) =
            tokio::join!(feed, read_all(child_stdout), read_all(child_stderr));
        fed.map_err(|detail| command_error_detail(shell_command, detail))?;
        let stdout = stdout.map_err(|err| {
            command_error_detail(shell_command, format!("failed to read stdout: {err}"))
        })?;
        let stderr = stderr.map_err(|err| {
            command_error_detail(shell_command, format!("failed to read stderr: {err}"))
        })?;

        let exit_code = self.exit_code(shell_command, child.wait().await).await?;
        Ok(CommandOutput {
            exit_code,
            stdout,
            stderr,
        })
    }

    /// Translates openssh's wait result into an exit code.
    ///
    /// openssh's process-mux backend turns remote exit codes 127 and 255 into
    /// errors, so they are mapped back here. Status 255 is an error only if the
    /// master connection itself is gone.
    async fn exit_code(
        &self,
        shell_command: &str,
        status: Result<ExitStatus, openssh::Error>,
    ) -> Result<Option<i32>, SshError> {
        match status {
            Ok(status) => Ok(status.code()),
            Err(openssh::Error::Remote(err)) if err.kind() == std::io::ErrorKind::NotFound => {
                Ok(Some(127))
            }
            Err(openssh::Error::RemoteProcessTerminated) => match self.session.check().await {
                Ok(()) => Ok(None),
                Err(err) => Err(command_error_detail(
                    shell_command,
                    format!(
                        "the SSH connection to {} was lost: {}",
                        self.target.destination(),
                        error_chain(&err)
                    ),
                )),
            },
            Err(err) => Err(command_error(shell_command, &err)),
        }
    }
}

/// Copies `input` into the remote stdin, then closes it so the remote command reads end of file.
async fn feed_stdin<R: AsyncRead + Unpin>(
    mut input: R,
    mut child_stdin: openssh::ChildStdin,
) -> Result<(), String> {
    let mut buffer = vec![0u8; 64 * 1024];

    loop {
        let read = input
            .read(&mut buffer)
            .await
            .map_err(|err| format!("failed to read the input to send: {err}"))?;
        if read == 0 {
            break;
        }

        if let Err(err) = child_stdin.write_all(&buffer[..read]).await {
            if err.kind() == std::io::ErrorKind::BrokenPipe {
                // The remote command stopped reading, and its exit code reports why.
                tracing::debug!("remote command closed its stdin before the input ended");
                return Ok(());
            }
            return Err(format!("failed to write to the remote stdin: {err}"));
        }
    }

    match child_stdin.shutdown().await {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(err) => Err(format!("failed to close the remote stdin: {err}")),
    }
}

async fn read_all<R: AsyncRead + Unpin>(pipe: Option<R>) -> std::io::Result<Vec<u8>> {
    let mut buffer = Vec::new();
    if let Some(mut pipe) = pipe {
        pipe.read_to_end(&mut buffer).await?;
    }
    Ok(buffer)
}

/// Maps a failed master connection to a typed error, recognising host key
/// problems from the messages that OpenSSH's `ssh` prints.
fn connect_error(target: &SshTarget, err: &openssh::Error) -> SshError {
    let detail = error_chain(err);
    let destination = format!("{}:{}", target.destination(), target.port);

    if detail.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || detail.contains("Host key verification failed")
    {
        if detail.contains("host key is known for") {
            // ssh prints "No <type> host key is known for <host> and you have
            // requested strict checking" when nothing is pinned at all.
            return SshError::Connect {
                destination,
                detail: format!(
                    "no host key for {} is pinned in {}; set the host up again to pin its key ({detail})",
                    crate::known_hosts::known_hosts_pattern(&target.host, target.port),
                    target.known_hosts_file.display()
                ),
            };
        }
        return SshError::HostKeyMismatch {
            destination,
            known_hosts: target.known_hosts_file.clone(),
        };
    }

    SshError::Connect {
        destination,
        detail,
    }
}

fn command_error(shell_command: &str, err: &openssh::Error) -> SshError {
    command_error_detail(shell_command, error_chain(err))
}

fn command_error_detail(shell_command: &str, detail: String) -> SshError {
    SshError::Command {
        command: shell_command.to_owned(),
        detail,
    }
}

/// Formats an error with all of its sources, because openssh puts ssh's own
/// message in the source of a generic "failed to connect".
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(cause.to_string().trim());
        source = cause.source();
    }
    text
}

/// Doubles `%`, because ssh expands `%` tokens in IdentityFile and UserKnownHostsFile.
/// Seconds an idle master connection stays up after its last session.
const MASTER_IDLE_SECONDS: NonZeroUsize = match NonZeroUsize::new(10) {
    Some(seconds) => seconds,
    None => unreachable!(),
};

/// Settings for the master connection that the builder cannot pass: no
/// system known_hosts, no agent, no password or keyboard-interactive login.
fn client_config() -> String {
    format!(
        "IdentitiesOnly yes\n\
         IdentityAgent none\n\
         GlobalKnownHostsFile /dev/null\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         KexAlgorithms {KEX_ALGORITHMS}\n"
    )
}

/// Key exchange algorithms, fastest first. OpenSSH 9 prefers the hybrid
/// post-quantum sntrup761x25519, which costs about 140 ms more per handshake
/// on a small machine (measured with OpenSSH 9.2 on 2 cores); curve25519
/// alone is the classic default of OpenSSH 6.5 to 8.9. The hybrid stays
/// allowed for servers that require it.
pub const KEX_ALGORITHMS: &str = "curve25519-sha256,sntrup761x25519-sha512@openssh.com";

/// Writes `ssh_config` beside the target's known_hosts file unless it already
/// has the expected content, and returns its path.
fn write_client_config(target: &SshTarget) -> Result<PathBuf, SshError> {
    let path = target.known_hosts_file.with_file_name("ssh_config");
    let config = client_config();
    if std::fs::read(&path).is_ok_and(|existing| existing == config.as_bytes()) {
        return Ok(path);
    }
    if let Some(directory) = path.parent() {
        std::fs::create_dir_all(directory)
            .map_err(|source| SshError::io(directory, "create directory", source))?;
    }
    crate::atomic_file::replace(&path, config.as_bytes(), 0o600)?;
    Ok(path)
}

fn escape_percent(path: &Path) -> String {
    path.to_string_lossy().replace('%', "%%")
}

/// Formats a path as an ssh option value: `%` escaped, and double-quoted if
/// it contains characters that ssh would split on, because UserKnownHostsFile
/// takes a whitespace-separated list of files.
fn ssh_config_path(path: &Path) -> String {
    let escaped = escape_percent(path);
    if !escaped.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '\\') {
        return escaped;
    }

    let quoted = escaped.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{quoted}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> SshTarget {
        SshTarget {
            host: "127.0.0.1".to_owned(),
            port: 32768,
            user: "root".to_owned(),
            identity_file: PathBuf::from("/profiles/p/keys/docker_ssh_key"),
            known_hosts_file: PathBuf::from("/profiles/p/keys/known_hosts"),
        }
    }

    /// Returns the values passed with `-o`.
    fn o_values(options: &[String]) -> Vec<&str> {
        options
            .windows(2)
            .filter(|pair| pair[0] == "-o")
            .map(|pair| pair[1].as_str())
            .collect()
    }

    #[test]
    fn destination_is_user_at_host() {
        assert_eq!(target().destination(), "root@127.0.0.1");
    }

    #[test]
    fn ssh_options_pin_our_known_hosts() {
        let options = target().ssh_options();
        let settings = o_values(&options);

        assert!(
            settings.contains(&"StrictHostKeyChecking=yes"),
            "{options:?}"
        );
        assert!(
            settings.contains(&"UserKnownHostsFile=/profiles/p/keys/known_hosts"),
            "{options:?}"
        );
        assert!(
            settings.contains(&"GlobalKnownHostsFile=/dev/null"),
            "{options:?}"
        );
        assert!(settings.contains(&"IdentitiesOnly=yes"), "{options:?}");
        assert!(settings.contains(&"IdentityAgent=none"), "{options:?}");
        assert!(settings.contains(&"BatchMode=yes"), "{options:?}");
        assert!(
            settings.contains(&"PasswordAuthentication=no"),
            "{options:?}"
        );
    }

    #[test]
    fn ssh_options_set_config_port_and_identity() {
        let options = target().ssh_options();

        assert_eq!(
            &options[..6],
            [
                "-F",
                "/dev/null",
                "-p",
                "32768",
                "-i",
                "/profiles/p/keys/docker_ssh_key"
            ]
        );
    }

    #[test]
    fn ssh_options_quote_paths_with_spaces() {
        let mut spaced = target();
        spaced.known_hosts_file = PathBuf::from("/Application Support/mngr/known_hosts");
        spaced.identity_file = PathBuf::from("/keys/100%/key");

        let options = spaced.ssh_options();

        assert!(
            o_values(&options)
                .contains(&"UserKnownHostsFile=\"/Application Support/mngr/known_hosts\""),
            "{options:?}"
        );
        assert!(
            options.contains(&"/keys/100%%/key".to_owned()),
            "{options:?}"
        );
    }

    #[test]
    fn interactive_command_ends_with_destination_and_command() {
        let command = target().interactive_command("tmux attach -t agent");

        assert_eq!(command.get_program(), "ssh");
        let args: Vec<String> = command
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        let tail = &args[args.len() - 3..];
        assert_eq!(tail, ["-t", "root@127.0.0.1", "tmux attach -t agent"]);
        assert_eq!(&args[..args.len() - 3], target().ssh_options().as_slice());
    }

    #[test]
    fn host_key_changed_maps_to_mismatch() {
        let message = "@@@@@@@@@@@@@@@@@\r\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\nHost key verification failed.";
        let err = openssh::Error::Connect(std::io::Error::other(message));

        let mapped = connect_error(&target(), &err);

        match mapped {
            SshError::HostKeyMismatch { known_hosts, .. } => {
                assert_eq!(known_hosts, target().known_hosts_file)
            }
            other => panic!("expected HostKeyMismatch, got {other:?}"),
        }
    }

    #[test]
    fn unknown_host_key_maps_to_connect() {
        let message = "No ED25519 host key is known for [127.0.0.1]:32768 and you have requested strict checking.\r\nHost key verification failed.";
        let err = openssh::Error::Connect(std::io::Error::other(message));

        let mapped = connect_error(&target(), &err);

        match mapped {
            SshError::Connect { detail, .. } => {
                assert!(detail.contains("[127.0.0.1]:32768"), "{detail}")
            }
            other => panic!("expected Connect, got {other:?}"),
        }
    }
}
