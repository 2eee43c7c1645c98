//! `mngr snapshot create|list|delete`: snapshots of an agent's host.

use std::process::ExitCode;

use time::format_description::well_known::Rfc3339;

use crate::agents::find_agent;
use crate::commands::list::ListFormat;
use crate::output::{format_table, snapshot_json};
use crate::progress::Progress;
use crate::providers::Providers;

#[derive(Debug, clap::Args)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    pub command: SnapshotCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum SnapshotCommand {
    /// Snapshot the agent's host filesystem.
    Create {
        /// The agent's name.
        name: String,
        /// The snapshot's name (default: snapshot-<UTC time>).
        #[arg(long = "name", value_name = "LABEL")]
        label: Option<String>,
    },
    /// List the snapshots of the agent's host, oldest first.
    List {
        /// The agent's name.
        name: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Delete one snapshot and its image.
    Delete {
        /// The agent's name.
        name: String,
        /// The snapshot's id, id prefix or name.
        snapshot: String,
    },
}

pub async fn run(args: SnapshotArgs, progress: &Progress) -> anyhow::Result<ExitCode> {
    let providers = Providers::load()?;
    match args.command {
        SnapshotCommand::Create { name, label } => {
            let found = find_agent(&providers, &name).await?;
            let snapshot = found
                .instance
                .create_snapshot(found.host.id(), label.as_deref())
                .await?;
            progress.finish();
            println!(
                "Created snapshot {} ({}) of agent {name}.",
                snapshot.name, snapshot.id
            );
        }
        SnapshotCommand::List { name, format } => {
            let found = find_agent(&providers, &name).await?;
            let snapshots = found.instance.list_snapshots(found.host.id()).await?;
            match format {
                ListFormat::Json => {
                    let values: Vec<serde_json::Value> =
                        snapshots.iter().map(snapshot_json).collect();
                    println!("{}", serde_json::to_string_pretty(&values)?);
                }
                ListFormat::Table => {
                    if snapshots.is_empty() {
                        println!("Agent {name} has no snapshots.");
                    } else {
                        let rows: Vec<Vec<String>> = snapshots
                            .iter()
                            .map(|snapshot| {
                                vec![
                                    snapshot.name.clone(),
                                    snapshot.id.clone(),
                                    snapshot.created_at.format(&Rfc3339).unwrap_or_default(),
                                ]
                            })
                            .collect();
                        println!("{}", format_table(&["NAME", "ID", "CREATED"], &rows));
                    }
                }
            }
        }
        SnapshotCommand::Delete { name, snapshot } => {
            let found = find_agent(&providers, &name).await?;
            found
                .instance
                .delete_snapshot(found.host.id(), &snapshot)
                .await?;
            progress.finish();
            println!("Deleted snapshot {snapshot} of agent {name}.");
        }
    }
    Ok(ExitCode::SUCCESS)
}
