//! Editing mngr's own `known_hosts` file, in OpenSSH format, to pin the host
//! key of each host.
//!
//! Every edit holds an exclusive lock on a sibling `<file>.lock` across the
//! read-modify-write and replaces the file atomically, so concurrent mngr
//! processes lose no entry and ssh never reads a half-written file. Hashed
//! entries (`|1|...`) and marker lines (`@cert-authority`, `@revoked`) are
//! kept untouched, because this module only manages plain host patterns.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::atomic_file;
use crate::error::SshError;

const KNOWN_HOSTS_MODE: u32 = 0o600;

/// Returns the `known_hosts` pattern that ssh looks up for `host` and `port`:
/// `host` for port 22, `[host]:port` otherwise.
pub fn known_hosts_pattern(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Pins `public_key_openssh` (`<type> <base64> [comment]`) as the only key of
/// `host`:`port` in `known_hosts`, replacing any earlier entry for that pattern.
///
/// The file and its parent directory are created if missing. Other entries
/// are kept, and the file is left with mode 0600.
pub fn add_host_to_known_hosts(
    known_hosts: &Path,
    host: &str,
    port: u16,
    public_key_openssh: &str,
) -> Result<(), SshError> {
    let pattern = known_hosts_pattern(host, port);
    let key_fields = parse_public_key(public_key_openssh).map_err(|detail| {
        SshError::io(
            known_hosts,
            "add a host key to",
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the key for {pattern} {detail}"),
            ),
        )
    })?;

    let _lock = lock_known_hosts(known_hosts)?;
    let old_contents = read_known_hosts(known_hosts)?;

    let mut new_contents = remove_pattern(&old_contents, &pattern);
    new_contents.push_str(&format!("{pattern} {key_fields}\n"));

    atomic_file::replace(known_hosts, new_contents.as_bytes(), KNOWN_HOSTS_MODE)
}

/// Removes every entry for `host`:`port` from `known_hosts`, keeping other
/// entries. A missing file is left missing.
pub fn remove_host_from_known_hosts(
    known_hosts: &Path,
    host: &str,
    port: u16,
) -> Result<(), SshError> {
    let pattern = known_hosts_pattern(host, port);

    let _lock = lock_known_hosts(known_hosts)?;
    if !known_hosts.exists() {
        return Ok(());
    }
    let old_contents = read_known_hosts(known_hosts)?;

    let new_contents = remove_pattern(&old_contents, &pattern);
    if new_contents == old_contents {
        return Ok(());
    }
    atomic_file::replace(known_hosts, new_contents.as_bytes(), KNOWN_HOSTS_MODE)
}

/// Validates a one-line OpenSSH public key and returns its `<type> <base64>`
/// part without the comment, or a reason why it was rejected.
fn parse_public_key(public_key_openssh: &str) -> Result<String, String> {
    let trimmed = public_key_openssh.trim();
    if trimmed.contains(['\n', '\r']) {
        return Err("spans more than one line".to_owned());
    }

    ssh_key::PublicKey::from_openssh(trimmed)
        .map_err(|err| format!("is not a valid OpenSSH public key ({err})"))?;

    let fields: Vec<&str> = trimmed.split_whitespace().take(2).collect();
    Ok(fields.join(" "))
}

/// Takes an exclusive lock on `<known_hosts>.lock`, released when the returned file is dropped.
///
/// A separate lock file is needed because the known_hosts file itself is
/// replaced by rename, which would leave a lock on the old inode useless.
fn lock_known_hosts(known_hosts: &Path) -> Result<File, SshError> {
    if let Some(parent) = known_hosts
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|source| SshError::io(parent, "create directory", source))?;
    }

    let lock_path = lock_path_for(known_hosts);
    let lock_file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(KNOWN_HOSTS_MODE)
        .open(&lock_path)
        .map_err(|source| SshError::io(&lock_path, "open lock file", source))?;
    lock_file
        .lock()
        .map_err(|source| SshError::io(&lock_path, "lock", source))?;
    Ok(lock_file)
}

fn lock_path_for(known_hosts: &Path) -> PathBuf {
    let mut name = known_hosts.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    known_hosts.with_file_name(name)
}

fn read_known_hosts(known_hosts: &Path) -> Result<String, SshError> {
    match fs::read_to_string(known_hosts) {
        Ok(contents) => Ok(contents),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(SshError::io(known_hosts, "read", source)),
    }
}

/// Drops `pattern` from the host list of every plain entry, dropping a line
/// whose list becomes empty. The result ends with a newline unless empty.
fn remove_pattern(contents: &str, pattern: &str) -> String {
    let mut kept = String::with_capacity(contents.len());

    for line in contents.lines() {
        if let Some(rewritten) = remove_pattern_from_line(line, pattern) {
            kept.push_str(&rewritten);
            kept.push('\n');
        }
    }

    kept
}

/// Returns the line without `pattern` in its host list, or `None` if no host remains.
fn remove_pattern_from_line(line: &str, pattern: &str) -> Option<String> {
    let trimmed = line.trim_start();
    let is_plain_entry = !(trimmed.is_empty()
        || trimmed.starts_with('#')
        || trimmed.starts_with('@')
        || trimmed.starts_with('|'));
    if !is_plain_entry {
        return Some(line.to_owned());
    }

    let (hosts, rest) = trimmed
        .split_once(char::is_whitespace)
        .unwrap_or((trimmed, ""));
    if !hosts.split(',').any(|candidate| candidate == pattern) {
        return Some(line.to_owned());
    }

    let remaining: Vec<&str> = hosts
        .split(',')
        .filter(|candidate| *candidate != pattern)
        .collect();
    if remaining.is_empty() {
        None
    } else {
        Some(format!("{} {}", remaining.join(","), rest.trim_start()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const KEY_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    const KEY_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHPv7jM3pZ0C0zF6v8sK4m5q7xk3b6b1dS0fYwqGQ3xS";

    fn test_key(index: u8) -> String {
        let key =
            ssh_key::PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[index; 32]));
        key.public_key().to_openssh().unwrap()
    }

    #[test]
    fn pattern_forms() {
        assert_eq!(known_hosts_pattern("127.0.0.1", 22), "127.0.0.1");
        assert_eq!(known_hosts_pattern("127.0.0.1", 32768), "[127.0.0.1]:32768");
        assert_eq!(
            known_hosts_pattern("example.com", 2222),
            "[example.com]:2222"
        );
    }

    #[test]
    fn add_creates_file_with_mode_0600() {
        let temp = tempfile::tempdir().unwrap();
        let known_hosts = temp.path().join("nested").join("known_hosts");
        let key = test_key(1);

        add_host_to_known_hosts(&known_hosts, "127.0.0.1", 2222, &format!("{key} mngr-host"))
            .unwrap();

        let contents = fs::read_to_string(&known_hosts).unwrap();
        assert_eq!(contents, format!("[127.0.0.1]:2222 {key}\n"));
        let mode = fs::metadata(&known_hosts).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn add_port_22_uses_bare_host() {
        let temp = tempfile::tempdir().unwrap();
        let known_hosts = temp.path().join("known_hosts");
        let key = test_key(1);

        add_host_to_known_hosts(&known_hosts, "example.com", 22, &key).unwrap();

        assert_eq!(
            fs::read_to_string(&known_hosts).unwrap(),
            format!("example.com {key}\n")
        );
    }

    #[test]
    fn add_replaces_same_pattern_only() {
        let temp = tempfile::tempdir().unwrap();
        let known_hosts = temp.path().join("known_hosts");
        let original = [
            "# managed by mngr",
            &format!("[127.0.0.1]:2222 {KEY_A}"),
            &format!("[127.0.0.1]:22220 {KEY_A}"),
            &format!("127.0.0.1 {KEY_A}"),
            &format!("[127.0.0.1]:3333 {KEY_B}"),
            &format!("[127.0.0.1]:2222 {KEY_B} duplicate"),
            &format!("other.example,[127.0.0.1]:2222 {KEY_A}"),
            &format!("|1|c2FsdA==|aGFzaA== {KEY_A}"),
            &format!("@revoked [127.0.0.1]:2222 {KEY_A}"),
        ]
        .join("\n");
        fs::write(&known_hosts, format!("{original}\n")).unwrap();
        fs::set_permissions(&known_hosts, fs::Permissions::from_mode(0o644)).unwrap();
        let new_key = test_key(7);

        add_host_to_known_hosts(&known_hosts, "127.0.0.1", 2222, &new_key).unwrap();

        let contents = fs::read_to_string(&known_hosts).unwrap();
        let lines: Vec<&str> = contents.lines().collect();
        let expected = [
            "# managed by mngr".to_owned(),
            format!("[127.0.0.1]:22220 {KEY_A}"),
            format!("127.0.0.1 {KEY_A}"),
            format!("[127.0.0.1]:3333 {KEY_B}"),
            format!("other.example {KEY_A}"),
            format!("|1|c2FsdA==|aGFzaA== {KEY_A}"),
            format!("@revoked [127.0.0.1]:2222 {KEY_A}"),
            format!("[127.0.0.1]:2222 {new_key}"),
        ];
        assert_eq!(lines, expected);
        let mode = fs::metadata(&known_hosts).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn add_twice_keeps_one_entry() {
        let temp = tempfile::tempdir().unwrap();
        let known_hosts = temp.path().join("known_hosts");

        add_host_to_known_hosts(&known_hosts, "127.0.0.1", 2222, &test_key(1)).unwrap();
        add_host_to_known_hosts(&known_hosts, "127.0.0.1", 2222, &test_key(2)).unwrap();

        let contents = fs::read_to_string(&known_hosts).unwrap();
        assert_eq!(contents, format!("[127.0.0.1]:2222 {}\n", test_key(2)));
    }

    #[test]
    fn add_rejects_invalid_key() {
        let temp = tempfile::tempdir().unwrap();
        let known_hosts = temp.path().join("known_hosts");

        let multi_line =
            add_host_to_known_hosts(&known_hosts, "h", 2222, &format!("{KEY_A}\n{KEY_B}"));
        let garbage = add_host_to_known_hosts(&known_hosts, "h", 2222, "ssh-ed25519 not-base64");

        assert!(
            matches!(multi_line, Err(SshError::Io { .. })),
            "{multi_line:?}"
        );
        assert!(matches!(garbage, Err(SshError::Io { .. })), "{garbage:?}");
        assert!(!known_hosts.exists());
    }

    #[test]
    fn remove_keeps_other_entries() {
        let temp = tempfile::tempdir().unwrap();
        let known_hosts = temp.path().join("known_hosts");
        add_host_to_known_hosts(&known_hosts, "127.0.0.1", 2222, &test_key(1)).unwrap();
        add_host_to_known_hosts(&known_hosts, "127.0.0.1", 3333, &test_key(2)).unwrap();

        remove_host_from_known_hosts(&known_hosts, "127.0.0.1", 2222).unwrap();

        let contents = fs::read_to_string(&known_hosts).unwrap();
        assert_eq!(contents, format!("[127.0.0.1]:3333 {}\n", test_key(2)));
    }

    #[test]
    fn remove_from_missing_file_is_noop() {
        let temp = tempfile::tempdir().unwrap();
        let known_hosts = temp.path().join("known_hosts");

        remove_host_from_known_hosts(&known_hosts, "127.0.0.1", 2222).unwrap();

        assert!(!known_hosts.exists());
    }

    #[test]
    fn concurrent_adds_lose_no_entry() {
        let temp = tempfile::tempdir().unwrap();
        let known_hosts = temp.path().join("known_hosts");
        let barrier = std::sync::Barrier::new(8);

        std::thread::scope(|scope| {
            for index in 0..8u8 {
                let known_hosts = &known_hosts;
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    for round in 0..5u16 {
                        let port = 10_000 + u16::from(index) * 100 + round;
                        add_host_to_known_hosts(known_hosts, "127.0.0.1", port, &test_key(index))
                            .unwrap();
                    }
                });
            }
        });

        let contents = fs::read_to_string(&known_hosts).unwrap();
        assert_eq!(contents.lines().count(), 40, "{contents}");
        for index in 0..8u8 {
            for round in 0..5u16 {
                let port = 10_000 + u16::from(index) * 100 + round;
                let expected = format!("[127.0.0.1]:{port} {}", test_key(index));
                assert!(
                    contents.lines().any(|line| line == expected),
                    "missing {expected}"
                );
            }
        }
    }
}
