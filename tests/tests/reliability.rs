//! End to end: garbage collection, listing with an unreachable daemon,
//! isolation between stores, and many mngr processes at once.

use std::fs;
use std::thread;

use mngr_e2e_tests::{describe, docker, stderr, stdout, test_image, Sandbox};

#[test]
fn unreachable_daemon_still_lists_stored_hosts() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("offline");
    sandbox.create(&name, &["--no-copy"]);
    let socket = sandbox.mngr_home().join("gone.sock");

    let output = sandbox
        .mngr_command(&["list", "--format", "json"])
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .output()
        .unwrap();

    assert!(!output.status.success(), "{}", describe(&output));
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    let entry = listed
        .iter()
        .find(|entry| entry["name"] == name.as_str())
        .expect("the stored host is listed");
    assert_eq!(entry["state"], "UNREACHABLE");
    assert!(
        stderr(&output).contains(&socket.display().to_string()),
        "{}",
        describe(&output)
    );
    sandbox.mngr_ok(&["destroy", &name]);
}

#[test]
fn gc_removes_untracked_container_and_snapshot() {
    let sandbox = Sandbox::new();
    let orphan = sandbox.unique_name("orphan");
    let snapshotted = sandbox.unique_name("snapped");
    sandbox.create(&orphan, &["--no-copy"]);
    sandbox.create(&snapshotted, &["--no-copy"]);
    sandbox.mngr_ok(&["snapshot", "create", &snapshotted, "--name", "left"]);
    sandbox.mngr_ok(&["destroy", &snapshotted]);
    let (orphan_record, _) = sandbox.host_record(&orphan);
    fs::remove_file(orphan_record).unwrap();

    let dry_run = sandbox.mngr_ok(&["gc", "--dry-run"]);
    assert!(
        stdout(&dry_run).contains("would remove container"),
        "{}",
        describe(&dry_run)
    );
    assert!(
        stdout(&dry_run).contains("would remove image mngr-snapshot:"),
        "{}",
        describe(&dry_run)
    );
    assert_eq!(sandbox.containers().len(), 1, "a dry run removed something");

    let removed = sandbox.mngr_ok(&["gc"]);
    assert!(
        stdout(&removed).contains("removed container"),
        "{}",
        describe(&removed)
    );
    assert!(sandbox.containers().is_empty());
    assert!(
        sandbox.images().is_empty(),
        "the orphaned snapshot image is left"
    );
    let again = sandbox.mngr_ok(&["gc"]);
    assert!(
        stdout(&again).contains("Nothing to remove"),
        "{}",
        describe(&again)
    );
}

#[test]
fn stores_do_not_see_each_other() {
    let first = Sandbox::new();
    let second = Sandbox::new();
    let name = first.unique_name("mine");
    first.create(&name, &["--no-copy"]);

    let listed = second.list_json();
    let collected = second.mngr_ok(&["gc"]);
    let destroy = second.mngr(&["destroy", &name]);

    assert!(
        listed.is_empty(),
        "another store's host is listed: {listed:?}"
    );
    assert!(
        !stdout(&collected).contains(&name),
        "{}",
        describe(&collected)
    );
    assert!(!destroy.status.success());
    assert_eq!(
        first.containers().len(),
        1,
        "another store removed the container"
    );
    assert_eq!(first.list_entry(&name).unwrap()["state"], "RUNNING");
    first.mngr_ok(&["destroy", &name]);
}

#[test]
fn concurrent_creates_and_lists() {
    let sandbox = Sandbox::new();
    let names: Vec<String> = (0..10)
        .map(|index| sandbox.unique_name(&format!("many{index}")))
        .collect();
    let image = format!("--image={}", test_image());

    thread::scope(|scope| {
        let creates: Vec<_> = names
            .iter()
            .map(|name| {
                let sandbox = &sandbox;
                let image = &image;
                scope.spawn(move || {
                    sandbox.mngr(&[
                        "create",
                        name,
                        "-b",
                        image,
                        "--no-copy",
                        "--idle-mode",
                        "disabled",
                    ])
                })
            })
            .collect();
        let lists: Vec<_> = (0..10)
            .map(|_| {
                let sandbox = &sandbox;
                scope.spawn(move || sandbox.mngr(&["list", "--format", "json"]))
            })
            .collect();
        for create in creates {
            let output = create.join().unwrap();
            assert!(output.status.success(), "{}", describe(&output));
        }
        for list in lists {
            let output = list.join().unwrap();
            assert!(output.status.success(), "{}", describe(&output));
            let parsed: Result<Vec<serde_json::Value>, _> = serde_json::from_slice(&output.stdout);
            assert!(
                parsed.is_ok(),
                "a concurrent list printed invalid JSON: {}",
                describe(&output)
            );
        }
    });

    let listed = sandbox.list_json();
    let mut host_ids: Vec<&str> = listed
        .iter()
        .map(|entry| entry["host_id"].as_str().unwrap())
        .collect();
    host_ids.sort_unstable();
    host_ids.dedup();
    assert_eq!(host_ids.len(), 10, "{listed:?}");
    for entry in &listed {
        assert_eq!(entry["state"], "RUNNING", "{entry}");
    }
    assert_eq!(sandbox.host_record_files().len(), 10);
    assert_eq!(sandbox.containers().len(), 10);

    // Concurrent tag edits on one host lose no update.
    let target = &names[0];
    thread::scope(|scope| {
        let edits: Vec<_> = (0..10)
            .map(|index| {
                let sandbox = &sandbox;
                scope.spawn(move || {
                    sandbox.mngr(&["tag", target, "add", &format!("key{index}=value{index}")])
                })
            })
            .collect();
        for edit in edits {
            let output = edit.join().unwrap();
            assert!(output.status.success(), "{}", describe(&output));
        }
    });
    let tags = sandbox.list_entry(target).unwrap()["tags"].clone();
    assert_eq!(
        tags.as_object().unwrap().len(),
        10,
        "a concurrent tag edit was lost: {tags}"
    );

    for name in &names {
        sandbox.mngr_ok(&["destroy", name]);
    }
    let left = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!(
            "label={}={}",
            mngr_e2e_tests::TEST_RUN_LABEL,
            sandbox.run_id
        ),
    ]);
    assert!(stdout(&left).trim().is_empty());
}
