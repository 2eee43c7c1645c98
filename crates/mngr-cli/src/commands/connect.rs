//! `mngr connect`: attaches the user's terminal to an agent's tmux session.

use std::process::ExitCode;

use anyhow::{anyhow, bail, Context as _};
use provider_api::HostState;
use ssh_utils::host_setup::shell_join;

use crate::agents::{find_agent, not_running_hint};
use crate::progress::Progress;
use crate::providers::Providers;

#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// The agent's name.
    pub name: String,
}

pub async fn run(args: ConnectArgs, progress: &Progress) -> anyhow::Result<ExitCode> {
    let providers = Providers::load()?;
    let found = find_agent(&providers, &args.name).await?;
    let agent = found.agent.ok_or_else(|| {
        anyhow!(
            "host {} has no agent named {:?}",
            found.host.id(),
            args.name
        )
    })?;
    if found.host.state != HostState::Running {
        bail!(
            "agent {} cannot be attached: its host is {}; {}",
            agent.name,
            found.host.state,
            not_running_hint(&found.host)
        );
    }

    // Opening the connector checks the host key and login before the terminal
    // is handed over, so failures are reported as mngr errors.
    let connector = found.instance.get_connector(found.host.id()).await?;
    let target = connector.target().clone();
    let _ = connector.close().await;
    progress.finish();

    let attach = shell_join(&["tmux", "attach-session", "-t", agent.name.as_str()]);
    let status = tokio::task::spawn_blocking(move || target.interactive_command(&attach).status())
        .await
        .context("the ssh process could not be waited for")?
        .context("failed to run ssh; is the OpenSSH client installed?")?;
    Ok(ExitCode::from(
        status
            .code()
            .and_then(|code| u8::try_from(code).ok())
            .unwrap_or(255),
    ))
}
