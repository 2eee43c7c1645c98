//! Finds hosts: one filtered container listing merged with the host records in
//! the local store, so stopped, failed and vanished hosts are listed too.

use std::collections::HashMap;

use bollard::models::{ContainerSummary, ContainerSummaryStateEnum};
use provider_api::{
    CertifiedHostData, Host, HostId, HostRecord, HostRef, HostState, ProviderError, ProviderResult,
    SshEndpoint,
};
use tracing::warn;

use crate::instance::DockerProviderInstance;
use crate::labels::{parse_container_labels, provider_filter, HOST_ID_LABEL};

/// What discovery needs from one container.
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
            .filters(&provider_filter(&self.name))
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
        let mut filters = provider_filter(&self.name);
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
        let mut hosts = Vec::with_capacity(records.len() + containers_by_host.len());
        for record in records {
            let container = containers_by_host.remove(record.host_id());
            hosts.push(self.merge(record, container.as_ref()));
        }
        for container in containers_by_host.into_values() {
            warn!(host_id = %container.host_id, container = %container.id, "container has no host record");
            let record = record_from_labels(&container);
            hosts.push(self.merge(record, Some(&container)));
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
                // A failed attempt can leave a record under the same name; the
                // newest record is the one the user means.
                matching.sort_by_key(|record| record.certified_host_data.created_at);
                matching.pop()
            }
        };

        match record {
            Some(record) => {
                let container = self.find_container(record.host_id()).await?;
                Ok(self.merge(record, container.as_ref()))
            }
            None => {
                // A container without a record is still one of ours; show it.
                if let HostRef::Id(host_id) = reference {
                    if let Some(container) = self.find_container(host_id).await? {
                        return Ok(self.merge(record_from_labels(&container), Some(&container)));
                    }
                }
                Err(self.host_not_found(reference))
            }
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

    /// Combines a host record with its container (if any) into the host's current view.
    fn merge(&self, record: HostRecord, container: Option<&ContainerView>) -> Host {
        let state = match container {
            _ if record.is_failed() => HostState::Failed,
            None => HostState::Destroyed,
            Some(container) if container.running => HostState::Running,
            Some(container) if container.created_only => HostState::Starting,
            Some(_) => HostState::Stopped,
        };
        let ssh = match container {
            Some(container) if container.running => container.ssh_port.map(|port| SshEndpoint {
                host: record
                    .ssh_host
                    .clone()
                    .unwrap_or_else(|| self.client.published_host()),
                port,
            }),
            _ => None,
        };
        Host {
            provider: self.name.clone(),
            state,
            record,
            ssh,
        }
    }
}

/// A stand-in record for a container whose record is missing, built from its labels.
fn record_from_labels(container: &ContainerView) -> HostRecord {
    let mut data = CertifiedHostData::new(container.host_id.clone(), container.host_name.clone());
    data.image = container.image.clone();
    let mut record = HostRecord::new(data);
    record.container_id = Some(container.id.clone());
    record
}

/// Names within two edits of `wanted`, or containing it, closest first.
pub(crate) fn close_matches(wanted: &str, names: &[String]) -> Vec<String> {
    let mut scored: Vec<(usize, &String)> = names
        .iter()
        .map(|name| (edit_distance(wanted, name), name))
        .filter(|(distance, name)| {
            *distance <= 2 || name.contains(wanted) || wanted.contains(name.as_str())
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
