//! Unit tests of the recovery runtime's JavaScript (`src/runtime/runtime.js`), run in workerd
//! with `workerd test` against a fake wasm-bindgen glue (`src/runtime/test/`): paths the
//! end-to-end tests cannot reach on demand (a recoverable RangeError, a reinit requested by a
//! live instance, the fallback without observation, getters and static methods of classes).

mod support;

use std::fmt::Write as _;
use std::fs;
use std::process::Command;

use support::{describe_output, repo_root, workerd_bin, COMPATIBILITY_DATE};

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
    for name in &names {
        if name != "runtime.js" {
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
    let config = format!(
        r#"using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = ( services = [ (name = "runtime-unit", worker = .worker) ] );
const worker :Workerd.Worker = (
  modules = [
{modules}
  ],
  compatibilityDate = {COMPATIBILITY_DATE:?},
);
"#
    );
    fs::write(dir.path().join("config.capnp"), config).unwrap();

    let mut cmd = Command::new(workerd_bin());
    cmd.arg("test").arg("config.capnp").current_dir(dir.path());
    let output = cmd.output().expect("run workerd test");
    let report = describe_output(&cmd, &output);
    assert!(output.status.success(), "{report}");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for test in [
        "panicKeepsState",
        "jsRangeErrorIsRecoverable",
        "trapReinitialisesOnce",
        "asyncAbortFailsCallsInFlight",
        "scheduleReinitWhileAlive",
        "classesAreRebuiltFromTheirArguments",
        "fallbackWithoutObservation",
        "workerShapes",
    ] {
        assert!(
            text.contains(&format!("[ PASS ] runtime-unit:{test}")),
            "{test} did not pass:\n{report}"
        );
    }
}
