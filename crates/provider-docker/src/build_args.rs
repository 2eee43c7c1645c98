//! Parses `mngr create -b` build arguments into a [`ContainerConfig`].
//!
//! Each argument is one `--name=value` token. Parsing is strict: an unknown
//! name, a missing value or a malformed value is an error that names the token.
//! Nothing here touches the daemon or a shell.

use provider_api::{ContainerConfig, ProviderError, ProviderResult};

use crate::config::DockerProviderConfig;

pub const BUILD_ARGS_HELP: &str = "\
Build arguments, one per -b, each as --name=value:
  --cpu=COUNT        CPU cores (may be fractional). Default: the provider's default_cpu (1.0)
  --memory=GB        Memory limit in GiB. Default: the provider's default_memory (1.0)
  --gpu=TYPE         GPU access (all, a device index such as 0, or nvidia). Default: no GPU
  --image=NAME       Base image; used as is when present locally, pulled when absent.
                     Default: the provider's default_image (debian:bookworm-slim)
  --dockerfile=PATH  Dockerfile to build the image from (not supported yet)
  --context-dir=DIR  Build context for --dockerfile (not supported yet)
  --network=NAME     Docker network to attach to. Default: the provider's network, else bridge
  --volume=SPEC      Extra mount HOST_PATH_OR_VOLUME:CONTAINER_PATH[:ro|rw]; repeatable
  --port=SPEC        Extra published port [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp]; repeatable";

/// Parses `tokens` on top of the instance defaults in `defaults`.
pub fn parse_build_args(
    tokens: &[String],
    defaults: &DockerProviderConfig,
) -> ProviderResult<ContainerConfig> {
    let mut config = ContainerConfig {
        cpu: defaults.default_cpu,
        memory: defaults.default_memory,
        gpu: defaults.default_gpu.clone(),
        network: defaults.network.clone(),
        ..ContainerConfig::default()
    };

    for token in tokens {
        let invalid = |reason: String| ProviderError::InvalidBuildArgument {
            argument: token.clone(),
            reason,
        };
        let Some((name, value)) = token
            .strip_prefix("--")
            .and_then(|rest| rest.split_once('='))
        else {
            return Err(invalid(
                "expected the form --name=value, for example --image=debian:bookworm-slim".into(),
            ));
        };
        if value.is_empty() {
            return Err(invalid(format!("--{name} needs a value")));
        }
        if value.chars().any(char::is_control) {
            return Err(invalid("the value contains a control character".into()));
        }

        match name {
            "cpu" => config.cpu = parse_positive(value).map_err(invalid)?,
            "memory" => config.memory = parse_positive(value).map_err(invalid)?,
            "gpu" => config.gpu = Some(value.to_string()),
            "image" => {
                check_image_reference(value).map_err(invalid)?;
                config.image = Some(value.to_string());
            }
            "network" => {
                check_network_name(value).map_err(invalid)?;
                config.network = Some(value.to_string());
            }
            "volume" => {
                check_volume_spec(value).map_err(invalid)?;
                config.volumes.push(value.to_string());
            }
            "port" => {
                parse_port_spec(value).map_err(invalid)?;
                config.ports.push(value.to_string());
            }
            "dockerfile" | "context-dir" => {
                return Err(ProviderError::NotSupportedYet {
                    provider: crate::BACKEND_NAME.to_string(),
                    operation: "building an image from a Dockerfile (--dockerfile, --context-dir)",
                });
            }
            _ => {
                return Err(invalid(format!(
                    "unknown build argument --{name}; accepted: --cpu, --memory, --gpu, --image, --dockerfile, --context-dir, --network, --volume, --port"
                )))
            }
        }
    }
    Ok(config)
}

fn parse_positive(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(number) if number.is_finite() && number > 0.0 => Ok(number),
        _ => Err(format!("expected a positive number, found {value:?}")),
    }
}

fn check_image_reference(value: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._-/:@".contains(c);
    if value.starts_with('-') || !value.chars().all(allowed) {
        return Err(format!(
            "{value:?} is not an image reference such as debian:bookworm-slim or registry:5000/team/image:tag"
        ));
    }
    Ok(())
}

fn check_network_name(value: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
    if !value.chars().all(allowed) {
        return Err(format!("{value:?} is not a Docker network name"));
    }
    Ok(())
}

fn check_volume_spec(value: &str) -> Result<(), String> {
    let parts: Vec<&str> = value.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [source, target] => (*source, *target, None),
        [source, target, mode] => (*source, *target, Some(*mode)),
        _ => return Err("expected HOST_PATH_OR_VOLUME:CONTAINER_PATH[:ro|rw]".into()),
    };
    if source.is_empty() {
        return Err("the source (host path or volume name) is empty".into());
    }
    if !target.starts_with('/') {
        return Err(format!("the container path {target:?} must be absolute"));
    }
    if let Some(mode) = mode {
        if !matches!(mode, "ro" | "rw") {
            return Err(format!("the mode {mode:?} must be ro or rw"));
        }
    }
    Ok(())
}

/// A parsed `--port` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub host_ip: Option<String>,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: &'static str,
}

pub fn parse_port_spec(value: &str) -> Result<PortSpec, String> {
    const FORM: &str = "expected [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp]";
    let (ports, protocol) = match value.rsplit_once('/') {
        Some((ports, "tcp")) => (ports, "tcp"),
        Some((ports, "udp")) => (ports, "udp"),
        Some(_) => return Err(format!("{FORM}: the protocol must be tcp or udp")),
        None => (value, "tcp"),
    };
    let parts: Vec<&str> = ports.split(':').collect();
    let (host_ip, host_port, container_port) = match parts.as_slice() {
        [host_port, container_port] => (None, *host_port, *container_port),
        [host_ip, host_port, container_port] => {
            if host_ip.parse::<std::net::IpAddr>().is_err() {
                return Err(format!("{FORM}: {host_ip:?} is not an IP address"));
            }
            (Some(host_ip.to_string()), *host_port, *container_port)
        }
        _ => return Err(FORM.to_string()),
    };
    let parse_port = |text: &str| match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!(
            "{FORM}: {text:?} is not a port number from 1 to 65535"
        )),
    };
    Ok(PortSpec {
        host_ip,
        host_port: parse_port(host_port)?,
        container_port: parse_port(container_port)?,
        protocol,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(tokens: &[&str]) -> ProviderResult<ContainerConfig> {
        let tokens: Vec<String> = tokens.iter().map(|token| token.to_string()).collect();
        parse_build_args(&tokens, &DockerProviderConfig::default())
    }

    #[test]
    fn no_arguments_give_defaults() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.cpu, 1.0);
        assert_eq!(config.memory, 1.0);
        assert_eq!(config.image, None);
    }

    #[test]
    fn every_supported_argument_is_mapped() {
        let config = parse(&[
            "--image=mngr-base:bookworm",
            "--cpu=1.5",
            "--memory=2",
            "--gpu=all",
            "--network=mynet",
            "--volume=/src:/dst:ro",
            "--volume=cache:/cache",
            "--port=8080:80",
            "--port=127.0.0.1:5353:53/udp",
        ])
        .unwrap();
        assert_eq!(config.image.as_deref(), Some("mngr-base:bookworm"));
        assert_eq!(config.cpu, 1.5);
        assert_eq!(config.memory, 2.0);
        assert_eq!(config.gpu.as_deref(), Some("all"));
        assert_eq!(config.network.as_deref(), Some("mynet"));
        assert_eq!(config.volumes, vec!["/src:/dst:ro", "cache:/cache"]);
        assert_eq!(config.ports, vec!["8080:80", "127.0.0.1:5353:53/udp"]);
    }

    #[test]
    fn bad_tokens_name_the_argument() {
        for bad in [
            "--image",
            "image=x",
            "--image=",
            "--cpu=0",
            "--cpu=-1",
            "--cpu=NaN",
            "--memory=lots",
            "--image=$(id)",
            "--image=a b",
            "--image=--privileged",
            "--network=a;b",
            "--volume=/src",
            "--volume=/src:relative",
            "--volume=/src:/dst:rx",
            "--port=80",
            "--port=0:80",
            "--port=8080:80/sctp",
            "--port=host:1:2",
            "--privileged=true",
            "--image=a\nb",
        ] {
            let error = parse(&[bad]).unwrap_err();
            match error {
                ProviderError::InvalidBuildArgument { argument, .. } => assert_eq!(argument, bad),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn dockerfile_is_not_supported_yet() {
        let error = parse(&["--dockerfile=Dockerfile"]).unwrap_err();
        assert!(
            matches!(error, ProviderError::NotSupportedYet { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn port_spec_parses_all_forms() {
        assert_eq!(
            parse_port_spec("127.0.0.1:8080:80/tcp").unwrap(),
            PortSpec {
                host_ip: Some("127.0.0.1".into()),
                host_port: 8080,
                container_port: 80,
                protocol: "tcp"
            }
        );
        assert_eq!(parse_port_spec("53:53/udp").unwrap().protocol, "udp");
    }
}
