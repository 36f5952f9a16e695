//! The bundle directory (`build/` by default): `index.js`, one ES module holding the generated
//! entry, the recovery runtime and wasm-bindgen's glue with its snippets (bundled by esbuild),
//! and `index_bg.wasm`, the module it imports. Next to them: the glue's types (`index.d.ts`),
//! `worker/shim.mjs` for configs written for worker-build, esbuild's metafile
//! (`index.meta.json`, read by `check`, imported by nothing) and the build manifest.
//!
//! It is assembled in a staging directory next to the output and swapped in only when complete,
//! under a lock, so a failed or concurrent build never leaves a half-written bundle and the
//! previous one survives any failure.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::errors::{problem, Code};
use crate::exports::Exports;
use crate::plan::{Mode, Plan};

pub const ENTRY: &str = "index.js";
pub const WASM: &str = "index_bg.wasm";
pub const MANIFEST: &str = ".worker-build.json";
/// esbuild's metafile of the bundling run: what went into `index.js`, in which order.
pub const METAFILE: &str = "index.meta.json";
/// Re-exports `../index.js` for configs written for worker-build.
pub const SHIM: &str = "worker/shim.mjs";

/// Where the bundle's sources are laid out for esbuild (inside the staging directory, removed
/// once `index.js` is written). The metafile names the inputs by these paths.
pub const SOURCES: &str = ".bundle-src";
/// The generated entry, the recovery runtime and the glue, as esbuild's inputs.
pub const SOURCE_ENTRY: &str = ".bundle-src/index.js";
pub const SOURCE_RUNTIME: &str = ".bundle-src/runtime.js";
pub const SOURCE_GLUE: &str = ".bundle-src/glue.js";

const RUNTIME_JS: &str = include_str!("runtime/runtime.js");
const ENTRY_TEMPLATE: &str = include_str!("runtime/entry.js");
const LIBRARY_TEMPLATE: &str = include_str!("runtime/library.js");
const SHIM_MJS: &str = include_str!("runtime/shim.mjs");

/// What a bundle records about itself in `.worker-build.json`: read by `check` and by the next
/// build to tell whether anything changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub tool: String,
    pub tool_version: String,
    /// "unwind" or "abort".
    pub mode: String,
    /// "exnref", "legacy", or null for abort builds.
    pub eh: Option<String>,
    pub wasm_bindgen: String,
    pub library: bool,
    pub entry: String,
    pub wasm: String,
    /// How `entry` was bundled: esbuild's metafile and the names of its inputs.
    pub bundled: Bundled,
    pub exports: Exports,
    /// Every file of the bundle, relative to its directory.
    pub files: Vec<String>,
    /// The SHA-256 of each of `files`, as written: a bundle whose files changed since (truncated,
    /// edited by hand) is not up to date.
    #[serde(default)]
    pub hashes: std::collections::BTreeMap<String, String>,
    /// Raw and gzip sizes, measured when the bundle was written.
    pub sizes: Sizes,
    /// A digest of every input of the steps after cargo; equal means the bundle is up to date.
    pub input_key: String,
    /// The symbol map of the module (not uploaded) and the build id it and the module share.
    #[serde(default)]
    pub symbols: Option<SymbolsRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SymbolsRecord {
    pub file: String,
    pub build_id: String,
}

/// Where the check finds the entry's wiring: esbuild's metafile and the inputs in it that are
/// the generated entry, our runtime and wasm-bindgen's glue (whose exports the metafile lists,
/// as esbuild parsed them, under the output of the glue bundled on its own).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Bundled {
    pub metafile: String,
    pub entry_source: String,
    pub runtime_source: String,
    pub glue_source: String,
}

impl Bundled {
    /// The layout this version writes.
    pub fn ours() -> Bundled {
        Bundled {
            metafile: METAFILE.into(),
            entry_source: SOURCE_ENTRY.into(),
            runtime_source: SOURCE_RUNTIME.into(),
            glue_source: SOURCE_GLUE.into(),
        }
    }
}

/// The digest of everything that decides the bundle's contents: the plan (with the tools'
/// paths and versions, see [`Plan::fingerprint`]), the runtime and templates built into this
/// binary, and the module cargo built.
pub fn input_key(plan: &Plan, wasm: &[u8]) -> String {
    let mut h = Sha256::new();
    for part in [
        env!("CARGO_PKG_VERSION"),
        RUNTIME_JS,
        ENTRY_TEMPLATE,
        LIBRARY_TEMPLATE,
        SHIM_MJS,
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.update(format!("symbols {}\0", crate::symbols::FORMAT).as_bytes());
    h.update(plan.fingerprint().to_string().as_bytes());
    h.update([0]);
    // Minified bundles have short import names (crate::imports).
    h.update(b"short import names 1\0");
    // Entries of modules with names raise the stack trace limit (FaultLog::deep_stacks).
    h.update(b"deep stacks 1\0");
    h.update(wasm);
    format!("{:x}", h.finalize())
}

/// The manifest of the bundle in `dir`, when there is a readable one.
pub fn read_manifest(dir: &Path) -> Option<Manifest> {
    serde_json::from_slice(&std::fs::read(dir.join(MANIFEST)).ok()?).ok()
}

/// Whether the bundle in `dir` was made from exactly these inputs and every file of it is as it
/// was written.
pub fn is_fresh(dir: &Path, key: &str) -> Option<Manifest> {
    let manifest = read_manifest(dir)?;
    let intact = !manifest.files.is_empty()
        && manifest.files.len() == manifest.hashes.len()
        && manifest.files.iter().all(|f| {
            let hash = std::fs::read(dir.join(f)).ok().map(|bytes| sha256(&bytes));
            hash.is_some() && hash.as_ref() == manifest.hashes.get(f)
        });
    (manifest.input_key == key && intact).then_some(manifest)
}

fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Holds the per-output-directory lock while a bundle is written.
pub struct OutputLock {
    _file: File,
}

/// Take the lock for `out_dir` (waiting for a concurrent build of the same output to finish).
/// It is a file next to the output, `.<name>.lock` beside its staging directories, so builds
/// exclude each other whatever target directory each uses; it is never deleted, since removing
/// a lock file another process waits on would let a third one in.
pub fn lock_output(out_dir: &Path) -> Result<OutputLock> {
    let (parent, name) = parent_and_name(out_dir);
    std::fs::create_dir_all(&parent).map_err(|e| unwritable(out_dir, &parent, &e))?;
    let path = parent.join(format!(".{name}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| unwritable(out_dir, &parent, &e))?;
    file.lock()
        .with_context(|| format!("could not lock {}", path.display()))?;
    Ok(OutputLock { _file: file })
}

/// The bundle cannot be written to `out_dir` in `parent`: say so, and what to do.
fn unwritable(out_dir: &Path, parent: &Path, e: &dyn std::fmt::Display) -> anyhow::Error {
    problem(
        Code::OutDirUnwritable,
        format!("cannot write the bundle to {}: {e}", out_dir.display()),
        format!(
            "make {} writable, or pass `--out-dir` a directory you can write",
            parent.display()
        ),
    )
}

/// The directory holding `out_dir`, and `out_dir`'s own name.
fn parent_and_name(out_dir: &Path) -> (PathBuf, String) {
    let parent = out_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let name = out_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "build".into());
    (parent, name)
}

/// Take the lock that serialises cargo runs of this tool on one target directory until each
/// has read its module.
pub fn lock_target(target_dir: &Path) -> Result<OutputLock> {
    let dir = target_dir.join("worker-build");
    crate::fs::create_dir_all(&dir)?;
    let path = dir.join("build.lock");
    let file = File::create(&path)
        .with_context(|| format!("could not create lock file {}", path.display()))?;
    file.lock()
        .with_context(|| format!("could not lock {}", path.display()))?;
    Ok(OutputLock { _file: file })
}

/// A staging directory next to the output (same filesystem, so the swap is one rename).
pub struct Staging {
    pub dir: PathBuf,
}

impl Staging {
    /// Called with the output's lock held ([`lock_output`]).
    pub fn create(out_dir: &Path) -> Result<Staging> {
        let (parent, name) = parent_and_name(out_dir);
        let unwritable = |e: &dyn std::fmt::Display| unwritable(out_dir, &parent, e);
        std::fs::create_dir_all(&parent).map_err(|e| unwritable(&e))?;
        restore_interrupted_swap(out_dir, &parent, &name)?;
        check_out_dir(out_dir)?;
        let dir = parent.join(format!(".{name}.staging-{}", std::process::id()));
        // A directory of the same name is a leftover of a killed process whose PID came round
        // again (we hold the output's lock, so it is no live build's).
        crate::fs::remove_dir_all_if_exists(&dir)?;
        std::fs::create_dir(&dir).map_err(|e| unwritable(&e))?;
        crate::interrupt::remove_on_interrupt(&dir);
        Ok(Staging { dir })
    }

    /// Replace `out_dir` with the staged bundle in one atomic exchange of the two directories
    /// (renameat2's RENAME_EXCHANGE; elsewhere, two renames that put the old bundle back if the
    /// second fails). The output is checked again first: it may have changed since staging was
    /// created. Leftovers of interrupted builds are swept only once this one has succeeded.
    pub fn commit(self, out_dir: &Path) -> Result<()> {
        crate::interrupt::pause_for_tests("swap");
        let _no_interrupt = crate::interrupt::critical();
        check_out_dir(out_dir)?;
        let (parent, name) = parent_and_name(out_dir);
        let had_old = std::fs::symlink_metadata(out_dir).is_ok();
        if had_old {
            swap(&self.dir, out_dir, &parent, &name).with_context(|| {
                format!("could not move the new bundle into {}", out_dir.display())
            })?;
            // `self.dir` now holds the previous bundle; Drop removes it.
        } else {
            crate::fs::rename(&self.dir, out_dir)?;
        }
        sweep_leftovers(&parent, &name, &self.dir);
        Ok(())
    }
}

impl Drop for Staging {
    /// A build that fails part-way leaves only the previous bundle behind.
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        crate::interrupt::forget(&self.dir);
    }
}

#[cfg(target_os = "linux")]
fn swap(staging: &Path, out_dir: &Path, parent: &Path, name: &str) -> Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    match renameat_with(CWD, staging, CWD, out_dir, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(()),
        // A filesystem without the exchange (some FUSE and network ones).
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
            swap_by_renames(staging, out_dir, parent, name)
        }
        Err(e) => Err(std::io::Error::from(e).into()),
    }
}

#[cfg(not(target_os = "linux"))]
fn swap(staging: &Path, out_dir: &Path, parent: &Path, name: &str) -> Result<()> {
    swap_by_renames(staging, out_dir, parent, name)
}

/// The swap where the exchange is not to be had: the old bundle goes to `.<name>.old-PID`, the
/// new one takes its place, and the old one ends where the staging directory was. A crash in
/// between leaves no output but the `.old-` directory, which the next build puts back first
/// ([`restore_interrupted_swap`]).
fn swap_by_renames(staging: &Path, out_dir: &Path, parent: &Path, name: &str) -> Result<()> {
    let old = parent.join(format!(".{name}.old-{}", std::process::id()));
    crate::fs::rename(out_dir, &old)?;
    if let Err(e) = std::fs::rename(staging, out_dir) {
        let _ = std::fs::rename(&old, out_dir);
        return Err(e.into());
    }
    crate::fs::rename(&old, staging)
}

/// A build killed between the two renames of [`swap_by_renames`] left no output and the previous
/// bundle in `.<name>.old-PID`: put it back before anything else.
fn restore_interrupted_swap(out_dir: &Path, parent: &Path, name: &str) -> Result<()> {
    if std::fs::symlink_metadata(out_dir).is_ok() {
        return Ok(());
    }
    let prefix = format!(".{name}.old-");
    let newest = std::fs::read_dir(parent)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter(|e| e.path().join(MANIFEST).is_file())
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok());
    match newest {
        Some(old) => crate::fs::rename(&old.path(), out_dir),
        None => Ok(()),
    }
}

/// Remove what interrupted builds of this output left: staging directories and old bundles
/// moved aside. Only after a successful swap, under the output's lock, so none is live.
fn sweep_leftovers(parent: &Path, name: &str, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let ours = file_name.starts_with(&format!(".{name}.staging-"))
            || file_name.starts_with(&format!(".{name}.old-"));
        if ours && entry.path() != keep {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The output directory is replaced whole, so it must be ours: absent, empty, or a bundle
/// holding nothing its manifest does not list. Anything else is refused, never replaced: a
/// file, a symbolic link, a directory of the user's, or a bundle the user added files to.
pub fn check_out_dir(out_dir: &Path) -> Result<()> {
    let refuse = |what: String, fix: String| Err(problem(Code::OutDirUnwritable, what, fix));
    let meta = match std::fs::symlink_metadata(out_dir) {
        Err(_) => return Ok(()),
        Ok(meta) => meta,
    };
    let shown = out_dir.display();
    if meta.file_type().is_symlink() {
        return refuse(
            format!("{shown} is a symbolic link; the bundle directory is replaced whole, so it must be a real directory"),
            "pass `--out-dir` a directory that is not a link (the default is `build` next to Cargo.toml), and point the link at it if you need one".into(),
        );
    }
    if !meta.is_dir() {
        return refuse(
            format!("{shown} is a file, not a directory; the bundle would replace it"),
            "pass `--out-dir` a new or empty directory (the default is `build` next to Cargo.toml)"
                .into(),
        );
    }
    let present = list_entries(out_dir)?;
    if present.is_empty() {
        return Ok(());
    }
    // Only the manifest's list of files is read, so a bundle of another version of the tool,
    // whose other fields differ, is still recognised.
    let listed: Option<Vec<String>> = std::fs::read(out_dir.join(MANIFEST))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|manifest| serde_json::from_value(manifest.get("files")?.clone()).ok());
    let Some(listed) = listed else {
        return refuse(
            format!("{shown} already exists and does not hold a cargo-worker-build bundle; it would be replaced whole"),
            "pass `--out-dir` an empty or new directory (the default is `build` next to Cargo.toml)".into(),
        );
    };
    let ours: std::collections::BTreeSet<&str> = listed
        .iter()
        .map(String::as_str)
        .chain([MANIFEST])
        .collect();
    let foreign: Vec<&String> = present
        .iter()
        .filter(|p| !ours.contains(p.as_str()))
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    let mut names: Vec<String> = foreign.iter().take(5).map(|f| f.to_string()).collect();
    if foreign.len() > 5 {
        names.push(format!("and {} more", foreign.len() - 5));
    }
    refuse(
        format!(
            "{shown} holds files this tool did not write ({}); the bundle directory is replaced whole, so they would be lost",
            names.join(", ")
        ),
        format!("move them out of {shown} (static assets belong in a directory of their own, served with `[assets]` in wrangler.toml), or pass `--out-dir` another directory"),
    )
}

/// Every entry under `dir`, relative: files and links by their paths, and directories that hold
/// no file (those would otherwise go unnoticed) with a trailing `/`.
fn list_entries(dir: &Path) -> Result<Vec<String>> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
        for entry in std::fs::read_dir(dir)
            .with_context(|| format!("could not read directory {}", dir.display()))?
        {
            let entry = entry?;
            let path = entry.path();
            let rel = || {
                path.strip_prefix(base)
                    .expect("under base")
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/")
            };
            if entry.file_type()?.is_dir() {
                let inner = out.len();
                walk(base, &path, out)?;
                if out.len() == inner {
                    out.push(format!("{}/", rel()));
                }
            } else {
                out.push(rel());
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// After wasm-bindgen wrote `index.js` (glue), `index_bg.wasm`, `index.d.ts` and snippets into
/// the staging directory: read the glue's exports, render the entry and bundle entry, runtime,
/// glue and snippets into `index.js`. Only the bundle, the module, the types, the shim and the
/// metafile remain. Returns the crate's exports and what the check needs to read the bundle.
pub fn assemble(
    staging: &Path,
    plan: &Plan,
    esbuild: &crate::esbuild::Esbuild,
    renames: &crate::imports::Renames,
) -> Result<(Exports, Bundled)> {
    let sources = staging.join(SOURCES);
    crate::fs::create_dir_all(&sources)?;
    crate::fs::rename(&staging.join("index.js"), &staging.join(SOURCE_GLUE))?;
    let snippets = staging.join("snippets");
    if snippets.is_dir() {
        crate::fs::rename(&snippets, &sources.join("snippets"))?;
    }
    crate::fs::write(&staging.join(SOURCE_RUNTIME), RUNTIME_JS)?;

    let glue_exports = crate::esbuild::exports_of(esbuild, staging, SOURCE_GLUE)?;
    let exports = crate::exports::read(&crate::fs::read(&staging.join(WASM))?, &glue_exports)?;
    // The build id of the module that ships, for the runtime's fault records (`symbolize`
    // refuses a log of another build by it).
    let log = FaultLog {
        build: crate::symbols::build_id(&crate::fs::read(&staging.join(WASM))?),
        format: plan.log.format,
        traps: crate::symbols::load(staging)
            .map(|map| crate::symbols::trap_kinds(&map))
            .unwrap_or_default(),
        deep_stacks: keeps_names(&plan.opt),
    };
    crate::fs::write(
        &staging.join(SOURCE_ENTRY),
        render_entry_logging(&plan.mode, plan.library, &exports, &log),
    )?;

    let snippets: Vec<String> = list_files(&sources.join("snippets"))
        .unwrap_or_default()
        .into_iter()
        .map(|f| format!("{SOURCES}/snippets/{f}"))
        .collect();
    crate::esbuild::bundle(
        esbuild,
        &crate::esbuild::BundleJob {
            dir: staging,
            sources: SOURCES,
            entry: ENTRY,
            glue: "glue.js",
            metafile: METAFILE,
            minify: plan.minify.enabled,
            snippets: &snippets,
            profile: &plan.profile,
            renames,
        },
    )?;
    crate::fs::remove_dir_all_if_exists(&sources)?;
    if !plan.library {
        crate::fs::create_dir_all(&staging.join("worker"))?;
        crate::fs::write(&staging.join(SHIM), SHIM_MJS)?;
    }
    crate::fs::write(
        &staging.join(".gitignore"),
        "# Written by cargo-worker-build; rebuilt on every build.\n*\n",
    )?;
    Ok((exports, Bundled::ours()))
}

/// Record the finished bundle in its manifest: files, sizes, exports and the freshness key.
pub fn write_manifest(
    staging: &Path,
    plan: &Plan,
    (exports, bundled): (Exports, Bundled),
    bindgen_version: &str,
    key: &str,
) -> Result<Manifest> {
    let mut files = list_files(staging)?;
    files.retain(|f| f != MANIFEST);
    let sizes = sizes(staging, &files)?;
    let hashes = files
        .iter()
        .map(|f| Ok((f.clone(), sha256(&crate::fs::read(&staging.join(f))?))))
        .collect::<Result<_>>()?;
    let manifest = Manifest {
        tool: env!("CARGO_PKG_NAME").into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        mode: plan.mode.as_str().into(),
        eh: plan.mode.eh().map(|e| e.as_str().into()),
        wasm_bindgen: bindgen_version.into(),
        library: plan.library,
        entry: ENTRY.into(),
        wasm: WASM.into(),
        bundled,
        exports,
        files,
        hashes,
        sizes,
        input_key: key.into(),
        symbols: crate::symbols::load(staging).map(|map| SymbolsRecord {
            file: crate::symbols::SIDECAR.into(),
            build_id: map.build_id,
        }),
    };
    let mut json = serde_json::to_vec_pretty(&manifest)?;
    json.push(b'\n');
    crate::fs::write(&staging.join(MANIFEST), json)?;
    Ok(manifest)
}

/// Fill the entry template: the export lists as JSON, one line per class (and per function and
/// other value in library mode). Names are the glue's export names, as esbuild read them.
pub fn render_entry(mode: &Mode, library: bool, exports: &Exports) -> String {
    let log = FaultLog {
        build: "unknown".into(),
        format: crate::model::LogFormat::Text,
        traps: Default::default(),
        deep_stacks: false,
    };
    render_entry_logging(mode, library, exports, &log)
}

/// What the runtime's fault records need to know about the module.
pub struct FaultLog {
    /// The module's build id (the symbol map's).
    pub build: String,
    pub format: crate::model::LogFormat,
    /// Functions whose trap is an abort of a known kind ([`crate::symbols::trap_kinds`]).
    pub traps: std::collections::BTreeMap<u32, &'static str>,
    /// The module keeps its name section (no wasm-opt, or wasm-opt with `-g`): the entry then
    /// raises V8's stack trace limit (10 frames by default), so that a panic hook's stack,
    /// which begins with a dozen frames of std's panic machinery, reaches the panicking function.
    pub deep_stacks: bool,
}

/// Frames in a log name Rust functions only when the shipped module keeps its name section:
/// wasm-opt drops it unless asked to keep debug information.
fn keeps_names(opt: &crate::opt::OptPlan) -> bool {
    match &opt.args {
        None => true,
        Some(args) => crate::symbols::opt_keeps_names(args),
    }
}

/// How many frames V8 keeps in a stack when the module has names.
const DEEP_STACK_FRAMES: u32 = 64;

/// [`render_entry`] with what the runtime's fault records say about this module.
pub fn render_entry_logging(
    mode: &Mode,
    library: bool,
    exports: &Exports,
    log: &FaultLog,
) -> String {
    let mode = match mode {
        Mode::Unwind { .. } => "unwind",
        Mode::Abort => "abort",
    };
    let mut json = serde_json::json!({
        "mode": mode,
        "handlers": exports.handlers,
        "functions": exports.functions,
        "classes": exports.classes,
        "build": log.build,
    });
    if log.format == crate::model::LogFormat::Json {
        json["log"] = "json".into();
    }
    if !log.traps.is_empty() {
        json["traps"] = serde_json::json!(log.traps);
    }
    let classes: String = exports
        .classes
        .iter()
        .map(|c| format!("export const {c} = wrapClass(glue, {c:?}, EXPORTS);\n"))
        .collect();
    let template = if library {
        LIBRARY_TEMPLATE
    } else {
        ENTRY_TEMPLATE
    };
    let mut out = template
        .replace("/*@EXPORTS@*/", &json.to_string())
        .replace("/*@CLASSES@*/\n", &classes)
        .replace("/*@CLASSES@*/", &classes);
    // Only RPC methods need `WorkerEntrypoint`; without them the entry imports no builtin, so it
    // also loads where `cloudflare:workers` does not exist.
    let rpc = !library && !exports.functions.is_empty();
    let (entrypoint_import, entrypoint_arg) = if rpc {
        (
            "import { WorkerEntrypoint } from \"cloudflare:workers\";\n",
            ", WorkerEntrypoint",
        )
    } else {
        ("", "")
    };
    out = out
        .replace("/*@ENTRYPOINT_IMPORT@*/\n", entrypoint_import)
        .replace("/*@ENTRYPOINT_ARG@*/", entrypoint_arg);
    if library {
        let functions: String = exports
            .handlers
            .iter()
            .chain(&exports.functions)
            .map(|f| format!("export const {f} = wrapFunction(glue, {f:?}, EXPORTS);\n"))
            .collect();
        out = out.replace("/*@FUNCTIONS@*/\n", &functions);
    }
    // Other values (enums) are plain data: re-exported as they are, by a Worker entry too
    // (workerd ignores named exports that are not entrypoints).
    let values: String = exports
        .values
        .iter()
        .map(|v| format!("export const {v} = glue.{v};\n"))
        .collect();
    out = out.replace("/*@VALUES@*/\n", &values);
    if log.deep_stacks {
        // Never lowers a limit the Worker's own code set higher.
        out.push_str(&format!(
            "if (typeof Error.stackTraceLimit === \"number\" && Error.stackTraceLimit < {n}) \
             Error.stackTraceLimit = {n};\n",
            n = DEEP_STACK_FRAMES
        ));
    }
    out
}

/// Files under `dir`, relative, sorted, with `/` separators.
pub fn list_files(dir: &Path) -> Result<Vec<String>> {
    let mut entries = list_entries(dir)?;
    entries.retain(|e| !e.ends_with('/'));
    Ok(entries)
}

/// Raw and gzip sizes of the module and of the whole bundle (JavaScript and Wasm).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sizes {
    pub wasm: u64,
    pub wasm_gzip: u64,
    pub total: u64,
    pub total_gzip: u64,
}

pub fn sizes(dir: &Path, files: &[String]) -> Result<Sizes> {
    let mut s = Sizes {
        wasm: 0,
        wasm_gzip: 0,
        total: 0,
        total_gzip: 0,
    };
    for f in files
        .iter()
        .filter(|f| f.ends_with(".js") || f.ends_with(".wasm"))
    {
        let bytes = crate::fs::read(&dir.join(f))?;
        let gz = gzip_len(&bytes)?;
        s.total += bytes.len() as u64;
        s.total_gzip += gz;
        if f == WASM {
            s.wasm = bytes.len() as u64;
            s.wasm_gzip = gz;
        }
    }
    Ok(s)
}

fn gzip_len(bytes: &[u8]) -> Result<u64> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes)?;
    Ok(enc.finish()?.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bundle in `dir` whose manifest lists `files` (written with `contents`), as a build
    /// leaves it.
    fn write_bundle(dir: &Path, files: &[(&str, &str)]) {
        std::fs::create_dir_all(dir).unwrap();
        for (name, contents) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, contents).unwrap();
        }
        let listed: Vec<String> = files.iter().map(|(f, _)| f.to_string()).collect();
        let manifest = Manifest {
            tool: "cargo-worker-build".into(),
            tool_version: "0".into(),
            mode: "unwind".into(),
            eh: Some("exnref".into()),
            wasm_bindgen: "0.2.130".into(),
            library: false,
            entry: ENTRY.into(),
            wasm: WASM.into(),
            bundled: Bundled::ours(),
            exports: Exports::default(),
            hashes: files
                .iter()
                .map(|(f, c)| (f.to_string(), sha256(c.as_bytes())))
                .collect(),
            files: listed,
            sizes: Sizes {
                wasm: 0,
                wasm_gzip: 0,
                total: 0,
                total_gzip: 0,
            },
            input_key: "key".into(),
            symbols: None,
        };
        std::fs::write(dir.join(MANIFEST), serde_json::to_vec(&manifest).unwrap()).unwrap();
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn staging_commit_replaces_the_old_bundle_and_failure_keeps_it() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("build");
        write_bundle(&out, &[("index.js", "old")]);

        // A build that fails before commit: the staging dir is dropped, the old bundle stays.
        {
            let staging = Staging::create(&out).unwrap();
            std::fs::write(staging.dir.join("index.js"), "half").unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(out.join("index.js")).unwrap(),
            "old"
        );

        let staging = Staging::create(&out).unwrap();
        write_bundle(&staging.dir, &[("index.js", "new")]);
        staging.commit(&out).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("index.js")).unwrap(),
            "new"
        );
        assert_eq!(
            names_in(root.path()),
            ["build"],
            "no staging or old directories remain"
        );
    }

    #[test]
    fn a_directory_that_is_not_a_bundle_is_never_replaced() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("precious.txt"), "user data").unwrap();
        let err = Staging::create(root.path()).err().unwrap();
        assert!(
            err.to_string()
                .contains("does not hold a cargo-worker-build bundle"),
            "{err}"
        );
        assert!(root.path().join("precious.txt").exists());
    }

    #[test]
    fn files_the_user_added_to_a_bundle_are_named_and_kept() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("build");
        write_bundle(&out, &[("index.js", "old"), ("worker/shim.mjs", "shim")]);
        std::fs::write(out.join("_headers"), "/*\n  X-Frame-Options: DENY\n").unwrap();
        std::fs::create_dir_all(out.join("assets")).unwrap();
        std::fs::write(out.join("assets/logo.svg"), "<svg/>").unwrap();
        std::fs::create_dir_all(out.join("empty")).unwrap();

        let err = Staging::create(&out).err().expect("refused");
        let text = err.to_string();
        for name in ["_headers", "assets/logo.svg", "empty/"] {
            assert!(text.contains(name), "names {name}: {text}");
        }
        assert!(
            !text.contains("shim.mjs"),
            "names only the user's files: {text}"
        );
        assert_eq!(
            std::fs::read_to_string(out.join("assets/logo.svg")).unwrap(),
            "<svg/>"
        );

        // Added after staging began: the swap checks again and refuses too.
        std::fs::remove_dir_all(out.join("assets")).unwrap();
        std::fs::remove_dir_all(out.join("empty")).unwrap();
        std::fs::remove_file(out.join("_headers")).unwrap();
        let staging = Staging::create(&out).unwrap();
        write_bundle(&staging.dir, &[("index.js", "new")]);
        std::fs::write(out.join("_redirects"), "/a /b").unwrap();
        let err = staging.commit(&out).expect_err("refused at the swap");
        assert!(err.to_string().contains("_redirects"), "{err}");
        assert_eq!(
            std::fs::read_to_string(out.join("index.js")).unwrap(),
            "old"
        );
        assert_eq!(
            std::fs::read_to_string(out.join("_redirects")).unwrap(),
            "/a /b"
        );
        assert_eq!(
            names_in(root.path()),
            ["build"],
            "the refused staging is gone"
        );
    }

    #[test]
    fn an_out_dir_that_is_a_file_or_a_link_is_refused_and_left_alone() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("wrangler.toml");
        std::fs::write(&file, "name = \"w\"\n").unwrap();
        let err = Staging::create(&file).err().expect("a file is refused");
        assert!(err.to_string().contains("is a file"), "{err}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "name = \"w\"\n");

        #[cfg(unix)]
        {
            let real = root.path().join("real");
            write_bundle(&real, &[("index.js", "old")]);
            let link = root.path().join("build");
            std::os::unix::fs::symlink(&real, &link).unwrap();
            let err = Staging::create(&link).err().expect("a link is refused");
            assert!(err.to_string().contains("symbolic link"), "{err}");
            assert!(std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink());
            assert_eq!(
                std::fs::read_to_string(real.join("index.js")).unwrap(),
                "old"
            );
        }
        assert_eq!(
            names_in(root.path())
                .iter()
                .filter(|n| n.contains("staging"))
                .count(),
            0
        );
    }

    #[test]
    fn leftovers_of_a_killed_build_are_swept_only_after_a_build_succeeds() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("build");
        write_bundle(&out, &[("index.js", "old")]);
        // What SIGKILL leaves: a staging directory (killed before the swap) and, from the
        // two-rename swap, a bundle moved aside.
        write_bundle(
            &root.path().join(".build.staging-999999"),
            &[("index.js", "half")],
        );
        write_bundle(
            &root.path().join(".build.old-999998"),
            &[("index.js", "older")],
        );

        {
            let _failed = Staging::create(&out).unwrap();
        }
        assert!(
            root.path().join(".build.old-999998").exists(),
            "kept while no build has succeeded"
        );

        let staging = Staging::create(&out).unwrap();
        write_bundle(&staging.dir, &[("index.js", "new")]);
        staging.commit(&out).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("index.js")).unwrap(),
            "new"
        );
        assert_eq!(names_in(root.path()), ["build"]);
    }

    #[test]
    fn a_swap_killed_between_its_renames_gets_the_bundle_back() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("build");
        // The state swap_by_renames leaves when killed after its first rename.
        write_bundle(
            &root.path().join(".build.old-999997"),
            &[("index.js", "previous")],
        );
        let staging = Staging::create(&out).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("index.js")).unwrap(),
            "previous",
            "restored before the build goes on"
        );
        drop(staging);
        assert_eq!(names_in(root.path()), ["build"]);
    }

    #[test]
    fn a_bundle_whose_files_changed_is_not_fresh() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("build");
        write_bundle(&out, &[("index.js", "export default {}"), (WASM, "\0asm")]);
        assert!(is_fresh(&out, "key").is_some());
        assert!(is_fresh(&out, "other key").is_none());

        std::fs::write(out.join(WASM), "\0as").unwrap();
        assert!(is_fresh(&out, "key").is_none(), "a truncated module");
        std::fs::write(out.join(WASM), "\0asm").unwrap();
        std::fs::write(out.join("index.js"), "export default { edited: 1 }").unwrap();
        assert!(is_fresh(&out, "key").is_none(), "an entry edited by hand");
        std::fs::remove_file(out.join("index.js")).unwrap();
        assert!(is_fresh(&out, "key").is_none(), "a missing file");
    }

    fn exports(handlers: &[&str], functions: &[&str], classes: &[&str]) -> Exports {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        Exports {
            handlers: v(handlers),
            functions: v(functions),
            classes: v(classes),
            values: vec![],
        }
    }

    #[test]
    fn only_an_entry_with_rpc_functions_imports_worker_entrypoint() {
        let unwind = Mode::Unwind {
            eh: crate::model::EhEncoding::Exnref,
        };
        let rpc = render_entry(&unwind, false, &exports(&["fetch"], &["add"], &[]));
        assert!(
            rpc.contains("import { WorkerEntrypoint } from \"cloudflare:workers\";\n"),
            "{rpc}"
        );
        assert!(
            rpc.contains("createWorker(glue, EXPORTS, WorkerEntrypoint)"),
            "{rpc}"
        );

        let plain = render_entry(&unwind, false, &exports(&["fetch"], &[], &["Counter"]));
        assert!(!plain.contains("cloudflare:"), "{plain}");
        assert!(plain.contains("createWorker(glue, EXPORTS);"), "{plain}");
        assert!(
            !plain.contains("@*/"),
            "every placeholder is filled: {plain}"
        );

        let library = render_entry(&Mode::Abort, true, &exports(&[], &["add"], &["Tally"]));
        assert!(!library.contains("cloudflare:"), "{library}");
        assert!(
            !library.contains("@*/"),
            "every placeholder is filled: {library}"
        );
    }

    #[test]
    fn file_lists_are_relative_and_sorted() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("snippets/x")).unwrap();
        std::fs::write(root.path().join("snippets/x/inline0.js"), "").unwrap();
        std::fs::write(root.path().join("index.js"), "").unwrap();
        assert_eq!(
            list_files(root.path()).unwrap(),
            ["index.js", "snippets/x/inline0.js"]
        );
    }
}
