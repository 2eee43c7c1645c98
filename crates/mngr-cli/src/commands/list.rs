//! `mngr list`: one row per agent with its host's state, from every provider
//! instance at once.

use std::process::ExitCode;

use futures_util::future::join_all;
use provider_api::{AgentData, Host, HostState, ProviderError, ProviderInstance, StopReason};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;

use crate::agents::agent_setup_interrupted;
use crate::output::{describe_error, format_table, snapshot_json};
use crate::providers::Providers;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,

    /// Also list hosts whose container is gone but whose record is left (DESTROYED).
    #[arg(long)]
    pub all: bool,
}

/// One listed agent, or a host without an agent (such as a failed create).
struct Row {
    host: Host,
    agent: Option<AgentData>,
}

pub async fn run(args: ListArgs) -> anyhow::Result<ExitCode> {
    let providers = Providers::load()?;
    let listings = join_all(providers.all().map(|instance| async move {
        (instance.name().to_string(), list_instance(instance).await)
    }))
    .await;

    // One unreachable daemon must not hide the hosts of the others, so its
    // error is reported after the listing and turns the exit code non-zero.
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for (instance_name, (instance_rows, error)) in listings {
        rows.extend(instance_rows);
        if let Some(error) = error {
            failures.push(format!(
                "provider {instance_name}: {}",
                describe_error(&error)
            ));
        }
    }
    if !args.all {
        rows.retain(|row| row.host.state != HostState::Destroyed);
    }
    rows.sort_by_key(|row| (row.created_at(), row.name()));

    match args.format {
        ListFormat::Json => {
            let values: Vec<Value> = rows.iter().map(Row::to_json).collect();
            println!("{}", serde_json::to_string_pretty(&values)?);
        }
        ListFormat::Table => {
            if rows.is_empty() {
                println!("No agents. Create one with `mngr create NAME`.");
            } else {
                let cells: Vec<Vec<String>> = rows.iter().map(Row::to_cells).collect();
                println!(
                    "{}",
                    format_table(
                        &["NAME", "STATE", "HOST", "PROVIDER", "SSH", "IMAGE", "CREATED"],
                        &cells
                    )
                );
            }
        }
    }
    for failure in &failures {
        eprintln!("mngr: {failure}");
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The rows of one instance. When its daemon cannot be reached, the rows
/// come from the store (state `UNREACHABLE`) and the error is returned with
/// them, so the listing still shows what mngr has stored.
async fn list_instance(instance: &dyn ProviderInstance) -> (Vec<Row>, Option<anyhow::Error>) {
    let (hosts, error) = match instance.list_hosts().await {
        Ok(hosts) => (hosts, None),
        Err(error @ ProviderError::DaemonUnreachable { .. }) => {
            match instance.list_stored_hosts().await {
                Ok(hosts) => (hosts, Some(anyhow::Error::from(error))),
                Err(store_error) => return (Vec::new(), Some(store_error.into())),
            }
        }
        Err(error) => return (Vec::new(), Some(error.into())),
    };
    match agent_rows(instance, hosts).await {
        Ok(rows) => (rows, error),
        Err(agent_error) => (Vec::new(), Some(agent_error)),
    }
}

async fn agent_rows(instance: &dyn ProviderInstance, hosts: Vec<Host>) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for host in hosts {
        let agents = instance
            .list_persisted_agent_data_for_host(host.id())
            .await?;
        if agents.is_empty() {
            rows.push(Row { host, agent: None });
        } else {
            for agent in agents {
                rows.push(Row {
                    host: host.clone(),
                    agent: Some(agent),
                });
            }
        }
    }
    Ok(rows)
}

impl Row {
    fn name(&self) -> String {
        match &self.agent {
            Some(agent) => agent.name.to_string(),
            None => self.host.name().to_string(),
        }
    }

    fn created_at(&self) -> time::OffsetDateTime {
        match &self.agent {
            Some(agent) => agent.created_at,
            None => self.host.record.certified_host_data.created_at,
        }
    }

    /// The host's state, or `FAILED` when the agent's own setup was
    /// interrupted on a host that is otherwise fine.
    fn state(&self) -> &'static str {
        match &self.agent {
            Some(agent) if agent_setup_interrupted(agent) => "FAILED",
            Some(agent)
                if agent.creating_pid.is_some() && self.host.state == HostState::Running =>
            {
                "STARTING"
            }
            _ => self.host.state.as_str(),
        }
    }

    fn failure_reason(&self) -> Option<String> {
        match &self.agent {
            Some(agent) if agent_setup_interrupted(agent) => {
                Some("creation was interrupted while the agent was set up".to_string())
            }
            _ => self.host.record.certified_host_data.failure_reason.clone(),
        }
    }

    fn state_text(&self) -> String {
        match (self.host.state, self.host.stop_reason()) {
            (HostState::Stopped, Some(reason)) if reason != StopReason::Stopped => {
                format!("STOPPED ({reason})")
            }
            _ => self.state().to_string(),
        }
    }

    fn to_cells(&self) -> Vec<String> {
        let data = &self.host.record.certified_host_data;
        let ssh = match &self.host.ssh {
            Some(endpoint) => format!("{}:{}", endpoint.host, endpoint.port),
            None => "-".to_string(),
        };
        vec![
            self.name(),
            self.state_text(),
            self.host.name().to_string(),
            self.host.provider.to_string(),
            ssh,
            data.image.clone().unwrap_or_else(|| "-".to_string()),
            format_timestamp(self.created_at()),
        ]
    }

    fn to_json(&self) -> Value {
        let data = &self.host.record.certified_host_data;
        let snapshots: Vec<Value> = data.snapshots.iter().map(snapshot_json).collect();
        json!({
            "name": self.name(),
            "agent_id": self.agent.as_ref().map(|agent| agent.id.to_string()),
            "command": self.agent.as_ref().map(|agent| agent.command.clone()),
            "work_dir": self.agent.as_ref().map(|agent| agent.work_dir.clone()),
            "host_id": self.host.id().to_string(),
            "host_name": self.host.name().to_string(),
            "provider": self.host.provider.to_string(),
            "state": self.state(),
            "stop_reason": self.host.stop_reason().map(|reason| reason.as_str()),
            "failure_reason": self.failure_reason(),
            "ssh_host": self.host.ssh.as_ref().map(|endpoint| endpoint.host.clone()),
            "ssh_port": self.host.ssh.as_ref().map(|endpoint| endpoint.port),
            "image": data.image,
            "tags": data.user_tags,
            "snapshots": snapshots,
            "created_at": self.created_at().format(&Rfc3339).ok(),
        })
    }
}

/// A timestamp to the second, in UTC, for the table.
fn format_timestamp(moment: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    moment
        .to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}
