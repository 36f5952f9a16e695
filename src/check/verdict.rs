//! Turns the facts about a module (and its bundle) into the checks of the report, each failure
//! with one line of cause and one line of fix.

use wasmparser::{Validator, WasmFeatures};

use super::bundle::{MANIFEST_FILE, RUNTIME_FILE};
use super::features::{self, Feature};
use super::scan::{self, ModuleFacts};
use super::{
    BundleInfo, BundleWiring, Check, CheckId, CheckOptions, Encoding, LoadVerdict, ModuleReport,
    Source, Status,
};
use crate::model::{release_of, MIN_BINDGEN, MIN_BINDGEN_UNWIND, RECOMMENDED_BINDGEN};
use crate::model::{EhEncoding, Expect, TargetRuntime};
use semver::Version;

/// wasm-bindgen's terminated flag: an exported global holding the address of a `u32` (0 live, 1 dead).
pub const INSTANCE_TERMINATED: &str = "__instance_terminated";
/// wasm-bindgen's abort hook: an exported global holding the address of a function-table index.
pub const ABORT_HANDLER: &str = "__abort_handler";
/// The tag wasm-bindgen imports for the catch wrappers that detect aborts.
pub const JS_TAG: &str = "__wbindgen_jstag";
/// The glue export that instantiates the module afresh.
pub const RESET_STATE: &str = "__wbg_reset_state";

/// The report's header: what is expected of the module, before anything is read from it.
fn skeleton(
    name: &str,
    wasm: &[u8],
    bundle: Option<&BundleInfo>,
    opts: &CheckOptions,
) -> (ModuleReport, Source) {
    let manifest = bundle.and_then(|b| b.manifest.as_ref());
    let (expect, expect_source) = match (opts.expect, manifest.and_then(|m| m.mode)) {
        (Some(e), _) => (e, Source::Option),
        (None, Some(e)) => (e, Source::Manifest),
        (None, None) => (Expect::Unwind, Source::Default),
    };
    let (eh_required, eh_source) = match opts.eh {
        Some(eh) => (Some(eh), Source::Option),
        None if expect == Expect::Unwind => (manifest.and_then(|m| m.eh), Source::Manifest),
        None => (None, Source::Default),
    };
    let report = ModuleReport {
        name: name.to_string(),
        size: wasm.len(),
        expect,
        expect_source,
        eh_required,
        runtime: opts.runtime,
        error: None,
        facts: None,
        encoding: None,
        unwinds: None,
        load: None,
        bundle: bundle.cloned(),
        wiring: None,
        wasm_bindgen_minimum: match expect {
            Expect::Unwind => MIN_BINDGEN_UNWIND,
            Expect::Abort => MIN_BINDGEN,
        },
        checks: Vec::new(),
    };
    (report, eh_source)
}

fn undecodable(mut report: ModuleReport, error: scan::DecodeError) -> ModuleReport {
    report.checks.push(Check {
        id: CheckId::Decode,
        status: Status::Fail,
        summary: "not a readable WebAssembly module".into(),
        cause: Some(format!("{} (at byte {})", error.message, error.offset)),
        fix: Some("rebuild it: the file is corrupt, truncated or not WebAssembly".into()),
    });
    report.error = Some(error);
    report
}

/// The report when the analyser itself failed on an input.
pub(super) fn internal_error(name: &str, wasm: &[u8], opts: &CheckOptions) -> ModuleReport {
    let (report, _) = skeleton(name, wasm, None, opts);
    let error = scan::DecodeError {
        message: "the analyser failed on this input (a bug in cargo-worker-build: please report it with the file)".into(),
        offset: 0,
    };
    undecodable(report, error)
}

pub(super) fn evaluate(
    name: &str,
    wasm: &[u8],
    bundle: Option<&BundleInfo>,
    opts: &CheckOptions,
) -> ModuleReport {
    let (mut report, eh_source) = skeleton(name, wasm, bundle, opts);
    let manifest = bundle.and_then(|b| b.manifest.as_ref());
    let (expect, expect_source, eh_required) =
        (report.expect, report.expect_source, report.eh_required);

    // Decoding for facts and validating are independent passes over the bytes; on a 10 MB module
    // each takes about 0.1 s, so they run side by side.
    let (scanned, validation) = std::thread::scope(|s| {
        let validation = s.spawn(|| validate(wasm, opts.runtime));
        let scanned = scan::scan(wasm);
        let validation = validation.join().unwrap_or_else(|_| Validation {
            error: Some("the validator failed internally".into()),
            invalid_everywhere: false,
        });
        (scanned, validation)
    });
    let facts = match scanned {
        Ok(facts) => facts,
        Err(error) => return undecodable(report, error),
    };
    let encoding = Encoding::of(&facts.eh);
    let unwinds = unwinds(&facts);
    let load = load_verdict(&facts, encoding, opts.runtime, validation);
    let wiring = bundle.map(wiring);

    report
        .checks
        .push(encoding_check(&facts, encoding, eh_required, eh_source));
    report
        .checks
        .push(unwinding_check(&facts, unwinds, expect, expect_source));
    report
        .checks
        .push(recovery_check(&facts, expect, &report.wasm_bindgen_minimum));
    if let (Some(bundle), Some(wiring)) = (bundle, &wiring) {
        report.checks.push(bundle_check(bundle, wiring));
        report.checks.extend(symbols_check(bundle));
    }
    report.checks.push(wasm_bindgen_check(
        &facts,
        expect,
        &report.wasm_bindgen_minimum,
        manifest.and_then(|m| m.wasm_bindgen.as_deref()),
    ));
    report.checks.push(load_check(&load, expect));

    report.facts = Some(facts);
    report.encoding = Some(encoding);
    report.unwinds = Some(unwinds);
    report.load = Some(load);
    report.wiring = wiring;
    report
}

/// Real unwinding: Rust's own exception tag is defined here (wasm-bindgen's wrappers only import
/// JS tags) and the code was compiled for exception handling, when the module says at all.
fn unwinds(facts: &ModuleFacts) -> bool {
    let local_rust_tag = facts
        .tags
        .iter()
        .any(|t| t.import.is_none() && t.i32_payload);
    local_rust_tag && facts.target_feature("exception-handling") != Some(false)
}

fn pass(id: CheckId, summary: String) -> Check {
    Check {
        id,
        status: Status::Pass,
        summary,
        cause: None,
        fix: None,
    }
}

fn fail(id: CheckId, summary: String, cause: String, fix: String) -> Check {
    Check {
        id,
        status: Status::Fail,
        summary,
        cause: Some(cause),
        fix: Some(fix),
    }
}

fn warn(id: CheckId, summary: String, cause: String, fix: String) -> Check {
    Check {
        id,
        status: Status::Warn,
        summary,
        cause: Some(cause),
        fix: Some(fix),
    }
}

fn counted(pairs: &[(&str, u64)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(op, n)| format!("{op} {n}"))
        .collect();
    parts.join(", ")
}

fn legacy_counts(facts: &ModuleFacts) -> String {
    let eh = &facts.eh;
    counted(&[
        ("try", eh.try_),
        ("catch", eh.catch),
        ("catch_all", eh.catch_all),
        ("rethrow", eh.rethrow),
        ("delegate", eh.delegate),
    ])
}

fn exnref_counts(facts: &ModuleFacts) -> String {
    counted(&[
        ("try_table", facts.eh.try_table),
        ("throw_ref", facts.eh.throw_ref),
    ])
}

fn encoding_summary(facts: &ModuleFacts, encoding: Encoding) -> String {
    let throws = if facts.eh.throw > 0 {
        format!(", throw {}", facts.eh.throw)
    } else {
        String::new()
    };
    match encoding {
        Encoding::None if facts.eh.throw > 0 => {
            format!("none (throw {} without handlers)", facts.eh.throw)
        }
        Encoding::None => "none".into(),
        Encoding::Legacy => format!("legacy: {}{throws}", legacy_counts(facts)),
        Encoding::Exnref => format!("exnref: {}{throws}", exnref_counts(facts)),
        Encoding::Mixed => format!(
            "mixed: legacy {} ({}), exnref {} ({})",
            facts.eh.legacy(),
            legacy_counts(facts),
            facts.eh.exnref(),
            exnref_counts(facts)
        ),
    }
}

fn encoding_check(
    facts: &ModuleFacts,
    encoding: Encoding,
    required: Option<EhEncoding>,
    source: Source,
) -> Check {
    let summary = encoding_summary(facts, encoding);
    if encoding == Encoding::Mixed {
        return fail(
            CheckId::EhEncoding,
            summary,
            "legacy and exnref exception-handling instructions in one module: workerd and V8 refuse to compile it".into(),
            "rebuild everything with one encoding (`cargo worker-build --unwind --eh exnref` or `--eh legacy`); \
             look for prebuilt objects or post-processing tools that emit the other one"
                .into(),
        );
    }
    let found = match encoding {
        Encoding::Legacy => Some(EhEncoding::Legacy),
        Encoding::Exnref => Some(EhEncoding::Exnref),
        Encoding::None | Encoding::Mixed => None,
    };
    match (required, found) {
        (Some(required), Some(found)) if required != found => {
            let from = match source {
                Source::Option => "by --eh".to_string(),
                _ => "by the bundle's manifest".to_string(),
            };
            fail(
                CheckId::EhEncoding,
                summary,
                format!(
                    "the module uses {} exception handling; {} was required {from}",
                    found.as_str(),
                    required.as_str()
                ),
                format!("cargo worker-build --unwind --eh {}", required.as_str()),
            )
        }
        _ => pass(CheckId::EhEncoding, summary),
    }
}

fn unwinding_check(facts: &ModuleFacts, unwinds: bool, expect: Expect, source: Source) -> Check {
    let expected = format!("expected {} ({})", expect.as_str(), source.as_str());
    let rust_tag = facts
        .tags
        .iter()
        .enumerate()
        .find(|(_, t)| t.import.is_none() && t.i32_payload);
    let target_feature = facts.target_feature("exception-handling");
    // `unwinds` implies a local i32 tag; matching both keeps this free of panics regardless.
    if let (true, Some((index, tag))) = (unwinds, rust_tag) {
        let exported = tag
            .exports
            .first()
            .map(|n| format!(" exported as {n}"))
            .unwrap_or_default();
        let feature = match target_feature {
            Some(_) => "exception-handling target feature",
            None => "no target_features section",
        };
        let summary = format!(
            "unwinds: Rust exception tag #{index} (param i32){exported}, {feature}, {} throw{}; {expected}",
            facts.rust_tag_throws,
            if facts.rust_tag_throws == 1 { "" } else { "s" }
        );
        return match expect {
            Expect::Unwind => pass(CheckId::Unwinding, summary),
            Expect::Abort => fail(
                CheckId::Unwinding,
                summary,
                "the module unwinds panics (a panic=unwind build) but a panic=abort build was expected".into(),
                "check with `--expect unwind`, or build without `--unwind`".into(),
            ),
        };
    }

    let imported_i32 = facts
        .tags
        .iter()
        .find_map(|t| t.import.as_ref().filter(|_| t.i32_payload));
    let eh_total = facts.eh.legacy() + facts.eh.exnref();
    let (short, cause) = if rust_tag.is_some() && target_feature == Some(false) {
        (
            "i32 tag but no exception-handling target feature",
            "an i32 exception tag exists but target_features lacks exception-handling: the code was not compiled with panic=unwind".to_string(),
        )
    } else if let Some((module, name)) = imported_i32 {
        (
            "Rust's exception tag is imported, not defined",
            format!("the i32 exception tag is imported from {module}.{name}, not defined: the module was not processed by wasm-bindgen, which defines it"),
        )
    } else if eh_total > 0 {
        (
            "only catch wrappers, no Rust exception tag",
            format!(
                "no locally defined (param i32) exception tag; the {eh_total} EH instructions are wasm-bindgen's catch \
                 wrappers around JS imports, which panic=abort builds have too: panics abort"
            ),
        )
    } else {
        ("no exception handling at all", "no exception-handling instructions or tags: a panic=abort build, every panic aborts the instance".to_string())
    };
    let summary = format!("does not unwind: {short}; {expected}");
    match expect {
        Expect::Abort => pass(CheckId::Unwinding, summary),
        Expect::Unwind if imported_i32.is_some() && rust_tag.is_none() => fail(
            CheckId::Unwinding,
            summary,
            cause,
            format!("run wasm-bindgen >= {MIN_BINDGEN_UNWIND} on it (`cargo worker-build --unwind` does)"),
        ),
        Expect::Unwind => fail(CheckId::Unwinding, summary, cause, "cargo worker-build --unwind".into()),
    }
}

fn recovery_check(facts: &ModuleFacts, expect: Expect, minimum: &Version) -> Check {
    let global = |name: &str| {
        facts
            .export(name)
            .is_some_and(|e| e.kind == wasmparser::ExternalKind::Global)
    };
    let missing: Vec<&str> = [INSTANCE_TERMINATED, ABORT_HANDLER]
        .into_iter()
        .filter(|n| !global(n))
        .collect();
    let detection = facts.tag_imports.iter().any(|(_, name)| name == JS_TAG);
    let summary = format!(
        "{INSTANCE_TERMINATED} {}, {ABORT_HANDLER} {}, abort detection {}",
        if global(INSTANCE_TERMINATED) {
            "exported"
        } else {
            "missing"
        },
        if global(ABORT_HANDLER) {
            "exported"
        } else {
            "missing"
        },
        if detection { "on" } else { "off" },
    );
    if !missing.is_empty() {
        return fail(
            CheckId::Recovery,
            summary,
            format!(
                "{} not exported as a global: the glue cannot mark the instance dead after an abort",
                missing.join(" and ")
            ),
            format!(
                "rebuild with `cargo worker-build` (wasm-bindgen >= {minimum}); keep wasm-bindgen's exports when post-processing the module"
            ),
        );
    }
    if !detection {
        let fix = match expect {
            Expect::Abort => {
                "build with `cargo worker-build` (it passes --force-enable-abort-handler), or add \
                              `--force-enable-abort-handler` to your wasm-bindgen command"
                    .to_string()
            }
            Expect::Unwind => "cargo worker-build --unwind".to_string(),
        };
        return fail(
            CheckId::Recovery,
            summary,
            format!(
                "no abort detection: wasm-bindgen wrapped no calls (no {JS_TAG} tag import), so after a trap the \
                 instance keeps serving with broken state"
            ),
            fix,
        );
    }
    pass(CheckId::Recovery, summary)
}

fn wiring(bundle: &BundleInfo) -> BundleWiring {
    if let Some(bundled) = bundle.bundled() {
        return bundled_wiring(bundle, bundled);
    }
    let glue_spec = format!("./{}", bundle.glue_name);
    let wasm_spec = format!("./{}", bundle.wasm_name);
    let entry_is_glue = bundle.entry_name == bundle.glue_name;
    let glue_exports_reset = bundle
        .glue_syntax()
        .is_some_and(|g| g.exports_name(RESET_STATE));
    let (entry_imports_glue, entry_imports_reset) = match bundle.entry_syntax() {
        None => (false, false),
        Some(_) if entry_is_glue => (true, glue_exports_reset),
        Some(entry) => {
            let decls: Vec<_> = entry.imports_from(&glue_spec).collect();
            let reset = decls
                .iter()
                .any(|d| d.namespace || d.names.iter().any(|n| n == RESET_STATE));
            (!decls.is_empty(), reset)
        }
    };
    let wasm_import = bundle
        .glue_syntax()
        .and_then(|g| g.imports_from(&wasm_spec).next());
    let runtime_spec = format!("./{RUNTIME_FILE}");
    let position = |spec: &str| {
        let entry = bundle.entry_syntax()?;
        entry.imports.iter().position(|d| d.specifier == spec)
    };
    let (runtime_imported, runtime_before_glue) = if bundle.ours || bundle.runtime_present {
        let runtime_at = position(&runtime_spec);
        // Module evaluation follows import order: the runtime must be evaluated before the glue.
        let before = match (runtime_at, position(&glue_spec)) {
            (Some(r), Some(g)) => r < g,
            (Some(_), None) => entry_is_glue,
            (None, _) => false,
        };
        (Some(runtime_at.is_some()), Some(before))
    } else {
        (None, None)
    };
    BundleWiring {
        runtime_imported,
        runtime_before_glue,
        missing_files: bundle.missing_files.clone(),
        entry_found: bundle.entry.is_some(),
        glue_found: bundle.glue.is_some(),
        syntax_error: bundle.syntax_error(),
        entry_imports_glue,
        entry_imports_reset,
        glue_exports_reset,
        glue_imports_wasm: wasm_import.is_some(),
        wasm_import_phase: wasm_import.and_then(|d| d.phase.clone()),
    }
}

/// The wiring of a one-module bundle, from esbuild's metafile: the inputs in the entry's output,
/// and each input's imports in source (so evaluation) order. The entry imports the glue's
/// namespace (so every glue export, `__wbg_reset_state` included, is reachable from it); the
/// metafile records that import, and the glue's exports under the glue's own output.
fn bundled_wiring(bundle: &BundleInfo, bundled: &crate::bundle::Bundled) -> BundleWiring {
    let metafile = bundle.metafile.as_ref().and_then(|m| m.as_ref().ok());
    let output = metafile.and_then(|m| m.outputs.get(&bundle.entry_name));
    let contains = |input: &str| output.is_some_and(|o| o.inputs.contains_key(input));
    let imports = |input: &str| {
        metafile
            .and_then(|m| m.inputs.get(input))
            .map(|i| i.imports.as_slice())
            .unwrap_or_default()
    };
    let position = |from: &str, to: &str| {
        imports(from)
            .iter()
            .position(|i| i.path == to && i.kind == "import-statement" && !i.external)
    };
    let entry_found = bundle.entry_bytes.is_some()
        && output.is_some_and(|o| {
            o.entry_point.as_deref() == Some(bundled.entry_source.as_str())
                && Some(o.bytes) == bundle.entry_bytes
        });
    let glue_at = position(&bundled.entry_source, &bundled.glue_source);
    let runtime_at = position(&bundled.entry_source, &bundled.runtime_source);
    let glue_exports_reset = metafile.is_some_and(|m| {
        m.outputs.values().any(|o| {
            o.entry_point.as_deref() == Some(bundled.glue_source.as_str())
                && o.exports.iter().any(|e| e == RESET_STATE)
        })
    });
    let wasm_spec = format!("./{}", bundle.wasm_name);
    let glue_imports_wasm = imports(&bundled.glue_source)
        .iter()
        .any(|i| i.external && i.path == wasm_spec && i.kind == "import-statement");
    let runtime_imported = runtime_at.is_some() && contains(&bundled.runtime_source);
    BundleWiring {
        entry_found,
        glue_found: contains(&bundled.glue_source),
        entry_imports_glue: glue_at.is_some(),
        entry_imports_reset: glue_at.is_some() && glue_exports_reset,
        glue_exports_reset,
        glue_imports_wasm,
        // esbuild keeps the phase in the output but does not record it in the metafile.
        wasm_import_phase: None,
        runtime_imported: Some(runtime_imported),
        runtime_before_glue: Some(matches!((runtime_at, glue_at), (Some(r), Some(g)) if r < g)),
        missing_files: bundle.missing_files.clone(),
        // The metafile says what esbuild read; the bundled text is not parsed.
        syntax_error: None,
    }
}

/// Whether the symbol map the manifest records is there and is the map of this module. Only for
/// bundles whose manifest records one (older bundles and other tools' have none to check).
fn symbols_check(bundle: &BundleInfo) -> Option<Check> {
    let record = crate::bundle::read_manifest(&bundle.dir)?.symbols?;
    let rebuild =
        "rebuild with `cargo worker-build`; do not edit or replace files of the bundle".to_string();
    let wasm = &bundle.wasm_name;
    let shipped = std::fs::read(bundle.dir.join(wasm))
        .ok()
        .map(|b| crate::symbols::build_id(&b));
    let map = match crate::symbols::read_sidecar(&bundle.dir) {
        Ok(map) => map,
        Err(why) => {
            return Some(warn(
                CheckId::Symbols,
                format!("no readable {} ({why})", record.file),
                "`cargo worker-build symbolize` cannot name this module's frames".into(),
                rebuild,
            ))
        }
    };
    if shipped.as_deref() != Some(map.build_id.as_str()) {
        return Some(warn(
            CheckId::Symbols,
            format!("{} is for build {}", record.file, map.build_id),
            format!(
                "{wasm} is build {}: the map names the wrong functions",
                shipped.unwrap_or_else(|| "unreadable".into())
            ),
            rebuild,
        ));
    }
    Some(pass(
        CheckId::Symbols,
        format!(
            "{} matches {wasm} (build {}, {} functions, {})",
            record.file,
            map.build_id,
            map.functions.len(),
            if map.chains.is_empty() {
                "names only"
            } else {
                "with lines and inlined frames"
            }
        ),
    ))
}

fn bundle_check(bundle: &BundleInfo, w: &BundleWiring) -> Check {
    if let Some(bundled) = bundle.bundled() {
        return bundled_check(bundle, bundled, w);
    }
    let (entry, glue, wasm) = (&bundle.entry_name, &bundle.glue_name, &bundle.wasm_name);
    let summary = match (entry == glue, w.runtime_imported) {
        (true, _) => format!("{entry} (glue and entry in one) loads {wasm}"),
        (false, Some(true)) => format!("{entry} -> {RUNTIME_FILE}, {glue} -> {wasm}"),
        (false, _) => format!("{entry} -> {glue} -> {wasm}"),
    };
    let rebuild =
        "rebuild with `cargo worker-build`; do not edit or replace files of the bundle".to_string();
    let problem = if !w.missing_files.is_empty() {
        Some(format!(
            "files listed in {MANIFEST_FILE} are missing: {}",
            w.missing_files.join(", ")
        ))
    } else if !w.entry_found {
        Some(format!("{entry} is missing or unreadable"))
    } else if !w.glue_found {
        Some(format!("{glue} is missing or unreadable"))
    } else if let Some(error) = &w.syntax_error {
        Some(format!(
            "{error}: not a valid ES module, so its imports and exports cannot be read"
        ))
    } else if !w.entry_imports_glue {
        Some(format!(
            "{entry} does not import ./{glue}: the entry bypasses the glue and its abort recovery"
        ))
    } else if w.runtime_imported == Some(false) {
        Some(format!(
            "{entry} does not import ./{RUNTIME_FILE}: no abort recovery around the exports"
        ))
    } else if w.runtime_before_glue == Some(false) {
        Some(format!(
            "{entry} imports ./{RUNTIME_FILE} after ./{glue}: the runtime cannot observe the glue instantiating the \
             module, so it never sees the terminated flag"
        ))
    } else if !w.glue_exports_reset {
        Some(format!(
            "{glue} does not export {RESET_STATE}: wasm-bindgen ran without --experimental-reset-state-function, \
             so a dead instance cannot be replaced"
        ))
    } else if !w.glue_imports_wasm {
        Some(format!(
            "{glue} does not import ./{wasm}: the files come from different builds"
        ))
    } else {
        None
    };
    if let Some(cause) = problem {
        return fail(CheckId::Bundle, summary, cause, rebuild);
    }
    if let Some(error) = &bundle.manifest_error {
        return warn(
            CheckId::Bundle,
            summary,
            format!("{error}; expectations fell back to defaults"),
            rebuild,
        );
    }
    if !w.entry_imports_reset {
        return warn(
            CheckId::Bundle,
            summary,
            format!(
                "{entry} never imports {RESET_STATE}: after an abort nothing replaces the instance unless Rust code calls \
                 wasm_bindgen::handler::schedule_reinit"
            ),
            rebuild,
        );
    }
    pass(CheckId::Bundle, summary)
}

/// The bundle check of a one-module bundle: the same promises as the three-file layout, read
/// from the metafile.
fn bundled_check(bundle: &BundleInfo, bundled: &crate::bundle::Bundled, w: &BundleWiring) -> Check {
    let (entry, wasm, meta) = (&bundle.entry_name, &bundle.wasm_name, &bundled.metafile);
    let summary = format!("{entry} (entry, recovery runtime and glue in one module) loads {wasm}");
    let rebuild =
        "rebuild with `cargo worker-build`; do not edit or replace files of the bundle".to_string();
    let metafile_error = match &bundle.metafile {
        Some(Err(e)) => Some(e.clone()),
        _ => None,
    };
    let problem = if !w.missing_files.is_empty() {
        Some(format!(
            "files listed in {MANIFEST_FILE} are missing: {}",
            w.missing_files.join(", ")
        ))
    } else if let Some(error) = metafile_error {
        Some(format!("the bundle's metafile is unusable: {error}"))
    } else if !w.entry_found {
        Some(format!(
            "{entry} is missing, or is not the file esbuild wrote (its size differs from {meta})"
        ))
    } else if !w.glue_found || !w.entry_imports_glue {
        Some(format!(
            "{entry} does not contain the glue ({}): the entry bypasses the glue and its abort recovery",
            bundled.glue_source
        ))
    } else if w.runtime_imported == Some(false) {
        Some(format!(
            "{entry} does not contain the recovery runtime ({}): no abort recovery around the exports",
            bundled.runtime_source
        ))
    } else if w.runtime_before_glue == Some(false) {
        Some(format!(
            "{entry} evaluates the glue before the recovery runtime ({meta}): the runtime cannot observe the glue \
             instantiating the module, so it never sees the terminated flag"
        ))
    } else if !w.glue_exports_reset {
        Some(format!(
            "the glue does not export {RESET_STATE}: wasm-bindgen ran without --experimental-reset-state-function, \
             so a dead instance cannot be replaced"
        ))
    } else if !w.glue_imports_wasm {
        Some(format!(
            "the glue in {entry} does not import ./{wasm}: the files come from different builds"
        ))
    } else {
        None
    };
    match (problem, &bundle.manifest_error) {
        (Some(cause), _) => fail(CheckId::Bundle, summary, cause, rebuild),
        (None, Some(error)) => warn(
            CheckId::Bundle,
            summary,
            format!("{error}; expectations fell back to defaults"),
            rebuild,
        ),
        (None, None) => pass(CheckId::Bundle, summary),
    }
}

fn wasm_bindgen_check(
    facts: &ModuleFacts,
    expect: Expect,
    minimum: &Version,
    recorded: Option<&str>,
) -> Check {
    let pin = format!("wasm-bindgen = \"={RECOMMENDED_BINDGEN}\" in Cargo.toml's [dependencies]");
    let Some(version) = facts.wasm_bindgen_version() else {
        let looks_processed = facts.tag_imports.iter().any(|(_, n)| n == JS_TAG);
        let summary = format!("no wasm-bindgen in the producers section; minimum {minimum}");
        let malformed = facts
            .malformed_custom_sections
            .iter()
            .find(|m| m.starts_with("producers"));
        return if looks_processed {
            let cause = match malformed {
                Some(error) => format!(
                    "the producers section is malformed ({error}), so the wasm-bindgen version cannot be checked"
                ),
                None => "the producers section was stripped, so the wasm-bindgen version cannot be checked"
                    .into(),
            };
            warn(
                CheckId::WasmBindgen,
                summary,
                cause,
                "keep the producers section when optimising (no `--strip-producers`)".into(),
            )
        } else {
            fail(
                CheckId::WasmBindgen,
                summary,
                "the module was not processed by wasm-bindgen: there is no glue and no abort recovery".into(),
                "cargo worker-build".into(),
            )
        };
    };
    let summary = format!("{version} (minimum {minimum} for {})", expect.as_str());
    let too_old = release_of(version).is_none_or(|found| found < *minimum);
    if too_old {
        let why = match expect {
            Expect::Unwind => "leak shadow stack on every caught panic",
            Expect::Abort => "cannot enable abort detection for panic=abort builds",
        };
        return fail(
            CheckId::WasmBindgen,
            summary,
            format!("wasm-bindgen {version} is too old: releases before {minimum} {why}"),
            pin,
        );
    }
    if let Some(recorded) = recorded.filter(|r| release_of(r) != release_of(version)) {
        return warn(
            CheckId::WasmBindgen,
            summary,
            format!("the manifest records wasm-bindgen {recorded} but the module was processed by {version}: files from different builds"),
            "rebuild with `cargo worker-build`".into(),
        );
    }
    pass(CheckId::WasmBindgen, summary)
}

struct Validation {
    error: Option<String>,
    /// The module is invalid even with every feature on: corrupt rather than too new.
    invalid_everywhere: bool,
}

fn validate(wasm: &[u8], runtime: TargetRuntime) -> Validation {
    let result =
        Validator::new_with_features(features::validator_features(runtime)).validate_all(wasm);
    let error = result
        .err()
        .map(|e| format!("{} (at byte {})", e.message(), e.offset()));
    // A second pass only when the first failed, to tell "too new for this runtime" from "broken".
    let invalid_everywhere = error.is_some()
        && Validator::new_with_features(WasmFeatures::all())
            .validate_all(wasm)
            .is_err();
    Validation {
        error,
        invalid_everywhere,
    }
}

fn load_verdict(
    facts: &ModuleFacts,
    encoding: Encoding,
    runtime: TargetRuntime,
    validation: Validation,
) -> LoadVerdict {
    let unsupported = facts.features.difference(features::supported(runtime));
    LoadVerdict {
        runtime,
        loads: unsupported.is_empty() && encoding != Encoding::Mixed && validation.error.is_none(),
        mixed_eh: encoding == Encoding::Mixed,
        features: facts.features,
        unsupported,
        validation_error: validation.error,
        invalid_everywhere: validation.invalid_everywhere,
    }
}

fn load_check(load: &LoadVerdict, expect: Expect) -> Check {
    let runtime = load.runtime.as_str();
    let features = if load.features.is_empty() {
        "MVP only".to_string()
    } else {
        load.features.names().join(", ")
    };
    if load.loads {
        return pass(
            CheckId::Load,
            format!("loads in {runtime}: validates; features: {features}"),
        );
    }
    let summary = format!("does not load in {runtime}; features: {features}");
    if load.mixed_eh {
        return fail(
            CheckId::Load,
            summary,
            format!("{runtime} refuses modules that mix legacy and exnref exception handling"),
            "rebuild with one encoding: `cargo worker-build --unwind --eh exnref` (or `--eh legacy`)".into(),
        );
    }
    if load.invalid_everywhere {
        return fail(
            CheckId::Load,
            summary,
            format!(
                "not valid WebAssembly: {}",
                load.validation_error.as_deref().unwrap_or("")
            ),
            "rebuild the module; a tool that ran after the compiler wrote an invalid module".into(),
        );
    }
    if let Some(first) = load.unsupported.iter().next() {
        let names = load.unsupported.names().join(", ");
        let cause = format!("{runtime} lacks {names}");
        let fix = if first == Feature::Exnref {
            match expect {
                Expect::Unwind => "cargo worker-build --unwind --eh legacy (or target `--runtime node22`)".to_string(),
                Expect::Abort => {
                    "target `--runtime node22` or newer: wasm-bindgen's abort handler adds exnref catch wrappers".to_string()
                }
            }
        } else {
            match features::first_runtime_with(first) {
                Some(newer) => format!(
                    "target `--runtime {}` or newer, or build without it: `-Ctarget-feature=-{}`",
                    newer.as_str(),
                    first.name()
                ),
                None => format!(
                    "no target runtime ships {} yet; build without it: `-Ctarget-feature=-{}`",
                    first.name(),
                    first.name()
                ),
            }
        };
        return fail(CheckId::Load, summary, cause, fix);
    }
    fail(
        CheckId::Load,
        summary,
        format!(
            "does not validate with {runtime}'s features: {}",
            load.validation_error.as_deref().unwrap_or("")
        ),
        "target a newer `--runtime`, or build without the feature the error names".into(),
    )
}
