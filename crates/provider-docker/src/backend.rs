//! The Docker backend: a stateless factory for Docker provider instances,
//! registered with `inventory` so the CLI finds it at link time.

use provider_api::{
    ConfigField, MngrContext, ProviderBackend, ProviderError, ProviderInstance,
    ProviderInstanceName, ProviderRegistration, ProviderResult,
};

use crate::build_args::BUILD_ARGS_HELP;
use crate::config::{DockerProviderConfig, CONFIG_FIELDS};
use crate::instance::DockerProviderInstance;

pub struct DockerProviderBackend;

impl ProviderBackend for DockerProviderBackend {
    fn name(&self) -> &'static str {
        crate::BACKEND_NAME
    }

    fn description(&self) -> &'static str {
        "Runs agents in Docker containers with SSH access"
    }

    fn config_fields(&self) -> &'static [ConfigField] {
        CONFIG_FIELDS
    }

    fn build_args_help(&self) -> &'static str {
        BUILD_ARGS_HELP
    }

    fn start_args_help(&self) -> &'static str {
        "No start arguments are supported for the docker provider."
    }

    fn effective_config(
        &self,
        name: &ProviderInstanceName,
        config: &toml::Table,
        context: &MngrContext,
    ) -> ProviderResult<toml::Table> {
        let config =
            DockerProviderConfig::from_table(config, &context.config_file(), name.as_str())?;
        toml::Table::try_from(&config).map_err(|error| ProviderError::InvalidConfig {
            path: context.config_file(),
            key: format!("providers.{name}"),
            detail: error.to_string(),
        })
    }

    fn build_instance(
        &self,
        name: ProviderInstanceName,
        config: &toml::Table,
        context: &MngrContext,
    ) -> ProviderResult<Box<dyn ProviderInstance>> {
        let config =
            DockerProviderConfig::from_table(config, &context.config_file(), name.as_str())?;
        let instance_dir = context.provider_instance_dir(crate::BACKEND_NAME, name.as_str());
        Ok(Box::new(DockerProviderInstance::new(
            name,
            config,
            instance_dir,
        )))
    }
}

inventory::submit! {
    ProviderRegistration::new(&DockerProviderBackend)
}
