//! End to end: invalid input fails with a clear message and leaves nothing behind.

use mngr_e2e_tests::{describe, stderr, stdout, test_image, Sandbox};

#[test]
fn invalid_agent_names_are_rejected() {
    let sandbox = Sandbox::new();
    let image = format!("--image={}", test_image());
    for name in [
        "$(touch /tmp/pwned)",
        "a;b",
        "with space",
        "_underscore_first",
        "dots.in.name",
        "ü",
    ] {
        let output = sandbox.mngr(&["create", name, "-b", &image, "--no-copy"]);
        assert!(!output.status.success(), "{name:?} was accepted");
        assert!(
            stderr(&output).contains("invalid agent name"),
            "{name:?}: {}",
            describe(&output)
        );
    }
    assert!(sandbox.containers().is_empty());
    assert!(sandbox.host_record_files().is_empty());
}

#[test]
fn invalid_build_argument_names_the_argument() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("badarg");
    for bad in ["--cpu=lots", "--no-such-thing=1", "--image"] {
        let output = sandbox.mngr(&["create", &name, "-b", bad, "--no-copy"]);
        assert!(!output.status.success(), "{bad} was accepted");
        assert!(
            stderr(&output).contains(bad),
            "{bad}: {}",
            describe(&output)
        );
    }
    assert!(sandbox.containers().is_empty());
    assert!(sandbox.host_record_files().is_empty());
}

#[test]
fn missing_image_fails_clearly_without_container() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("noimage");
    let image = "mngr-test-no-such-image:never";

    let output = sandbox.mngr(&[
        "create",
        &name,
        "-b",
        &format!("--image={image}"),
        "--no-copy",
    ]);

    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains(image), "{message}");
    assert!(message.contains("not found"), "{message}");
    assert!(sandbox.containers().is_empty(), "a container was left");
    let entry = sandbox
        .list_entry(&name)
        .expect("the failed host is listed");
    assert_eq!(entry["state"], "FAILED");
    sandbox.mngr_ok(&["destroy", &name]);
    assert!(sandbox.host_record_files().is_empty());
}

#[test]
fn providers_lists_docker_backend() {
    let sandbox = Sandbox::new();
    let output = sandbox.mngr_ok(&["providers"]);
    let text = stdout(&output);
    assert!(
        text.contains("docker: Runs agents in Docker containers"),
        "{text}"
    );
    assert!(text.contains("--image=NAME"), "{text}");
}

#[test]
fn corrupt_record_is_reported_and_skipped() {
    let sandbox = Sandbox::new();
    let hosts_dir = sandbox.instance_dir().join("hosts");
    std::fs::create_dir_all(&hosts_dir).unwrap();
    let corrupt = hosts_dir.join("host-0123456789abcdef0123456789abcdef.json");
    std::fs::write(&corrupt, "{ not json").unwrap();

    let output = sandbox.mngr_ok(&["list", "--format", "json"]);

    let listed: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert!(listed.is_empty(), "{listed:?}");
    assert!(
        stderr(&output).contains(&corrupt.display().to_string()),
        "{}",
        describe(&output)
    );
}
