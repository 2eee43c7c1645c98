//! End to end: create, list, exec, connect and destroy against the real Docker
//! daemon, through the `mngr` binary.

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use mngr_e2e_tests::{describe, docker, docker_inspect, stderr, stdout, test_image, Sandbox};

#[test]
fn create_list_exec_destroy() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("basic");
    fs::write(
        sandbox.project_dir().join("hello.txt"),
        "hello from the project\n",
    )
    .unwrap();

    let created = sandbox.create(
        &name,
        &["--", "sh", "-c", "echo agent says hi; exec sleep infinity"],
    );
    assert!(
        stdout(&created).contains(&format!("mngr connect {name}")),
        "{}",
        describe(&created)
    );

    let entry = sandbox.list_entry(&name).expect("the agent is listed");
    assert_eq!(entry["state"], "RUNNING");
    assert_eq!(entry["host_name"], name.as_str());
    assert_eq!(entry["provider"], "docker");
    assert_eq!(entry["ssh_host"], "127.0.0.1");
    assert!(
        entry["ssh_port"].as_u64().is_some_and(|port| port > 0),
        "{entry}"
    );
    assert_eq!(entry["image"], test_image().as_str());
    assert!(entry["tags"].is_object(), "{entry}");
    let host_id = entry["host_id"].as_str().unwrap().to_string();
    assert!(
        host_id.starts_with("host-") && host_id.len() == 37,
        "{host_id}"
    );
    let created_at = entry["created_at"].as_str().unwrap();
    assert!(
        time_is_rfc3339(created_at),
        "created_at {created_at:?} is not RFC 3339"
    );

    let cat = sandbox.mngr_ok(&["exec", &name, "--", "cat", "hello.txt"]);
    assert_eq!(stdout(&cat), "hello from the project\n");

    let failing = sandbox.mngr(&[
        "exec",
        &name,
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 7",
    ]);
    assert_eq!(failing.status.code(), Some(7), "{}", describe(&failing));
    assert_eq!(stdout(&failing), "out\n");
    assert_eq!(stderr(&failing), "err\n");

    let work_dir = sandbox.mngr_ok(&["exec", &name, "--", "pwd"]);
    assert_eq!(stdout(&work_dir), format!("/code/{name}\n"));

    let table = sandbox.mngr_ok(&["list"]);
    assert!(stdout(&table).contains(&name), "{}", describe(&table));

    sandbox.mngr_ok(&["destroy", &name]);
    assert!(sandbox.containers().is_empty(), "a container is left");
    assert!(
        sandbox.host_record_files().is_empty(),
        "a host record is left"
    );
    assert!(sandbox.list_entry(&name).is_none());
    let known_hosts = fs::read_to_string(sandbox.known_hosts()).unwrap_or_default();
    assert!(
        known_hosts.trim().is_empty(),
        "a known_hosts entry is left: {known_hosts}"
    );
}

fn time_is_rfc3339(text: &str) -> bool {
    // 2026-12-04T19:57:35.281516695Z or with an offset
    text.len() >= 20
        && text.as_bytes()[4] == b'-'
        && text.as_bytes()[10] == b'T'
        && (text.ends_with('Z') || text.contains('+'))
}

#[test]
fn container_has_labels_entrypoint_and_loopback_port() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("inspect");
    sandbox.create(&name, &["--no-copy"]);
    let host_id = sandbox.list_entry(&name).unwrap()["host_id"]
        .as_str()
        .unwrap()
        .to_string();

    let inspected = docker_inspect(&format!("mngr-{name}"));

    let labels = &inspected["Config"]["Labels"];
    assert_eq!(labels["com.imbue.mngr.host-id"], host_id.as_str());
    assert_eq!(labels["com.imbue.mngr.host-name"], name.as_str());
    assert_eq!(labels["com.imbue.mngr.provider"], "docker");
    let entrypoint = inspected["Config"]["Entrypoint"].as_array().unwrap();
    assert_eq!(entrypoint[0], "sh");
    assert_eq!(entrypoint[1], "-c");
    let command = entrypoint[2].as_str().unwrap();
    assert!(command.starts_with("trap 'exit 0' TERM; "), "{command}");
    assert!(command.ends_with("tail -f /dev/null & wait"), "{command}");
    assert!(command.contains("/mngr/boot.sh"), "{command}");
    let bindings = inspected["HostConfig"]["PortBindings"]["22/tcp"]
        .as_array()
        .unwrap();
    assert_eq!(bindings.len(), 1);
    assert_eq!(bindings[0]["HostIp"], "127.0.0.1");
    let published = inspected["NetworkSettings"]["Ports"]["22/tcp"]
        .as_array()
        .unwrap();
    assert!(!published.is_empty());
    for binding in published {
        assert_eq!(
            binding["HostIp"], "127.0.0.1",
            "port 22 is published beyond loopback: {binding}"
        );
    }

    sandbox.mngr_ok(&["destroy", &name]);
}

#[test]
fn duplicate_name_is_rejected_and_changes_nothing() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("dup");
    sandbox.create(&name, &["--no-copy"]);
    let containers_before = sandbox.containers();
    let records_before = sandbox.host_record_files();
    let entry_before = sandbox.list_entry(&name).unwrap();

    let image = format!("--image={}", test_image());
    let second = sandbox.mngr(&["create", &name, "-b", &image, "--no-copy"]);

    assert!(!second.status.success(), "{}", describe(&second));
    let message = stderr(&second);
    assert!(message.contains("already in use"), "{message}");
    assert!(message.contains(&name), "{message}");
    assert_eq!(sandbox.containers(), containers_before);
    assert_eq!(sandbox.host_record_files(), records_before);
    assert_eq!(sandbox.list_entry(&name).unwrap(), entry_before);

    sandbox.mngr_ok(&["destroy", &name]);
}

#[test]
fn container_name_clash_is_rejected() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("clash");
    // A container that is not mngr's but holds the name mngr would use.
    let created = docker(&[
        "create",
        "--name",
        &format!("mngr-{name}"),
        "--label",
        &format!("{}={}", mngr_e2e_tests::TEST_RUN_LABEL, sandbox.run_id),
        &test_image(),
        "true",
    ]);
    assert!(created.status.success(), "{}", describe(&created));

    let image = format!("--image={}", test_image());
    let output = sandbox.mngr(&["create", &name, "-b", &image, "--no-copy"]);

    assert!(!output.status.success(), "{}", describe(&output));
    assert!(
        stderr(&output).contains("already in use"),
        "{}",
        describe(&output)
    );
    assert!(
        sandbox.host_record_files().is_empty(),
        "a record was written for a clash"
    );
    assert_eq!(sandbox.containers().len(), 1);
}

#[test]
fn project_copy_follows_git_rules() {
    let sandbox = Sandbox::new();
    let project = sandbox.project_dir();
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .arg("-C")
            .arg(project)
            .args(["-c", "user.name=test", "-c", "user.email=test@example.com"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            describe(&output)
        );
    };
    git(&["init", "-q"]);
    fs::write(project.join(".gitignore"), "*.log\n").unwrap();
    fs::create_dir(project.join("src")).unwrap();
    fs::write(project.join("src/main.txt"), "tracked").unwrap();
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "initial"]);
    fs::write(project.join("notes.txt"), "untracked").unwrap();
    fs::write(project.join("debug.log"), "ignored").unwrap();
    let name = sandbox.unique_name("git");

    sandbox.create(&name, &[]);
    let listing = stdout(&sandbox.mngr_ok(&[
        "exec",
        &name,
        "--",
        "find . -path ./.git -prune -o -type f -print | sort",
    ]));
    let status = sandbox.mngr_ok(&["exec", &name, "--", "git", "log", "--format=%s"]);

    assert_eq!(listing, "./.gitignore\n./notes.txt\n./src/main.txt\n");
    assert_eq!(stdout(&status), "initial\n");
    sandbox.mngr_ok(&["destroy", &name]);
}

#[test]
fn no_copy_starts_in_empty_work_dir() {
    let sandbox = Sandbox::new();
    fs::write(sandbox.project_dir().join("file.txt"), "x").unwrap();
    let name = sandbox.unique_name("nocopy");

    sandbox.create(&name, &["--no-copy"]);
    let listing = sandbox.mngr_ok(&["exec", &name, "--", "ls", "-A"]);

    assert_eq!(stdout(&listing), "");
    sandbox.mngr_ok(&["destroy", &name]);
}

#[test]
fn connect_attaches_to_agent_terminal() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("connect");
    sandbox.create(
        &name,
        &[
            "--no-copy",
            "--",
            "sh",
            "-c",
            "echo marker-from-agent; exec sleep infinity",
        ],
    );

    // A local tmux server gives `mngr connect` a real pseudo-terminal.
    let socket = format!("mngr-test-{}", sandbox.run_id);
    let mngr_command = format!(
        "MNGR_HOME='{}' '{}' connect {name}",
        sandbox.mngr_home().display(),
        mngr_e2e_tests::mngr_bin().display()
    );
    let started = Command::new("tmux")
        .args([
            "-L",
            &socket,
            "new-session",
            "-d",
            "-x",
            "120",
            "-y",
            "30",
            &mngr_command,
        ])
        .output()
        .unwrap();
    assert!(started.status.success(), "{}", describe(&started));

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut screen = String::new();
    while Instant::now() < deadline {
        let captured = Command::new("tmux")
            .args(["-L", &socket, "capture-pane", "-p"])
            .output()
            .unwrap();
        screen = stdout(&captured);
        if screen.contains("marker-from-agent") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = Command::new("tmux")
        .args(["-L", &socket, "kill-server"])
        .output();

    assert!(
        screen.contains("marker-from-agent"),
        "the agent's terminal was not shown:\n{screen}"
    );
    sandbox.mngr_ok(&["destroy", &name]);
}

#[test]
fn exec_of_unknown_agent_suggests_close_names() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("known");
    sandbox.create(&name, &["--no-copy"]);

    let typo = format!("{name}x");
    let output = sandbox.mngr(&["exec", &typo, "--", "true"]);

    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("not found"), "{message}");
    assert!(message.contains(&name), "no suggestion in: {message}");
    sandbox.mngr_ok(&["destroy", &name]);
}
