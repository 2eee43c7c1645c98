//! Parses `mngr create -b` build arguments into a [`ContainerConfig`].
//!
//! Each argument is one `--name=value` token. Parsing is strict: an unknown
//! name, a missing value or a malformed value is an error that names the token.
//! Nothing here touches the daemon or a shell.

use std::path::{Path, PathBuf};

use provider_api::{ContainerConfig, ProviderError, ProviderResult};

use crate::config::DockerProviderConfig;
use crate::image::PullPolicy;

pub const BUILD_ARGS_HELP: &str = "\
Build arguments, one per -b, each as --name=value:
  --cpu=COUNT        CPU cores (may be fractional). Default: the provider's default_cpu (1.0)
  --memory=GB        Memory limit in GiB. Default: the provider's default_memory (1.0)
  --gpu=TYPE         GPU access (all, a device index such as 0, or nvidia). Default: no GPU
  --image=NAME       Base image; used as is when present locally, pulled when absent.
                     Default: the provider's default_image (debian:bookworm-slim)
  --dockerfile=PATH  Dockerfile to build the image from instead of --image
  --context-dir=DIR  Build context for --dockerfile. Default: the Dockerfile's directory
  --pull=POLICY      When to pull --image: missing (default), always or never
  --network=NAME     Docker network to attach to. Default: the provider's network, else bridge
  --volume=SPEC      Extra mount HOST_PATH_OR_VOLUME:CONTAINER_PATH[:ro|rw]; repeatable
  --port=SPEC        Extra published port [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp]; repeatable";

/// The parsed build arguments: the container configuration stored in the
/// host record, and how to get the image.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildArgs {
    pub config: ContainerConfig,
    pub pull: PullPolicy,
}

/// Parses `tokens` on top of the instance defaults in `defaults`. Relative
/// `--dockerfile` and `--context-dir` paths are resolved against the current
/// directory.
pub fn parse_build_args(
    tokens: &[String],
    defaults: &DockerProviderConfig,
) -> ProviderResult<BuildArgs> {
    let mut pull = PullPolicy::default();
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
            "dockerfile" => {
                let path = absolute_path(value).map_err(&invalid)?;
                if !path.is_file() {
                    return Err(invalid(format!("the Dockerfile {} does not exist", path.display())));
                }
                config.dockerfile = Some(path.display().to_string());
            }
            "context-dir" => {
                let path = absolute_path(value).map_err(&invalid)?;
                if !path.is_dir() {
                    return Err(invalid(format!("the build context {} is not a directory", path.display())));
                }
                config.context_dir = Some(path.display().to_string());
            }
            "pull" => {
                pull = PullPolicy::parse(value)
                    .ok_or_else(|| invalid(format!("the pull policy {value:?} must be missing, always or never")))?;
            }
            _ => {
                return Err(invalid(format!(
                    "unknown build argument --{name}; accepted: --cpu, --memory, --gpu, --image, --dockerfile, --context-dir, --pull, --network, --volume, --port"
                )))
            }
        }
    }

    let combination_error = |reason: &str| ProviderError::InvalidBuildArgument {
        argument: tokens.join(" "),
        reason: reason.to_string(),
    };
    if config.dockerfile.is_some() && config.image.is_some() {
        return Err(combination_error(
            "--image and --dockerfile exclude each other: the Dockerfile names its own base image",
        ));
    }
    if config.context_dir.is_some() && config.dockerfile.is_none() {
        return Err(combination_error("--context-dir needs --dockerfile"));
    }
    Ok(BuildArgs { config, pull })
}

fn absolute_path(value: &str) -> Result<PathBuf, String> {
    let path = Path::new(value);
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    std::env::current_dir()
        .map(|directory| directory.join(path))
        .map_err(|error| format!("the current directory cannot be read: {error}"))
}

fn parse_positive(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(number) if number.is_finite() && number > 0.0 => Ok(number),
        _ => Err(format!("expected a positive number, found {value:?}")),
    }
}

pub(crate) fn check_image_reference(value: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._-/:@".contains(c);
    if value.starts_with('-') || !value.chars().all(allowed) {
        return Err(format!(
            "{value:?} is not an image reference such as debian:bookworm-slim or registry:5000/team/image:tag"
        ));
    }
    // Docker requires the repository part (everything before the tag or
    // digest) to be lowercase; the daemon would reject it only after mngr
    // had started creating the host.
    let without_digest = value.split('@').next().unwrap_or(value);
    let last_slash = without_digest.rfind('/').map_or(0, |index| index + 1);
    let repository = match without_digest[last_slash..].rfind(':') {
        Some(colon) => &without_digest[..last_slash + colon],
        None => without_digest,
    };
    let repository_path = repository
        .split_once('/')
        .map_or(repository, |(registry, path)| {
            if registry.contains(['.', ':']) || registry == "localhost" {
                path
            } else {
                repository
            }
        });
    if repository_path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!(
            "{value:?} is not an image reference: the repository name must be lowercase"
        ));
    }
    Ok(())
}

pub(crate) fn check_network_name(value: &str) -> Result<(), String> {
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
    // Docker creates a missing bind source as an empty root-owned directory,
    // which hides a typo; a volume name (no leading `/`) is created on purpose.
    if source.starts_with('/') && !Path::new(source).exists() {
        return Err(format!("the host path {source:?} does not exist"));
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
        parse_with_pull(tokens).map(|parsed| parsed.config)
    }

    fn parse_with_pull(tokens: &[&str]) -> ProviderResult<BuildArgs> {
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
            "--volume=/tmp:/dst:ro",
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
        assert_eq!(config.volumes, vec!["/tmp:/dst:ro", "cache:/cache"]);
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
            "--volume=/no/such/mngr/path:/dst",
            "--image=Upper/Case:tag",
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
    fn dockerfile_and_context_are_made_absolute() {
        let directory = tempfile::tempdir().unwrap();
        let dockerfile = directory.path().join("Dockerfile");
        std::fs::write(&dockerfile, "FROM scratch\n").unwrap();

        let config = parse(&[
            &format!("--dockerfile={}", dockerfile.display()),
            &format!("--context-dir={}", directory.path().display()),
        ])
        .unwrap();

        assert_eq!(
            config.dockerfile.as_deref(),
            Some(dockerfile.to_str().unwrap())
        );
        assert_eq!(
            config.context_dir.as_deref(),
            Some(directory.path().to_str().unwrap())
        );
    }

    #[test]
    fn dockerfile_errors_name_the_problem() {
        let missing = parse(&["--dockerfile=/no/such/Dockerfile"])
            .unwrap_err()
            .to_string();
        assert!(missing.contains("does not exist"), "{missing}");
        let directory = tempfile::tempdir().unwrap();
        let dockerfile = directory.path().join("Dockerfile");
        std::fs::write(&dockerfile, "FROM scratch\n").unwrap();
        let both = parse(&[
            "--image=x",
            &format!("--dockerfile={}", dockerfile.display()),
        ])
        .unwrap_err();
        assert!(both.to_string().contains("exclude each other"), "{both}");
        let context_only =
            parse(&[&format!("--context-dir={}", directory.path().display())]).unwrap_err();
        assert!(
            context_only.to_string().contains("needs --dockerfile"),
            "{context_only}"
        );
    }

    #[test]
    fn pull_policy_is_parsed() {
        assert_eq!(parse_with_pull(&[]).unwrap().pull, PullPolicy::Missing);
        assert_eq!(
            parse_with_pull(&["--pull=always"]).unwrap().pull,
            PullPolicy::Always
        );
        assert_eq!(
            parse_with_pull(&["--pull=never"]).unwrap().pull,
            PullPolicy::Never
        );
        assert!(parse_with_pull(&["--pull=sometimes"]).is_err());
    }

    #[test]
    fn image_tags_may_hold_uppercase() {
        let config = parse(&["--image=localhost:5000/team/image:Release-1"]).unwrap();
        assert_eq!(
            config.image.as_deref(),
            Some("localhost:5000/team/image:Release-1")
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
