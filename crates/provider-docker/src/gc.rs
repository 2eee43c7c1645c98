//! Garbage collection: what this instance created but no longer tracks.
//! Containers with the instance's labels but no host record (left by a
//! create that died before writing one, or by a deleted record), and
//! snapshot and built images of hosts whose record is gone.
//!
//! Only objects carrying this store's id label are considered, so other
//! `MNGR_HOME`s and other users' objects on the same daemon are never touched.

use std::collections::{HashMap, HashSet};

use bollard::query_parameters::{ListImagesOptionsBuilder, RemoveImageOptionsBuilder};
use provider_api::{HostId, ProviderResult};
use tracing::info;

use crate::client::is_not_found;
use crate::instance::DockerProviderInstance;
use crate::labels::STORE_LABEL;
use crate::lifecycle::BUILD_REPOSITORY;
use crate::snapshots::SNAPSHOT_REPOSITORY;

impl DockerProviderInstance {
    pub(crate) async fn garbage_collect_impl(&self, dry_run: bool) -> ProviderResult<Vec<String>> {
        let (records, _corrupt) = self.store.list_all_host_records()?;
        let known: HashSet<HostId> = records
            .iter()
            .map(|record| record.host_id().clone())
            .collect();
        let verb = if dry_run { "would remove" } else { "removed" };
        let mut report = Vec::new();

        for container in self.list_containers().await? {
            if known.contains(&container.host_id) {
                continue;
            }
            if !dry_run {
                self.remove_container(&container.id).await?;
            }
            info!(host_id = %container.host_id, container = %container.id, "{verb} a container without a host record");
            report.push(format!(
                "{verb} container {} of host {} ({}), which has no host record",
                short(&container.id),
                container.host_id,
                container.host_name
            ));
        }

        let docker = self.client.docker().await?;
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{STORE_LABEL}={}", self.store_id()?)],
        )]);
        let images = docker
            .list_images(Some(
                ListImagesOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(|error| self.client.error("list images", error))?;
        for image in images {
            for tag in &image.repo_tags {
                let Some(host_id) = orphaned_host(tag, &known) else {
                    continue;
                };
                if !dry_run {
                    match docker
                        .remove_image(
                            tag,
                            Some(RemoveImageOptionsBuilder::default().build()),
                            None,
                        )
                        .await
                    {
                        Ok(_) => {}
                        Err(error) if is_not_found(&error) => {}
                        Err(error) => {
                            return Err(self.client.error(&format!("remove image {tag}"), error))
                        }
                    }
                }
                info!(%host_id, image = tag, "{verb} an image of a host that is gone");
                report.push(format!("{verb} image {tag}, whose host {host_id} is gone"));
            }
        }
        Ok(report)
    }
}

/// The host id in a snapshot or build image tag, when that host has no record.
fn orphaned_host(tag: &str, known: &HashSet<HostId>) -> Option<HostId> {
    let (repository, tag_part) = tag.rsplit_once(':')?;
    let host_part = match repository {
        SNAPSHOT_REPOSITORY => tag_part.get(..37)?,
        BUILD_REPOSITORY => tag_part,
        _ => return None,
    };
    let host_id = HostId::new(host_part).ok()?;
    (!known.contains(&host_id)).then_some(host_id)
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orphaned_host_reads_snapshot_and_build_tags() {
        let gone = HostId::generate();
        let alive = HostId::generate();
        let known = HashSet::from([alive.clone()]);

        assert_eq!(
            orphaned_host(&format!("mngr-snapshot:{gone}-before"), &known),
            Some(gone.clone())
        );
        assert_eq!(
            orphaned_host(&format!("mngr-build:{gone}"), &known),
            Some(gone)
        );
        assert_eq!(
            orphaned_host(&format!("mngr-snapshot:{alive}-x"), &known),
            None
        );
        assert_eq!(orphaned_host("debian:bookworm-slim", &known), None);
        assert_eq!(orphaned_host("mngr-snapshot:short", &known), None);
    }
}
