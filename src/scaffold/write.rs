//! Writing a generation plan to disk: all of it, or nothing.
//!
//! Before the first write every destination is probed for permission, so the common failure
//! (a directory the user cannot write) stops before anything changes. If a write still fails
//! half-way (disk full, a race), what was already done is undone: created files and directories
//! are removed and overwritten files get their old contents back.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::{Action, Plan};

/// Writes every file of `plan` under `plan.root`.
pub fn write_plan(plan: &Plan) -> Result<()> {
    preflight(plan)?;
    let mut journal = Journal::default();
    match write_all(plan, &mut journal) {
        Ok(()) => Ok(()),
        Err(err) => {
            journal.undo();
            Err(err)
        }
    }
}

/// Checks that every directory we will write in, and every file we will replace, is writable,
/// without changing anything.
fn preflight(plan: &Plan) -> Result<()> {
    let mut probed: Vec<PathBuf> = Vec::new();
    for file in &plan.files {
        let path = plan.root.join(&file.path);
        if path.exists() {
            if let Err(err) = fs::OpenOptions::new().append(true).open(&path) {
                return Err(write_error(&path, err));
            }
            continue;
        }
        let dir = nearest_existing_dir(path.parent().unwrap_or(&plan.root));
        if probed.contains(&dir) {
            continue;
        }
        if let Err(err) = tempfile::Builder::new()
            .prefix(".cargo-worker-build-probe")
            .tempfile_in(&dir)
        {
            return Err(write_error(&dir, err));
        }
        probed.push(dir);
    }
    Ok(())
}

fn nearest_existing_dir(start: &Path) -> PathBuf {
    let mut dir = start;
    loop {
        if dir.is_dir() {
            return dir.to_path_buf();
        }
        match dir.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => dir = parent,
            _ => return PathBuf::from("."),
        }
    }
}

/// One line: what could not be written and what to do about it.
fn write_error(path: &Path, err: io::Error) -> anyhow::Error {
    // `.` says little in an error; the absolute path says where.
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let path = path.as_path();
    match err.kind() {
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => anyhow::anyhow!(
            "no permission to write in `{}`: choose a directory you can write to, or change its permissions",
            path.display()
        ),
        _ => anyhow::anyhow!("cannot write `{}`: {err}", path.display()),
    }
}

fn write_all(plan: &Plan, journal: &mut Journal) -> Result<()> {
    for file in &plan.files {
        let path = plan.root.join(&file.path);
        if let Some(dir) = path.parent() {
            create_dirs(dir, journal)?;
        }
        match file.action {
            Action::Create => {
                // Create-new: a file (or a link) that appeared since the plan is not replaced,
                // and a link is never followed.
                let created = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(|err| match err.kind() {
                        io::ErrorKind::AlreadyExists => anyhow::anyhow!(
                            "`{}` appeared while init ran: run init again",
                            path.display()
                        ),
                        _ => write_error(&path, err),
                    })?;
                journal.created_files.push(path.clone());
                write_contents(created, &path, &file.contents)?;
            }
            Action::Overwrite | Action::Merge => {
                let old =
                    fs::read(&path).with_context(|| format!("cannot read `{}`", path.display()))?;
                journal.replaced_files.push((path.clone(), old));
                replace(&path, &file.contents)?;
            }
        }
    }
    Ok(())
}

fn write_contents(mut file: fs::File, path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|err| write_error(path, err))
}

/// Replaces the file at `path` by renaming a new file over it, with its permissions: a link put
/// there since the plan is replaced itself, never written through.
fn replace(path: &Path, contents: &str) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let new = tempfile::Builder::new()
        .prefix(".cargo-worker-build-")
        .tempfile_in(dir)
        .map_err(|err| write_error(dir, err))?;
    write_contents(
        new.as_file()
            .try_clone()
            .map_err(|err| write_error(path, err))?,
        path,
        contents,
    )?;
    if let Ok(meta) = fs::symlink_metadata(path) {
        let _ = fs::set_permissions(new.path(), meta.permissions());
    }
    new.persist(path)
        .map_err(|err| write_error(path, err.error))?;
    Ok(())
}

/// Creates `dir` and its missing parents, recording each one created.
fn create_dirs(dir: &Path, journal: &mut Journal) -> Result<()> {
    let mut missing = Vec::new();
    let mut current = dir;
    while !current.as_os_str().is_empty() && !current.exists() {
        missing.push(current.to_path_buf());
        match current.parent() {
            Some(parent) => current = parent,
            None => break,
        }
    }
    for dir in missing.into_iter().rev() {
        if let Err(err) = fs::create_dir(&dir) {
            if err.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() {
                continue;
            }
            return Err(write_error(&dir, err));
        }
        journal.created_dirs.push(dir);
    }
    if !dir.is_dir() {
        bail!(
            "`{}` is a file, and the project needs a directory there: move it away and run again",
            dir.display()
        );
    }
    Ok(())
}

/// What has been done so far, to undo it.
#[derive(Default)]
struct Journal {
    created_dirs: Vec<PathBuf>,
    created_files: Vec<PathBuf>,
    replaced_files: Vec<(PathBuf, Vec<u8>)>,
}

impl Journal {
    /// Best effort: the original error is what the user needs to see, not a failure to clean up.
    fn undo(self) {
        for (path, old) in self.replaced_files.iter().rev() {
            let _ = fs::write(path, old);
        }
        for path in self.created_files.iter().rev() {
            let _ = fs::remove_file(path);
        }
        for dir in self.created_dirs.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
}
