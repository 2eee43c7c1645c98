//! `mngr rename`: gives an agent and its host a new name. The container keeps
//! its original name; only the records change, and the old name stops
//! resolving.

use std::process::ExitCode;

use anyhow::{anyhow, bail};
use provider_api::{AgentName, HostName, HostState};
use ssh_utils::host_setup::shell_join;
use tracing::warn;

use crate::agents::find_agent;
use crate::providers::Providers;

#[derive(Debug, clap::Args)]
pub struct RenameArgs {
    /// The agent's current name.
    pub name: String,

    /// The new name for the agent and its host.
    pub new_name: String,
}

pub async fn run(args: RenameArgs) -> anyhow::Result<ExitCode> {
    let providers = Providers::load()?;
    let new_name = AgentName::new(args.new_name.as_str())?;
    if let Ok(existing) = find_agent(&providers, new_name.as_str()).await {
        bail!(
            "the name \"{new_name}\" is already in use by host {} of provider {}; choose another name",
            existing.host.id(),
            existing.instance.name()
        );
    }
    let found = find_agent(&providers, &args.name).await?;
    let mut agent = found.agent.ok_or_else(|| {
        anyhow!(
            "host {} has no agent named {:?}",
            found.host.id(),
            args.name
        )
    })?;
    let old_name = agent.name.clone();

    found
        .instance
        .rename_host(found.host.id(), HostName::from(&new_name))
        .await?;
    agent.name = new_name.clone();
    found
        .instance
        .persist_agent_data(found.host.id(), &agent)
        .await?;

    // The tmux session carries the agent's name; a stopped host gets a
    // session with the new name when it starts.
    if found.host.state == HostState::Running {
        let rename = shell_join(&[
            "tmux",
            "rename-session",
            "-t",
            &format!("={old_name}"),
            new_name.as_str(),
        ]);
        let renamed = match found.instance.get_connector(found.host.id()).await {
            Ok(connector) => connector
                .run(&rename)
                .await
                .is_ok_and(|output| output.exit_code == Some(0)),
            Err(_) => false,
        };
        if !renamed {
            warn!(agent = %new_name, "the agent's tmux session could not be renamed; it keeps the name {old_name} until the host restarts");
        }
    }

    println!("Renamed agent {old_name} to {new_name}.");
    Ok(ExitCode::SUCCESS)
}
