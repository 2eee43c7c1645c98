//! `mngr start`: starts an agent's stopped host (or restores it from a
//! snapshot) and restarts its agents whose tmux sessions ended with it.

use std::process::ExitCode;

use provider_api::PROGRESS_TARGET;
use ssh_utils::host_setup::shell_quote;
use tracing::info;

use crate::agents::{find_agent, tmux_start_command};
use crate::progress::Progress;
use crate::providers::Providers;

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// The agent's name.
    pub name: String,

    /// Replace the host's container with one created from this snapshot (id, id prefix or name).
    #[arg(long, value_name = "SNAPSHOT")]
    pub snapshot: Option<String>,
}

pub async fn run(args: StartArgs, progress: &Progress) -> anyhow::Result<ExitCode> {
    let providers = Providers::load()?;
    let found = find_agent(&providers, &args.name).await?;
    let instance = found.instance;
    let host = instance
        .start_host(found.host.id(), args.snapshot.as_deref())
        .await?;

    let agents = instance
        .list_persisted_agent_data_for_host(host.id())
        .await?;
    if !agents.is_empty() {
        info!(target: PROGRESS_TARGET, "Starting agents");
        let connector = instance.get_connector(host.id()).await?;
        for agent in &agents {
            let restart = format!(
                "tmux has-session -t {} 2>/dev/null || {}",
                shell_quote(&format!("={}", agent.name)),
                tmux_start_command(agent)
            );
            let output = connector.run(&restart).await?;
            if output.exit_code != Some(0) {
                anyhow::bail!(
                    "the host started, but restarting agent {} failed: {}",
                    agent.name,
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
        }
        connector.close().await?;
    }

    progress.finish();
    match &args.snapshot {
        Some(snapshot) => println!(
            "Started agent {} from snapshot {snapshot} (host {}).",
            args.name,
            host.id()
        ),
        None => println!("Started agent {} (host {}).", args.name, host.id()),
    }
    Ok(ExitCode::SUCCESS)
}
