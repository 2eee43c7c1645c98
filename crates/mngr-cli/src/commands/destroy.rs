//! `mngr destroy`: removes an agent's host, its container and its record.

use std::process::ExitCode;

use crate::agents::find_agent;
use crate::progress::Progress;
use crate::providers::Providers;

#[derive(Debug, clap::Args)]
pub struct DestroyArgs {
    /// The agent's name.
    pub name: String,

    /// Also delete the host's snapshot images.
    #[arg(long)]
    pub delete_snapshots: bool,
}

pub async fn run(args: DestroyArgs, progress: &Progress) -> anyhow::Result<ExitCode> {
    let providers = Providers::load()?;
    let found = find_agent(&providers, &args.name).await?;
    found
        .instance
        .destroy_host(found.host.id(), args.delete_snapshots)
        .await?;
    progress.finish();
    println!(
        "Destroyed agent {} and its host {}.",
        args.name,
        found.host.id()
    );
    Ok(ExitCode::SUCCESS)
}
