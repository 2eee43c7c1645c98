//! Unit tests for `HostStore` against a temporary instance directory.

use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Barrier};
use std::thread;

use provider_api::{AgentName, CertifiedHostData, HostName};
use tempfile::TempDir;
use time::{Duration, OffsetDateTime};

use super::*;

fn new_store() -> (TempDir, HostStore) {
    let dir = TempDir::new().unwrap();
    let store = HostStore::new(dir.path().join("providers/docker/docker"));
    (dir, store)
}

fn sample_record(name: &str) -> HostRecord {
    let data = CertifiedHostData::new(HostId::generate(), HostName::new(name).unwrap());
    let mut record = HostRecord::new(data);
    record.ssh_port = Some(32768);
    record.container_id = Some("abc123".into());
    record
}

fn sample_agent(name: &str, created_at: OffsetDateTime) -> AgentData {
    AgentData {
        id: AgentId::generate(),
        name: AgentName::new(name).unwrap(),
        command: vec!["claude".into()],
        work_dir: "/code".into(),
        env_keys: Vec::new(),
        creating_pid: None,
        created_at,
        extra: serde_json::Map::new(),
    }
}

/// Names of every entry in `dir`, sorted.
fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn assert_no_temp_files(dir: &Path) {
    let temps: Vec<String> = dir_entries(dir)
        .into_iter()
        .filter(|name| name.starts_with(".tmp"))
        .collect();
    assert!(
        temps.is_empty(),
        "temporary files left in {}: {temps:?}",
        dir.display()
    );
}

#[test]
fn store_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<HostStore>();
}

#[test]
fn new_does_no_io() {
    let (_dir, store) = new_store();
    assert!(!store.instance_dir().exists());
    assert_eq!(store.hosts_dir(), store.instance_dir().join("hosts"));
}

#[test]
fn write_read_round_trip() {
    let (_dir, store) = new_store();
    let record = sample_record("alpha");

    store.write_host_record(&record).unwrap();

    let read = store.read_host_record(record.host_id()).unwrap();
    assert_eq!(read, Some(record.clone()));
    let path = store.host_record_path(record.host_id());
    assert_eq!(
        path,
        store.hosts_dir().join(format!("{}.json", record.host_id()))
    );
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("\n  \"certified_host_data\""),
        "not pretty JSON: {text}"
    );
}

#[test]
fn write_replaces_earlier_record() {
    let (_dir, store) = new_store();
    let mut record = sample_record("alpha");
    store.write_host_record(&record).unwrap();

    record.ssh_port = Some(40000);
    store.write_host_record(&record).unwrap();

    let read = store.read_host_record(record.host_id()).unwrap().unwrap();
    assert_eq!(read.ssh_port, Some(40000));
}

#[test]
fn files_and_dirs_are_private() {
    let (_dir, store) = new_store();
    let record = sample_record("alpha");
    store.write_host_record(&record).unwrap();
    let agent = sample_agent("agent", OffsetDateTime::now_utc());
    store.persist_agent_data(record.host_id(), &agent).unwrap();

    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&store.host_record_path(record.host_id())), 0o600);
    assert_eq!(
        mode(&store.agent_data_path(record.host_id(), &agent.id)),
        0o600
    );
    assert_eq!(mode(&store.host_lock_path(record.host_id())), 0o600);
    assert_eq!(mode(&store.hosts_dir()), 0o700);
    assert_eq!(mode(&store.agent_dir(record.host_id())), 0o700);
}

#[test]
fn read_absent_is_none() {
    let (_dir, store) = new_store();
    assert_eq!(store.read_host_record(&HostId::generate()).unwrap(), None);

    store.write_host_record(&sample_record("alpha")).unwrap();
    assert_eq!(store.read_host_record(&HostId::generate()).unwrap(), None);
}

const CORRUPT_CONTENTS: [(&str, &str); 3] = [
    ("garbage", "this is not json at all"),
    (
        "truncated",
        "{\"certified_host_data\": {\"host_id\": \"host-",
    ),
    ("empty", ""),
];

#[test]
fn read_corrupt_reports_path() {
    let (_dir, store) = new_store();
    fs::create_dir_all(store.hosts_dir()).unwrap();

    for (case, contents) in CORRUPT_CONTENTS {
        let host_id = HostId::generate();
        let path = store.host_record_path(&host_id);
        fs::write(&path, contents).unwrap();

        let error = store.read_host_record(&host_id).unwrap_err();
        match &error {
            StoreError::Corrupt { path: reported, .. } => assert_eq!(reported, &path, "{case}"),
            other => panic!("{case}: expected Corrupt, got {other:?}"),
        }
        assert!(
            error.to_string().contains(&path.display().to_string()),
            "{case}: {error}"
        );
    }
}

#[test]
fn read_record_under_wrong_name_is_corrupt() {
    let (_dir, store) = new_store();
    let record = sample_record("alpha");
    store.write_host_record(&record).unwrap();
    let other_id = HostId::generate();
    fs::copy(
        store.host_record_path(record.host_id()),
        store.host_record_path(&other_id),
    )
    .unwrap();

    let error = store.read_host_record(&other_id).unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
}

#[test]
fn list_skips_and_reports_corrupt() {
    let (_dir, store) = new_store();
    let good = sample_record("good");
    store.write_host_record(&good).unwrap();

    let mut corrupt_paths = Vec::new();
    for (_case, contents) in CORRUPT_CONTENTS {
        let path = store.host_record_path(&HostId::generate());
        fs::write(&path, contents).unwrap();
        corrupt_paths.push(path);
    }

    let (records, corrupt) = store.list_all_host_records().unwrap();

    assert_eq!(records, vec![good]);
    let mut reported: Vec<PathBuf> = corrupt.iter().map(|entry| entry.path.clone()).collect();
    reported.sort();
    corrupt_paths.sort();
    assert_eq!(reported, corrupt_paths);
    for entry in &corrupt {
        assert!(!entry.detail.is_empty(), "{entry:?}");
    }
}

#[test]
fn list_ignores_other_files() {
    let (_dir, store) = new_store();
    let record = sample_record("alpha");
    store.write_host_record(&record).unwrap();
    store
        .persist_agent_data(
            record.host_id(),
            &sample_agent("agent", OffsetDateTime::now_utc()),
        )
        .unwrap();
    let hosts_dir = store.hosts_dir();
    let garbage = "not json";
    fs::write(hosts_dir.join(".tmpAbC123"), garbage).unwrap();
    fs::write(
        hosts_dir.join(format!(".tmp{}.json", HostId::generate())),
        garbage,
    )
    .unwrap();
    fs::write(hosts_dir.join(format!("{}.lock", HostId::generate())), "").unwrap();
    fs::write(hosts_dir.join("notes.json"), garbage).unwrap();
    fs::write(
        hosts_dir.join(format!("{}.json.bak", record.host_id())),
        garbage,
    )
    .unwrap();

    let (records, corrupt) = store.list_all_host_records().unwrap();

    assert_eq!(records, vec![record]);
    assert!(corrupt.is_empty(), "{corrupt:?}");
}

#[test]
fn list_missing_dir_is_empty() {
    let (_dir, store) = new_store();
    let (records, corrupt) = store.list_all_host_records().unwrap();
    assert!(records.is_empty());
    assert!(corrupt.is_empty());
}

#[test]
fn list_sorts_by_created_at_then_id() {
    let (_dir, store) = new_store();
    let base = OffsetDateTime::now_utc();
    let mut oldest = sample_record("oldest");
    oldest.certified_host_data.created_at = base - Duration::hours(2);
    let mut newest = sample_record("newest");
    newest.certified_host_data.created_at = base;
    let mut tied_a = sample_record("tied-a");
    tied_a.certified_host_data.created_at = base - Duration::hours(1);
    let mut tied_b = sample_record("tied-b");
    tied_b.certified_host_data.created_at = base - Duration::hours(1);
    if tied_b.host_id() < tied_a.host_id() {
        std::mem::swap(&mut tied_a, &mut tied_b);
    }
    for record in [&newest, &tied_b, &oldest, &tied_a] {
        store.write_host_record(record).unwrap();
    }

    let (records, _) = store.list_all_host_records().unwrap();

    let ids: Vec<&HostId> = records.iter().map(HostRecord::host_id).collect();
    assert_eq!(
        ids,
        vec![
            oldest.host_id(),
            tied_a.host_id(),
            tied_b.host_id(),
            newest.host_id()
        ]
    );
}

#[test]
fn delete_removes_record_lock_and_agents() {
    let (_dir, store) = new_store();
    let record = sample_record("alpha");
    let kept = sample_record("kept");
    store.write_host_record(&record).unwrap();
    store.write_host_record(&kept).unwrap();
    store
        .persist_agent_data(
            record.host_id(),
            &sample_agent("agent", OffsetDateTime::now_utc()),
        )
        .unwrap();

    store.delete_host_record(record.host_id()).unwrap();

    assert_eq!(store.read_host_record(record.host_id()).unwrap(), None);
    assert!(!store.agent_dir(record.host_id()).exists());
    assert!(!store.host_lock_path(record.host_id()).exists());
    assert!(store
        .list_persisted_agent_data_for_host(record.host_id())
        .unwrap()
        .is_empty());
    let (records, _) = store.list_all_host_records().unwrap();
    assert_eq!(records, vec![kept]);
}

#[test]
fn delete_absent_is_ok() {
    let (_dir, store) = new_store();
    store.delete_host_record(&HostId::generate()).unwrap();

    store.write_host_record(&sample_record("alpha")).unwrap();
    store.delete_host_record(&HostId::generate()).unwrap();
}

#[test]
fn agent_data_persist_list_remove() {
    let (_dir, store) = new_store();
    let host_id = HostId::generate();
    let base = OffsetDateTime::now_utc();
    let older = sample_agent("older", base - Duration::minutes(5));
    let mut newer = sample_agent("newer", base);

    store.persist_agent_data(&host_id, &newer).unwrap();
    store.persist_agent_data(&host_id, &older).unwrap();
    assert_eq!(
        store.list_persisted_agent_data_for_host(&host_id).unwrap(),
        vec![older.clone(), newer.clone()]
    );

    newer.command = vec!["bash".into()];
    store.persist_agent_data(&host_id, &newer).unwrap();
    assert_eq!(
        store.list_persisted_agent_data_for_host(&host_id).unwrap(),
        vec![older.clone(), newer.clone()]
    );

    store
        .remove_persisted_agent_data(&host_id, &older.id)
        .unwrap();
    assert_eq!(
        store.list_persisted_agent_data_for_host(&host_id).unwrap(),
        vec![newer]
    );

    store
        .remove_persisted_agent_data(&host_id, &older.id)
        .unwrap();
    store
        .remove_persisted_agent_data(&HostId::generate(), &older.id)
        .unwrap();
}

#[test]
fn agent_list_without_data_is_empty() {
    let (_dir, store) = new_store();
    assert!(store
        .list_persisted_agent_data_for_host(&HostId::generate())
        .unwrap()
        .is_empty());
}

#[test]
fn agent_list_skips_corrupt_and_temp_files() {
    let (_dir, store) = new_store();
    let host_id = HostId::generate();
    let agent = sample_agent("good", OffsetDateTime::now_utc());
    store.persist_agent_data(&host_id, &agent).unwrap();
    let agent_dir = store.agent_dir(&host_id);
    for (case, contents) in CORRUPT_CONTENTS {
        fs::write(
            agent_dir.join(format!("{}.json", AgentId::generate())),
            contents,
        )
        .unwrap();
        fs::write(agent_dir.join(format!(".tmp{case}")), contents).unwrap();
    }

    assert_eq!(
        store.list_persisted_agent_data_for_host(&host_id).unwrap(),
        vec![agent]
    );
}

#[test]
fn update_applies_and_returns_record() {
    let (_dir, store) = new_store();
    let record = sample_record("alpha");
    store.write_host_record(&record).unwrap();

    let updated = store
        .update_host_record(record.host_id(), |record| {
            record.ssh_port = Some(41000);
            Ok::<(), std::convert::Infallible>(())
        })
        .unwrap()
        .unwrap();

    assert_eq!(updated.ssh_port, Some(41000));
    assert_eq!(
        store.read_host_record(record.host_id()).unwrap(),
        Some(updated)
    );
}

#[test]
fn update_under_contention_loses_nothing() {
    const THREADS: usize = 8;
    let (_dir, store) = new_store();
    let record = sample_record("contended");
    store.write_host_record(&record).unwrap();
    let store = Arc::new(store);
    let barrier = Arc::new(Barrier::new(THREADS));

    let handles: Vec<_> = (0..THREADS)
        .map(|index| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            let host_id = record.host_id().clone();
            thread::spawn(move || {
                barrier.wait();
                store
                    .update_host_record(&host_id, |record| {
                        // Widens the window between read and write, so a
                        // missing lock would lose updates.
                        thread::sleep(std::time::Duration::from_millis(5));
                        record
                            .certified_host_data
                            .user_tags
                            .insert(format!("tag-{index}"), index.to_string());
                        Ok::<(), std::convert::Infallible>(())
                    })
                    .unwrap()
                    .unwrap();
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }

    let final_record = store.read_host_record(record.host_id()).unwrap().unwrap();
    let tags = &final_record.certified_host_data.user_tags;
    assert_eq!(tags.len(), THREADS, "{tags:?}");
    for index in 0..THREADS {
        assert_eq!(tags.get(&format!("tag-{index}")), Some(&index.to_string()));
    }
    assert_no_temp_files(&store.hosts_dir());
}

#[test]
fn update_absent_returns_none() {
    let (_dir, store) = new_store();
    let host_id = HostId::generate();
    let mut called = false;

    let result = store
        .update_host_record(&host_id, |_| {
            called = true;
            Ok::<(), std::convert::Infallible>(())
        })
        .unwrap();

    assert_eq!(result, None);
    assert!(!called);
    assert!(!store.hosts_dir().exists());
}

#[test]
fn update_aborted_writes_nothing() {
    let (_dir, store) = new_store();
    let record = sample_record("alpha");
    store.write_host_record(&record).unwrap();
    let path = store.host_record_path(record.host_id());
    let before = fs::read(&path).unwrap();

    let result = store.update_host_record(record.host_id(), |record| {
        record.ssh_port = Some(1);
        Err("reject this change")
    });

    match result {
        Err(UpdateError::Aborted(reason)) => assert_eq!(reason, "reject this change"),
        other => panic!("expected Aborted, got {other:?}"),
    }
    assert_eq!(fs::read(&path).unwrap(), before);
    assert_no_temp_files(&store.hosts_dir());
}

#[test]
fn update_corrupt_is_store_error() {
    let (_dir, store) = new_store();
    fs::create_dir_all(store.hosts_dir()).unwrap();
    let host_id = HostId::generate();
    fs::write(store.host_record_path(&host_id), "{").unwrap();

    let result = store.update_host_record(&host_id, |_| Ok::<(), std::convert::Infallible>(()));

    assert!(
        matches!(result, Err(UpdateError::Store(StoreError::Corrupt { .. }))),
        "{result:?}"
    );
}

#[test]
fn writes_leave_no_temp_files() {
    let (_dir, store) = new_store();
    let mut record = sample_record("alpha");
    for port in 0..5 {
        record.ssh_port = Some(30000 + port);
        store.write_host_record(&record).unwrap();
    }
    let agent = sample_agent("agent", OffsetDateTime::now_utc());
    store.persist_agent_data(record.host_id(), &agent).unwrap();
    store.persist_agent_data(record.host_id(), &agent).unwrap();

    let host_id = record.host_id();
    assert_eq!(
        dir_entries(&store.hosts_dir()),
        vec![
            host_id.to_string(),
            format!("{host_id}.json"),
            format!("{host_id}.lock")
        ]
    );
    assert_eq!(
        dir_entries(&store.agent_dir(host_id)),
        vec![format!("{}.json", agent.id)]
    );
}

#[test]
fn write_failure_is_io_error_with_path() {
    let (dir, _) = new_store();
    // A regular file where the instance directory should be makes every write fail.
    let blocker = dir.path().join("blocker");
    fs::write(&blocker, "").unwrap();
    let store = HostStore::new(&blocker);

    let error = store
        .write_host_record(&sample_record("alpha"))
        .unwrap_err();

    match &error {
        StoreError::Io { path, .. } => assert!(path.starts_with(&blocker), "{error}"),
        other => panic!("expected Io, got {other:?}"),
    }
}

#[test]
fn store_id_is_created_once_and_kept() {
    let directory = tempfile::tempdir().unwrap();
    let store = HostStore::new(directory.path().join("instance"));

    let first = store.store_id().unwrap();
    let second = HostStore::new(directory.path().join("instance"))
        .store_id()
        .unwrap();

    assert_eq!(first, second);
    assert_eq!(first.len(), 32);
}

#[test]
fn store_id_garbage_is_corrupt() {
    let directory = tempfile::tempdir().unwrap();
    std::fs::write(directory.path().join("store_id"), "not an id").unwrap();

    let error = HostStore::new(directory.path()).store_id().unwrap_err();

    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
}
