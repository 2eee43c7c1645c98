//! `mngr config show`: the effective configuration of every provider instance,
//! with defaults filled in.

use std::process::ExitCode;

use anyhow::anyhow;
use provider_api::{ProviderInstanceName, ProviderRegistration};

use crate::providers::{read_provider_tables, Providers};

#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration as TOML.
    Show,
}

pub fn run(args: ConfigArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ConfigCommand::Show => show(),
    }
}

fn show() -> anyhow::Result<ExitCode> {
    let providers = Providers::load()?;
    let context = &providers.context;
    println!("# MNGR_HOME = {}", context.mngr_home.display());
    println!("# MNGR_PROFILE = {}", context.profile);
    println!("# config file = {}", context.config_file().display());

    let mut document = toml::Table::new();
    let mut instances = toml::Table::new();
    for (name, table) in read_provider_tables(context)? {
        let instance_name = ProviderInstanceName::new(name.as_str())?;
        let backend_name = table
            .get("backend")
            .and_then(toml::Value::as_str)
            .unwrap_or(crate::providers::DEFAULT_INSTANCE);
        let backend = ProviderRegistration::find(backend_name).ok_or_else(|| {
            anyhow!("unknown backend {backend_name:?} for provider instance {name}")
        })?;
        let effective = backend.effective_config(&instance_name, &table, context)?;
        instances.insert(name, toml::Value::Table(effective));
    }
    document.insert("providers".to_string(), toml::Value::Table(instances));
    print!("{}", toml::to_string_pretty(&document)?);
    Ok(ExitCode::SUCCESS)
}
