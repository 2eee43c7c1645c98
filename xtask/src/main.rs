//! `cargo xtask`: the project's chores that are more than `cargo build`,
//! written in Rust so they need nothing beyond cargo, Docker and Debian's
//! tools. This file only dispatches subcommands and prints help. Each
//! subcommand lives in its own module, and every external program runs
//! through `util` so its command line is echoed before it runs.

mod base_image;
mod bench;
mod demo;
mod test;
mod util;

use std::process::ExitCode;

const HELP: &str = "\
usage: cargo xtask <command> [options]

commands:
  base-image [--force]  build the local image mngr-base:bookworm from Debian
                        packages with debootstrap (needs root; takes
                        minutes); --force rebuilds an existing image
  test                  run fmt --check, clippy, build the base image if
                        missing, build mngr, then run every workspace test
  demo                  build mngr and run create, list, exec and destroy
                        against a Docker host, with a temporary MNGR_HOME
  bench [--runs N] [--json PATH]
                        measure every mngr operation next to plain docker
                        and ssh, print a table and write the figures as JSON

Run `cargo xtask <command> --help` for a command's details.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        println!("{HELP}");
        return ExitCode::SUCCESS;
    };

    let result = match command.as_str() {
        "base-image" => base_image::command(rest),
        "test" => test::command(rest),
        "demo" => demo::command(rest),
        "bench" => bench::command(rest),
        "-h" | "--help" | "help" => {
            println!("{HELP}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprintln!("error: unknown command `{other}`\n\n{HELP}");
            return ExitCode::from(2);
        }
    };

    // Printed by hand rather than returned from main, so that a set
    // RUST_BACKTRACE does not bury the message under anyhow's backtrace.
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
