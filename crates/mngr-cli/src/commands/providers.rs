//! `mngr providers`: the provider backends linked into this binary, with their
//! build arguments and configuration fields.

use std::process::ExitCode;

use provider_api::ProviderRegistration;

#[derive(Debug, clap::Args)]
pub struct ProvidersArgs {}

pub fn run(_args: ProvidersArgs) -> anyhow::Result<ExitCode> {
    for (index, backend) in ProviderRegistration::all().into_iter().enumerate() {
        if index > 0 {
            println!();
        }
        println!("{}: {}", backend.name(), backend.description());
        println!();
        for line in backend.build_args_help().lines() {
            println!("  {line}");
        }
        println!();
        println!("  Start arguments: {}", backend.start_args_help());
        println!();
        println!(
            "  Configuration ([providers.<name>] with backend = \"{}\"):",
            backend.name()
        );
        for field in backend.config_fields() {
            println!(
                "    {:<26} {:<16} default {:<12} {}",
                field.name, field.type_name, field.default, field.description
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
