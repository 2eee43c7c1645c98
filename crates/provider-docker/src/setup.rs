//! Bringing a created or stopped container up as a reachable host: start it,
//! run the setup script through `docker exec`, pin the host key for the
//! published SSH port, wait for sshd, and store the SSH endpoint.
//!
//! Everything here is safe to run again on a host that was set up before,
//! which is how `start` revives a stopped host.

use std::time::Duration;

use provider_api::{
    Host, HostRecord, HostState, IdleMode, ProviderError, ProviderResult, SshEndpoint,
    PROGRESS_TARGET,
};
use ssh_utils::host_setup::{self, ActivityWatcherSettings, SshdLayout};
use time::OffsetDateTime;
use tracing::info;

use crate::exec::run_exec;
use crate::instance::{DockerProviderInstance, ProviderKeys};

/// How long sshd may take to answer after it was started.
const SSHD_TIMEOUT: Duration = Duration::from_secs(30);

/// How many lines of a failed step's output go into errors and failed records.
pub(crate) const LOG_TAIL_LINES: usize = 30;

impl DockerProviderInstance {
    /// Starts `container_id` unless it runs already, sets it up, and stores
    /// the host's SSH endpoint in `record` (and the store).
    pub(crate) async fn start_and_set_up(
        &self,
        record: &mut HostRecord,
        container_id: &str,
        keys: &ProviderKeys,
    ) -> ProviderResult<Host> {
        let docker = self.client.docker().await?;
        info!(target: PROGRESS_TARGET, "Starting container");
        // A container paused behind mngr's back cannot be started or
        // exec'd into; one that is not paused makes this a no-op error.
        let _ = docker.unpause_container(container_id).await;
        match docker.start_container(container_id, None).await {
            Ok(()) => {}
            // 304: the container runs already.
            Err(error) if crate::client::status_code(&error) == Some(304) => {}
            Err(error) => return Err(self.client.error("start the container", error)),
        }

        info!(target: PROGRESS_TARGET, "Setting up sshd in the container");
        self.run_setup_script(record, container_id, keys).await?;

        let endpoint = self.published_ssh_endpoint(container_id).await?;
        ssh_utils::add_host_to_known_hosts(
            &self.known_hosts_path(),
            &endpoint.host,
            endpoint.port,
            &keys.host.public_key_openssh,
        )?;

        info!(target: PROGRESS_TARGET, "Waiting for sshd on {}:{}", endpoint.host, endpoint.port);
        ssh_utils::wait_for_sshd(&endpoint.host, endpoint.port, SSHD_TIMEOUT).await?;

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

    /// Installs missing packages, mngr's sshd configuration and keys, and the
    /// shutdown script, starts sshd and the activity watcher: one `docker exec`.
    async fn run_setup_script(
        &self,
        record: &HostRecord,
        container_id: &str,
        keys: &ProviderKeys,
    ) -> ProviderResult<()> {
        let host_dir = self.config.host_dir();
        let layout = SshdLayout::new(host_dir);
        let script = [
            "set -e".to_string(),
            host_setup::build_check_and_install_packages_command(),
            host_setup::build_configure_ssh_command(
                &layout,
                &keys.client.public_key_openssh,
                &keys.host.private_key_openssh()?,
                &keys.host.public_key_openssh,
            ),
            host_setup::build_write_file_command(
                &layout.shutdown_script_path(),
                &host_setup::shutdown_script(host_dir),
                "755",
            ),
            host_setup::build_clear_stop_reason_command(host_dir),
            host_setup::build_add_known_hosts_command(&[]),
            host_setup::build_start_sshd_command(&layout),
            host_setup::build_start_activity_watcher_command(
                host_dir,
                watcher_settings(record).as_ref(),
            ),
        ]
        .join("\n");

        let output = run_exec(
            &self.client,
            container_id,
            vec!["sh".into(), "-c".into(), script],
        )
        .await?;
        if !output.succeeded() {
            return Err(ProviderError::HostSetupFailed {
                host: record.host_name().to_string(),
                step: "installing packages and starting sshd",
                detail: format!(
                    "the setup command exited with {}; its last output lines:\n{}",
                    output
                        .exit_code
                        .map_or_else(|| "no exit code".to_string(), |code| format!("code {code}")),
                    output.tail(LOG_TAIL_LINES)
                ),
            });
        }
        Ok(())
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
