//! End-to-end tests of the build (issue 2): build each fixture crate with the real binary,
//! serve the bundle in workerd on 127.0.0.1 and assert what a client sees.
//!
//! One build per fixture and mode; every assertion about that bundle runs against it.
//! Needs `npm ci` in the repository root (workerd) and the toolchains the tool installs.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::{Mode, Workerd, BUILD_LOCK};
use tempfile::TempDir;

/// A bundle built from a private copy of a fixture crate.
struct Built {
    /// The copied crate; the bundle lives inside it.
    _crate_dir: TempDir,
    out: PathBuf,
}

fn build(fixture: &str, mode: Mode) -> Built {
    let _serial = BUILD_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let crate_dir = support::copy_fixture(fixture);
    let out = crate_dir.path().join("build");
    let mut cmd = support::build_command(crate_dir.path(), &out, mode);
    let started = Instant::now();
    support::run_ok(&mut cmd);
    eprintln!(
        "built {fixture} ({mode:?}) in {:.1?}: {}",
        started.elapsed(),
        support::command_line(&cmd)
    );
    Built {
        _crate_dir: crate_dir,
        out,
    }
}

fn assert_bundle_files(out: &Path, fixture: &str, mode: Mode) {
    for file in [
        "index.js",
        "index_bg.wasm",
        ".worker-build.json",
        "index.meta.json",
        "worker/shim.mjs",
    ] {
        assert!(
            out.join(file).is_file(),
            "bundle {} lacks {file}; it has {:?}",
            out.display(),
            std::fs::read_dir(out)
                .map(|dir| dir
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect::<Vec<_>>())
                .unwrap_or_default()
        );
    }
    assert_one_module(out);
    let text = std::fs::read_to_string(out.join(".worker-build.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!(".worker-build.json is not JSON ({e}): {text}"));
    let (want_mode, want_eh) = match mode {
        Mode::Abort => ("abort", serde_json::Value::Null),
        Mode::Unwind => ("unwind", "exnref".into()),
        Mode::UnwindLegacy => ("unwind", "legacy".into()),
    };
    assert_eq!(manifest["mode"], want_mode, ".worker-build.json: {text}");
    assert_eq!(manifest["eh"], want_eh, ".worker-build.json: {text}");
    assert_eq!(
        manifest["wasm_bindgen"], "0.2.130",
        ".worker-build.json: {text}"
    );
    assert_eq!(
        manifest["exports"]["handlers"],
        serde_json::json!(["fetch"]),
        ".worker-build.json: {text}"
    );
    // The plain fixture's exports are known exactly; the workers-rs fixture also exports the
    // `worker` crate's own classes, which vary with its version.
    if fixture == "plain" {
        assert_eq!(
            manifest["exports"]["classes"],
            serde_json::json!(["Counter"]),
            ".worker-build.json: {text}"
        );
        assert_eq!(
            manifest["exports"]["functions"],
            serde_json::json!([]),
            ".worker-build.json: {text}"
        );
    }
}

/// `index.js` is the only JavaScript module (apart from the compatibility shim), it imports only
/// the Wasm module and `cloudflare:` builtins, and esbuild bundled the recovery runtime ahead
/// of the glue (import order is evaluation order), as its metafile records.
fn assert_one_module(out: &Path) {
    let modules = support::bundle_modules(out);
    assert_eq!(
        modules,
        ["index.js", "index_bg.wasm", "worker/shim.mjs"],
        "bundle {}",
        out.display()
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("index.meta.json")).unwrap()).unwrap();
    let output = &meta["outputs"]["index.js"];
    for import in output["imports"].as_array().unwrap() {
        let path = import["path"].as_str().unwrap();
        assert!(
            import["external"] == true
                && (path == "./index_bg.wasm" || path.starts_with("cloudflare:")),
            "index.js imports {path}: {output}"
        );
    }
    let entry_imports: Vec<&str> = meta["inputs"][".bundle-src/index.js"]["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].as_str().unwrap())
        .collect();
    let at = |name: &str| entry_imports.iter().position(|p| *p == name);
    assert!(
        at(".bundle-src/runtime.js").unwrap() < at(".bundle-src/glue.js").unwrap(),
        "the runtime is imported before the glue: {entry_imports:?}"
    );
    for input in [".bundle-src/runtime.js", ".bundle-src/glue.js"] {
        assert!(
            output["inputs"][input]["bytesInOutput"].as_u64().unwrap() > 0,
            "{input} is in index.js: {output}"
        );
    }
}

/// The module must carry the exception handling the mode asked for, in one encoding only
/// (workerd rejects a module that mixes both).
fn assert_eh_encoding(out: &Path, mode: Mode) {
    let wasm = out.join("index_bg.wasm");
    let eh = support::eh_instructions(&wasm);
    let ok = match mode {
        // Rust's unwinder throws a tag defined in the module; a panic=abort build has none.
        Mode::Abort => eh.legacy == 0 && eh.local_tags == 0,
        Mode::Unwind => eh.legacy == 0 && eh.exnref > 0 && eh.local_tags > 0,
        Mode::UnwindLegacy => eh.exnref == 0 && eh.legacy > 0 && eh.local_tags > 0,
    };
    assert!(ok, "{} for {mode:?}: unexpected {eh:?}", wasm.display());
}

/// A failed request answers 500 (and does not hang).
fn expect_server_error(server: &Workerd, path: &str) {
    let (status, body) = server.get(path);
    assert_eq!(
        status,
        500,
        "GET {path} answered {status} {body:?}\n--- workerd output ---\n{}",
        server.log_contents()
    );
}

/// A panic answers 500, its message reaches the log, and the instance lives on with its state.
fn assert_panic_keeps_state(server: &Workerd) {
    server.expect("/", 200, "1");
    server.expect("/count", 200, "2");
    expect_server_error(server, "/panic");
    server.wait_for_log("panic requested by /panic", Duration::from_secs(5));
    server.expect("/state", 200, "2");
    server.expect("/", 200, "3");
}

/// A panic or abort answers 500; the dead instance is replaced, so the next request succeeds
/// on fresh state (the counter starts again).
fn assert_recovers_by_reinit(server: &Workerd, path: &str) {
    server.expect("/", 200, "1");
    server.expect("/", 200, "2");
    expect_server_error(server, path);
    server.expect("/state", 200, "0");
    server.expect("/", 200, "1");
}

fn check(fixture: &str, mode: Mode) {
    let built = build(fixture, mode);
    assert_bundle_files(&built.out, fixture, mode);
    assert_eh_encoding(&built.out, mode);

    let server = Workerd::serve(&built.out);
    // The shim for configs written for worker-build serves the same Worker.
    let shim = Workerd::serve_main(&built.out, "worker/shim.mjs");
    shim.expect("/", 200, "1");
    drop(shim);
    match mode {
        Mode::Abort => {
            assert_recovers_by_reinit(&server, "/abort");
            // Under panic=abort a panic is an abort too.
            server.expect("/", 200, "2");
            assert_recovers_by_reinit_from(&server, "/panic", 2);
        }
        Mode::Unwind | Mode::UnwindLegacy => {
            assert_panic_keeps_state(&server);
            // Aborts cannot unwind: the instance is replaced.
            expect_server_error(&server, "/abort");
            server.expect("/state", 200, "0");
            server.expect("/", 200, "1");
            // A panic after the re-initialisation is still caught.
            expect_server_error(&server, "/panic");
            server.expect("/state", 200, "1");
        }
    }
}

/// Like [`assert_recovers_by_reinit`] for a server whose counter is already at `count`.
fn assert_recovers_by_reinit_from(server: &Workerd, path: &str, count: u32) {
    server.expect("/state", 200, &count.to_string());
    expect_server_error(server, path);
    server.expect("/state", 200, "0");
    server.expect("/", 200, "1");
}

#[test]
fn plain_abort() {
    check("plain", Mode::Abort);
}

#[test]
fn plain_unwind() {
    check("plain", Mode::Unwind);
}

#[test]
fn plain_unwind_legacy() {
    check("plain", Mode::UnwindLegacy);
}

#[test]
fn workers_rs_abort() {
    check("workers-rs", Mode::Abort);
}

#[test]
fn workers_rs_unwind() {
    check("workers-rs", Mode::Unwind);
}

#[test]
fn workers_rs_unwind_legacy() {
    check("workers-rs", Mode::UnwindLegacy);
}

/// The harness itself, on a hand-written bundle (no build): nested modules resolve by their
/// relative paths, non-module files are left out, console output reaches the log, a request
/// that never answers fails with its path instead of hanging, and drop stops workerd.
#[test]
fn workerd_harness_serves_a_bundle_and_never_hangs() {
    let bundle = tempfile::tempdir().unwrap();
    let files = [
        (
            "index.js",
            r#"import { greet } from "./glue.js";
export default {
  async fetch(request) {
    const path = new URL(request.url).pathname;
    if (path === "/hang") await new Promise((resolve) => setTimeout(resolve, 60000));
    if (path === "/log") console.error("harness: console.error reached the log");
    return new Response(greet(), { status: path === "/" ? 200 : 201 });
  },
};
"#,
        ),
        (
            "glue.js",
            r#"import { name } from "./snippets/fixture-0123/inline0.js";
export function greet() { return `hello ${name()}`; }
"#,
        ),
        (
            "snippets/fixture-0123/inline0.js",
            "export function name() { return \"snippet\"; }\n",
        ),
        // Not modules: workerd must not be asked to load these.
        (".worker-build.json", "{}"),
        ("index.d.ts", "export {};\n"),
    ];
    for (name, text) in files {
        let path = bundle.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    assert_eq!(
        support::bundle_modules(bundle.path()),
        ["glue.js", "index.js", "snippets/fixture-0123/inline0.js"]
    );

    let server = Workerd::serve(bundle.path());
    server.expect("/", 200, "hello snippet");
    server.expect("/log", 201, "hello snippet");
    server.wait_for_log(
        "harness: console.error reached the log",
        Duration::from_secs(5),
    );

    let started = Instant::now();
    let hung = support::try_http(server.port(), "GET", "/hang", Duration::from_secs(1));
    let why = hung.expect_err("/hang answered although it never responds");
    assert!(
        why.contains("/hang"),
        "the failure does not name the path: {why}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the timeout was not honoured"
    );

    let port = server.port();
    drop(server);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "workerd still listens on {addr} after drop"
    );
}
