//! The contract between mngr and its providers.
//!
//! A provider backend (for example Docker) is a stateless factory that registers
//! itself with [`inventory`]; the `mngr` binary builds provider instances from it
//! and drives hosts only through the [`ProviderInstance`] trait. This crate holds
//! the traits, the records every backend stores, and the one error type. It does
//! no I/O of its own.

mod backend;
mod context;
mod error;
mod ids;
mod instance;
mod records;

pub use backend::{ConfigField, ProviderBackend, ProviderRegistration};
pub use context::MngrContext;
pub use error::{ProviderError, ProviderResult};
pub use ids::{AgentId, AgentName, HostId, HostName, InvalidIdentifier, ProviderInstanceName};
pub use instance::{
    Capabilities, CreateHostRequest, Host, HostRef, ProviderInstance, SshEndpoint, StopOptions,
};
pub use records::{
    ActivitySource, AgentData, CertifiedHostData, ContainerConfig, HostRecord, HostResources,
    HostState, IdleMode, SnapshotRecord, StopReason, MAX_IDLE_TIMEOUT_SECONDS,
};

/// The `tracing` target for progress messages of long steps (image pull,
/// container start, waiting for sshd). The CLI shows events with this target
/// on its progress line; other subscribers treat them as ordinary INFO events.
pub const PROGRESS_TARGET: &str = "mngr::progress";

// Re-exported so that backends and the CLI submit and iterate registrations with
// the same `inventory` version this crate collects with.
pub use inventory;
pub use ssh_utils::{SshConnector, SshTarget};
