//! `cargo xtask base-image`: builds the local image `mngr-base:bookworm` from
//! Debian packages with `debootstrap` and `docker import`, because no image
//! registry can be reached to pull one. The image carries the tools a mngr
//! host needs (sshd, tmux, rsync, git, ...) and no SSH host keys, since mngr
//! installs its own host key per host. This module does not push, tag other
//! names, or remove older images.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::util;

/// The image every mngr test and the demo start hosts from.
pub const IMAGE: &str = "mngr-base:bookworm";

/// The label that marks images built by this command.
const IMAGE_LABEL: &str = "com.imbue.mngr.base-image=1";

const SUITE: &str = "bookworm";

/// Packages added to debootstrap's minbase variant.
const PACKAGES: &str =
    "openssh-server,tmux,curl,rsync,git,jq,ca-certificates,procps,less,bash,tar,gzip";

const FALLBACK_MIRROR: &str = "http://deb.debian.org/debian";

/// Runs `cargo xtask base-image [--force]`.
pub fn command(args: &[String]) -> Result<()> {
    let mut force = false;
    for arg in args {
        match arg.as_str() {
            "--force" => force = true,
            "-h" | "--help" => {
                println!("usage: cargo xtask base-image [--force]");
                println!();
                println!("Builds {IMAGE} from Debian packages with debootstrap (needs root, takes minutes).");
                println!("  --force   rebuild even if the image already exists");
                return Ok(());
            }
            other => bail!(
                "unknown argument `{other}` for base-image; see `cargo xtask base-image --help`"
            ),
        }
    }
    ensure(force)
}

/// Builds [`IMAGE`] unless it exists already and `force` is false.
pub fn ensure(force: bool) -> Result<()> {
    if !force && image_exists(IMAGE) {
        println!("image {IMAGE} exists; use `cargo xtask base-image --force` to rebuild it");
        return Ok(());
    }
    build()
}

/// Reports whether the local Docker daemon has an image named `image`.
pub fn image_exists(image: &str) -> bool {
    util::succeeds(Command::new("docker").args(["image", "inspect", image]))
}

fn build() -> Result<()> {
    let started = Instant::now();
    let previous_id = image_id(IMAGE);
    println!("building {IMAGE} from Debian {SUITE} packages; this takes one to several minutes, depending on the mirror");
    require_root()?;

    util::header("[1/6] ensure debootstrap is installed");
    let debootstrap = ensure_debootstrap()?;

    util::header("[2/6] find a reachable Debian mirror");
    let mirror = find_mirror()?;
    println!("using mirror {mirror}");

    util::header("[3/6] debootstrap the root filesystem (the slow step: it downloads and installs about 150 packages)");
    let rootfs = Rootfs::create()?;
    util::run(Command::new(&debootstrap).args([
        "--variant=minbase".to_owned(),
        format!("--include={PACKAGES}"),
        SUITE.to_owned(),
        rootfs.path().display().to_string(),
        mirror,
    ]))?;

    util::header("[4/6] clean apt caches and remove generated SSH host keys");
    clean_rootfs(rootfs.path())?;

    util::header(&format!("[5/6] import the root filesystem as {IMAGE}"));
    import(rootfs.path())?;

    util::header("[6/6] remove the temporary root filesystem");
    rootfs.remove()?;
    if let Some(previous_id) = previous_id {
        remove_replaced_image(&previous_id);
    }

    let size = util::capture(Command::new("docker").args([
        "image",
        "inspect",
        "--format",
        "{{.Size}}",
        IMAGE,
    ]))?;
    let size_mb = size.trim().parse::<u64>().map_or_else(
        |_| size.trim().to_owned(),
        |bytes| format!("{} MB", bytes / 1_000_000),
    );
    println!(
        "built {IMAGE} ({size_mb}) in {}s",
        started.elapsed().as_secs()
    );
    Ok(())
}

/// Returns the id of local image `image`, or `None` if it does not exist.
fn image_id(image: &str) -> Option<String> {
    util::capture(Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", image]))
        .ok()
        .map(|id| id.trim().to_owned())
}

/// Removes the image that a `--force` rebuild moved the tag away from, so
/// rebuilds do not pile up untagged copies. Keeps it, with a message, while
/// a container still uses it.
fn remove_replaced_image(previous_id: &str) {
    if image_id(IMAGE).as_deref() == Some(previous_id) {
        return;
    }
    let mut remove = Command::new("docker");
    remove.args(["image", "rm", previous_id]);
    if util::run_status(&mut remove).is_ok_and(|status| status.success()) {
        return;
    }
    println!("kept the previous image {previous_id}, probably because a container uses it");
}

fn require_root() -> Result<()> {
    let uid = util::capture(Command::new("id").arg("-u"))?;
    if uid.trim() != "0" {
        bail!(
            "building {IMAGE} needs root, because debootstrap creates device nodes and \
             files owned by other users; rerun as root (for example `sudo -E cargo xtask base-image`)"
        );
    }
    Ok(())
}

/// Returns the path of `debootstrap`, installing it with apt-get when it is
/// not on `$PATH`.
fn ensure_debootstrap() -> Result<PathBuf> {
    if let Some(path) = util::find_on_path("debootstrap") {
        println!("found {}", path.display());
        return Ok(path);
    }

    println!("debootstrap is not on PATH; installing it with apt-get");
    util::run(Command::new("apt-get").arg("update"))?;
    util::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "--no-install-recommends", "debootstrap"]),
    )?;

    // A non-login root shell may lack /usr/sbin on PATH, where the package
    // puts the script.
    let installed =
        util::find_on_path("debootstrap").unwrap_or_else(|| PathBuf::from("/usr/sbin/debootstrap"));
    if !installed.is_file() {
        bail!(
            "apt-get installed debootstrap but {} does not exist; check `dpkg -L debootstrap`",
            installed.display()
        );
    }
    Ok(installed)
}

/// Returns the first mirror that serves `dists/bookworm/Release`, trying the
/// mirrors the machine's apt sources use for bookworm main before
/// [`FALLBACK_MIRROR`].
fn find_mirror() -> Result<String> {
    let mut candidates = configured_mirrors();
    if candidates.is_empty() {
        println!("no bookworm main source in /etc/apt; trying {FALLBACK_MIRROR}");
    }
    if !candidates.iter().any(|uri| uri == FALLBACK_MIRROR) {
        candidates.push(FALLBACK_MIRROR.to_owned());
    }

    for uri in &candidates {
        let release = format!("{uri}/dists/{SUITE}/Release");
        if probe_url(&release) {
            return Ok(uri.clone());
        }
        println!("{release} is not reachable; trying the next mirror");
    }
    bail!(
        "no Debian mirror serves {SUITE}; tried {}. Check the network and /etc/apt/sources.list*",
        candidates.join(", ")
    )
}

/// Fetches `url` the way debootstrap does (with wget), falling back to curl.
fn probe_url(url: &str) -> bool {
    let mut probe = if util::on_path("wget") {
        let mut wget = Command::new("wget");
        wget.args([
            "--quiet",
            "--tries=1",
            "--timeout=20",
            "--output-document=/dev/null",
            url,
        ]);
        wget
    } else {
        let mut curl = Command::new("curl");
        curl.args([
            "--fail",
            "--silent",
            "--max-time",
            "20",
            "--output",
            "/dev/null",
            url,
        ]);
        curl
    };
    util::echo(&probe);
    util::succeeds(&mut probe)
}

/// Returns the http(s) URIs that the machine's apt sources list for the
/// bookworm suite with the main component, in file order, without repeats.
fn configured_mirrors() -> Vec<String> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(entries) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut listed: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
        listed.sort();
        files.extend(listed);
    }

    let mut uris = Vec::new();
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        let found = match file.extension().and_then(|extension| extension.to_str()) {
            Some("sources") => deb822_mirrors(&text),
            Some("list") => one_line_mirrors(&text),
            _ => continue,
        };
        for uri in found {
            if !uris.contains(&uri) {
                uris.push(uri);
            }
        }
    }
    uris
}

/// Parses the one-line format: `deb [options] URI SUITE COMPONENT...`.
fn one_line_mirrors(text: &str) -> Vec<String> {
    let mut uris = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut words = line.split_whitespace();
        if words.next() != Some("deb") {
            continue;
        }
        let mut words = words.peekable();
        if words.peek().is_some_and(|word| word.starts_with('[')) {
            for word in words.by_ref() {
                if word.ends_with(']') {
                    break;
                }
            }
        }
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        if suite == SUITE && words.any(|component| component == "main") {
            if let Some(uri) = normalized_http_uri(uri) {
                uris.push(uri);
            }
        }
    }
    uris
}

/// Parses the deb822 format: stanzas of `Field: value` lines separated by
/// blank lines, where a line starting with whitespace continues the field
/// above it.
fn deb822_mirrors(text: &str) -> Vec<String> {
    let mut uris = Vec::new();
    for stanza in text.split("\n\n") {
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in stanza.lines() {
            if line.trim_start().starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = fields.last_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
            } else if let Some((key, value)) = line.split_once(':') {
                fields.push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let field = |name: &str| {
            fields
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
                .unwrap_or_default()
        };
        let has =
            |name: &str, wanted: &str| field(name).split_whitespace().any(|word| word == wanted);

        if field("enabled").eq_ignore_ascii_case("no")
            || !has("types", "deb")
            || !has("suites", SUITE)
            || !has("components", "main")
        {
            continue;
        }
        uris.extend(
            field("uris")
                .split_whitespace()
                .filter_map(normalized_http_uri),
        );
    }
    uris
}

/// Returns `uri` without a trailing slash if it is http or https. Other
/// schemes (`file:`, `cdrom:`, `mirror+...`) are skipped because this
/// command passes the mirror to debootstrap as a download URL.
fn normalized_http_uri(uri: &str) -> Option<String> {
    if uri.starts_with("http://") || uri.starts_with("https://") {
        Some(uri.trim_end_matches('/').to_owned())
    } else {
        None
    }
}

/// Empties apt's caches and deletes SSH host keys, so the image stays small
/// and no two hosts share a host key baked in at build time.
fn clean_rootfs(rootfs: &Path) -> Result<()> {
    let mut removed = 0usize;
    removed += remove_files_in(&rootfs.join("var/cache/apt/archives"), |name| {
        name.ends_with(".deb")
    })?;
    removed += remove_files_in(&rootfs.join("var/cache/apt"), |name| name.ends_with(".bin"))?;
    removed += remove_files_in(&rootfs.join("var/lib/apt/lists"), |name| name != "lock")?;
    println!("removed {removed} files from apt's caches and package lists");

    let keys = remove_files_in(&rootfs.join("etc/ssh"), |name| {
        name.starts_with("ssh_host_")
    })?;
    println!("removed {keys} SSH host key files from /etc/ssh");
    Ok(())
}

/// Removes the regular files directly inside `directory` whose names match,
/// and returns how many it removed. A missing directory counts as empty.
fn remove_files_in(directory: &Path, matches: impl Fn(&str) -> bool) -> Result<usize> {
    let entries = match fs::read_dir(directory) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(error) => {
            return Err(error).with_context(|| format!("failed to list {}", directory.display()))
        }
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.with_context(|| format!("failed to list {}", directory.display()))?;
        let is_file = entry.file_type().is_ok_and(|kind| kind.is_file());
        if is_file && matches(&entry.file_name().to_string_lossy()) {
            fs::remove_file(entry.path())
                .with_context(|| format!("failed to remove {}", entry.path().display()))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Streams `tar -C <rootfs> -c .` into `docker import`, which creates
/// [`IMAGE`] with bash as its default command and the base-image label.
fn import(rootfs: &Path) -> Result<()> {
    let mut tar = Command::new("tar");
    tar.arg("-C")
        .arg(rootfs)
        .args(["--numeric-owner", "-c", "."]);
    let mut import = Command::new("docker");
    import.args([
        "import",
        "--change",
        r#"CMD ["/bin/bash"]"#,
        "--change",
        &format!("LABEL {IMAGE_LABEL}"),
        "-",
        IMAGE,
    ]);
    println!("$ {} | {}", util::display(&tar), util::display(&import));

    let mut tar_child = tar
        .stdout(Stdio::piped())
        .spawn()
        .context("failed to start tar")?;
    let tar_stdout = tar_child
        .stdout
        .take()
        .context("tar started without a stdout pipe")?;
    let import_status = import.stdin(tar_stdout).status();
    let tar_status = tar_child.wait().context("failed to wait for tar")?;

    let import_status = import_status.context("failed to start docker import")?;
    if !tar_status.success() {
        bail!("tar of {} failed ({tar_status})", rootfs.display());
    }
    if !import_status.success() {
        bail!(
            "docker import of {} failed ({import_status})",
            rootfs.display()
        );
    }
    Ok(())
}

/// The temporary directory debootstrap fills. Dropping it removes it, so a
/// failed build leaves nothing behind unless removal would be unsafe.
struct Rootfs {
    path: PathBuf,
    removed: bool,
}

impl Rootfs {
    fn create() -> Result<Self> {
        let path = std::env::temp_dir().join(format!("mngr-base-rootfs-{}", util::random_hex(6)?));
        fs::create_dir(&path)
            .with_context(|| format!("failed to create directory {}", path.display()))?;
        println!("root filesystem directory: {}", path.display());
        Ok(Self {
            path,
            removed: false,
        })
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Unmounts what a failed debootstrap may have left mounted inside (such
    /// as `proc`), then deletes the tree without crossing into other file
    /// systems, so a mount that survives cannot lose the host's files.
    fn remove(mut self) -> Result<()> {
        self.removed = true;
        remove_rootfs(&self.path)
    }
}

impl Drop for Rootfs {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        println!(
            "removing the temporary root filesystem {}",
            self.path.display()
        );
        if let Err(error) = remove_rootfs(&self.path) {
            eprintln!("warning: {error:#}");
        }
    }
}

fn remove_rootfs(rootfs: &Path) -> Result<()> {
    let running = processes_rooted_in(rootfs);
    if !running.is_empty() {
        bail!(
            "processes {running:?} run inside {}; stop them, then remove the directory by hand",
            rootfs.display()
        );
    }

    for mount_point in mount_points_under(rootfs) {
        util::run(Command::new("umount").arg("--lazy").arg(&mount_point))?;
    }
    util::run(
        Command::new("rm")
            .args(["-rf", "--one-file-system"])
            .arg(rootfs),
    )
}

/// Returns the mount points strictly inside `root`, deepest first, read from
/// `/proc/self/mountinfo` (field 5 is the mount point).
fn mount_points_under(root: &Path) -> Vec<PathBuf> {
    let Ok(mountinfo) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut mount_points: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split_whitespace().nth(4))
        .map(PathBuf::from)
        .filter(|mount_point| mount_point != root && mount_point.starts_with(root))
        .collect();
    mount_points.sort_by_key(|mount_point| std::cmp::Reverse(mount_point.components().count()));
    mount_points
}

/// Returns the ids of processes whose root directory is inside `root`, such
/// as a daemon a package's install script started in the chroot.
fn processes_rooted_in(root: &Path) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let process_root = fs::read_link(entry.path().join("root")).ok()?;
            process_root.starts_with(root).then_some(pid)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_source_with_options() {
        let text = "# comment\n\
            deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bookworm main contrib\n\
            deb http://security.example/debian-security bookworm-security main\n\
            deb-src http://src.example/debian bookworm main\n\
            deb http://other.example/debian bookworm contrib\n";
        assert_eq!(one_line_mirrors(text), vec!["http://mirror.example/debian"]);
    }

    #[test]
    fn deb822_source_stanzas() {
        let text = "Types: deb\n\
            # note\n\
            URIs: http://deb.debian.org/debian\n\
            Suites: bookworm bookworm-updates\n\
            Components: main\n\
            \n\
            Types: deb\n\
            URIs: http://deb.debian.org/debian-security\n\
            Suites: bookworm-security\n\
            Components: main\n\
            \n\
            Types: deb\n\
            URIs: https://disabled.example/debian\n\
            Suites: bookworm\n\
            Components: main\n\
            Enabled: no\n";
        assert_eq!(deb822_mirrors(text), vec!["http://deb.debian.org/debian"]);
    }

    #[test]
    fn non_http_uri_is_skipped() {
        assert_eq!(normalized_http_uri("file:/srv/mirror"), None);
        assert_eq!(
            normalized_http_uri("https://m.example/debian/"),
            Some("https://m.example/debian".to_owned())
        );
    }
}
