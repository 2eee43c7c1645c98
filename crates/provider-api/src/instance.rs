//! The provider instance trait: everything mngr does to hosts goes through it.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use ssh_utils::{SshConnector, SshTarget};

use crate::error::ProviderResult;
use crate::ids::{AgentId, HostId, HostName, ProviderInstanceName};
use crate::records::{
    ActivitySource, AgentData, HostRecord, HostResources, HostState, IdleMode, SnapshotRecord,
    StopReason,
};

/// The features an instance of a backend supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub supports_snapshots: bool,
    /// Hosts can be stopped and started again without losing their filesystem.
    pub supports_shutdown_hosts: bool,
    pub supports_volumes: bool,
    /// Tags can change after creation.
    pub supports_mutable_tags: bool,
}

/// Names a host either by id or by its logical name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRef {
    Id(HostId),
    Name(HostName),
}

impl std::fmt::Display for HostRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostRef::Id(id) => id.fmt(f),
            HostRef::Name(name) => name.fmt(f),
        }
    }
}

/// The address of a host's sshd, as seen from the machine running mngr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshEndpoint {
    pub host: String,
    pub port: u16,
}

/// A host as discovery reports it now: its stored record merged with the live
/// container state.
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    pub provider: ProviderInstanceName,
    pub state: HostState,
    pub record: HostRecord,
    /// Set when the host is running and its SSH port is published.
    pub ssh: Option<SshEndpoint>,
}

impl Host {
    pub fn id(&self) -> &HostId {
        self.record.host_id()
    }

    pub fn name(&self) -> &HostName {
        self.record.host_name()
    }

    pub fn stop_reason(&self) -> Option<StopReason> {
        self.record.certified_host_data.stop_reason
    }
}

/// Everything `create_host` needs besides the instance's own configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateHostRequest {
    pub name: HostName,
    /// Backend-specific build arguments, one token each (`--image=debian:bookworm-slim`).
    pub build_args: Vec<String>,
    /// Overrides the instance's default idle timeout.
    pub idle_timeout: Option<Duration>,
    /// Overrides the instance's default idle mode.
    pub idle_mode: Option<IdleMode>,
    pub activity_sources: Option<Vec<ActivitySource>>,
    pub tags: BTreeMap<String, String>,
}

impl CreateHostRequest {
    pub fn new(name: HostName) -> Self {
        Self {
            name,
            build_args: Vec::new(),
            idle_timeout: None,
            idle_mode: None,
            activity_sources: None,
            tags: BTreeMap::new(),
        }
    }
}

/// How to stop a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopOptions {
    /// Take a snapshot before stopping.
    pub create_snapshot: bool,
    /// How long the container gets to exit after SIGTERM before it is killed.
    pub timeout: Duration,
}

impl Default for StopOptions {
    fn default() -> Self {
        Self {
            create_snapshot: false,
            timeout: Duration::from_secs(10),
        }
    }
}

/// One configured provider instance, for example the local Docker daemon.
///
/// Operations a backend does not offer yet return
/// [`ProviderError::NotSupportedYet`](crate::ProviderError::NotSupportedYet),
/// never a pretended success.
#[async_trait]
pub trait ProviderInstance: Send + Sync {
    fn name(&self) -> &ProviderInstanceName;

    fn backend_name(&self) -> &'static str;

    fn capabilities(&self) -> Capabilities;

    /// Creates, starts and sets up a host reachable over SSH, and stores its record.
    ///
    /// On failure no container is left running and a failed host record is stored.
    async fn create_host(&self, request: CreateHostRequest) -> ProviderResult<Host>;

    async fn stop_host(&self, host_id: &HostId, options: StopOptions) -> ProviderResult<()>;

    /// Starts a stopped host, from `snapshot_id` when one is given; a running host
    /// is returned as it is.
    async fn start_host(&self, host_id: &HostId, snapshot_id: Option<&str>)
        -> ProviderResult<Host>;

    /// Removes the host's container and record, and its snapshots when asked.
    async fn destroy_host(&self, host_id: &HostId, delete_snapshots: bool) -> ProviderResult<()>;

    async fn get_host(&self, host: &HostRef) -> ProviderResult<Host>;

    async fn list_hosts(&self) -> ProviderResult<Vec<Host>>;

    /// The hosts as the local store records them, without asking the provider's
    /// daemon; for listing while it is unreachable. States are
    /// `UNREACHABLE`, or `FAILED` for failed creations.
    async fn list_stored_hosts(&self) -> ProviderResult<Vec<Host>>;

    /// Finds what this instance created but no longer tracks (containers
    /// without a host record, snapshot and built images of hosts that are
    /// gone) and removes it unless `dry_run`. Returns one line per item.
    async fn garbage_collect(&self, dry_run: bool) -> ProviderResult<Vec<String>>;

    async fn get_host_resources(&self, host_id: &HostId) -> ProviderResult<HostResources>;

    async fn create_snapshot(
        &self,
        host_id: &HostId,
        name: Option<&str>,
    ) -> ProviderResult<SnapshotRecord>;

    /// The host's snapshots, oldest first.
    async fn list_snapshots(&self, host_id: &HostId) -> ProviderResult<Vec<SnapshotRecord>>;

    async fn delete_snapshot(&self, host_id: &HostId, snapshot_id: &str) -> ProviderResult<()>;

    async fn get_host_tags(&self, host_id: &HostId) -> ProviderResult<BTreeMap<String, String>>;

    async fn set_host_tags(
        &self,
        host_id: &HostId,
        tags: BTreeMap<String, String>,
    ) -> ProviderResult<()>;

    async fn add_tags_to_host(
        &self,
        host_id: &HostId,
        tags: BTreeMap<String, String>,
    ) -> ProviderResult<()>;

    async fn remove_tags_from_host(&self, host_id: &HostId, keys: &[String]) -> ProviderResult<()>;

    /// Changes the host's logical name; the underlying resource keeps its own name.
    async fn rename_host(&self, host_id: &HostId, new_name: HostName) -> ProviderResult<Host>;

    /// Where and how to reach a running host over SSH, without connecting;
    /// for callers that run one plain `ssh` process instead of a master
    /// connection.
    async fn ssh_target(&self, host_id: &HostId) -> ProviderResult<SshTarget>;

    /// Opens (or reuses) an SSH connection to a running host.
    async fn get_connector(&self, host_id: &HostId) -> ProviderResult<SshConnector>;

    async fn list_persisted_agent_data_for_host(
        &self,
        host_id: &HostId,
    ) -> ProviderResult<Vec<AgentData>>;

    async fn persist_agent_data(&self, host_id: &HostId, agent: &AgentData) -> ProviderResult<()>;

    async fn remove_persisted_agent_data(
        &self,
        host_id: &HostId,
        agent_id: &AgentId,
    ) -> ProviderResult<()>;

    /// Forgets everything cached about the host after a connection failed, so the
    /// next call looks it up afresh.
    async fn on_connection_error(&self, host_id: &HostId);

    /// Releases the instance's client connections.
    async fn close(&self) -> ProviderResult<()>;
}
