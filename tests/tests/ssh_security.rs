//! End to end: the sshd in a host accepts only mngr's client key, and mngr
//! accepts only the host key it pinned.

use std::fs;
use std::process::{Command, Output};

use mngr_e2e_tests::{describe, stderr, Sandbox};

fn ssh_port(sandbox: &Sandbox, name: &str) -> String {
    sandbox.list_entry(name).unwrap()["ssh_port"]
        .as_u64()
        .unwrap()
        .to_string()
}

/// Plain OpenSSH to the host with `options`, trusting any host key, so only
/// client authentication is under test.
fn ssh_with(port: &str, options: &[&str]) -> Output {
    Command::new("ssh")
        .args(["-F", "/dev/null", "-v", "-p", port])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "IdentityAgent=none",
        ])
        .args(options)
        .args(["root@127.0.0.1", "true"])
        .output()
        .unwrap()
}

fn generate_key(directory: &std::path::Path) -> std::path::PathBuf {
    let path = directory.join("other_key");
    let output = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    path
}

#[test]
fn sshd_offers_only_public_key_login() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("authmethods");
    sandbox.create(&name, &["--no-copy"]);
    let port = ssh_port(&sandbox, &name);

    let password = ssh_with(
        &port,
        &[
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
        ],
    );

    assert!(!password.status.success(), "{}", describe(&password));
    let log = stderr(&password);
    let offered: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("Authentications that can continue:"))
        .collect();
    assert!(!offered.is_empty(), "{log}");
    for line in offered {
        assert!(
            line.trim_end().ends_with("continue: publickey"),
            "sshd offers more than public keys: {line}"
        );
    }
    sandbox.mngr_ok(&["destroy", &name]);
}

#[test]
fn sshd_rejects_other_client_keys() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("otherkey");
    sandbox.create(&name, &["--no-copy"]);
    let port = ssh_port(&sandbox, &name);
    let scratch = tempfile::tempdir().unwrap();
    let other_key = generate_key(scratch.path());

    let ours = ssh_with(
        &port,
        &[
            "-o",
            "IdentitiesOnly=yes",
            "-i",
            sandbox.client_key().to_str().unwrap(),
        ],
    );
    let theirs = ssh_with(
        &port,
        &[
            "-o",
            "IdentitiesOnly=yes",
            "-i",
            other_key.to_str().unwrap(),
        ],
    );

    assert!(
        ours.status.success(),
        "mngr's own key was refused:\n{}",
        describe(&ours)
    );
    assert!(!theirs.status.success(), "a foreign key was accepted");
    assert!(
        stderr(&theirs).contains("Permission denied"),
        "{}",
        describe(&theirs)
    );
    sandbox.mngr_ok(&["destroy", &name]);
}

#[test]
fn changed_host_key_is_refused() {
    let sandbox = Sandbox::new();
    let name = sandbox.unique_name("hostkey");
    sandbox.create(&name, &["--no-copy"]);
    sandbox.mngr_ok(&["exec", &name, "--", "true"]);

    let scratch = tempfile::tempdir().unwrap();
    let other_key = generate_key(scratch.path());
    let other_public = fs::read_to_string(other_key.with_extension("pub")).unwrap();
    let other_public: Vec<&str> = other_public.split_whitespace().take(2).collect();
    let known_hosts = fs::read_to_string(sandbox.known_hosts()).unwrap();
    let replaced: String = known_hosts
        .lines()
        .map(|line| {
            let pattern = line.split_whitespace().next().unwrap_or("");
            format!("{pattern} {}\n", other_public.join(" "))
        })
        .collect();
    fs::write(sandbox.known_hosts(), replaced).unwrap();

    let output = sandbox.mngr(&["exec", &name, "--", "echo", "should-not-run"]);

    assert!(!output.status.success(), "{}", describe(&output));
    assert!(!String::from_utf8_lossy(&output.stdout).contains("should-not-run"));
    let message = stderr(&output).to_lowercase();
    assert!(message.contains("host key"), "{}", describe(&output));
    sandbox.mngr_ok(&["destroy", &name]);
}
