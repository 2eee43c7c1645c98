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

/// The locations of mngr's own sshd files on a host, all under `<host_dir>/ssh`.
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
         if {running}; then\n\
         \x20 :\n\
         else\n\
         \x20 rm -f {pid_file}\n\
         \x20 /usr/sbin/sshd -f {config} || exit 1\n\
         fi\n",
        running = sshd_running(layout),
        pid_file = shell_quote(&layout.pid_file_path()),
        config = shell_quote(&layout.config_path()),
    )
}

/// A shell condition that is true when `pid_file` names a live process
/// running `program` with `argument` among its arguments.
///
/// A pid file left from before a restart can name an unrelated process. Even
/// the setup script's own command line mentions the same paths, so the
/// program name (`/proc/PID/comm`) must match too.
fn pid_file_names_process(pid_file: &str, program: &str, argument: &str) -> String {
    let pid_file = shell_quote(pid_file);
    format!(
        "[ -f {pid_file} ] && [ \"$(cat \"/proc/$(cat {pid_file})/comm\" 2>/dev/null)\" = {program} ] && \
         tr '\\0' '\\n' < \"/proc/$(cat {pid_file})/cmdline\" 2>/dev/null | grep -qxF -- {argument}",
        program = shell_quote(program),
        argument = shell_quote(argument),
    )
}

/// A shell condition that is true when mngr's sshd listener runs. Its command
/// line is rewritten by sshd to one string that contains the config path.
fn sshd_running(layout: &SshdLayout) -> String {
    let pid_file = shell_quote(&layout.pid_file_path());
    format!(
        "[ -f {pid_file} ] && [ \"$(cat \"/proc/$(cat {pid_file})/comm\" 2>/dev/null)\" = sshd ] && \
         grep -qsF -- {config} \"/proc/$(cat {pid_file})/cmdline\"",
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
sync
kill -TERM 1
"#,
        host_dir = shell_quote(host_dir),
    )
}

/// Paths of the activity watcher's files under the host directory.
fn activity_dir(host_dir: &str) -> String {
    format!("{host_dir}/activity")
}

/// How the activity watcher decides that a host is idle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityWatcherSettings {
    /// Seconds without activity before the host stops itself.
    pub idle_timeout_seconds: u64,
    /// Lowercase activity source names: create, boot, ssh, user, agent, process.
    pub activity_sources: Vec<String>,
    /// When the host was created, in seconds since the Unix epoch.
    pub created_at_epoch: i64,
}

impl ActivityWatcherSettings {
    /// Seconds between two checks: often enough to stop close to the timeout,
    /// rarely enough to cost nothing.
    pub fn check_interval_seconds(&self) -> u64 {
        (self.idle_timeout_seconds / 4).clamp(1, 5)
    }
}

/// The activity watcher: a POSIX sh loop that records the latest activity
/// from the configured sources and runs the shutdown script with reason IDLE
/// once none was seen for the idle timeout. It reads its settings from
/// `<host_dir>/activity/watcher.conf`.
pub fn activity_watcher_script(host_dir: &str) -> String {
    format!(
        r#"#!/bin/sh
# Stops this mngr host after a period without activity.
HOST_DIR={host_dir}
ACTIVITY_DIR="$HOST_DIR/activity"
. "$ACTIVITY_DIR/watcher.conf"
echo $$ > "$ACTIVITY_DIR/watcher.pid"

has_source() {{ case " $ACTIVITY_SOURCES " in *" $1 "*) return 0 ;; esac; return 1; }}
modified_at() {{ stat -c %Y "$1" 2>/dev/null || echo 0; }}
later() {{ if [ "$1" -gt "$2" ]; then echo "$1"; else echo "$2"; fi; }}

started_at=$(date +%s)
last_activity=0
has_source create && last_activity=$(later "$CREATED_AT" "$last_activity")
has_source boot && last_activity=$(later "$started_at" "$last_activity")
# Without a time-based source the watcher's start is the first activity, so
# the host is not stopped the moment it starts.
[ "$last_activity" -eq 0 ] && last_activity=$started_at

while :; do
  sleep "$CHECK_INTERVAL"
  now=$(date +%s)
  if has_source ssh || has_source user; then
    # Every SSH login (mngr exec included) touches this marker through sshrc.
    last_activity=$(later "$(modified_at "$ACTIVITY_DIR/ssh")" "$last_activity")
    if grep -qas '^sshd: [a-z_][a-z0-9_-]*@' /proc/[0-9]*/cmdline; then
      last_activity=$now
    fi
  fi
  if has_source agent; then
    for stamp in $(tmux list-windows -a -F '#{{window_activity}}' 2>/dev/null); do
      last_activity=$(later "$stamp" "$last_activity")
    done
  fi
  if has_source process && tmux list-sessions >/dev/null 2>&1; then
    last_activity=$now
  fi
  if [ $((now - last_activity)) -ge "$IDLE_TIMEOUT" ]; then
    echo "$(date '+%Y-%m-%d %H:%M:%S') idle for $((now - last_activity)) s; stopping the host"
    rm -f "$ACTIVITY_DIR/watcher.pid"
    exec "$HOST_DIR/shutdown.sh" IDLE
  fi
done
"#,
        host_dir = shell_quote(host_dir),
    )
}

/// Builds a command that removes the recorded stop reason, so that a
/// restarted host is not reported with an old reason.
pub fn build_clear_stop_reason_command(host_dir: &str) -> String {
    format!(
        "rm -f {}\n",
        shell_quote(&format!("{host_dir}/stop_reason"))
    )
}

/// One file mngr places on a host before it boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFile {
    /// Absolute path on the host.
    pub path: String,
    pub contents: Vec<u8>,
    pub mode: u32,
}

impl HostFile {
    fn new(path: String, contents: impl Into<Vec<u8>>, mode: u32) -> Self {
        Self {
            path,
            contents: contents.into(),
            mode,
        }
    }
}

/// The files a host needs before its boot script runs: mngr's sshd
/// configuration and keys, the shutdown script, and the activity watcher.
/// Placing them as files (for example through a container's archive API)
/// spares the boot script a process per file.
pub fn host_files(
    layout: &SshdLayout,
    authorized_public_key: &str,
    host_private_key: &str,
    host_public_key: &str,
    watcher: Option<&ActivityWatcherSettings>,
) -> Vec<HostFile> {
    let host_dir = &layout.host_dir;
    let activity_dir = activity_dir(host_dir);
    let mut files = vec![
        HostFile::new(layout.config_path(), layout.sshd_config(), 0o600),
        HostFile::new(
            layout.host_key_path(),
            ensure_trailing_newline(host_private_key),
            0o600,
        ),
        HostFile::new(
            format!("{}.pub", layout.host_key_path()),
            ensure_trailing_newline(host_public_key),
            0o644,
        ),
        HostFile::new(
            layout.authorized_keys_path(),
            ensure_trailing_newline(authorized_public_key),
            0o600,
        ),
        HostFile::new(
            layout.shutdown_script_path(),
            shutdown_script(host_dir),
            0o755,
        ),
        HostFile::new(
            format!("{activity_dir}/watcher.sh"),
            activity_watcher_script(host_dir),
            0o755,
        ),
        HostFile::new(
            format!("{activity_dir}/sshrc"),
            sshrc_script(host_dir),
            0o644,
        ),
    ];
    let config = match watcher {
        Some(settings) => format!(
            "IDLE_TIMEOUT={timeout}\nACTIVITY_SOURCES={sources}\nCREATED_AT={created}\nCHECK_INTERVAL={interval}\n",
            timeout = settings.idle_timeout_seconds,
            sources = shell_quote(&settings.activity_sources.join(" ")),
            created = settings.created_at_epoch,
            interval = settings.check_interval_seconds(),
        ),
        None => "DISABLED=1\n".to_string(),
    };
    files.push(HostFile::new(
        format!("{activity_dir}/watcher.conf"),
        config,
        0o644,
    ));
    files
}

/// The sshrc that marks every SSH login as activity.
fn sshrc_script(host_dir: &str) -> String {
    let marker = shell_quote(&format!("{}/ssh", activity_dir(host_dir)));
    format!("#!/bin/sh\n# mngr: marks SSH logins as host activity.\ntouch {marker} 2>/dev/null\n")
}

/// Builds the boot commands for a host whose files [`host_files`] placed.
/// They install missing packages, tighten the SSH directory for sshd's
/// StrictModes, remove the last stop reason and install the sshrc. Then they
/// start sshd and (re)start the activity watcher unless its settings disable it.
pub fn build_boot_commands(layout: &SshdLayout) -> String {
    let host_dir = &layout.host_dir;
    let activity_dir = activity_dir(host_dir);
    let watcher_path = format!("{activity_dir}/watcher.sh");
    let pid_file = shell_quote(&format!("{activity_dir}/watcher.pid"));
    let config = shell_quote(&format!("{activity_dir}/watcher.conf"));
    [
        build_check_and_install_packages_command(),
        format!(
            "chmod 755 {host_dir} && chmod 700 {ssh_dir}\n",
            host_dir = shell_quote(host_dir),
            ssh_dir = shell_quote(&layout.ssh_dir())
        ),
        build_clear_stop_reason_command(host_dir),
        // An image's own sshrc is left alone; mngr only replaces the one it wrote.
        format!(
            "if [ ! -e /etc/ssh/sshrc ] || grep -q '^# mngr: ' /etc/ssh/sshrc; then cp {sshrc} /etc/ssh/sshrc; fi\n",
            sshrc = shell_quote(&format!("{activity_dir}/sshrc"))
        ),
        build_start_sshd_command(layout),
        format!(
            "if {running}; then kill \"$(cat {pid_file})\" || true; fi\n\
             rm -f {pid_file}\n\
             if ! grep -q '^DISABLED=1' {config}; then\n\
             \x20 nohup sh {watcher} </dev/null >>{log} 2>&1 &\n\
             fi\n",
            running = pid_file_names_process(&format!("{activity_dir}/watcher.pid"), "sh", &watcher_path),
            watcher = shell_quote(&watcher_path),
            log = shell_quote(&format!("{host_dir}/logs/activity_watcher.log")),
        ),
    ]
    .join("")
}

/// Paths of the boot script, its status file and its log under the host directory.
pub fn boot_script_path(host_dir: &str) -> String {
    format!("{host_dir}/boot.sh")
}

pub fn boot_status_path(host_dir: &str) -> String {
    format!("{host_dir}/boot.status")
}

pub fn boot_log_path(host_dir: &str) -> String {
    format!("{host_dir}/logs/boot.log")
}

/// The container command (PID 1): runs the boot script, if there is one, in
/// the background, then waits until SIGTERM and exits cleanly, whatever the
/// image's own entrypoint would have done.
pub fn container_entrypoint(host_dir: &str) -> [String; 3] {
    let boot = shell_quote(&boot_script_path(host_dir));
    let log = shell_quote(&boot_log_path(host_dir));
    let logs = shell_quote(&format!("{host_dir}/logs"));
    [
        "sh".to_string(),
        "-c".to_string(),
        format!("trap 'exit 0' TERM; [ -f {boot} ] && mkdir -p {logs} && sh {boot} >>{log} 2>&1 & tail -f /dev/null & wait"),
    ]
}

/// The boot script: runs `setup` (the commands of this module, joined) with
/// `set -e` at every container start and records the outcome in
/// `boot.status`: `ok`, or `failed` with the log in `logs/boot.log`.
pub fn boot_script(host_dir: &str, setup: &str) -> String {
    let status = shell_quote(&boot_status_path(host_dir));
    format!(
        "#!/bin/sh
         # Prepares this mngr host at every container start: packages, sshd, activity watcher.
         mkdir -p {logs}
         echo \"$(date '+%Y-%m-%d %H:%M:%S') boot started\"
         if ( set -e
{setup}
); then
           echo ok > {status}
         else
           echo failed > {status}
           exit 1
         fi
",
        logs = shell_quote(&format!("{host_dir}/logs")),
    )
}

/// The path of the file in which the shutdown script records the stop reason.
pub fn stop_reason_path(host_dir: &str) -> String {
    format!("{host_dir}/stop_reason")
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

    #[test]
    fn activity_watcher_script_is_valid_sh() {
        let script = activity_watcher_script("/mngr dir/$(x)");
        assert!(run_sh(&format!("sh -n -c {}", shell_quote(&script)))
            .status
            .success());
        let boot = build_boot_commands(&SshdLayout::new("/mngr"));
        assert!(run_sh(&format!("sh -n -c {}", shell_quote(&boot)))
            .status
            .success());
    }

    #[test]
    fn host_files_carry_watcher_settings() {
        let settings = ActivityWatcherSettings {
            idle_timeout_seconds: 20,
            activity_sources: vec!["ssh".into(), "agent".into()],
            created_at_epoch: 0,
        };
        let layout = SshdLayout::new("/mngr");

        let enabled = host_files(&layout, "client", "private", "public", Some(&settings));
        let disabled = host_files(&layout, "client", "private", "public", None);

        let config = |files: &[HostFile]| {
            let file = files
                .iter()
                .find(|file| file.path == "/mngr/activity/watcher.conf")
                .unwrap();
            String::from_utf8(file.contents.clone()).unwrap()
        };
        assert!(
            config(&enabled).contains("ACTIVITY_SOURCES='ssh agent'"),
            "{}",
            config(&enabled)
        );
        assert!(config(&enabled).contains("IDLE_TIMEOUT=20"));
        assert_eq!(config(&disabled), "DISABLED=1\n");
        let private_key = enabled
            .iter()
            .find(|file| file.path == "/mngr/ssh/host_ed25519_key")
            .unwrap();
        assert_eq!(private_key.mode, 0o600);
    }

    #[test]
    fn activity_watcher_stops_idle_host() {
        let directory = tempfile::tempdir().unwrap();
        let host_dir = directory.path().to_str().unwrap().to_string();
        // A shutdown script that only records its reason replaces the real one.
        std::fs::write(
            directory.path().join("shutdown.sh"),
            format!(
                "#!/bin/sh\necho \"$1\" > {}/stopped\n",
                shell_quote(&host_dir)
            ),
        )
        .unwrap();
        run_sh(&format!("chmod 755 {}/shutdown.sh", shell_quote(&host_dir)));
        std::fs::create_dir_all(directory.path().join("activity")).unwrap();
        std::fs::write(
            directory.path().join("activity/watcher.conf"),
            "IDLE_TIMEOUT=1\nACTIVITY_SOURCES='boot'\nCREATED_AT=0\nCHECK_INTERVAL=1\n",
        )
        .unwrap();

        let output = run_sh(&format!(
            "timeout 10 sh -c {}",
            shell_quote(&activity_watcher_script(&host_dir))
        ));

        assert!(output.status.success(), "{output:?}");
        let reason = std::fs::read_to_string(directory.path().join("stopped")).unwrap();
        assert_eq!(reason, "IDLE\n");
    }

    #[test]
    fn watcher_interval_is_bounded() {
        let settings = |timeout| ActivityWatcherSettings {
            idle_timeout_seconds: timeout,
            activity_sources: Vec::new(),
            created_at_epoch: 0,
        };
        assert_eq!(settings(1).check_interval_seconds(), 1);
        assert_eq!(settings(20).check_interval_seconds(), 5);
        assert_eq!(settings(800).check_interval_seconds(), 5);
    }

    #[test]
    fn pid_file_check_matches_program_and_argument() {
        let directory = tempfile::tempdir().unwrap();
        let script = directory.path().join("watcher.sh");
        std::fs::write(&script, "sleep 5\n").unwrap();
        let pid_file = directory.path().join("watcher.pid");
        let mut child = Command::new("sh")
            .arg(&script)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::fs::write(&pid_file, child.id().to_string()).unwrap();
        let pid_file = pid_file.to_str().unwrap();
        let script = script.to_str().unwrap();

        let matching = run_sh(&pid_file_names_process(pid_file, "sh", script));
        let other_argument = run_sh(&pid_file_names_process(pid_file, "sh", "/other.sh"));
        let other_program = run_sh(&pid_file_names_process(pid_file, "bash", script));
        child.kill().unwrap();
        child.wait().unwrap();
        let dead = run_sh(&pid_file_names_process(pid_file, "sh", script));

        assert!(matching.status.success(), "{matching:?}");
        assert!(!other_argument.status.success());
        assert!(!other_program.status.success());
        assert!(!dead.status.success());
    }
}
