//! The Docker provider instance: its state, and the [`ProviderInstance`]
//! implementation that routes each operation to the module for its concern
//! (`lifecycle`, `discovery`). Operations that later work fills in return
//! `NotSupportedYet`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use host_store::HostStore;
use provider_api::{
    AgentData, AgentId, Capabilities, CreateHostRequest, Host, HostId, HostName, HostRef,
    HostResources, ProviderError, ProviderInstance, ProviderInstanceName, ProviderResult,
    SnapshotRecord, SshConnector, StopOptions,
};
use ssh_utils::{KeyPair, SshTarget};

use crate::client::DockerClient;
use crate::config::DockerProviderConfig;

pub const CLIENT_KEY_FILE: &str = "docker_ssh_key";
pub const HOST_KEY_FILE: &str = "host_key";
pub const KNOWN_HOSTS_FILE: &str = "known_hosts";

/// How long an SSH master connection may take to open.
const SSH_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

pub struct DockerProviderInstance {
    pub(crate) name: ProviderInstanceName,
    pub(crate) config: DockerProviderConfig,
    pub(crate) client: DockerClient,
    pub(crate) store: HostStore,
    pub(crate) keys_dir: PathBuf,
}

/// The client keypair that logs in to hosts and the host keypair every host's
/// sshd presents.
pub(crate) struct ProviderKeys {
    pub client: KeyPair,
    pub host: KeyPair,
}

impl DockerProviderInstance {
    pub fn new(
        name: ProviderInstanceName,
        config: DockerProviderConfig,
        instance_dir: PathBuf,
    ) -> Self {
        Self {
            client: DockerClient::new(&config.host),
            store: HostStore::new(instance_dir.clone()),
            keys_dir: instance_dir.join("keys"),
            name,
            config,
        }
    }

    pub(crate) fn container_name(host_name: &HostName) -> String {
        format!("mngr-{host_name}")
    }

    pub(crate) fn known_hosts_path(&self) -> PathBuf {
        self.keys_dir.join(KNOWN_HOSTS_FILE)
    }

    pub(crate) fn load_keys(&self) -> ProviderResult<ProviderKeys> {
        Ok(ProviderKeys {
            client: ssh_utils::load_or_create_client_keypair(&self.keys_dir, CLIENT_KEY_FILE)?,
            host: ssh_utils::load_or_create_host_keypair(&self.keys_dir, HOST_KEY_FILE)?,
        })
    }

    pub(crate) fn ssh_target(&self, host: &str, port: u16) -> SshTarget {
        SshTarget {
            host: host.to_string(),
            port,
            user: "root".to_string(),
            identity_file: self.keys_dir.join(CLIENT_KEY_FILE),
            known_hosts_file: self.known_hosts_path(),
        }
    }

    fn not_supported_yet(&self, operation: &'static str) -> ProviderError {
        ProviderError::NotSupportedYet {
            provider: self.name.to_string(),
            operation,
        }
    }
}

#[async_trait]
impl ProviderInstance for DockerProviderInstance {
    fn name(&self) -> &ProviderInstanceName {
        &self.name
    }

    fn backend_name(&self) -> &'static str {
        crate::BACKEND_NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            supports_snapshots: true,
            supports_shutdown_hosts: true,
            supports_volumes: false,
            // Tags live in the host record, not in the immutable container labels.
            supports_mutable_tags: true,
        }
    }

    async fn create_host(&self, request: CreateHostRequest) -> ProviderResult<Host> {
        self.create_host_impl(request).await
    }

    async fn stop_host(&self, _host_id: &HostId, _options: StopOptions) -> ProviderResult<()> {
        Err(self.not_supported_yet("stopping a host"))
    }

    async fn start_host(
        &self,
        _host_id: &HostId,
        _snapshot_id: Option<&str>,
    ) -> ProviderResult<Host> {
        Err(self.not_supported_yet("starting a host"))
    }

    async fn destroy_host(&self, host_id: &HostId, delete_snapshots: bool) -> ProviderResult<()> {
        if delete_snapshots {
            return Err(self.not_supported_yet("deleting snapshots"));
        }
        self.destroy_host_impl(host_id).await
    }

    async fn get_host(&self, host: &HostRef) -> ProviderResult<Host> {
        self.get_host_impl(host).await
    }

    async fn list_hosts(&self) -> ProviderResult<Vec<Host>> {
        self.list_hosts_impl().await
    }

    async fn get_host_resources(&self, host_id: &HostId) -> ProviderResult<HostResources> {
        let host = self.get_host_impl(&HostRef::Id(host_id.clone())).await?;
        let config = host.record.config.unwrap_or_default();
        Ok(HostResources {
            cpu: config.cpu,
            memory_gb: config.memory,
            gpu: config.gpu,
        })
    }

    async fn create_snapshot(
        &self,
        _host_id: &HostId,
        _name: Option<&str>,
    ) -> ProviderResult<SnapshotRecord> {
        Err(self.not_supported_yet("creating a snapshot"))
    }

    async fn list_snapshots(&self, _host_id: &HostId) -> ProviderResult<Vec<SnapshotRecord>> {
        Err(self.not_supported_yet("listing snapshots"))
    }

    async fn delete_snapshot(&self, _host_id: &HostId, _snapshot_id: &str) -> ProviderResult<()> {
        Err(self.not_supported_yet("deleting a snapshot"))
    }

    async fn get_host_tags(&self, host_id: &HostId) -> ProviderResult<BTreeMap<String, String>> {
        let host = self.get_host_impl(&HostRef::Id(host_id.clone())).await?;
        Ok(host.record.certified_host_data.user_tags)
    }

    async fn set_host_tags(
        &self,
        _host_id: &HostId,
        _tags: BTreeMap<String, String>,
    ) -> ProviderResult<()> {
        Err(self.not_supported_yet("changing tags"))
    }

    async fn add_tags_to_host(
        &self,
        _host_id: &HostId,
        _tags: BTreeMap<String, String>,
    ) -> ProviderResult<()> {
        Err(self.not_supported_yet("changing tags"))
    }

    async fn remove_tags_from_host(
        &self,
        _host_id: &HostId,
        _keys: &[String],
    ) -> ProviderResult<()> {
        Err(self.not_supported_yet("changing tags"))
    }

    async fn rename_host(&self, _host_id: &HostId, _new_name: HostName) -> ProviderResult<Host> {
        Err(self.not_supported_yet("renaming a host"))
    }

    async fn get_connector(&self, host_id: &HostId) -> ProviderResult<SshConnector> {
        let host = self.get_host_impl(&HostRef::Id(host_id.clone())).await?;
        let Some(endpoint) = host.ssh.clone() else {
            return Err(ProviderError::HostNotRunning {
                host: host.name().to_string(),
                state: host.state,
                hint: "it has no SSH endpoint; only a running host can be reached".to_string(),
            });
        };
        let target = self.ssh_target(&endpoint.host, endpoint.port);
        match SshConnector::connect(target, SSH_CONNECT_TIMEOUT).await {
            Ok(connector) => Ok(connector),
            Err(error) => {
                self.on_connection_error(host_id).await;
                Err(error.into())
            }
        }
    }

    async fn list_persisted_agent_data_for_host(
        &self,
        host_id: &HostId,
    ) -> ProviderResult<Vec<AgentData>> {
        Ok(self.store.list_persisted_agent_data_for_host(host_id)?)
    }

    async fn persist_agent_data(&self, host_id: &HostId, agent: &AgentData) -> ProviderResult<()> {
        Ok(self.store.persist_agent_data(host_id, agent)?)
    }

    async fn remove_persisted_agent_data(
        &self,
        host_id: &HostId,
        agent_id: &AgentId,
    ) -> ProviderResult<()> {
        Ok(self.store.remove_persisted_agent_data(host_id, agent_id)?)
    }

    async fn on_connection_error(&self, host_id: &HostId) {
        // Every lookup reads the record and the container afresh, so there is no
        // per-host cache to drop yet; this only leaves a trace for debugging.
        tracing::debug!(%host_id, "connection error; host state will be looked up again");
    }

    async fn close(&self) -> ProviderResult<()> {
        Ok(())
    }
}
