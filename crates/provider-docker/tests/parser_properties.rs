//! Property tests for the parsers that take outside input: build arguments
//! and container labels. Whatever the input, they return a value or an error
//! and never panic; what they accept keeps its meaning.

use std::collections::HashMap;

use proptest::prelude::*;
use provider_docker::build_args::{parse_build_args, parse_port_spec};
use provider_docker::labels::{
    build_container_labels, parse_container_labels, HOST_ID_LABEL, HOST_NAME_LABEL,
};
use provider_docker::DockerProviderConfig;

proptest! {
    #[test]
    fn build_args_never_panic(tokens in proptest::collection::vec(".{0,40}", 0..6)) {
        let _ = parse_build_args(&tokens, &DockerProviderConfig::default());
    }

    #[test]
    fn build_args_with_known_names_never_panic(
        name in prop::sample::select(vec!["cpu", "memory", "gpu", "image", "network", "volume", "port", "pull"]),
        value in ".{0,40}",
    ) {
        let token = format!("--{name}={value}");
        let _ = parse_build_args(&[token], &DockerProviderConfig::default());
    }

    #[test]
    fn accepted_cpu_is_positive_and_finite(value in "[0-9]{0,4}(\\.[0-9]{0,3})?") {
        if let Ok(parsed) = parse_build_args(&[format!("--cpu={value}")], &DockerProviderConfig::default()) {
            prop_assert!(parsed.config.cpu.is_finite() && parsed.config.cpu > 0.0);
        }
    }

    #[test]
    fn accepted_image_has_no_shell_syntax(value in ".{1,40}") {
        if let Ok(parsed) = parse_build_args(&[format!("--image={value}")], &DockerProviderConfig::default()) {
            let image = parsed.config.image.unwrap();
            prop_assert!(image.chars().all(|c| c.is_ascii_alphanumeric() || "._-/:@".contains(c)), "{image:?}");
        }
    }

    #[test]
    fn port_specs_never_panic(value in ".{0,30}") {
        let _ = parse_port_spec(&value);
    }

    #[test]
    fn labels_never_panic(entries in proptest::collection::hash_map(".{0,30}", ".{0,50}", 0..5)) {
        let _ = parse_container_labels(&entries);
    }

    #[test]
    fn labels_with_our_keys_never_panic(host_id in ".{0,50}", host_name in ".{0,70}") {
        let labels = HashMap::from([
            (HOST_ID_LABEL.to_string(), host_id),
            (HOST_NAME_LABEL.to_string(), host_name),
        ]);
        let _ = parse_container_labels(&labels);
    }

    #[test]
    fn built_labels_parse_back(name in "[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}") {
        let host_id = provider_api::HostId::generate();
        let host_name = provider_api::HostName::new(name).unwrap();
        let provider = provider_api::ProviderInstanceName::new("docker").unwrap();
        let labels = build_container_labels(&host_id, &host_name, &provider, "0123456789abcdef0123456789abcdef");
        prop_assert_eq!(parse_container_labels(&labels), Some((host_id, host_name)));
    }
}
