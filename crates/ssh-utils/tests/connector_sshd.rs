//! Runs `SshConnector` against a real OpenSSH sshd started on 127.0.0.1 with
//! a throwaway config, host key and authorized key in a temporary directory.
//!
//! The test needs `/usr/sbin/sshd` and root, because a non-root sshd can only
//! log in as its own user and mngr hosts log in as root. Without either, each
//! test prints why and passes without checking anything.

use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ssh_utils::{
    add_host_to_known_hosts, load_or_create_client_keypair, load_or_create_host_keypair,
    wait_for_sshd, SshConnector, SshError, SshTarget,
};

const SSHD: &str = "/usr/sbin/sshd";

/// Kills the sshd child when the test ends, including on panic.
struct SshdGuard(Child);

impl Drop for SshdGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_loopback_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn sshd_available() -> bool {
    // `cargo xtask test` installs sshd and sets this, so CI never skips.
    let required = std::env::var_os("MNGR_REQUIRE_SSHD").is_some();
    if !Path::new(SSHD).exists() {
        assert!(
            !required,
            "{SSHD} is not installed but MNGR_REQUIRE_SSHD is set"
        );
        eprintln!("skipped: {SSHD} is not installed");
        return false;
    }
    let uid = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        eprintln!("skipped: sshd-based test needs root");
        return false;
    }
    true
}

/// Starts sshd on a free loopback port and returns its guard and port.
fn start_sshd(dir: &Path, host_key: &Path, authorized_keys: &Path) -> (SshdGuard, u16) {
    // sshd refuses to start without its privilege separation directory,
    // which the Debian package creates only from its service unit.
    fs::create_dir_all("/run/sshd").unwrap();

    let port = free_loopback_port();
    let config_path = dir.join("sshd_config");
    let config = format!(
        "Port {port}\n\
         ListenAddress 127.0.0.1\n\
         HostKey {host_key}\n\
         AuthorizedKeysFile {authorized_keys}\n\
         PidFile {pid}\n\
         PermitRootLogin prohibit-password\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         StrictModes no\n",
        host_key = host_key.display(),
        authorized_keys = authorized_keys.display(),
        pid = dir.join("sshd.pid").display(),
    );
    fs::write(&config_path, config).unwrap();

    let child = Command::new(SSHD)
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.join("sshd.log")).unwrap())
        .spawn()
        .unwrap();
    (SshdGuard(child), port)
}

struct Fixture {
    dir: tempfile::TempDir,
    _sshd: SshdGuard,
    target: SshTarget,
    host_public_key: String,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("keys");
    let client = load_or_create_client_keypair(&keys_dir, "client_key").unwrap();
    let host = load_or_create_host_keypair(&keys_dir, "host_key").unwrap();
    let authorized_keys = dir.path().join("authorized_keys");
    fs::write(&authorized_keys, format!("{}\n", client.public_key_openssh)).unwrap();

    let (sshd, port) = start_sshd(dir.path(), &host.private_key_path, &authorized_keys);
    wait_for_sshd("127.0.0.1", port, Duration::from_secs(10))
        .await
        .unwrap();

    let target = SshTarget {
        host: "127.0.0.1".to_owned(),
        port,
        user: "root".to_owned(),
        identity_file: client.private_key_path.clone(),
        known_hosts_file: keys_dir.join("known_hosts"),
    };
    Fixture {
        dir,
        _sshd: sshd,
        target,
        host_public_key: host.public_key_openssh,
    }
}

#[tokio::test]
async fn connector_runs_commands_against_real_sshd() {
    if !sshd_available() {
        return;
    }
    let fixture = fixture().await;
    let target = fixture.target.clone();
    add_host_to_known_hosts(
        &target.known_hosts_file,
        &target.host,
        target.port,
        &fixture.host_public_key,
    )
    .unwrap();

    let connector = SshConnector::connect(target.clone(), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(connector.target(), &target);

    let output = connector
        .run("echo out; echo err >&2; exit 3")
        .await
        .unwrap();
    assert_eq!(output.exit_code, Some(3));
    assert_eq!(output.stdout, b"out\n");
    assert_eq!(output.stderr, b"err\n");

    let quoted = connector.run("printf '%s|' \"a b\" 'c'").await.unwrap();
    assert_eq!(quoted.stdout, b"a b|c|");

    let stdin_closed = connector.run("cat").await.unwrap();
    assert_eq!(stdin_closed.exit_code, Some(0));
    assert!(stdin_closed.stdout.is_empty());

    let missing = connector
        .run("no-such-command-for-mngr-test")
        .await
        .unwrap();
    assert_eq!(missing.exit_code, Some(127));

    let input: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let remote_file = fixture.dir.path().join("received.bin");
    let fed = connector
        .run_with_stdin(
            &format!(
                "cat > {} && wc -c < {}",
                remote_file.display(),
                remote_file.display()
            ),
            &input[..],
        )
        .await
        .unwrap();
    assert_eq!(
        fed.exit_code,
        Some(0),
        "{}",
        String::from_utf8_lossy(&fed.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&fed.stdout).trim(), "300000");
    assert_eq!(fs::read(&remote_file).unwrap(), input);

    let early_exit = connector
        .run_with_stdin("exit 4", &input[..])
        .await
        .unwrap();
    assert_eq!(early_exit.exit_code, Some(4));

    let inherited = connector.run_inherited("exit 5").await.unwrap();
    assert_eq!(inherited, Some(5));

    let interactive = target
        .interactive_command("true")
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(interactive.success());

    connector.close().await.unwrap();
}

#[tokio::test]
async fn connector_rejects_changed_host_key() {
    if !sshd_available() {
        return;
    }
    let fixture = fixture().await;
    let target = fixture.target.clone();
    let other_key_dir = tempfile::tempdir().unwrap();
    let other_host = load_or_create_host_keypair(other_key_dir.path(), "other_host_key").unwrap();
    add_host_to_known_hosts(
        &target.known_hosts_file,
        &target.host,
        target.port,
        &other_host.public_key_openssh,
    )
    .unwrap();

    let result = SshConnector::connect(target.clone(), Duration::from_secs(10)).await;

    match result {
        Err(SshError::HostKeyMismatch { known_hosts, .. }) => {
            assert_eq!(known_hosts, target.known_hosts_file)
        }
        Err(other) => panic!("expected HostKeyMismatch, got {other}"),
        Ok(_) => panic!("connected despite a changed host key"),
    }
}

#[tokio::test]
async fn connector_rejects_unpinned_host() {
    if !sshd_available() {
        return;
    }
    let fixture = fixture().await;
    let target = fixture.target.clone();
    assert!(!target.known_hosts_file.exists());

    let result = SshConnector::connect(target, Duration::from_secs(10)).await;

    match result {
        Err(SshError::Connect { detail, .. }) => {
            assert!(detail.contains("no host key"), "{detail}")
        }
        Err(other) => panic!("expected Connect, got {other}"),
        Ok(_) => panic!("connected to a host whose key is not pinned"),
    }
}
