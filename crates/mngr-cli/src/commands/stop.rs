//! `mngr stop`: stops an agent's host and keeps its filesystem.

use std::process::ExitCode;
use std::time::Duration;

use provider_api::StopOptions;

use crate::agents::find_agent;
use crate::progress::Progress;
use crate::providers::Providers;

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// The agent's name.
    pub name: String,

    /// Take a snapshot before stopping.
    #[arg(long)]
    pub snapshot: bool,

    /// Seconds the host's processes get to exit before they are killed.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub timeout: u64,
}

pub async fn run(args: StopArgs, progress: &Progress) -> anyhow::Result<ExitCode> {
    let providers = Providers::load()?;
    let found = find_agent(&providers, &args.name).await?;
    let options = StopOptions {
        create_snapshot: args.snapshot,
        timeout: Duration::from_secs(args.timeout),
    };
    found.instance.stop_host(found.host.id(), options).await?;
    progress.finish();
    println!("Stopped agent {} (host {}).", args.name, found.host.id());
    Ok(ExitCode::SUCCESS)
}
