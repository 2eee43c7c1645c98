//! Snapshots: `docker commit` of a host's container into the repository
//! `mngr-snapshot`, tagged `<host id>-<label>`. The image id is the snapshot
//! id; id, label and time are kept in the host record, oldest first.
//!
//! A commit holds only the container's own filesystem layers, so data in
//! volumes and bind mounts is not part of a snapshot.

use bollard::query_parameters::{CommitContainerOptionsBuilder, RemoveImageOptionsBuilder};
use provider_api::{
    HostId, HostRecord, HostRef, ProviderError, ProviderResult, SnapshotRecord, PROGRESS_TARGET,
};
use time::OffsetDateTime;
use tracing::{info, warn};

use crate::client::{is_conflict, is_not_found};
use crate::instance::DockerProviderInstance;

/// The repository every snapshot image is committed into.
pub const SNAPSHOT_REPOSITORY: &str = "mngr-snapshot";

impl DockerProviderInstance {
    pub(crate) async fn create_snapshot_impl(
        &self,
        host_id: &HostId,
        label: Option<&str>,
    ) -> ProviderResult<SnapshotRecord> {
        let host = self.get_host_impl(&HostRef::Id(host_id.clone())).await?;
        let Some(container_id) = self
            .container_id_of(&host)
            .await?
            .filter(|_| !host.record.is_failed())
        else {
            return Err(ProviderError::HostNotRunning {
                host: host.name().to_string(),
                state: host.state,
                hint: "it has no container to take a snapshot of".to_string(),
            });
        };

        let now = OffsetDateTime::now_utc();
        let label = match label {
            Some(label) => label.to_string(),
            None => default_label(now),
        };
        check_label(&label)?;
        if host
            .record
            .certified_host_data
            .snapshots
            .iter()
            .any(|snapshot| snapshot.name == label)
        {
            return Err(ProviderError::NameInUse {
                name: label.clone(),
                holder: format!("another snapshot of host {}", host.name()),
                hint: format!(
                    "choose another snapshot name, or delete the old one with `mngr snapshot delete {} {}`",
                    host.name(),
                    label
                ),
            });
        }
        warn_about_uncaptured_state(&host.record);

        let tag = format!("{host_id}-{label}");
        info!(target: PROGRESS_TARGET, "Committing snapshot {SNAPSHOT_REPOSITORY}:{tag}");
        let docker = self.client.docker().await?;
        let options = CommitContainerOptionsBuilder::default()
            .container(&container_id)
            .repo(SNAPSHOT_REPOSITORY)
            .tag(&tag)
            .comment(&format!("mngr snapshot {label} of host {host_id}"))
            .pause(true)
            .build();
        let committed = docker
            .commit_container(options, bollard::models::ContainerConfig::default())
            .await
            .map_err(|error| self.client.error("commit the container", error))?;

        let snapshot = SnapshotRecord {
            id: committed.id,
            name: label,
            created_at: now,
        };
        let stored = snapshot.clone();
        self.update_record(host_id, move |record| {
            record.certified_host_data.snapshots.push(stored);
            record.certified_host_data.updated_at = OffsetDateTime::now_utc();
            Ok(())
        })?;
        info!(%host_id, snapshot = %snapshot.id, "created snapshot {}", snapshot.name);
        Ok(snapshot)
    }

    pub(crate) async fn list_snapshots_impl(
        &self,
        host_id: &HostId,
    ) -> ProviderResult<Vec<SnapshotRecord>> {
        let host = self.get_host_cached(host_id).await?;
        Ok(host.record.certified_host_data.snapshots)
    }

    pub(crate) async fn delete_snapshot_impl(
        &self,
        host_id: &HostId,
        reference: &str,
    ) -> ProviderResult<()> {
        let host = self.get_host_impl(&HostRef::Id(host_id.clone())).await?;
        let snapshot = self.resolve_snapshot(&host.record, reference)?;

        self.remove_snapshot_image(&snapshot).await?;
        let snapshot_id = snapshot.id.clone();
        self.update_record(host_id, move |record| {
            record
                .certified_host_data
                .snapshots
                .retain(|stored| stored.id != snapshot_id);
            record.certified_host_data.updated_at = OffsetDateTime::now_utc();
            Ok(())
        })?;
        info!(%host_id, snapshot = %snapshot.id, "deleted snapshot {}", snapshot.name);
        Ok(())
    }

    /// Removes a snapshot's image; one that is already gone is fine.
    pub(crate) async fn remove_snapshot_image(
        &self,
        snapshot: &SnapshotRecord,
    ) -> ProviderResult<()> {
        let docker = self.client.docker().await?;
        let options = RemoveImageOptionsBuilder::default().build();
        match docker.remove_image(&snapshot.id, Some(options), None).await {
            Ok(_) => Ok(()),
            Err(error) if is_not_found(&error) => Ok(()),
            Err(error) if is_conflict(&error) => Err(ProviderError::Daemon {
                endpoint: self.client.endpoint().to_string(),
                operation: format!("delete snapshot {} ({})", snapshot.name, snapshot.id),
                detail: "a container still uses its image, for example the host's current container after a restore; destroy the host with --delete-snapshots to remove both".to_string(),
            }),
            Err(error) => Err(self.client.error(&format!("delete snapshot {}", snapshot.name), error)),
        }
    }

    /// Finds a snapshot of `record` by id, id prefix or label.
    pub(crate) fn resolve_snapshot(
        &self,
        record: &HostRecord,
        reference: &str,
    ) -> ProviderResult<SnapshotRecord> {
        let snapshots = &record.certified_host_data.snapshots;
        let bare = |id: &str| id.strip_prefix("sha256:").unwrap_or(id).to_string();
        let wanted = bare(reference);

        let exact = snapshots
            .iter()
            .find(|snapshot| snapshot.id == reference || snapshot.name == reference);
        let by_prefix: Vec<&SnapshotRecord> = snapshots
            .iter()
            .filter(|snapshot| wanted.len() >= 4 && bare(&snapshot.id).starts_with(&wanted))
            .collect();
        match (exact, by_prefix.as_slice()) {
            (Some(snapshot), _) => Ok(snapshot.clone()),
            (None, [snapshot]) => Ok((*snapshot).clone()),
            _ => {
                let known: Vec<String> = snapshots
                    .iter()
                    .map(|snapshot| format!("{} ({})", snapshot.name, short_id(&snapshot.id)))
                    .collect();
                let listing = if known.is_empty() {
                    "it has no snapshots".to_string()
                } else {
                    format!("its snapshots: {}", known.join(", "))
                };
                Err(ProviderError::SnapshotNotFound {
                    host: record.host_name().to_string(),
                    reference: reference.to_string(),
                    available: listing,
                })
            }
        }
    }
}

fn default_label(now: OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year][month][day]-[hour][minute][second]");
    format!("snapshot-{}", now.format(&format).unwrap_or_default())
}

/// Snapshot labels end up in image tags: letters, digits, `_`, `.` and `-`,
/// starting with a letter or digit, at most 64 characters.
fn check_label(label: &str) -> ProviderResult<()> {
    let mut chars = label.chars();
    let valid = chars
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && label.len() <= 64;
    if valid {
        Ok(())
    } else {
        Err(ProviderError::InvalidIdentifier(provider_api::InvalidIdentifier {
            kind: "snapshot name",
            value: label.to_string(),
            rule: "use 1 to 64 ASCII letters, digits, '_', '.' or '-', starting with a letter or digit",
        }))
    }
}

fn warn_about_uncaptured_state(record: &HostRecord) {
    let Some(config) = &record.config else {
        return;
    };
    if !config.volumes.is_empty() {
        warn!(
            host_id = %record.host_id(),
            volumes = ?config.volumes,
            "the snapshot does not include data in volumes or bind mounts; docker commit captures only the container's filesystem"
        );
    }
    if let Some(gpu) = &config.gpu {
        warn!(
            host_id = %record.host_id(),
            gpu,
            "the host uses a GPU; hardware-specific state may not be captured by the snapshot"
        );
    }
}

pub(crate) fn short_id(id: &str) -> String {
    id.strip_prefix("sha256:")
        .unwrap_or(id)
        .chars()
        .take(12)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_tag_rules() {
        assert!(check_label("before-refactor_2.1").is_ok());
        for bad in ["", "-x", ".x", "a b", "a/b", "a:b", &"x".repeat(65)] {
            assert!(check_label(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn default_label_is_a_valid_label() {
        assert!(check_label(&default_label(OffsetDateTime::now_utc())).is_ok());
    }
}
