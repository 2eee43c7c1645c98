//! `HostStore`: reads, writes, updates, lists and deletes the host records and
//! persisted agent data of one provider instance.
//!
//! Every host record write (plain write, update, delete) runs under that host's
//! lock file, so a read-modify-write in one process cannot lose a write made by
//! another. Reads take no lock, because atomic replacement already guarantees
//! they see a whole file. Agent data files are written atomically but not
//! locked, since each is written whole and never merged.

use std::ffi::OsStr;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use provider_api::{AgentData, AgentId, HostId, HostRecord};
use serde::Serialize;

use crate::error::{CorruptRecord, StoreError, UpdateError};
use crate::files::{self, FileLock};

const RECORD_EXTENSION: &str = "json";
const LOCK_EXTENSION: &str = "lock";

/// The host record store under one provider instance's directory.
#[derive(Debug, Clone)]
pub struct HostStore {
    instance_dir: PathBuf,
}

impl HostStore {
    /// Creates a store rooted at `instance_dir` without touching the disk. The
    /// first write creates the directories.
    pub fn new(instance_dir: impl Into<PathBuf>) -> Self {
        Self {
            instance_dir: instance_dir.into(),
        }
    }

    pub fn instance_dir(&self) -> &Path {
        &self.instance_dir
    }

    pub fn hosts_dir(&self) -> PathBuf {
        self.instance_dir.join("hosts")
    }

    pub fn host_record_path(&self, host_id: &HostId) -> PathBuf {
        self.hosts_dir()
            .join(format!("{host_id}.{RECORD_EXTENSION}"))
    }

    /// The random id of this store, created on first use and kept in
    /// `<instance_dir>/store_id`.
    ///
    /// Backends label what they create with it, so that two stores (two
    /// `MNGR_HOME`s, or two users) sharing one daemon never see, or clean up,
    /// each other's hosts.
    pub fn store_id(&self) -> Result<String, StoreError> {
        let path = self.instance_dir.join("store_id");
        if let Some(existing) = files::read_if_exists(&path)? {
            return parse_store_id(&path, &existing);
        }

        files::create_private_dir(&self.instance_dir)?;
        let fresh = format!("{}\n", uuid::Uuid::new_v4().simple());
        let mut temp = tempfile::NamedTempFile::new_in(&self.instance_dir).map_err(|source| {
            StoreError::io(&self.instance_dir, "create a temporary file in", source)
        })?;
        std::io::Write::write_all(&mut temp, fresh.as_bytes())
            .and_then(|()| temp.as_file().sync_all())
            .map_err(|source| StoreError::io(temp.path(), "write", source))?;
        // Two processes may race to create the id; the first one wins and the
        // other reads what it wrote.
        match temp.persist_noclobber(&path) {
            Ok(_) => files::sync_dir(&self.instance_dir)?,
            Err(error) if error.error.kind() == ErrorKind::AlreadyExists => {}
            Err(error) => return Err(StoreError::io(&path, "create", error.error)),
        }
        let stored = files::read_if_exists(&path)?.unwrap_or_default();
        parse_store_id(&path, &stored)
    }

    fn host_lock_path(&self, host_id: &HostId) -> PathBuf {
        self.hosts_dir().join(format!("{host_id}.{LOCK_EXTENSION}"))
    }

    fn agent_dir(&self, host_id: &HostId) -> PathBuf {
        self.hosts_dir().join(host_id.as_str())
    }

    fn agent_data_path(&self, host_id: &HostId, agent_id: &AgentId) -> PathBuf {
        self.agent_dir(host_id)
            .join(format!("{agent_id}.{RECORD_EXTENSION}"))
    }

    /// Writes `record` as the current record of its host, replacing any earlier one.
    pub fn write_host_record(&self, record: &HostRecord) -> Result<(), StoreError> {
        let hosts_dir = self.hosts_dir();
        files::create_private_dir(&hosts_dir)?;

        let _lock = FileLock::acquire(&self.host_lock_path(record.host_id()))?;
        write_json(&self.host_record_path(record.host_id()), record)
    }

    /// Reads the record of `host_id`: `None` when there is none, `Corrupt` when
    /// the file does not hold a valid record of that host.
    pub fn read_host_record(&self, host_id: &HostId) -> Result<Option<HostRecord>, StoreError> {
        let path = self.host_record_path(host_id);
        let Some(contents) = files::read_if_exists(&path)? else {
            return Ok(None);
        };
        parse_host_record(&path, &contents, host_id).map(Some)
    }

    /// Applies `update` to the record of `host_id` and writes the result, all
    /// under the host's exclusive lock, so concurrent updates from several
    /// threads or processes each see the previous one's result.
    ///
    /// Returns the record as written, or `Ok(None)` without calling `update`
    /// when the host has no record. When `update` returns an error, nothing is
    /// written and the error comes back as `UpdateError::Aborted`. The store
    /// does not touch `updated_at`; `update` sets it if it should change.
    pub fn update_host_record<E>(
        &self,
        host_id: &HostId,
        update: impl FnOnce(&mut HostRecord) -> Result<(), E>,
    ) -> Result<Option<HostRecord>, UpdateError<E>> {
        let path = self.host_record_path(host_id);

        // Checked before locking so that updating an unknown host creates no lock file.
        if !path_exists(&path)? {
            return Ok(None);
        }
        let _lock = FileLock::acquire(&self.host_lock_path(host_id))?;

        // Read again under the lock: another process may have changed or
        // deleted the record since the check above.
        let Some(mut record) = self.read_host_record(host_id)? else {
            return Ok(None);
        };
        let original = record.clone();
        update(&mut record).map_err(UpdateError::Aborted)?;

        if record != original {
            write_json(&path, &record)?;
        }
        Ok(Some(record))
    }

    /// Deletes the record of `host_id`, its lock file and its persisted agent
    /// data. A host without a record is not an error.
    pub fn delete_host_record(&self, host_id: &HostId) -> Result<(), StoreError> {
        let hosts_dir = self.hosts_dir();
        if !path_exists(&hosts_dir)? {
            return Ok(());
        }
        let lock_path = self.host_lock_path(host_id);
        let _lock = FileLock::acquire(&lock_path)?;

        // The record goes first, so that an interrupted delete leaves at worst
        // agent data without a record, which listings ignore and a repeated
        // delete removes.
        files::remove_file_if_exists(&self.host_record_path(host_id))?;
        files::remove_dir_all_if_exists(&self.agent_dir(host_id))?;
        files::remove_file_if_exists(&lock_path)?;
        files::sync_dir(&hosts_dir)
    }

    /// Lists every host record, sorted by creation time and then host id.
    ///
    /// A `hosts/host-*.json` file that cannot be read or parsed is logged and
    /// returned in the second vector instead of failing the listing. Other
    /// files (temporary files, lock files, agent directories) are ignored, and
    /// a missing hosts directory yields two empty vectors.
    pub fn list_all_host_records(
        &self,
    ) -> Result<(Vec<HostRecord>, Vec<CorruptRecord>), StoreError> {
        let mut records = Vec::new();
        let mut corrupt = Vec::new();

        for (host_id, path) in list_json_files(&self.hosts_dir(), HostId::new)? {
            match read_listed_host_record(&path, &host_id) {
                Ok(Some(record)) => records.push(record),
                // Deleted between listing the directory and reading the file.
                Ok(None) => {}
                Err(detail) => {
                    tracing::warn!(path = %path.display(), %detail, "skipping unreadable host record");
                    corrupt.push(CorruptRecord { path, detail });
                }
            }
        }

        records.sort_by(|a, b| {
            let a_data = &a.certified_host_data;
            let b_data = &b.certified_host_data;
            (a_data.created_at, &a_data.host_id).cmp(&(b_data.created_at, &b_data.host_id))
        });
        Ok((records, corrupt))
    }

    /// Writes `agent` as the persisted data of that agent on `host_id`,
    /// replacing any earlier version.
    pub fn persist_agent_data(
        &self,
        host_id: &HostId,
        agent: &AgentData,
    ) -> Result<(), StoreError> {
        files::create_private_dir(&self.agent_dir(host_id))?;
        write_json(&self.agent_data_path(host_id, &agent.id), agent)
    }

    /// Lists the persisted agent data of `host_id`, sorted by creation time and
    /// then agent id. A file that cannot be read or parsed is logged and
    /// skipped, and a host without agent data yields an empty vector.
    pub fn list_persisted_agent_data_for_host(
        &self,
        host_id: &HostId,
    ) -> Result<Vec<AgentData>, StoreError> {
        let mut agents = Vec::new();

        for (agent_id, path) in list_json_files(&self.agent_dir(host_id), AgentId::new)? {
            match read_listed_agent_data(&path, &agent_id) {
                Ok(Some(agent)) => agents.push(agent),
                Ok(None) => {}
                Err(detail) => {
                    tracing::warn!(path = %path.display(), %detail, %host_id, "skipping unreadable agent data");
                }
            }
        }

        agents.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(agents)
    }

    /// Removes the persisted data of `agent_id` on `host_id`. Data that does not exist is not an error.
    pub fn remove_persisted_agent_data(
        &self,
        host_id: &HostId,
        agent_id: &AgentId,
    ) -> Result<(), StoreError> {
        let path = self.agent_data_path(host_id, agent_id);
        if files::remove_file_if_exists(&path)? {
            files::sync_dir(&self.agent_dir(host_id))?;
        }
        Ok(())
    }
}

/// Serializes `value` as pretty JSON with a final newline and writes it atomically.
fn write_json(path: &Path, value: &impl Serialize) -> Result<(), StoreError> {
    let mut contents = serde_json::to_vec_pretty(value).map_err(|error| StoreError::Io {
        path: path.to_path_buf(),
        action: "serialize",
        source: error.into(),
    })?;
    contents.push(b'\n');
    files::write_atomically(path, &contents)
}

fn path_exists(path: &Path) -> Result<bool, StoreError> {
    path.try_exists()
        .map_err(|source| StoreError::io(path, "inspect", source))
}

fn parse_host_record(
    path: &Path,
    contents: &[u8],
    host_id: &HostId,
) -> Result<HostRecord, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let record: HostRecord =
        serde_json::from_slice(contents).map_err(|error| corrupt(error.to_string()))?;

    // A record under another host's file name would make two hosts share one
    // lock and agent directory.
    if record.host_id() != host_id {
        return Err(corrupt(format!(
            "it holds host id {}, but its file name says {host_id}",
            record.host_id()
        )));
    }
    Ok(record)
}

/// Reads one record found by a listing, returning the detail to report on failure.
fn read_listed_host_record(path: &Path, host_id: &HostId) -> Result<Option<HostRecord>, String> {
    let Some(contents) = files::read_if_exists(path).map_err(|error| error.to_string())? else {
        return Ok(None);
    };
    match parse_host_record(path, &contents, host_id) {
        Ok(record) => Ok(Some(record)),
        Err(StoreError::Corrupt { detail, .. }) => Err(detail),
        Err(error) => Err(error.to_string()),
    }
}

/// Reads one agent data file found by a listing, returning the detail to report on failure.
fn read_listed_agent_data(path: &Path, agent_id: &AgentId) -> Result<Option<AgentData>, String> {
    let Some(contents) = files::read_if_exists(path).map_err(|error| error.to_string())? else {
        return Ok(None);
    };
    let agent: AgentData = serde_json::from_slice(&contents).map_err(|error| error.to_string())?;
    if &agent.id != agent_id {
        return Err(format!(
            "it holds agent id {}, but its file name says {agent_id}",
            agent.id
        ));
    }
    Ok(Some(agent))
}

/// Lists the `<id>.json` files directly in `dir` whose stem `parse_id` accepts,
/// so temporary files, lock files and subdirectories are skipped. A missing
/// `dir` yields an empty list.
fn list_json_files<Id, E>(
    dir: &Path,
    parse_id: impl Fn(String) -> Result<Id, E>,
) -> Result<Vec<(Id, PathBuf)>, StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(StoreError::io(dir, "list", source)),
    };

    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| StoreError::io(dir, "list", source))?;
        let path = entry.path();
        if path.extension() != Some(OsStr::new(RECORD_EXTENSION)) {
            continue;
        }
        let Some(stem) = path.file_stem().and_then(OsStr::to_str) else {
            continue;
        };
        let Ok(id) = parse_id(stem.to_string()) else {
            continue;
        };
        found.push((id, path));
    }
    Ok(found)
}

fn parse_store_id(path: &Path, contents: &[u8]) -> Result<String, StoreError> {
    let text = String::from_utf8_lossy(contents).trim().to_string();
    if text.len() == 32 && text.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(text)
    } else {
        Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: "expected 32 hexadecimal digits".to_string(),
        })
    }
}

#[cfg(test)]
mod tests;
