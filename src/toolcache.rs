//! The per-version tool cache: `~/.cache/cargo-worker-build/<tool>/<version>/` (or
//! `$CARGO_WORKER_BUILD_CACHE`). Installs go to a temporary directory under a file lock and are
//! renamed into place, so concurrent builds never see half a tool, and other versions are kept.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The cache's root directory.
pub fn root() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_WORKER_BUILD_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("cargo-worker-build")
}

/// Where one version of one tool lives.
pub fn dir(tool: &str, version: &str) -> PathBuf {
    root().join(tool).join(version)
}

/// Install `tool` `version` with `install` (which fills the directory it is given) unless it is
/// already there. Safe under concurrent runs: one installs, the others wait and reuse it.
pub fn install_once(
    tool: &str,
    version: &str,
    install: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    let final_dir = dir(tool, version);
    if final_dir.is_dir() {
        return Ok(final_dir);
    }
    let parent = final_dir.parent().expect("tool dir has a parent");
    crate::fs::create_dir_all(parent)?;
    let lock_path = parent.join(format!(".{version}.lock"));
    let lock = File::create(&lock_path)
        .with_context(|| format!("could not create lock file {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("could not lock {}", lock_path.display()))?;
    // Another process may have finished the install while we waited for the lock.
    if final_dir.is_dir() {
        return Ok(final_dir);
    }
    let staging = parent.join(format!(".{version}.partial-{}", std::process::id()));
    crate::fs::remove_dir_all_if_exists(&staging)?;
    crate::fs::create_dir_all(&staging)?;
    match install(&staging) {
        Ok(()) => {
            crate::fs::rename(&staging, &final_dir)?;
            Ok(final_dir)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}

/// Install npm package `package@version` into the cache (as tool `package`) with `npm`, once,
/// showing a spinner. `Ok(None)` when it cannot be had here: no npm on PATH, or `offline`. A
/// failed install becomes a [`Problem`] with `code`, npm's stderr below it, and `fix` as what to
/// do.
///
/// [`Problem`]: crate::errors::Problem
pub fn install_npm(
    package: &str,
    version: &str,
    offline: bool,
    code: crate::errors::Code,
    fix: &str,
    shell: &crate::term::Shell,
) -> Result<Option<PathBuf>> {
    if offline {
        return Ok(None);
    }
    let Some(npm) = crate::process::which("npm") else {
        return Ok(None);
    };
    install_once(package, version, |staging| {
        let _spinner = shell.spinner("Installing", format!("{package}@{version} from npm (once)"));
        crate::process::Cmd::new(&npm)
            .args(["install", "--prefix"])
            .arg(staging.as_os_str())
            .arg(format!("{package}@{version}"))
            .args(["--no-save", "--no-audit", "--no-fund", "--loglevel=error"])
            .read_or_stderr()
            .map(drop)
            .map_err(|e| {
                crate::errors::Problem::new(
                    code,
                    format!("could not install {package}@{version}: {e}"),
                    fix,
                )
                .with_detail(e.stderr)
                .into()
            })
    })
    .map(Some)
}

/// Every cached version of every tool: (tool, version, path).
pub fn list() -> Vec<(String, String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(tools) = std::fs::read_dir(root()) else {
        return out;
    };
    for tool in tools.flatten().filter(|e| e.path().is_dir()) {
        let Ok(versions) = std::fs::read_dir(tool.path()) else {
            continue;
        };
        for version in versions.flatten() {
            let name = version.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && version.path().is_dir() {
                out.push((
                    tool.file_name().to_string_lossy().into_owned(),
                    name,
                    version.path(),
                ));
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_installs_run_once_and_leave_a_complete_tool() {
        let cache = tempfile::tempdir().unwrap();
        // The variable is process-wide; this is the only test in the crate that sets it.
        std::env::set_var("CARGO_WORKER_BUILD_CACHE", cache.path());
        let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let runs = runs.clone();
                std::thread::spawn(move || {
                    install_once("demo", "1.2.3", |dir| {
                        runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        std::fs::write(dir.join("tool"), "ok")?;
                        Ok(())
                    })
                    .unwrap()
                })
            })
            .collect();
        for h in handles {
            assert_eq!(
                std::fs::read_to_string(h.join().unwrap().join("tool")).unwrap(),
                "ok"
            );
        }
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
        // A failed install leaves nothing behind, and other versions stay.
        assert!(install_once("demo", "9.9.9", |_| anyhow::bail!("no network")).is_err());
        let listed: Vec<_> = list()
            .into_iter()
            .map(|(t, v, _)| format!("{t}@{v}"))
            .collect();
        assert_eq!(listed, ["demo@1.2.3"]);
        std::env::remove_var("CARGO_WORKER_BUILD_CACHE");
    }
}
