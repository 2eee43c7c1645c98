//! `mngr tag NAME list|add|remove|set`: an agent's host tags, kept in the host
//! record so they can change after creation.

use std::process::ExitCode;

use crate::agents::find_agent;
use crate::commands::list::ListFormat;
use crate::providers::Providers;
use crate::tags::{check_tag_key, parse_tags};

#[derive(Debug, clap::Args)]
pub struct TagArgs {
    /// The agent's name.
    pub name: String,

    #[command(subcommand)]
    pub command: TagCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum TagCommand {
    /// Print the tags.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Add or change tags, keeping the others.
    Add {
        /// Tags as KEY=VALUE.
        #[arg(required = true, value_name = "KEY=VALUE")]
        tags: Vec<String>,
    },
    /// Remove tags by key; absent keys are ignored.
    Remove {
        /// Tag keys.
        #[arg(required = true, value_name = "KEY")]
        keys: Vec<String>,
    },
    /// Replace all tags with these.
    Set {
        /// Tags as KEY=VALUE; none removes every tag.
        #[arg(value_name = "KEY=VALUE")]
        tags: Vec<String>,
    },
}

pub async fn run(args: TagArgs) -> anyhow::Result<ExitCode> {
    let providers = Providers::load()?;
    let found = find_agent(&providers, &args.name).await?;
    let host_id = found.host.id();

    match args.command {
        TagCommand::List { format } => {
            let tags = found.instance.get_host_tags(host_id).await?;
            match format {
                ListFormat::Json => println!("{}", serde_json::to_string_pretty(&tags)?),
                ListFormat::Table => {
                    for (key, value) in tags {
                        println!("{key}={value}");
                    }
                }
            }
        }
        TagCommand::Add { tags } => {
            let tags = parse_tags(&tags)?;
            found.instance.add_tags_to_host(host_id, tags).await?;
        }
        TagCommand::Remove { keys } => {
            for key in &keys {
                check_tag_key(key)?;
            }
            found.instance.remove_tags_from_host(host_id, &keys).await?;
        }
        TagCommand::Set { tags } => {
            let tags = parse_tags(&tags)?;
            found.instance.set_host_tags(host_id, tags).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
