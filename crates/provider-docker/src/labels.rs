//! Container labels that make mngr's containers discoverable.
//!
//! Labels are set once at creation and never change, so they carry only what
//! discovery needs: the host id, the host name at creation and the provider
//! instance. Everything mutable lives in the host record.

use std::collections::HashMap;

use provider_api::{HostId, HostName, ProviderInstanceName};

pub const LABEL_PREFIX: &str = "com.imbue.mngr.";
pub const HOST_ID_LABEL: &str = "com.imbue.mngr.host-id";
pub const HOST_NAME_LABEL: &str = "com.imbue.mngr.host-name";
pub const PROVIDER_LABEL: &str = "com.imbue.mngr.provider";
/// The id of the host store that owns the container; two stores sharing one
/// daemon (two `MNGR_HOME`s, or two users) never see each other's containers.
pub const STORE_LABEL: &str = "com.imbue.mngr.store-id";

/// Environment variable with extra labels for every container mngr creates,
/// as `key=value` pairs separated by commas (used by test suites to find what
/// they created).
pub const EXTRA_LABELS_ENV: &str = "MNGR_DOCKER_EXTRA_LABELS";

pub fn build_container_labels(
    host_id: &HostId,
    host_name: &HostName,
    provider: &ProviderInstanceName,
    store_id: &str,
) -> HashMap<String, String> {
    // mngr's own labels are inserted last, so extra labels cannot replace them.
    let mut labels = extra_labels_from_env();
    labels.insert(HOST_ID_LABEL.to_string(), host_id.to_string());
    labels.insert(HOST_NAME_LABEL.to_string(), host_name.to_string());
    labels.insert(PROVIDER_LABEL.to_string(), provider.to_string());
    labels.insert(STORE_LABEL.to_string(), store_id.to_string());
    labels
}

/// Labels for an image mngr builds for a host, so it can be traced back to
/// its store.
pub fn build_image_labels(store_id: &str) -> HashMap<String, String> {
    let mut labels = extra_labels_from_env();
    labels.insert(STORE_LABEL.to_string(), store_id.to_string());
    labels
}

/// The label filter that selects exactly one provider instance's containers.
pub fn provider_filter(
    provider: &ProviderInstanceName,
    store_id: &str,
) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_string(),
        vec![
            format!("{PROVIDER_LABEL}={provider}"),
            format!("{STORE_LABEL}={store_id}"),
        ],
    )])
}

/// The host identity read back from a container's labels; `None` when the
/// labels are missing or invalid (such a container is not treated as ours).
pub fn parse_container_labels(labels: &HashMap<String, String>) -> Option<(HostId, HostName)> {
    let host_id = HostId::new(labels.get(HOST_ID_LABEL)?.as_str()).ok()?;
    let host_name = HostName::new(labels.get(HOST_NAME_LABEL)?.as_str()).ok()?;
    Some((host_id, host_name))
}

fn extra_labels_from_env() -> HashMap<String, String> {
    let Ok(value) = std::env::var(EXTRA_LABELS_ENV) else {
        return HashMap::new();
    };
    value
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.trim().to_string(), value.trim().to_string()))
        .filter(|(key, _)| !key.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip() {
        let host_id = HostId::generate();
        let host_name = HostName::new("agent-1").unwrap();
        let provider = ProviderInstanceName::new("docker").unwrap();

        let labels = build_container_labels(&host_id, &host_name, &provider, "0123");

        assert_eq!(labels[PROVIDER_LABEL], "docker");
        assert_eq!(labels[STORE_LABEL], "0123");
        assert_eq!(parse_container_labels(&labels), Some((host_id, host_name)));
    }

    #[test]
    fn invalid_labels_are_not_ours() {
        let labels = HashMap::from([
            (HOST_ID_LABEL.to_string(), "host-xyz".to_string()),
            (HOST_NAME_LABEL.to_string(), "ok".to_string()),
        ]);
        assert_eq!(parse_container_labels(&labels), None);
        let labels = HashMap::from([(HOST_NAME_LABEL.to_string(), "ok".to_string())]);
        assert_eq!(parse_container_labels(&labels), None);
    }
}
