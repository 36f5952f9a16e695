//! The per-version tool cache: `~/.cache/cargo-worker-build/<tool>/<version>/` (or
//! `$CARGO_WORKER_BUILD_CACHE`). Installs go to a temporary directory under a file lock and are
//! renamed into place, so concurrent builds never see half a tool, and other versions are kept.
//! Each installed version records the SHA-256 of every file it holds, and a version whose files
//! no longer match is not used: it is installed again (rustup and cargo trust what they
//! installed; this cache holds the programs that rewrite every module, so a damaged or edited
//! one must not pass unnoticed). The cache root holds a marker the tool writes, and
//! `tools --clean` removes only versions the tool recorded, from a root that has it.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::errors::{problem, Code};

/// The file in the cache root that says cargo-worker-build made it.
pub const MARKER: &str = ".cargo-worker-build-cache";
/// In each installed version: what the tool installed there, file by file.
const RECORD: &str = ".cargo-worker-build-files.json";
/// An install directory left by a process that is gone, or this old, is swept: no install
/// takes hours, and one that did would not be found by the dead process's successor anyway.
const STALE_PARTIAL: Duration = Duration::from_secs(6 * 3600);

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

/// What the cache holds of one version of a tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    Absent,
    /// Every file as it was installed.
    Intact,
    /// Not as installed: the file that differs (or is gone).
    Changed(String),
}

/// The SHA-256 of every regular file under `dir` but the record, by path relative to it.
/// Symbolic links (npm's `.bin`) are not followed: what they name is hashed where it is.
fn hash_tree(dir: &Path) -> std::io::Result<BTreeMap<String, String>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_dir() {
                walk(base, &path, out)?;
            } else if kind.is_file() && entry.file_name() != RECORD {
                let rel = path.strip_prefix(base).unwrap_or(&path);
                out.insert(rel.to_string_lossy().into_owned(), hash_file(&path)?);
            }
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out)?;
    Ok(out)
}

fn hash_file(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    std::io::copy(&mut File::open(path)?, &mut h)?;
    Ok(format!("{:x}", h.finalize()))
}

/// What `stat` says of a file, enough to know it was not written since: size, modification
/// and change times, inode. The change time cannot be set back by a program, so a file whose
/// stamp is as recorded holds what was hashed then, and checking a tool costs no hashing
/// (Binaryen's package alone is about 100 MB).
fn stamp(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path).ok()?;
    Some(format!(
        "{}:{}.{}:{}.{}:{}",
        m.len(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
        m.ino()
    ))
}

/// Record what `dir` holds now (atomically: a record is whole or absent).
fn write_record(dir: &Path) -> Result<()> {
    let files = hash_tree(dir).with_context(|| format!("could not hash {}", dir.display()))?;
    let stamps: BTreeMap<&String, Option<String>> =
        files.keys().map(|f| (f, stamp(&dir.join(f)))).collect();
    let text =
        serde_json::to_string_pretty(&serde_json::json!({ "sha256": files, "stamps": stamps }))?;
    let partial = dir.join(format!("{RECORD}.{}", std::process::id()));
    crate::fs::write(&partial, text)?;
    crate::fs::rename(&partial, &dir.join(RECORD))
}

struct Record {
    sha256: BTreeMap<String, String>,
    stamps: BTreeMap<String, Option<String>>,
}

fn read_record(dir: &Path) -> Option<Record> {
    let text = std::fs::read_to_string(dir.join(RECORD)).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(Record {
        sha256: serde_json::from_value(value.get("sha256")?.clone()).ok()?,
        stamps: value
            .get("stamps")
            .and_then(|s| serde_json::from_value(s.clone()).ok())
            .unwrap_or_default(),
    })
}

/// Whether `dir` still holds what was installed there. A version installed before the tool
/// recorded hashes is recorded as it is now, once (and the root marked as the tool's).
pub fn check(dir: &Path) -> Cached {
    if !dir.is_dir() {
        return Cached::Absent;
    }
    let Some(recorded) = read_record(dir) else {
        if dir.join(RECORD).exists() {
            return Cached::Changed(RECORD.into());
        }
        // Recorded now; a cache this process cannot write to (shared, read-only) is used as
        // before hashes were recorded rather than installed again where it cannot be.
        if write_record(dir).is_ok() {
            if let Some(root) = dir.parent().and_then(Path::parent) {
                mark_root(root);
            }
        }
        return Cached::Intact;
    };
    let mut restamp = false;
    for (file, sum) in &recorded.sha256 {
        let path = dir.join(file);
        let unchanged = recorded
            .stamps
            .get(file)
            .and_then(Option::as_ref)
            .is_some_and(|s| stamp(&path).as_ref() == Some(s));
        if !unchanged {
            if hash_file(&path).ok().as_ref() != Some(sum) {
                return Cached::Changed(file.clone());
            }
            restamp = true;
        }
    }
    if restamp {
        // The same contents under new stamps (a copied or restored cache): stamped again, so
        // the next check need not hash them. Best effort, like any cache write.
        let stamps: BTreeMap<&String, Option<String>> = recorded
            .sha256
            .keys()
            .map(|f| (f, stamp(&dir.join(f))))
            .collect();
        let text = serde_json::json!({ "sha256": recorded.sha256, "stamps": stamps });
        let partial = dir.join(format!("{RECORD}.{}", std::process::id()));
        if std::fs::write(&partial, text.to_string()).is_ok() {
            let _ = std::fs::rename(&partial, dir.join(RECORD));
        }
    }
    Cached::Intact
}

/// Whether the process `pid` is running (where that can be known; elsewhere only age counts).
fn alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// Remove what interrupted installs of `version` left in `parent` (called under its lock).
fn sweep_partials(parent: &Path, version: &str) {
    let prefixes = [
        format!(".{version}.partial-"),
        format!(".{version}.replaced-"),
    ];
    for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = prefixes.iter().find_map(|p| name.strip_prefix(p.as_str())) else {
            continue;
        };
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_PARTIAL);
        let gone = pid.parse::<u32>().map_or(true, |pid| !alive(pid));
        if old || gone || pid == std::process::id().to_string() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn mark_root(root: &Path) {
    let marker = root.join(MARKER);
    if !marker.exists() {
        let _ = std::fs::write(
            marker,
            "This directory is cargo-worker-build's tool cache: `cargo worker-build tools --clean` removes versions it installed here.\n",
        );
    }
}

/// The lock that serialises installing and removing `version` of the tool in `parent`.
fn lock(parent: &Path, version: &str) -> Result<File> {
    let lock_path = parent.join(format!(".{version}.lock"));
    File::create(&lock_path)
        .with_context(|| format!("could not create lock file {}", lock_path.display()))
}

/// Install `tool` `version` with `install` (which fills the directory it is given) unless it is
/// already there, as installed. Safe under concurrent runs: one installs, the others wait and
/// reuse it.
pub fn install_once(
    tool: &str,
    version: &str,
    install: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    let final_dir = dir(tool, version);
    if check(&final_dir) == Cached::Intact {
        return Ok(final_dir);
    }
    if HELD
        .lock()
        .is_ok_and(|held| held.iter().any(|(p, _)| *p == final_dir))
    {
        anyhow::bail!(
            "{} changed while this build was using it; build again",
            final_dir.display()
        );
    }
    let parent = final_dir.parent().expect("tool dir has a parent");
    crate::fs::create_dir_all(parent)?;
    let lock = lock(parent, version)?;
    lock.lock()
        .with_context(|| format!("could not lock {}", parent.join(version).display()))?;
    sweep_partials(parent, version);
    // Another process may have finished the install while we waited for the lock.
    match check(&final_dir) {
        Cached::Intact => return Ok(final_dir),
        Cached::Absent => {}
        Cached::Changed(_) => {
            // Out of the way in one step: a build that runs the old files keeps them open.
            let aside = parent.join(format!(".{version}.replaced-{}", std::process::id()));
            crate::fs::rename(&final_dir, &aside)?;
            let _ = std::fs::remove_dir_all(&aside);
        }
    }
    let staging = parent.join(format!(".{version}.partial-{}", std::process::id()));
    crate::fs::remove_dir_all_if_exists(&staging)?;
    crate::fs::create_dir_all(&staging)?;
    match install(&staging).and_then(|()| write_record(&staging)) {
        Ok(()) => {
            crate::fs::rename(&staging, &final_dir)?;
            if let Some(root) = parent.parent() {
                mark_root(root);
            }
            Ok(final_dir)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}

/// Versions this process runs, each locked shared until it exits: `tools --clean` (which
/// locks exclusively) passes them over instead of removing a tool a build is about to run.
static HELD: std::sync::Mutex<Vec<(PathBuf, File)>> = std::sync::Mutex::new(Vec::new());

/// Keep `version` of `tool` from being removed while this process runs. Best effort: a cache
/// that cannot be locked is used all the same.
pub fn hold(tool: &str, version: &str) {
    let parent = root().join(tool);
    let Ok(mut held) = HELD.lock() else { return };
    let key = parent.join(version);
    if held.iter().any(|(p, _)| *p == key) {
        return;
    }
    if let Ok(file) = lock(&parent, version) {
        if file.lock_shared().is_ok() {
            held.push((key, file));
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

/// One version of one tool in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub tool: String,
    pub version: String,
    pub path: PathBuf,
    /// The tool installed it (and recorded its files); only such versions are ever removed.
    pub recorded: bool,
}

/// Every cached version of every tool. Directories the tool did not record are listed only
/// from a root it made (anywhere else they are another program's files).
pub fn list() -> Vec<Entry> {
    list_in(&root())
}

fn list_in(root: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    let ours = root.join(MARKER).is_file();
    let Ok(tools) = std::fs::read_dir(root) else {
        return out;
    };
    for tool in tools.flatten().filter(|e| e.path().is_dir()) {
        let Ok(versions) = std::fs::read_dir(tool.path()) else {
            continue;
        };
        for version in versions.flatten() {
            let name = version.file_name().to_string_lossy().into_owned();
            let recorded = version.path().join(RECORD).is_file();
            if !name.starts_with('.') && version.path().is_dir() && (recorded || ours) {
                out.push(Entry {
                    tool: tool.file_name().to_string_lossy().into_owned(),
                    version: name,
                    path: version.path(),
                    recorded,
                });
            }
        }
    }
    out.sort_by(|a, b| (&a.tool, &a.version).cmp(&(&b.tool, &b.version)));
    out
}

/// Remove every version the tool installed but `keep`, each under its install lock (a version
/// being installed now is skipped). Refuses a root the tool did not make. Returns what was
/// removed and what was skipped.
pub fn clean(keep: impl Fn(&str, &str) -> bool) -> Result<(Vec<String>, Vec<String>)> {
    clean_in(&root(), keep)
}

fn clean_in(root: &Path, keep: impl Fn(&str, &str) -> bool) -> Result<(Vec<String>, Vec<String>)> {
    if !root.join(MARKER).is_file() {
        return Err(problem(
            Code::ForeignToolCache,
            format!(
                "{} has no {MARKER} file, so it is not a tool cache cargo-worker-build made, and `tools --clean` removes nothing there",
                root.display()
            ),
            "check CARGO_WORKER_BUILD_CACHE; a cache made before the tool wrote this file gets it with the next build that installs or uses a tool there",
        ));
    }
    let (mut removed, mut skipped) = (Vec::new(), Vec::new());
    for Entry {
        tool,
        version,
        path,
        recorded,
    } in list_in(root)
    {
        if keep(&tool, &version) {
            continue;
        }
        if !recorded {
            skipped.push(format!(
                "{tool} {version} (the tool has no record of installing it; remove it by hand if it is not needed)"
            ));
            continue;
        }
        let parent = path.parent().expect("a version has a tool directory");
        let lock = lock(parent, &version)?;
        if lock.try_lock().is_err() {
            skipped.push(format!("{tool} {version} (being installed now)"));
            continue;
        }
        // Out of the way in one step, then removed: a build looking it up sees it whole or absent.
        let aside = parent.join(format!(".{version}.replaced-{}", std::process::id()));
        crate::fs::rename(&path, &aside)?;
        crate::fs::remove_dir_all_if_exists(&aside)?;
        removed.push(format!("{tool} {version}"));
    }
    Ok((removed, skipped))
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
            .map(|e| format!("{}@{}", e.tool, e.version))
            .collect();
        assert_eq!(listed, ["demo@1.2.3"]);
        assert!(cache.path().join(MARKER).is_file());

        // A file changed after the install: the version is installed again, not used.
        let tool = cache.path().join("demo/1.2.3/tool");
        std::fs::write(&tool, "changed").unwrap();
        assert_eq!(
            check(&cache.path().join("demo/1.2.3")),
            Cached::Changed("tool".into())
        );
        install_once("demo", "1.2.3", |dir| {
            runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::fs::write(dir.join("tool"), "ok")?;
            Ok(())
        })
        .unwrap();
        assert_eq!(std::fs::read_to_string(&tool).unwrap(), "ok");
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 2);

        // What an install killed part way left is swept by the next install of that version.
        let dead = cache.path().join("demo/.2.0.0.partial-4000000000");
        std::fs::create_dir_all(dead.join("bin")).unwrap();
        let live = cache
            .path()
            .join(format!("demo/.2.0.0.partial-{}", parent_pid()));
        std::fs::create_dir_all(&live).unwrap();
        install_once("demo", "2.0.0", |dir| {
            Ok(std::fs::write(dir.join("tool"), "2")?)
        })
        .unwrap();
        assert!(
            !dead.exists(),
            "a dead process's install directory was kept"
        );
        assert!(
            live.exists(),
            "a running process's install directory was removed"
        );
        std::env::remove_var("CARGO_WORKER_BUILD_CACHE");
    }

    /// A process that is running (and is not this one).
    fn parent_pid() -> u32 {
        std::os::unix::process::parent_id()
    }

    #[test]
    fn a_version_installed_before_records_is_recorded_once_then_checked() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("esbuild/0.28.2");
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(dir.join("bin/esbuild"), "binary").unwrap();
        assert_eq!(check(&root.path().join("esbuild/9.9.9")), Cached::Absent);
        assert_eq!(check(&dir), Cached::Intact);
        assert!(dir.join(RECORD).is_file() && root.path().join(MARKER).is_file());
        assert_eq!(check(&dir), Cached::Intact);
        std::fs::write(dir.join("bin/esbuild"), "binarz").unwrap();
        assert_eq!(check(&dir), Cached::Changed("bin/esbuild".into()));
        std::fs::remove_file(dir.join("bin/esbuild")).unwrap();
        assert_eq!(check(&dir), Cached::Changed("bin/esbuild".into()));
        // A damaged record is not taken for a missing one.
        std::fs::write(dir.join(RECORD), "{").unwrap();
        assert_eq!(check(&dir), Cached::Changed(RECORD.into()));
    }

    #[test]
    fn clean_removes_only_what_the_tool_installed_from_a_cache_it_made() {
        let root = tempfile::tempdir().unwrap();
        let version = |tool: &str, v: &str, recorded: bool| {
            let dir = root.path().join(tool).join(v);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("file"), "x").unwrap();
            if recorded {
                write_record(&dir).unwrap();
            }
            dir
        };
        let used = version("esbuild", "0.28.2", true);
        let unused = version("esbuild", "0.19.0", true);
        let foreign = version("photos", "2025", false);
        let err = clean_in(root.path(), |_, v| v == "0.28.2")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(MARKER) && err.contains("removes nothing"),
            "{err}"
        );
        assert!(unused.is_dir() && foreign.is_dir());

        mark_root(root.path());
        let being_installed = version("wasm-bindgen", "0.2.100", true);
        let lock = lock(&root.path().join("wasm-bindgen"), "0.2.100").unwrap();
        lock.lock().unwrap();
        let (removed, skipped) = clean_in(root.path(), |_, v| v == "0.28.2").unwrap();
        assert_eq!(removed, ["esbuild 0.19.0"]);
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert!(used.is_dir() && !unused.exists() && foreign.is_dir() && being_installed.is_dir());
        drop(lock);
        let (removed, _) = clean_in(root.path(), |_, v| v == "0.28.2").unwrap();
        assert_eq!(removed, ["wasm-bindgen 0.2.100"]);
    }
}
