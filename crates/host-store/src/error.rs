//! The store's error types and their conversion to `ProviderError`.
//!
//! A record file that fails to parse is a `StoreError::Corrupt` when it is read
//! on its own, but listing reports it as a `CorruptRecord` so that one bad file
//! does not hide every other host.

use std::error::Error;
use std::fmt;
use std::path::PathBuf;

use provider_api::ProviderError;

/// A failed store operation, naming the file or directory involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to {action} {}: {source}", path.display())]
    Io {
        path: PathBuf,
        /// The failed operation as a verb phrase, such as `read` or `create directory`.
        action: &'static str,
        source: std::io::Error,
    },

    #[error("host record {} is corrupt: {detail}; fix or delete the file", path.display())]
    Corrupt { path: PathBuf, detail: String },
}

impl StoreError {
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: &'static str,
        source: std::io::Error,
    ) -> Self {
        StoreError::Io {
            path: path.into(),
            action,
            source,
        }
    }
}

impl From<StoreError> for ProviderError {
    /// Keeps the path in `ProviderError::Store::path` only, because that
    /// variant's message already appends it.
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Io {
                path,
                action,
                source,
            } => ProviderError::Store {
                path,
                detail: format!("failed to {action}: {source}"),
            },
            StoreError::Corrupt { path, detail } => ProviderError::Store {
                path,
                detail: format!("host record is corrupt: {detail}; fix or delete the file"),
            },
        }
    }
}

/// A record file that could not be read, reported by listing instead of failing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptRecord {
    pub path: PathBuf,
    pub detail: String,
}

/// The failure of `HostStore::update_host_record`.
#[derive(Debug)]
pub enum UpdateError<E> {
    /// Reading or writing the record failed.
    Store(StoreError),
    /// The update closure returned this error, and nothing was written.
    Aborted(E),
}

impl<E> From<StoreError> for UpdateError<E> {
    fn from(error: StoreError) -> Self {
        UpdateError::Store(error)
    }
}

impl<E: fmt::Display> fmt::Display for UpdateError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateError::Store(error) => fmt::Display::fmt(error, f),
            UpdateError::Aborted(error) => fmt::Display::fmt(error, f),
        }
    }
}

impl<E: Error + 'static> Error for UpdateError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            UpdateError::Store(error) => error.source(),
            UpdateError::Aborted(error) => error.source(),
        }
    }
}

impl From<UpdateError<ProviderError>> for ProviderError {
    fn from(error: UpdateError<ProviderError>) -> Self {
        match error {
            UpdateError::Store(error) => error.into(),
            UpdateError::Aborted(error) => error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_error_message_names_action_and_path() {
        let error = StoreError::io(
            "/store/hosts/x.json",
            "read",
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        assert_eq!(
            error.to_string(),
            "failed to read /store/hosts/x.json: permission denied"
        );
    }

    #[test]
    fn corrupt_message_says_what_to_do() {
        let error = StoreError::Corrupt {
            path: "/store/hosts/x.json".into(),
            detail: "EOF while parsing".into(),
        };
        assert_eq!(
            error.to_string(),
            "host record /store/hosts/x.json is corrupt: EOF while parsing; fix or delete the file"
        );
    }

    #[test]
    fn provider_error_names_path_once() {
        let error = StoreError::Corrupt {
            path: "/store/hosts/x.json".into(),
            detail: "EOF while parsing".into(),
        };
        let message = ProviderError::from(error).to_string();
        assert_eq!(
            message.matches("/store/hosts/x.json").count(),
            1,
            "{message}"
        );
        assert!(message.contains("fix or delete the file"), "{message}");
    }

    #[test]
    fn update_error_converts_to_provider_error() {
        let aborted: UpdateError<ProviderError> = UpdateError::Aborted(ProviderError::NameInUse {
            name: "a".into(),
            holder: "b".into(),
            hint: "c".into(),
        });
        assert!(matches!(
            ProviderError::from(aborted),
            ProviderError::NameInUse { .. }
        ));

        let store: UpdateError<ProviderError> = UpdateError::Store(StoreError::Corrupt {
            path: "/p".into(),
            detail: "d".into(),
        });
        assert!(matches!(
            ProviderError::from(store),
            ProviderError::Store { .. }
        ));
    }
}
