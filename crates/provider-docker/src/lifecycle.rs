//! Creating and destroying hosts.
//!
//! `create_host_impl` follows the provider's numbered steps: parse the build
//! arguments, make the image available, create the container, set up SSH
//! through `docker exec`, and store the host record. A failure after the
//! inputs were accepted removes the container and stores a failed host record,
//! so `mngr list` can show what happened.

use bollard::models::{ContainerCreateBody, DeviceRequest, HostConfig, PortBinding};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use provider_api::{
    CertifiedHostData, ContainerConfig, CreateHostRequest, Host, HostId, HostRecord, HostRef,
    ProviderError, ProviderResult, PROGRESS_TARGET,
};
use std::collections::HashMap;
use std::path::Path;
use time::OffsetDateTime;
use tracing::{info, warn, Instrument};

use ssh_utils::host_setup;

use crate::build_args::{parse_build_args, parse_port_spec};
use crate::client::{is_conflict, is_not_found};
use crate::image::{build_image, ensure_image, PullPolicy};
use crate::instance::{DockerProviderInstance, ProviderKeys};
use crate::labels::{build_container_labels, build_image_labels};

impl DockerProviderInstance {
    pub(crate) async fn create_host_impl(
        &self,
        request: CreateHostRequest,
    ) -> ProviderResult<Host> {
        let host_id = HostId::generate();
        let span = tracing::info_span!("create_host", %host_id, host_name = %request.name);
        async {
            let build_args = parse_build_args(&request.build_args, &self.config)?;
            let config = build_args.config;
            let image = match &config.dockerfile {
                Some(_) => build_image_tag(&host_id),
                None => config
                    .image
                    .clone()
                    .unwrap_or_else(|| self.config.default_image().to_string()),
            };
            // An unreachable daemon fails here, before any record is written.
            self.client.docker().await?;
            self.check_name_free(&request).await?;
            let keys = self.load_keys()?;
            let mut record = self.initial_record(&host_id, &request, &config, &image);

            match self
                .build_host(&mut record, &config, &image, build_args.pull, &keys)
                .await
            {
                Ok(host) => Ok(host),
                // A clash found by the daemon changes nothing, like one found by the store.
                Err(error @ ProviderError::NameInUse { .. }) => Err(error),
                Err(error) => {
                    self.record_failure(record, &error).await;
                    Err(error)
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Rejects a name that a stored host of this instance already has. A
    /// failed host with no container gives its name up: its record is
    /// removed, so fixing a typo and running the same create again works.
    async fn check_name_free(&self, request: &CreateHostRequest) -> ProviderResult<()> {
        let (records, _corrupt) = self.store.list_all_host_records()?;
        for existing in records
            .iter()
            .filter(|record| record.host_name() == &request.name)
        {
            let container = self.find_container(existing.host_id()).await?;
            if existing.is_failed() && container.is_none() {
                info!(host_id = %existing.host_id(), "replacing the failed host record of {}", request.name);
                self.store.delete_host_record(existing.host_id())?;
                continue;
            }
            return Err(ProviderError::NameInUse {
                name: request.name.to_string(),
                holder: format!("host {} of provider {}", existing.host_id(), self.name),
                hint: format!(
                    "choose another name, or remove that host first with `mngr destroy {}`",
                    request.name
                ),
            });
        }
        Ok(())
    }

    fn initial_record(
        &self,
        host_id: &HostId,
        request: &CreateHostRequest,
        config: &ContainerConfig,
        image: &str,
    ) -> HostRecord {
        let mut data = CertifiedHostData::new(host_id.clone(), request.name.clone());
        data.image = Some(image.to_string());
        data.user_tags = request.tags.clone();
        data.idle_timeout_seconds = request
            .idle_timeout
            .map_or(self.config.default_idle_timeout, |timeout| {
                timeout.as_secs()
            });
        data.idle_mode = request.idle_mode.unwrap_or(self.config.default_idle_mode);
        data.activity_sources = request
            .activity_sources
            .clone()
            .unwrap_or_else(|| self.config.default_activity_sources.clone());
        let mut record = HostRecord::new(data);
        record.config = Some(config.clone());
        record.creating_pid = Some(std::process::id());
        record
    }

    /// Steps 3 to 6 of creation; `record` gains the container id and SSH
    /// endpoint as they become known.
    async fn build_host(
        &self,
        record: &mut HostRecord,
        config: &ContainerConfig,
        image: &str,
        pull: PullPolicy,
        keys: &ProviderKeys,
    ) -> ProviderResult<Host> {
        match &config.dockerfile {
            Some(dockerfile) => {
                let dockerfile = Path::new(dockerfile);
                let context_dir = match &config.context_dir {
                    Some(context_dir) => Path::new(context_dir),
                    None => dockerfile.parent().unwrap_or(Path::new("/")),
                };
                let labels = build_image_labels(&self.store_id()?);
                build_image(&self.client, dockerfile, context_dir, image, &labels).await?;
            }
            None => ensure_image(&self.client, image, pull).await?,
        }

        // Stored before the container exists, so a create killed at any later
        // point leaves a record naming its process, which discovery reports as
        // an interrupted creation once that process is gone.
        self.store.write_host_record(record)?;
        let container_id = match self.create_container(record, config, image).await {
            Ok(container_id) => container_id,
            Err(error @ ProviderError::NameInUse { .. }) => {
                // A clash changes nothing, so the record goes again.
                self.store.delete_host_record(record.host_id())?;
                return Err(error);
            }
            Err(error) => return Err(error),
        };
        record.container_id = Some(container_id.clone());
        self.store.write_host_record(record)?;

        let result = self.start_and_set_up(record, &container_id, keys).await;
        if result.is_err() {
            self.remove_container_quietly(&container_id).await;
        }
        result
    }

    pub(crate) async fn create_container(
        &self,
        record: &HostRecord,
        config: &ContainerConfig,
        image: &str,
    ) -> ProviderResult<String> {
        let docker = self.client.docker().await?;
        let container_name = Self::container_name(record.host_name());
        info!(target: PROGRESS_TARGET, "Creating container {container_name} from {image}");

        let options = CreateContainerOptionsBuilder::default()
            .name(&container_name)
            .build();
        let body = self.container_body(record, config, image)?;
        match docker.create_container(Some(options), body).await {
            Ok(created) => Ok(created.id),
            Err(error) if is_conflict(&error) => Err(ProviderError::NameInUse {
                name: record.host_name().to_string(),
                holder: format!("the existing container {container_name}"),
                hint: format!(
                    "choose another name; if {container_name} is left from an earlier host, remove it with `docker rm -f {container_name}`"
                ),
            }),
            Err(error) => Err(self
                .client
                .error(&format!("create container {container_name}"), error)),
        }
    }

    fn container_body(
        &self,
        record: &HostRecord,
        config: &ContainerConfig,
        image: &str,
    ) -> ProviderResult<ContainerCreateBody> {
        let bind_address = self.client.publish_bind_address();
        let mut port_bindings = HashMap::from([(
            "22/tcp".to_string(),
            Some(vec![PortBinding {
                host_ip: Some(bind_address.to_string()),
                host_port: Some(String::new()),
            }]),
        )]);
        let mut exposed_ports = vec!["22/tcp".to_string()];
        for port in &config.ports {
            let spec =
                parse_port_spec(port).map_err(|reason| ProviderError::InvalidBuildArgument {
                    argument: format!("--port={port}"),
                    reason,
                })?;
            let key = format!("{}/{}", spec.container_port, spec.protocol);
            exposed_ports.push(key.clone());
            port_bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: Some(spec.host_ip.unwrap_or_else(|| bind_address.to_string())),
                    host_port: Some(spec.host_port.to_string()),
                });
        }

        let device_requests = config.gpu.as_ref().map(|gpu| vec![gpu_device_request(gpu)]);
        let extra_hosts: Vec<String> = self
            .config
            .extra_hosts
            .iter()
            .map(|(name, address)| format!("{name}:{address}"))
            .collect();

        Ok(ContainerCreateBody {
            image: Some(image.to_string()),
            entrypoint: Some(host_setup::container_entrypoint(self.config.host_dir()).to_vec()),
            cmd: Some(Vec::new()),
            labels: Some(build_container_labels(
                record.host_id(),
                record.host_name(),
                &self.name,
                &self.store_id()?,
            )),
            exposed_ports: Some(exposed_ports),
            host_config: Some(HostConfig {
                port_bindings: Some(port_bindings),
                nano_cpus: Some((config.cpu * 1e9) as i64),
                memory: Some((config.memory * 1024.0 * 1024.0 * 1024.0) as i64),
                network_mode: config.network.clone(),
                binds: (!config.volumes.is_empty()).then(|| config.volumes.clone()),
                extra_hosts: (!extra_hosts.is_empty()).then_some(extra_hosts),
                device_requests,
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    /// Stores the failed host record; the error is the caller's to return.
    async fn record_failure(&self, mut record: HostRecord, error: &ProviderError) {
        let message = error.to_string();
        record.certified_host_data.failure_reason = Some(first_line(&message));
        record.certified_host_data.build_log = Some(message);
        record.certified_host_data.updated_at = OffsetDateTime::now_utc();
        if let Err(store_error) = self.store.write_host_record(&record) {
            warn!(host_id = %record.host_id(), error = %store_error, "failed to store the failed host record");
        }
    }

    pub(crate) async fn remove_container_quietly(&self, container_id: &str) {
        if let Err(error) = self.remove_container(container_id).await {
            warn!(container = container_id, %error, "failed to remove the container of a failed host");
        }
    }

    /// Removes a container whatever its state; one that is already gone is fine.
    pub(crate) async fn remove_container(&self, container_id: &str) -> ProviderResult<()> {
        let docker = self.client.docker().await?;
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match docker.remove_container(container_id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(error) if is_not_found(&error) => Ok(()),
            Err(error) => Err(self.client.error("remove the container", error)),
        }
    }

    pub(crate) async fn destroy_host_impl(
        &self,
        host_id: &HostId,
        delete_snapshots: bool,
    ) -> ProviderResult<()> {
        let span = tracing::info_span!("destroy_host", %host_id);
        async {
            let host = self.get_host_impl(&HostRef::Id(host_id.clone())).await?;
            // Destroying discards the container's filesystem, so a graceful stop
            // would only add its timeout: removing with force ends the host's
            // processes the same way and at once.
            if let Some(container_id) = self.container_id_of(&host).await? {
                info!(target: PROGRESS_TARGET, "Removing container");
                self.remove_container(&container_id).await?;
            }
            if host
                .record
                .config
                .as_ref()
                .is_some_and(|config| config.dockerfile.is_some())
            {
                self.remove_build_image(host_id).await;
            }
            if delete_snapshots {
                for snapshot in &host.record.certified_host_data.snapshots {
                    info!(target: PROGRESS_TARGET, "Deleting snapshot {}", snapshot.name);
                    self.remove_snapshot_image(snapshot).await?;
                }
            }

            if let (Some(ssh_host), Some(ssh_port)) = (&host.record.ssh_host, host.record.ssh_port)
            {
                ssh_utils::remove_host_from_known_hosts(
                    &self.known_hosts_path(),
                    ssh_host,
                    ssh_port,
                )?;
            }
            self.store.delete_host_record(host_id)?;
            self.forget_host(host_id);
            info!(%host_id, host_name = %host.name(), "host destroyed");
            Ok(())
        }
        .instrument(span)
        .await
    }
}

/// The repository of images built for hosts from their Dockerfiles.
pub(crate) const BUILD_REPOSITORY: &str = "mngr-build";

/// The tag of the image built for a host from its Dockerfile.
pub(crate) fn build_image_tag(host_id: &HostId) -> String {
    format!("{BUILD_REPOSITORY}:{host_id}")
}

impl DockerProviderInstance {
    /// Removes the tag of the image built for the host; the image itself goes
    /// with it unless another tag or container still uses it.
    async fn remove_build_image(&self, host_id: &HostId) {
        let Ok(docker) = self.client.docker().await else {
            return;
        };
        let tag = build_image_tag(host_id);
        match docker
            .remove_image(
                &tag,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await
        {
            Ok(_) => {}
            Err(error) if is_not_found(&error) || is_conflict(&error) => {}
            Err(error) => {
                warn!(%host_id, image = tag, %error, "failed to remove the host's built image")
            }
        }
    }
}

/// A device request for `gpu`: `all` or `nvidia` asks for every GPU, anything
/// else names device ids.
fn gpu_device_request(gpu: &str) -> DeviceRequest {
    // Limitation: the request is passed through unchecked; a daemon without the
    // NVIDIA runtime rejects it when the container starts.
    let (count, device_ids) = match gpu {
        "all" | "nvidia" => (Some(-1), None),
        ids => (None, Some(ids.split(',').map(str::to_string).collect())),
    };
    DeviceRequest {
        driver: Some("nvidia".to_string()),
        count,
        device_ids,
        capabilities: Some(vec![vec!["gpu".to_string()]]),
        ..Default::default()
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or(text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_all_requests_every_device() {
        let request = gpu_device_request("all");
        assert_eq!(request.driver.as_deref(), Some("nvidia"));
        assert_eq!(request.count, Some(-1));
        assert_eq!(request.device_ids, None);
        assert_eq!(request.capabilities, Some(vec![vec!["gpu".to_string()]]));
    }

    #[test]
    fn gpu_ids_request_those_devices() {
        let request = gpu_device_request("0,2");
        assert_eq!(request.count, None);
        assert_eq!(
            request.device_ids,
            Some(vec!["0".to_string(), "2".to_string()])
        );
    }
}
