//! The backend trait (a stateless factory for provider instances) and the
//! registration type that backends submit with `inventory`.

use crate::context::MngrContext;
use crate::error::ProviderResult;
use crate::ids::ProviderInstanceName;
use crate::instance::ProviderInstance;

/// One field of a backend's instance configuration, for `mngr providers` and
/// `mngr config show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigField {
    pub name: &'static str,
    pub type_name: &'static str,
    pub default: &'static str,
    pub description: &'static str,
}

/// A kind of provider, such as Docker. Implementations hold no state.
pub trait ProviderBackend: Send + Sync + 'static {
    /// The backend's name as used in configuration (`backend = "docker"`).
    fn name(&self) -> &'static str;

    fn description(&self) -> &'static str;

    fn config_fields(&self) -> &'static [ConfigField];

    /// Help for the build arguments that `mngr create -b` passes to this backend.
    fn build_args_help(&self) -> &'static str;

    /// Help for the arguments that `mngr start` passes to this backend.
    fn start_args_help(&self) -> &'static str;

    /// The configuration an instance built from `config` uses, with every
    /// default filled in; `mngr config show` prints it.
    fn effective_config(
        &self,
        name: &ProviderInstanceName,
        config: &toml::Table,
        context: &MngrContext,
    ) -> ProviderResult<toml::Table>;

    /// Builds an instance named `name` from its configuration table; an empty
    /// table means every field at its default.
    fn build_instance(
        &self,
        name: ProviderInstanceName,
        config: &toml::Table,
        context: &MngrContext,
    ) -> ProviderResult<Box<dyn ProviderInstance>>;
}

/// What a backend crate submits with `inventory::submit!`; the CLI finds every
/// linked backend through `inventory::iter::<ProviderRegistration>`.
pub struct ProviderRegistration {
    pub backend: &'static dyn ProviderBackend,
}

inventory::collect!(ProviderRegistration);

impl ProviderRegistration {
    pub const fn new(backend: &'static dyn ProviderBackend) -> Self {
        Self { backend }
    }

    /// Every registered backend, sorted by name.
    pub fn all() -> Vec<&'static dyn ProviderBackend> {
        let mut backends: Vec<&'static dyn ProviderBackend> =
            inventory::iter::<ProviderRegistration>
                .into_iter()
                .map(|registration| registration.backend)
                .collect();
        backends.sort_by_key(|backend| backend.name());
        backends
    }

    pub fn find(name: &str) -> Option<&'static dyn ProviderBackend> {
        Self::all()
            .into_iter()
            .find(|backend| backend.name() == name)
    }
}
