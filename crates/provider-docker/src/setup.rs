//! Bringing a created or stopped container up as a reachable host. mngr
//! copies the boot script in and starts the container, whose PID 1 runs the
//! script. Then it pins the host key for the published SSH port, waits for
//! sshd, and stores the SSH endpoint.
//!
//! The boot script is safe to run again on a host that was set up before,
//! which is how `start` revives a stopped host.

use std::time::{Duration, Instant};

use provider_api::{
    Host, HostRecord, HostState, IdleMode, ProviderError, ProviderResult, SshEndpoint,
    PROGRESS_TARGET,
};
use ssh_utils::host_setup::{self, ActivityWatcherSettings, HostFile, SshdLayout};
use time::OffsetDateTime;
use tracing::info;

use crate::archive;
use crate::exec::run_exec;
use crate::instance::{DockerProviderInstance, ProviderKeys};

/// How long a host may take from start until sshd sends its banner, including the
/// installation of missing packages on its first boot.
const BOOT_TIMEOUT: Duration = Duration::from_secs(600);

/// How long the boot script may take to begin, which it shows by replacing
/// the `pending` status.
const BOOT_START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long each wait for the sshd banner lasts before the boot status is
/// read again.
const BANNER_POLL: Duration = Duration::from_secs(1);

/// How many lines of a failed step's output go into errors and failed records.
pub(crate) const LOG_TAIL_LINES: usize = 30;

impl DockerProviderInstance {
    /// Installs mngr's boot script in `container_id`, starts the container
    /// (whose PID 1 runs the script), waits for sshd's banner, and stores the
    /// host's SSH endpoint in `record` (and the store).
    ///
    /// The script goes in before the start, so sshd comes up with the
    /// container instead of after a separate `docker exec`.
    pub(crate) async fn start_and_set_up(
        &self,
        record: &mut HostRecord,
        container_id: &str,
        keys: &ProviderKeys,
    ) -> ProviderResult<Host> {
        let docker = self.client.docker().await?;
        let host_dir = self.config.host_dir();
        let layout = SshdLayout::new(host_dir);
        let mut files = host_setup::host_files(
            &layout,
            &keys.client.public_key_openssh,
            &keys.host.private_key_openssh()?,
            &keys.host.public_key_openssh,
            watcher_settings(record).as_ref(),
        );
        files.push(HostFile {
            path: host_setup::boot_script_path(host_dir),
            contents: host_setup::boot_script(host_dir, &host_setup::build_boot_commands(&layout))
                .into_bytes(),
            mode: 0o700,
        });
        files.push(HostFile {
            path: host_setup::boot_status_path(host_dir),
            contents: b"pending\n".to_vec(),
            mode: 0o644,
        });
        archive::upload_files(&self.client, container_id, &files).await?;

        info!(target: PROGRESS_TARGET, "Starting container");
        // A container paused behind mngr's back cannot be started or
        // exec'd into; one that is not paused makes this a no-op error.
        let _ = docker.unpause_container(container_id).await;
        match docker.start_container(container_id, None).await {
            Ok(()) => {}
            // 304: the container runs already, so its PID 1 will not run the
            // new boot script; run it once through exec instead.
            Err(error) if crate::client::status_code(&error) == Some(304) => {
                let boot = host_setup::boot_script_path(host_dir);
                let output = run_exec(&self.client, container_id, vec!["sh".into(), boot]).await?;
                if !output.succeeded() {
                    return Err(self
                        .setup_failed(record, container_id, "the boot script failed")
                        .await);
                }
            }
            Err(error) => return Err(self.client.error("start the container", error)),
        }

        let endpoint = self.published_ssh_endpoint(container_id).await?;
        ssh_utils::add_host_to_known_hosts(
            &self.known_hosts_path(),
            &endpoint.host,
            endpoint.port,
            &keys.host.public_key_openssh,
        )?;
        info!(target: PROGRESS_TARGET, "Waiting for sshd on {}:{}", endpoint.host, endpoint.port);
        self.wait_until_booted(record, container_id, &endpoint)
            .await?;

        let set_endpoint = |stored: &mut HostRecord| {
            stored.container_id = Some(container_id.to_string());
            stored.ssh_host = Some(endpoint.host.clone());
            stored.ssh_port = Some(endpoint.port);
            stored.ssh_host_public_key = Some(keys.host.public_key_openssh.clone());
            stored.certified_host_data.stop_reason = None;
            stored.creating_pid = None;
            stored.certified_host_data.updated_at = OffsetDateTime::now_utc();
        };
        set_endpoint(record);
        match self.update_record(record.host_id(), |stored| {
            set_endpoint(stored);
            Ok(())
        })? {
            Some(stored) => *record = stored,
            None => self.store.write_host_record(record)?,
        }
        info!(host_id = %record.host_id(), ssh_port = endpoint.port, "host is running");

        Ok(Host {
            provider: self.name.clone(),
            state: HostState::Running,
            record: record.clone(),
            ssh: Some(endpoint),
        })
    }

    /// Waits until sshd sends its banner, or the boot script reports a
    /// failure, or `BOOT_TIMEOUT` passes. The timeout is long because an
    /// image without sshd gets its packages installed first.
    async fn wait_until_booted(
        &self,
        record: &HostRecord,
        container_id: &str,
        endpoint: &SshEndpoint,
    ) -> ProviderResult<()> {
        let started = Instant::now();
        let status_path = host_setup::boot_status_path(self.config.host_dir());
        let mut reported_packages = false;
        loop {
            if ssh_utils::wait_for_sshd(&endpoint.host, endpoint.port, BANNER_POLL)
                .await
                .is_ok()
            {
                return Ok(());
            }
            let status = archive::read_file(&self.client, container_id, &status_path).await;
            match status.as_deref().map(str::trim) {
                Some("failed") => {
                    return Err(self
                        .setup_failed(record, container_id, "the boot script failed")
                        .await);
                }
                Some("pending") if started.elapsed() > BOOT_START_TIMEOUT => {
                    let reason = format!(
                        "the boot script did not start within {} s of the container start",
                        BOOT_START_TIMEOUT.as_secs()
                    );
                    return Err(self.setup_failed(record, container_id, &reason).await);
                }
                _ => {}
            }
            if started.elapsed() > BOOT_TIMEOUT {
                let reason = format!("sshd did not answer within {} s", BOOT_TIMEOUT.as_secs());
                return Err(self.setup_failed(record, container_id, &reason).await);
            }
            if !reported_packages && started.elapsed() > Duration::from_secs(3) {
                info!(
                    target: PROGRESS_TARGET,
                    "Waiting for the host to boot; missing packages (openssh-server, tmux, curl, rsync, git, jq) are installed first"
                );
                reported_packages = true;
            }
        }
    }

    /// The setup error for `record`, with the end of the boot log.
    async fn setup_failed(
        &self,
        record: &HostRecord,
        container_id: &str,
        reason: &str,
    ) -> ProviderError {
        let log_path = host_setup::boot_log_path(self.config.host_dir());
        let log = archive::read_file(&self.client, container_id, &log_path)
            .await
            .unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
        ProviderError::HostSetupFailed {
            host: record.host_name().to_string(),
            step: "booting the host (packages, sshd, activity watcher)",
            detail: format!("{reason}; the last lines of {log_path}:\n{tail}"),
        }
    }

    /// Reads the host port that Docker published for the container's port 22.
    pub(crate) async fn published_ssh_endpoint(
        &self,
        container_id: &str,
    ) -> ProviderResult<SshEndpoint> {
        let docker = self.client.docker().await?;
        let inspected = docker
            .inspect_container(container_id, None)
            .await
            .map_err(|error| self.client.error("inspect the container", error))?;
        let port = inspected
            .network_settings
            .and_then(|settings| settings.ports)
            .and_then(|ports| ports.get("22/tcp").cloned().flatten())
            .and_then(|bindings| {
                bindings
                    .into_iter()
                    .find_map(|binding| binding.host_port?.parse::<u16>().ok())
            });
        match port {
            Some(port) => Ok(SshEndpoint {
                host: self.client.published_host(),
                port,
            }),
            None => Err(ProviderError::Daemon {
                endpoint: self.client.endpoint().to_string(),
                operation: "publish the container's SSH port".to_string(),
                detail: "port 22/tcp has no host port binding".to_string(),
            }),
        }
    }
}

/// The watcher settings of a host, or `None` when its idle mode is disabled.
fn watcher_settings(record: &HostRecord) -> Option<ActivityWatcherSettings> {
    let data = &record.certified_host_data;
    if data.idle_mode == IdleMode::Disabled {
        return None;
    }
    let sources = data.idle_mode.activity_sources(&data.activity_sources);
    Some(ActivityWatcherSettings {
        idle_timeout_seconds: data.idle_timeout_seconds,
        activity_sources: sources
            .iter()
            .map(|source| source.as_str().to_string())
            .collect(),
        created_at_epoch: data.created_at.unix_timestamp(),
    })
}
