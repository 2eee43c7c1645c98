//! Crash- and race-safe file writes for key files and `known_hosts`.
//!
//! Every write goes to a uniquely named temporary file in the destination
//! directory, is fsynced, and only then becomes visible under its final name,
//! so readers never see a half-written file. This module does no locking, so
//! callers that read-modify-write hold their own lock.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rand_core::{OsRng, RngCore};

use crate::error::SshError;

/// Outcome of [`create_exclusive`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Created {
    /// This call created the file.
    Created,
    /// Another writer created the file first, and its content is left as is.
    AlreadyExisted,
}

/// Replaces `path` with `contents` and sets its mode, via a temporary file and `rename`.
pub(crate) fn replace(path: &Path, contents: &[u8], mode: u32) -> Result<(), SshError> {
    let temp_path = write_temp_sibling(path, contents, mode)?;

    if let Err(source) = fs::rename(&temp_path, path) {
        remove_temp(&temp_path);
        return Err(SshError::io(path, "replace", source));
    }

    sync_parent_dir(path)
}

/// Creates `path` with `contents` and mode unless it already exists, via a
/// temporary file and `hard_link`, which fails instead of overwriting.
pub(crate) fn create_exclusive(
    path: &Path,
    contents: &[u8],
    mode: u32,
) -> Result<Created, SshError> {
    let temp_path = write_temp_sibling(path, contents, mode)?;

    let link_result = fs::hard_link(&temp_path, path);
    remove_temp(&temp_path);

    match link_result {
        Ok(()) => {
            sync_parent_dir(path)?;
            Ok(Created::Created)
        }
        Err(source) if source.kind() == io::ErrorKind::AlreadyExists => Ok(Created::AlreadyExisted),
        Err(source) => Err(SshError::io(path, "create", source)),
    }
}

/// Writes `contents` to a new, uniquely named file next to `path`, fsynced and with `mode`.
fn write_temp_sibling(path: &Path, contents: &[u8], mode: u32) -> Result<PathBuf, SshError> {
    let temp_path = temp_sibling_path(path);

    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temp_path)
        .map_err(|source| SshError::io(&temp_path, "create temporary file", source))?;

    // The mode passed to open() is reduced by the umask, so set it explicitly.
    let write_result = file
        .set_permissions(Permissions::from_mode(mode))
        .and_then(|()| file.write_all(contents))
        .and_then(|()| file.sync_all());
    if let Err(source) = write_result {
        remove_temp(&temp_path);
        return Err(SshError::io(&temp_path, "write temporary file", source));
    }

    Ok(temp_path)
}

/// Returns `.<name>.<pid>.<counter>.<random>.tmp` in the directory of `path`.
///
/// The process id and counter keep names distinct between threads and
/// processes on this machine. The random part covers a shared directory that
/// other machines or pid namespaces also write to.
fn temp_sibling_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);

    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp_name = format!(
        ".{name}.{}.{}.{:016x}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        OsRng.next_u64()
    );
    path.with_file_name(temp_name)
}

fn remove_temp(temp_path: &Path) {
    if let Err(err) = fs::remove_file(temp_path) {
        if err.kind() != io::ErrorKind::NotFound {
            tracing::warn!(path = %temp_path.display(), error = %err, "failed to remove temporary file");
        }
    }
}

/// Fsyncs the directory containing `path` so that the new directory entry survives a crash.
fn sync_parent_dir(path: &Path) -> Result<(), SshError> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|dir_file| dir_file.sync_all())
        .map_err(|source| SshError::io(dir, "fsync directory", source))
}
