//! `mngr connect`: attaches the user's terminal to an agent's tmux session.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use ssh_utils::host_setup::shell_join;

use crate::agents::{find_agent, require_running_agent};
use crate::progress::Progress;
use crate::providers::Providers;

#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// The agent's name.
    pub name: String,
}

pub async fn run(args: ConnectArgs, progress: &Progress) -> anyhow::Result<ExitCode> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "mngr connect needs a terminal on standard input; to run a command without one, use `mngr exec {} -- COMMAND`",
            args.name
        );
    }
    let providers = Providers::load()?;
    let found = find_agent(&providers, &args.name).await?;
    let agent = require_running_agent(&found, &args.name, "be attached")?;

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
