//! End to end: interrupted commands, records and containers changed behind
//! mngr's back, and environment mistakes.

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mngr_e2e_tests::{describe, docker, stderr, stdout, test_image, Sandbox, TEST_RUN_LABEL};

#[test]
fn killed_create_is_listed_failed() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("killed");
    let image = format!("--image={}", test_image());
    let mut create = sandbox
        .mngr_command(&["create", &name, "-b", &image, "--no-copy"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // Kill it as soon as its container exists, before setup can finish.
    let deadline = Instant::now() + Duration::from_secs(20);
    while sandbox.containers().is_empty() {
        assert!(Instant::now() < deadline, "the container never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    create.kill().unwrap();
    create.wait().unwrap();

    let entry = sandbox
        .mngr_ok(&["list", "--all", "--format", "json"])
        .stdout;
    let entries: Vec<serde_json::Value> = serde_json::from_slice(&entry).unwrap();
    let entry = entries
        .iter()
        .find(|entry| entry["name"] == name.as_str())
        .expect("the host is listed");
    assert_eq!(entry["state"], "FAILED", "{entry}");
    assert!(
        entry["failure_reason"]
            .as_str()
            .unwrap()
            .contains("interrupted"),
        "{entry}"
    );
    sandbox.mngr_ok(&["destroy", &name]);
    assert!(
        sandbox.containers().is_empty(),
        "the container of the interrupted create is left"
    );
    assert!(sandbox.host_record_files().is_empty());
}

#[test]
fn failed_name_can_be_created_again() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("retry");
    let failed = sandbox.mngr(&[
        "create",
        &name,
        "-b",
        "--image=mngr-test-typo:none",
        "--no-copy",
    ]);
    assert!(!failed.status.success());
    assert_eq!(sandbox.list_entry(&name).unwrap()["state"], "FAILED");

    sandbox.create(&name, &["--no-copy"]);

    assert_eq!(sandbox.list_entry(&name).unwrap()["state"], "RUNNING");
    assert_eq!(sandbox.host_record_files().len(), 1);
    sandbox.mngr_ok(&["destroy", &name]);
}

#[test]
fn destroy_checks_container_labels() {
    let sandbox = Sandbox::new();
    let first = sandbox.unique_name("first");
    let second = sandbox.unique_name("second");
    sandbox.create(&first, &["--no-copy"]);
    sandbox.create(&second, &["--no-copy"]);
    let (_, second_record) = sandbox.host_record(&second);
    let (first_path, mut first_record) = sandbox.host_record(&first);
    first_record["container_id"] = second_record["container_id"].clone();
    fs::write(
        &first_path,
        serde_json::to_string_pretty(&first_record).unwrap(),
    )
    .unwrap();

    sandbox.mngr_ok(&["destroy", &first]);

    assert!(
        docker(&["inspect", &format!("mngr-{second}")])
            .status
            .success(),
        "the wrong container was removed"
    );
    assert!(
        !docker(&["inspect", &format!("mngr-{first}")])
            .status
            .success(),
        "the host's own container is left"
    );
    sandbox.mngr_ok(&["destroy", &second]);
}

#[test]
fn profile_and_home_are_validated() {
    let sandbox = Sandbox::new();

    let profile = sandbox
        .mngr_command(&["list"])
        .env("MNGR_PROFILE", "../escape")
        .output()
        .unwrap();
    let relative = sandbox
        .mngr_command(&["list"])
        .env("MNGR_HOME", "relative-home")
        .output()
        .unwrap();

    assert!(!profile.status.success());
    assert!(
        stderr(&profile).contains("invalid MNGR_PROFILE"),
        "{}",
        describe(&profile)
    );
    assert!(!sandbox.mngr_home().join("escape").exists());
    assert!(!relative.status.success());
    assert!(
        stderr(&relative).contains("absolute"),
        "{}",
        describe(&relative)
    );
    assert!(!sandbox.project_dir().join("relative-home").exists());
}

#[test]
fn closed_output_pipe_is_quiet() {
    let sandbox = Sandbox::new();

    // The reader closes its end before mngr prints, like `mngr list | head`.
    let shell = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "'{}' list --format json | (exec 0<&-; sleep 0.2); echo \"status=${{PIPESTATUS[0]}}\"",
            mngr_e2e_tests::mngr_bin().display()
        ))
        .env("MNGR_HOME", sandbox.mngr_home())
        .output()
        .unwrap();

    assert!(!stderr(&shell).contains("panicked"), "{}", describe(&shell));
    assert!(
        !stdout(&shell).contains("status=101"),
        "{}",
        describe(&shell)
    );
}

#[test]
fn exec_background_job_runs_in_work_dir() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("bg");
    sandbox.create(&name, &["--no-copy"]);

    let output = sandbox.mngr_ok(&["exec", &name, "--", "true & pwd; wait"]);
    let empty = sandbox.mngr(&["exec", &name, "--", ""]);

    assert_eq!(stdout(&output), format!("/code/{name}\n"));
    assert!(!empty.status.success());
    assert!(
        stderr(&empty).contains("the command is empty"),
        "{}",
        describe(&empty)
    );
    sandbox.mngr_ok(&["destroy", &name]);
}

#[test]
fn destroy_reports_kept_snapshots() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("keptsnap");
    sandbox.create(&name, &["--no-copy"]);
    sandbox.mngr_ok(&["snapshot", "create", &name, "--name", "kept"]);

    let destroyed = sandbox.mngr_ok(&["destroy", &name]);

    assert!(
        stderr(&destroyed).contains("kept 1 snapshot image"),
        "{}",
        describe(&destroyed)
    );
    let images = docker(&[
        "images",
        "-q",
        "--filter",
        &format!("label={TEST_RUN_LABEL}={}", sandbox.run_id),
    ]);
    assert!(
        !stdout(&images).trim().is_empty(),
        "the kept snapshot image is gone"
    );
}
