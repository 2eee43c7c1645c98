//! End to end: stop, start, snapshots, idle shutdown, and hosts whose
//! container was killed or removed behind mngr's back.

use std::fs;
use std::time::{Duration, Instant};

use mngr_e2e_tests::{describe, docker, stderr, stdout, test_image, Sandbox};

#[test]
fn stop_and_start_keep_files() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("stopstart");
    sandbox.create(
        &name,
        &[
            "--no-copy",
            "--",
            "sh",
            "-c",
            "echo agent-running; exec sleep infinity",
        ],
    );
    sandbox.mngr_ok(&["exec", &name, "--", "echo kept > kept.txt"]);

    sandbox.mngr_ok(&["stop", &name]);
    let stopped = sandbox.list_entry(&name).unwrap();
    assert_eq!(stopped["state"], "STOPPED");
    assert_eq!(stopped["stop_reason"], "STOPPED");
    assert!(stopped["ssh_port"].is_null(), "{stopped}");
    let running = docker(&["ps", "-q", "--filter", &format!("name=^mngr-{name}$")]);
    assert!(
        stdout(&running).trim().is_empty(),
        "the container still runs"
    );
    let exec_stopped = sandbox.mngr(&["exec", &name, "--", "true"]);
    assert!(!exec_stopped.status.success());
    assert!(
        stderr(&exec_stopped).contains(&format!("mngr start {name}")),
        "{}",
        describe(&exec_stopped)
    );

    sandbox.mngr_ok(&["start", &name]);
    let started = sandbox.list_entry(&name).unwrap();
    assert_eq!(started["state"], "RUNNING");
    assert!(started["stop_reason"].is_null(), "{started}");
    let kept = sandbox.mngr_ok(&["exec", &name, "--", "cat", "kept.txt"]);
    assert_eq!(stdout(&kept), "kept\n");
    let sessions = sandbox.mngr_ok(&[
        "exec",
        &name,
        "--",
        "tmux",
        "list-sessions",
        "-F",
        "#{session_name}",
    ]);
    assert_eq!(
        stdout(&sessions),
        format!("{name}\n"),
        "the agent was not restarted"
    );

    let second_start = sandbox.mngr_ok(&["start", &name]);
    assert!(second_start.status.success());
    sandbox.mngr_ok(&["destroy", &name]);
}

#[test]
fn wrong_ssh_port_is_healed() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("heal");
    sandbox.create(&name, &["--no-copy"]);
    let live_port = sandbox.list_entry(&name).unwrap()["ssh_port"]
        .as_u64()
        .unwrap();

    // Through `mngr list`.
    let (path, mut record) = sandbox.host_record(&name);
    record["ssh_port"] = serde_json::json!(1);
    fs::write(&path, serde_json::to_string_pretty(&record).unwrap()).unwrap();
    let listed = sandbox.mngr_ok(&["-v", "list", "--format", "json"]);
    assert!(
        stderr(&listed).contains("healed"),
        "no heal logged:\n{}",
        describe(&listed)
    );
    let (_, healed) = sandbox.host_record(&name);
    assert_eq!(healed["ssh_port"].as_u64(), Some(live_port));
    sandbox.mngr_ok(&["exec", &name, "--", "true"]);

    // Through `mngr start` after a restart, where Docker may publish another port.
    sandbox.mngr_ok(&["stop", &name]);
    let (path, mut record) = sandbox.host_record(&name);
    record["ssh_port"] = serde_json::json!(2);
    fs::write(&path, serde_json::to_string_pretty(&record).unwrap()).unwrap();
    sandbox.mngr_ok(&["start", &name]);
    let entry = sandbox.list_entry(&name).unwrap();
    let (_, healed) = sandbox.host_record(&name);
    assert_eq!(healed["ssh_port"], entry["ssh_port"]);
    assert_ne!(healed["ssh_port"].as_u64(), Some(2));
    let echo = sandbox.mngr_ok(&["exec", &name, "--", "echo", "reachable"]);
    assert_eq!(stdout(&echo), "reachable\n");
    sandbox.mngr_ok(&["destroy", &name]);
}

#[test]
fn snapshot_restore_list_and_delete() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("snap");
    sandbox.create(&name, &["--no-copy"]);
    sandbox.mngr_ok(&["exec", &name, "--", "echo first > state.txt"]);
    sandbox.mngr_ok(&["snapshot", "create", &name, "--name", "first"]);
    sandbox.mngr_ok(&[
        "exec",
        &name,
        "--",
        "echo second > state.txt; echo later > later.txt",
    ]);
    sandbox.mngr_ok(&["snapshot", "create", &name]);

    let listed = sandbox.mngr_ok(&["snapshot", "list", &name, "--format", "json"]);
    let snapshots: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(snapshots.len(), 2, "{snapshots:?}");
    assert_eq!(snapshots[0]["name"], "first", "oldest first: {snapshots:?}");
    assert!(
        snapshots[1]["name"]
            .as_str()
            .unwrap()
            .starts_with("snapshot-"),
        "{snapshots:?}"
    );
    for snapshot in &snapshots {
        assert!(
            snapshot["id"].as_str().unwrap().starts_with("sha256:"),
            "{snapshot}"
        );
        assert!(snapshot["created_at"].is_string(), "{snapshot}");
    }
    let entry = sandbox.list_entry(&name).unwrap();
    assert_eq!(entry["snapshots"].as_array().unwrap().len(), 2);
    let host_id = entry["host_id"].as_str().unwrap().to_string();
    let tags = docker(&["images", "mngr-snapshot", "--format", "{{.Tag}}"]);
    assert!(
        stdout(&tags).contains(&format!("{host_id}-first")),
        "{}",
        describe(&tags)
    );

    sandbox.mngr_ok(&["start", &name, "--snapshot", "first"]);
    let state = sandbox.mngr_ok(&["exec", &name, "--", "cat", "state.txt"]);
    assert_eq!(stdout(&state), "first\n");
    let later = sandbox.mngr(&["exec", &name, "--", "test", "-e", "later.txt"]);
    assert_eq!(
        later.status.code(),
        Some(1),
        "a file from after the snapshot exists"
    );

    let second_id = snapshots[1]["id"].as_str().unwrap();
    sandbox.mngr_ok(&["snapshot", "delete", &name, second_id]);
    let remaining = sandbox.mngr_ok(&["snapshot", "list", &name, "--format", "json"]);
    let remaining: Vec<serde_json::Value> = serde_json::from_slice(&remaining.stdout).unwrap();
    assert_eq!(remaining.len(), 1);
    assert_eq!(remaining[0]["name"], "first");
    let deleted = docker(&["image", "inspect", second_id]);
    assert!(
        !deleted.status.success(),
        "the deleted snapshot's image still exists"
    );

    sandbox.mngr_ok(&["destroy", &name, "--delete-snapshots"]);
    let left = docker(&["images", "mngr-snapshot", "--format", "{{.Tag}}"]);
    assert!(
        !stdout(&left).contains(&host_id),
        "snapshot images are left: {}",
        stdout(&left)
    );
    assert!(sandbox.images().is_empty());
}

#[test]
fn idle_host_stops_itself() {
    let sandbox = Sandbox::new();
    let idle = sandbox.unique_name("idle");
    let kept = sandbox.unique_name("keep");
    let started = Instant::now();
    sandbox.create(&idle, &["--no-copy", "--idle-timeout", "20"]);
    sandbox.create(
        &kept,
        &[
            "--no-copy",
            "--idle-timeout",
            "20",
            "--idle-mode",
            "disabled",
        ],
    );

    let entry = sandbox.wait_for_entry(&idle, Duration::from_secs(60), |entry| {
        entry["state"] == "STOPPED"
    });

    assert_eq!(entry["stop_reason"], "IDLE");
    assert!(
        started.elapsed() >= Duration::from_secs(20),
        "stopped before the idle timeout"
    );
    assert_eq!(sandbox.list_entry(&kept).unwrap()["state"], "RUNNING");
    let table = sandbox.mngr_ok(&["list"]);
    assert!(
        stdout(&table).contains("STOPPED (IDLE)"),
        "{}",
        stdout(&table)
    );
    sandbox.mngr_ok(&["destroy", &idle]);
    sandbox.mngr_ok(&["destroy", &kept]);
}

#[test]
fn killed_container_is_crashed_and_restartable() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("crash");
    sandbox.create(&name, &["--no-copy"]);

    let killed = docker(&["kill", &format!("mngr-{name}")]);
    assert!(killed.status.success(), "{}", describe(&killed));

    let entry = sandbox.list_entry(&name).unwrap();
    assert_eq!(entry["state"], "CRASHED");
    sandbox.mngr_ok(&["start", &name]);
    assert_eq!(sandbox.list_entry(&name).unwrap()["state"], "RUNNING");
    let echo = sandbox.mngr_ok(&["exec", &name, "--", "echo", "back"]);
    assert_eq!(stdout(&echo), "back\n");
    sandbox.mngr_ok(&["destroy", &name]);
}

#[test]
fn removed_container_is_destroyed() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("removed");
    sandbox.create(&name, &["--no-copy"]);

    let removed = docker(&["rm", "-f", &format!("mngr-{name}")]);
    assert!(removed.status.success(), "{}", describe(&removed));

    assert!(
        sandbox.list_entry(&name).is_none(),
        "a destroyed host is listed without --all"
    );
    let all = sandbox.mngr_ok(&["list", "--all", "--format", "json"]);
    let all: Vec<serde_json::Value> = serde_json::from_slice(&all.stdout).unwrap();
    let entry = all
        .iter()
        .find(|entry| entry["name"] == name.as_str())
        .expect("listed with --all");
    assert_eq!(entry["state"], "DESTROYED");
    sandbox.mngr_ok(&["destroy", &name]);
    assert!(sandbox.host_record_files().is_empty());
}

#[test]
fn failed_create_is_listed_until_destroyed() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("failed");
    let output = sandbox.mngr(&[
        "create",
        &name,
        "-b",
        "--image=mngr-test-absent:none",
        "--no-copy",
    ]);
    assert!(!output.status.success());

    let entry = sandbox.list_entry(&name).expect("a failed host is listed");
    assert_eq!(entry["state"], "FAILED");
    assert!(
        entry["failure_reason"]
            .as_str()
            .unwrap()
            .contains("mngr-test-absent:none"),
        "{entry}"
    );
    let (_, record) = sandbox.host_record(&name);
    assert!(
        record["certified_host_data"]["build_log"].is_string(),
        "{record}"
    );
    let start = sandbox.mngr(&["start", &name]);
    assert!(!start.status.success());
    assert!(
        stderr(&start).contains("mngr destroy"),
        "{}",
        describe(&start)
    );
    assert!(sandbox.containers().is_empty());
    let _ = test_image();

    sandbox.mngr_ok(&["destroy", &name]);
    assert!(sandbox.list_entry(&name).is_none());
}
