//! The CI that the book tells users to copy is exercised here, so it cannot rot silently:
//! `ci/worker-ci.sh` runs on a project generated from the `hello` template by the freshly built
//! binary (first on PATH, so `cargo worker-build` is this build), sharing the fixtures' target
//! directory. And the GitHub workflow and composite action users copy or call are checked to run
//! that very script, with the caches the book describes.
//!
//! Needs the toolchain the templates pin (`./install.sh` installs it).

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

fn script() -> PathBuf {
    support::repo_root().join("ci").join("worker-ci.sh")
}

/// PATH with the binary under test in front.
fn path_with_tool() -> std::ffi::OsString {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_cargo-worker-build"))
        .parent()
        .unwrap()
        .to_path_buf();
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(&rest))).unwrap()
}

/// Runs the script the way a CI job would, with `vars` set. It builds into the shared target
/// dir, where scaffold_e2e builds a crate of the same name (the same output file): hold the one
/// build lock.
fn run_script(project: &Path, vars: &[(&str, &str)]) -> (Output, String) {
    let _serial = support::BUILD_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut cmd = Command::new("bash");
    cmd.arg(script())
        .env("PATH", path_with_tool())
        .env("WORKER_DIR", project)
        .env("CARGO_TARGET_DIR", support::fixtures_target_dir())
        .env("CARGO_TERM_COLOR", "never")
        // Nothing may be installed: the tool on PATH must be the one used.
        .env("CWB_INSTALL", "--this-must-not-run")
        // The machine's own sccache server and cache stay out of it (tests/it/cache.rs covers it).
        .env("WORKER_CACHE", "none")
        .env_remove("CWB_VERSION")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTUP_TOOLCHAIN_SOURCE")
        .env_remove("RUSTFLAGS")
        .env_remove("WORKER_EH")
        .env_remove("WORKER_RUNTIME")
        .env_remove("WORKER_BUILD_ARGS")
        .env_remove("WORKER_LOCKED")
        .env_remove("WORKER_OUT_DIR")
        .env_remove("WORKER_CHECK_REPORT")
        .current_dir(project.parent().unwrap());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let output = support::run(&mut cmd);
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output, text)
}

#[test]
fn the_ci_script_builds_and_checks_a_project_from_the_hello_template() {
    let tmp = tempfile::Builder::new()
        .prefix("cwb-ci-script-")
        .tempdir()
        .unwrap();
    // The name tests/it/scaffold_e2e.rs gives its hello project: the same crate, so the same
    // module, and one wasm-opt run (the tool keeps its result) serves both tests.
    let project = tmp.path().join("e2e-hello");
    let mut new = support::tool();
    new.arg("new").arg(&project);
    support::run_ok(&mut new);
    assert!(!project.join("Cargo.lock").exists());

    // First run, as on a fresh clone without a lock file: it warns, builds with --unwind, checks.
    let started = Instant::now();
    let (output, text) = run_script(&project, &[("WORKER_CHECK_REPORT", "report.json")]);
    eprintln!("first run of worker-ci.sh: {:.1?}", started.elapsed());
    assert!(output.status.success(), "worker-ci.sh failed:\n{text}");
    assert!(
        !text.contains("installing:"),
        "the script tried to install the tool that is on PATH:\n{text}"
    );
    let tool_line = format!(
        "using {}",
        Path::new(env!("CARGO_BIN_EXE_cargo-worker-build")).display()
    );
    assert!(text.contains(&tool_line), "expected `{tool_line}`:\n{text}");
    assert!(
        text.contains("no Cargo.lock next to"),
        "no warning about the missing lock file:\n{text}"
    );
    assert!(
        text.contains("Plan rustflags [\"-Cpanic=unwind\"]"),
        "the plan was not printed:\n{text}"
    );
    assert!(
        text.contains("check-eh: passed"),
        "the check did not run:\n{text}"
    );
    assert!(
        text.contains("worker-ci: passed (build, unwind, exnref, loads in workerd)"),
        "{text}"
    );
    for file in ["index.js", "index_bg.wasm", "worker/shim.mjs"] {
        assert!(
            project.join("build").join(file).is_file(),
            "build/{file} is missing"
        );
    }
    assert!(
        !project.join("build/glue.js").exists(),
        "the glue is bundled into index.js"
    );

    // The JSON report, written relative to where the script was started.
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(tmp.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["passed"], true, "{report}");
    let module = &report["modules"][0];
    assert_eq!(module["expect"], "unwind", "{report}");
    assert_eq!(module["unwinding"]["unwinds"], true, "{report}");
    assert_eq!(module["eh"]["encoding"], "exnref", "{report}");
    assert_eq!(module["load"]["loads"], true, "{report}");

    // Second run, as in CI with the lock file committed: --locked, nothing rebuilt.
    assert!(project.join("Cargo.lock").is_file());
    let started = Instant::now();
    let (output, text) = run_script(&project, &[]);
    eprintln!("second run of worker-ci.sh: {:.1?}", started.elapsed());
    assert!(output.status.success(), "worker-ci.sh failed:\n{text}");
    assert!(
        !text.contains("no Cargo.lock"),
        "the lock file was not found:\n{text}"
    );
    assert!(text.contains("check-eh: passed"), "{text}");

    // A bundle that would not load where it is deployed fails the pipeline: Node.js 20 has no
    // exnref.
    let (output, text) = run_script(&project, &[("WORKER_RUNTIME", "node20")]);
    assert!(
        !output.status.success(),
        "worker-ci.sh passed a bundle that cannot load in node20:\n{text}"
    );
    assert!(
        text.contains("node20 lacks exnref") && text.contains("check-eh: FAILED"),
        "{text}"
    );
    assert!(!text.contains("worker-ci: passed"), "{text}");

    // Bad settings are refused before anything runs.
    let (output, text) = run_script(&project, &[("WORKER_EH", "exnref2")]);
    assert!(!output.status.success());
    assert!(
        text.contains("WORKER_EH must be exnref or legacy, not 'exnref2'"),
        "{text}"
    );
}

fn read(relative: &str) -> String {
    fs::read_to_string(support::repo_root().join(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

#[test]
fn the_workflow_and_the_action_users_copy_run_the_ci_script_with_the_caches() {
    let workflow = read("ci/github-workflow.yml");
    let action = read(".github/actions/worker-build/action.yml");
    for (name, text) in [
        ("ci/github-workflow.yml", &workflow),
        (".github/actions/worker-build/action.yml", &action),
    ] {
        assert!(
            text.contains("ci/worker-ci.sh"),
            "{name} does not run ci/worker-ci.sh"
        );
        assert!(text.contains("actions/cache@"), "{name} caches nothing");
        assert!(
            text.contains("~/.cache/cargo-worker-build"),
            "{name} does not cache the tool cache"
        );
        assert!(
            text.lines().any(|l| l.trim().ends_with("target")),
            "{name} does not cache the target directory"
        );
        assert!(!text.contains('\t'), "{name} has a tab; YAML needs spaces");
        assert!(
            text.contains("mozilla-actions/sccache-action@")
                && text.contains("SCCACHE_GHA_ENABLED"),
            "{name} does not cache rustc calls with sccache's GitHub Actions backend"
        );
    }
    // Every input of the action reaches the script.
    for (input, variable) in [
        ("working-directory", "WORKER_DIR"),
        ("eh", "WORKER_EH"),
        ("runtime", "WORKER_RUNTIME"),
        ("out-dir", "WORKER_OUT_DIR"),
        ("args", "WORKER_BUILD_ARGS"),
        ("locked", "WORKER_LOCKED"),
        ("report", "WORKER_CHECK_REPORT"),
    ] {
        assert!(
            action.contains(&format!("{variable}: ${{{{ inputs.{input} }}}}")),
            "the action does not pass input `{input}` as {variable}"
        );
        assert!(
            read("ci/worker-ci.sh").contains(variable),
            "worker-ci.sh ignores {variable}"
        );
    }
    // This repository's own CI runs the action on a template project.
    let ci = read(".github/workflows/ci.yml");
    assert!(ci.contains("uses: ./.github/actions/worker-build"), "{ci}");
    // The book shows the files themselves, not copies that could drift.
    let chapter = read("book/src/ci.md");
    assert!(chapter.contains("{{#include ../../ci/github-workflow.yml}}"));
    assert!(chapter.contains("{{#include ../../ci/worker-ci.sh}}"));
}

/// Every CI cache key this repository ships names the CPU architecture as well as the OS: the
/// tool cache holds native binaries (wasm-bindgen, esbuild) and the target directory native
/// build scripts, so an x64 cache restored on an arm64 runner would hand it programs it cannot run.
#[test]
fn every_ci_cache_key_names_the_architecture() {
    let mut files = vec![
        "ci/github-workflow.yml".to_string(),
        ".github/actions/worker-build/action.yml".to_string(),
        ".github/workflows/ci.yml".to_string(),
    ];
    for template in fs::read_dir(support::repo_root().join("templates")).unwrap() {
        let workflow = template
            .unwrap()
            .path()
            .join(".github/workflows/worker.yml");
        if workflow.is_file() {
            files.push(
                workflow
                    .strip_prefix(support::repo_root())
                    .unwrap()
                    .display()
                    .to_string(),
            );
        }
    }
    let mut keys = 0;
    for name in &files {
        for line in read(name).lines() {
            let line = line.trim();
            if line.starts_with("key:") || line.starts_with("restore-keys:") {
                keys += 1;
                assert!(
                    line.contains("${{ runner.arch }}"),
                    "{name}: a cache key without the architecture: {line}"
                );
            }
        }
    }
    assert!(keys >= 5, "found only {keys} cache keys in {files:?}");
}
