//! File primitives under the store: private directories, atomic durable writes,
//! reads that treat a missing file as absent, and the per-host lock.
//!
//! These helpers know nothing about records or JSON. The store decides what goes
//! in each file.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use tempfile::NamedTempFile;

use crate::error::StoreError;

/// Creates `dir` and any missing parents, mode 0700.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| StoreError::io(dir, "create directory", source))
}

/// Replaces `path` with `contents` so that readers see either the old or the
/// new file, never a partial one, and the new file survives a crash once this
/// returns. The parent directory must exist.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), StoreError> {
    let dir = parent_dir(path);

    // NamedTempFile creates the file with mode 0600 and names it `.tmp*`, which
    // listings skip. It deletes the file on drop if any later step fails.
    let mut temp = NamedTempFile::new_in(dir)
        .map_err(|source| StoreError::io(dir, "create a temporary file in", source))?;
    temp.write_all(contents)
        .map_err(|source| StoreError::io(temp.path(), "write", source))?;
    temp.as_file()
        .sync_all()
        .map_err(|source| StoreError::io(temp.path(), "sync", source))?;
    temp.persist(path)
        .map_err(|error| StoreError::io(path, "replace", error.error))?;

    sync_dir(dir)
}

/// Flushes `dir`'s entries, so that a rename or removal in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|source| StoreError::io(dir, "sync directory", source))
}

/// Reads `path`, returning `None` when it does not exist.
pub(crate) fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match fs::read(path) {
        Ok(contents) => Ok(Some(contents)),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StoreError::io(path, "read", source)),
    }
}

/// Removes the file at `path`, returning whether it existed.
pub(crate) fn remove_file_if_exists(path: &Path) -> Result<bool, StoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(false),
        Err(source) => Err(StoreError::io(path, "remove", source)),
    }
}

/// Removes the directory at `path` and everything in it, returning whether it existed.
pub(crate) fn remove_dir_all_if_exists(path: &Path) -> Result<bool, StoreError> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(false),
        Err(source) => Err(StoreError::io(path, "remove directory", source)),
    }
}

/// An exclusive lock on one lock file, held until this value is dropped.
///
/// The lock is an advisory `flock`-style lock (`File::lock`), which excludes
/// other processes and also other handles in this process, so threads sharing a
/// store exclude each other too.
#[derive(Debug)]
pub(crate) struct FileLock {
    file: File,
}

impl FileLock {
    /// Blocks until this process holds the exclusive lock on `path`, creating
    /// the file (mode 0600) if needed. The parent directory must exist.
    pub(crate) fn acquire(path: &Path) -> Result<Self, StoreError> {
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(|source| StoreError::io(path, "open lock file", source))?;
            file.lock()
                .map_err(|source| StoreError::io(path, "lock", source))?;

            // Deleting a host unlinks its lock file while holding the lock. A
            // waiter that then gets the lock holds an unlinked file that no
            // longer excludes anyone, so it starts over on the current file.
            if Self::is_current(&file, path)? {
                return Ok(Self { file });
            }
        }
    }

    fn is_current(file: &File, path: &Path) -> Result<bool, StoreError> {
        let locked = file
            .metadata()
            .map_err(|source| StoreError::io(path, "inspect lock file", source))?;
        match fs::metadata(path) {
            Ok(on_disk) => Ok(on_disk.dev() == locked.dev() && on_disk.ino() == locked.ino()),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(false),
            Err(source) => Err(StoreError::io(path, "inspect lock file", source)),
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Closing the file would release the lock as well, but unlocking first
        // makes the release explicit. An unlock failure leaves nothing to recover,
        // because the close that follows releases the lock anyway.
        let _ = self.file.unlock();
    }
}

fn parent_dir(path: &Path) -> &Path {
    // Every path the store writes is `<dir>/<name>.json`, so an empty parent
    // can only mean a bare file name in the current directory.
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    use super::*;

    #[test]
    fn lock_excludes_second_holder() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("host.lock");
        let first = FileLock::acquire(&path).unwrap();

        let (sender, receiver) = mpsc::channel();
        let waiter_path = path.clone();
        let waiter = thread::spawn(move || {
            let _second = FileLock::acquire(&waiter_path).unwrap();
            sender.send(()).unwrap();
        });

        assert!(receiver.recv_timeout(Duration::from_millis(200)).is_err());
        drop(first);
        receiver.recv_timeout(Duration::from_secs(10)).unwrap();
        waiter.join().unwrap();
    }

    #[test]
    fn lock_retries_after_unlink() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("host.lock");
        let first = FileLock::acquire(&path).unwrap();

        let waiter_path = path.clone();
        let waiter = thread::spawn(move || {
            let lock = FileLock::acquire(&waiter_path).unwrap();
            FileLock::is_current(&lock.file, &waiter_path).unwrap()
        });
        // Gives the waiter time to open the old file and block on it.
        thread::sleep(Duration::from_millis(100));
        fs::remove_file(&path).unwrap();
        drop(first);

        assert!(
            waiter.join().unwrap(),
            "waiter kept a lock on the unlinked file"
        );
        assert!(path.exists());
    }

    #[test]
    fn write_atomically_replaces_contents() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("record.json");

        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();

        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("record.json")]);
    }

    #[test]
    fn write_atomically_missing_dir_names_it() {
        let dir = tempfile::TempDir::new().unwrap();
        let missing = dir.path().join("missing");

        let error = write_atomically(&missing.join("record.json"), b"x").unwrap_err();

        match error {
            StoreError::Io { path, .. } => assert_eq!(path, missing),
            other => panic!("expected Io, got {other:?}"),
        }
    }
}
