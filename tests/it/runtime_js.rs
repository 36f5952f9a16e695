//! Unit tests of the recovery runtime's JavaScript (`src/runtime/runtime.js`), run in workerd
//! with `workerd test` against a fake wasm-bindgen glue (`src/runtime/test/`): paths the
//! end-to-end tests cannot reach on demand (a recoverable RangeError, a reinit requested by a
//! live instance, the fallback without observation, getters and static methods of classes).
//! Node runs the scripts of `src/runtime/test/*.mjs` against the same fake glue (the property
//! test and the long log lines), and workerd the tests of `src/runtime/test-real/` against the
//! glue of a real build.

use crate::support;

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::node::{node_command, run_in_group};
use crate::support::{describe_output, repo_root, workerd_bin, COMPATIBILITY_DATE};

#[test]
fn runtime_js_unit_tests_pass_in_workerd() {
    let src = repo_root().join("src/runtime");
    let dir = tempfile::Builder::new()
        .prefix("cwb-runtime-js-")
        .tempdir()
        .unwrap();
    let wasm = wat::parse_file(src.join("test/fake.wat")).expect("fake.wat assembles");
    let mut modules = String::new();
    for copy in ["hooked.wasm", "plain.wasm", "fallback.wasm"] {
        fs::write(dir.path().join(copy), &wasm).unwrap();
        writeln!(modules, "    (name = {copy:?}, wasm = embed {copy:?}),").unwrap();
    }
    fs::copy(src.join("runtime.js"), dir.path().join("runtime.js")).unwrap();
    let tests = src.join("test");
    let mut names: Vec<String> = fs::read_dir(&tests)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".js"))
        .collect();
    names.sort();
    // The test module is the main module; runtime.js sits next to the fakes as in a bundle.
    names.retain(|name| name != "runtime.test.js");
    names.insert(0, "runtime.test.js".into());
    names.push("runtime.js".into());
    // The handler list of the Rust side, which writes it into every entry's EXPORTS: the
    // runtime must serve each of them (it keeps no list of its own).
    fs::write(
        dir.path().join("handlers.js"),
        format!(
            "export const HANDLERS = {};\n",
            serde_json::to_string(cargo_worker_build::exports::HANDLERS).unwrap()
        ),
    )
    .unwrap();
    names.push("handlers.js".into());
    for name in &names {
        if name != "runtime.js" && name != "handlers.js" {
            fs::copy(tests.join(name), dir.path().join(name)).unwrap();
        }
        writeln!(modules, "    (name = {name:?}, esModule = embed {name:?}),").unwrap();
    }
    // The main module must come first.
    let modules = {
        let (wasm_lines, js_lines): (Vec<&str>, Vec<&str>) =
            modules.lines().partition(|line| line.contains("wasm ="));
        js_lines
            .into_iter()
            .chain(wasm_lines)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let text = workerd_test(dir.path(), "runtime-unit", &modules);
    for test in [
        "panicKeepsState",
        "jsRangeErrorIsRecoverable",
        "trapReinitialisesOnce",
        "asyncAbortFailsCallsInFlight",
        "scheduleReinitWhileAlive",
        "asyncJsExceptionRejectsOnlyItsCall",
        "scheduleReinitWithCallsInFlight",
        "nestedAbortRecoversOnceTheOuterCallReturns",
        "startAbortRetriesAreBounded",
        "objectsCrossTheBoundary",
        "classesAreRebuiltFromTheirArguments",
        "fallbackWithoutObservation",
        "workerShapes",
        "everyHandlerTheToolListsIsServed",
        "handlersResolvingWithThenablesSettle",
        "anAbortOutsideACallFailsCallsInFlightAtOnce",
        "aPanicRecordTakesTheLocationOfItsHook",
        "aHookOfAnotherPanicIsNotTaken",
        "aHookPrintedForAnotherCallIsNotTaken",
        "callsInFlightDoNotGetAnotherCallsAbort",
        "startAbortRetriesAreBoundedWithAnAbortHook",
        "everyFutureThatThrowsInOneTickIsRejected",
        "aWorkersRsHookRecordTakesItsLocation",
    ] {
        assert!(
            text.contains(&format!("[ PASS ] runtime-unit:{test}")),
            "{test} did not pass:\n{text}"
        );
    }
}

/// The runtime, the fake glue and the Node scripts of `src/runtime/test/` (`*.mjs`), with the
/// fake module as `hooked.wasm` and `plain.wasm`, in a directory whose `.js` files Node loads
/// as ES modules.
fn node_fixture() -> tempfile::TempDir {
    let src = repo_root().join("src/runtime");
    let dir = tempfile::Builder::new()
        .prefix("cwb-runtime-node-")
        .tempdir()
        .unwrap();
    let wasm = wat::parse_file(src.join("test/fake.wat")).expect("fake.wat assembles");
    for copy in ["hooked.wasm", "plain.wasm"] {
        fs::write(dir.path().join(copy), &wasm).unwrap();
    }
    fs::copy(src.join("runtime.js"), dir.path().join("runtime.js")).unwrap();
    for entry in fs::read_dir(src.join("test")).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "fake-glue.js" || name.ends_with(".mjs") {
            fs::copy(entry.path(), dir.path().join(&name)).unwrap();
        }
    }
    fs::write(
        dir.path().join("package.json"),
        "{ \"type\": \"module\" }\n",
    )
    .unwrap();
    dir
}

/// `node SCRIPT DIR ARGS` in the fixture `dir`: its output, or a failure with it.
fn run_node_script(dir: &Path, script: &str, args: &[&str], timeout: Duration) -> String {
    let mut cmd = node_command(dir);
    cmd.arg(script).arg(dir).args(args);
    let (status, output) = run_in_group(&mut cmd, &dir.join(format!("{script}.log")), timeout);
    assert!(
        status.success(),
        "node {script} failed ({status}):\n{output}"
    );
    output
}

/// Issue 22, finding 12: the runtime reads every line logged with console.error for a panic
/// hook's location. Lines of 0.25, 1 and 5 MB (the worst cases of the pattern search it used:
/// 11 s for 0.25 MB) each take a bounded time, and the hook's location is still read.
#[test]
fn runtime_js_long_log_lines_cost_bounded_time() {
    let dir = node_fixture();
    let output = run_node_script(dir.path(), "long-lines.mjs", &[], Duration::from_secs(300));
    assert!(output.contains("long lines: ok"), "{output}");
}

/// Issue 22's runtime fuzzing, against the fake glue in Node (`src/runtime/test/fuzz.mjs`):
/// random sequences of calls (values, promises, thenables; panics, JS errors at once or after an
/// await, aborts at once, after an await or in a timer; nested and concurrent), each checked
/// for calls that never settle, entries into a dead instance, records or errors carrying
/// another call's data, and calls still followed afterwards. Up to 5000 sequences or 20 s;
/// `CWB_RUNTIME_FUZZ_SEED` picks another seed (a failure prints the one it ran with).
#[test]
fn runtime_js_fuzz_random_call_sequences() {
    let seed = std::env::var("CWB_RUNTIME_FUZZ_SEED").unwrap_or_else(|_| "1".into());
    let dir = node_fixture();
    let output = run_node_script(
        dir.path(),
        "fuzz.mjs",
        &[&seed, "5000", "20"],
        Duration::from_secs(120),
    );
    let line = output
        .lines()
        .find(|line| line.starts_with("fuzz: "))
        .unwrap_or_else(|| panic!("no summary line:\n{output}"));
    println!("{line}");
    let sequences: u32 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no sequence count in {line:?}"));
    // Timers bound the pace (a loaded machine ran 1000 in 10 s): a run this short means the
    // script stopped early.
    assert!(sequences >= 300, "only {sequences} sequences ran: {output}");
}

/// `tsc --checkJs` over the runtime (`src/runtime/tsconfig.json`, strict), with the typescript
/// the repository pins in package.json.
#[test]
fn runtime_js_type_checks() {
    let root = repo_root();
    let tsc = root.join("node_modules/typescript/bin/tsc");
    assert!(
        tsc.is_file(),
        "typescript is not installed ({} is missing): run `npm ci` in {}",
        tsc.display(),
        root.display()
    );
    let node = ["node_modules/.bin/node", "node_modules/node/bin/node"]
        .iter()
        .map(|p| root.join(p))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "node is not installed under node_modules: run `npm ci` in {}",
                root.display()
            )
        });
    let mut cmd = Command::new(node);
    cmd.arg(&tsc)
        .arg("--project")
        .arg(root.join("src/runtime/tsconfig.json"))
        .current_dir(&root);
    let output = cmd.output().expect("run tsc");
    assert!(
        output.status.success(),
        "{}",
        describe_output(&cmd, &output)
    );
}

/// The runtime against the glue of a real wasm-bindgen build: the recovery-lib fixture built in
/// library mode, imported by `src/runtime/test-real/real-glue.test.js` under `workerd test`.
#[test]
fn runtime_js_unit_tests_pass_against_real_glue() {
    let text = workerd_test_against_real_glue("real-glue.test.js");
    assert!(
        text.contains("[ PASS ] runtime-real:realGlue"),
        "realGlue did not pass:\n{text}"
    );
}

/// Issue 22's runtime fuzzing against the real glue (`src/runtime/test-real/real-fuzz.test.js`):
/// random sequences of calls of the recovery-lib fixture, each checked for calls that never
/// settle, another call's abort as an error's cause, and calls still followed afterwards.
#[test]
fn runtime_js_fuzz_against_real_glue() {
    let text = workerd_test_against_real_glue("real-fuzz.test.js");
    assert!(
        text.contains("[ PASS ] runtime-real:realGlueFuzz"),
        "realGlueFuzz did not pass:\n{text}"
    );
    let line = text
        .lines()
        .find_map(|line| line.split_once("real fuzz: ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no summary line:\n{text}"));
    println!("real fuzz: {line}");
    let sequences: u32 = line
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no sequence count in {line:?}"));
    assert!(sequences >= 100, "only {sequences} sequences ran:\n{text}");
}

/// `workerd test` of `src/runtime/test-real/<test>` (the main module) over the recovery-lib
/// fixture's library bundle in `lib/`.
fn workerd_test_against_real_glue(test: &str) -> String {
    let bundle =
        support::recovery::fixture_bundle("recovery-lib", support::recovery::Build::UnwindLibrary);
    let dir = tempfile::Builder::new()
        .prefix("cwb-runtime-real-")
        .tempdir()
        .unwrap();
    support::copy_tree(&bundle, &dir.path().join("lib"), &|_| false);
    fs::copy(
        repo_root().join("src/runtime/test-real").join(test),
        dir.path().join(test),
    )
    .unwrap();
    let mut modules = format!("    (name = {test:?}, esModule = embed {test:?}),\n");
    for name in support::bundle_modules(&dir.path().join("lib")) {
        let kind = if name.ends_with(".wasm") {
            "wasm"
        } else {
            "esModule"
        };
        writeln!(
            modules,
            "    (name = \"lib/{name}\", {kind} = embed \"lib/{name}\"),"
        )
        .unwrap();
    }
    workerd_test(dir.path(), "runtime-real", &modules)
}

/// `workerd test` of a one-service config in `dir` whose worker has `modules` (capnp lines, the
/// main module first); fails with the command's output unless every test passed, and returns
/// stdout and stderr.
fn workerd_test(dir: &Path, service: &str, modules: &str) -> String {
    let config = format!(
        r#"using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = ( services = [ (name = {service:?}, worker = .worker) ] );
const worker :Workerd.Worker = (
  modules = [
{modules}
  ],
  compatibilityDate = {COMPATIBILITY_DATE:?},
);
"#
    );
    fs::write(dir.join("config.capnp"), config).unwrap();
    let mut cmd = Command::new(workerd_bin());
    cmd.arg("test").arg("config.capnp").current_dir(dir);
    let output = cmd.output().expect("run workerd test");
    let report = describe_output(&cmd, &output);
    assert!(output.status.success(), "{report}");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
