//! The two faces of a [`Report`]: a short human table (failures first, each with a cause and a
//! fix line) and the JSON document whose field names the module documentation fixes.

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};
use serde_json::{json, Value};

use super::{Check, ModuleReport, Report, Status, JSON_SCHEMA_VERSION};
use crate::model::{EhEncoding, Expect};

const FAIL: Style = AnsiColor::Red.on_default().bold();
const WARN: Style = AnsiColor::Yellow.on_default().bold();
const PASS: Style = AnsiColor::Green.on_default();
const DIM: Style = Style::new().dimmed();
const BOLD: Style = Style::new().bold();

/// Width of the check-id column: the longest id, `wasm-bindgen`, plus a space.
const ID_WIDTH: usize = 13;

fn paint(w: &mut dyn Write, color: bool, style: Style, text: &str) -> io::Result<()> {
    if color {
        write!(w, "{style}{text}{style:#}")
    } else {
        write!(w, "{text}")
    }
}

fn status_word(status: Status) -> (&'static str, Style) {
    match status {
        Status::Fail => ("FAIL", FAIL),
        Status::Warn => ("warn", WARN),
        Status::Pass => ("ok", PASS),
    }
}

fn expect_str(e: Expect) -> &'static str {
    match e {
        Expect::Unwind => "unwind",
        Expect::Abort => "abort",
    }
}

fn eh_str(e: EhEncoding) -> &'static str {
    match e {
        EhEncoding::Exnref => "exnref",
        EhEncoding::Legacy => "legacy",
    }
}

pub(super) fn human(report: &Report, w: &mut dyn Write, color: bool) -> io::Result<()> {
    for module in &report.modules {
        module_table(module, w, color)?;
        writeln!(w)?;
    }
    let failed = report.modules.iter().filter(|m| !m.passed()).count();
    let mut parts = vec![format!(
        "{} module{}",
        report.modules.len(),
        if report.modules.len() == 1 { "" } else { "s" }
    )];
    if failed > 0 {
        parts.push(format!("{failed} failed"));
    }
    if !report.errors.is_empty() {
        parts.push(format!("{} unreadable", report.errors.len()));
    }
    write!(w, "check-eh: ")?;
    if report.passed() {
        paint(w, color, PASS.bold(), "passed")?;
    } else {
        paint(w, color, FAIL, "FAILED")?;
    }
    writeln!(w, " ({})", parts.join(", "))
}

fn module_table(module: &ModuleReport, w: &mut dyn Write, color: bool) -> io::Result<()> {
    let (word, style) = if module.passed() {
        ("ok", PASS.bold())
    } else {
        ("FAIL", FAIL)
    };
    paint(w, color, style, &format!("{word:<6}"))?;
    paint(w, color, BOLD, &module.name)?;
    let mut context = vec![
        format!(
            "expect {} ({})",
            expect_str(module.expect),
            module.expect_source.as_str()
        ),
        format!("runtime {}", module.runtime.as_str()),
    ];
    if let Some(eh) = module.eh_required {
        context.push(format!("eh {}", eh_str(eh)));
    }
    context.push(crate::term::human_size(module.size as u64));
    writeln!(w, "  {}", context.join(", "))?;

    let mut checks: Vec<&Check> = module.checks.iter().collect();
    // Failures first, then warnings, then passes; the canonical order within each group.
    checks.sort_by_key(|c| c.status);
    for check in checks {
        let (word, style) = status_word(check.status);
        write!(w, "  ")?;
        paint(w, color, style, &format!("{word:<6}"))?;
        writeln!(w, "{:<ID_WIDTH$} {}", check.id.as_str(), check.summary)?;
        let indent = " ".repeat(2 + 6 + ID_WIDTH + 1);
        if let Some(cause) = &check.cause {
            write!(w, "{indent}")?;
            paint(w, color, DIM, "cause:")?;
            writeln!(w, " {cause}")?;
        }
        if let Some(fix) = &check.fix {
            write!(w, "{indent}")?;
            paint(w, color, BOLD, "fix:  ")?;
            writeln!(w, " {fix}")?;
        }
    }
    Ok(())
}

pub(super) fn json(report: &Report) -> Value {
    json!({
        "schema_version": JSON_SCHEMA_VERSION,
        "passed": report.passed(),
        "modules": report.modules.iter().map(module_json).collect::<Vec<_>>(),
        "errors": report.errors.iter().map(|(path, message)| json!({
            "path": path.display().to_string(),
            "message": message,
        })).collect::<Vec<_>>(),
    })
}

fn check_json(c: &Check) -> Value {
    json!({
        "id": c.id.as_str(),
        "status": c.status.as_str(),
        "summary": c.summary,
        "cause": c.cause,
        "fix": c.fix,
    })
}

fn module_json(m: &ModuleReport) -> Value {
    let facts = m.facts.as_ref();
    let eh = facts.zip(m.encoding).map(|(f, encoding)| {
        json!({
            "encoding": encoding.as_str(),
            "counts": {
                "try": f.eh.try_, "catch": f.eh.catch, "catch_all": f.eh.catch_all, "rethrow": f.eh.rethrow,
                "delegate": f.eh.delegate, "try_table": f.eh.try_table, "throw_ref": f.eh.throw_ref, "throw": f.eh.throw,
            },
        })
    });
    let unwinding = facts.zip(m.unwinds).map(|(f, unwinds)| {
        let rust_tags: Vec<Value> = f
            .tags
            .iter()
            .enumerate()
            .filter(|(_, t)| t.import.is_none() && t.i32_payload)
            .map(|(index, t)| json!({ "index": index, "exports": t.exports }))
            .collect();
        let imported: Vec<String> = f
            .tags
            .iter()
            .filter(|t| t.i32_payload)
            .filter_map(|t| {
                t.import
                    .as_ref()
                    .map(|(module, name)| format!("{module}.{name}"))
            })
            .collect();
        json!({
            "unwinds": unwinds,
            "rust_tags": rust_tags,
            "imported_i32_tags": imported,
            "target_feature": f.target_feature("exception-handling"),
            "rust_tag_throws": f.rust_tag_throws,
        })
    });
    let recovery = facts.map(|f| {
        let global = |name: &str| {
            f.export(name)
                .is_some_and(|e| e.kind == wasmparser::ExternalKind::Global)
        };
        json!({
            "instance_terminated": global(super::verdict::INSTANCE_TERMINATED),
            "abort_handler": global(super::verdict::ABORT_HANDLER),
            "abort_detection": f.tag_imports.iter().any(|(_, n)| n == super::verdict::JS_TAG),
        })
    });
    let wiring = m.bundle.as_ref().zip(m.wiring.as_ref()).map(|(b, w)| {
        json!({
            "manifest": b.manifest.as_ref().map(|m| m.raw.clone()),
            "manifest_error": b.manifest_error,
            "entry": b.entry_name, "glue": b.glue_name, "wasm": b.wasm_name,
            "entry_found": w.entry_found, "glue_found": w.glue_found,
            "entry_imports_glue": w.entry_imports_glue,
            "entry_imports_reset": w.entry_imports_reset,
            "glue_exports_reset": w.glue_exports_reset,
            "glue_imports_wasm": w.glue_imports_wasm,
            "wasm_import_phase": w.wasm_import_phase,
            "runtime_imported": w.runtime_imported,
            "runtime_before_glue": w.runtime_before_glue,
            "missing_files": w.missing_files,
            "syntax_error": w.syntax_error,
        })
    });
    let load = m.load.as_ref().map(|l| {
        json!({
            "runtime": l.runtime.as_str(),
            "loads": l.loads,
            "features": l.features.names(),
            "unsupported": l.unsupported.names(),
            "validation_error": l.validation_error,
        })
    });
    json!({
        "path": m.name,
        "bundle": m.bundle.as_ref().map(|b| b.dir.display().to_string()),
        "size": m.size,
        "passed": m.passed(),
        "expect": expect_str(m.expect),
        "expect_source": m.expect_source.as_str(),
        "eh_required": m.eh_required.map(eh_str),
        "runtime": m.runtime.as_str(),
        "error": m.error.as_ref().map(|e| json!({ "message": e.message, "offset": e.offset })),
        "eh": eh,
        "unwinding": unwinding,
        "recovery": recovery,
        "bundle_wiring": wiring,
        "wasm_bindgen": facts.map(|f| json!({ "version": f.wasm_bindgen_version(), "minimum": m.wasm_bindgen_minimum.to_string() })),
        "load": load,
        "checks": m.checks.iter().map(check_json).collect::<Vec<_>>(),
    })
}
