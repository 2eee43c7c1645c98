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

    let kept = &found.host.record.certified_host_data.snapshots;
    if !args.delete_snapshots && !kept.is_empty() {
        let ids: Vec<&str> = kept.iter().map(|snapshot| snapshot.id.as_str()).collect();
        eprintln!(
            "mngr: kept {} snapshot image(s) of the destroyed host, which mngr no longer lists: {}. \
             Remove them with `docker rmi {}`, or pass --delete-snapshots next time",
            kept.len(),
            ids.join(", "),
            ids.join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
