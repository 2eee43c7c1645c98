//! The Docker provider instance's configuration (`[providers.<name>]` with
//! `backend = "docker"`), with the defaults that apply when a field is absent.

use std::collections::BTreeMap;
use std::path::Path;

use provider_api::{
    ActivitySource, ConfigField, IdleMode, ProviderError, ProviderResult, MAX_IDLE_TIMEOUT_SECONDS,
};
use serde::{Deserialize, Serialize};

use crate::build_args::{check_image_reference, check_network_name};

/// The image used when neither the build arguments nor the configuration name one.
pub const DEFAULT_IMAGE: &str = "debian:bookworm-slim";

/// The directory inside each container that contains mngr's files.
pub const DEFAULT_HOST_DIR: &str = "/mngr";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DockerProviderConfig {
    /// Always `docker` for this backend; present so the table can be read as a whole.
    pub backend: String,
    /// Docker daemon URL (`unix://…`, `tcp://host:port`, `ssh://user@server`);
    /// empty means `DOCKER_HOST`, else the local socket.
    pub host: String,
    pub host_dir: Option<String>,
    pub default_image: Option<String>,
    /// CPU cores.
    pub default_cpu: f64,
    /// Memory in GiB.
    pub default_memory: f64,
    pub default_gpu: Option<String>,
    /// Seconds without activity before a host stops itself.
    pub default_idle_timeout: u64,
    pub default_idle_mode: IdleMode,
    pub default_activity_sources: Vec<ActivitySource>,
    pub network: Option<String>,
    /// Extra `/etc/hosts` entries: host name to address.
    pub extra_hosts: BTreeMap<String, String>,
}

impl Default for DockerProviderConfig {
    fn default() -> Self {
        Self {
            backend: crate::BACKEND_NAME.to_string(),
            host: String::new(),
            host_dir: None,
            default_image: None,
            default_cpu: 1.0,
            default_memory: 1.0,
            default_gpu: None,
            default_idle_timeout: 800,
            default_idle_mode: IdleMode::Io,
            default_activity_sources: ActivitySource::ALL.to_vec(),
            network: None,
            extra_hosts: BTreeMap::new(),
        }
    }
}

impl DockerProviderConfig {
    /// Reads the `[providers.<instance>]` table; `source` names the file for errors.
    pub fn from_table(table: &toml::Table, source: &Path, instance: &str) -> ProviderResult<Self> {
        // Parsing the table as text gives errors a span, from which the key
        // that holds a wrong value can be named.
        let text = toml::to_string(table).map_err(|error| ProviderError::InvalidConfig {
            path: source.to_path_buf(),
            key: format!("providers.{instance}"),
            detail: error.to_string(),
        })?;
        let config: Self = toml::from_str(&text).map_err(|error| {
            let key = error
                .span()
                .and_then(|span| key_at(&text, span.start))
                .map_or_else(
                    || format!("providers.{instance}"),
                    |key| format!("providers.{instance}.{key}"),
                );
            ProviderError::InvalidConfig {
                path: source.to_path_buf(),
                key,
                detail: error.message().to_string(),
            }
        })?;
        config.validate(source, instance)?;
        Ok(config)
    }

    fn validate(&self, source: &Path, instance: &str) -> ProviderResult<()> {
        let invalid = |key: &str, detail: String| ProviderError::InvalidConfig {
            path: source.to_path_buf(),
            key: format!("providers.{instance}.{key}"),
            detail,
        };
        if self.backend != crate::BACKEND_NAME {
            return Err(invalid(
                "backend",
                format!("expected \"docker\", found {:?}", self.backend),
            ));
        }
        if !(self.default_cpu.is_finite() && self.default_cpu > 0.0) {
            return Err(invalid(
                "default_cpu",
                "expected a positive number of CPU cores".into(),
            ));
        }
        if !(self.default_memory.is_finite() && self.default_memory > 0.0) {
            return Err(invalid(
                "default_memory",
                "expected a positive number of GiB".into(),
            ));
        }
        if !(1..=MAX_IDLE_TIMEOUT_SECONDS).contains(&self.default_idle_timeout) {
            return Err(invalid(
                "default_idle_timeout",
                format!(
                    "expected 1 to {MAX_IDLE_TIMEOUT_SECONDS} seconds, found {}",
                    self.default_idle_timeout
                ),
            ));
        }
        if let Some(image) = &self.default_image {
            check_image_reference(image).map_err(|detail| invalid("default_image", detail))?;
        }
        if let Some(network) = &self.network {
            check_network_name(network).map_err(|detail| invalid("network", detail))?;
        }
        for (name, address) in &self.extra_hosts {
            let name_valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c));
            if !name_valid {
                return Err(invalid(
                    "extra_hosts",
                    format!("{name:?} is not a host name"),
                ));
            }
            if address != "host-gateway" && address.parse::<std::net::IpAddr>().is_err() {
                return Err(invalid(
                    "extra_hosts",
                    format!("{address:?} for {name} is not an IP address (or host-gateway)"),
                ));
            }
        }
        if let Some(host_dir) = &self.host_dir {
            let plain = host_dir
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
            if !host_dir.starts_with('/') || !plain {
                return Err(invalid(
                    "host_dir",
                    format!("expected an absolute path, found {host_dir:?}"),
                ));
            }
        }
        Ok(())
    }

    pub fn host_dir(&self) -> &str {
        self.host_dir.as_deref().unwrap_or(DEFAULT_HOST_DIR)
    }

    pub fn default_image(&self) -> &str {
        self.default_image.as_deref().unwrap_or(DEFAULT_IMAGE)
    }
}

/// The key on the line of `text` that contains byte `offset`.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let line_start = text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |index| index + 1);
    let line = text[line_start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    Some(key.trim().trim_matches('"').to_string())
}

pub const CONFIG_FIELDS: &[ConfigField] = &[
    ConfigField { name: "host", type_name: "string", default: "\"\" (DOCKER_HOST, else the local socket)", description: "Docker daemon URL: unix://PATH, tcp://HOST:PORT or ssh://USER@SERVER" },
    ConfigField { name: "host_dir", type_name: "path", default: "/mngr", description: "Directory inside each container for mngr's files" },
    ConfigField { name: "default_image", type_name: "string", default: DEFAULT_IMAGE, description: "Image for hosts created without --image" },
    ConfigField { name: "default_cpu", type_name: "float", default: "1.0", description: "CPU cores per host" },
    ConfigField { name: "default_memory", type_name: "float", default: "1.0", description: "Memory per host, in GiB" },
    ConfigField { name: "default_gpu", type_name: "string", default: "none", description: "GPU request per host (all, a device index, or nvidia)" },
    ConfigField { name: "default_idle_timeout", type_name: "integer", default: "800", description: "Seconds without activity before a host stops itself" },
    ConfigField { name: "default_idle_mode", type_name: "string", default: "io", description: "Which activity keeps a host alive: io, user, agent, ssh, create, boot, run, custom, disabled" },
    ConfigField { name: "default_activity_sources", type_name: "list of strings", default: "all", description: "Activity sources for the custom idle mode: create, boot, ssh, user, agent, process" },
    ConfigField { name: "network", type_name: "string", default: "bridge", description: "Docker network to attach containers to" },
    ConfigField { name: "extra_hosts", type_name: "table", default: "{}", description: "Extra /etc/hosts entries, name = address" },
];

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ProviderResult<DockerProviderConfig> {
        let table: toml::Table = text.parse().unwrap();
        DockerProviderConfig::from_table(&table, Path::new("/tmp/config.toml"), "docker")
    }

    #[test]
    fn empty_table_gives_defaults() {
        let config = parse("").unwrap();
        assert_eq!(config, DockerProviderConfig::default());
        assert_eq!(config.host_dir(), "/mngr");
        assert_eq!(config.default_image(), "debian:bookworm-slim");
    }

    #[test]
    fn unknown_key_is_rejected_with_path() {
        let error = parse("defualt_cpu = 2.0").unwrap_err().to_string();
        assert!(error.contains("/tmp/config.toml"), "{error}");
        assert!(error.contains("defualt_cpu"), "{error}");
    }

    #[test]
    fn bad_idle_mode_lists_accepted_values() {
        let error = parse("default_idle_mode = \"sometimes\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("sometimes"), "{error}");
    }

    #[test]
    fn wrong_type_names_the_problem() {
        let error = parse("default_cpu = \"two\"").unwrap_err().to_string();
        assert!(error.contains("providers.docker.default_cpu"), "{error}");
        assert!(error.contains("invalid type"), "{error}");
    }

    #[test]
    fn values_the_cli_rejects_are_rejected() {
        for (text, key) in [
            ("default_idle_timeout = 0", "default_idle_timeout"),
            ("default_image = \"$(id)\"", "default_image"),
            ("network = \"$(id)\"", "network"),
            ("extra_hosts = { \"a b\" = \"1.2.3.4\" }", "extra_hosts"),
            ("extra_hosts = { db = \"not-an-ip\" }", "extra_hosts"),
            ("host_dir = \"/tmp/x; touch /pwned\"", "host_dir"),
        ] {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.contains(key), "{text}: {error}");
        }
    }

    #[test]
    fn non_positive_cpu_is_rejected() {
        let error = parse("default_cpu = 0.0").unwrap_err().to_string();
        assert!(error.contains("default_cpu"), "{error}");
    }
}
