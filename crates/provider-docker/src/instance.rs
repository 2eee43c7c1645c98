//! The Docker provider instance: its state, and the [`ProviderInstance`]
//! implementation that routes each operation to the module for its concern
//! (`lifecycle`, `discovery`). Operations that later work fills in return
//! `NotSupportedYet`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use host_store::HostStore;
use provider_api::{
    AgentData, AgentId, Capabilities, CreateHostRequest, Host, HostId, HostName, HostRecord,
    HostRef, HostResources, HostState, ProviderError, ProviderInstance, ProviderInstanceName,
    ProviderResult, SnapshotRecord, SshConnector, SshTarget, StopOptions,
};
use ssh_utils::KeyPair;

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
    /// Hosts as last discovered in this process, so that an operation right
    /// after a lookup (such as connecting) does not ask the daemon again.
    /// Every change to a host and every connection error drops its entry.
    host_cache: Mutex<HashMap<HostId, Host>>,
    store_id: OnceLock<String>,
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
            host_cache: Mutex::new(HashMap::new()),
            store_id: OnceLock::new(),
        }
    }

    /// The store's id, read (or created) once per process.
    pub(crate) fn store_id(&self) -> ProviderResult<String> {
        if let Some(store_id) = self.store_id.get() {
            return Ok(store_id.clone());
        }
        let store_id = self.store.store_id()?;
        Ok(self.store_id.get_or_init(|| store_id).clone())
    }

    pub(crate) fn cache_host(&self, host: &Host) {
        if let Ok(mut cache) = self.host_cache.lock() {
            cache.insert(host.id().clone(), host.clone());
        }
    }

    pub(crate) fn cached_host(&self, host_id: &HostId) -> Option<Host> {
        self.host_cache.lock().ok()?.get(host_id).cloned()
    }

    pub(crate) fn forget_host(&self, host_id: &HostId) {
        if let Ok(mut cache) = self.host_cache.lock() {
            cache.remove(host_id);
        }
    }

    /// Updates the stored record under its lock and drops the cached host.
    /// Returns `None` when no record is stored for `host_id`.
    pub(crate) fn update_record(
        &self,
        host_id: &HostId,
        update: impl FnOnce(&mut HostRecord) -> ProviderResult<()>,
    ) -> ProviderResult<Option<HostRecord>> {
        self.forget_host(host_id);
        Ok(self.store.update_host_record(host_id, update)?)
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

    pub(crate) fn ssh_target_for(&self, host: &str, port: u16) -> SshTarget {
        SshTarget {
            host: host.to_string(),
            port,
            user: "root".to_string(),
            identity_file: self.keys_dir.join(CLIENT_KEY_FILE),
            known_hosts_file: self.known_hosts_path(),
        }
    }

    /// The SSH target of a running host, or an error naming its state.
    async fn running_ssh_target(&self, host_id: &HostId) -> ProviderResult<SshTarget> {
        let host = self.get_host_cached(host_id).await?;
        let Some(endpoint) = host.ssh.clone() else {
            return Err(ProviderError::HostNotRunning {
                host: host.name().to_string(),
                state: host.state,
                hint: "it has no SSH endpoint; only a running host can be reached".to_string(),
            });
        };
        Ok(self.ssh_target_for(&endpoint.host, endpoint.port))
    }

    /// Applies `change` to the host's tags under the record lock.
    async fn change_tags(
        &self,
        host_id: &HostId,
        change: impl FnOnce(&mut BTreeMap<String, String>),
    ) -> ProviderResult<()> {
        let updated = self.update_record(host_id, |record| {
            change(&mut record.certified_host_data.user_tags);
            record.certified_host_data.updated_at = time::OffsetDateTime::now_utc();
            Ok(())
        })?;
        match updated {
            Some(_) => Ok(()),
            None => Err(ProviderError::HostNotFound {
                provider: self.name.to_string(),
                reference: host_id.to_string(),
                close_matches: Vec::new(),
            }),
        }
    }

    async fn rename_host_impl(&self, host_id: &HostId, new_name: HostName) -> ProviderResult<Host> {
        let (records, _corrupt) = self.store.list_all_host_records()?;
        if let Some(holder) = records
            .iter()
            .find(|record| record.host_name() == &new_name && record.host_id() != host_id)
        {
            return Err(ProviderError::NameInUse {
                name: new_name.to_string(),
                holder: format!("host {} of provider {}", holder.host_id(), self.name),
                hint: "choose another name".to_string(),
            });
        }
        let renamed = self.update_record(host_id, |record| {
            record.certified_host_data.host_name = new_name.clone();
            record.certified_host_data.updated_at = time::OffsetDateTime::now_utc();
            Ok(())
        })?;
        if renamed.is_none() {
            return Err(ProviderError::HostNotFound {
                provider: self.name.to_string(),
                reference: host_id.to_string(),
                close_matches: Vec::new(),
            });
        }
        // The container keeps its name and labels; only the record changes.
        self.get_host_impl(&HostRef::Id(host_id.clone())).await
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

    async fn stop_host(&self, host_id: &HostId, options: StopOptions) -> ProviderResult<()> {
        self.stop_host_impl(host_id, options).await
    }

    async fn start_host(
        &self,
        host_id: &HostId,
        snapshot_id: Option<&str>,
    ) -> ProviderResult<Host> {
        self.start_host_impl(host_id, snapshot_id).await
    }

    async fn destroy_host(&self, host_id: &HostId, delete_snapshots: bool) -> ProviderResult<()> {
        self.destroy_host_impl(host_id, delete_snapshots).await
    }

    async fn get_host(&self, host: &HostRef) -> ProviderResult<Host> {
        self.get_host_impl(host).await
    }

    async fn list_hosts(&self) -> ProviderResult<Vec<Host>> {
        self.list_hosts_impl().await
    }

    async fn list_stored_hosts(&self) -> ProviderResult<Vec<Host>> {
        let (records, _corrupt) = self.store.list_all_host_records()?;
        Ok(records
            .into_iter()
            .map(|record| {
                let state = if record.is_failed() {
                    HostState::Failed
                } else {
                    HostState::Unreachable
                };
                Host {
                    provider: self.name.clone(),
                    state,
                    record,
                    ssh: None,
                }
            })
            .collect())
    }

    async fn garbage_collect(&self, dry_run: bool) -> ProviderResult<Vec<String>> {
        self.garbage_collect_impl(dry_run).await
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
        host_id: &HostId,
        name: Option<&str>,
    ) -> ProviderResult<SnapshotRecord> {
        self.create_snapshot_impl(host_id, name).await
    }

    async fn list_snapshots(&self, host_id: &HostId) -> ProviderResult<Vec<SnapshotRecord>> {
        self.list_snapshots_impl(host_id).await
    }

    async fn delete_snapshot(&self, host_id: &HostId, snapshot_id: &str) -> ProviderResult<()> {
        self.delete_snapshot_impl(host_id, snapshot_id).await
    }

    async fn get_host_tags(&self, host_id: &HostId) -> ProviderResult<BTreeMap<String, String>> {
        let host = self.get_host_cached(host_id).await?;
        Ok(host.record.certified_host_data.user_tags)
    }

    async fn set_host_tags(
        &self,
        host_id: &HostId,
        tags: BTreeMap<String, String>,
    ) -> ProviderResult<()> {
        self.change_tags(host_id, move |current| *current = tags)
            .await
    }

    async fn add_tags_to_host(
        &self,
        host_id: &HostId,
        tags: BTreeMap<String, String>,
    ) -> ProviderResult<()> {
        self.change_tags(host_id, move |current| current.extend(tags))
            .await
    }

    async fn remove_tags_from_host(&self, host_id: &HostId, keys: &[String]) -> ProviderResult<()> {
        self.change_tags(host_id, |current| {
            for key in keys {
                current.remove(key);
            }
        })
        .await
    }

    async fn rename_host(&self, host_id: &HostId, new_name: HostName) -> ProviderResult<Host> {
        self.rename_host_impl(host_id, new_name).await
    }

    async fn ssh_target(&self, host_id: &HostId) -> ProviderResult<SshTarget> {
        self.running_ssh_target(host_id).await
    }

    async fn get_connector(&self, host_id: &HostId) -> ProviderResult<SshConnector> {
        let target = self.running_ssh_target(host_id).await?;
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
        self.forget_host(host_id);
        tracing::debug!(%host_id, "connection error; the host will be looked up again");
    }

    async fn close(&self) -> ProviderResult<()> {
        Ok(())
    }
}
