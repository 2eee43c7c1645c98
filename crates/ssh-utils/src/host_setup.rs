//! Shell commands that prepare a fresh Linux host for mngr: the packages mngr
//! needs, sshd with mngr's keys, known hosts for outbound SSH, and the shutdown
//! script.
//!
//! Builders only return POSIX `sh` text; running it (through `docker exec`, SSH
//! or anything else) is the caller's job. Every value that comes from outside is
//! quoted with [`shell_quote`], so keys, paths and names are never interpreted by
//! the shell.

use std::borrow::Cow;

/// The commands mngr needs on a host, each with the Debian package that provides it.
pub const REQUIRED_PACKAGES: [(&str, &str); 6] = [
    ("/usr/sbin/sshd", "openssh-server"),
    ("tmux", "tmux"),
    ("curl", "curl"),
    ("rsync", "rsync"),
    ("git", "git"),
    ("jq", "jq"),
];

/// Quotes `value` as one POSIX shell word.
pub fn shell_quote(value: &str) -> String {
    match shell_escape::unix::escape(Cow::Borrowed(value)) {
        Cow::Borrowed(unchanged) => unchanged.to_string(),
        Cow::Owned(quoted) => quoted,
    }
}

/// Joins `words` into one shell command line, quoting each word.
pub fn shell_join<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|word| shell_quote(word.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where mngr's own sshd keeps its files on a host, all under `<host_dir>/ssh`.
///
/// mngr runs sshd with its own configuration file, so the image's
/// `/etc/ssh/sshd_config` never weakens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshdLayout {
    pub host_dir: String,
}

impl SshdLayout {
    pub fn new(host_dir: impl Into<String>) -> Self {
        Self {
            host_dir: host_dir.into(),
        }
    }

    pub fn ssh_dir(&self) -> String {
        format!("{}/ssh", self.host_dir)
    }

    pub fn config_path(&self) -> String {
        format!("{}/sshd_config", self.ssh_dir())
    }

    pub fn host_key_path(&self) -> String {
        format!("{}/host_ed25519_key", self.ssh_dir())
    }

    pub fn authorized_keys_path(&self) -> String {
        format!("{}/authorized_keys", self.ssh_dir())
    }

    pub fn pid_file_path(&self) -> String {
        format!("{}/sshd.pid", self.ssh_dir())
    }

    pub fn shutdown_script_path(&self) -> String {
        format!("{}/shutdown.sh", self.host_dir)
    }

    /// The sshd configuration: public key login for our key only, nothing else.
    pub fn sshd_config(&self) -> String {
        // `ChallengeResponseAuthentication` is the older name of
        // `KbdInteractiveAuthentication`; OpenSSH 9 still accepts it, and sshd
        // before 8.7 rejects the newer name as unknown.
        format!(
            "Port 22\n\
             ListenAddress 0.0.0.0\n\
             HostKey {host_key}\n\
             AuthorizedKeysFile {authorized_keys}\n\
             PidFile {pid_file}\n\
             PermitRootLogin prohibit-password\n\
             PubkeyAuthentication yes\n\
             AuthenticationMethods publickey\n\
             PasswordAuthentication no\n\
             ChallengeResponseAuthentication no\n\
             PermitEmptyPasswords no\n\
             HostbasedAuthentication no\n\
             UsePAM no\n\
             StrictModes yes\n\
             PrintMotd no\n\
             X11Forwarding no\n\
             AcceptEnv LANG LC_*\n\
             Subsystem sftp internal-sftp\n",
            host_key = self.host_key_path(),
            authorized_keys = self.authorized_keys_path(),
            pid_file = self.pid_file_path(),
        )
    }
}

/// Builds a command that installs every missing package of [`REQUIRED_PACKAGES`].
///
/// It does nothing when all commands are present, so it is cheap on a prepared
/// image. It supports apt-get, apk, dnf and yum, and fails naming the missing
/// packages when none of them exists.
pub fn build_check_and_install_packages_command() -> String {
    let mut script = String::from("missing=''\n");
    for (command, package) in REQUIRED_PACKAGES {
        script.push_str(&format!(
            "command -v {} >/dev/null 2>&1 || missing=\"$missing {}\"\n",
            shell_quote(command),
            shell_quote(package)
        ));
    }
    script.push_str(
        r#"if [ -n "$missing" ]; then
  echo "mngr: installing missing packages:$missing" >&2
  if command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends $missing >&2 || exit 1
  elif command -v apk >/dev/null 2>&1; then
    apk add --no-cache $missing >&2 || exit 1
  elif command -v dnf >/dev/null 2>&1; then
    dnf install -y $missing >&2 || exit 1
  elif command -v yum >/dev/null 2>&1; then
    yum install -y $missing >&2 || exit 1
  else
    echo "mngr: no supported package manager (apt-get, apk, dnf, yum) to install:$missing" >&2
    exit 1
  fi
fi
"#,
    );
    script
}

/// Builds a command that writes `content` to `path` with `mode`, atomically
/// (temporary file, then rename), creating the parent directory. The temporary
/// file is private from the start, so a key is never readable by others.
pub fn build_write_file_command(path: &str, content: &str, mode: &str) -> String {
    let quoted_path = shell_quote(path);
    let temporary = shell_quote(&format!("{path}.mngr-tmp"));
    format!(
        "mkdir -p \"$(dirname {quoted_path})\" && \
         (umask 077 && printf '%s' {content} > {temporary}) && \
         chmod {mode} {temporary} && \
         mv -f {temporary} {quoted_path}\n",
        content = shell_quote(content),
        mode = shell_quote(mode),
    )
}

/// Builds a command that installs mngr's sshd configuration, the host key and
/// the one authorized client key.
pub fn build_configure_ssh_command(
    layout: &SshdLayout,
    authorized_public_key: &str,
    host_private_key: &str,
    host_public_key: &str,
) -> String {
    let mut script = String::new();
    // StrictModes rejects keys whose directories are writable by others, all
    // the way up to `/`.
    script.push_str(&format!(
        "mkdir -p {ssh_dir} && chmod 755 {host_dir} && chmod 700 {ssh_dir}\n",
        host_dir = shell_quote(&layout.host_dir),
        ssh_dir = shell_quote(&layout.ssh_dir()),
    ));
    script.push_str(&build_write_file_command(
        &layout.host_key_path(),
        &ensure_trailing_newline(host_private_key),
        "600",
    ));
    script.push_str(&build_write_file_command(
        &format!("{}.pub", layout.host_key_path()),
        &ensure_trailing_newline(host_public_key),
        "644",
    ));
    script.push_str(&build_write_file_command(
        &layout.authorized_keys_path(),
        &ensure_trailing_newline(authorized_public_key),
        "600",
    ));
    script.push_str(&build_write_file_command(
        &layout.config_path(),
        &layout.sshd_config(),
        "600",
    ));
    script
}

/// Builds a command that starts sshd with mngr's configuration unless it is
/// already running, so it is safe to run again after a restart.
pub fn build_start_sshd_command(layout: &SshdLayout) -> String {
    format!(
        "mkdir -p /run/sshd && chmod 755 /run/sshd\n\
         if [ -f {pid_file} ] && kill -0 \"$(cat {pid_file})\" 2>/dev/null; then\n\
         \x20 :\n\
         else\n\
         \x20 /usr/sbin/sshd -f {config} || exit 1\n\
         fi\n",
        pid_file = shell_quote(&layout.pid_file_path()),
        config = shell_quote(&layout.config_path()),
    )
}

/// Builds a command that adds `entries` (OpenSSH known_hosts lines) to the root
/// user's known hosts inside the host, skipping lines already present.
pub fn build_add_known_hosts_command(entries: &[String]) -> String {
    let mut script = String::from(
        "mkdir -p /root/.ssh && chmod 700 /root/.ssh && touch /root/.ssh/known_hosts && chmod 600 /root/.ssh/known_hosts\n",
    );
    for entry in entries {
        let line = shell_quote(entry.trim_end());
        script.push_str(&format!(
            "grep -qxF -- {line} /root/.ssh/known_hosts || printf '%s\\n' {line} >> /root/.ssh/known_hosts\n"
        ));
    }
    script
}

/// The shutdown script installed on each host: it logs why the host stops,
/// records the reason under the host directory, and ends PID 1 (the container
/// entrypoint traps SIGTERM and exits cleanly).
pub fn shutdown_script(host_dir: &str) -> String {
    format!(
        r#"#!/bin/sh
# Stops this mngr host: logs the reason, records it, then ends PID 1.
HOST_DIR={host_dir}
LOG_FILE="$HOST_DIR/logs/shutdown.log"
mkdir -p "$HOST_DIR/logs"
log() {{ echo "$(date '+%Y-%m-%d %H:%M:%S') $*" >> "$LOG_FILE"; echo "$*"; }}
REASON="${{1:-PAUSED}}"
log "=== Shutdown script started ==="
log "STOP_REASON: $REASON"
printf '%s\n' "$REASON" > "$HOST_DIR/stop_reason.tmp" && mv -f "$HOST_DIR/stop_reason.tmp" "$HOST_DIR/stop_reason"
kill -TERM 1
"#,
        host_dir = shell_quote(host_dir),
    )
}

fn ensure_trailing_newline(text: &str) -> String {
    if text.ends_with('\n') {
        text.to_string()
    } else {
        format!("{text}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn run_sh(script: &str) -> std::process::Output {
        Command::new("sh").arg("-c").arg(script).output().unwrap()
    }

    #[test]
    fn shell_quote_survives_hostile_values() {
        for value in [
            "plain",
            "a b",
            "$(id)",
            "`id`",
            "a'b",
            "a\"b",
            "a\nb",
            "; rm -rf /",
            "",
            "é",
        ] {
            let output = run_sh(&format!("printf '%s' {}", shell_quote(value)));
            assert_eq!(String::from_utf8(output.stdout).unwrap(), value);
        }
    }

    #[test]
    fn shell_join_keeps_word_boundaries() {
        let output = run_sh(&format!(
            "for word in {}; do printf '[%s]' \"$word\"; done",
            shell_join(&["a b", "$HOME", "c'd"])
        ));
        assert_eq!(
            String::from_utf8(output.stdout).unwrap(),
            "[a b][$HOME][c'd]"
        );
    }

    #[test]
    fn write_file_command_writes_exact_content() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("sub dir/$(touch pwned)");
        let content = "line 1\n'quoted' $(id) `id`\n";
        let script = build_write_file_command(path.to_str().unwrap(), content, "600");

        let output = run_sh(&script);

        assert!(output.status.success(), "{output:?}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), content);
        assert!(!directory.path().join("pwned").exists());
    }

    #[test]
    fn sshd_config_allows_only_public_keys() {
        let config = SshdLayout::new("/mngr").sshd_config();
        assert!(config.contains("PasswordAuthentication no\n"));
        assert!(config.contains("ChallengeResponseAuthentication no\n"));
        assert!(config.contains("AuthenticationMethods publickey\n"));
        assert!(config.contains("AuthorizedKeysFile /mngr/ssh/authorized_keys\n"));
        assert!(config.contains("PermitEmptyPasswords no\n"));
    }

    #[test]
    fn add_known_hosts_command_is_idempotent_text() {
        let script = build_add_known_hosts_command(&["[a]:22 ssh-ed25519 AAAA".to_string()]);
        assert!(script.contains("grep -qxF -- '[a]:22 ssh-ed25519 AAAA'"));
    }

    #[test]
    fn packages_command_checks_every_required_command() {
        let script = build_check_and_install_packages_command();
        for (command, package) in REQUIRED_PACKAGES {
            assert!(script.contains(command), "{command}");
            assert!(script.contains(package), "{package}");
        }
        assert!(run_sh(&format!("sh -n -c {}", shell_quote(&script)))
            .status
            .success());
    }
}
