//! `cargo xtask test`: the whole check CI runs, in order, stopping at the
//! first failure: formatting, clippy, the base image, the tools the tests
//! run (sshd, ssh, tmux, git), the `mngr` binary, and
//! the workspace tests (unit and end-to-end). It deliberately prints nothing
//! after the test runner, so the runner's summary stays the last line of the
//! output for CI to read.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::{base_image, util};

/// Runs `cargo xtask test`.
pub fn command(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        if arg == "-h" || arg == "--help" {
            println!("usage: cargo xtask test");
            println!();
            println!(
                "Runs cargo fmt --check, clippy, builds {} if missing, builds mngr,",
                base_image::IMAGE
            );
            println!("then runs every workspace test with cargo nextest (or cargo test).");
            return Ok(());
        }
        bail!("unknown argument `{arg}` for test; see `cargo xtask test --help`");
    }

    util::header("[1/6] cargo fmt --check");
    util::run(util::cargo().args(["fmt", "--all", "--", "--check"]))?;

    util::header("[2/6] cargo clippy");
    util::run(util::cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;

    util::header(&format!("[3/6] base image {}", base_image::IMAGE));
    base_image::ensure(false)?;

    util::header("[4/6] test tools (sshd, ssh, tmux)");
    ensure_test_tools()?;

    util::header("[5/6] build mngr");
    util::run(util::cargo().args(["build", "-p", "mngr-cli"]))?;
    let mngr_bin = target_directory()?.join("debug").join("mngr");
    if !mngr_bin.is_file() {
        bail!(
            "`cargo build -p mngr-cli` succeeded but {} does not exist; check the [[bin]] name in crates/mngr-cli/Cargo.toml",
            mngr_bin.display()
        );
    }

    util::header("[6/6] workspace tests");
    let mut runner = util::cargo();
    if util::succeeds(util::cargo().args(["nextest", "--version"])) {
        runner.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
    } else {
        println!("cargo-nextest is not installed; falling back to cargo test");
        runner.args(["test", "--workspace"]);
    }
    runner
        .env("MNGR_BIN", &mngr_bin)
        .env("MNGR_TEST_IMAGE", base_image::IMAGE)
        .env("MNGR_REQUIRE_SSHD", "1");
    let status = util::run_status(&mut runner)?;
    if !status.success() {
        // The runner already printed which tests failed; one more line from
        // here would push its summary off the last line.
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}

/// Installs what the tests run besides mngr: sshd for the ssh-utils
/// connector tests, the OpenSSH client and tmux for the end-to-end tests.
fn ensure_test_tools() -> Result<()> {
    let missing: Vec<&str> = [
        ("/usr/sbin/sshd", "openssh-server"),
        ("/usr/bin/ssh", "openssh-client"),
        ("/usr/bin/tmux", "tmux"),
        ("/usr/bin/git", "git"),
    ]
    .into_iter()
    .filter(|(path, _)| !std::path::Path::new(path).exists())
    .map(|(_, package)| package)
    .collect();
    if missing.is_empty() {
        println!("all present");
        return Ok(());
    }
    util::run(std::process::Command::new("apt-get").arg("update"))?;
    util::run(
        std::process::Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing),
    )
}

/// Returns cargo's target directory, which `CARGO_TARGET_DIR` or a config
/// file may move away from `<workspace>/target`.
pub fn target_directory() -> Result<PathBuf> {
    let metadata =
        util::capture(util::cargo().args(["metadata", "--format-version", "1", "--no-deps"]))?;
    let metadata: serde_json::Value =
        serde_json::from_str(&metadata).context("`cargo metadata` printed invalid JSON")?;
    let directory = metadata
        .get("target_directory")
        .and_then(serde_json::Value::as_str)
        .context("`cargo metadata` output has no target_directory string")?;
    Ok(PathBuf::from(directory))
}
