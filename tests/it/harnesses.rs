//! Bundles load unchanged wherever worker-build's bundles load, and a worker-build project
//! moves over with one word.
//!
//! Three bundles, each built once and shared by every test here (and, for the fault fixture, by
//! the `runtime_*` tests): the workers-rs fault fixture with its Durable Object
//! (`tests/fixtures/faults`), the plain wasm-bindgen fixture (`tests/fixtures/plain`), and the
//! fault fixture built with `--lib`, imported by a small JavaScript Worker
//! (`tests/fixtures/faults/js/library-client.js`). Each loads, as it is, in Miniflare 4 with the
//! options workers-rs projects use, in `wrangler deploy --dry-run`, in
//! `@cloudflare/vitest-pool-workers`; the library also in a plain Node 24 script. Every harness
//! sees a normal request succeed, a panic fail that request with state kept, and an abort
//! followed by a fresh instance. A copy of `tests/fixtures/workers-rs` laid out for worker-build
//! builds and serves in `wrangler dev` after one word of its `[build] command` changes.
//!
//! Everything binds 127.0.0.1 and runs in its own process group, killed by id when done.

use crate::support;

use std::fs;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::node::{
    link_node_modules, node_command, npm_file, parse_total_upload, run_in_group, wrangler, Group,
};
use crate::support::recovery::{faults_bundle, Build, Conn};
use crate::support::{
    copy_fixture, copy_tree, fixture, fixtures_target_dir, free_port, run_ok, BUILD_LOCK,
    COMPATIBILITY_DATE,
};
use serde_json::{json, Value};

/// How long one harness run (start, every request, shut down) may take.
const HARNESS_TIMEOUT: Duration = Duration::from_secs(180);

/// The Miniflare options of a workers-rs project's test harness (workers-rs's own tests use
/// them): an ES module entry, and `.wasm` files as compiled modules. Every other `.js` file is
/// CommonJS under Miniflare's default rules, which is why a bundle must be one module.
fn harness_options() -> Value {
    json!({
        "modules": true,
        "scriptPath": "./build/index.js",
        "modulesRules": [{ "type": "CompiledWasm", "include": ["**/*.wasm"], "fallthrough": true }],
    })
}

/// What a request must see.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// 200 with this body.
    Ok(&'static str),
    /// The request fails: 500 over HTTP. (An in-process call, as vitest's
    /// `exports.default.fetch`, sees the Worker's exception itself, as a rejection, where
    /// workerd's HTTP layer answers 500.)
    Fails,
}

/// One of the three bundles, and how a project uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    /// workers-rs, with the `FaultObject` Durable Object.
    WorkersRs,
    /// plain wasm-bindgen exports.
    Plain,
    /// `--lib`, imported by `library-client.js` as `./lib/index.js`.
    Library,
}

impl Case {
    const ALL: [Case; 3] = [Case::WorkersRs, Case::Plain, Case::Library];

    fn bundle(self) -> PathBuf {
        match self {
            Case::WorkersRs => faults_bundle(Build::UnwindExnref),
            Case::Library => faults_bundle(Build::UnwindLibrary),
            Case::Plain => plain_bundle(),
        }
    }

    /// The requests every harness makes, in order, and what each must see.
    fn steps(self) -> Vec<(&'static str, Expect)> {
        use Expect::{Fails, Ok};
        match self {
            Case::WorkersRs => vec![
                ("/hello", Ok("hello")),
                ("/count", Ok("1")),
                ("/fault/panic", Fails),
                ("/state", Ok("1")), // the panic kept the instance and its state
                ("/do/w/inc", Ok("1")),
                ("/do/w/panic", Fails),
                ("/do/w/get", Ok("1")), // the Durable Object kept its fields
                ("/fault/abort", Fails),
                ("/state", Ok("0")),    // a fresh instance after the abort
                ("/do/w/inc", Ok("1")), // and a rebuilt object
            ],
            Case::Plain => vec![
                ("/count", Ok("1")),
                ("/count", Ok("2")),
                ("/panic", Fails),
                ("/state", Ok("2")),
                ("/abort", Fails),
                ("/state", Ok("0")),
                ("/count", Ok("1")),
            ],
            Case::Library => vec![
                ("/add", Ok("5")),
                ("/bump", Ok("1")),
                ("/fault?kind=panic", Fails),
                ("/bump", Ok("2")),
                ("/fault?kind=abort", Fails),
                ("/bump", Ok("1")),
            ],
        }
    }

    /// The project's main module.
    fn main(self) -> &'static str {
        match self {
            Case::Library => "client.js",
            _ => "build/index.js",
        }
    }

    /// A project around the bundle: the bundle in `build/` (in `lib/` next to the client for
    /// the library), a wrangler.toml, and the repository's npm packages.
    fn project(self) -> tempfile::TempDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("cwb-harness-{self:?}-"))
            .tempdir()
            .expect("temporary directory");
        let bundle = self.bundle();
        let mut toml = format!(
            "name = \"harness\"\nmain = \"{}\"\ncompatibility_date = \"{COMPATIBILITY_DATE}\"\n",
            self.main()
        );
        match self {
            Case::Library => {
                copy_tree(&bundle, &dir.path().join("lib"), &|_| false);
                fs::copy(
                    fixture("faults").join("js/library-client.js"),
                    dir.path().join("client.js"),
                )
                .expect("copy the client Worker");
            }
            _ => copy_tree(&bundle, &dir.path().join("build"), &|_| false),
        }
        if self == Case::WorkersRs {
            toml.push_str(
                "\n[[durable_objects.bindings]]\nname = \"FAULT_OBJECT\"\nclass_name = \"FaultObject\"\n\n\
                 [[migrations]]\ntag = \"v1\"\nnew_classes = [\"FaultObject\"]\n",
            );
        }
        fs::write(dir.path().join("wrangler.toml"), toml).expect("write wrangler.toml");
        link_node_modules(dir.path());
        dir
    }

    /// Miniflare's options for this case: the harness options, with the bindings the Worker
    /// uses (as a harness has them), and for the JavaScript client its own entry.
    fn miniflare_options(self) -> Value {
        let mut options = harness_options();
        options["compatibilityDate"] = json!(COMPATIBILITY_DATE);
        match self {
            Case::WorkersRs => options["durableObjects"] = json!({ "FAULT_OBJECT": "FaultObject" }),
            Case::Plain => {}
            Case::Library => {
                // The client is the user's own Worker and imports its modules as ES modules,
                // which Miniflare's default rules would read as CommonJS (any ES module would
                // fail the same way, ours or not): a JavaScript Worker's harness says so.
                options["scriptPath"] = json!("./client.js");
                options["modulesRules"]
                    .as_array_mut()
                    .unwrap()
                    .insert(0, json!({ "type": "ESModule", "include": ["**/*.js"] }));
            }
        }
        options
    }
}

/// The plain fixture built once per test process with `--unwind --no-opt` (the fault bundles are
/// release builds, optimised and minified: between them both kinds of output are loaded).
fn plain_bundle() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let _lock = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            let out = fixtures_target_dir()
                .join("harness-bundles")
                .join("plain-unwind");
            run_ok(
                support::build_command(&fixture("plain"), &out, support::Mode::Unwind)
                    .arg("--no-opt"),
            );
            out
        })
        .clone()
}

/// The JSON array a harness script printed on its last line beginning with `marker`.
fn results(output: &str, marker: &str, what: &str) -> Vec<Value> {
    let line = output
        .lines()
        .rev()
        .find_map(|l| l.split_once(marker).map(|(_, rest)| rest.to_string()))
        .unwrap_or_else(|| panic!("{what} printed no results:\n{output}"));
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{what}: bad results ({e}): {line}"))
}

/// Compares what a harness saw (`{path, status, body}` or `{path, threw}`) with the case's
/// steps. `rejections` says whether a failure may show as a rejected call instead of a 500.
#[track_caller]
fn assert_steps(case: Case, seen: &[Value], rejections: bool, what: &str) {
    let steps = case.steps();
    println!("{what} {case:?}: {}", Value::from(seen.to_vec()));
    assert_eq!(
        seen.len(),
        steps.len(),
        "{what} {case:?}: {} results for {} requests: {seen:#?}",
        seen.len(),
        steps.len()
    );
    for ((path, expect), got) in steps.iter().zip(seen) {
        let ok = match expect {
            Expect::Ok(body) => got["status"] == 200 && got["body"] == *body,
            Expect::Fails => got["status"] == 500 || (rejections && got.get("threw").is_some()),
        };
        assert!(
            ok,
            "{what} {case:?}: {path} should give {expect:?}, got {got}\nall results: {seen:#?}"
        );
    }
}

const MINIFLARE_SCRIPT: &str = r#"// A workers-rs style Miniflare harness: the options come from the test, the requests too.
import { Miniflare } from "miniflare";

const options = JSON.parse(process.argv[2]);
const paths = JSON.parse(process.argv[3]);
const mf = new Miniflare(options);
const seen = [];
try {
  for (const path of paths) {
    const response = await mf.dispatchFetch(`http://localhost${path}`);
    seen.push({ path, status: response.status, body: await response.text() });
  }
} finally {
  await mf.dispose();
}
console.log("HARNESS-RESULTS " + JSON.stringify(seen));
"#;

#[test]
fn miniflare_loads_each_bundle_with_the_harness_options() {
    for case in Case::ALL {
        let project = case.project();
        fs::write(project.path().join("harness.mjs"), MINIFLARE_SCRIPT).unwrap();
        let paths: Vec<&str> = case.steps().iter().map(|(p, _)| *p).collect();
        let mut cmd = node_command(project.path());
        cmd.arg("harness.mjs")
            .arg(case.miniflare_options().to_string())
            .arg(serde_json::to_string(&paths).unwrap());
        let (status, output) = run_in_group(
            &mut cmd,
            &project.path().join("miniflare.log"),
            HARNESS_TIMEOUT,
        );
        assert!(
            status.success(),
            "Miniflare {case:?} failed ({status}):\n{output}"
        );
        assert_steps(
            case,
            &results(&output, "HARNESS-RESULTS ", "Miniflare"),
            false,
            "Miniflare",
        );
    }
}

#[test]
fn wrangler_deploy_dry_run_accepts_each_bundle() {
    for case in Case::ALL {
        let project = case.project();
        let dist = project.path().join("dist");
        let mut cmd = wrangler(project.path());
        cmd.args(["deploy", "--dry-run", "--outdir"]).arg(&dist);
        let (status, output) = run_in_group(
            &mut cmd,
            &project.path().join("deploy.log"),
            HARNESS_TIMEOUT,
        );
        assert!(
            status.success(),
            "wrangler deploy --dry-run {case:?} failed ({status}):\n{output}"
        );
        let (total, gzip) = parse_total_upload(&output)
            .unwrap_or_else(|| panic!("no `Total Upload: ... / gzip: ...` line:\n{output}"));
        assert!(
            total > 1024.0 && gzip > 0.0 && gzip < total,
            "{case:?}: implausible sizes {total} / {gzip}:\n{output}"
        );
        println!("{case:?}: wrangler would upload {total:.0} B, {gzip:.0} B gzip");
        if case == Case::WorkersRs {
            assert!(
                output.contains("env.FAULT_OBJECT (FaultObject)"),
                "the Durable Object binding is seen:\n{output}"
            );
        }
        let uploaded: Vec<String> = fs::read_dir(&dist)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            uploaded.iter().any(|f| f.ends_with(".wasm")),
            "{case:?}: the Wasm module is uploaded next to the entry: {uploaded:?}\n{output}"
        );
    }
}

/// The vitest test written into each project: each request through the Worker's own fetch
/// handler in the Workers runtime, results printed for the Rust side to compare.
const VITEST_TEST: &str = r#"// Written by tests/it/harnesses.rs: the requests come from the test.
import { exports } from "cloudflare:workers";
import { expect, it } from "vitest";
import paths from "./paths.json";

it("serves, fails only the failing requests, keeps state and replaces aborted instances", async () => {
  const seen = [];
  for (const path of paths) {
    try {
      const response = await exports.default.fetch(`http://localhost${path}`);
      seen.push({ path, status: response.status, body: await response.text() });
    } catch (error) {
      seen.push({ path, threw: `${error?.name}: ${error?.message}` });
    }
  }
  console.log("HARNESS-RESULTS " + JSON.stringify(seen));
  expect(seen.length).toBe(paths.length);
});
"#;

const VITEST_CONFIG: &str = r#"// The configuration of a vitest-pool-workers project: wrangler.toml says what to load.
import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

export default defineConfig({
  plugins: [cloudflareTest({ wrangler: { configPath: "./wrangler.toml" } })],
});
"#;

#[test]
fn vitest_pool_workers_runs_tests_against_each_bundle() {
    for case in Case::ALL {
        let project = case.project();
        let test_dir = project.path().join("test");
        fs::create_dir_all(&test_dir).unwrap();
        fs::write(project.path().join("vitest.config.js"), VITEST_CONFIG).unwrap();
        fs::write(test_dir.join("harness.test.js"), VITEST_TEST).unwrap();
        let paths: Vec<&str> = case.steps().iter().map(|(p, _)| *p).collect();
        fs::write(
            test_dir.join("paths.json"),
            serde_json::to_string(&paths).unwrap(),
        )
        .unwrap();
        let mut cmd = node_command(project.path());
        cmd.arg(npm_file("node_modules/vitest/vitest.mjs"))
            .args(["run", "--reporter", "verbose"]);
        let (status, output) = run_in_group(
            &mut cmd,
            &project.path().join("vitest.log"),
            HARNESS_TIMEOUT,
        );
        assert!(
            status.success(),
            "vitest {case:?} failed ({status}):\n{output}"
        );
        assert!(output.contains("1 passed"), "{case:?}:\n{output}");
        assert_steps(
            case,
            &results(&output, "HARNESS-RESULTS ", "vitest"),
            true,
            "vitest-pool-workers",
        );
    }
}

const NODE_SCRIPT: &str = r#"// A Node.js program using the Rust library: each call's outcome, in order.
import { add, bump, fault, Tally } from "./lib/index.js";

const seen = [];
function call(what, f) {
  try {
    seen.push({ what, value: f() });
  } catch (error) {
    seen.push({ what, error: `${error?.name}: ${error?.message}`, isError: error instanceof Error });
  }
}
call("add", () => add(2, 3));
call("bump", () => bump());
call("panic", () => fault("panic"));
call("bump", () => bump());
const tally = new Tally(5);
call("tally.add", () => tally.add(1));
call("abort", () => fault("abort"));
call("bump", () => bump());
call("tally.add", () => new Tally(7).add(1));
console.log("HARNESS-RESULTS " + JSON.stringify(seen));
"#;

#[test]
fn node_24_imports_the_library_and_recovers() {
    let project = Case::Library.project();
    fs::write(project.path().join("program.mjs"), NODE_SCRIPT).unwrap();
    let mut cmd = node_command(project.path());
    cmd.arg("program.mjs");
    let (status, output) =
        run_in_group(&mut cmd, &project.path().join("node.log"), HARNESS_TIMEOUT);
    assert!(status.success(), "node failed ({status}):\n{output}");
    let seen = results(&output, "HARNESS-RESULTS ", "node");
    let value = |i: usize| seen[i].get("value").cloned();
    assert_eq!(value(0), Some(json!(5)), "{seen:#?}");
    assert_eq!(value(1), Some(json!(1)), "{seen:#?}");
    assert_eq!(seen[2]["isError"], true, "a panic is an Error: {seen:#?}");
    assert!(
        seen[2]["error"]
            .as_str()
            .is_some_and(|e| e.contains("PanicError") || e.contains("panic requested")),
        "{seen:#?}"
    );
    assert_eq!(
        value(3),
        Some(json!(2)),
        "state kept after the panic: {seen:#?}"
    );
    assert_eq!(value(4), Some(json!(6)), "{seen:#?}");
    assert_eq!(seen[5]["isError"], true, "an abort throws: {seen:#?}");
    assert_eq!(
        value(6),
        Some(json!(1)),
        "a fresh instance after the abort: {seen:#?}"
    );
    assert_eq!(
        value(7),
        Some(json!(8)),
        "classes work on the fresh instance: {seen:#?}"
    );
}

/// The wasm-bindgen CLI the tool cache holds (install.sh puts 0.2.130 there), as a worker-build
/// user points `WASM_BINDGEN_BIN` at one.
fn cached_wasm_bindgen() -> PathBuf {
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let cache = non_empty("CARGO_WORKER_BUILD_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            non_empty("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| non_empty("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .map(|c| c.join("cargo-worker-build"))
        })
        .expect("HOME is set");
    let bin = cache.join("wasm-bindgen/0.2.130/bin/wasm-bindgen");
    assert!(
        bin.is_file(),
        "{} is missing: run ./install.sh (it installs wasm-bindgen-cli 0.2.130 into the tool cache)",
        bin.display()
    );
    bin
}

/// wrangler.toml as a worker-build project has it.
const WORKER_BUILD_TOML: &str = r#"name = "fixture-workers-rs"
main = "build/worker/shim.mjs"
compatibility_date = "2025-09-01"

[build]
command = "worker-build --release"
"#;

#[test]
fn a_worker_build_project_moves_over_with_one_word_and_serves_in_wrangler_dev() {
    let project = copy_fixture("workers-rs");
    let dir = project.path();
    let config = WORKER_BUILD_TOML.replace(
        "command = \"worker-build --release\"",
        "command = \"cargo worker-build --release --panic-unwind\"",
    );
    let changed: Vec<_> = WORKER_BUILD_TOML
        .lines()
        .zip(config.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(
        changed.len(),
        1,
        "one line of wrangler.toml changes: {changed:?}"
    );
    fs::write(dir.join("wrangler.toml"), &config).unwrap();
    link_node_modules(dir);

    // What wrangler runs the build command with: `cargo` and the installed `cargo-worker-build`
    // on PATH (here, the binary under test), worker-build's WASM_BINDGEN_BIN, and the shared
    // fixtures target dir (a project's own target/ would cost a cold -Zbuild-std build).
    let tool_dir = PathBuf::from(env!("CARGO_BIN_EXE_cargo-worker-build"))
        .parent()
        .unwrap()
        .to_path_buf();
    let with_build_env = |cmd: &mut std::process::Command| {
        let path = format!(
            "{}:{}",
            tool_dir.display(),
            cmd.get_envs()
                .find(|(k, _)| *k == "PATH")
                .and_then(|(_, v)| v.map(|v| v.to_string_lossy().into_owned()))
                .unwrap_or_else(|| std::env::var("PATH").unwrap_or_default())
        );
        cmd.env("PATH", path)
            .env("WASM_BINDGEN_BIN", cached_wasm_bindgen())
            .env("CARGO_TARGET_DIR", fixtures_target_dir())
            .env_remove("WASM_BINDGEN")
            .env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("RUSTUP_TOOLCHAIN_SOURCE");
    };

    // The build command, as wrangler runs it (through the shell), before the first `wrangler dev`.
    let command = "cargo worker-build --release --panic-unwind";
    {
        let _lock = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let mut sh = std::process::Command::new("sh");
        sh.args(["-c", command]).current_dir(dir);
        with_build_env(&mut sh);
        run_ok(&mut sh);
    }
    for file in [
        "build/index.js",
        "build/index_bg.wasm",
        "build/worker/shim.mjs",
    ] {
        assert!(
            dir.join(file).is_file(),
            "{file} is missing after `{command}`"
        );
    }

    // `wrangler dev` runs the build command again itself (a no-change rebuild), then serves.
    let port = free_port();
    let mut cmd = wrangler(dir);
    cmd.args(["dev", "--ip", "127.0.0.1", "--port", &port.to_string()])
        .args(["--inspector-port", &free_port().to_string()]);
    with_build_env(&mut cmd);
    let mut dev = Group::spawn(&mut cmd, &dir.join("wrangler-dev.log"));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(Some(status)) = dev.child.try_wait() {
            panic!("`{}` exited with {status}:\n{}", dev.command(), dev.log());
        }
        if let Ok((200, _)) = Conn::open(port).and_then(|mut c| c.get("/state")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "wrangler dev did not serve within 120 s:\n{}",
            dev.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let get = |path: &str| {
        Conn::open(port)
            .and_then(|mut c| c.get(path))
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n--- wrangler ---\n{}", dev.log()))
    };
    assert_eq!(get("/count"), (200, "1".into()));
    assert_eq!(get("/panic").0, 500);
    assert_eq!(get("/state"), (200, "1".into()), "state kept after a panic");
    assert_eq!(get("/abort").0, 500);
    assert_eq!(
        get("/state"),
        (200, "0".into()),
        "a fresh instance after an abort"
    );
    assert_eq!(get("/count"), (200, "1".into()));
    let log = dev.log();
    assert!(
        log.contains("cargo worker-build --release --panic-unwind"),
        "wrangler ran the build command itself:\n{log}"
    );
}

#[test]
fn total_upload_lines_are_parsed() {
    assert_eq!(
        parse_total_upload("x\nTotal Upload: 59.05 KiB / gzip: 21.83 KiB\n"),
        Some((59.05 * 1024.0, 21.83 * 1024.0))
    );
    assert_eq!(
        parse_total_upload("Total Upload: 1.50 MiB / gzip: 512 B"),
        Some((1.5 * 1024.0 * 1024.0, 512.0))
    );
    assert_eq!(parse_total_upload("Total Upload: lots"), None);
}
