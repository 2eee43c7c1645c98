//! Stopping and starting hosts. Docker keeps a stopped container's
//! filesystem, so stop and start are native. `start --snapshot` instead
//! replaces the container with a new one from a committed snapshot image.

use bollard::query_parameters::StopContainerOptionsBuilder;
use provider_api::{
    Host, HostId, HostRef, HostState, ProviderError, ProviderResult, StopOptions, StopReason,
    PROGRESS_TARGET,
};
use time::OffsetDateTime;
use tracing::{info, Instrument};

use crate::client::status_code;
use crate::instance::DockerProviderInstance;

impl DockerProviderInstance {
    pub(crate) async fn stop_host_impl(
        &self,
        host_id: &HostId,
        options: StopOptions,
    ) -> ProviderResult<()> {
        let span = tracing::info_span!("stop_host", %host_id);
        async {
            let host = self.get_host_impl(&HostRef::Id(host_id.clone())).await?;
            self.require_container(&host, "stopped")?;
            let Some(container_id) = self.container_id_of(&host).await? else {
                return Ok(());
            };
            if options.create_snapshot {
                self.create_snapshot_impl(host_id, None).await?;
            }

            // The reason is stored first, so that a host stopped while mngr
            // runs is never mistaken for a crashed one.
            self.update_record(host_id, |record| {
                record.certified_host_data.stop_reason = Some(StopReason::Stopped);
                record.certified_host_data.updated_at = OffsetDateTime::now_utc();
                Ok(())
            })?;

            if matches!(host.state, HostState::Running | HostState::Starting) {
                info!(target: PROGRESS_TARGET, "Stopping container");
                let docker = self.client.docker().await?;
                let timeout = i32::try_from(options.timeout.as_secs()).unwrap_or(i32::MAX);
                let stop_options = StopContainerOptionsBuilder::default().t(timeout).build();
                match docker
                    .stop_container(&container_id, Some(stop_options))
                    .await
                {
                    Ok(()) => {}
                    // 304: the container had stopped already.
                    Err(error) if status_code(&error) == Some(304) => {}
                    Err(error) => return Err(self.client.error("stop the container", error)),
                }
            }
            self.forget_host(host_id);
            info!(%host_id, host_name = %host.name(), "host stopped");
            Ok(())
        }
        .instrument(span)
        .await
    }

    pub(crate) async fn start_host_impl(
        &self,
        host_id: &HostId,
        snapshot: Option<&str>,
    ) -> ProviderResult<Host> {
        let span = tracing::info_span!("start_host", %host_id);
        async {
            let host = self.get_host_impl(&HostRef::Id(host_id.clone())).await?;
            if let Some(snapshot) = snapshot {
                return self.restore_snapshot(host, snapshot).await;
            }
            if host.state == HostState::Running {
                return Ok(host);
            }
            self.require_container(&host, "started")?;
            let Some(container_id) = self.container_id_of(&host).await? else {
                return Ok(host);
            };

            let keys = self.load_keys()?;
            let mut record = host.record;
            let started = self
                .start_and_set_up(&mut record, &container_id, &keys)
                .await?;
            self.cache_host(&started);
            Ok(started)
        }
        .instrument(span)
        .await
    }

    /// Replaces the host's container with a new one created from `snapshot`,
    /// keeping the host id, name, tags and snapshots.
    async fn restore_snapshot(&self, host: Host, snapshot: &str) -> ProviderResult<Host> {
        if host.state == HostState::Failed {
            self.require_container(&host, "started")?;
        }
        let snapshot = self.resolve_snapshot(&host.record, snapshot)?;
        info!(target: PROGRESS_TARGET, "Restoring snapshot {} ({})", snapshot.name, snapshot.id);

        // The new container takes the old one's name, so the old one goes first.
        if let Some(old_container) = self.container_id_of(&host).await? {
            self.remove_container(&old_container).await?;
        }
        let config = host.record.config.clone().unwrap_or_default();
        let container_id = self
            .create_container(&host.record, &config, &snapshot.id)
            .await?;

        let keys = self.load_keys()?;
        let mut record = host.record;
        record.container_id = Some(container_id.clone());
        let result = self
            .start_and_set_up(&mut record, &container_id, &keys)
            .await;
        if result.is_err() {
            self.remove_container_quietly(&container_id).await;
        }
        let started = result?;
        info!(host_id = %started.id(), snapshot = %snapshot.id, "host restored from snapshot {}", snapshot.name);
        self.cache_host(&started);
        Ok(started)
    }

    /// The host's container id, or an error explaining why there is none.
    /// `Ok(None)` never happens for the states that reach Docker; it keeps the
    /// callers' early returns simple.
    fn require_container(&self, host: &Host, action: &str) -> ProviderResult<Option<String>> {
        let hint = match host.state {
            HostState::Failed => format!(
                "its creation failed ({}), so it cannot be {action}; remove it with `mngr destroy {}`",
                host.record.certified_host_data.failure_reason.as_deref().unwrap_or("no reason recorded"),
                host.name()
            ),
            HostState::Destroyed => format!(
                "its container is gone, so it cannot be {action}; restore it with `mngr start {} --snapshot SNAPSHOT`, or remove it with `mngr destroy {}`",
                host.name(),
                host.name()
            ),
            _ => {
                return match &host.record.container_id {
                    Some(container_id) => Ok(Some(container_id.clone())),
                    None => Err(ProviderError::HostNotRunning {
                        host: host.name().to_string(),
                        state: host.state,
                        hint: "its record names no container".to_string(),
                    }),
                }
            }
        };
        Err(ProviderError::HostNotRunning {
            host: host.name().to_string(),
            state: host.state,
            hint,
        })
    }

    /// The id of the host's container, found by its labels. The record's
    /// `container_id` is not trusted for this, because removing the wrong
    /// container would destroy another host.
    pub(crate) async fn container_id_of(&self, host: &Host) -> ProviderResult<Option<String>> {
        Ok(self
            .find_container(host.id())
            .await?
            .map(|container| container.id))
    }
}
