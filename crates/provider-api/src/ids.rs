//! Validated identifiers: host and agent ids, host, agent and provider instance names.
//!
//! Every name that reaches a container name, a tmux session or a file path passes
//! through one of these types first, so no other code has to check for shell
//! syntax, path separators or control characters.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A string that is not a valid identifier of the kind named in `kind`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {rule}")]
pub struct InvalidIdentifier {
    pub kind: &'static str,
    pub value: String,
    pub rule: &'static str,
}

/// Checks `value` for a name of 1 to 63 characters: ASCII letters, digits, `-`
/// and `_`, starting with a letter or digit.
fn check_name(kind: &'static str, value: &str) -> Result<(), InvalidIdentifier> {
    const RULE: &str =
        "use 1 to 63 ASCII letters, digits, '-' or '_', starting with a letter or digit";
    let mut chars = value.chars();
    let starts_well = chars
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric());
    let rest_allowed = chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if starts_well && rest_allowed && value.len() <= 63 {
        Ok(())
    } else {
        Err(InvalidIdentifier {
            kind,
            value: value.to_string(),
            rule: RULE,
        })
    }
}

/// Checks `value` for `<prefix>` followed by 32 lowercase hexadecimal digits.
fn check_prefixed_hex(
    kind: &'static str,
    prefix: &str,
    rule: &'static str,
    value: &str,
) -> Result<(), InvalidIdentifier> {
    let valid = value.strip_prefix(prefix).is_some_and(|hex| {
        hex.len() == 32
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    });
    if valid {
        Ok(())
    } else {
        Err(InvalidIdentifier {
            kind,
            value: value.to_string(),
            rule,
        })
    }
}

macro_rules! string_identifier {
    ($(#[$meta:meta])* $name:ident, $check:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidIdentifier> {
                let value = value.into();
                let check: fn(&str) -> Result<(), InvalidIdentifier> = $check;
                check(&value)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidIdentifier;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Self::new(value)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        // Stored records are validated when read, so a hand-edited file with a
        // bad identifier is reported as corrupt instead of reaching a shell.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                Self::new(value).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_identifier!(
    /// A host's id: `host-` followed by 32 lowercase hexadecimal digits.
    HostId,
    |value| check_prefixed_hex("host id", "host-", "expected 'host-' followed by 32 lowercase hex digits", value)
);

string_identifier!(
    /// An agent's id: `agent-` followed by 32 lowercase hexadecimal digits.
    AgentId,
    |value| check_prefixed_hex("agent id", "agent-", "expected 'agent-' followed by 32 lowercase hex digits", value)
);

string_identifier!(
    /// A host's logical name, unique within a provider instance.
    HostName,
    |value| check_name("host name", value)
);

string_identifier!(
    /// An agent's name; it also names the agent's tmux session.
    AgentName,
    |value| check_name("agent name", value)
);

string_identifier!(
    /// The name of one configured provider instance, for example `docker`.
    ProviderInstanceName,
    |value| check_name("provider instance name", value)
);

impl HostId {
    /// Generates a fresh random host id.
    pub fn generate() -> Self {
        Self(format!("host-{}", uuid::Uuid::new_v4().simple()))
    }
}

impl AgentId {
    /// Generates a fresh random agent id.
    pub fn generate() -> Self {
        Self(format!("agent-{}", uuid::Uuid::new_v4().simple()))
    }
}

impl From<&AgentName> for HostName {
    fn from(agent: &AgentName) -> Self {
        // Both types accept exactly the same strings.
        Self(agent.as_str().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_id_generate_is_valid() {
        let id = HostId::generate();
        assert!(HostId::new(id.as_str()).is_ok(), "{id}");
        assert_eq!(id.as_str().len(), "host-".len() + 32);
    }

    #[test]
    fn host_id_rejects_bad_forms() {
        for bad in [
            "",
            "host-",
            "host-0123456789abcdef0123456789ABCDEF",
            "host-0123456789abcdef0123456789abcde",
            "agent-0123456789abcdef0123456789abcdef",
            "host-0123456789abcdef0123456789abcdeg",
        ] {
            assert!(HostId::new(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn host_name_accepts_plain_names() {
        for good in ["a", "my-agent", "Fix_Bug_2", &"x".repeat(63)] {
            assert!(HostName::new(good).is_ok(), "{good:?} was rejected");
        }
    }

    #[test]
    fn host_name_rejects_shell_and_path_syntax() {
        for bad in [
            "",
            "-leading-dash",
            "_leading",
            "a b",
            "a;b",
            "$(id)",
            "`id`",
            "a'b",
            "a\"b",
            "a\nb",
            "a/b",
            "..",
            "a.b",
            "a:b",
            "héllo",
            &"x".repeat(64),
        ] {
            let error = HostName::new(bad).unwrap_err();
            assert_eq!(error.kind, "host name");
        }
    }

    #[test]
    fn deserialize_rejects_invalid_name() {
        let parsed: Result<HostName, _> = serde_json::from_str("\"a;rm -rf /\"");
        assert!(parsed.is_err());
    }
}
