//! `cargo worker-build check` and `--check-eh` on real bundles built from the fixture crates, and
//! a cross-check of the "loads" verdict against what workerd actually does with each bundle.
//!
//! Bundles: the plain fixture built as panic=abort (the default), `--unwind` (exnref) and
//! `--unwind --eh legacy`, plus a mixed-encoding bundle made from the exnref one by appending a
//! function with a legacy `try` (what linking in an object built for the other encoding gives).
//! Each is built once per test binary, with `--no-opt`: the checks are about exception
//! handling, not optimisation (tests/it/opt.rs and e2e_build cover optimised bundles). Needs `npm ci` (workerd) and the toolchains the tool
//! installs, like the other end-to-end tests.

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use crate::support::{build_command, Mode, BUILD_LOCK};

use serde_json::Value;
use tempfile::TempDir;

/// A bundle built from a private copy of the plain fixture; the copy lives as long as the test
/// binary (the `OnceLock`s below are never dropped, so the directories stay in /tmp: they are
/// small, and dropping would race the other tests still reading them).
struct Built {
    crate_dir: TempDir,
    out: PathBuf,
}

/// The build of the plain fixture in `crate_dir` these tests use, without wasm-opt.
fn plain_build(crate_dir: &Path, out: &Path, mode: Mode) -> Command {
    let mut cmd = build_command(crate_dir, out, mode);
    cmd.arg("--no-opt");
    cmd
}

fn build(mode: Mode) -> Built {
    let _serial = BUILD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let crate_dir = support::copy_fixture("plain");
    let out = crate_dir.path().join("build");
    let mut cmd = plain_build(crate_dir.path(), &out, mode);
    let started = Instant::now();
    support::run_ok(&mut cmd);
    eprintln!("built plain ({mode:?}) in {:.1?}", started.elapsed());
    Built { crate_dir, out }
}

fn bundle(mode: Mode) -> &'static Built {
    static ABORT: OnceLock<Built> = OnceLock::new();
    static UNWIND: OnceLock<Built> = OnceLock::new();
    static LEGACY: OnceLock<Built> = OnceLock::new();
    let cell = match mode {
        Mode::Abort => &ABORT,
        Mode::Unwind => &UNWIND,
        Mode::UnwindLegacy => &LEGACY,
    };
    cell.get_or_init(|| build(mode))
}

/// The exnref bundle with a legacy-EH function appended: a copy in its own directory.
fn mixed_bundle() -> &'static Path {
    static MIXED: OnceLock<(TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = MIXED.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("cwb-mixed-")
            .tempdir()
            .unwrap();
        let out = dir.path().join("build");
        support::copy_tree(&bundle(Mode::Unwind).out, &out, &|_| false);
        let wasm = out.join("index_bg.wasm");
        fs::write(&wasm, append_legacy_try_function(&fs::read(&wasm).unwrap())).unwrap();
        (dir, out)
    });
    path
}

fn read_leb(bytes: &[u8], pos: &mut usize) -> u32 {
    let (mut value, mut shift) = (0u32, 0);
    loop {
        let byte = bytes[*pos];
        *pos += 1;
        value |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return value;
        }
        shift += 7;
    }
}

fn write_leb(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Appends `try nop catch_all end unreachable` as a new function, with the type of the first
/// defined function (`unreachable` satisfies any result type). Other indices do not move, so the
/// rest of the module, its name section and the glue stay valid.
fn append_legacy_try_function(wasm: &[u8]) -> Vec<u8> {
    let mut out = wasm[..8].to_vec();
    let mut pos = 8;
    let mut first_type = None;
    while pos < wasm.len() {
        let id = wasm[pos];
        pos += 1;
        let size = read_leb(wasm, &mut pos) as usize;
        let payload = &wasm[pos..pos + size];
        pos += size;
        let payload = match id {
            3 | 10 => {
                let mut p = 0;
                let count = read_leb(payload, &mut p);
                let mut body = Vec::new();
                write_leb(&mut body, count + 1);
                body.extend_from_slice(&payload[p..]);
                if id == 3 {
                    let mut q = p;
                    let ty = read_leb(payload, &mut q);
                    first_type = Some(ty);
                    write_leb(&mut body, ty);
                } else {
                    assert!(first_type.is_some(), "code section before function section");
                    let code = [0x00, 0x06, 0x40, 0x01, 0x19, 0x0b, 0x00, 0x0b];
                    write_leb(&mut body, code.len() as u32);
                    body.extend_from_slice(&code);
                }
                body
            }
            _ => payload.to_vec(),
        };
        out.push(id);
        write_leb(&mut out, payload.len() as u32);
        out.extend_from_slice(&payload);
    }
    out
}

/// Runs `cargo-worker-build check ARGS --message-format json` and returns the exit code and the
/// report.
fn check_json(args: &[&str]) -> (i32, Value) {
    let mut cmd = support::tool();
    cmd.arg("check")
        .args(args)
        .args(["--message-format", "json"]);
    let output = support::run(&mut cmd);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "not one JSON report ({e}): {}",
            support::describe_output(&cmd, &output)
        )
    });
    (output.status.code().unwrap_or(-1), report)
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

fn module(report: &Value) -> &Value {
    &report["modules"][0]
}

fn check_of<'a>(report: &'a Value, id: &str) -> &'a Value {
    module(report)["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no {id} check in {report:#}"))
}

#[test]
fn unwind_exnref_bundle_passes_in_workerd_but_not_for_node20() {
    let out = &bundle(Mode::Unwind).out;
    let (code, report) = check_json(&[path_str(out)]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(module(&report)["eh"]["encoding"], "exnref");
    assert_eq!(module(&report)["unwinding"]["unwinds"], true);
    assert_eq!(module(&report)["expect_source"], "manifest");
    assert_eq!(
        module(&report)["bundle_wiring"]["runtime_before_glue"],
        true
    );

    let (code, report) = check_json(&[path_str(out), "--runtime", "node20"]);
    assert_eq!(code, 1, "{report:#}");
    let load = check_of(&report, "load");
    assert_eq!(load["status"], "fail");
    assert_eq!(load["cause"], "node20 lacks exnref");
    assert!(
        load["fix"].as_str().unwrap().contains("--eh legacy"),
        "{load:#}"
    );
}

#[test]
fn unwind_legacy_bundle_passes_in_workerd_and_node20() {
    let out = &bundle(Mode::UnwindLegacy).out;
    for runtime in ["workerd", "node20", "node24"] {
        let (code, report) = check_json(&[path_str(out), "--runtime", runtime]);
        assert_eq!(code, 0, "{runtime}: {report:#}");
        assert_eq!(module(&report)["eh"]["encoding"], "legacy");
        assert_eq!(module(&report)["eh_required"], "legacy");
    }
}

#[test]
fn abort_bundle_fails_expect_unwind_with_the_reason() {
    let out = &bundle(Mode::Abort).out;
    // What the build recorded (abort) passes.
    let (code, report) = check_json(&[path_str(out)]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(module(&report)["recovery"]["abort_detection"], true);

    let (code, report) = check_json(&[path_str(out), "--expect", "unwind"]);
    assert_eq!(code, 1, "{report:#}");
    let unwinding = check_of(&report, "unwinding");
    assert_eq!(unwinding["status"], "fail");
    // wasm-bindgen's abort handler wraps imports in try_table: that must not count.
    assert!(
        module(&report)["eh"]["counts"]["try_table"]
            .as_u64()
            .unwrap()
            > 0,
        "{report:#}"
    );
    assert!(
        unwinding["cause"]
            .as_str()
            .unwrap()
            .contains("catch wrappers"),
        "{unwinding:#}"
    );
    assert_eq!(unwinding["fix"], "cargo worker-build --unwind");

    // The human report leads with that failure.
    let mut cmd = support::tool();
    cmd.args([
        "check",
        path_str(out),
        "--expect",
        "unwind",
        "--color",
        "never",
    ]);
    let output = support::run(&mut cmd);
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stdout);
    let second = text.lines().nth(1).unwrap_or_default();
    assert!(second.trim_start().starts_with("FAIL  unwinding"), "{text}");
    assert!(
        text.contains("fix:   cargo worker-build --unwind"),
        "{text}"
    );
}

#[test]
fn mixed_bundle_fails_everywhere() {
    let (code, report) = check_json(&[path_str(mixed_bundle())]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(module(&report)["eh"]["encoding"], "mixed");
    assert_eq!(check_of(&report, "eh-encoding")["status"], "fail");
    assert_eq!(module(&report)["load"]["loads"], false);
}

#[test]
fn check_eh_after_a_build_uses_the_build_expectations() {
    let built = bundle(Mode::Unwind);
    // Even an up-to-date build runs cargo, which re-links the shared target dir's artifact that
    // another build may be about to hand to wasm-bindgen: hold the build lock.
    let _serial = BUILD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    // Up to date, so this only checks.
    let mut cmd = plain_build(built.crate_dir.path(), &built.out, Mode::Unwind);
    cmd.arg("--check-eh");
    let output = support::run_ok(&mut cmd);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("check-eh: passed"),
        "{}",
        support::describe_output(&cmd, &output)
    );

    // Asking the check for the other encoding fails it, with the flag to use.
    let mut cmd = plain_build(built.crate_dir.path(), &built.out, Mode::Unwind);
    cmd.args(["--check-eh", "--runtime", "node20"]);
    let output = support::run(&mut cmd);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        support::describe_output(&cmd, &output)
    );
}

/// What workerd did with a bundle.
#[derive(Debug)]
enum Served {
    /// It served `GET /` with this status.
    Answered(u16),
    /// It exited, or answered 5xx, having logged this.
    Refused(String),
}

/// Serves `bundle` in `workerd serve` on loopback and reports whether it loads.
fn serve_once(bundle: &Path) -> Served {
    let server = match support::Workerd::try_serve(bundle) {
        Ok(server) => server,
        Err(why) => return Served::Refused(why),
    };
    // The server is stopped (by its PID) when it is dropped, answered or not.
    match support::try_http(server.port(), "GET", "/", support::HTTP_TIMEOUT) {
        Ok((status, _)) if status < 500 => Served::Answered(status),
        Ok((status, body)) => {
            Served::Refused(format!("{status} {body}\n{}", server.log_contents()))
        }
        Err(why) => Served::Refused(format!("{why}\n{}", server.log_contents())),
    }
}

#[test]
fn loads_verdict_agrees_with_workerd() {
    let bundles: Vec<(&str, &Path)> = vec![
        ("abort", &bundle(Mode::Abort).out),
        ("unwind exnref", &bundle(Mode::Unwind).out),
        ("unwind legacy", &bundle(Mode::UnwindLegacy).out),
        ("mixed", mixed_bundle()),
    ];
    for (what, dir) in bundles {
        let (_, report) = check_json(&[path_str(dir), "--runtime", "workerd"]);
        let loads = module(&report)["load"]["loads"].as_bool().unwrap();
        let served = serve_once(dir);
        eprintln!("{what}: check says loads={loads}, workerd: {served:?}");
        match (&served, loads) {
            (Served::Answered(200), true) => {}
            (Served::Refused(log), false) => {
                assert!(
                    log.contains("mix of legacy and new exception handling"),
                    "{what}: workerd refused for another reason:\n{log}"
                );
            }
            _ => panic!("{what}: the check says loads={loads} but workerd did {served:?}"),
        }
    }
}

/// Compiles a module with Node.js 20 (legacy EH only; installed into .tools/node20 by
/// ./install.sh, whatever Node the machine has) and returns `Err(message)` when it refuses.
fn node20_compiles(wasm: &Path) -> Result<(), String> {
    let node = support::repo_root().join(".tools/node20/node_modules/node/bin/node");
    let version = Command::new(&node)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "no Node.js 20 at {} ({e}): run ./install.sh",
                node.display()
            )
        });
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    assert!(
        version.starts_with("v20."),
        "this cross-check needs Node.js 20 at {}, found {version}: run ./install.sh",
        node.display()
    );
    let script = "try { new WebAssembly.Module(require('fs').readFileSync(process.argv[1])); console.log('ok'); } \
                  catch (e) { console.log(e.message); }";
    let output = Command::new(&node)
        .args(["-e", script])
        .arg(wasm)
        .output()
        .expect("cannot run node");
    let said = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if said == "ok" {
        Ok(())
    } else {
        Err(said)
    }
}

#[test]
fn node20_verdict_agrees_with_node20() {
    let bundles: Vec<(&str, &Path)> = vec![
        ("abort", &bundle(Mode::Abort).out),
        ("unwind exnref", &bundle(Mode::Unwind).out),
        ("unwind legacy", &bundle(Mode::UnwindLegacy).out),
        ("mixed", mixed_bundle()),
    ];
    let mut refused = 0;
    for (what, dir) in bundles {
        let (_, report) = check_json(&[path_str(dir), "--runtime", "node20"]);
        let loads = module(&report)["load"]["loads"].as_bool().unwrap();
        let compiled = node20_compiles(&dir.join("index_bg.wasm"));
        eprintln!("{what}: check says loads={loads}, node 20: {compiled:?}");
        assert_eq!(
            loads,
            compiled.is_ok(),
            "{what}: check and Node 20 disagree ({compiled:?})"
        );
        refused += usize::from(compiled.is_err());
    }
    // Both verdicts occur, so the agreement means something.
    assert!(refused > 0 && refused < 4, "{refused} of 4 refused");
}
