//! The `mngr` binary: parses the command line, sets up logging and progress
//! output, builds the configured provider instances, and runs one command.
//!
//! Commands live in `commands/`; this file only wires them together and turns
//! an error into one message on stderr and a non-zero exit code.

mod agents;
mod commands;
mod output;
mod progress;
mod project;
mod providers;
mod tags;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "mngr",
    version,
    about = "Run AI coding agents in isolated hosts and manage those hosts",
    propagate_version = true
)]
struct Cli {
    /// Show more log output: -v for progress details, -vv for debugging.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a host and start an agent in it.
    Create(commands::create::CreateArgs),
    /// List agents and the state of their hosts.
    List(commands::list::ListArgs),
    /// Run a command in an agent's work directory.
    Exec(commands::exec::ExecArgs),
    /// Attach an interactive terminal to an agent's tmux session.
    Connect(commands::connect::ConnectArgs),
    /// Stop an agent's host, keeping its filesystem.
    Stop(commands::stop::StopArgs),
    /// Start an agent's stopped host, or restore it from a snapshot.
    Start(commands::start::StartArgs),
    /// Create, list and delete snapshots of an agent's host.
    Snapshot(commands::snapshot::SnapshotArgs),
    /// Destroy an agent's host, its container and its record.
    Destroy(commands::destroy::DestroyArgs),
    /// List or change an agent's host tags.
    Tag(commands::tag::TagArgs),
    /// Rename an agent and its host.
    Rename(commands::rename::RenameArgs),
    /// Remove containers and images mngr created but no longer tracks.
    Gc(commands::gc::GcArgs),
    /// Show the effective configuration.
    Config(commands::config::ConfigArgs),
    /// List the provider backends this mngr was built with.
    Providers(commands::providers::ProvidersArgs),
}

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, which turns `mngr list | head` into a panic on the
    // next print. Restoring the default makes mngr end quietly like other
    // Unix tools when its reader goes away.
    // SAFETY: called first in main, before any thread starts, with a valid
    // signal number and the default disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }

    let cli = Cli::parse();
    let progress = progress::init(cli.verbose);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("mngr: failed to start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };

    let result = runtime.block_on(run(cli.command, &progress));
    progress.finish();
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("mngr: {}", output::describe_error(&error));
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, progress: &progress::Progress) -> anyhow::Result<ExitCode> {
    match command {
        Command::Create(args) => commands::create::run(args, progress).await,
        Command::List(args) => commands::list::run(args).await,
        Command::Exec(args) => commands::exec::run(args, progress).await,
        Command::Connect(args) => commands::connect::run(args, progress).await,
        Command::Stop(args) => commands::stop::run(args, progress).await,
        Command::Start(args) => commands::start::run(args, progress).await,
        Command::Snapshot(args) => commands::snapshot::run(args, progress).await,
        Command::Destroy(args) => commands::destroy::run(args, progress).await,
        Command::Tag(args) => commands::tag::run(args).await,
        Command::Rename(args) => commands::rename::run(args).await,
        Command::Config(args) => commands::config::run(args),
        Command::Gc(args) => commands::gc::run(args).await,
        Command::Providers(args) => commands::providers::run(args),
    }
}
