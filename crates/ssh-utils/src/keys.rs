//! Loading and generating the ed25519 key pairs that mngr uses for SSH: the
//! client key it authenticates with and the host key it installs into hosts.
//!
//! Keys are stored unencrypted in OpenSSH format. Generation is safe against
//! concurrent mngr processes: the private key is published with a hard link
//! that fails if another process won, so every process ends up with the same
//! key. This module only manages files and installs keys nowhere.

use std::fs::{self, DirBuilder, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand_core::OsRng;
use ssh_key::{Algorithm, LineEnding, PrivateKey};

use crate::atomic_file::{self, Created};
use crate::error::SshError;

const KEYS_DIR_MODE: u32 = 0o700;
const PRIVATE_KEY_MODE: u32 = 0o600;
const PUBLIC_KEY_MODE: u32 = 0o644;

/// Comment written into the client key, which mngr uses to log in to hosts.
pub const CLIENT_KEY_COMMENT: &str = "mngr-client";
/// Comment written into the host key, which sshd in a host presents.
pub const HOST_KEY_COMMENT: &str = "mngr-host";

/// An ed25519 key pair stored as `<name>` (private) and `<name>.pub` (public).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPair {
    pub private_key_path: PathBuf,
    pub public_key_path: PathBuf,
    /// The public key as one `known_hosts`/`authorized_keys` line without a
    /// trailing newline, e.g. `ssh-ed25519 AAAA... mngr-client`.
    pub public_key_openssh: String,
}

impl KeyPair {
    /// Reads the private key file, in OpenSSH PEM format.
    pub fn private_key_openssh(&self) -> Result<String, SshError> {
        fs::read_to_string(&self.private_key_path)
            .map_err(|source| SshError::io(&self.private_key_path, "read private key", source))
    }
}

/// Loads the key pair `keys_dir/file_name`, generating an ed25519 pair with
/// `comment` if the private key does not exist yet.
///
/// `keys_dir` is created if missing and set to mode 0700. The private key is
/// mode 0600 and the public key 0644. An existing private key that does not
/// parse gives [`SshError::InvalidKey`]. A missing or stale `.pub` file is
/// rewritten from the private key.
pub fn load_or_create_keypair(
    keys_dir: &Path,
    file_name: &str,
    comment: &str,
) -> Result<KeyPair, SshError> {
    ensure_keys_dir(keys_dir)?;

    let private_key_path = keys_dir.join(file_name);
    let public_key_path = keys_dir.join(format!("{file_name}.pub"));

    let private_key = match read_private_key(&private_key_path)? {
        Some(existing) => existing,
        None => create_private_key(&private_key_path, comment)?,
    };

    let public_key_openssh = private_key.public_key().to_openssh().map_err(|err| {
        invalid_key(
            &private_key_path,
            format!("failed to encode its public key: {err}"),
        )
    })?;
    ensure_public_key_file(&public_key_path, &public_key_openssh)?;

    Ok(KeyPair {
        private_key_path,
        public_key_path,
        public_key_openssh,
    })
}

/// Loads or creates the key that mngr authenticates to hosts with.
pub fn load_or_create_client_keypair(
    keys_dir: &Path,
    file_name: &str,
) -> Result<KeyPair, SshError> {
    load_or_create_keypair(keys_dir, file_name, CLIENT_KEY_COMMENT)
}

/// Loads or creates the key that sshd in each host presents.
pub fn load_or_create_host_keypair(keys_dir: &Path, file_name: &str) -> Result<KeyPair, SshError> {
    load_or_create_keypair(keys_dir, file_name, HOST_KEY_COMMENT)
}

fn ensure_keys_dir(keys_dir: &Path) -> Result<(), SshError> {
    DirBuilder::new()
        .recursive(true)
        .mode(KEYS_DIR_MODE)
        .create(keys_dir)
        .map_err(|source| SshError::io(keys_dir, "create key directory", source))?;

    // An existing directory keeps its old mode through create(), so tighten it.
    fs::set_permissions(keys_dir, Permissions::from_mode(KEYS_DIR_MODE))
        .map_err(|source| SshError::io(keys_dir, "set permissions of key directory", source))
}

/// Reads and parses the private key, returning `None` if the file does not exist.
fn read_private_key(path: &Path) -> Result<Option<PrivateKey>, SshError> {
    let pem = match fs::read_to_string(path) {
        Ok(pem) => pem,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) if err.kind() == io::ErrorKind::InvalidData => {
            return Err(invalid_key(path, "the file is not UTF-8 text".to_owned()));
        }
        Err(source) => return Err(SshError::io(path, "read private key", source)),
    };

    let key =
        PrivateKey::from_openssh(pem.trim()).map_err(|err| invalid_key(path, err.to_string()))?;
    if key.is_encrypted() {
        return Err(invalid_key(
            path,
            "the key is encrypted with a passphrase".to_owned(),
        ));
    }

    ensure_private_key_mode(path)?;
    Ok(Some(key))
}

/// Sets an existing private key to mode 0600, because ssh ignores a key that
/// other users can read.
fn ensure_private_key_mode(path: &Path) -> Result<(), SshError> {
    let metadata = fs::metadata(path)
        .map_err(|source| SshError::io(path, "read metadata of private key", source))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode == PRIVATE_KEY_MODE {
        return Ok(());
    }

    fs::set_permissions(path, Permissions::from_mode(PRIVATE_KEY_MODE))
        .map_err(|source| SshError::io(path, "set permissions of private key", source))?;
    tracing::info!(path = %path.display(), old_mode = format!("{mode:o}"), new_mode = "600", "restricted private key permissions");
    Ok(())
}

/// Generates a private key and publishes it at `path`, or loads the key that
/// a concurrent writer published first.
fn create_private_key(path: &Path, comment: &str) -> Result<PrivateKey, SshError> {
    let mut key = PrivateKey::random(&mut OsRng, Algorithm::Ed25519)
        .map_err(|err| invalid_key(path, format!("failed to generate an ed25519 key: {err}")))?;
    key.set_comment(comment);
    let pem = key
        .to_openssh(LineEnding::LF)
        .map_err(|err| invalid_key(path, format!("failed to encode the new key: {err}")))?;

    match atomic_file::create_exclusive(path, pem.as_bytes(), PRIVATE_KEY_MODE)? {
        Created::Created => {
            tracing::info!(path = %path.display(), "generated SSH key pair");
            Ok(key)
        }
        Created::AlreadyExisted => read_private_key(path)?.ok_or_else(|| {
            SshError::io(
                path,
                "read private key",
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "the key created by a concurrent process disappeared",
                ),
            )
        }),
    }
}

/// Writes `public_key_openssh` to `path` unless the file already contains exactly that line.
fn ensure_public_key_file(path: &Path, public_key_openssh: &str) -> Result<(), SshError> {
    let existing = match fs::read_to_string(path) {
        Ok(contents) => Some(contents),
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(err) if err.kind() == io::ErrorKind::InvalidData => Some(String::new()),
        Err(source) => return Err(SshError::io(path, "read public key", source)),
    };
    if existing.as_deref().map(str::trim) == Some(public_key_openssh) {
        return Ok(());
    }

    // Concurrent writers derive the same line from the same private key, so
    // whichever rename lands last writes identical content.
    atomic_file::replace(
        path,
        format!("{public_key_openssh}\n").as_bytes(),
        PUBLIC_KEY_MODE,
    )?;
    if existing.is_some() {
        tracing::info!(path = %path.display(), "rewrote public key file that did not match its private key");
    }
    Ok(())
}

fn invalid_key(path: &Path, detail: String) -> SshError {
    SshError::InvalidKey {
        path: path.to_path_buf(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_keypair_has_strict_modes() {
        let temp = tempfile::tempdir().unwrap();
        let keys_dir = temp.path().join("keys");

        let pair = load_or_create_client_keypair(&keys_dir, "client_key").unwrap();

        assert_eq!(mode_of(&keys_dir), 0o700);
        assert_eq!(mode_of(&pair.private_key_path), 0o600);
        let public_mode = mode_of(&pair.public_key_path);
        assert!(
            public_mode == 0o644 || public_mode == 0o600,
            "public key mode {public_mode:o}"
        );
    }

    #[test]
    fn new_keypair_files_match_fields() {
        let temp = tempfile::tempdir().unwrap();

        let pair = load_or_create_host_keypair(temp.path(), "host_key").unwrap();

        assert_eq!(pair.private_key_path, temp.path().join("host_key"));
        assert_eq!(pair.public_key_path, temp.path().join("host_key.pub"));
        assert!(
            pair.public_key_openssh.starts_with("ssh-ed25519 AAAA"),
            "{}",
            pair.public_key_openssh
        );
        assert!(
            pair.public_key_openssh.ends_with(" mngr-host"),
            "{}",
            pair.public_key_openssh
        );
        assert!(!pair.public_key_openssh.contains('\n'));
        let public_file = fs::read_to_string(&pair.public_key_path).unwrap();
        assert_eq!(public_file, format!("{}\n", pair.public_key_openssh));
        let private_pem = pair.private_key_openssh().unwrap();
        assert!(private_pem.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
    }

    #[test]
    fn existing_keys_dir_is_restricted() {
        let temp = tempfile::tempdir().unwrap();
        fs::set_permissions(temp.path(), Permissions::from_mode(0o755)).unwrap();

        load_or_create_client_keypair(temp.path(), "client_key").unwrap();

        assert_eq!(mode_of(temp.path()), 0o700);
    }

    #[test]
    fn second_load_returns_same_key() {
        let temp = tempfile::tempdir().unwrap();

        let first = load_or_create_client_keypair(temp.path(), "client_key").unwrap();
        let private_before = first.private_key_openssh().unwrap();
        let second = load_or_create_client_keypair(temp.path(), "client_key").unwrap();

        assert_eq!(first, second);
        assert_eq!(second.private_key_openssh().unwrap(), private_before);
    }

    #[test]
    fn corrupt_private_key_is_invalid_key() {
        let temp = tempfile::tempdir().unwrap();
        let private_path = temp.path().join("client_key");
        fs::write(&private_path, "not a key\n").unwrap();

        let err = load_or_create_client_keypair(temp.path(), "client_key").unwrap_err();

        match &err {
            SshError::InvalidKey { path, .. } => assert_eq!(path, &private_path),
            other => panic!("expected InvalidKey, got {other:?}"),
        }
        assert!(
            err.to_string()
                .contains(&private_path.display().to_string()),
            "{err}"
        );
        assert_eq!(fs::read_to_string(&private_path).unwrap(), "not a key\n");
    }

    #[test]
    fn missing_public_key_is_regenerated() {
        let temp = tempfile::tempdir().unwrap();
        let first = load_or_create_client_keypair(temp.path(), "client_key").unwrap();
        fs::remove_file(&first.public_key_path).unwrap();

        let second = load_or_create_client_keypair(temp.path(), "client_key").unwrap();

        assert_eq!(second.public_key_openssh, first.public_key_openssh);
        let public_file = fs::read_to_string(&second.public_key_path).unwrap();
        assert_eq!(public_file.trim(), first.public_key_openssh);
    }

    #[test]
    fn stale_public_key_is_rewritten() {
        let temp = tempfile::tempdir().unwrap();
        let first = load_or_create_client_keypair(temp.path(), "client_key").unwrap();
        let other = load_or_create_client_keypair(temp.path(), "other_key").unwrap();
        fs::copy(&other.public_key_path, &first.public_key_path).unwrap();

        let second = load_or_create_client_keypair(temp.path(), "client_key").unwrap();

        assert_eq!(second.public_key_openssh, first.public_key_openssh);
        let public_file = fs::read_to_string(&second.public_key_path).unwrap();
        assert_eq!(public_file.trim(), first.public_key_openssh);
    }

    #[test]
    fn loose_private_key_mode_is_restricted() {
        let temp = tempfile::tempdir().unwrap();
        let pair = load_or_create_client_keypair(temp.path(), "client_key").unwrap();
        fs::set_permissions(&pair.private_key_path, Permissions::from_mode(0o644)).unwrap();

        load_or_create_client_keypair(temp.path(), "client_key").unwrap();

        assert_eq!(mode_of(&pair.private_key_path), 0o600);
    }

    #[test]
    fn racing_creators_share_one_key() {
        for _ in 0..20 {
            let temp = tempfile::tempdir().unwrap();
            let barrier = std::sync::Barrier::new(4);

            let public_keys: Vec<String> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..4)
                    .map(|_| {
                        scope.spawn(|| {
                            barrier.wait();
                            load_or_create_client_keypair(temp.path(), "client_key")
                                .unwrap()
                                .public_key_openssh
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|handle| handle.join().unwrap())
                    .collect()
            });

            for public_key in &public_keys {
                assert_eq!(public_key, &public_keys[0]);
            }
            let public_file = fs::read_to_string(temp.path().join("client_key.pub")).unwrap();
            assert_eq!(public_file.trim(), public_keys[0]);
            let leftover: Vec<_> = fs::read_dir(temp.path())
                .unwrap()
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".tmp"))
                .collect();
            assert!(
                leftover.is_empty(),
                "temporary files left behind: {leftover:?}"
            );
        }
    }
}
