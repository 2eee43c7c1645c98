//! Waiting until sshd in a freshly started host accepts connections.
//!
//! A successful TCP connect alone proves little: Docker's port proxy accepts
//! connections before sshd inside the container listens, then closes them.
//! So readiness here means that the server sent its `SSH-` version banner.
//! This module does not authenticate or check the host key.

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::TcpStream;

use crate::error::SshError;

/// First delay between attempts, short because sshd usually sends its banner within a few hundred milliseconds.
const INITIAL_POLL_INTERVAL: Duration = Duration::from_millis(20);
const MAX_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Upper bound on one connect plus banner read.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Max bytes read while looking for the banner, since RFC 4253 lets a server send other lines first.
const MAX_PRE_BANNER_BYTES: u64 = 8 * 1024;

/// Polls `host`:`port` until the server sends an SSH banner, or returns
/// [`SshError::SshdTimeout`] once `timeout` has passed.
pub async fn wait_for_sshd(host: &str, port: u16, timeout: Duration) -> Result<(), SshError> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut poll_interval = INITIAL_POLL_INTERVAL;
    let mut attempts: u32 = 0;

    let mut last_error = String::new();
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        // After the first attempt, a deadline that has passed ends the wait with
        // the last real failure instead of an attempt with no time left.
        if attempts > 0 && remaining.is_zero() {
            let waited = started.elapsed();
            tracing::debug!(
                host,
                port,
                attempts,
                elapsed_ms = waited.as_millis() as u64,
                last_error,
                "sshd did not answer"
            );
            return Err(SshError::SshdTimeout {
                host: host.to_owned(),
                port,
                waited,
                last_error,
            });
        }

        attempts += 1;
        let attempt_timeout = remaining.min(ATTEMPT_TIMEOUT);
        last_error = match tokio::time::timeout(attempt_timeout, read_banner(host, port)).await {
            Ok(Ok(())) => {
                tracing::debug!(
                    host,
                    port,
                    attempts,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "sshd answered"
                );
                return Ok(());
            }
            Ok(Err(reason)) => reason,
            Err(_) => format!("no banner within {} ms", attempt_timeout.as_millis()),
        };

        let remaining = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(poll_interval.min(remaining)).await;
        poll_interval = (poll_interval * 3 / 2).min(MAX_POLL_INTERVAL);
    }
}

/// Connects once and reads lines until one starts with `SSH-`, returning why it failed otherwise.
async fn read_banner(host: &str, port: u16) -> Result<(), String> {
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|err| format!("connect failed: {err}"))?;
    let mut reader = BufReader::new(stream).take(MAX_PRE_BANNER_BYTES);
    let mut line = Vec::new();

    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .await
            .map_err(|err| format!("reading the banner failed: {err}"))?;
        if read == 0 {
            return Err("the connection closed before the server sent an SSH banner".to_owned());
        }
        if line.starts_with(b"SSH-") {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn succeeds_once_banner_is_sent() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                socket.write_all(b"SSH-2.0-test\r\n").await.unwrap();
            }
        });

        let result = wait_for_sshd("127.0.0.1", port, Duration::from_secs(5)).await;

        server.abort();
        assert!(result.is_ok(), "{result:?}");
    }

    #[tokio::test]
    async fn skips_lines_before_banner() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                socket
                    .write_all(b"welcome\r\nSSH-2.0-test\r\n")
                    .await
                    .unwrap();
            }
        });

        let result = wait_for_sshd("127.0.0.1", port, Duration::from_secs(5)).await;

        server.abort();
        assert!(result.is_ok(), "{result:?}");
    }

    #[tokio::test]
    async fn times_out_when_server_stays_silent() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let mut open_sockets = Vec::new();
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                open_sockets.push(socket);
            }
        });
        let started = Instant::now();

        let result = wait_for_sshd("127.0.0.1", port, Duration::from_millis(500)).await;

        server.abort();
        let elapsed = started.elapsed();
        match result {
            Err(SshError::SshdTimeout {
                host,
                port: error_port,
                ..
            }) => {
                assert_eq!(host, "127.0.0.1");
                assert_eq!(error_port, port);
            }
            other => panic!("expected SshdTimeout, got {other:?}"),
        }
        assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    }

    #[tokio::test]
    async fn times_out_when_server_closes_without_banner() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                drop(socket);
            }
        });

        let result = wait_for_sshd("127.0.0.1", port, Duration::from_millis(300)).await;

        server.abort();
        match result {
            Err(SshError::SshdTimeout { last_error, .. }) => {
                assert!(last_error.contains("closed"), "{last_error}");
            }
            other => panic!("expected SshdTimeout, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn times_out_on_closed_port() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);

        let result = wait_for_sshd("127.0.0.1", port, Duration::from_millis(300)).await;

        let err = result.unwrap_err();
        match &err {
            SshError::SshdTimeout { last_error, .. } => {
                assert!(last_error.contains("connect failed"), "{last_error}");
            }
            other => panic!("expected SshdTimeout, got {other:?}"),
        }
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );
    }
}
