//! `mngr exec`: runs a command over SSH in an agent's work directory and
//! passes its output and exit code through unchanged.

use std::process::ExitCode;

use anyhow::{bail, Context as _};

use crate::agents::{command_line, find_agent, in_work_dir, require_running_agent};
use crate::progress::Progress;
use crate::providers::Providers;

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// The agent's name.
    pub name: String,

    /// The command to run. One word is run as a shell command line (pipes and
    /// quotes work); several words are a program and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

pub async fn run(args: ExecArgs, progress: &Progress) -> anyhow::Result<ExitCode> {
    let providers = Providers::load()?;
    let found = find_agent(&providers, &args.name).await?;
    let agent = require_running_agent(&found, &args.name, "run commands")?;
    if args.command.iter().all(|word| word.trim().is_empty()) {
        bail!(
            "the command is empty; give one after `--`, for example `mngr exec {} -- ls`",
            args.name
        );
    }

    // One plain ssh process: a master connection would add a second
    // process and a round trip for a single command.
    let target = found.instance.ssh_target(found.host.id()).await?;
    progress.finish();
    let remote_command = in_work_dir(&agent.work_dir, &command_line(&args.command));
    let status = tokio::task::spawn_blocking(move || target.command(&remote_command).status())
        .await
        .context("the ssh process could not be waited for")?
        .context("failed to run ssh; is the OpenSSH client installed?")?;

    // Like ssh, report 255 when the remote command ended without an exit code
    // (killed by a signal or the connection failed).
    let code = status.code().unwrap_or(255);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)))
}
