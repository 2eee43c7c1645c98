//! Chooses which files of the user's project go into an agent's work directory
//! and writes them as a tar stream.
//!
//! In a git work tree that is the tracked files plus the untracked files git
//! does not ignore (and `.git` itself when the project is the repository's top
//! level, so the agent can commit); elsewhere it is the whole directory.
//! Symbolic links are copied as links and never followed, so nothing outside
//! the project is read.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;

pub struct ProjectFiles {
    root: PathBuf,
    /// Paths relative to `root`, in the order they are archived.
    entries: Vec<PathBuf>,
    pub from_git: bool,
}

impl ProjectFiles {
    /// Lists the files of the project rooted at `root`.
    pub fn collect(root: &Path) -> anyhow::Result<Self> {
        let root = root
            .canonicalize()
            .with_context(|| format!("failed to read the project directory {}", root.display()))?;
        match git_listing(&root)? {
            Some(entries) => Ok(Self {
                root,
                entries,
                from_git: true,
            }),
            None => {
                let mut entries = Vec::new();
                walk(&root, Path::new(""), &mut entries)?;
                Ok(Self {
                    root,
                    entries,
                    from_git: false,
                })
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Writes every entry to `writer` as a tar archive; files that vanished
    /// since they were listed are skipped.
    pub fn write_tar<W: Write>(&self, writer: W) -> io::Result<()> {
        let mut builder = tar::Builder::new(writer);
        builder.follow_symlinks(false);
        for relative in &self.entries {
            let full = self.root.join(relative);
            match builder.append_path_with_name(&full, relative) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => {
                    return Err(io::Error::new(
                        error.kind(),
                        format!("failed to archive {}: {error}", full.display()),
                    ))
                }
            }
        }
        builder.into_inner()?.flush()
    }
}

/// The git listing of `root`, or `None` when `root` is not in a git work tree
/// (or git is not installed).
fn git_listing(root: &Path) -> anyhow::Result<Option<Vec<PathBuf>>> {
    let inside = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["rev-parse", "--is-inside-work-tree", "--show-cdup"])
        .output();
    let Ok(inside) = inside else {
        return Ok(None);
    };
    let answer = String::from_utf8_lossy(&inside.stdout);
    let mut lines = answer.lines();
    if !inside.status.success() || lines.next() != Some("true") {
        return Ok(None);
    }
    let is_top_level = lines.next().unwrap_or("").is_empty();

    let listing = Command::new("git")
        .arg("-C")
        .arg(root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()
        .context("failed to run `git ls-files` in the project")?;
    if !listing.status.success() {
        anyhow::bail!(
            "`git ls-files` failed in {}: {}",
            root.display(),
            String::from_utf8_lossy(&listing.stderr).trim()
        );
    }

    let mut entries: Vec<PathBuf> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for raw in listing
        .stdout
        .split(|byte| *byte == 0)
        .filter(|raw| !raw.is_empty())
    {
        let relative = PathBuf::from(OsStr::from_bytes(raw));
        // Tracked files deleted from the work tree are still listed; skip them.
        if fs::symlink_metadata(root.join(&relative)).is_ok() && seen.insert(relative.clone()) {
            entries.push(relative);
        }
    }
    if is_top_level && root.join(".git").exists() {
        walk(root, Path::new(".git"), &mut entries)?;
    }
    Ok(Some(entries))
}

/// Adds `relative` (under `root`) and everything below it to `entries`,
/// without following symbolic links; sockets and other special files are left out.
fn walk(root: &Path, relative: &Path, entries: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let full = root.join(relative);
    let metadata = fs::symlink_metadata(&full)
        .with_context(|| format!("failed to read {}", full.display()))?;
    let file_type = metadata.file_type();
    if !relative.as_os_str().is_empty()
        && (file_type.is_file() || file_type.is_symlink() || file_type.is_dir())
    {
        entries.push(relative.to_path_buf());
    }
    if file_type.is_dir() {
        let mut children: Vec<_> = fs::read_dir(&full)
            .with_context(|| format!("failed to read the directory {}", full.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("failed to read the directory {}", full.display()))?;
        children.sort_by_key(|child| child.file_name());
        for child in children {
            walk(root, &relative.join(child.file_name()), entries)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let status = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .unwrap();
        assert!(status.status.success(), "{status:?}");
    }

    fn archived_names(files: &ProjectFiles) -> Vec<String> {
        let mut buffer = Vec::new();
        files.write_tar(&mut buffer).unwrap();
        let mut archive = tar::Archive::new(buffer.as_slice());
        let mut names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|entry| {
                entry
                    .unwrap()
                    .path()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }

    #[test]
    fn git_project_copies_tracked_and_unignored_files() {
        let project = tempfile::tempdir().unwrap();
        let root = project.path();
        git(root, &["init", "-q"]);
        fs::write(root.join(".gitignore"), "ignored.log\n").unwrap();
        fs::write(root.join("tracked.txt"), "t").unwrap();
        git(root, &["add", "."]);
        git(root, &["commit", "-q", "-m", "init"]);
        fs::write(root.join("untracked.txt"), "u").unwrap();
        fs::write(root.join("ignored.log"), "i").unwrap();

        let files = ProjectFiles::collect(root).unwrap();
        let names = archived_names(&files);

        assert!(files.from_git);
        assert!(names.contains(&"tracked.txt".to_string()), "{names:?}");
        assert!(names.contains(&"untracked.txt".to_string()), "{names:?}");
        assert!(names.contains(&".gitignore".to_string()), "{names:?}");
        assert!(!names.contains(&"ignored.log".to_string()), "{names:?}");
        assert!(
            names.iter().any(|name| name.starts_with(".git/")),
            "{names:?}"
        );
    }

    #[test]
    fn plain_directory_is_copied_whole() {
        let project = tempfile::tempdir().unwrap();
        let root = project.path();
        fs::create_dir(root.join("sub")).unwrap();
        fs::write(root.join("sub/a.txt"), "a").unwrap();
        fs::write(root.join("b.txt"), "b").unwrap();

        let files = ProjectFiles::collect(root).unwrap();

        assert!(!files.from_git);
        assert_eq!(archived_names(&files), vec!["b.txt", "sub", "sub/a.txt"]);
    }

    #[test]
    fn symlink_out_of_project_is_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "top secret").unwrap();
        let project = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), project.path().join("link"))
            .unwrap();

        let files = ProjectFiles::collect(project.path()).unwrap();
        let mut buffer = Vec::new();
        files.write_tar(&mut buffer).unwrap();

        let mut archive = tar::Archive::new(buffer.as_slice());
        let entry = archive.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(entry.header().entry_type(), tar::EntryType::Symlink);
        assert!(!String::from_utf8_lossy(&buffer).contains("top secret"));
    }
}
