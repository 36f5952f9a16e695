//! The one-module bundle (issue 12) and export discovery (issue 16): real builds of the
//! `exports` fixture, whose free functions are named like its class's members (`tally_sum`
//! next to `Tally`), served in workerd to a JavaScript Worker that imports the library build or
//! calls the Worker build over RPC, and imported by Node 24. Then the bad inputs of bundling:
//! no esbuild to be had, `--offline` without one cached, a snippet esbuild cannot inline.

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::support::{copy_fixture, fixtures_target_dir, run, run_ok, tool, Client, Workerd};
use tempfile::TempDir;

fn build_in(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = tool();
    cmd.current_dir(dir)
        .arg("--unwind")
        .args(args)
        .arg("--target-dir")
        .arg(fixtures_target_dir());
    cmd
}

/// The exports fixture built once per test process with `args`, in its own copy.
fn exports_bundle(
    args: &'static [&'static str],
    cell: &'static OnceLock<(TempDir, PathBuf)>,
) -> &'static Path {
    &cell
        .get_or_init(|| {
            let _serial = support::BUILD_LOCK
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let dir = copy_fixture("exports");
            run_ok(&mut build_in(dir.path(), args));
            let out = dir.path().join("build");
            (dir, out)
        })
        .1
}

fn library() -> &'static Path {
    static BUILT: OnceLock<(TempDir, PathBuf)> = OnceLock::new();
    exports_bundle(&["--no-opt", "--lib"], &BUILT)
}

fn worker() -> &'static Path {
    static BUILT: OnceLock<(TempDir, PathBuf)> = OnceLock::new();
    exports_bundle(&["--no-opt"], &BUILT)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The external imports esbuild left in `index.js`, from its metafile.
fn entry_imports(bundle: &Path) -> Vec<String> {
    let meta = json(&bundle.join("index.meta.json"));
    meta["outputs"]["index.js"]["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].as_str().unwrap().to_string())
        .collect()
}

fn body(server: &Workerd, path: &str) -> String {
    let (status, body) = server.get(path);
    assert_eq!(
        status,
        200,
        "GET {path}: {body}\n--- workerd output ---\n{}",
        server.log_contents()
    );
    body
}

#[test]
fn a_library_exports_every_function_whatever_its_name_to_a_js_worker() {
    let bundle = library();
    assert_eq!(
        support::bundle_modules(bundle),
        ["index.js", "index_bg.wasm"]
    );
    let imports = entry_imports(bundle);
    assert!(
        imports.iter().all(|i| i == "./index_bg.wasm"),
        "a library imports only its module (no cloudflare:workers): {imports:?}"
    );
    let manifest = json(&bundle.join(".worker-build.json"));
    assert_eq!(
        manifest["exports"]["functions"],
        serde_json::json!([
            "calls",
            "color_name",
            "tallyTriple",
            "tally_abort",
            "tally_double",
            "tally_panic",
            "tally_sum"
        ]),
        "{manifest}"
    );
    assert_eq!(manifest["exports"]["classes"], serde_json::json!(["Tally"]));
    assert_eq!(manifest["exports"]["values"], serde_json::json!(["Color"]));

    let client = support::fixture("exports").join("js/library-client.js");
    let server = Workerd::serve_client(bundle, Client::Imports(&client));
    assert_eq!(
        body(&server, "/kinds"),
        "function function function function function"
    );
    assert_eq!(body(&server, "/double"), "42");
    assert_eq!(body(&server, "/triple"), "6");
    assert_eq!(body(&server, "/color"), "1 green");
    assert_eq!(body(&server, "/tally"), "5");
    assert_eq!(
        body(&server, "/sum"),
        "3",
        "tally_sum takes the library's Tally"
    );
    assert_eq!(body(&server, "/calls"), "1");
    assert_eq!(
        body(&server, "/panic"),
        "PanicError: fixture-exports: panic requested"
    );
    assert_eq!(body(&server, "/calls"), "1", "a panic keeps the instance");
    assert_eq!(body(&server, "/abort"), "RuntimeError: unreachable");
    assert_eq!(
        body(&server, "/calls"),
        "0",
        "a fresh instance after the abort"
    );
    assert_eq!(body(&server, "/reinits"), "1");
}

/// Where the repository's npm install puts Node 24 (package.json pins it).
fn node24() -> PathBuf {
    let node = support::repo_root().join("node_modules/.bin/node");
    assert!(
        node.is_file(),
        "{} is missing: run `npm ci` in {}",
        node.display(),
        support::repo_root().display()
    );
    node
}

#[test]
fn a_library_loads_in_node_24_and_recovers() {
    let bundle = library();
    let script = support::fixture("exports").join("js/node-client.mjs");
    let out = run_ok(
        Command::new(node24())
            .arg(&script)
            .arg(bundle.join("index.js")),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "double ok 42",
            "panic threw PanicError: fixture-exports: panic requested",
            "calls ok 1",
            "abort threw RuntimeError: unreachable",
            "calls ok 0",
        ],
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_worker_s_rpc_methods_include_functions_named_like_class_members() {
    let bundle = worker();
    assert_eq!(
        support::bundle_modules(bundle),
        ["index.js", "index_bg.wasm", "worker/shim.mjs"]
    );
    let imports = entry_imports(bundle);
    assert!(
        imports.contains(&"cloudflare:workers".to_string()),
        "RPC methods need WorkerEntrypoint: {imports:?}"
    );
    // The enum is a named export of the Worker's module too (esbuild's parse of index.js).
    let meta = json(&bundle.join("index.meta.json"));
    assert_eq!(
        meta["outputs"]["index.js"]["exports"],
        serde_json::json!(["Color", "Tally", "default"]),
        "{meta}"
    );
    let client = support::fixture("exports").join("js/rpc-client.js");
    let server = Workerd::serve_client(bundle, Client::Rpc(&client));
    assert_eq!(body(&server, "/double"), "42");
    assert_eq!(body(&server, "/calls"), "1");
    let (status, text) = server.get("/abort");
    assert_eq!(status, 500, "{text}");
    assert_eq!(
        body(&server, "/calls"),
        "0",
        "a fresh instance after the abort"
    );
    assert_eq!(
        body(&server, "/fetch"),
        "calls 0",
        "the handler is wired too"
    );
}

/// A copy of the exports fixture with a good bundle in `build/`, and that bundle's bytes.
fn built_copy() -> (TempDir, Vec<(String, Vec<u8>)>) {
    let dir = copy_fixture("exports");
    run_ok(&mut build_in(dir.path(), &["--no-opt"]));
    let files = ["index.js", "index_bg.wasm", ".worker-build.json"]
        .iter()
        .map(|f| {
            (
                f.to_string(),
                fs::read(dir.path().join("build").join(f)).unwrap(),
            )
        })
        .collect();
    (dir, files)
}

fn assert_intact(dir: &Path, before: &[(String, Vec<u8>)]) {
    for (name, bytes) in before {
        assert!(
            fs::read(dir.join("build").join(name)).unwrap() == *bytes,
            "build/{name} was touched"
        );
    }
}

/// A build of `dir` whose bundle inputs differ from the last (optimised, which changes nothing
/// cargo sees, so cargo has nothing to do), with an empty tool cache but the real wasm-bindgen.
/// esbuild is looked for before wasm-opt.
fn rebuild_without_esbuild(dir: &Path, empty_cache: &Path) -> Command {
    let bindgen = support::real_tool_cache().join("wasm-bindgen/0.2.130/bin/wasm-bindgen");
    assert!(
        bindgen.is_file(),
        "{} is missing: run ./install.sh",
        bindgen.display()
    );
    let mut cmd = build_in(dir, &[]);
    cmd.env("CARGO_WORKER_BUILD_CACHE", empty_cache)
        .env("WASM_BINDGEN", bindgen)
        .env_remove("ESBUILD")
        .env_remove("ESBUILD_BIN");
    cmd
}

fn error_line(out: &Output) -> String {
    let lines = support::error_lines(out);
    assert_eq!(
        lines.len(),
        1,
        "one error line: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    lines[0].clone()
}

#[test]
fn without_npm_the_build_says_what_to_install_and_keeps_the_bundle() {
    let (dir, before) = built_copy();
    let empty = tempfile::tempdir().unwrap();
    // A PATH with cargo and rustup (the build itself is fresh) but no node or npm.
    let bin = tempfile::tempdir().unwrap();
    let cargo_bin = PathBuf::from(
        std::env::var("CARGO_HOME")
            .unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap())),
    )
    .join("bin");
    for tool in ["cargo", "rustc", "rustup"] {
        std::os::unix::fs::symlink(cargo_bin.join(tool), bin.path().join(tool)).unwrap();
    }
    let out = run(rebuild_without_esbuild(dir.path(), empty.path()).env("PATH", bin.path()));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = error_line(&out);
    assert!(
        line.starts_with("error[esbuild-unavailable]: esbuild 0.28.2 writes the bundle, but there is no npm on PATH")
            && line.contains("install Node.js with npm")
            && line.contains("set ESBUILD"),
        "{line}"
    );
    assert_intact(dir.path(), &before);
}

#[test]
fn offline_without_esbuild_names_the_command_to_run_online() {
    let (dir, before) = built_copy();
    let empty = tempfile::tempdir().unwrap();
    let out = run(rebuild_without_esbuild(dir.path(), empty.path()).arg("--offline"));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = error_line(&out);
    let install = format!(
        "`npm install --prefix {} esbuild@0.28.2`",
        empty.path().join("esbuild/0.28.2").display()
    );
    assert!(
        line.starts_with("error[offline-missing-tool]: esbuild 0.28.2")
            && line.contains("--offline forbids installing it")
            && line.contains(&install),
        "{line}"
    );
    assert_intact(dir.path(), &before);
}

#[test]
fn a_snippet_that_cannot_be_inlined_is_named() {
    let (dir, before) = built_copy();
    // Its own package name, so its changed module never stands in for the other copies' in
    // the shared target directory (cargo names the artifact after the package).
    for file in ["Cargo.toml", "Cargo.lock"] {
        let path = dir.path().join(file);
        let text = fs::read_to_string(&path).unwrap();
        fs::write(
            &path,
            text.replace("\"fixture-exports\"", "\"fixture-exports-snippet\""),
        )
        .unwrap();
    }
    let lib = dir.path().join("src/lib.rs");
    let mut source = fs::read_to_string(&lib).unwrap();
    source.push_str(
        r#"
#[wasm_bindgen(inline_js = "import pad from \"left-pad\"; export function padded(s) { return pad(s, 5); }")]
extern "C" {
    fn padded(s: &str) -> String;
}

#[wasm_bindgen]
pub fn use_snippet() -> String {
    padded("x")
}
"#,
    );
    fs::write(&lib, source).unwrap();
    let out = run(&mut build_in(dir.path(), &["--no-opt"]));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = error_line(&out);
    assert!(
        line.starts_with(
            "error[snippet-not-inlinable]: the JavaScript snippet snippets/fixture-exports-"
        ) && line.contains("/inline0.js cannot be inlined into the bundle")
            && line.contains("Could not resolve \"left-pad\""),
        "{line}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("command: "),
        "esbuild's command is shown: {stderr}"
    );
    assert_intact(dir.path(), &before);
}
