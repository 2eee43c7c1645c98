//! Parsing and checking user tags given as `KEY=VALUE`.
//!
//! Tags live in the host record and are never passed to a shell, but they are
//! shown in listings and JSON, so keys are kept to a plain form and control
//! characters are rejected everywhere.

use std::collections::BTreeMap;

use anyhow::bail;

const MAX_KEY_LENGTH: usize = 128;
const MAX_VALUE_LENGTH: usize = 4096;

/// Checks a tag key: 1 to 128 ASCII letters, digits, `_`, `.`, `-` or `/`,
/// starting with a letter or digit.
pub fn check_tag_key(key: &str) -> anyhow::Result<()> {
    let mut chars = key.chars();
    let valid = chars
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c))
        && key.len() <= MAX_KEY_LENGTH;
    if !valid {
        bail!(
            "invalid tag key {key:?}: use 1 to {MAX_KEY_LENGTH} ASCII letters, digits, '_', '.', '-' or '/', starting with a letter or digit"
        );
    }
    Ok(())
}

/// Parses `KEY=VALUE` tokens into tags; a later token for the same key wins.
pub fn parse_tags(tokens: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut tags = BTreeMap::new();
    for token in tokens {
        let Some((key, value)) = token.split_once('=') else {
            bail!("invalid tag {token:?}: expected KEY=VALUE, for example team=infra");
        };
        check_tag_key(key)?;
        if value.chars().any(char::is_control) {
            bail!(
                "invalid value for tag {key:?}: it contains a control character such as a newline"
            );
        }
        if value.len() > MAX_VALUE_LENGTH {
            bail!("invalid value for tag {key:?}: it is longer than {MAX_VALUE_LENGTH} bytes");
        }
        tags.insert(key.to_string(), value.to_string());
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(values: &[&str]) -> Vec<String> {
        values.iter().map(|value| value.to_string()).collect()
    }

    #[test]
    fn parse_tags_keeps_hostile_values_verbatim() {
        let tags = parse_tags(&tokens(&["a=$(id)", "b=`x`; 'q' \"d\"", "c=é", "d="])).unwrap();
        assert_eq!(tags["a"], "$(id)");
        assert_eq!(tags["b"], "`x`; 'q' \"d\"");
        assert_eq!(tags["c"], "é");
        assert_eq!(tags["d"], "");
    }

    #[test]
    fn parse_tags_rejects_bad_tokens() {
        for bad in ["novalue", "=x", "a b=c", "$(id)=x", "a=line\nbreak", "-a=x"] {
            assert!(parse_tags(&tokens(&[bad])).is_err(), "{bad:?} was accepted");
        }
        let long_value = format!("a={}", "x".repeat(MAX_VALUE_LENGTH + 1));
        assert!(parse_tags(&[long_value]).is_err());
    }
}
