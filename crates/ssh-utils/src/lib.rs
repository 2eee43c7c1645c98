//! SSH plumbing shared by mngr's providers: ed25519 key pairs, mngr's own
//! `known_hosts` file, waiting for sshd to come up, and connections that run
//! remote commands.
//!
//! Everything here works on files and connections that mngr owns. Nothing
//! here reads or writes the user's `~/.ssh`. Preparing a host (installing
//! keys and sshd) lives in `host_setup`, not in the other modules.

mod atomic_file;
mod connector;
mod error;
pub mod host_setup;
mod keys;
mod known_hosts;
mod wait;

pub use connector::{CommandOutput, SshConnector, SshTarget, KEX_ALGORITHMS};
pub use error::SshError;
pub use keys::{
    load_or_create_client_keypair, load_or_create_host_keypair, load_or_create_keypair, KeyPair,
    CLIENT_KEY_COMMENT, HOST_KEY_COMMENT,
};
pub use known_hosts::{add_host_to_known_hosts, known_hosts_pattern, remove_host_from_known_hosts};
pub use wait::wait_for_sshd;
