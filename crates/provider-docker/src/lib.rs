//! The Docker provider: each host is a Docker container that mngr reaches over
//! SSH. Containers are found by their labels; everything that changes after
//! creation lives in the local host record store.
//!
//! Linking this crate registers the backend (see [`backend`]); nothing else
//! needs to name it.

mod archive;
pub mod backend;
pub mod build_args;
pub mod client;
pub mod config;
mod discovery;
mod exec;
mod gc;
pub mod image;
pub mod instance;
pub mod labels;
mod lifecycle;
mod power;
mod setup;
mod snapshots;

pub use backend::DockerProviderBackend;
pub use config::DockerProviderConfig;
pub use instance::DockerProviderInstance;

/// The backend's name in configuration files and on the command line.
pub const BACKEND_NAME: &str = "docker";
