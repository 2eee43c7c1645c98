//! Finds hosts: one filtered container listing merged with the host records in
//! the local store, so stopped, failed and vanished hosts are listed too.

use std::collections::HashMap;

use bollard::models::{ContainerSummary, ContainerSummaryStateEnum};
use futures_util::future::join_all;
use provider_api::{
    CertifiedHostData, Host, HostId, HostRecord, HostRef, HostState, ProviderError, ProviderResult,
    SshEndpoint, StopReason,
};
use ssh_utils::host_setup;
use tracing::{info, warn};

use crate::archive;
use crate::instance::DockerProviderInstance;
use crate::labels::{parse_container_labels, provider_filter, HOST_ID_LABEL};

/// The fields discovery needs from one container.
#[derive(Debug, Clone)]
pub(crate) struct ContainerView {
    pub id: String,
    pub running: bool,
    /// Created but never started: the host is still being set up.
    pub created_only: bool,
    pub ssh_port: Option<u16>,
    pub host_id: HostId,
    pub host_name: provider_api::HostName,
    pub image: Option<String>,
}

impl ContainerView {
    fn from_summary(summary: &ContainerSummary) -> Option<Self> {
        let (host_id, host_name) = parse_container_labels(summary.labels.as_ref()?)?;
        let state = summary.state.unwrap_or(ContainerSummaryStateEnum::EMPTY);
        let ssh_port = summary
            .ports
            .iter()
            .flatten()
            .find(|port| port.private_port == 22 && port.public_port.is_some())
            .and_then(|port| port.public_port);
        Some(Self {
            id: summary.id.clone()?,
            running: state == ContainerSummaryStateEnum::RUNNING,
            created_only: state == ContainerSummaryStateEnum::CREATED,
            ssh_port,
            host_id,
            host_name,
            image: summary.image.clone(),
        })
    }
}

impl DockerProviderInstance {
    /// Every container carrying this instance's provider label, in one API call.
    pub(crate) async fn list_containers(&self) -> ProviderResult<Vec<ContainerView>> {
        let docker = self.client.docker().await?;
        let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&provider_filter(&self.name, &self.store_id()?))
            .build();
        let summaries = docker
            .list_containers(Some(options))
            .await
            .map_err(|error| self.client.error("list containers", error))?;
        Ok(summaries
            .iter()
            .filter_map(ContainerView::from_summary)
            .collect())
    }

    /// The container of one host, found by its host id label.
    pub(crate) async fn find_container(
        &self,
        host_id: &HostId,
    ) -> ProviderResult<Option<ContainerView>> {
        let docker = self.client.docker().await?;
        let mut filters = provider_filter(&self.name, &self.store_id()?);
        filters
            .entry("label".to_string())
            .or_default()
            .push(format!("{HOST_ID_LABEL}={host_id}"));
        let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let summaries = docker
            .list_containers(Some(options))
            .await
            .map_err(|error| self.client.error("list containers", error))?;
        Ok(summaries.iter().find_map(ContainerView::from_summary))
    }

    pub(crate) async fn list_hosts_impl(&self) -> ProviderResult<Vec<Host>> {
        let containers = self.list_containers().await?;
        let (records, _corrupt) = self.store.list_all_host_records()?;

        let mut containers_by_host: HashMap<HostId, ContainerView> = containers
            .into_iter()
            .map(|container| (container.host_id.clone(), container))
            .collect();
        let mut pairs = Vec::with_capacity(records.len() + containers_by_host.len());
        for record in records {
            let container = containers_by_host.remove(record.host_id());
            pairs.push((record, container));
        }
        for container in containers_by_host.into_values() {
            warn!(host_id = %container.host_id, container = %container.id, "container has no host record");
            pairs.push((record_from_labels(&container), Some(container)));
        }

        // Reading a stop reason out of a stopped container is one API call per
        // host; they run concurrently.
        let hosts = join_all(
            pairs
                .into_iter()
                .map(|(record, container)| self.resolve(record, container)),
        )
        .await;
        for host in &hosts {
            self.cache_host(host);
        }
        Ok(hosts)
    }

    pub(crate) async fn get_host_impl(&self, reference: &HostRef) -> ProviderResult<Host> {
        let record = match reference {
            HostRef::Id(host_id) => self.store.read_host_record(host_id)?,
            HostRef::Name(name) => {
                let (records, _corrupt) = self.store.list_all_host_records()?;
                let mut matching: Vec<HostRecord> = records
                    .into_iter()
                    .filter(|record| record.host_name() == name)
                    .collect();
                // Several records can only share a name after manual edits; the
                // newest is the one the user means.
                matching.sort_by_key(|record| record.certified_host_data.created_at);
                matching.pop()
            }
        };

        let host = match record {
            Some(record) => {
                let container = self.find_container(record.host_id()).await?;
                self.resolve(record, container).await
            }
            None => {
                // A container without a record is still one of ours; show it.
                let HostRef::Id(host_id) = reference else {
                    return Err(self.host_not_found(reference));
                };
                let Some(container) = self.find_container(host_id).await? else {
                    return Err(self.host_not_found(reference));
                };
                self.resolve(record_from_labels(&container), Some(container))
                    .await
            }
        };
        self.cache_host(&host);
        Ok(host)
    }

    /// The cached host when this process saw it already, else a fresh lookup.
    pub(crate) async fn get_host_cached(&self, host_id: &HostId) -> ProviderResult<Host> {
        match self.cached_host(host_id) {
            Some(host) => Ok(host),
            None => self.get_host_impl(&HostRef::Id(host_id.clone())).await,
        }
    }

    fn host_not_found(&self, reference: &HostRef) -> ProviderError {
        let known_names: Vec<String> = self
            .store
            .list_all_host_records()
            .map(|(records, _)| {
                records
                    .iter()
                    .map(|record| record.host_name().to_string())
                    .collect()
            })
            .unwrap_or_default();
        ProviderError::HostNotFound {
            provider: self.name.to_string(),
            reference: reference.to_string(),
            close_matches: close_matches(&reference.to_string(), &known_names),
        }
    }

    /// Combines a host record with its container (if any) into the host's
    /// current view, healing the stored SSH port and stop reason on the way.
    async fn resolve(&self, mut record: HostRecord, container: Option<ContainerView>) -> Host {
        if !record.is_failed() && record.ssh_port.is_none() {
            if let Some(pid) = record.creating_pid {
                if process_is_alive(pid) {
                    return self.host_view(record, HostState::Starting, None);
                }
                record.certified_host_data.failure_reason = Some(format!(
                    "creation was interrupted: the `mngr create` process {pid} ended before the host was set up"
                ));
                return self.host_view(record, HostState::Failed, None);
            }
        }
        let Some(container) = container else {
            let state = if record.is_failed() {
                HostState::Failed
            } else {
                HostState::Destroyed
            };
            return self.host_view(record, state, None);
        };
        if record.is_failed() {
            return self.host_view(record, HostState::Failed, None);
        }
        if container.created_only {
            return self.host_view(record, HostState::Starting, None);
        }

        if container.running {
            let ssh = container.ssh_port.map(|port| SshEndpoint {
                host: record
                    .ssh_host
                    .clone()
                    .unwrap_or_else(|| self.client.published_host()),
                port,
            });
            if let Some(endpoint) = &ssh {
                if record.ssh_port != Some(endpoint.port) {
                    record = self.heal_ssh_port(record, endpoint);
                }
            }
            return self.host_view(record, HostState::Running, ssh);
        }

        if record.certified_host_data.stop_reason.is_none() {
            if let Some(reason) = self.read_stop_reason(&container.id).await {
                record = self.store_stop_reason(record, reason);
            }
        }
        let state = match record.certified_host_data.stop_reason {
            Some(_) => HostState::Stopped,
            // Neither mngr nor the shutdown script stopped it: killed, or the
            // daemon went down.
            None => HostState::Crashed,
        };
        self.host_view(record, state, None)
    }

    fn host_view(&self, record: HostRecord, state: HostState, ssh: Option<SshEndpoint>) -> Host {
        Host {
            provider: self.name.clone(),
            state,
            record,
            ssh,
        }
    }

    /// Stores the port Docker actually publishes (it may change when a
    /// container restarts) and pins the host key for it.
    fn heal_ssh_port(&self, record: HostRecord, endpoint: &SshEndpoint) -> HostRecord {
        let host_id = record.host_id().clone();
        info!(%host_id, old_port = ?record.ssh_port, new_port = endpoint.port, "healed the stored SSH port of host {}", record.host_name());

        if let Some(public_key) = &record.ssh_host_public_key {
            if let Some(old_port) = record.ssh_port {
                if let Err(error) = ssh_utils::remove_host_from_known_hosts(
                    &self.known_hosts_path(),
                    &endpoint.host,
                    old_port,
                ) {
                    warn!(%host_id, %error, "failed to remove the old known_hosts entry");
                }
            }
            if let Err(error) = ssh_utils::add_host_to_known_hosts(
                &self.known_hosts_path(),
                &endpoint.host,
                endpoint.port,
                public_key,
            ) {
                warn!(%host_id, %error, "failed to pin the host key for the new SSH port");
            }
        }

        let updated = self.update_record(&host_id, |stored| {
            stored.ssh_port = Some(endpoint.port);
            Ok(())
        });
        match updated {
            Ok(Some(stored)) => stored,
            Ok(None) => record,
            Err(error) => {
                warn!(%host_id, %error, "failed to store the healed SSH port");
                let mut record = record;
                record.ssh_port = Some(endpoint.port);
                record
            }
        }
    }

    fn store_stop_reason(&self, record: HostRecord, reason: StopReason) -> HostRecord {
        let host_id = record.host_id().clone();
        match self.update_record(&host_id, |stored| {
            stored.certified_host_data.stop_reason = Some(reason);
            Ok(())
        }) {
            Ok(Some(stored)) => stored,
            Ok(None) | Err(_) => {
                let mut record = record;
                record.certified_host_data.stop_reason = Some(reason);
                record
            }
        }
    }

    /// The reason the shutdown script recorded in a stopped container, if any.
    async fn read_stop_reason(&self, container_id: &str) -> Option<StopReason> {
        let path = host_setup::stop_reason_path(self.config.host_dir());
        // Absent when the container stopped without the shutdown script.
        let text = archive::read_file(&self.client, container_id, &path).await?;
        serde_json::from_value(serde_json::Value::String(text.trim().to_string())).ok()
    }
}

/// Whether a process with this id runs on this machine.
fn process_is_alive(pid: u32) -> bool {
    // NOTE: this reads /proc, so on systems without it every creator counts as
    // alive and an interrupted creation stays STARTING instead of FAILED.
    let proc_root = std::path::Path::new("/proc");
    !proc_root.exists() || proc_root.join(pid.to_string()).exists()
}

/// A stand-in record for a container whose record is missing, built from its labels.
fn record_from_labels(container: &ContainerView) -> HostRecord {
    let mut data = CertifiedHostData::new(container.host_id.clone(), container.host_name.clone());
    data.image = container.image.clone();
    let mut record = HostRecord::new(data);
    record.container_id = Some(container.id.clone());
    record
}

/// Names within two edits of `reference`, or containing it, closest first.
pub(crate) fn close_matches(reference: &str, names: &[String]) -> Vec<String> {
    let mut scored: Vec<(usize, &String)> = names
        .iter()
        .map(|name| (edit_distance(reference, name), name))
        .filter(|(distance, name)| {
            *distance <= 2 || name.contains(reference) || reference.contains(name.as_str())
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(3)
        .map(|(_, name)| name.clone())
        .collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b_chars: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b_chars.len()).collect();
    for (i, a_char) in a.chars().enumerate() {
        let mut current = vec![i + 1; b_chars.len() + 1];
        for (j, b_char) in b_chars.iter().enumerate() {
            let substitution = previous[j] + usize::from(a_char != *b_char);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b_chars.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_matches_finds_typos_and_substrings() {
        let names = vec![
            "backend".to_string(),
            "frontend".to_string(),
            "docs".to_string(),
        ];
        assert_eq!(close_matches("bakend", &names), vec!["backend"]);
        assert_eq!(close_matches("front", &names), vec!["frontend"]);
        assert!(close_matches("zzzzzz", &names).is_empty());
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
