//! Symbolized faults (issue 14): the symbols fixture built `--release --unwind` with wasm-opt,
//! served in workerd on 127.0.0.1; its trap's and panic's frames, as workerd logs them, go
//! through `cargo worker-build symbolize` and come back naming the Rust functions.

use crate::support;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::support::{fixture, fixtures_target_dir, run, run_ok, tool, Workerd};

fn release_bundle() -> std::path::PathBuf {
    unwind_bundle("release")
}

/// The symbols fixture built with `--unwind` and `--<profile>` (`release` or `dev`), into a
/// bundle directory of that profile under the shared target dir.
fn unwind_bundle(profile: &str) -> std::path::PathBuf {
    let out = fixtures_target_dir()
        .join("symbols-bundles")
        .join(format!("{profile}-unwind"));
    run_ok(
        tool()
            .args(["--unwind", &format!("--{profile}"), "--manifest-path"])
            .arg(fixture("symbols").join("Cargo.toml"))
            .arg("--target-dir")
            .arg(fixtures_target_dir())
            .arg("--out-dir")
            .arg(&out),
    );
    out
}

fn symbolize(bundle: &Path, log: &str) -> std::process::Output {
    let mut child = tool()
        .args(["symbolize", "--out-dir"])
        .arg(bundle)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run the tool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(log.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_release_trap_in_workerd_is_named_after_symbolize() {
    let bundle = release_bundle();
    let server = Workerd::serve(&bundle);
    let (status, _) = server.get("/trap");
    assert_eq!(status, 500);
    server.wait_for_log("wasm-function[", Duration::from_secs(10));
    let log = server.log_contents();
    let out = symbolize(&bundle, &log);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // workerd printed the trap's frame without a name: the module ships without names.
    let raw_frame = log
        .lines()
        .find(|l| l.contains("wasm-function["))
        .expect("a Wasm frame in the log");
    let map: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("index_bg.symbols.json")).unwrap())
            .unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join(".worker-build.json")).unwrap()).unwrap();
    assert_eq!(manifest["symbols"]["file"], "index_bg.symbols.json");
    assert_eq!(manifest["symbols"]["build_id"], map["build_id"]);
    let entry = std::fs::read_to_string(bundle.join("index.js")).unwrap();
    assert!(
        !entry.contains("symbols.json"),
        "the entry must not import the map (wrangler would upload it)"
    );
    let script = format!(
        "at wasm://wasm/{}:wasm-function[",
        map["v8_script_id"].as_str().unwrap()
    );
    assert!(
        raw_frame.trim().starts_with(&script),
        "{raw_frame} (expected {script})"
    );
    // After symbolize it names the trapping function with the line of the trap, and its
    // callers, though wasm-opt inlined them all into the export.
    let source = std::fs::read_to_string(fixture("symbols").join("src/lib.rs")).unwrap();
    let line_of = |needle: &str| 1 + source.lines().position(|l| l.contains(needle)).unwrap();
    let trap = format!(
        "fixture_symbols::trap_here (src/lib.rs:{}:",
        line_of("core::arch::wasm32::unreachable()")
    );
    let descend = format!(
        "fixture_symbols::descend (src/lib.rs:{}:",
        line_of("trap_here(depth + 3)")
    );
    // rustc inlined `fetch` into wasm-bindgen's export, so no function of the module carries
    // its full path and line tables give only its short name.
    let fetch = format!("at fetch (src/lib.rs:{}:", line_of("descend(query.len()"));
    let (t, d, f) = (text.find(&trap), text.find(&descend), text.find(&fetch));
    assert!(
        t.is_some() && d.is_some() && f.is_some(),
        "want {trap}, {descend}, {fetch} in order:\n{text}\nraw:\n{log}"
    );
    assert!(t < d && d < f, "frames out of order:\n{text}");
    assert!(
        !text.contains("wasm-function["),
        "every frame of this build is mapped:\n{text}"
    );
}

#[test]
fn a_release_panic_in_workerd_has_its_frames_mapped_after_symbolize() {
    let bundle = release_bundle();
    let server = Workerd::serve(&bundle);
    let (status, _) = server.get("/panic");
    assert_eq!(status, 500);
    server.wait_for_log("is not a digit", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    let log = server.log_contents();
    let out = symbolize(&bundle, &log);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // The stack of a PanicError is where wasm-bindgen catches the unwind, not the panic site
    // (that needs a panic hook): its frames name the handler's export in the fixture's file.
    assert!(log.contains("wasm-function["), "{log}");
    assert!(
        !text.contains("wasm-function[") || !text.contains("not symbolized"),
        "every Wasm frame of the panic is mapped:\n{text}"
    );
    assert!(
        text.contains("__wasm_bindgen_generated_fetch (src/lib.rs:"),
        "the handler's frame is named with its line:\n{text}"
    );
}

#[test]
fn symbolize_refuses_a_bundle_without_a_map_and_a_log_of_another_build() {
    let bundle = release_bundle();
    let dir = tempfile::tempdir().unwrap();
    support::copy_tree(&bundle, dir.path(), &|_| false);
    let log = "RuntimeError: unreachable\n    at wasm-function[99999]:0xffffff\n";
    let out = symbolize(dir.path(), log);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error[symbols-other-build]") && err.contains("wasm-function[99999]:0xffffff"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    // A module from another build next to the map.
    let wasm = dir.path().join("index_bg.wasm");
    let mut bytes = std::fs::read(&wasm).unwrap();
    bytes.extend_from_slice(&[0, 2, 1, b'x']);
    std::fs::write(&wasm, bytes).unwrap();
    let err = String::from_utf8_lossy(&symbolize(dir.path(), "").stderr).to_string();
    assert!(
        err.contains("error[symbols-other-build]") && err.contains("is for build"),
        "{err}"
    );

    std::fs::remove_file(dir.path().join("index_bg.symbols.json")).unwrap();
    let out = symbolize(dir.path(), "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("error[no-symbols]"),
        "{err}"
    );
    let _ = run;
}

fn symbols_check(bundle: &Path) -> serde_json::Value {
    let out = run(tool()
        .arg("check")
        .arg(bundle)
        .args(["--message-format", "json"]));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    report["modules"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "symbols")
        .cloned()
        .unwrap_or_else(|| panic!("no symbols check in {report}"))
}

#[test]
fn check_reports_whether_the_symbol_map_matches_the_module() {
    let bundle = release_bundle();
    let ok = symbols_check(&bundle);
    assert_eq!(ok["status"], "pass", "{ok}");
    assert!(
        ok["summary"].as_str().unwrap().contains("with lines"),
        "{ok}"
    );

    let dir = tempfile::tempdir().unwrap();
    support::copy_tree(&bundle, dir.path(), &|_| false);
    let wasm = dir.path().join("index_bg.wasm");
    let mut bytes = std::fs::read(&wasm).unwrap();
    bytes.extend_from_slice(&[0, 2, 1, b'x']);
    std::fs::write(&wasm, bytes).unwrap();
    let other = symbols_check(dir.path());
    assert_eq!(other["status"], "warn", "{other}");
    assert!(
        other["cause"]
            .as_str()
            .unwrap()
            .contains("index_bg.wasm is build"),
        "{other}"
    );
}

/// A dev build keeps the name section (and runs no wasm-opt): workerd's own log names the Rust
/// function of a trap, with no symbolize step.
#[test]
fn a_dev_trap_in_workerd_names_the_rust_function_without_symbolize() {
    let out = unwind_bundle("dev");
    let server = Workerd::serve(&out);
    let (status, _) = server.get("/trap");
    assert_eq!(status, 500);
    server.wait_for_log("wasm-function[", Duration::from_secs(10));
    let log = server.log_contents();
    let frames: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("wasm-function["))
        .collect();
    // V8 prints the names as the name section has them, crate disambiguators included:
    // `fixture_symbols[8f8c5c50931b0c0]::trap_here`.
    for name in ["trap_here", "descend", "fetch"] {
        assert!(
            frames
                .iter()
                .any(|f| f.contains("fixture_symbols") && f.contains(&format!("::{name} ("))),
            "workerd's log should name fixture_symbols::{name}:\n{log}"
        );
    }
}
