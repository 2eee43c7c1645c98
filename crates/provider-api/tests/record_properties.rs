//! Property tests for what mngr reads from disk and from users: stored host
//! records and names. Parsing never panics, and accepted names are safe.

use proptest::prelude::*;
use provider_api::{AgentData, HostName, HostRecord};

proptest! {
    #[test]
    fn host_record_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = serde_json::from_slice::<HostRecord>(&bytes);
        let _ = serde_json::from_slice::<AgentData>(&bytes);
    }

    #[test]
    fn host_record_json_with_any_fields_never_panics(
        name in ".{0,80}",
        port in any::<i64>(),
        reason in ".{0,20}",
    ) {
        let text = serde_json::json!({
            "certified_host_data": {
                "host_id": "host-0123456789abcdef0123456789abcdef",
                "host_name": name,
                "created_at": "2026-01-02T03:04:05Z",
                "updated_at": "2026-01-02T03:04:05Z",
                "stop_reason": reason,
            },
            "ssh_port": port,
        });
        let _ = serde_json::from_value::<HostRecord>(text);
    }

    #[test]
    fn accepted_names_are_plain(name in ".{0,80}") {
        if let Ok(parsed) = HostName::new(name) {
            let text = parsed.as_str();
            prop_assert!(!text.is_empty() && text.len() <= 63);
            prop_assert!(text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
            prop_assert!(text.chars().next().unwrap().is_ascii_alphanumeric());
        }
    }
}
