//! The records a provider stores and returns: host records, snapshots, agent
//! data, and the enums that describe a host's state and idle behaviour.
//!
//! Stored records must stay readable across versions: every optional field has a
//! default, and fields this version does not know are kept in `extra` and written
//! back unchanged.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{AgentId, AgentName, HostId, HostName};

/// The lifecycle state of a host as discovery reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HostState {
    /// The container exists and is being set up.
    Starting,
    Running,
    /// Stopped by mngr, by the user or by the idle watcher; see the stop reason.
    Stopped,
    /// The container exited without mngr or the idle watcher stopping it.
    Crashed,
    /// Creation failed. The record contains the failure reason and build log.
    Failed,
    /// The record is left but the container is gone.
    Destroyed,
    /// The provider's daemon cannot be reached; the record shows what mngr
    /// last knew.
    Unreachable,
}

impl HostState {
    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Starting => "STARTING",
            HostState::Running => "RUNNING",
            HostState::Stopped => "STOPPED",
            HostState::Crashed => "CRASHED",
            HostState::Failed => "FAILED",
            HostState::Destroyed => "DESTROYED",
            HostState::Unreachable => "UNREACHABLE",
        }
    }
}

impl fmt::Display for HostState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The reason a host stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StopReason {
    /// Stopped on request (`mngr stop`).
    Stopped,
    /// Stopped by the activity watcher after the idle timeout.
    Idle,
    /// Stopped by the shutdown script without a more specific reason.
    Paused,
    /// A reason written by a newer mngr that this version does not know.
    #[serde(other)]
    Unknown,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Stopped => "STOPPED",
            StopReason::Idle => "IDLE",
            StopReason::Paused => "PAUSED",
            StopReason::Unknown => "UNKNOWN",
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds of activity that keep a host from being stopped as idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdleMode {
    /// Any activity source: terminal output, SSH sessions, mngr commands, agent processes.
    Io,
    /// Only what a user does: SSH sessions and mngr commands.
    User,
    /// Only the agent: its terminal output and its process.
    Agent,
    /// Only SSH sessions.
    Ssh,
    /// Only the time since the host was created.
    Create,
    /// Only the time since the host last started.
    Boot,
    /// Only the agent's process being alive.
    Run,
    /// The activity sources listed in the host's configuration.
    Custom,
    /// Never stop for idleness.
    Disabled,
}

impl IdleMode {
    pub const ALL: [IdleMode; 9] = [
        IdleMode::Io,
        IdleMode::User,
        IdleMode::Agent,
        IdleMode::Ssh,
        IdleMode::Create,
        IdleMode::Boot,
        IdleMode::Run,
        IdleMode::Custom,
        IdleMode::Disabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IdleMode::Io => "io",
            IdleMode::User => "user",
            IdleMode::Agent => "agent",
            IdleMode::Ssh => "ssh",
            IdleMode::Create => "create",
            IdleMode::Boot => "boot",
            IdleMode::Run => "run",
            IdleMode::Custom => "custom",
            IdleMode::Disabled => "disabled",
        }
    }
}

impl IdleMode {
    /// The activity sources this mode observes; `custom` observes `custom_sources`.
    ///
    /// The agent's process being alive counts only for `agent`, `run` and
    /// `custom`, because a long-running agent would otherwise keep every host
    /// up forever.
    pub fn activity_sources(self, custom_sources: &[ActivitySource]) -> Vec<ActivitySource> {
        use ActivitySource::*;
        match self {
            IdleMode::Io => vec![Create, Boot, Ssh, User, Agent],
            IdleMode::User => vec![Create, Boot, Ssh, User],
            IdleMode::Agent => vec![Create, Boot, Agent, Process],
            IdleMode::Ssh => vec![Create, Boot, Ssh],
            IdleMode::Create => vec![Create],
            IdleMode::Boot => vec![Boot],
            IdleMode::Run => vec![Create, Boot, Process],
            IdleMode::Custom => custom_sources.to_vec(),
            IdleMode::Disabled => Vec::new(),
        }
    }
}

impl fmt::Display for IdleMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for IdleMode {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        IdleMode::ALL
            .into_iter()
            .find(|mode| mode.as_str() == value)
            .ok_or_else(|| {
                let accepted: Vec<&str> = IdleMode::ALL.iter().map(|mode| mode.as_str()).collect();
                format!(
                    "invalid idle mode {value:?}: expected one of {}",
                    accepted.join(", ")
                )
            })
    }
}

/// One kind of activity that the activity watcher observes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivitySource {
    /// The host was created.
    Create,
    /// The host (re)started.
    Boot,
    /// An SSH session is open.
    Ssh,
    /// A command ran through `mngr exec` or another mngr command.
    User,
    /// The agent's terminal produced output.
    Agent,
    /// The agent's process is alive.
    Process,
}

impl ActivitySource {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivitySource::Create => "create",
            ActivitySource::Boot => "boot",
            ActivitySource::Ssh => "ssh",
            ActivitySource::User => "user",
            ActivitySource::Agent => "agent",
            ActivitySource::Process => "process",
        }
    }

    pub const ALL: [ActivitySource; 6] = [
        ActivitySource::Create,
        ActivitySource::Boot,
        ActivitySource::Ssh,
        ActivitySource::User,
        ActivitySource::Agent,
        ActivitySource::Process,
    ];
}

/// A host's compute resources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostResources {
    /// CPU cores (may be fractional).
    pub cpu: f64,
    /// Memory in GiB.
    pub memory_gb: f64,
    /// The GPU request as given (for example `all`), if any.
    pub gpu: Option<String>,
}

/// A container host's configuration, parsed from the build arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerConfig {
    pub gpu: Option<String>,
    /// CPU cores.
    pub cpu: f64,
    /// Memory in GiB.
    pub memory: f64,
    pub image: Option<String>,
    pub dockerfile: Option<String>,
    pub context_dir: Option<String>,
    pub network: Option<String>,
    pub volumes: Vec<String>,
    pub ports: Vec<String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Default for ContainerConfig {
    fn default() -> Self {
        Self {
            gpu: None,
            cpu: 1.0,
            memory: 1.0,
            image: None,
            dockerfile: None,
            context_dir: None,
            network: None,
            volumes: Vec::new(),
            ports: Vec::new(),
            extra: serde_json::Map::new(),
        }
    }
}

/// One snapshot of a host's filesystem. For Docker the id is the committed image id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    pub id: String,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Host data that mngr itself wrote and vouches for, as opposed to what the
/// container reports about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertifiedHostData {
    pub host_id: HostId,
    pub host_name: HostName,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// The image the host runs, as the user named it.
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub user_tags: BTreeMap<String, String>,
    /// Snapshots, oldest first.
    #[serde(default)]
    pub snapshots: Vec<SnapshotRecord>,
    #[serde(default = "default_idle_timeout_seconds")]
    pub idle_timeout_seconds: u64,
    #[serde(default = "default_idle_mode")]
    pub idle_mode: IdleMode,
    #[serde(default = "default_activity_sources")]
    pub activity_sources: Vec<ActivitySource>,
    #[serde(default)]
    pub stop_reason: Option<StopReason>,
    /// Set when creation failed; such a host is listed as `FAILED`.
    #[serde(default)]
    pub failure_reason: Option<String>,
    /// The end of the image build or pull log of a failed creation.
    #[serde(default)]
    pub build_log: Option<String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The maximum idle timeout mngr accepts: ten years, far below what the
/// watcher's shell arithmetic can hold.
pub const MAX_IDLE_TIMEOUT_SECONDS: u64 = 10 * 365 * 24 * 60 * 60;

fn default_idle_timeout_seconds() -> u64 {
    800
}

fn default_idle_mode() -> IdleMode {
    IdleMode::Io
}

fn default_activity_sources() -> Vec<ActivitySource> {
    ActivitySource::ALL.to_vec()
}

impl CertifiedHostData {
    /// Starts the certified data of a host created now, with default idle settings.
    pub fn new(host_id: HostId, host_name: HostName) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            host_id,
            host_name,
            created_at: now,
            updated_at: now,
            image: None,
            user_tags: BTreeMap::new(),
            snapshots: Vec::new(),
            idle_timeout_seconds: default_idle_timeout_seconds(),
            idle_mode: default_idle_mode(),
            activity_sources: default_activity_sources(),
            stop_reason: None,
            failure_reason: None,
            build_log: None,
            extra: serde_json::Map::new(),
        }
    }
}

/// Everything mngr stores about one host, in the provider's local store.
///
/// Docker labels are immutable, so whatever changes after creation (tags,
/// snapshots, the SSH port, the stop reason) lives here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostRecord {
    pub certified_host_data: CertifiedHostData,
    #[serde(default)]
    pub ssh_host: Option<String>,
    /// The last SSH port seen; Docker may publish another one after a restart.
    #[serde(default)]
    pub ssh_port: Option<u16>,
    #[serde(default)]
    pub ssh_host_public_key: Option<String>,
    #[serde(default)]
    pub config: Option<ContainerConfig>,
    #[serde(default)]
    pub container_id: Option<String>,
    /// The process id of the `mngr create` that is still setting the host up;
    /// cleared when setup finishes. A record whose creator is gone is an
    /// interrupted creation.
    #[serde(default)]
    pub creating_pid: Option<u32>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl HostRecord {
    pub fn new(certified_host_data: CertifiedHostData) -> Self {
        Self {
            certified_host_data,
            ssh_host: None,
            ssh_port: None,
            ssh_host_public_key: None,
            config: None,
            container_id: None,
            creating_pid: None,
            extra: serde_json::Map::new(),
        }
    }

    pub fn host_id(&self) -> &HostId {
        &self.certified_host_data.host_id
    }

    pub fn host_name(&self) -> &HostName {
        &self.certified_host_data.host_name
    }

    pub fn is_failed(&self) -> bool {
        self.certified_host_data.failure_reason.is_some()
    }
}

/// The agent data mngr persists, so that an agent can be listed while its host is offline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentData {
    pub id: AgentId,
    pub name: AgentName,
    /// The agent's command as given; empty means the login shell.
    #[serde(default)]
    pub command: Vec<String>,
    /// The agent's work directory inside the host.
    pub work_dir: String,
    /// Names of the environment variables set for the agent's process. The
    /// values live only in a private file on the host, never in mngr's store.
    #[serde(default)]
    pub env_keys: Vec<String>,
    /// The process id of the `mngr create` that is still setting the agent
    /// up (copying the project, starting its session); cleared when done.
    #[serde(default)]
    pub creating_pid: Option<u32>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_record() -> HostRecord {
        let mut data = CertifiedHostData::new(HostId::generate(), HostName::new("sample").unwrap());
        data.user_tags.insert("team".into(), "infra".into());
        let mut record = HostRecord::new(data);
        record.ssh_port = Some(32768);
        record
    }

    #[test]
    fn host_record_round_trips() {
        let record = sample_record();
        let text = serde_json::to_string(&record).unwrap();
        let parsed: HostRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed, record);
    }

    #[test]
    fn host_record_keeps_unknown_fields() {
        let mut value = serde_json::to_value(sample_record()).unwrap();
        value["future_field"] = serde_json::json!({"nested": 1});
        value["certified_host_data"]["future_data"] = serde_json::json!("x");

        let parsed: HostRecord = serde_json::from_value(value.clone()).unwrap();
        let written = serde_json::to_value(&parsed).unwrap();

        assert_eq!(written["future_field"], value["future_field"]);
        assert_eq!(written["certified_host_data"]["future_data"], "x");
    }

    #[test]
    fn host_record_reads_minimal_form() {
        let text = r#"{"certified_host_data": {
            "host_id": "host-0123456789abcdef0123456789abcdef",
            "host_name": "minimal",
            "created_at": "2026-01-02T03:04:05Z",
            "updated_at": "2026-01-02T03:04:05Z"}}"#;
        let parsed: HostRecord = serde_json::from_str(text).unwrap();
        assert_eq!(parsed.certified_host_data.idle_timeout_seconds, 800);
        assert_eq!(parsed.certified_host_data.idle_mode, IdleMode::Io);
        assert!(parsed.ssh_port.is_none());
    }

    #[test]
    fn stop_reason_unknown_value_is_kept_readable() {
        let parsed: StopReason = serde_json::from_str("\"REBOOTED\"").unwrap();
        assert_eq!(parsed, StopReason::Unknown);
    }

    #[test]
    fn idle_mode_parse_lists_accepted_values() {
        assert_eq!("disabled".parse::<IdleMode>().unwrap(), IdleMode::Disabled);
        let error = "sometimes".parse::<IdleMode>().unwrap_err();
        assert!(error.contains("io, user"), "{error}");
    }
}
