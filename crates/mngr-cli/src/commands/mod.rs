//! One module per `mngr` subcommand: its arguments and what it runs.

pub mod config;
pub mod connect;
pub mod create;
pub mod destroy;
pub mod exec;
pub mod gc;
pub mod list;
pub mod providers;
pub mod rename;
pub mod snapshot;
pub mod start;
pub mod stop;
pub mod tag;
