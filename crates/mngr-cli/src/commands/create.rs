//! `mngr create`: creates a host, copies the project into it, and starts the
//! agent in a tmux session.

use std::os::fd::OwnedFd;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use provider_api::{
    AgentData, AgentId, AgentName, CreateHostRequest, Host, HostName, HostState, IdleMode,
    ProviderInstance, MAX_IDLE_TIMEOUT_SECONDS, PROGRESS_TARGET,
};
use ssh_utils::host_setup::shell_quote;
use time::OffsetDateTime;
use tracing::{info, warn};

use crate::agents::{
    env_file_contents, find_agent, tmux_start_command, work_dir_for, write_env_file_command,
};
use crate::progress::Progress;
use crate::project::ProjectFiles;
use crate::providers::{Providers, DEFAULT_INSTANCE};
use crate::tags::parse_tags;

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The agent's name; its host gets the same name.
    pub name: String,

    /// The provider instance to create the host in.
    #[arg(long = "in", value_name = "PROVIDER", default_value = DEFAULT_INSTANCE)]
    pub provider: String,

    /// One build argument for the provider, such as `-b --image=debian:bookworm-slim`;
    /// repeat for more. `mngr providers` lists them.
    #[arg(
        short = 'b',
        long = "build-arg",
        value_name = "ARG",
        allow_hyphen_values = true
    )]
    pub build_args: Vec<String>,

    /// Start the agent in an empty work directory instead of a copy of the current directory.
    #[arg(long)]
    pub no_copy: bool,

    /// Seconds without activity before the host stops itself (default: the provider's default_idle_timeout).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=MAX_IDLE_TIMEOUT_SECONDS))]
    pub idle_timeout: Option<u64>,

    /// An environment variable for the agent's process as KEY=VALUE; repeat for more.
    /// The value is written to a private file on the host and never logged.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// Pass this variable's value from mngr's own environment to the agent; repeat for more.
    #[arg(long = "pass-env", value_name = "KEY")]
    pub pass_env: Vec<String>,

    /// A tag for the host as KEY=VALUE; repeat for more.
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,

    /// Which activity keeps the host running: io, user, agent, ssh, create, boot, run, custom or disabled
    /// (default: the provider's default_idle_mode).
    #[arg(long, value_name = "MODE")]
    pub idle_mode: Option<IdleMode>,

    /// The command the agent runs (default: a login shell). One word is run as a
    /// shell command line; several words are a program and its arguments.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

pub async fn run(args: CreateArgs, progress: &Progress) -> anyhow::Result<ExitCode> {
    let providers = Providers::load()?;
    let instance = providers.get(&args.provider)?;
    let agent_name = AgentName::new(args.name.as_str())?;
    // A failed host in the target instance is the provider's to judge: it
    // gives its name up when it has no container left.
    let existing = find_agent(&providers, agent_name.as_str())
        .await
        .ok()
        .filter(|existing| {
            !(existing.host.state == HostState::Failed
                && existing.instance.name().as_str() == args.provider)
        });
    if let Some(existing) = existing {
        bail!(
            "the name \"{agent_name}\" is already in use by host {} of provider {}; choose another name, or destroy it first with `mngr destroy {agent_name}`",
            existing.host.id(),
            existing.instance.name()
        );
    }

    let environment = agent_environment(&args.env, &args.pass_env)?;

    let project = if args.no_copy {
        None
    } else {
        let current_dir =
            std::env::current_dir().context("failed to read the current directory")?;
        Some(ProjectFiles::collect(&current_dir)?)
    };

    let mut request = CreateHostRequest::new(HostName::from(&agent_name));
    request.build_args = args.build_args;
    request.idle_timeout = args.idle_timeout.map(Duration::from_secs);
    request.idle_mode = args.idle_mode;
    request.tags = parse_tags(&args.tags)?;
    let host = instance.create_host(request).await?;

    let agent = AgentData {
        id: AgentId::generate(),
        name: agent_name.clone(),
        command: args.command,
        work_dir: work_dir_for(&agent_name),
        env_keys: environment.iter().map(|(key, _)| key.clone()).collect(),
        creating_pid: Some(std::process::id()),
        created_at: OffsetDateTime::now_utc(),
        extra: serde_json::Map::new(),
    };
    if let Err(error) = start_agent(instance, &host, &agent, &environment, project.as_ref()).await {
        warn!(host_id = %host.id(), %error, "starting the agent failed; destroying its host");
        if let Err(destroy_error) = instance.destroy_host(host.id(), false).await {
            warn!(host_id = %host.id(), error = %destroy_error, "failed to destroy the host of a failed agent");
        }
        return Err(error.context(format!(
            "starting agent {agent_name} failed, so its host was destroyed"
        )));
    }

    progress.finish();
    print_created(&agent, &host, instance);
    Ok(ExitCode::SUCCESS)
}

/// Copies the project, starts the tmux session and persists the agent.
async fn start_agent(
    instance: &dyn ProviderInstance,
    host: &Host,
    agent: &AgentData,
    environment: &[(String, String)],
    project: Option<&ProjectFiles>,
) -> anyhow::Result<()> {
    // Persisted first, so a create killed during the copy leaves an agent
    // that `mngr list` reports as interrupted.
    instance.persist_agent_data(host.id(), agent).await?;
    let connector = instance.get_connector(host.id()).await?;
    if !environment.is_empty() {
        let contents = env_file_contents(environment);
        let output = connector
            .run_with_stdin(&write_env_file_command(agent), contents.as_bytes())
            .await?;
        check_remote("write the agent's environment file", &output)?;
    }
    let work_dir = shell_quote(&agent.work_dir);

    match project {
        Some(project) => {
            let source = if project.from_git {
                "git-tracked and untracked"
            } else {
                "all"
            };
            info!(target: PROGRESS_TARGET, "Copying {} project files ({source})", project.len());
            copy_project(&connector, project, &work_dir).await?;
        }
        None => {
            let output = connector.run(&format!("mkdir -p {work_dir}")).await?;
            check_remote("create the work directory", &output)?;
        }
    }

    info!(target: PROGRESS_TARGET, "Starting agent {}", agent.name);
    let output = connector.run(&tmux_start_command(agent)).await?;
    check_remote("start the agent's tmux session", &output)?;

    let mut finished = agent.clone();
    finished.creating_pid = None;
    instance.persist_agent_data(host.id(), &finished).await?;
    connector.close().await?;
    Ok(())
}

/// Streams the project as a tar archive into `tar -x` on the host, without
/// holding the archive in memory.
async fn copy_project(
    connector: &ssh_utils::SshConnector,
    project: &ProjectFiles,
    work_dir: &str,
) -> anyhow::Result<()> {
    let (reader, writer) =
        std::io::pipe().context("failed to create a pipe for the project archive")?;
    let reader = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(reader))
        .context("failed to read the project archive pipe")?;

    let output = std::thread::scope(|scope| {
        let archiver = scope.spawn(move || project.write_tar(writer));
        let command = format!("mkdir -p {work_dir} && tar -x -f - -C {work_dir} --no-same-owner");
        let output = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(connector.run_with_stdin(&command, reader))
        });
        let archived = archiver.join();
        (output, archived)
    });

    let (output, archived) = output;
    let output = output?;
    check_remote("unpack the project in the work directory", &output)?;
    match archived {
        Ok(result) => result.with_context(|| {
            format!(
                "failed to archive the project in {}",
                project.root().display()
            )
        }),
        Err(_) => bail!("archiving the project panicked"),
    }
}

/// The agent's environment from `--env KEY=VALUE` and `--pass-env KEY`, in
/// the order given.
fn agent_environment(env: &[String], pass_env: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut variables: Vec<(String, String)> = Vec::new();
    let mut set = |key: &str, value: String| -> anyhow::Result<()> {
        let mut chars = key.chars();
        let valid = chars
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            bail!("invalid environment variable name {key:?}: use ASCII letters, digits and '_', not starting with a digit");
        }
        variables.retain(|(existing, _)| existing != key);
        variables.push((key.to_string(), value));
        Ok(())
    };
    for token in env {
        let Some((key, value)) = token.split_once('=') else {
            bail!("invalid --env {token:?}: expected KEY=VALUE");
        };
        set(key, value.to_string())?;
    }
    for key in pass_env {
        let Some(value) = std::env::var_os(key) else {
            bail!("--pass-env {key}: the variable is not set in mngr's environment");
        };
        let Some(value) = value.to_str() else {
            bail!("--pass-env {key}: the value is not valid UTF-8");
        };
        set(key, value.to_string())?;
    }
    Ok(variables)
}

fn check_remote(action: &str, output: &ssh_utils::CommandOutput) -> anyhow::Result<()> {
    if output.exit_code == Some(0) {
        return Ok(());
    }
    bail!(
        "failed to {action} on the host (exit code {:?}): {}",
        output.exit_code,
        String::from_utf8_lossy(&output.stderr).trim()
    )
}

fn print_created(agent: &AgentData, host: &Host, instance: &dyn ProviderInstance) {
    println!(
        "Created agent {name} on host {host_id} (provider {provider}).",
        name = agent.name,
        host_id = host.id(),
        provider = instance.name()
    );
    println!("  work directory: {}", agent.work_dir);
    println!("  attach:         mngr connect {}", agent.name);
    println!("  run a command:  mngr exec {} -- COMMAND", agent.name);
    println!("  destroy:        mngr destroy {}", agent.name);
}
