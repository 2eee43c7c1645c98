//! Finding agents by name across every provider instance, and what mngr runs
//! on a host to start one.
//!
//! An agent's host has the agent's name, so finding an agent means finding the
//! host of that name and reading the agent data persisted for it.

use anyhow::bail;
use provider_api::{
    AgentData, AgentName, Host, HostName, HostRef, HostState, ProviderError, ProviderInstance,
};
use ssh_utils::host_setup::{shell_join, shell_quote};

use crate::providers::Providers;

/// The directory inside a host that contains the agents' work directories.
pub const WORK_ROOT: &str = "/code";

pub fn work_dir_for(agent: &AgentName) -> String {
    format!("{WORK_ROOT}/{agent}")
}

/// An agent together with its host and the instance that owns the host.
pub struct FoundAgent<'a> {
    pub instance: &'a dyn ProviderInstance,
    pub host: Host,
    /// `None` when the host has no persisted agent, for example after a failed create.
    pub agent: Option<AgentData>,
}

/// Finds the agent called `name` in any instance.
pub async fn find_agent<'a>(
    providers: &'a Providers,
    name: &str,
) -> anyhow::Result<FoundAgent<'a>> {
    let agent_name = AgentName::new(name)?;
    let host_name = HostName::from(&agent_name);
    let mut close_matches = Vec::new();

    for instance in providers.all() {
        match instance.get_host(&HostRef::Name(host_name.clone())).await {
            Ok(host) => {
                let agents = instance
                    .list_persisted_agent_data_for_host(host.id())
                    .await?;
                let agent = agents.into_iter().find(|agent| agent.name == agent_name);
                return Ok(FoundAgent {
                    instance,
                    host,
                    agent,
                });
            }
            Err(ProviderError::HostNotFound {
                close_matches: matches,
                ..
            }) => close_matches.extend(matches),
            Err(error) => return Err(error.into()),
        }
    }

    if close_matches.is_empty() {
        bail!("agent {name:?} not found; run `mngr list` to see existing agents");
    }
    bail!(
        "agent {name:?} not found; did you mean {}?",
        close_matches.join(", ")
    );
}

/// Whether the `mngr create` that set `agent` up was interrupted: its setup
/// never finished and its process is gone.
pub fn agent_setup_interrupted(agent: &AgentData) -> bool {
    // NOTE: this reads /proc, so where it is missing an unfinished setup
    // counts as still under way.
    agent.creating_pid.is_some_and(|pid| {
        let proc_root = std::path::Path::new("/proc");
        proc_root.exists() && !proc_root.join(pid.to_string()).exists()
    })
}

/// The agent of a running host, or an error that names why there is none and
/// what to do. `action` completes "agent NAME cannot ...".
pub fn require_running_agent(
    found: &FoundAgent<'_>,
    name: &str,
    action: &str,
) -> anyhow::Result<AgentData> {
    if found.host.state != HostState::Running {
        bail!(
            "agent {name} cannot {action}: its host is {}; {}",
            found.host.state,
            not_running_hint(&found.host)
        );
    }
    match &found.agent {
        Some(agent) if agent_setup_interrupted(agent) => bail!(
            "agent {name} was not set up completely: its `mngr create` was interrupted; remove it with `mngr destroy {name}` and create it again"
        ),
        Some(agent) => Ok(agent.clone()),
        None => bail!(
            "host {name} runs but has no agent: its `mngr create` did not finish; remove it with `mngr destroy {name}` and create it again"
        ),
    }
}

/// What to do about a host that is not running.
pub fn not_running_hint(host: &Host) -> String {
    let name = host.name();
    match host.state {
        HostState::Stopped | HostState::Crashed => format!("start it with `mngr start {name}`"),
        HostState::Starting => "it is still being set up; try again in a moment".to_string(),
        HostState::Failed => format!(
            "its creation failed ({}); remove it with `mngr destroy {name}`",
            host.record.certified_host_data.failure_reason.as_deref().unwrap_or("no reason recorded")
        ),
        HostState::Destroyed => format!(
            "its container is gone; restore it with `mngr start {name} --snapshot SNAPSHOT` or remove it with `mngr destroy {name}`"
        ),
        HostState::Running => "it is running".to_string(),
        HostState::Unreachable => "its provider's daemon cannot be reached; start Docker there or check the provider's `host` setting".to_string(),
    }
}

/// The file on the host holding the agent's environment variables, relative
/// to the remote user's home directory.
pub fn env_file_path(agent: &AgentData) -> String {
    format!(".mngr/agents/{}/env", agent.id)
}

/// The command that writes the agent's environment file from standard input,
/// readable by its owner only.
pub fn write_env_file_command(agent: &AgentData) -> String {
    let path = env_file_path(agent);
    let directory = path
        .rsplit_once('/')
        .map_or(".", |(directory, _)| directory);
    format!(
        "umask 077 && cd && mkdir -p {directory} && cat > {path}",
        directory = shell_quote(directory),
        path = shell_quote(&path)
    )
}

/// The contents of the agent's environment file: one `export` per variable,
/// with values quoted so the shell takes them literally.
pub fn env_file_contents(variables: &[(String, String)]) -> String {
    variables
        .iter()
        .map(|(key, value)| format!("export {key}={}\n", shell_quote(value)))
        .collect()
}

/// The command that starts `agent` in a detached tmux session named after it.
///
/// With no agent command, the session runs the user's login shell. With
/// environment variables, the command first reads the agent's environment
/// file, so the values never appear on a command line.
pub fn tmux_start_command(agent: &AgentData) -> String {
    let mut words = vec![
        "tmux".to_string(),
        "new-session".to_string(),
        "-d".to_string(),
        "-x".to_string(),
        "200".to_string(),
        "-y".to_string(),
        "50".to_string(),
        "-s".to_string(),
        agent.name.to_string(),
        "-c".to_string(),
        agent.work_dir.clone(),
    ];
    if !agent.env_keys.is_empty() {
        let program = if agent.command.is_empty() {
            "exec \"${SHELL:-/bin/sh}\" -l".to_string()
        } else {
            format!("exec {}", command_line(&agent.command))
        };
        words.push(format!(
            ". \"$HOME\"/{} && {program}",
            shell_quote(&env_file_path(agent))
        ));
    } else if !agent.command.is_empty() {
        words.push(command_line(&agent.command));
    }
    shell_join(&words)
}

/// The remote shell command line for a user's command given as words.
///
/// A single word is taken as a shell command line, as ssh and tmux do, so it
/// may contain pipes and quotes. Several words are a program and its
/// arguments, each quoted so that the shell passes them unchanged.
pub fn command_line(words: &[String]) -> String {
    match words {
        [single] => single.clone(),
        _ => shell_join(words),
    }
}

/// `command` run in `work_dir`.
///
/// The `cd` is its own statement, so a command with a top-level `&` or `;`
/// runs entirely in the work directory.
pub fn in_work_dir(work_dir: &str, command: &str) -> String {
    format!("cd {} || exit 1\n{command}", shell_quote(work_dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_contents_quote_values() {
        let contents = env_file_contents(&[("TOKEN".to_string(), "a'b $(id) `x`".to_string())]);
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{contents}printf '%s' \"$TOKEN\""))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(output.stdout).unwrap(), "a'b $(id) `x`");
    }

    #[test]
    fn command_line_single_word_is_shell_text() {
        assert_eq!(command_line(&["ls | wc -l".to_string()]), "ls | wc -l");
    }

    #[test]
    fn command_line_quotes_each_of_several_words() {
        let words = vec![
            "sh".to_string(),
            "-c".to_string(),
            "echo a; exit 3".to_string(),
        ];
        assert_eq!(command_line(&words), "sh -c 'echo a; exit 3'");
    }
}
