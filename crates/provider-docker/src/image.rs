//! Makes sure the image a host needs is present on the daemon: a local image is
//! used as it is, a missing one is pulled with its progress shown.

use futures_util::StreamExt;
use provider_api::{ProviderError, ProviderResult, PROGRESS_TARGET};
use tracing::{debug, info};

use crate::client::{is_not_found, DockerClient};

/// Returns the image id of `image`, pulling it first when the daemon lacks it.
pub async fn ensure_image(client: &DockerClient, image: &str) -> ProviderResult<String> {
    let docker = client.docker().await?;
    match docker.inspect_image(image).await {
        Ok(inspected) => {
            debug!(image, "image is present locally");
            return Ok(inspected.id.unwrap_or_else(|| image.to_string()));
        }
        Err(error) if is_not_found(&error) => {}
        Err(error) => return Err(client.error(&format!("inspect image {image}"), error)),
    }

    pull_image(client, image).await?;
    let inspected = docker
        .inspect_image(image)
        .await
        .map_err(|error| client.error(&format!("inspect image {image}"), error))?;
    Ok(inspected.id.unwrap_or_else(|| image.to_string()))
}

async fn pull_image(client: &DockerClient, image: &str) -> ProviderResult<()> {
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
                    detail: format!("pulling it from {} failed: {}", client.endpoint(), error_text(&error)),
                    hint: "mngr pulls an image only when the daemon does not have it. Check the name, \
                           make the registry reachable, or build the image locally first \
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
