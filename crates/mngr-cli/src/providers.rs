//! Builds the configured provider instances.
//!
//! Backends are found through `inventory` (every backend crate linked into this
//! binary registers itself), never through a list kept here. Instances come
//! from the `[providers.<name>]` tables of `$MNGR_HOME/config.toml`; without any,
//! there is one instance named `docker` on the default Docker daemon.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context as _};
use provider_api::{MngrContext, ProviderInstance, ProviderInstanceName, ProviderRegistration};

// Linking the Docker backend registers it with `inventory`.
use provider_docker as _;

/// The instance used when the configuration names none.
pub const DEFAULT_INSTANCE: &str = "docker";

pub struct Providers {
    pub context: MngrContext,
    /// Instances by name, in name order.
    pub instances: BTreeMap<String, Box<dyn ProviderInstance>>,
}

impl Providers {
    pub fn load() -> anyhow::Result<Self> {
        let context = MngrContext::from_env().map_err(|message| anyhow!(message))?;
        let tables = read_provider_tables(&context)?;

        let mut instances = BTreeMap::new();
        for (name, table) in tables {
            let backend_name = table
                .get("backend")
                .and_then(toml::Value::as_str)
                .unwrap_or(DEFAULT_INSTANCE)
                .to_string();
            let Some(backend) = ProviderRegistration::find(&backend_name) else {
                let known: Vec<&str> = ProviderRegistration::all()
                    .iter()
                    .map(|backend| backend.name())
                    .collect();
                bail!(
                    "invalid configuration in {}: providers.{name}.backend: unknown backend {backend_name:?}; known backends: {}",
                    context.config_file().display(),
                    known.join(", ")
                );
            };
            let instance_name = ProviderInstanceName::new(name.as_str()).with_context(|| {
                format!(
                    "invalid configuration in {}: providers.{name}",
                    context.config_file().display()
                )
            })?;
            let instance = backend.build_instance(instance_name, &table, &context)?;
            instances.insert(name, instance);
        }
        Ok(Self { context, instances })
    }

    /// The instance called `name`, or an error listing the configured ones.
    pub fn get(&self, name: &str) -> anyhow::Result<&dyn ProviderInstance> {
        match self.instances.get(name) {
            Some(instance) => Ok(instance.as_ref()),
            None => {
                let names: Vec<&str> = self.instances.keys().map(String::as_str).collect();
                bail!(
                    "provider instance {name:?} not found; configured instances: {} (see {})",
                    names.join(", "),
                    self.context.config_file().display()
                )
            }
        }
    }

    pub fn all(&self) -> impl Iterator<Item = &dyn ProviderInstance> {
        self.instances.values().map(|instance| instance.as_ref())
    }
}

/// The `[providers.*]` tables of the config file, or the default instance when
/// the file or the section is absent.
pub fn read_provider_tables(
    context: &MngrContext,
) -> anyhow::Result<BTreeMap<String, toml::Table>> {
    let path = context.config_file();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => {
            return Err(error).with_context(|| format!("failed to read {}", path.display()))
        }
    };

    let mut tables = BTreeMap::new();
    if let Some(text) = text {
        let document: toml::Table = text
            .parse()
            .with_context(|| format!("invalid configuration in {}", path.display()))?;
        for (key, value) in &document {
            if key != "providers" {
                bail!(
                    "invalid configuration in {}: unknown section {key:?}; the accepted section is [providers.<name>]",
                    path.display()
                );
            }
            let Some(providers) = value.as_table() else {
                bail!("invalid configuration in {}: providers must be a table of [providers.<name>] tables", path.display());
            };
            for (name, table) in providers {
                let Some(table) = table.as_table() else {
                    bail!(
                        "invalid configuration in {}: providers.{name} must be a table",
                        path.display()
                    );
                };
                tables.insert(name.clone(), table.clone());
            }
        }
    }
    if tables.is_empty() {
        tables.insert(DEFAULT_INSTANCE.to_string(), toml::Table::new());
    }
    Ok(tables)
}
