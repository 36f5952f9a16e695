//! The `--check-eh` analyser on small hand-written modules, compiled here with the `wat` crate.
//!
//! The fixtures imitate what the toolchain really emits (see the real modules in
//! `check_real.rs`): rustc's panic=unwind code defines a `(param i32)` tag and uses
//! `try_table`/`throw_ref` (or legacy `try`/`catch`), wasm-bindgen imports `__wbindgen_jstag` and
//! wraps JS imports in catch handlers in every build, and wasm-bindgen's runtime exports the
//! `__instance_terminated` and `__abort_handler` globals.

use cargo_worker_build::check::{self, CheckId, CheckOptions, Encoding, ModuleReport, Status};
use cargo_worker_build::cli::{EhEncoding, Expect, TargetRuntime};

#[derive(Clone, Copy, PartialEq, Eq)]
enum RustTag {
    Local,
    Imported,
    Absent,
}

/// A module shaped like wasm-bindgen output, with knobs for each property the check looks at.
#[derive(Clone)]
struct Fixture {
    /// Rust's own unwinding code in the legacy encoding.
    legacy_code: bool,
    /// Rust's own unwinding code in the exnref encoding.
    exnref_code: bool,
    rust_tag: RustTag,
    /// wasm-bindgen's `__wbindgen_jstag` import and a catch wrapper around a JS import, in the
    /// encoding of the code (exnref when there is none, as wasm-bindgen does for panic=abort).
    wrappers: bool,
    recovery_exports: bool,
    wasm_bindgen: Option<&'static str>,
    target_features: Option<Vec<&'static str>>,
    /// More module fields, verbatim.
    extra: &'static str,
}

const RUSTC_FEATURES: [&str; 5] = [
    "bulk-memory",
    "multivalue",
    "mutable-globals",
    "reference-types",
    "sign-ext",
];

impl Fixture {
    fn unwind_exnref() -> Fixture {
        let mut features = RUSTC_FEATURES.to_vec();
        features.push("exception-handling");
        Fixture {
            legacy_code: false,
            exnref_code: true,
            rust_tag: RustTag::Local,
            wrappers: true,
            recovery_exports: true,
            wasm_bindgen: Some("0.2.130"),
            target_features: Some(features),
            extra: "",
        }
    }

    fn unwind_legacy() -> Fixture {
        Fixture {
            legacy_code: true,
            exnref_code: false,
            ..Fixture::unwind_exnref()
        }
    }

    /// A panic=abort build run through wasm-bindgen with `--force-enable-abort-handler`.
    fn abort() -> Fixture {
        Fixture {
            legacy_code: false,
            exnref_code: false,
            rust_tag: RustTag::Absent,
            target_features: Some(RUSTC_FEATURES.to_vec()),
            ..Fixture::unwind_exnref()
        }
    }

    fn wat(&self) -> String {
        let mut m = String::from("(module\n");
        m += "  (import \"./index_bg.js\" \"__wbg_parse\" (func $js_parse (param i32)))\n";
        if self.wrappers {
            m += "  (import \"./index_bg.js\" \"__wbindgen_jstag\" (tag $jstag (param externref)))\n";
        }
        match self.rust_tag {
            RustTag::Imported => {
                m += "  (import \"env\" \"__cpp_exception\" (tag $rust (param i32)))\n"
            }
            RustTag::Local => m += "  (tag $rust (param i32))\n",
            RustTag::Absent => {}
        }
        m += "  (memory (export \"memory\") 17)\n";
        if self.recovery_exports {
            m += "  (global $terminated i32 (i32.const 1048576))\n";
            m += "  (export \"__instance_terminated\" (global $terminated))\n";
            m += "  (global $abort_handler i32 (i32.const 1048580))\n";
            m += "  (export \"__abort_handler\" (global $abort_handler))\n";
        }
        m += "  (func $leaf (export \"leaf\") (param i32) local.get 0 call $js_parse)\n";
        if self.rust_tag != RustTag::Absent {
            m += "  (func $panic (export \"panic\") i32.const 8 throw $rust)\n";
        }
        if self.exnref_code {
            // What rustc emits for a landing pad: catch everything by reference, clean up, rethrow.
            m += r#"  (func $unwind_exnref (export "run") (param i32)
    block $pad (result exnref)
      try_table (catch_all_ref $pad)
        local.get 0
        call $leaf
      end
      return
    end
    throw_ref)
"#;
        }
        if self.legacy_code {
            m += r#"  (func $unwind_legacy (export "run_legacy") (param i32)
    try
      local.get 0
      call $leaf
    catch_all
      rethrow 0
    end
    try
      try
        local.get 0
        call $leaf
      delegate 0
    catch 0
      drop
    end)
"#;
        }
        if self.wrappers {
            if self.legacy_code {
                m += r#"  (func $wrap_parse (param i32)
    try
      local.get 0
      call $js_parse
    catch $jstag
      drop
    end)
"#;
            } else {
                m += r#"  (func $wrap_parse (param i32)
    block $caught (result externref)
      try_table (catch $jstag $caught)
        local.get 0
        call $js_parse
      end
      return
    end
    drop)
"#;
            }
        }
        m += self.extra;
        if let Some(version) = self.wasm_bindgen {
            m += &format!(
                "  (@producers (processed-by \"rustc\" \"1.101.0-nightly\") (processed-by \"walrus\" \"0.27.3\") (processed-by \"wasm-bindgen\" \"{version}\"))\n"
            );
        }
        if let Some(features) = &self.target_features {
            m += &format!(
                "  (@custom \"target_features\" \"{}\")\n",
                target_features_bytes(features)
            );
        }
        m += ")\n";
        m
    }

    fn wasm(&self) -> Vec<u8> {
        let wat = self.wat();
        wat::parse_str(&wat).unwrap_or_else(|e| panic!("fixture does not assemble: {e}\n{wat}"))
    }
}

/// The `target_features` section LLVM writes: a count, then `+` and a length-prefixed name each,
/// as a wat string of `\hh` escapes.
fn target_features_bytes(features: &[&str]) -> String {
    let mut bytes = vec![features.len() as u8];
    for f in features {
        bytes.push(b'+');
        bytes.push(f.len() as u8);
        bytes.extend_from_slice(f.as_bytes());
    }
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

fn opts(expect: Option<Expect>, eh: Option<EhEncoding>, runtime: TargetRuntime) -> CheckOptions {
    CheckOptions {
        expect,
        eh,
        runtime,
    }
}

fn check_with(fixture: &Fixture, options: CheckOptions) -> ModuleReport {
    check::check_module("fixture.wasm", &fixture.wasm(), None, &options)
}

fn check_unwind(fixture: &Fixture) -> ModuleReport {
    check_with(
        fixture,
        opts(Some(Expect::Unwind), None, TargetRuntime::Workerd),
    )
}

fn status(report: &ModuleReport, id: CheckId) -> Status {
    report
        .check(id)
        .unwrap_or_else(|| panic!("no {} check in {report:#?}", id.as_str()))
        .status
}

fn cause(report: &ModuleReport, id: CheckId) -> String {
    report
        .check(id)
        .and_then(|c| c.cause.clone())
        .unwrap_or_default()
}

fn fix(report: &ModuleReport, id: CheckId) -> String {
    report
        .check(id)
        .and_then(|c| c.fix.clone())
        .unwrap_or_default()
}

#[test]
fn no_eh_module_is_an_abort_build() {
    let fixture = Fixture {
        wrappers: false,
        ..Fixture::abort()
    };
    let report = check_unwind(&fixture);
    assert_eq!(report.encoding, Some(Encoding::None));
    assert_eq!(report.unwinds, Some(false));
    assert_eq!(status(&report, CheckId::Unwinding), Status::Fail);
    assert!(
        cause(&report, CheckId::Unwinding).contains("no exception-handling instructions"),
        "{report:#?}"
    );
    assert_eq!(
        fix(&report, CheckId::Unwinding),
        "cargo worker-build --unwind"
    );
    // Without wasm-bindgen's jstag import no call is guarded: aborts go unnoticed.
    assert_eq!(status(&report, CheckId::Recovery), Status::Fail);
    assert!(!report.passed());

    let as_abort = check_with(
        &fixture,
        opts(Some(Expect::Abort), None, TargetRuntime::Workerd),
    );
    assert_eq!(status(&as_abort, CheckId::Unwinding), Status::Pass);
    assert!(fix(&as_abort, CheckId::Recovery).contains("--force-enable-abort-handler"));
}

#[test]
fn legacy_only_module_unwinds_and_loads_everywhere() {
    let fixture = Fixture::unwind_legacy();
    let report = check_unwind(&fixture);
    assert_eq!(report.encoding, Some(Encoding::Legacy));
    let eh = report.facts.as_ref().unwrap().eh;
    // run_legacy: 3 try, 1 catch_all, 1 rethrow, 1 delegate, 1 catch; the wrapper: 1 try, 1 catch.
    assert_eq!(
        (eh.try_, eh.catch, eh.catch_all, eh.rethrow, eh.delegate),
        (4, 2, 1, 1, 1)
    );
    assert_eq!((eh.try_table, eh.throw_ref, eh.throw), (0, 0, 1));
    assert_eq!(report.facts.as_ref().unwrap().rust_tag_throws, 1);
    assert!(report.passed(), "{report:#?}");
    for runtime in [
        TargetRuntime::Workerd,
        TargetRuntime::Node20,
        TargetRuntime::Node22,
        TargetRuntime::Node24,
    ] {
        let report = check_with(
            &fixture,
            opts(Some(Expect::Unwind), Some(EhEncoding::Legacy), runtime),
        );
        assert!(report.passed(), "{runtime:?}: {report:#?}");
        assert!(report
            .load
            .as_ref()
            .unwrap()
            .features
            .names()
            .contains(&"legacy-exceptions"));
    }
}

#[test]
fn exnref_only_module_unwinds_but_not_on_node20() {
    let fixture = Fixture::unwind_exnref();
    let report = check_unwind(&fixture);
    assert_eq!(report.encoding, Some(Encoding::Exnref));
    let eh = report.facts.as_ref().unwrap().eh;
    assert_eq!(
        (eh.try_table, eh.throw_ref, eh.throw, eh.legacy()),
        (2, 1, 1, 0)
    );
    assert!(report.passed(), "{report:#?}");
    for runtime in [TargetRuntime::Node22, TargetRuntime::Node24] {
        assert!(check_with(&fixture, opts(None, None, runtime)).passed());
    }

    let node20 = check_with(
        &fixture,
        opts(Some(Expect::Unwind), None, TargetRuntime::Node20),
    );
    assert_eq!(status(&node20, CheckId::Load), Status::Fail);
    assert_eq!(
        node20.load.as_ref().unwrap().unsupported.names(),
        ["exnref"]
    );
    assert!(cause(&node20, CheckId::Load).contains("node20 lacks exnref"));
    assert!(fix(&node20, CheckId::Load).contains("--eh legacy"));
    // Everything else about the module is fine.
    assert!(node20
        .checks
        .iter()
        .filter(|c| c.id != CheckId::Load)
        .all(|c| c.status == Status::Pass));
}

#[test]
fn mixed_module_fails_the_encoding_and_loads_nowhere() {
    let fixture = Fixture {
        legacy_code: true,
        exnref_code: true,
        ..Fixture::unwind_exnref()
    };
    for runtime in [
        TargetRuntime::Workerd,
        TargetRuntime::Node20,
        TargetRuntime::Node22,
        TargetRuntime::Node24,
    ] {
        let report = check_with(&fixture, opts(Some(Expect::Unwind), None, runtime));
        assert_eq!(report.encoding, Some(Encoding::Mixed));
        assert_eq!(status(&report, CheckId::EhEncoding), Status::Fail);
        assert_eq!(status(&report, CheckId::Load), Status::Fail, "{runtime:?}");
        assert!(!report.load.as_ref().unwrap().loads);
        assert!(cause(&report, CheckId::Load).contains("mix"), "{runtime:?}");
        // wasmparser itself accepts the module: only the opcode counts reveal the mix.
        assert_eq!(report.load.as_ref().unwrap().validation_error, None);
    }
    let report = check_unwind(&fixture);
    let summary = &report.check(CheckId::EhEncoding).unwrap().summary;
    assert!(summary.starts_with("mixed: legacy"), "{summary}");
    assert!(
        summary.ends_with("exnref 2 (try_table 1, throw_ref 1)"),
        "{summary}"
    );
}

#[test]
fn imported_rust_tag_is_not_unwinding() {
    // rustc before wasm-bindgen processed the module imported `env.__cpp_exception`.
    let fixture = Fixture {
        rust_tag: RustTag::Imported,
        ..Fixture::unwind_exnref()
    };
    let report = check_unwind(&fixture);
    assert_eq!(report.unwinds, Some(false));
    assert_eq!(status(&report, CheckId::Unwinding), Status::Fail);
    assert!(
        cause(&report, CheckId::Unwinding).contains("imported from env.__cpp_exception"),
        "{report:#?}"
    );
    assert!(fix(&report, CheckId::Unwinding).contains("wasm-bindgen"));
}

#[test]
fn wasm_bindgen_wrappers_without_a_local_tag_are_not_unwinding() {
    // A panic=abort build with --force-enable-abort-handler: try_table wrappers, no Rust tag.
    let fixture = Fixture::abort();
    let report = check_unwind(&fixture);
    assert_eq!(report.encoding, Some(Encoding::Exnref));
    assert_eq!(report.facts.as_ref().unwrap().eh.try_table, 1);
    assert_eq!(report.unwinds, Some(false));
    assert_eq!(status(&report, CheckId::Unwinding), Status::Fail);
    assert!(
        cause(&report, CheckId::Unwinding).contains("catch wrappers"),
        "{report:#?}"
    );
    assert_eq!(
        fix(&report, CheckId::Unwinding),
        "cargo worker-build --unwind"
    );

    let as_abort = check_with(
        &fixture,
        opts(Some(Expect::Abort), None, TargetRuntime::Workerd),
    );
    assert!(as_abort.passed(), "{as_abort:#?}");

    // Neither the exception-handling target feature (which panic=abort code may be compiled
    // with) nor a missing target_features section turns wrappers into unwinding.
    let mut with_feature = RUSTC_FEATURES.to_vec();
    with_feature.push("exception-handling");
    for target_features in [Some(with_feature), None] {
        let fixture = Fixture {
            target_features,
            ..Fixture::abort()
        };
        let report = check_unwind(&fixture);
        assert_eq!(report.unwinds, Some(false), "{report:#?}");
        assert!(cause(&report, CheckId::Unwinding).contains("catch wrappers"));
    }
}

#[test]
fn unwinding_module_fails_an_abort_expectation() {
    let report = check_with(
        &Fixture::unwind_exnref(),
        opts(Some(Expect::Abort), None, TargetRuntime::Workerd),
    );
    assert_eq!(status(&report, CheckId::Unwinding), Status::Fail);
    assert!(fix(&report, CheckId::Unwinding).contains("--expect unwind"));
}

#[test]
fn target_features_without_exception_handling_veto_unwinding() {
    let with_section = Fixture {
        target_features: Some(RUSTC_FEATURES.to_vec()),
        ..Fixture::unwind_exnref()
    };
    let report = check_unwind(&with_section);
    assert_eq!(report.unwinds, Some(false));
    assert!(cause(&report, CheckId::Unwinding).contains("target_features lacks exception-handling"));

    // wasm-opt and other tools may drop the section: then the tag alone decides.
    let without_section = Fixture {
        target_features: None,
        ..Fixture::unwind_exnref()
    };
    let report = check_unwind(&without_section);
    assert_eq!(report.unwinds, Some(true));
    assert!(report
        .check(CheckId::Unwinding)
        .unwrap()
        .summary
        .contains("no target_features section"));
}

#[test]
fn missing_recovery_exports_fail_the_recovery_check() {
    let report = check_unwind(&Fixture {
        recovery_exports: false,
        ..Fixture::unwind_exnref()
    });
    assert_eq!(status(&report, CheckId::Recovery), Status::Fail);
    let why = cause(&report, CheckId::Recovery);
    assert!(
        why.contains("__instance_terminated and __abort_handler not exported"),
        "{why}"
    );

    let no_detection = check_unwind(&Fixture {
        wrappers: false,
        ..Fixture::unwind_exnref()
    });
    assert_eq!(status(&no_detection, CheckId::Recovery), Status::Fail);
    assert!(cause(&no_detection, CheckId::Recovery).contains("__wbindgen_jstag"));

    // Exported under the right name but as a function is not the flag the glue reads.
    let wrong_kind = Fixture {
        recovery_exports: false,
        extra: "  (func $t) (export \"__instance_terminated\" (func $t))\n  (global $a i32 (i32.const 4)) (export \"__abort_handler\" (global $a))\n",
        ..Fixture::unwind_exnref()
    };
    let report = check_unwind(&wrong_kind);
    assert_eq!(status(&report, CheckId::Recovery), Status::Fail);
    assert!(cause(&report, CheckId::Recovery).starts_with("__instance_terminated not exported"));
}

#[test]
fn wasm_bindgen_version_is_checked_against_the_minimum() {
    let old = check_unwind(&Fixture {
        wasm_bindgen: Some("0.2.126"),
        ..Fixture::unwind_exnref()
    });
    assert_eq!(status(&old, CheckId::WasmBindgen), Status::Fail);
    assert!(fix(&old, CheckId::WasmBindgen).contains("wasm-bindgen = \"=0.2.130\""));
    // The same version is new enough for a panic=abort build.
    let abort = check_with(
        &Fixture {
            wasm_bindgen: Some("0.2.126"),
            ..Fixture::abort()
        },
        opts(Some(Expect::Abort), None, TargetRuntime::Workerd),
    );
    assert_eq!(status(&abort, CheckId::WasmBindgen), Status::Pass);

    // Stripped producers but wasm-bindgen's imports present: a warning, not a failure.
    let stripped = check_unwind(&Fixture {
        wasm_bindgen: None,
        ..Fixture::unwind_exnref()
    });
    assert_eq!(status(&stripped, CheckId::WasmBindgen), Status::Warn);
    assert!(stripped.passed());
    // Never touched by wasm-bindgen at all.
    let raw = check_unwind(&Fixture {
        wasm_bindgen: None,
        wrappers: false,
        ..Fixture::unwind_exnref()
    });
    assert_eq!(status(&raw, CheckId::WasmBindgen), Status::Fail);
}

#[test]
fn required_encoding_must_match() {
    let report = check_with(
        &Fixture::unwind_exnref(),
        opts(
            Some(Expect::Unwind),
            Some(EhEncoding::Legacy),
            TargetRuntime::Workerd,
        ),
    );
    assert_eq!(status(&report, CheckId::EhEncoding), Status::Fail);
    assert_eq!(
        fix(&report, CheckId::EhEncoding),
        "cargo worker-build --unwind --eh legacy"
    );
    assert!(cause(&report, CheckId::EhEncoding).contains("required by --eh"));
    let report = check_with(
        &Fixture::unwind_legacy(),
        opts(
            Some(Expect::Unwind),
            Some(EhEncoding::Legacy),
            TargetRuntime::Workerd,
        ),
    );
    assert_eq!(status(&report, CheckId::EhEncoding), Status::Pass);
}

#[test]
fn features_a_runtime_lacks_fail_the_load_check_with_the_runtime_to_use() {
    // A 64-bit memory: Node 24 and workerd load it, Node 22 does not.
    let fixture = Fixture {
        extra: "  (memory $big i64 1)\n",
        ..Fixture::unwind_exnref()
    };
    let node22 = check_with(
        &fixture,
        opts(Some(Expect::Unwind), None, TargetRuntime::Node22),
    );
    assert_eq!(status(&node22, CheckId::Load), Status::Fail);
    assert!(node22
        .load
        .as_ref()
        .unwrap()
        .unsupported
        .names()
        .contains(&"memory64"));
    assert!(
        fix(&node22, CheckId::Load).contains("--runtime node24"),
        "{}",
        fix(&node22, CheckId::Load)
    );
    assert!(check_with(
        &fixture,
        opts(Some(Expect::Unwind), None, TargetRuntime::Workerd)
    )
    .passed());

    // GC types: not in Node 20.
    let gc = Fixture {
        extra: "  (type $pair (struct (field i32) (field i32)))\n",
        ..Fixture::unwind_legacy()
    };
    let node20 = check_with(&gc, opts(Some(Expect::Unwind), None, TargetRuntime::Node20));
    assert_eq!(node20.load.as_ref().unwrap().unsupported.names(), ["gc"]);
    assert!(node20.load.as_ref().unwrap().validation_error.is_some());
}

#[test]
fn a_decodable_but_invalid_module_does_not_load() {
    // Type error: an i64 where the function returns i32. Decodes fine, validates nowhere.
    let fixture = Fixture {
        extra: "  (func (result i32) i64.const 1)\n",
        ..Fixture::unwind_exnref()
    };
    let report = check_unwind(&fixture);
    assert!(report.error.is_none());
    assert_eq!(status(&report, CheckId::Load), Status::Fail);
    assert!(report.load.as_ref().unwrap().invalid_everywhere);
    assert!(
        cause(&report, CheckId::Load).starts_with("not valid WebAssembly: type mismatch"),
        "{}",
        cause(&report, CheckId::Load)
    );
}

#[test]
fn corrupt_input_is_an_error_not_a_panic() {
    let good = Fixture::unwind_exnref().wasm();
    let mut inputs: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("bad magic", b"\0asn\x01\0\0\0".to_vec()),
        ("text", b"(module)".to_vec()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("header only, wrong version", b"\0asm\x02\0\0\0".to_vec()),
        ("component", b"\0asm\x0d\0\x01\0".to_vec()),
        // A type section claiming four billion entries in two bytes.
        (
            "huge count",
            b"\0asm\x01\0\0\0\x01\x05\xff\xff\xff\xff\x0f".to_vec(),
        ),
    ];
    let mut flipped = good.clone();
    flipped[9] ^= 0xff;
    inputs.push(("flipped section size", flipped));
    for (what, bytes) in inputs {
        let report = check::check_module(what, &bytes, None, &CheckOptions::default());
        let error = report
            .error
            .as_ref()
            .unwrap_or_else(|| panic!("{what}: no error in {report:#?}"));
        assert!(!error.message.is_empty(), "{what}");
        assert_eq!(status(&report, CheckId::Decode), Status::Fail, "{what}");
        assert!(!report.passed());
        assert!(report.facts.is_none() && report.load.is_none());
    }
}

#[test]
fn human_table_puts_failures_first_with_cause_and_fix() {
    let report = check::Report {
        modules: vec![check_unwind(&Fixture::abort())],
        errors: Vec::new(),
    };
    let mut out = Vec::new();
    report.render_human(&mut out, false).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        !text.contains('\x1b'),
        "no colour codes when colour is off:\n{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("FAIL  fixture.wasm  expect unwind (option), runtime workerd"),
        "{text}"
    );
    assert!(
        lines[1].trim_start().starts_with("FAIL  unwinding"),
        "{text}"
    );
    assert!(lines[2].trim_start().starts_with("cause: "), "{text}");
    assert!(
        lines[3]
            .trim_start()
            .starts_with("fix:   cargo worker-build --unwind"),
        "{text}"
    );
    let first_ok = lines
        .iter()
        .position(|l| l.trim_start().starts_with("ok "))
        .unwrap();
    let last_fail = lines
        .iter()
        .rposition(|l| l.trim_start().starts_with("FAIL  "))
        .unwrap();
    assert!(last_fail < first_ok, "failures before passes:\n{text}");
    assert!(
        text.ends_with("check-eh: FAILED (1 module, 1 failed)\n"),
        "{text}"
    );

    let mut colored = Vec::new();
    report.render_human(&mut colored, true).unwrap();
    assert!(String::from_utf8(colored).unwrap().contains("\x1b["));
}

#[test]
fn malformed_custom_sections_are_ignored_like_engines_do() {
    // A producers section with an invalid field name, and a truncated target_features section.
    let fixture = Fixture {
        wasm_bindgen: None,
        target_features: None,
        extra: "  (@custom \"producers\" \"\\01\\04proc\\00\")\n  (@custom \"target_features\" \"\\05\\2b\")\n",
        ..Fixture::unwind_exnref()
    };
    let report = check_unwind(&fixture);
    assert!(report.error.is_none(), "{report:#?}");
    let facts = report.facts.as_ref().unwrap();
    assert_eq!(
        facts.malformed_custom_sections.len(),
        2,
        "{:?}",
        facts.malformed_custom_sections
    );
    assert_eq!(facts.target_features, None);
    assert_eq!(status(&report, CheckId::WasmBindgen), Status::Warn);
    assert!(cause(&report, CheckId::WasmBindgen).contains("producers section is malformed"));
    assert_eq!(report.unwinds, Some(true));
}
