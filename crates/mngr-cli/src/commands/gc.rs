//! `mngr gc`: removes what mngr created but no longer tracks, in every
//! provider instance.

use std::process::ExitCode;

use crate::output::describe_error;
use crate::providers::Providers;

#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// Only report what would be removed.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(args: GcArgs) -> anyhow::Result<ExitCode> {
    let providers = Providers::load()?;
    let mut failed = false;
    let mut found = 0;
    for instance in providers.all() {
        match instance.garbage_collect(args.dry_run).await {
            Ok(lines) => {
                found += lines.len();
                for line in lines {
                    println!("{}: {line}", instance.name());
                }
            }
            Err(error) => {
                failed = true;
                eprintln!(
                    "mngr: provider {}: {}",
                    instance.name(),
                    describe_error(&error.into())
                );
            }
        }
    }
    if found == 0 && !failed {
        println!("Nothing to remove.");
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
