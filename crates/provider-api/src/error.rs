//! The one error type every provider returns.
//!
//! Each variant carries what a user needs to act: the value that was wrong and,
//! in its message, the next step. Backends map their client library's errors to
//! these variants at their boundary.

use std::path::PathBuf;

use crate::ids::InvalidIdentifier;
use crate::records::HostState;

pub type ProviderResult<T> = Result<T, ProviderError>;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("{operation} is not supported yet by the {provider} provider")]
    NotSupportedYet {
        provider: String,
        operation: &'static str,
    },

    #[error(
        "host {reference:?} not found in provider {provider}{}",
        suggest(close_matches)
    )]
    HostNotFound {
        provider: String,
        reference: String,
        close_matches: Vec<String>,
    },

    #[error("the name {name:?} is already in use by {holder}; {hint}")]
    NameInUse {
        name: String,
        holder: String,
        hint: String,
    },

    #[error("snapshot {reference:?} of host {host} not found; {available}")]
    SnapshotNotFound {
        host: String,
        reference: String,
        /// The host's snapshots, or a note that it has none.
        available: String,
    },

    #[error(
        "cannot connect to the Docker daemon at {endpoint}: {detail}. Start Docker there, or point DOCKER_HOST (or the provider's `host` setting) at a running daemon"
    )]
    DaemonUnreachable { endpoint: String, detail: String },

    #[error("image {image:?} not found: {detail}. {hint}")]
    ImageNotFound {
        image: String,
        detail: String,
        hint: String,
    },

    #[error("building an image from {dockerfile} failed: {detail}\n--- last lines of the build log ---\n{log_tail}")]
    ImageBuildFailed {
        dockerfile: String,
        detail: String,
        log_tail: String,
    },

    #[error("invalid build argument {argument:?}: {reason}. Run `mngr providers` to see the accepted build arguments")]
    InvalidBuildArgument { argument: String, reason: String },

    #[error(transparent)]
    InvalidIdentifier(#[from] InvalidIdentifier),

    #[error("invalid configuration in {}: {key}: {detail}", path.display())]
    InvalidConfig {
        path: PathBuf,
        key: String,
        detail: String,
    },

    #[error("setting up host {host} failed while {step}: {detail}")]
    HostSetupFailed {
        host: String,
        step: &'static str,
        detail: String,
    },

    #[error("host {host} is {state}; {hint}")]
    HostNotRunning {
        host: String,
        state: HostState,
        hint: String,
    },

    #[error(transparent)]
    Ssh(#[from] ssh_utils::SshError),

    #[error("host record store: {detail} ({})", path.display())]
    Store { path: PathBuf, detail: String },

    #[error("the Docker daemon at {endpoint} failed to {operation}: {detail}")]
    Daemon {
        endpoint: String,
        operation: String,
        detail: String,
    },
}

fn suggest(close_matches: &[String]) -> String {
    if close_matches.is_empty() {
        "; run `mngr list` to see existing hosts".to_string()
    } else {
        format!("; did you mean {}?", close_matches.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_not_found_names_close_matches() {
        let error = ProviderError::HostNotFound {
            provider: "docker".into(),
            reference: "agnet".into(),
            close_matches: vec!["agent".into()],
        };
        assert_eq!(
            error.to_string(),
            "host \"agnet\" not found in provider docker; did you mean agent?"
        );
    }
}
