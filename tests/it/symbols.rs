//! Symbolized faults (issue 14): the symbols fixture built `--release --unwind` with wasm-opt,
//! served in workerd on 127.0.0.1; its trap's and panic's frames, as workerd logs them, go
//! through `cargo worker-build symbolize` and come back naming the Rust functions.

use crate::support;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::support::{fixture, fixtures_target_dir, run, run_ok, tool, Workerd, BUILD_LOCK};

fn release_bundle() -> std::path::PathBuf {
    unwind_bundle("release")
}

/// The symbols fixture built with `--unwind` and `--<profile>` (`release` or `dev`), into a
/// bundle directory of that profile under the shared target dir.
fn unwind_bundle(profile: &str) -> std::path::PathBuf {
    build("symbols", &format!("{profile}-unwind"), profile, &[])
}

/// `fixture` built `--release --unwind` plus `extra`, into its own bundle directory `name`.
fn bundle_with(fixture_name: &str, name: &str, extra: &[&str]) -> std::path::PathBuf {
    build(fixture_name, name, "release", extra)
}

/// `fixture` built `--unwind --<profile>` plus `extra`, into the bundle directory `name` under
/// the shared target dir.
fn build(fixture_name: &str, name: &str, profile: &str, extra: &[&str]) -> std::path::PathBuf {
    let out = fixtures_target_dir().join("symbols-bundles").join(name);
    let _serial = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    run_ok(
        tool()
            .args(["--unwind", &format!("--{profile}"), "--manifest-path"])
            .arg(fixture(fixture_name).join("Cargo.toml"))
            .args(extra)
            .arg("--target-dir")
            .arg(fixtures_target_dir())
            .arg("--out-dir")
            .arg(&out),
    );
    out
}

/// Serves `bundle` in workerd, requests `path` (which must fail with 500), waits for the record
/// starting with `head` and the frame lines after it, and returns workerd's log.
fn panic_log(bundle: &Path, path: &str, head: &str) -> String {
    let server = Workerd::serve(bundle);
    let (status, _) = server.get(path);
    assert_eq!(status, 500);
    server.wait_for_log(head, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    server.log_contents()
}

/// The bundle's build id, as its symbol map names it.
fn build_id(bundle: &Path) -> String {
    let map: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("index_bg.symbols.json")).unwrap())
            .unwrap();
    map["build_id"].as_str().unwrap().to_string()
}

/// The runtime's text record of a fault in `log`: its first line (the one starting with
/// `first`) and the frame lines right after it.
fn text_record<'a>(log: &'a str, first: &str) -> (&'a str, Vec<&'a str>) {
    let mut lines = log.lines().skip_while(|l| !l.starts_with(first));
    let head = lines
        .next()
        .unwrap_or_else(|| panic!("no record starting with {first:?} in:\n{log}"));
    let frames = lines.take_while(|l| l.starts_with("    at ")).collect();
    (head, frames)
}

/// The line of `needle` in the fixture's `src/lib.rs`.
fn line_of(fixture_name: &str, needle: &str) -> usize {
    let source = std::fs::read_to_string(fixture(fixture_name).join("src/lib.rs")).unwrap();
    1 + source.lines().position(|l| l.contains(needle)).unwrap()
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

/// `symbolize` of `log` that must succeed: its output.
fn symbolized(bundle: &Path, log: &str) -> String {
    let out = symbolize(bundle, log);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("symbolize writes UTF-8")
}

#[test]
fn a_release_trap_in_workerd_is_named_after_symbolize() {
    let bundle = release_bundle();
    let server = Workerd::serve(&bundle);
    let (status, _) = server.get("/trap");
    assert_eq!(status, 500);
    server.wait_for_log("wasm-function[", Duration::from_secs(10));
    let log = server.log_contents();
    let text = symbolized(&bundle, &log);
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

    // The runtime logged the trap as one record: kind, build id, then its frames; after
    // symbolize the record has the trap's line in the crate as its location.
    let id = build_id(&bundle);
    let head = "cargo-worker-build: Wasm instance aborted (trap: unreachable in fetch); re-initialised (re-initialisation #1)";
    let (raw_head, raw_frames) = text_record(&log, head);
    assert_eq!(raw_head, format!("{head} [unreachable, build {id}]"));
    assert!(
        !raw_frames.is_empty()
            && raw_frames
                .iter()
                .all(|f| f.starts_with(&format!("    {script}"))),
        "the record's frames are the trap's Wasm frames:\n{log}"
    );
    let (named_head, named_frames) = text_record(&text, head);
    assert_eq!(
        named_head,
        format!(
            "{head} [unreachable at src/lib.rs:{}:9, build {id}]",
            line_of("core::arch::wasm32::unreachable()")
        )
    );
    assert!(
        named_frames
            .iter()
            .any(|f| f.starts_with(&format!("    at {trap}"))),
        "{text}"
    );
}

/// A plain wasm-bindgen crate has no panic hook: the runtime's record of its panic has the
/// message and kind but no location, and its frames are where wasm-bindgen caught the panic.
#[test]
fn a_release_panic_in_workerd_is_one_record_whose_frames_symbolize_names() {
    let bundle = release_bundle();
    let id = build_id(&bundle);
    let head = "cargo-worker-build: fetch failed: PanicError: fixture-symbols: 'x' is not a digit (recovered; instance kept)";
    let log = panic_log(&bundle, "/panic", head);
    assert_eq!(
        log.lines()
            .filter(|l| l.starts_with("cargo-worker-build:"))
            .count(),
        1,
        "one record for one panic:\n{log}"
    );
    let (raw_head, raw_frames) = text_record(&log, head);
    assert_eq!(raw_head, format!("{head} [panic, build {id}]"));
    assert!(
        raw_frames.len() >= 2 && raw_frames.iter().all(|f| f.contains("wasm-function[")),
        "the record lists the PanicError's Wasm frames:\n{log}"
    );

    let text = symbolized(&bundle, &log);
    let (named_head, named) = text_record(&text, head);
    assert_eq!(
        named_head, raw_head,
        "a panic's record gets no location from its frames"
    );
    // Every frame is named: with file:line, or (wasm-bindgen's generated import shim, which has
    // no line) with its function name; none is left as it was.
    for frame in &named {
        assert!(
            !frame.contains("wasm://") && !frame.contains("not symbolized"),
            "{frame} is not named:\n{text}"
        );
    }
    assert_eq!(
        named.last().copied(),
        Some(
            format!(
                "    at __wasm_bindgen_generated_fetch (src/lib.rs:{}:1)",
                line_of("symbols", "#[wasm_bindgen]")
            )
            .as_str()
        ),
        "the last frame is the handler's export that caught the panic:\n{text}"
    );
}

/// With the one-line panic hook the book gives plain wasm-bindgen crates, the record of the same
/// panic has its Rust location, and after symbolize its frames name the panicking function two
/// calls below the handler, with its line, and its callers, though wasm-opt inlined them.
#[test]
fn a_hooked_release_panic_names_the_panicking_function_and_its_callers_after_symbolize() {
    let bundle = release_bundle();
    let id = build_id(&bundle);
    let head = "cargo-worker-build: fetch failed: PanicError: fixture-symbols: 'x' is not a digit (recovered; instance kept)";
    let log = panic_log(&bundle, "/panic-hooked", head);
    let source = std::fs::read_to_string(fixture("symbols").join("src/lib.rs")).unwrap();
    let panic_line = line_of("symbols", "None => panic!(");
    let panic_col = 1 + source
        .lines()
        .nth(panic_line - 1)
        .unwrap()
        .find("panic!(")
        .unwrap();
    let (raw_head, _) = text_record(&log, head);
    assert_eq!(
        raw_head,
        format!("{head} [panic at src/lib.rs:{panic_line}:{panic_col}, build {id}]")
    );
    let text = symbolized(&bundle, &log);
    let (_, named) = text_record(&text, head);
    let named = named.join("\n");
    let site = format!("fixture_symbols::parse_digit (src/lib.rs:{panic_line}:");
    let caller = format!(
        "fixture_symbols::checked_total (src/lib.rs:{}:",
        line_of("symbols", "input.chars().map(parse_digit)")
    );
    // The call in the `/panic-hooked` arm, two lines below its pattern.
    let handler = format!(
        "fetch (src/lib.rs:{}:",
        line_of("symbols", "\"/panic-hooked\" =>") + 2
    );
    let (p, c, h) = (named.find(&site), named.find(&caller), named.find(&handler));
    assert!(
        p.is_some() && c.is_some() && h.is_some(),
        "want {site}, {caller}, {handler} in the record's frames:\n{named}\nraw:\n{log}"
    );
    assert!(p < c && c < h, "frames out of order:\n{named}");
}

/// The workers-rs crate's panic hook prints `panicked at src/lib.rs:22:5` and a stack taken at
/// the panic site: the record carries that location, and its frames, symbolized, name the
/// panicking handler with its line.
#[test]
fn a_hooked_panic_record_has_the_rust_location_and_the_panic_site() {
    let bundle = bundle_with("workers-rs", "workers-rs-release-unwind", &[]);
    let id = build_id(&bundle);
    let head = "cargo-worker-build: fetch failed: PanicError: fixture-workers-rs: panic requested by /panic (recovered; instance kept)";
    let log = panic_log(&bundle, "/panic", head);
    let site = line_of(
        "workers-rs",
        "panic!(\"fixture-workers-rs: panic requested by /panic\")",
    );
    let (raw_head, _) = text_record(&log, head);
    assert_eq!(
        raw_head,
        format!("{head} [panic at src/lib.rs:{site}:5, build {id}]")
    );
    let text = symbolized(&bundle, &log);
    let (_, named) = text_record(&text, head);
    assert!(
        named
            .contains(&format!("    at fixture_workers_rs::panics (src/lib.rs:{site}:5)").as_str()),
        "the panicking function is named with its line:\n{}",
        named.join("\n")
    );
}

/// `--log-format json`: the record is one JSON object on one line; symbolize keeps it one
/// object, expands its frames and gives the trap its location.
#[test]
fn json_records_are_one_object_per_fault_and_symbolize_fills_them() {
    let bundle = bundle_with("symbols", "release-unwind-json", &["--log-format", "json"]);
    let id = build_id(&bundle);
    let server = Workerd::serve(&bundle);
    assert_eq!(server.get("/trap").0, 500);
    assert_eq!(server.get("/panic").0, 500);
    server.wait_for_log("\"kind\":\"panic\"", Duration::from_secs(10));
    let log = server.log_contents();
    let records: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.starts_with("{\"level\""))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(records.len(), 2, "one record per fault:\n{log}");
    assert!(
        !log.lines().any(|l| l.starts_with("cargo-worker-build:")),
        "no text records:\n{log}"
    );
    let (trap, panic) = (&records[0], &records[1]);
    assert_eq!(trap["level"], "error");
    assert_eq!(trap["kind"], "unreachable");
    assert_eq!(trap["message"], "unreachable");
    assert_eq!(trap["location"], serde_json::Value::Null);
    assert_eq!(trap["call"], "fetch");
    assert_eq!(trap["build"], id.as_str());
    assert!(
        trap["frames"][0]
            .as_str()
            .unwrap()
            .contains("wasm-function["),
        "{trap}"
    );
    assert_eq!(panic["kind"], "panic");
    assert_eq!(panic["message"], "fixture-symbols: 'x' is not a digit");
    assert_eq!(panic["build"], id.as_str());

    let text = symbolized(&bundle, &log);
    let named: serde_json::Value = serde_json::from_str(
        text.lines()
            .find(|l| l.contains("\"kind\":\"unreachable\""))
            .expect("the trap's record, still one line"),
    )
    .unwrap();
    let trap_line = line_of("symbols", "core::arch::wasm32::unreachable()");
    assert_eq!(named["location"], format!("src/lib.rs:{trap_line}:9"));
    assert!(
        named["frames"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f
                == &format!("fixture_symbols::trap_here (src/lib.rs:{trap_line}:9) [inlined]")),
        "{named}"
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

    // A record of another build: one line naming both build ids.
    let id = build_id(&bundle);
    let record = "cargo-worker-build: fetch failed: PanicError: x (recovered; instance kept) [panic, build 00000000000000ff]\n";
    let out = symbolize(dir.path(), record);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("error[symbols-other-build]")
            && err.contains(&format!(
                "the log is from build 00000000000000ff, but the bundle in {} is build {id}",
                dir.path().display()
            )),
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

/// A dev build keeps the name section (and runs no wasm-opt): the runtime's record of a trap, as
/// workerd logs it, names the Rust functions, with no symbolize step.
#[test]
fn a_dev_trap_in_workerd_names_the_rust_function_without_symbolize() {
    let out = unwind_bundle("dev");
    let server = Workerd::serve(&out);
    let (status, _) = server.get("/trap");
    assert_eq!(status, 500);
    let head = "cargo-worker-build: Wasm instance aborted (trap: unreachable in fetch)";
    server.wait_for_log(head, Duration::from_secs(10));
    let log = server.log_contents();
    // The runtime's own record of the trap lists the frames, named.
    let (_, frames) = text_record(&log, head);
    // V8 prints the names as the name section has them, crate disambiguators included:
    // `fixture_symbols[8f8c5c50931b0c0]::trap_here`.
    for name in ["trap_here", "descend", "fetch"] {
        assert!(
            frames
                .iter()
                .any(|f| f.contains("fixture_symbols") && f.contains(&format!("::{name} ("))),
            "the runtime's record should name fixture_symbols::{name}:\n{log}"
        );
    }
}

/// A dev build of a crate with a panic hook (workers-rs installs one): the runtime's record of a
/// panic, as workerd logs it, has the Rust location and frames taken at the panic site that
/// name the panicking function, with no symbolize step.
#[test]
fn a_dev_panic_in_workerd_names_the_panicking_function_without_symbolize() {
    let out = build("workers-rs", "workers-rs-dev-unwind", "dev", &[]);
    let head = "cargo-worker-build: fetch failed: PanicError: fixture-workers-rs: panic requested by /panic (recovered; instance kept)";
    let log = panic_log(&out, "/panic", head);
    let site = line_of(
        "workers-rs",
        "panic!(\"fixture-workers-rs: panic requested by /panic\")",
    );
    let (raw_head, frames) = text_record(&log, head);
    assert!(
        raw_head.starts_with(&format!("{head} [panic at src/lib.rs:{site}:5, build ")),
        "the record has the panic's Rust location:\n{log}"
    );
    // V8 prints the names as the name section has them, crate disambiguators included.
    assert!(
        frames
            .iter()
            .any(|f| f.contains("fixture_workers_rs") && f.contains("::panics (")),
        "the record's frames name fixture_workers_rs::panics:\n{log}"
    );
}

/// The log format is part of the plan `--dry-run --message-format json` prints: from the flag,
/// else from Cargo.toml; a bad Cargo.toml value is one error line.
#[test]
fn the_plan_shows_the_log_format() {
    let project = support::copy_fixture("symbols");
    let manifest = project.path().join("Cargo.toml");
    let dry_run = || {
        let mut cmd = tool();
        cmd.args([
            "--unwind",
            "--dry-run",
            "--message-format",
            "json",
            "--manifest-path",
        ])
        .arg(&manifest);
        cmd
    };
    let plan = |extra: &[&str]| {
        let out = run_ok(dry_run().args(extra));
        let first = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap()
            .to_string();
        let value: serde_json::Value = serde_json::from_str(&first).unwrap();
        value["plan"]["log"].clone()
    };
    assert_eq!(
        plan(&[]),
        serde_json::json!({"format": "text", "source": "default"})
    );
    assert_eq!(
        plan(&["--log-format", "json"]),
        serde_json::json!({"format": "json", "source": "--log-format"})
    );

    let original = std::fs::read_to_string(&manifest).unwrap();
    let with = |value: &str| {
        let table =
            format!("[package.metadata.worker-build]\nlog-format = {value}\n\n[dependencies]");
        std::fs::write(&manifest, original.replace("[dependencies]", &table)).unwrap();
    };
    with("\"json\"");
    assert_eq!(
        plan(&[]),
        serde_json::json!({"format": "json", "source": "package.metadata.worker-build.log-format"})
    );
    assert_eq!(
        plan(&["--log-format", "text"])["format"],
        "text",
        "the flag wins"
    );
    with("\"yaml\"");
    let out = run(&mut dry_run());
    assert!(!out.status.success());
    assert_eq!(
        support::error_lines(&out),
        ["error[invalid-log-format]: `package.metadata.worker-build.log-format` in Cargo.toml must be \"text\" or \"json\", not `\"yaml\"`; write `log-format = \"json\"` (or \"text\") under [package.metadata.worker-build], or pass --log-format json"],
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An `unreachable` trap in Rust's out-of-memory handler or in the abort of a panic while
/// panicking is logged as what it is, by the runtime itself: the build tells it which
/// functions those are.
#[test]
fn abort_records_name_out_of_memory_and_abort() {
    use crate::support::recovery::{Serve, Server};
    // Its own bundle directory: the runtime tests' faults bundle is rebuilt by every tree that
    // runs them, with that tree's tool.
    let bundle = bundle_with("faults", "faults-release-unwind", &[]);
    let id = build_id(&bundle);
    let server = Server::start(Serve::Worker(&bundle));
    for (path, kind) in [
        ("/fault/oom", "out of memory"),
        ("/fault/double-panic", "abort"),
        ("/fault/overflow", "stack overflow"),
    ] {
        let (status, _, _) = server.get(path);
        assert_eq!(status, 500, "{path}");
        let records: Vec<String> = server
            .runtime_lines()
            .into_iter()
            .filter(|l| l.contains("Wasm instance aborted ("))
            .collect();
        let last = records.last().cloned().unwrap_or_default();
        assert!(
            last.ends_with(&format!(" [{kind}, build {id}]")),
            "{path} is logged as {kind}: {last}\n{}",
            server.log()
        );
    }
}

/// `std::process::abort()` inlined into the handler traps in the handler's own function, so the
/// runtime can only say `unreachable`; symbolize reads the inline chain and names it an abort at
/// the handler's line.
#[test]
fn an_inlined_abort_is_named_after_symbolize() {
    let bundle = bundle_with("workers-rs", "workers-rs-release-unwind", &[]);
    let id = build_id(&bundle);
    let server = Workerd::serve(&bundle);
    assert_eq!(server.get("/abort").0, 500);
    let head = "cargo-worker-build: Wasm instance aborted (trap: unreachable in a Rust future); re-initialised (re-initialisation #1); 1 call(s) were in flight on it";
    server.wait_for_log(head, Duration::from_secs(10));
    let log = server.log_contents();
    assert_eq!(
        text_record(&log, head).0,
        format!("{head} [unreachable, build {id}]")
    );
    let text = symbolized(&bundle, &log);
    let site = line_of("workers-rs", "std::process::abort()");
    let (named, frames) = text_record(&text, head);
    assert_eq!(
        named,
        format!("{head} [abort at src/lib.rs:{site}:5, build {id}]")
    );
    assert!(
        frames
            .contains(&format!("    at fixture_workers_rs::aborts (src/lib.rs:{site}:5)").as_str()),
        "{text}"
    );
}

/// A bundle directory with a module of `size` bytes and a symbol map for it that names function
/// 87 (`0x5000..0x6000`) `fixture::handler`: enough for `symbolize`, with no build.
pub(crate) fn crafted_bundle(size: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let wasm: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.path().join("index_bg.wasm"), &wasm).unwrap();
    let map = serde_json::json!({
        "format": cargo_worker_build::symbols::FORMAT,
        "build_id": cargo_worker_build::symbols::build_id(&wasm),
        "module_size": size,
        "v8_script_id": "",
        "functions": [
            {"index": 87, "start": 0x5000, "end": 0x6000, "name": "fixture::handler"},
        ],
    });
    std::fs::write(
        dir.path().join("index_bg.symbols.json"),
        serde_json::to_vec(&map).unwrap(),
    )
    .unwrap();
    dir
}

/// About `bytes` of log in the shape that was quadratic (issue 22, finding 16): frames without
/// the `wasm://wasm/` prefix, on lines of their own and many on one long line.
fn frames_log(bytes: usize) -> String {
    let mut log = String::with_capacity(bytes + 4096);
    let mut n = 0u64;
    while log.len() < bytes {
        n += 1;
        if n.is_multiple_of(50) {
            for _ in 0..400 {
                log.push_str("wasm-function[87]:0x57f7 ");
            }
            log.push('\n');
        } else {
            log.push_str(&format!(
                "Error: request {n} failed\n    at wasm-function[87]:0x57f7\n"
            ));
        }
    }
    log
}

#[test]
fn symbolize_of_a_large_log_takes_linear_time() {
    let bundle = crafted_bundle(40_000);
    let dir = tempfile::tempdir().unwrap();
    let mut times = Vec::new();
    for mb in [2.5f64, 5.0, 10.0] {
        let log = frames_log((mb * 1024.0 * 1024.0) as usize);
        let file = dir.path().join(format!("{mb}.log"));
        std::fs::write(&file, &log).unwrap();
        // The fastest of three runs: the machine is shared, and noise only adds time.
        let mut took = Duration::MAX;
        for _ in 0..3 {
            let started = std::time::Instant::now();
            let out = run_ok(
                tool()
                    .arg("symbolize")
                    .arg(&file)
                    .arg("--out-dir")
                    .arg(bundle.path()),
            );
            took = took.min(started.elapsed());
            let text = String::from_utf8(out.stdout).unwrap();
            // Every frame is named, none is lost.
            assert_eq!(
                text.matches("fixture::handler (wasm-function[87]:0x57f7)")
                    .count(),
                log.matches("wasm-function[87]").count()
            );
        }
        println!("symbolize: {mb} MB in {took:?}");
        times.push(took.as_secs_f64());
    }
    // Linear: four times the log, at most eight times the time (quadratic would be sixteen;
    // before issue 22 the 10 MB log took minutes), and well within a minute for 10 MB even in a
    // debug build on a busy machine.
    assert!(
        times[2] < 8.0 * times[0].max(0.05),
        "2.5 MB in {:.2} s but 10 MB in {:.2} s: not linear",
        times[0],
        times[2]
    );
    assert!(times[2] < 60.0, "10 MB took {:.1} s", times[2]);
}

#[test]
fn symbolize_prints_each_line_as_it_is_read() {
    use std::io::BufRead;
    let bundle = crafted_bundle(40_000);
    let mut child = tool()
        .args(["symbolize", "--out-dir"])
        .arg(bundle.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run the tool");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    // The log stays open, as `wrangler tail` keeps it: each line must come out before it ends.
    for n in 0..2 {
        writeln!(stdin, "Error: request {n}").unwrap();
        writeln!(stdin, "    at wasm-function[87]:0x57f7").unwrap();
        stdin.flush().unwrap();
        let wait = Duration::from_secs(20);
        assert_eq!(
            rx.recv_timeout(wait)
                .expect("no output while the log is open"),
            format!("Error: request {n}")
        );
        assert_eq!(
            rx.recv_timeout(wait)
                .expect("no output while the log is open"),
            "    at fixture::handler (wasm-function[87]:0x57f7)"
        );
    }
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success());
}

/// Streaming, a log of another build is refused at the first line that shows it: what came
/// before is printed (a held record included), the refused line is not.
#[test]
fn symbolize_refuses_another_build_at_its_first_line() {
    let bundle = crafted_bundle(40_000);
    let ours = cargo_worker_build::symbols::build_id(
        &std::fs::read(bundle.path().join("index_bg.wasm")).unwrap(),
    );
    let log = format!(
        "before\ncargo-worker-build: fetch failed (x) [unreachable, build {ours}]\ncargo-worker-build: fetch failed (y) [panic, build 00000000000000ff]\nafter\n"
    );
    let out = symbolize(bundle.path(), &log);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error[symbols-other-build]") && err.contains("00000000000000ff"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("before\ncargo-worker-build: fetch failed (x) [unreachable, build {ours}]\n")
    );
}

/// Issue 22: a crafted map whose nodes point to themselves (8,000 of them expanded to 64 M
/// frames) is refused at once, with one line saying what is damaged.
#[test]
fn symbolize_refuses_a_damaged_map_with_one_line() {
    let bundle = crafted_bundle(40_000);
    let path = bundle.path().join("index_bg.symbols.json");
    let mut map: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let n = 8000;
    map["chains"] = serde_json::json!({
        "frames": [{"function": "f", "file": "src/lib.rs", "line": 1, "column": 1}],
        "nodes": (0..n).map(|i| serde_json::json!([0, i])).collect::<Vec<_>>(),
        "heads": (0..n).collect::<Vec<_>>(),
    });
    std::fs::write(&path, map.to_string()).unwrap();
    let started = std::time::Instant::now();
    let out = symbolize(bundle.path(), "    at wasm-function[87]:0x57f7\n");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error[no-symbols]")
            && err
                .contains("damaged symbol map: node 0 has parent 0, which is not an earlier node"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}
