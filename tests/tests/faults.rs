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

/// A check that reports whether a `mngr create` has reached a step.
type StepReached = dyn Fn(&Sandbox) -> bool;

#[test]
fn killed_create_steps_leave_no_orphan() {
    let sandbox = Sandbox::new();
    let image = format!("--image={}", test_image());
    // Each step is reached when its condition first holds.
    let steps: [(&str, &StepReached); 3] = [
        ("record written", &|sandbox: &Sandbox| {
            !sandbox.host_record_files().is_empty()
        }),
        ("container created", &|sandbox: &Sandbox| {
            !sandbox.containers().is_empty()
        }),
        ("container started", &|sandbox: &Sandbox| {
            let running = docker(&[
                "ps",
                "-q",
                "--filter",
                &format!("label={TEST_RUN_LABEL}={}", sandbox.run_id),
            ]);
            !stdout(&running).trim().is_empty()
        }),
    ];

    for (index, (step, reached)) in steps.iter().enumerate() {
        let name = sandbox.unique_name(&format!("step{index}"));
        let mut create = sandbox
            .mngr_command(&["create", &name, "-b", &image, "--no-copy"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !reached(&sandbox) {
            assert!(Instant::now() < deadline, "step {step} was never reached");
            std::thread::sleep(Duration::from_millis(5));
        }
        create.kill().unwrap();
        let finished = create.wait().unwrap();

        let listed = sandbox.mngr_ok(&["list", "--all", "--format", "json"]);
        let entries: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).unwrap();
        let entry = entries.iter().find(|entry| entry["name"] == name.as_str());
        // The create may have finished just before the kill landed.
        if finished.success() {
            sandbox.mngr_ok(&["destroy", &name]);
            continue;
        }
        let entry = entry.unwrap_or_else(|| panic!("killed after {step}: the host is not listed"));
        assert_eq!(entry["state"], "FAILED", "killed after {step}: {entry}");
        sandbox.mngr_ok(&["destroy", &name]);
        assert!(
            sandbox.host_record_files().is_empty(),
            "killed after {step}: a record is left"
        );
        // A create request already on its way to the daemon when mngr died
        // can still produce a container after the destroy. That container
        // never runs, and gc removes it because it has no record.
        let running = docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("label={TEST_RUN_LABEL}={}", sandbox.run_id),
        ]);
        assert!(
            stdout(&running).trim().is_empty(),
            "killed after {step}: a container runs"
        );
        std::thread::sleep(Duration::from_millis(300));
        sandbox.mngr_ok(&["gc"]);
        assert!(
            sandbox.containers().is_empty(),
            "killed after {step}: gc left a container"
        );
    }
}

#[test]
fn deleted_keys_are_replaced_on_restart() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("nokeys");
    sandbox.create(&name, &["--no-copy"]);
    fs::remove_dir_all(sandbox.instance_dir().join("keys")).unwrap();

    let exec = sandbox.mngr(&["exec", &name, "--", "true"]);
    assert!(!exec.status.success());
    sandbox.mngr_ok(&["stop", &name]);
    sandbox.mngr_ok(&["start", &name]);
    let echo = sandbox.mngr_ok(&["exec", &name, "--", "echo", "new-keys"]);

    assert_eq!(stdout(&echo), "new-keys\n");
    sandbox.mngr_ok(&["destroy", &name]);
}

#[test]
fn renamed_container_is_still_found() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("renamedctr");
    sandbox.create(&name, &["--no-copy"]);

    let renamed = docker(&["rename", &format!("mngr-{name}"), &format!("other-{name}")]);
    assert!(renamed.status.success(), "{}", describe(&renamed));

    assert_eq!(sandbox.list_entry(&name).unwrap()["state"], "RUNNING");
    let echo = sandbox.mngr_ok(&["exec", &name, "--", "echo", "found"]);
    assert_eq!(stdout(&echo), "found\n");
    sandbox.mngr_ok(&["destroy", &name]);
    assert!(sandbox.containers().is_empty());
}

#[test]
fn unreachable_instance_does_not_hide_others() {
    let sandbox = Sandbox::new();
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    sandbox.write_config(&format!(
        "[providers.local]\nbackend = \"docker\"\n\n[providers.gone]\nbackend = \"docker\"\nhost = \"tcp://127.0.0.1:{closed_port}\"\n"
    ));
    let name = sandbox.unique_name("reachable");
    let image = format!("--image={}", test_image());
    sandbox.mngr_ok(&["create", &name, "--in", "local", "-b", &image, "--no-copy"]);

    let output = sandbox.mngr(&["list", "--format", "json"]);

    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        listed.iter().any(|entry| entry["name"] == name.as_str()),
        "{listed:?}"
    );
    assert!(
        stderr(&output).contains("provider gone"),
        "{}",
        describe(&output)
    );
    assert!(
        stderr(&output).contains(&format!("tcp://127.0.0.1:{closed_port}")),
        "{}",
        describe(&output)
    );
    sandbox.mngr_ok(&["destroy", &name]);
}

#[test]
fn create_killed_during_copy_is_failed() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("midcopy");
    let chunk = vec![7_u8; 256 * 1024];
    for index in 0..200 {
        fs::write(
            sandbox.project_dir().join(format!("blob{index:03}.bin")),
            &chunk,
        )
        .unwrap();
    }
    let image = format!("--image={}", test_image());
    let mut create = sandbox
        .mngr_command(&["create", &name, "-b", &image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // The agent's data is stored just before the copy starts.
    let hosts_dir = sandbox.instance_dir().join("hosts");
    let agent_stored = || {
        fs::read_dir(&hosts_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| entry.path().is_dir())
            .flat_map(|entry| fs::read_dir(entry.path()).into_iter().flatten().flatten())
            .any(|agent| {
                let file_name = agent.file_name().to_string_lossy().into_owned();
                file_name.starts_with("agent-") && file_name.ends_with(".json")
            })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !agent_stored() {
        assert!(Instant::now() < deadline, "the agent was never stored");
        std::thread::sleep(Duration::from_millis(5));
    }
    create.kill().unwrap();
    let finished = create.wait().unwrap();
    if finished.success() {
        sandbox.mngr_ok(&["destroy", &name]);
        return;
    }

    let entry = sandbox.list_entry(&name).expect("the agent is listed");
    assert_eq!(entry["state"], "FAILED", "{entry}");
    assert!(
        entry["failure_reason"]
            .as_str()
            .unwrap()
            .contains("interrupted"),
        "{entry}"
    );
    let exec = sandbox.mngr(&["exec", &name, "--", "true"]);
    assert!(!exec.status.success());
    assert!(
        stderr(&exec).contains("not set up completely"),
        "{}",
        describe(&exec)
    );
    sandbox.mngr_ok(&["destroy", &name]);
    assert!(sandbox.containers().is_empty());
}

#[test]
fn every_command_fails_fast_without_daemon() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("nodaemon");
    sandbox.create(&name, &["--no-copy"]);
    let socket = sandbox.mngr_home().join("missing.sock");
    let image = format!("--image={}", test_image());
    let commands: Vec<Vec<&str>> = vec![
        vec!["create", "other", "-b", &image, "--no-copy"],
        vec!["exec", &name, "--", "true"],
        vec!["stop", &name],
        vec!["start", &name],
        vec!["snapshot", "create", &name],
        vec!["destroy", &name],
        vec!["gc"],
    ];

    for args in commands {
        let started = Instant::now();
        let output = sandbox
            .mngr_command(&args)
            .env("DOCKER_HOST", format!("unix://{}", socket.display()))
            .output()
            .unwrap();
        let elapsed = started.elapsed();

        assert!(
            !output.status.success(),
            "{args:?} succeeded without a daemon"
        );
        assert!(
            stderr(&output).contains(&socket.display().to_string()),
            "{args:?}: {}",
            describe(&output)
        );
        assert!(
            elapsed < Duration::from_secs(10),
            "{args:?} took {elapsed:?}"
        );
    }
    assert!(
        sandbox.host_record_files().len() == 1,
        "a failed command changed the store"
    );
    sandbox.mngr_ok(&["destroy", &name]);
}

#[test]
fn removed_image_does_not_break_the_host() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("noimage");
    fs::write(
        sandbox.project_dir().join("Dockerfile"),
        format!("FROM {}\nRUN echo removable > /marker\n", test_image()),
    )
    .unwrap();
    sandbox.mngr_ok(&[
        "create",
        &name,
        "-b",
        "--dockerfile=Dockerfile",
        "--no-copy",
    ]);
    let host_id = sandbox.list_entry(&name).unwrap()["host_id"]
        .as_str()
        .unwrap()
        .to_string();

    let removed = docker(&["rmi", "-f", &format!("mngr-build:{host_id}")]);
    assert!(removed.status.success(), "{}", describe(&removed));

    assert_eq!(sandbox.list_entry(&name).unwrap()["state"], "RUNNING");
    sandbox.mngr_ok(&["stop", &name]);
    sandbox.mngr_ok(&["start", &name]);
    let marker = sandbox.mngr_ok(&["exec", &name, "--", "cat", "/marker"]);
    assert_eq!(stdout(&marker), "removable\n");
    sandbox.mngr_ok(&["destroy", &name]);
    assert!(sandbox.containers().is_empty());
}
