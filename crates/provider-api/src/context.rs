//! Where mngr keeps its local state, shared by every provider instance.

use std::path::{Path, PathBuf};

use crate::ids::ProviderInstanceName;

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
    /// Rejects a relative `MNGR_HOME`, a home that cannot be found, and a
    /// profile that is not a plain name, because each would put mngr's state
    /// somewhere the user did not mean.
    pub fn from_env() -> Result<Self, String> {
        let mngr_home = match std::env::var_os("MNGR_HOME").filter(|value| !value.is_empty()) {
            Some(home) => PathBuf::from(home),
            None => match std::env::var_os("HOME").filter(|value| !value.is_empty()) {
                Some(home) => PathBuf::from(home).join(".mngr"),
                None => return Err("neither MNGR_HOME nor HOME is set; set MNGR_HOME to an absolute directory for mngr's state".to_string()),
            },
        };
        if !mngr_home.is_absolute() {
            return Err(format!(
                "MNGR_HOME must be an absolute path, found {:?}; for example MNGR_HOME=\"$PWD/{}\"",
                mngr_home.display().to_string(),
                mngr_home.display()
            ));
        }
        let profile = std::env::var("MNGR_PROFILE")
            .ok()
            .filter(|value| !value.is_empty())
            .unwrap_or_else(|| Self::DEFAULT_PROFILE.to_string());
        if let Err(error) = ProviderInstanceName::new(profile.as_str()) {
            return Err(format!("invalid MNGR_PROFILE {profile:?}: {}", error.rule));
        }
        Ok(Self { mngr_home, profile })
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
