//! Files in and out of a container through the Docker archive API, which
//! works whether the container runs or not: mngr's boot script goes in before
//! a start, and the stop reason and boot status come out of any container.

use futures_util::StreamExt;
use provider_api::ProviderResult;

use ssh_utils::host_setup::HostFile;

use crate::client::DockerClient;

/// Writes `files` into the container in one tar upload; parent directories
/// that are missing are created with mode 0755.
pub async fn upload_files(
    client: &DockerClient,
    container: &str,
    files: &[HostFile],
) -> ProviderResult<()> {
    let docker = client.docker().await?;
    let archive =
        build_archive(files).map_err(|error| provider_api::ProviderError::HostSetupFailed {
            host: container.to_string(),
            step: "packing mngr's files for the container",
            detail: error.to_string(),
        })?;
    let options = bollard::query_parameters::UploadToContainerOptionsBuilder::default()
        .path("/")
        .build();
    docker
        .upload_to_container(container, Some(options), bollard::body_full(archive.into()))
        .await
        .map_err(|error| client.error("copy mngr's files into the container", error))
}

fn build_archive(files: &[HostFile]) -> std::io::Result<Vec<u8>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let mut builder = tar::Builder::new(Vec::new());
    let mut directories: Vec<String> = Vec::new();
    for file in files {
        let relative = file.path.trim_start_matches('/');
        let mut parent = String::new();
        for component in relative
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |(_, rest)| rest)
        {
            parent = if parent.is_empty() {
                component.to_string()
            } else {
                format!("{parent}/{component}")
            };
            if !directories.contains(&parent) {
                let mut header = tar::Header::new_gnu();
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                header.set_mtime(now);
                builder.append_data(&mut header, format!("{parent}/"), std::io::empty())?;
                directories.push(parent.clone());
            }
        }
        let mut header = tar::Header::new_gnu();
        header.set_mode(file.mode);
        header.set_size(file.contents.len() as u64);
        header.set_mtime(now);
        builder.append_data(&mut header, relative, file.contents.as_slice())?;
    }
    builder.into_inner()
}

/// The contents of one file in the container, or `None` when it is absent
/// (or the daemon cannot be asked).
pub async fn read_file(client: &DockerClient, container: &str, path: &str) -> Option<String> {
    let docker = client.docker().await.ok()?;
    let options = bollard::query_parameters::DownloadFromContainerOptionsBuilder::default()
        .path(path)
        .build();
    let mut archive = Vec::new();
    let mut stream = docker.download_from_container(container, Some(options));
    while let Some(chunk) = stream.next().await {
        archive.extend_from_slice(&chunk.ok()?);
    }
    first_file_in_tar(&archive)
}

/// The contents of the first regular file in a tar archive.
fn first_file_in_tar(archive: &[u8]) -> Option<String> {
    let mut reader = tar::Archive::new(archive);
    let mut entry = reader.entries().ok()?.next()?.ok()?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut entry, &mut text).ok()?;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_holds_parents_and_modes() {
        let archive = build_archive(&[
            HostFile {
                path: "/mngr/boot.sh".into(),
                contents: b"echo hi\n".to_vec(),
                mode: 0o700,
            },
            HostFile {
                path: "/mngr/logs/boot.status".into(),
                contents: b"pending\n".to_vec(),
                mode: 0o644,
            },
        ])
        .unwrap();

        let mut reader = tar::Archive::new(archive.as_slice());
        let entries: Vec<(String, u32)> = reader
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                (
                    entry.path().unwrap().display().to_string(),
                    entry.header().mode().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            vec![
                ("mngr/".to_string(), 0o755),
                ("mngr/boot.sh".to_string(), 0o700),
                ("mngr/logs/".to_string(), 0o755),
                ("mngr/logs/boot.status".to_string(), 0o644),
            ]
        );
    }
}
