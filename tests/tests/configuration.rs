//! End to end: build arguments, configuration with several provider
//! instances (one through a loopback `tcp://` endpoint), tags, rename, agent
//! data of stopped hosts, agent environment, and the errors users meet.

use std::fs;

use mngr_e2e_tests::{
    describe, docker, docker_inspect, stderr, stdout, test_image, DockerTcpProxy, Sandbox,
};

#[test]
fn build_arguments_reach_the_container() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("buildargs");
    let network = sandbox.create_network();
    let mounted = tempfile::tempdir().unwrap();
    fs::write(mounted.path().join("input.txt"), "from the host\n").unwrap();
    let host_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };

    sandbox.create(
        &name,
        &[
            "--no-copy",
            "-b",
            "--cpu=1.5",
            "-b",
            "--memory=2",
            "-b",
            &format!("--network={network}"),
            "-b",
            &format!("--volume={}:/data:ro", mounted.path().display()),
            "-b",
            &format!("--port=127.0.0.1:{host_port}:8080"),
        ],
    );
    let inspected = docker_inspect(&format!("mngr-{name}"));

    assert_eq!(inspected["Config"]["Image"], test_image().as_str());
    assert_eq!(inspected["HostConfig"]["NanoCpus"], 1_500_000_000_i64);
    assert_eq!(
        inspected["HostConfig"]["Memory"],
        2_i64 * 1024 * 1024 * 1024
    );
    assert_eq!(inspected["HostConfig"]["NetworkMode"], network.as_str());
    assert_eq!(
        inspected["HostConfig"]["Binds"],
        serde_json::json!([format!("{}:/data:ro", mounted.path().display())])
    );
    let published = &inspected["HostConfig"]["PortBindings"]["8080/tcp"][0];
    assert_eq!(published["HostIp"], "127.0.0.1");
    assert_eq!(published["HostPort"], host_port.to_string());
    let read = sandbox.mngr_ok(&["exec", &name, "--", "cat", "/data/input.txt"]);
    assert_eq!(stdout(&read), "from the host\n");
    sandbox.mngr_ok(&["destroy", &name]);
}

#[test]
fn dockerfile_builds_the_image() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("dockerfile");
    let dockerfile = sandbox.project_dir().join("Dockerfile");
    fs::write(
        &dockerfile,
        format!("FROM {}\nCOPY marker.txt /marker.txt\n", test_image()),
    )
    .unwrap();
    fs::write(
        sandbox.project_dir().join("marker.txt"),
        "built from the context\n",
    )
    .unwrap();

    sandbox.mngr_ok(&[
        "create",
        &name,
        "-b",
        "--dockerfile=Dockerfile",
        "--no-copy",
    ]);
    let marker = sandbox.mngr_ok(&["exec", &name, "--", "cat", "/marker.txt"]);

    assert_eq!(stdout(&marker), "built from the context\n");
    let host_id = sandbox.list_entry(&name).unwrap()["host_id"]
        .as_str()
        .unwrap()
        .to_string();
    let built = format!("mngr-build:{host_id}");
    assert!(
        docker(&["image", "inspect", &built]).status.success(),
        "{built} does not exist"
    );
    sandbox.mngr_ok(&["destroy", &name]);
    assert!(
        !docker(&["image", "inspect", &built]).status.success(),
        "{built} is left after destroy"
    );
}

#[test]
fn failed_build_shows_the_log_tail() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("badbuild");
    fs::write(
        sandbox.project_dir().join("Broken.dockerfile"),
        format!("FROM {}\nRUN echo the-last-words && exit 3\n", test_image()),
    )
    .unwrap();

    let output = sandbox.mngr(&[
        "create",
        &name,
        "-b",
        "--dockerfile=Broken.dockerfile",
        "--no-copy",
    ]);

    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("Broken.dockerfile"), "{message}");
    assert!(
        message.contains("the-last-words"),
        "the build log tail is missing: {message}"
    );
    assert_eq!(sandbox.list_entry(&name).unwrap()["state"], "FAILED");
    assert!(sandbox.containers().is_empty());
    sandbox.mngr_ok(&["destroy", &name]);
}

#[test]
fn two_instances_list_only_their_own() {
    let sandbox = Sandbox::new();
    let proxy = DockerTcpProxy::start();
    sandbox.write_config(&format!(
        "[providers.local]\nbackend = \"docker\"\n\n[providers.viatcp]\nbackend = \"docker\"\nhost = \"tcp://127.0.0.1:{}\"\n",
        proxy.port
    ));
    let on_local = sandbox.unique_name("onlocal");
    let on_tcp = sandbox.unique_name("ontcp");
    let image = format!("--image={}", test_image());

    sandbox.mngr_ok(&[
        "create",
        &on_local,
        "--in",
        "local",
        "-b",
        &image,
        "--no-copy",
    ]);
    sandbox.mngr_ok(&[
        "create",
        &on_tcp,
        "--in",
        "viatcp",
        "-b",
        &image,
        "--no-copy",
    ]);
    let listed = sandbox.list_json();

    let providers: Vec<(String, String)> = listed
        .iter()
        .map(|entry| {
            (
                entry["name"].as_str().unwrap().to_string(),
                entry["provider"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        listed.len(),
        2,
        "each host must be listed once: {providers:?}"
    );
    assert!(
        providers.contains(&(on_local.clone(), "local".to_string())),
        "{providers:?}"
    );
    assert!(
        providers.contains(&(on_tcp.clone(), "viatcp".to_string())),
        "{providers:?}"
    );
    let through_tcp = sandbox.mngr_ok(&["exec", &on_tcp, "--", "echo", "via-tcp"]);
    assert_eq!(stdout(&through_tcp), "via-tcp\n");
    let shown = sandbox.mngr_ok(&["config", "show"]);
    assert!(
        stdout(&shown).contains(&format!("host = \"tcp://127.0.0.1:{}\"", proxy.port)),
        "{}",
        stdout(&shown)
    );
    sandbox.mngr_ok(&["destroy", &on_local]);
    sandbox.mngr_ok(&["destroy", &on_tcp]);
}

#[test]
fn invalid_config_names_file_and_key() {
    let sandbox = Sandbox::new();
    sandbox.write_config("[providers.docker]\ndefault_idle_mode = \"sometimes\"\n");

    let output = sandbox.mngr(&["list"]);

    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("config.toml"), "{message}");
    assert!(
        message.contains("providers.docker.default_idle_mode"),
        "{message}"
    );
    assert!(
        message.contains("`io`"),
        "accepted values are not listed: {message}"
    );
}

#[test]
fn tags_change_and_survive_restart() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("tags");
    sandbox.create(
        &name,
        &["--no-copy", "--tag", "team=infra", "--tag", "ticket=$(id)"],
    );

    sandbox.mngr_ok(&["tag", &name, "add", "stage=review"]);
    sandbox.mngr_ok(&["tag", &name, "remove", "team"]);
    sandbox.mngr_ok(&["stop", &name]);
    sandbox.mngr_ok(&["start", &name]);
    let tags = sandbox.mngr_ok(&["tag", &name, "list", "--format", "json"]);
    let tags: serde_json::Value = serde_json::from_slice(&tags.stdout).unwrap();

    assert_eq!(
        tags,
        serde_json::json!({"stage": "review", "ticket": "$(id)"})
    );
    assert_eq!(sandbox.list_entry(&name).unwrap()["tags"], tags);
    sandbox.mngr_ok(&["tag", &name, "set", "only=this"]);
    assert_eq!(
        sandbox.list_entry(&name).unwrap()["tags"],
        serde_json::json!({"only": "this"})
    );
    let bad = sandbox.mngr(&["tag", &name, "add", "bad key=x"]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("invalid tag key"),
        "{}",
        describe(&bad)
    );
    sandbox.mngr_ok(&["destroy", &name]);
}

#[test]
fn rename_moves_the_name() {
    let sandbox = Sandbox::new();
    let old_name = sandbox.unique_name("before");
    let new_name = sandbox.unique_name("after");
    sandbox.create(&old_name, &["--no-copy"]);

    sandbox.mngr_ok(&["rename", &old_name, &new_name]);

    let old = sandbox.mngr(&["exec", &old_name, "--", "true"]);
    assert!(!old.status.success());
    assert!(stderr(&old).contains("not found"), "{}", describe(&old));
    let sessions = sandbox.mngr_ok(&[
        "exec",
        &new_name,
        "--",
        "tmux",
        "list-sessions",
        "-F",
        "#{session_name}",
    ]);
    assert_eq!(stdout(&sessions), format!("{new_name}\n"));
    let entry = sandbox.list_entry(&new_name).unwrap();
    assert_eq!(entry["host_name"], new_name.as_str());
    assert!(sandbox.list_entry(&old_name).is_none());
    // The container keeps its original name.
    assert!(docker(&["inspect", &format!("mngr-{old_name}")])
        .status
        .success());
    sandbox.mngr_ok(&["destroy", &new_name]);
}

#[test]
fn agents_of_stopped_hosts_are_listed() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("offline");
    sandbox.create(&name, &["--no-copy", "--", "sleep", "infinity"]);
    let running = sandbox.list_entry(&name).unwrap();

    sandbox.mngr_ok(&["stop", &name]);
    let stopped = sandbox.list_entry(&name).unwrap();

    assert_eq!(stopped["state"], "STOPPED");
    assert_eq!(stopped["agent_id"], running["agent_id"]);
    assert!(stopped["agent_id"].as_str().unwrap().starts_with("agent-"));
    assert_eq!(stopped["command"], serde_json::json!(["sleep", "infinity"]));
    assert_eq!(stopped["work_dir"], format!("/code/{name}").as_str());
    sandbox.mngr_ok(&["destroy", &name]);
}

#[test]
fn agent_sees_env_and_pass_env() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("env");
    let secret = "s3cr3t value with 'quotes' and $(dollar)";
    let image = format!("--image={}", test_image());
    let output = sandbox
        .mngr_command(&[
            "-vv",
            "create",
            &name,
            "-b",
            &image,
            "--no-copy",
            "--env",
            &format!("GIVEN={secret}"),
            "--pass-env",
            "MNGR_TEST_PASSED",
            "--",
            "sh",
            "-c",
            "printf '%s|%s' \"$GIVEN\" \"$MNGR_TEST_PASSED\" > /tmp/agent-env; exec sleep infinity",
        ])
        .env("MNGR_TEST_PASSED", "passed-through")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));

    let seen = sandbox.mngr_ok(&["exec", &name, "--", "cat", "/tmp/agent-env"]);

    assert_eq!(stdout(&seen), format!("{secret}|passed-through"));
    assert!(
        !stderr(&output).contains("s3cr3t"),
        "a value reached the log:\n{}",
        stderr(&output)
    );
    let records = fs::read_dir(sandbox.instance_dir().join("hosts")).unwrap();
    for entry in records.flatten() {
        let path = entry.path();
        let text = if path.is_dir() {
            fs::read_dir(&path)
                .unwrap()
                .flatten()
                .map(|agent| fs::read_to_string(agent.path()).unwrap())
                .collect()
        } else {
            fs::read_to_string(&path).unwrap_or_default()
        };
        assert!(
            !text.contains("s3cr3t"),
            "a value was stored in {}",
            path.display()
        );
    }
    sandbox.mngr_ok(&["destroy", &name]);
}

#[test]
fn unreachable_daemon_names_endpoint() {
    let sandbox = Sandbox::new();
    let socket = sandbox.mngr_home().join("no-daemon.sock");

    let output = sandbox
        .mngr_command(&["list"])
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .output()
        .unwrap();

    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains(&socket.display().to_string()), "{message}");
    assert!(message.contains("DOCKER_HOST"), "{message}");
}

#[test]
fn missing_image_names_the_pull_policy() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("pullnever");
    let image = "mngr-test-never-pulled:none";

    let never = sandbox.mngr(&[
        "create",
        &name,
        "-b",
        &format!("--image={image}"),
        "-b",
        "--pull=never",
        "--no-copy",
    ]);

    assert!(!never.status.success());
    let message = stderr(&never);
    assert!(message.contains(image), "{message}");
    assert!(message.contains("pull policy is never"), "{message}");
    sandbox.mngr_ok(&["destroy", &name]);

    // A local image is pulled anyway with --pull=always, which fails here
    // because no registry is reachable, and says so.
    let always = sandbox.mngr(&[
        "create",
        &name,
        "-b",
        "--image=mngr-test-local-only:none",
        "-b",
        "--pull=always",
        "--no-copy",
    ]);
    assert!(!always.status.success());
    assert!(
        stderr(&always).contains("pull policy always"),
        "{}",
        describe(&always)
    );
    sandbox.mngr_ok(&["destroy", &name]);
}
