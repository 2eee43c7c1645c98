//! The connection to one Docker daemon, and the mapping of its errors to
//! [`ProviderError`] at the provider boundary.
//!
//! The endpoint comes from the instance's `host` setting, else `DOCKER_HOST`,
//! else the local socket. The API version is negotiated down to the daemon's on
//! first use, so older daemons are accepted.

use std::net::IpAddr;

use bollard::errors::Error as DockerError;
use bollard::Docker;
use provider_api::ProviderError;
use tokio::sync::OnceCell;

const LOCAL_SOCKET: &str = "unix:///var/run/docker.sock";

pub struct DockerClient {
    endpoint: String,
    docker: OnceCell<Docker>,
}

impl DockerClient {
    /// Picks the endpoint without connecting: `configured_host` when set, else
    /// `DOCKER_HOST`, else the local socket.
    pub fn new(configured_host: &str) -> Self {
        let endpoint = if !configured_host.is_empty() {
            configured_host.to_string()
        } else {
            std::env::var("DOCKER_HOST")
                .ok()
                .filter(|value| !value.is_empty())
                .unwrap_or_else(|| LOCAL_SOCKET.to_string())
        };
        Self {
            endpoint,
            docker: OnceCell::new(),
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The connected client, negotiating the API version on first use.
    pub async fn docker(&self) -> Result<&Docker, ProviderError> {
        self.docker
            .get_or_try_init(|| async {
                let unreachable = |error: DockerError| ProviderError::DaemonUnreachable {
                    endpoint: self.endpoint.clone(),
                    detail: describe(&error),
                };
                let docker = Docker::connect_with_host(&self.endpoint).map_err(unreachable)?;
                docker.negotiate_version().await.map_err(unreachable)
            })
            .await
    }

    /// The address mngr uses to reach ports that this daemon publishes.
    pub fn published_host(&self) -> String {
        match endpoint_host(&self.endpoint) {
            Some(host) => host,
            None => "127.0.0.1".to_string(),
        }
    }

    /// The host address that published ports bind to: loopback when the daemon
    /// runs on this machine, so only the local user can reach a host's sshd.
    pub fn publish_bind_address(&self) -> &'static str {
        let host = self.published_host();
        let is_loopback = host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|address| address.is_loopback());
        if is_loopback {
            "127.0.0.1"
        } else {
            // NOTE: on a remote daemon the port is published on every interface of
            // that machine, because mngr connects from elsewhere. sshd there still
            // accepts only mngr's key.
            "0.0.0.0"
        }
    }

    /// Maps a daemon error during `operation` to the error users see.
    pub fn error(&self, operation: &str, error: DockerError) -> ProviderError {
        if is_connection_error(&error) {
            return ProviderError::DaemonUnreachable {
                endpoint: self.endpoint.clone(),
                detail: describe(&error),
            };
        }
        ProviderError::Daemon {
            endpoint: self.endpoint.clone(),
            operation: operation.to_string(),
            detail: describe(&error),
        }
    }
}

/// The host part of a `tcp://`, `http(s)://` or `ssh://` endpoint; `None` for
/// local sockets.
fn endpoint_host(endpoint: &str) -> Option<String> {
    let rest = ["tcp://", "http://", "https://", "ssh://"]
        .iter()
        .find_map(|scheme| endpoint.strip_prefix(scheme))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let without_user = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = if let Some(bracketed) = without_user.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or(bracketed)
    } else {
        without_user.split(':').next().unwrap_or(without_user)
    };
    (!host.is_empty()).then(|| host.to_string())
}

pub fn status_code(error: &DockerError) -> Option<u16> {
    match error {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

pub fn is_not_found(error: &DockerError) -> bool {
    status_code(error) == Some(404)
}

pub fn is_conflict(error: &DockerError) -> bool {
    status_code(error) == Some(409)
}

fn is_connection_error(error: &DockerError) -> bool {
    matches!(
        error,
        DockerError::HyperLegacyError { .. }
            | DockerError::IOError { .. }
            | DockerError::SocketNotFoundError(_)
            | DockerError::RequestTimeoutError
            | DockerError::HttpClientError { .. }
    )
}

/// The daemon's own message when it sent one, else the client error, with the
/// underlying causes appended.
fn describe(error: &DockerError) -> String {
    if let DockerError::DockerResponseServerError { message, .. } = error {
        return message.clone();
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_host_parses_each_scheme() {
        assert_eq!(endpoint_host("unix:///var/run/docker.sock"), None);
        assert_eq!(
            endpoint_host("tcp://10.1.2.3:2375").as_deref(),
            Some("10.1.2.3")
        );
        assert_eq!(
            endpoint_host("ssh://me@build-box").as_deref(),
            Some("build-box")
        );
        assert_eq!(
            endpoint_host("ssh://me@build-box:2222").as_deref(),
            Some("build-box")
        );
        assert_eq!(endpoint_host("tcp://[::1]:2375").as_deref(), Some("::1"));
    }

    #[test]
    fn local_and_loopback_daemons_bind_loopback() {
        assert_eq!(
            DockerClient::new("unix:///x.sock").publish_bind_address(),
            "127.0.0.1"
        );
        assert_eq!(
            DockerClient::new("tcp://127.0.0.1:2375").publish_bind_address(),
            "127.0.0.1"
        );
        assert_eq!(
            DockerClient::new("tcp://build-box:2375").publish_bind_address(),
            "0.0.0.0"
        );
    }
}
