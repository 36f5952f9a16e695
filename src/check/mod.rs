//! `--check-eh` and `cargo worker-build check`: verify that a bundle unwinds, recovers and loads.
//!
//! A green result has to be trustworthy: `try_table` alone proves nothing (wasm-bindgen wraps JS
//! imports in catch handlers in panic=abort builds too), so unwinding is only credited when the
//! module defines Rust's own exception tag and was compiled with the `exception-handling` target
//! feature. A red result has to be actionable: every failed check carries one line of cause and
//! one line of fix.
//!
//! The pipeline: [`scan`] decodes the module once (opcode counts, tags, exports, custom sections,
//! features used), [`bundle`] reads the manifest and the JavaScript around it, `verdict` turns
//! those facts into checks, `render` prints them.
//!
//! # Checks
//!
//! Each module gets these checks, in this order (the human table shows failures first):
//!
//! | id | passes when |
//! |----|-------------|
//! | `eh-encoding` | the module does not mix legacy and exnref instructions, and matches `--eh` (or the manifest's `eh`) when the module has any |
//! | `unwinding` | the module unwinds exactly when unwinding is expected: a locally defined tag with a single `i32` parameter, and `+exception-handling` in `target_features` when that section exists |
//! | `recovery` | the module exports the globals `__instance_terminated` and `__abort_handler` and imports wasm-bindgen's `__wbindgen_jstag` tag (abort detection was generated) |
//! | `bundle` | (bundles only) every file the manifest lists exists; the entry imports our recovery runtime (bundles we built) before the glue; the glue exports `__wbg_reset_state` and imports the module |
//! | `wasm-bindgen` | the producers section names wasm-bindgen at or above the minimum (0.2.127 for unwind, 0.2.125 for abort) |
//! | `load` | the module uses only features the target runtime has, does not mix EH encodings, and validates with wasmparser under that runtime's features |
//! | `decode` | never: it appears alone, instead of the others, when the module cannot be decoded |
//!
//! A `warn` (an unreadable manifest, a stripped producers section, an entry that never imports
//! the reset function) is shown but does not fail the check.
//!
//! # Runtimes
//!
//! `--runtime` picks the feature set the module must stay within ([`features::supported`]):
//! `node20` has legacy exception handling, reference types, bulk memory, multi-value, SIMD,
//! threads and tail calls but no exnref; `node22` adds exnref, relaxed SIMD, extended-const, GC,
//! typed function references and multiple memories; `node24` and `workerd` add 64-bit memories.
//! Every V8 refuses a module that mixes the two exception-handling encodings.
//!
//! Exit codes of [`run`]: 0 every module passed, 1 a check failed, 2 an input could not be read
//! or is not a WebAssembly module.
//!
//! # JSON report (`--message-format json`)
//!
//! One JSON object on stdout. Field names are stable; new fields may be added. `schema_version`
//! changes only when a field is removed or changes meaning.
//!
//! ```text
//! {
//!   "schema_version": 1,
//!   "passed": bool,                       // every module passed and no input errors
//!   "modules": [ {
//!     "path": string,                     // the .wasm file checked
//!     "bundle": string | null,            // the bundle directory, null for a bare .wasm
//!     "size": int,                        // bytes
//!     "passed": bool,
//!     "expect": "unwind" | "abort",
//!     "expect_source": "option" | "manifest" | "default",
//!     "eh_required": "exnref" | "legacy" | null,
//!     "runtime": "workerd" | "node20" | "node22" | "node24",
//!     "error": null | { "message": string, "offset": int },   // the module could not be decoded;
//!                                         // the sections below are then null
//!     "eh": { "encoding": "none" | "legacy" | "exnref" | "mixed",
//!             "counts": { "try": int, "catch": int, "catch_all": int, "rethrow": int,
//!                         "delegate": int, "try_table": int, "throw_ref": int, "throw": int } },
//!     "unwinding": { "unwinds": bool,
//!                    "rust_tags": [ { "index": int, "exports": [string] } ],  // local (param i32) tags
//!                    "imported_i32_tags": [string],       // "module.name" of imported (param i32) tags
//!                    "target_feature": bool | null,       // +exception-handling; null: no section
//!                    "rust_tag_throws": int },
//!     "recovery": { "instance_terminated": bool, "abort_handler": bool, "abort_detection": bool },
//!     "bundle_wiring": null | {
//!       "manifest": object | null,         // .worker-build.json as written
//!       "manifest_error": string | null,
//!       "entry": string, "glue": string, "wasm": string,   // file names inside the bundle
//!       "entry_found": bool, "glue_found": bool,
//!       "entry_imports_glue": bool,        // true when the entry is the glue itself
//!       "entry_imports_reset": bool,       // names __wbg_reset_state or imports the namespace
//!       "glue_exports_reset": bool,
//!       "glue_imports_wasm": bool,
//!       "wasm_import_phase": string | null, // "source" for `import source m from "./x.wasm"`;
//!                                          // null for one-module bundles (not in the metafile)
//!       "runtime_imported": bool | null,   // entry imports the runtime; null: bundle has none
//!       "runtime_before_glue": bool | null,
//!       "missing_files": [string],         // listed in the manifest, absent from the directory
//!       "syntax_error": string | null      // the entry or glue is not an ES module: where, why
//!     },
//!     "wasm_bindgen": { "version": string | null, "minimum": string },
//!     "load": { "runtime": string, "loads": bool,
//!               "features": [string],      // post-MVP features used, LLVM names
//!               "unsupported": [string],   // the subset the runtime lacks
//!               "validation_error": string | null },
//!     "checks": [ { "id": string, "status": "pass" | "fail" | "warn",
//!                   "summary": string, "cause": string | null, "fix": string | null } ]
//!   } ],
//!   "errors": [ { "path": string, "message": string } ]  // inputs that could not be read
//! }
//! ```

pub mod bundle;
pub mod features;
pub mod js;
mod render;
pub mod scan;
mod verdict;

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

pub use bundle::{BundleInfo, Manifest};
pub use scan::{DecodeError, EhCounts, ModuleFacts};

use crate::model::{EhEncoding, Expect, MessageFormat, TargetRuntime};

/// Version of the JSON report layout (see the module documentation).
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// What to expect of the modules checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// Unwind or abort; `None`: the manifest's mode, else unwind.
    pub expect: Option<Expect>,
    /// Required exception-handling encoding; `None`: the manifest's (for unwind builds), else any.
    pub eh: Option<EhEncoding>,
    pub runtime: TargetRuntime,
}

/// Where an expectation came from, so a failure can say why it was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A command-line option.
    Option,
    /// The bundle's `.worker-build.json`.
    Manifest,
    Default,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Option => "option",
            Source::Manifest => "manifest",
            Source::Default => "default",
        }
    }
}

/// The exception-handling encoding a module uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    None,
    Legacy,
    Exnref,
    /// Both: every engine refuses such a module.
    Mixed,
}

impl Encoding {
    pub fn of(counts: &EhCounts) -> Encoding {
        match (counts.legacy() > 0, counts.exnref() > 0) {
            (false, false) => Encoding::None,
            (true, false) => Encoding::Legacy,
            (false, true) => Encoding::Exnref,
            (true, true) => Encoding::Mixed,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::None => "none",
            Encoding::Legacy => "legacy",
            Encoding::Exnref => "exnref",
            Encoding::Mixed => "mixed",
        }
    }
}

/// Stable identifiers of the checks (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CheckId {
    Decode,
    EhEncoding,
    Unwinding,
    Recovery,
    Bundle,
    WasmBindgen,
    Load,
    Symbols,
}

impl CheckId {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckId::Decode => "decode",
            CheckId::EhEncoding => "eh-encoding",
            CheckId::Unwinding => "unwinding",
            CheckId::Recovery => "recovery",
            CheckId::Bundle => "bundle",
            CheckId::WasmBindgen => "wasm-bindgen",
            CheckId::Load => "load",
            CheckId::Symbols => "symbols",
        }
    }
}

/// Outcome of one check. Only `Fail` fails the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Fail,
    Warn,
    Pass,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Fail => "fail",
            Status::Warn => "warn",
            Status::Pass => "pass",
        }
    }
}

/// One verdict line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub id: CheckId,
    pub status: Status,
    /// What was found, one line.
    pub summary: String,
    /// Why it fails (or warns), one line.
    pub cause: Option<String>,
    /// What to run or change, one line.
    pub fix: Option<String>,
}

/// Whether the module loads in the target runtime, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadVerdict {
    pub runtime: TargetRuntime,
    pub loads: bool,
    /// Legacy and exnref instructions in one module: V8 refuses it whatever else it supports.
    pub mixed_eh: bool,
    pub features: features::FeatureSet,
    pub unsupported: features::FeatureSet,
    pub validation_error: Option<String>,
    /// The module is not valid under any feature set: corrupt rather than too new.
    pub invalid_everywhere: bool,
}

/// How the bundle's JavaScript is wired to the module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleWiring {
    pub entry_found: bool,
    pub glue_found: bool,
    pub entry_imports_glue: bool,
    pub entry_imports_reset: bool,
    pub glue_exports_reset: bool,
    pub glue_imports_wasm: bool,
    pub wasm_import_phase: Option<String>,
    /// Whether the entry imports our recovery runtime; `None` for bundles that have none.
    pub runtime_imported: Option<bool>,
    /// Whether that import comes before the glue's, as the runtime needs.
    pub runtime_before_glue: Option<bool>,
    pub missing_files: Vec<String>,
    /// The entry or glue that is not an ES module: `index.js, line 6, column 26: Expected ',', got '<eof>'`.
    pub syntax_error: Option<String>,
}

/// The report for one module.
#[derive(Debug, Clone)]
pub struct ModuleReport {
    pub name: String,
    pub size: usize,
    pub expect: Expect,
    pub expect_source: Source,
    pub eh_required: Option<EhEncoding>,
    pub runtime: TargetRuntime,
    /// Set when the module could not be decoded; `facts` and the verdicts are then absent.
    pub error: Option<DecodeError>,
    pub facts: Option<ModuleFacts>,
    pub encoding: Option<Encoding>,
    pub unwinds: Option<bool>,
    pub load: Option<LoadVerdict>,
    pub bundle: Option<BundleInfo>,
    pub wiring: Option<BundleWiring>,
    /// wasm-bindgen version the module needs for its expected mode.
    pub wasm_bindgen_minimum: semver::Version,
    pub checks: Vec<Check>,
}

impl ModuleReport {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.checks.iter().all(|c| c.status != Status::Fail)
    }

    pub fn check(&self, id: CheckId) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }
}

/// An input that could not be checked at all (exit code 2).
#[derive(Debug)]
pub enum CheckError {
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    NotABundle {
        path: PathBuf,
        reason: String,
    },
    InvalidWasm {
        path: PathBuf,
        error: DecodeError,
    },
}

impl CheckError {
    pub fn path(&self) -> &Path {
        match self {
            CheckError::Io { path, .. }
            | CheckError::NotABundle { path, .. }
            | CheckError::InvalidWasm { path, .. } => path,
        }
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Io { path, source } => write!(f, "could not read {}: {source}", path.display()),
            CheckError::NotABundle { path, reason } => write!(
                f,
                "{} is not a bundle directory: {reason}; pass a directory written by `cargo worker-build` or a .wasm file",
                path.display()
            ),
            CheckError::InvalidWasm { path, error } => write!(
                f,
                "{} is not a readable WebAssembly module: {} (at byte {}); rebuild it, the file is corrupt or truncated",
                path.display(),
                error.message,
                error.offset
            ),
        }
    }
}

impl std::error::Error for CheckError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CheckError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The reports for one or more inputs.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub modules: Vec<ModuleReport>,
    /// `(path, message)` of inputs that could not be read; only [`run`] fills this in.
    pub errors: Vec<(PathBuf, String)>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.errors.is_empty() && self.modules.iter().all(ModuleReport::passed)
    }

    /// 0 pass, 1 a check failed, 2 an input could not be read.
    pub fn exit_code(&self) -> i32 {
        if !self.errors.is_empty() {
            2
        } else if self.passed() {
            0
        } else {
            1
        }
    }

    pub fn render_human(&self, w: &mut dyn std::io::Write, color: bool) -> std::io::Result<()> {
        render::human(self, w, color)
    }

    pub fn to_json(&self) -> serde_json::Value {
        render::json(self)
    }
}

/// Check a bundle directory (entry, glue, module, maybe a manifest) or a bare `.wasm` file.
pub fn check_path(path: &Path, opts: &CheckOptions) -> Result<Report, CheckError> {
    let meta = std::fs::metadata(path).map_err(|source| CheckError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let (wasm_path, bundle) = if meta.is_dir() {
        let bundle = BundleInfo::read(path)?;
        (bundle.wasm_path(), Some(bundle))
    } else {
        (path.to_path_buf(), None)
    };
    let wasm = std::fs::read(&wasm_path).map_err(|source| CheckError::Io {
        path: wasm_path.clone(),
        source,
    })?;
    let module = check_module(
        &wasm_path.display().to_string(),
        &wasm,
        bundle.as_ref(),
        opts,
    );
    if let Some(error) = &module.error {
        return Err(CheckError::InvalidWasm {
            path: wasm_path,
            error: error.clone(),
        });
    }
    Ok(Report {
        modules: vec![module],
        errors: Vec::new(),
    })
}

/// Check one module's bytes. Never panics; an undecodable module yields a report whose `error`
/// is set and whose single `decode` check fails.
pub fn check_module(
    name: &str,
    wasm: &[u8],
    bundle: Option<&BundleInfo>,
    opts: &CheckOptions,
) -> ModuleReport {
    // The analyser is built not to panic (the fuzz test holds it to that); should a dependency
    // panic on some input anyway, the user still gets a report rather than a crash.
    std::panic::catch_unwind(|| verdict::evaluate(name, wasm, bundle, opts))
        .unwrap_or_else(|_| verdict::internal_error(name, wasm, opts))
}

/// Check every path, print the report (human on stdout, errors on stderr; or one JSON object on
/// stdout) and return the exit code: 0 pass, 1 a check failed, 2 an input could not be read.
pub fn run(paths: &[PathBuf], opts: &CheckOptions, format: MessageFormat, color: bool) -> i32 {
    let mut report = Report::default();
    if paths.is_empty() {
        report.errors.push((
            PathBuf::new(),
            "no bundle directory or .wasm file given".to_string(),
        ));
    }
    for path in paths {
        match check_path(path, opts) {
            Ok(r) => report.modules.extend(r.modules),
            Err(e) => report.errors.push((e.path().to_path_buf(), e.to_string())),
        }
    }
    let written = match format {
        MessageFormat::Json => {
            let mut out = std::io::stdout().lock();
            serde_json::to_writer(&mut out, &report.to_json())
                .map_err(std::io::Error::from)
                .and_then(|()| std::io::Write::write_all(&mut out, b"\n"))
        }
        MessageFormat::Human => {
            let mut err = std::io::stderr().lock();
            for (_, message) in &report.errors {
                let style = anstyle::AnsiColor::Red.on_default().bold();
                let _ = if color {
                    writeln!(err, "{style}error:{style:#} {message}")
                } else {
                    writeln!(err, "error: {message}")
                };
            }
            let mut out = std::io::stdout().lock();
            report.render_human(&mut out, color)
        }
    };
    // A closed stdout (`| head`) must not turn a verdict into a crash; the exit code still tells.
    drop(written);
    report.exit_code()
}
