//! Where mngr keeps its local state, shared by every provider instance.

use std::path::{Path, PathBuf};

/// The mngr home directory and the active profile.
///
/// Provider instances keep their records under
/// `<mngr_home>/profiles/<profile>/providers/<backend>/<instance>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MngrContext {
    pub mngr_home: PathBuf,
    pub profile: String,
}

impl MngrContext {
    pub const DEFAULT_PROFILE: &'static str = "default";

    /// Reads `$MNGR_HOME` (default `~/.mngr`) and `$MNGR_PROFILE` (default `default`).
    ///
    /// Returns `None` only when neither `$MNGR_HOME` nor `$HOME` is set.
    pub fn from_env() -> Option<Self> {
        let mngr_home = match std::env::var_os("MNGR_HOME").filter(|value| !value.is_empty()) {
            Some(home) => PathBuf::from(home),
            None => PathBuf::from(std::env::var_os("HOME").filter(|value| !value.is_empty())?)
                .join(".mngr"),
        };
        let profile = std::env::var("MNGR_PROFILE")
            .ok()
            .filter(|value| !value.is_empty())
            .unwrap_or_else(|| Self::DEFAULT_PROFILE.to_string());
        Some(Self { mngr_home, profile })
    }

    pub fn profile_dir(&self) -> PathBuf {
        self.mngr_home.join("profiles").join(&self.profile)
    }

    /// The directory that holds one provider instance's `hosts/` and `keys/`.
    pub fn provider_instance_dir(&self, backend: &str, instance: &str) -> PathBuf {
        self.profile_dir()
            .join("providers")
            .join(backend)
            .join(instance)
    }

    pub fn config_file(&self) -> PathBuf {
        self.mngr_home.join("config.toml")
    }

    pub fn mngr_home(&self) -> &Path {
        &self.mngr_home
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_instance_dir_layout() {
        let context = MngrContext {
            mngr_home: PathBuf::from("/home/u/.mngr"),
            profile: "work".to_string(),
        };
        assert_eq!(
            context.provider_instance_dir("docker", "docker"),
            PathBuf::from("/home/u/.mngr/profiles/work/providers/docker/docker")
        );
    }
}
