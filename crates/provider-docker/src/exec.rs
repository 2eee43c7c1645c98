//! Runs a command inside a container through the Docker exec API and collects
//! its output and exit code. Used for host setup before sshd is up.

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use futures_util::StreamExt;
use provider_api::ProviderResult;

use crate::client::DockerClient;

/// What a finished exec returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: Option<i64>,
    /// Standard output and standard error, interleaved as they arrived.
    pub output: String,
}

impl ExecOutput {
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// Runs `command` (no shell unless the command is one) as root in `container`
/// and waits for it to finish.
pub async fn run_exec(
    client: &DockerClient,
    container: &str,
    command: Vec<String>,
) -> ProviderResult<ExecOutput> {
    let docker = client.docker().await?;
    let operation = || format!("run a setup command in container {container}");
    let created = docker
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(command),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                user: Some("root".to_string()),
                ..Default::default()
            },
        )
        .await
        .map_err(|error| client.error(&operation(), error))?;

    let mut output = String::new();
    if let StartExecResults::Attached {
        output: mut stream, ..
    } = docker
        .start_exec(&created.id, None)
        .await
        .map_err(|error| client.error(&operation(), error))?
    {
        while let Some(chunk) = stream.next().await {
            match chunk.map_err(|error| client.error(&operation(), error))? {
                LogOutput::StdOut { message }
                | LogOutput::StdErr { message }
                | LogOutput::Console { message } => {
                    output.push_str(&String::from_utf8_lossy(&message));
                }
                LogOutput::StdIn { .. } => {}
            }
        }
    }

    let inspected = docker
        .inspect_exec(&created.id)
        .await
        .map_err(|error| client.error(&operation(), error))?;
    Ok(ExecOutput {
        exit_code: inspected.exit_code,
        output,
    })
}
