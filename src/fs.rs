//! File operations whose errors name the path they were about.

use std::path::Path;

use anyhow::{Context, Result};

pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("could not read {}", path.display()))
}

pub fn read_to_string(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("could not read {}", path.display()))
}

pub fn write(path: &Path, contents: impl AsRef<[u8]>) -> Result<()> {
    std::fs::write(path, contents).with_context(|| format!("could not write {}", path.display()))
}

pub fn create_dir_all(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path)
        .with_context(|| format!("could not create directory {}", path.display()))
}

pub fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to)
        .with_context(|| format!("could not move {} to {}", from.display(), to.display()))
}

pub fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .map(drop)
        .with_context(|| format!("could not copy {} to {}", from.display(), to.display()))
}

pub fn remove_file(path: &Path) -> Result<()> {
    std::fs::remove_file(path).with_context(|| format!("could not remove {}", path.display()))
}

/// Remove a directory tree if it exists.
pub fn remove_dir_all_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("could not remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Copy a directory tree (files and directories only).
pub fn copy_dir_all(from: &Path, to: &Path) -> Result<()> {
    create_dir_all(to)?;
    for entry in std::fs::read_dir(from)
        .with_context(|| format!("could not read directory {}", from.display()))?
    {
        let entry =
            entry.with_context(|| format!("could not read directory {}", from.display()))?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir_all(&entry.path(), &target)?;
        } else {
            copy(&entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Write a file so that a reader sees the old contents or the new, never a part: the bytes go
/// to a temporary file in the same directory, which then replaces `path` in one rename.
pub fn write_atomic(path: &Path, contents: impl AsRef<[u8]>) -> Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("could not create a temporary file in {}", dir.display()))?;
    tmp.write_all(contents.as_ref())
        .and_then(|()| tmp.as_file().sync_data())
        .with_context(|| format!("could not write {}", tmp.path().display()))?;
    tmp.persist(path)
        .map(drop)
        .with_context(|| format!("could not write {}", path.display()))
}
