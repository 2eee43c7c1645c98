//! The local JSON file store for one provider instance's host records and
//! persisted agent data.
//!
//! Docker labels cannot change after a container is created, so everything about
//! a host that changes later (tags, snapshots, the SSH port, the stop reason)
//! lives here, and it outlives the container. The layout under the instance
//! directory is:
//!
//! ```text
//! hosts/<host_id>.json            host record, pretty JSON
//! hosts/<host_id>.lock            exclusive lock taken by every write of that record
//! hosts/<host_id>/<agent_id>.json persisted agent data
//! ```
//!
//! Every write is atomic and durable, and record writes are serialized across
//! processes by the per-host lock. The store keeps no in-process cache, because
//! several mngr processes share these files and a cache would serve records that
//! another process has since changed. It does not touch `keys/` beside `hosts/`,
//! which belongs to the SSH key handling.

mod error;
mod files;
mod store;

pub use error::{CorruptRecord, StoreError, UpdateError};
pub use store::HostStore;
