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

/// Whether the bundle in `dir` was made from exactly these inputs and is complete.
pub fn is_fresh(dir: &Path, key: &str) -> Option<Manifest> {
    let manifest = read_manifest(dir)?;
    (manifest.input_key == key && manifest.files.iter().all(|f| dir.join(f).is_file()))
        .then_some(manifest)
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

/// A staging directory next to the output (same filesystem, so the final rename is one step).
pub struct Staging {
    pub dir: PathBuf,
}

impl Staging {
    pub fn create(out_dir: &Path) -> Result<Staging> {
        refuse_foreign_dir(out_dir)?;
        let (parent, name) = parent_and_name(out_dir);
        let parent = parent.as_path();
        let unwritable = |e: &dyn std::fmt::Display| unwritable(out_dir, parent, e);
        std::fs::create_dir_all(parent).map_err(|e| unwritable(&e))?;
        // Leftovers of interrupted builds of this output (we hold its lock, so none is live).
        if let Ok(entries) = std::fs::read_dir(parent) {
            for entry in entries.flatten() {
                let file_name = entry.file_name().to_string_lossy().into_owned();
                if file_name.starts_with(&format!(".{name}.staging-"))
                    || file_name.starts_with(&format!(".{name}.old-"))
                {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = parent.join(format!(".{name}.staging-{}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| unwritable(&e))?;
        Ok(Staging { dir })
    }

    /// Replace `out_dir` with the staged bundle. The old bundle is moved aside first and put
    /// back if the new one cannot be moved in.
    pub fn commit(self, out_dir: &Path) -> Result<()> {
        let parent = self
            .dir
            .parent()
            .expect("staging has a parent")
            .to_path_buf();
        let name = out_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "build".into());
        let old = parent.join(format!(".{name}.old-{}", std::process::id()));
        let had_old = out_dir.exists();
        if had_old {
            crate::fs::rename(out_dir, &old)?;
        }
        if let Err(e) = std::fs::rename(&self.dir, out_dir) {
            if had_old {
                let _ = std::fs::rename(&old, out_dir);
            }
            return Err(e).with_context(|| {
                format!("could not move the new bundle into {}", out_dir.display())
            });
        }
        if had_old {
            let _ = std::fs::remove_dir_all(&old);
        }
        std::mem::forget(self);
        Ok(())
    }
}

impl Drop for Staging {
    /// A build that fails part-way leaves only the previous bundle behind.
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The output directory is replaced whole, so it must be ours: absent, empty, or a bundle.
fn refuse_foreign_dir(out_dir: &Path) -> Result<()> {
    let Ok(mut entries) = std::fs::read_dir(out_dir) else {
        return Ok(());
    };
    if entries.next().is_none() || out_dir.join(MANIFEST).is_file() {
        return Ok(());
    }
    Err(problem(
        Code::OutDirUnwritable,
        format!("{} already exists and does not hold a cargo-worker-build bundle; it would be replaced whole", out_dir.display()),
        "pass `--out-dir` an empty or new directory (the default is `build` next to Cargo.toml)",
    ))
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
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
        for entry in std::fs::read_dir(dir)
            .with_context(|| format!("could not read directory {}", dir.display()))?
        {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                walk(base, &path, out)?;
            } else {
                let rel = path.strip_prefix(base).expect("under base");
                out.push(
                    rel.components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/"),
                );
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
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

    #[test]
    fn staging_commit_replaces_the_old_bundle_and_failure_keeps_it() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("build");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join(MANIFEST), "{}").unwrap();
        std::fs::write(out.join("index.js"), "old").unwrap();

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
        std::fs::write(staging.dir.join("index.js"), "new").unwrap();
        std::fs::write(staging.dir.join(MANIFEST), "{}").unwrap();
        staging.commit(&out).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("index.js")).unwrap(),
            "new"
        );
        let leftovers: Vec<_> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["build"], "no staging or old directories remain");
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
