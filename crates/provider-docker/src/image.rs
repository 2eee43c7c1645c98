//! Makes sure the image a host needs is present on the daemon: pulled
//! according to the pull policy, or built from a Dockerfile, with progress
//! shown either way.

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use futures_util::StreamExt;
use provider_api::{ProviderError, ProviderResult, PROGRESS_TARGET};
use tracing::{debug, info};

use crate::client::{is_not_found, DockerClient};

/// How many lines of build output a failed build reports.
const BUILD_LOG_LINES: usize = 30;

/// When to pull an image from its registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Pull only when the daemon does not have the image.
    #[default]
    Missing,
    /// Pull every time, so a moving tag is followed.
    Always,
    /// Never pull; a missing image is an error.
    Never,
}

impl PullPolicy {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "missing" => Some(PullPolicy::Missing),
            "always" => Some(PullPolicy::Always),
            "never" => Some(PullPolicy::Never),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Missing => "missing",
            PullPolicy::Always => "always",
            PullPolicy::Never => "never",
        }
    }
}

/// Makes `image` available on the daemon as `policy` says.
pub async fn ensure_image(
    client: &DockerClient,
    image: &str,
    policy: PullPolicy,
) -> ProviderResult<()> {
    let docker = client.docker().await?;
    if policy != PullPolicy::Always {
        match docker.inspect_image(image).await {
            Ok(_) => {
                debug!(image, "image is present locally");
                return Ok(());
            }
            Err(error) if is_not_found(&error) => {}
            Err(error) => return Err(client.error(&format!("inspect image {image}"), error)),
        }
    }
    if policy == PullPolicy::Never {
        return Err(ProviderError::ImageNotFound {
            image: image.to_string(),
            detail: format!(
                "the daemon at {} does not have it, and the pull policy is never",
                client.endpoint()
            ),
            hint: "Build or load the image first, or pass -b --pull=missing to let mngr pull it"
                .to_string(),
        });
    }
    pull_image(client, image, policy).await
}

/// Builds the image `tag` from `dockerfile` with `context_dir` as the build
/// context, streaming the build output as progress.
pub async fn build_image(
    client: &DockerClient,
    dockerfile: &Path,
    context_dir: &Path,
    tag: &str,
    labels: &HashMap<String, String>,
) -> ProviderResult<()> {
    let docker = client.docker().await?;
    let dockerfile_text = dockerfile.display().to_string();
    let (archive, dockerfile_in_context) =
        build_context_archive(dockerfile, context_dir).map_err(|detail| {
            ProviderError::ImageBuildFailed {
                dockerfile: dockerfile_text.clone(),
                detail,
                log_tail: String::new(),
            }
        })?;
    info!(target: PROGRESS_TARGET, "Building image {tag} from {dockerfile_text}");

    let options = bollard::query_parameters::BuildImageOptionsBuilder::default()
        .dockerfile(&dockerfile_in_context)
        .t(tag)
        .labels(labels)
        .rm(true)
        .forcerm(true)
        .build();
    let mut output = docker.build_image(options, None, Some(bollard::body_full(archive.into())));
    let mut log: VecDeque<String> = VecDeque::new();
    let mut remember = |line: &str| {
        if log.len() == BUILD_LOG_LINES {
            log.pop_front();
        }
        log.push_back(line.to_string());
    };
    while let Some(item) = output.next().await {
        let failure = match item {
            Ok(update) => {
                if let Some(text) = update.stream.as_deref() {
                    for line in text.lines().filter(|line| !line.trim().is_empty()) {
                        info!(target: PROGRESS_TARGET, "Building image: {}", line.trim());
                        remember(line);
                    }
                }
                update.error_detail.and_then(|detail| detail.message)
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => Some(error),
            Err(error) => return Err(client.error(&format!("build image {tag}"), error)),
        };
        if let Some(detail) = failure {
            return Err(ProviderError::ImageBuildFailed {
                dockerfile: dockerfile_text,
                detail,
                log_tail: log.iter().cloned().collect::<Vec<_>>().join("\n"),
            });
        }
    }
    Ok(())
}

/// The build context as a tar archive, and the Dockerfile's path inside it.
/// A Dockerfile outside the context is added under a name of its own.
fn build_context_archive(
    dockerfile: &Path,
    context_dir: &Path,
) -> Result<(Vec<u8>, String), String> {
    let context = context_dir.canonicalize().map_err(|error| {
        format!(
            "the build context {} cannot be read: {error}",
            context_dir.display()
        )
    })?;
    if !context.is_dir() {
        return Err(format!(
            "the build context {} is not a directory",
            context_dir.display()
        ));
    }
    let dockerfile = dockerfile.canonicalize().map_err(|error| {
        format!(
            "the Dockerfile {} cannot be read: {error}",
            dockerfile.display()
        )
    })?;

    let mut builder = tar::Builder::new(Vec::new());
    // Links are archived as links, so a context cannot pull in files from
    // outside itself.
    builder.follow_symlinks(false);
    builder.append_dir_all(".", &context).map_err(|error| {
        format!(
            "archiving the build context {} failed: {error}",
            context.display()
        )
    })?;
    let dockerfile_in_context = match dockerfile.strip_prefix(&context) {
        Ok(relative) => relative.display().to_string(),
        Err(_) => {
            let name = ".mngr-dockerfile";
            builder
                .append_path_with_name(&dockerfile, name)
                .map_err(|error| {
                    format!(
                        "adding {} to the build context failed: {error}",
                        dockerfile.display()
                    )
                })?;
            name.to_string()
        }
    };
    let archive = builder
        .into_inner()
        .map_err(|error| format!("archiving the build context failed: {error}"))?;
    Ok((archive, dockerfile_in_context))
}

async fn pull_image(client: &DockerClient, image: &str, policy: PullPolicy) -> ProviderResult<()> {
    let docker = client.docker().await?;
    let (from_image, tag) = split_reference(image);
    let options = bollard::query_parameters::CreateImageOptionsBuilder::default()
        .from_image(from_image)
        .tag(tag)
        .build();
    info!(target: PROGRESS_TARGET, "Pulling image {image}");

    let mut progress = docker.create_image(Some(options), None, None);
    let mut last_status = String::new();
    while let Some(item) = progress.next().await {
        match item {
            Ok(update) => {
                // One line per status change, not per progress tick, so a pull
                // of many layers does not flood the log.
                let status = update.status.unwrap_or_default();
                if status != last_status {
                    info!(target: PROGRESS_TARGET, "Pulling image {image}: {status}");
                    last_status = status;
                }
            }
            Err(error) => {
                return Err(ProviderError::ImageNotFound {
                    image: image.to_string(),
                    detail: format!(
                        "pulling it through the daemon at {} failed (pull policy {}): {}",
                        client.endpoint(),
                        policy.as_str(),
                        error_text(&error)
                    ),
                    hint: "Check the name, make the registry reachable, or build the image locally first \
                           (`cargo xtask base-image` builds mngr-base:bookworm from Debian's packages)"
                        .to_string(),
                });
            }
        }
    }
    Ok(())
}

fn error_text(error: &bollard::errors::Error) -> String {
    match error {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

/// Splits `image` into the repository and tag the pull API wants; a digest
/// reference stays whole.
fn split_reference(image: &str) -> (&str, &str) {
    if image.contains('@') {
        return (image, "");
    }
    let last_slash = image.rfind('/').map_or(0, |index| index + 1);
    match image[last_slash..].rfind(':') {
        Some(colon) => (
            &image[..last_slash + colon],
            &image[last_slash + colon + 1..],
        ),
        None => (image, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_reference_handles_registry_ports_and_digests() {
        assert_eq!(
            split_reference("debian:bookworm-slim"),
            ("debian", "bookworm-slim")
        );
        assert_eq!(split_reference("debian"), ("debian", "latest"));
        assert_eq!(
            split_reference("localhost:5000/team/img"),
            ("localhost:5000/team/img", "latest")
        );
        assert_eq!(
            split_reference("localhost:5000/img:v1"),
            ("localhost:5000/img", "v1")
        );
        assert_eq!(split_reference("img@sha256:abc"), ("img@sha256:abc", ""));
    }
}
