//! The error type shared by every module of this crate.
//!
//! Each variant carries the path, host or command involved, so that the
//! message alone states what failed and what to do next. Errors from
//! other crates are kept as sources or flattened into `detail` strings. This
//! module does not decide which errors are retryable.

use std::path::PathBuf;
use std::time::Duration;

/// An error from key management, `known_hosts` editing or an SSH connection.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// A local file operation failed.
    #[error("failed to {action} {}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// A key file exists but does not contain a usable unencrypted key.
    #[error(
        "invalid SSH key in {}: {detail}; delete the file (and its .pub file) so that mngr generates a new key",
        path.display()
    )]
    InvalidKey { path: PathBuf, detail: String },

    /// sshd did not send its banner before the deadline.
    #[error(
        "sshd at {host}:{port} did not answer within {} s (last error: {last_error}); check that sshd is running in the host and that the port is reachable",
        waited.as_secs_f64().round()
    )]
    SshdTimeout {
        host: String,
        port: u16,
        waited: Duration,
        last_error: String,
    },

    /// The host presented a key that differs from the one pinned in `known_hosts`.
    #[error(
        "the host key of {destination} differs from the key pinned in {}; refusing to connect. If the host was recreated, remove its entry from that file and set the host up again",
        known_hosts.display()
    )]
    HostKeyMismatch {
        destination: String,
        known_hosts: PathBuf,
    },

    /// Opening the SSH master connection failed for a reason other than the host key.
    #[error("failed to connect to {destination} over SSH: {detail}")]
    Connect { destination: String, detail: String },

    /// Starting or waiting for a remote command failed (not a non-zero exit code).
    #[error("failed to run remote command `{command}`: {detail}")]
    Command { command: String, detail: String },
}

impl SshError {
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: &'static str,
        source: std::io::Error,
    ) -> Self {
        SshError::Io {
            path: path.into(),
            action,
            source,
        }
    }
}
