//! Bad input: each case gets one clear line (what is wrong and what to do), a non-zero exit,
//! and nothing lost: the user's files and the previous bundle stay as they were.

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{copy_fixture, error_lines, fixtures_target_dir, run, tool};

/// Exactly one `error:` line, containing every expected fragment; returns it.
#[track_caller]
fn one_error(output: &Output, expected: &[&str]) -> String {
    let errors = error_lines(output);
    assert_eq!(
        errors.len(),
        1,
        "expected one error line, got {errors:?}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for fragment in expected {
        assert!(
            errors[0].contains(fragment),
            "error line lacks {fragment:?}: {}",
            errors[0]
        );
    }
    errors[0].clone()
}

fn tool_in(dir: &Path) -> Command {
    let mut cmd = tool();
    cmd.current_dir(dir);
    cmd
}

/// Every file under `dir` with its contents, to prove a failed run changed nothing.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((
                    path.strip_prefix(dir).unwrap().to_path_buf(),
                    fs::read(&path).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

/// A previous bundle the tool must not touch when a build fails.
fn plant_previous_bundle(out: &Path) {
    fs::create_dir_all(out).unwrap();
    // The manifest lists the bundle's files: a directory holding others is not replaced.
    fs::write(
        out.join(".worker-build.json"),
        "{\"previous\": true, \"files\": [\"index.js\"]}\n",
    )
    .unwrap();
    fs::write(
        out.join("index.js"),
        "export default { fetch() { return new Response('previous'); } };\n",
    )
    .unwrap();
}

#[test]
fn no_cargo_toml() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&mut tool_in(dir.path()));
    assert_eq!(out.status.code(), Some(1));
    one_error(
        &out,
        &["could not find `Cargo.toml`", "cargo worker-build new"],
    );
    let out = run(tool_in(dir.path()).args(["--manifest-path", "nope/Cargo.toml"]));
    one_error(&out, &["nope/Cargo.toml", "does not exist"]);
}

#[test]
fn package_without_cdylib_shows_the_crate_type_line() {
    let dir = copy_fixture("plain");
    let manifest = dir.path().join("Cargo.toml");
    let text = fs::read_to_string(&manifest)
        .unwrap()
        .replace("crate-type = [\"cdylib\"]", "crate-type = [\"rlib\"]");
    fs::write(&manifest, &text).unwrap();
    let before = snapshot(dir.path());
    let out = run(&mut tool_in(dir.path()));
    assert_eq!(out.status.code(), Some(1));
    let line = one_error(
        &out,
        &["no `cdylib`", "crate-type = [\"cdylib\"]", "Cargo.toml"],
    );
    assert!(
        line.starts_with("error[no-cdylib]: "),
        "the stable code is printed: {line}"
    );
    assert_eq!(snapshot(dir.path()), before, "the package was changed");

    // Scripts reading JSON get a last record saying the build failed, and why.
    let out = run(tool_in(dir.path()).args(["--message-format", "json"]));
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("a JSON record on stdout"))
            .unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(last["reason"], "build-finished", "{last}");
    assert_eq!(last["success"], false, "{last}");
    assert_eq!(last["code"], "no-cdylib", "{last}");
    assert_eq!(last["exit_code"], 1, "{last}");
    assert!(
        last["message"].as_str().unwrap().contains("no `cdylib`"),
        "{last}"
    );
}

#[test]
fn package_without_wasm_bindgen_names_the_command_to_add_it() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("src")).unwrap();
    fs::write(dir.path().join("Cargo.toml"), "[package]\nname = \"bare\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[workspace]\n").unwrap();
    fs::write(dir.path().join("src/lib.rs"), "").unwrap();
    let out = run(&mut tool_in(dir.path()));
    assert_eq!(out.status.code(), Some(1));
    one_error(
        &out,
        &["does not depend on wasm-bindgen", "cargo add wasm-bindgen"],
    );
}

#[test]
fn wasm_bindgen_too_old_for_unwind_names_the_cargo_toml_line() {
    let dir = copy_fixture("old-bindgen");
    let out = run(tool_in(dir.path()).arg("--unwind"));
    assert_eq!(out.status.code(), Some(1));
    let line = one_error(
        &out,
        &[
            "wasm-bindgen 0.2.100",
            "0.2.127",
            "wasm-bindgen = \"=0.2.130\"",
        ],
    );
    assert!(
        line.contains(&dir.path().join("Cargo.toml").display().to_string()),
        "{line}"
    );
    // Without --unwind it is still too old: abort recovery needs 0.2.125.
    let out = run(&mut tool_in(dir.path()));
    one_error(&out, &["wasm-bindgen 0.2.100", "0.2.125"]);
}

#[test]
fn wasm_bindgen_binary_of_the_wrong_version() {
    let dir = copy_fixture("plain");
    let fake = dir.path().join("fake-wasm-bindgen");
    fs::write(&fake, "#!/bin/sh\necho 'wasm-bindgen 0.2.99'\n").unwrap();
    make_executable(&fake);
    let out = run(tool_in(dir.path()).env("WASM_BINDGEN", &fake));
    assert_eq!(out.status.code(), Some(1));
    one_error(
        &out,
        &[
            "WASM_BINDGEN=",
            "wasm-bindgen 0.2.99",
            "0.2.130",
            "unset it",
        ],
    );
}

#[test]
fn a_dry_run_shows_an_unusable_tool_in_the_plan_and_fails_as_the_build_would() {
    let dir = copy_fixture("plain");
    let fake = dir.path().join("fake-wasm-bindgen");
    fs::write(&fake, "#!/bin/sh\necho 'wasm-bindgen 0.2.99'\n").unwrap();
    make_executable(&fake);
    let out = run(tool_in(dir.path()).env("WASM_BINDGEN", &fake).args([
        "--dry-run",
        "--message-format",
        "json",
    ]));
    assert_eq!(out.status.code(), Some(1));
    one_error(&out, &["WASM_BINDGEN=", "wasm-bindgen 0.2.99"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let tool = &lines[0]["plan"]["tools"]["wasm_bindgen"];
    assert_eq!(tool["status"], "unavailable", "{tool}");
    assert_eq!(tool["fatal"], true, "{tool}");
    assert_eq!(tool["code"], "wasm-bindgen-wrong-version", "{tool}");
    let last = lines.last().unwrap();
    assert_eq!(last["success"], false, "{stdout}");
    assert_eq!(last["code"], "wasm-bindgen-wrong-version", "{stdout}");
}

#[test]
fn worker_builds_wasm_bindgen_bin_is_read_and_ours_wins_with_a_note() {
    let dir = copy_fixture("plain");
    let fake = dir.path().join("fake-wasm-bindgen");
    fs::write(&fake, "#!/bin/sh\necho 'wasm-bindgen 0.2.99'\n").unwrap();
    make_executable(&fake);
    let out = run(tool_in(dir.path()).env("WASM_BINDGEN_BIN", &fake));
    assert_eq!(out.status.code(), Some(1));
    one_error(
        &out,
        &[
            "WASM_BINDGEN_BIN=",
            "wasm-bindgen 0.2.99",
            "point WASM_BINDGEN_BIN at",
        ],
    );
    // Both set to different binaries: ours is the one used, and a note says so.
    let out = run(tool_in(dir.path())
        .env("WASM_BINDGEN", &fake)
        .env("WASM_BINDGEN_BIN", "/elsewhere/wasm-bindgen"));
    one_error(&out, &["WASM_BINDGEN=", "point WASM_BINDGEN at"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("WASM_BINDGEN_BIN=/elsewhere/wasm-bindgen differ; using WASM_BINDGEN"),
        "{stderr}"
    );
}

#[test]
fn offline_with_the_wasm_bindgen_cli_missing_says_to_build_once_online() {
    let dir = copy_fixture("plain");
    let cache = tempfile::tempdir().unwrap();
    let out = run(tool_in(dir.path())
        .arg("--offline")
        .env("CARGO_WORKER_BUILD_CACHE", cache.path())
        .env("PATH", path_without("wasm-bindgen")));
    assert_eq!(out.status.code(), Some(1));
    one_error(
        &out,
        &[
            "wasm-bindgen 0.2.130 is not installed",
            "--offline",
            "build once without --offline",
            "from the Cargo.lock this tool ships",
            "WASM_BINDGEN",
        ],
    );
    // Only the remembered package selection (plans/) may be written; no tool.
    let written: Vec<_> = fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "plans")
        .collect();
    assert!(
        written.is_empty(),
        "nothing may be installed offline: {written:?}"
    );
}

#[test]
fn missing_rustup_says_what_to_install() {
    let dir = copy_fixture("plain");
    // A system Rust without rustup: cargo and rustc on PATH, nothing else.
    let bin = tempfile::tempdir().unwrap();
    for tool in ["cargo", "rustc"] {
        let real = String::from_utf8(
            Command::new("rustup")
                .args(["which", tool, "--toolchain", "stable"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        std::os::unix::fs::symlink(real.trim(), bin.path().join(tool)).unwrap();
    }
    let out = run(tool_in(dir.path())
        .arg("--unwind")
        .env_remove("CARGO")
        .env("PATH", bin.path()));
    assert_eq!(out.status.code(), Some(1));
    one_error(&out, &["rustup was not found", "rustup toolchain install nightly-2026-10-30 --profile minimal --component rust-src --target wasm32-unknown-unknown"]);
}

#[test]
fn stable_toolchain_file_with_unwind() {
    let dir = copy_fixture("plain");
    fs::write(
        dir.path().join("rust-toolchain.toml"),
        "[toolchain]\nchannel = \"stable\"\n",
    )
    .unwrap();
    let out = run(tool_in(dir.path()).arg("--unwind"));
    assert_eq!(out.status.code(), Some(1));
    one_error(
        &out,
        &[
            "needs a nightly",
            "rust-toolchain.toml",
            "channel = \"nightly-2026-10-30\"",
        ],
    );
}

#[test]
fn eh_without_unwind_and_unknown_flags_are_usage_errors() {
    let dir = copy_fixture("plain");
    let out = run(tool_in(dir.path()).args(["--eh", "legacy"]));
    assert_eq!(out.status.code(), Some(2));
    one_error(&out, &["--eh", "--unwind"]);
    let out = run(tool_in(dir.path()).arg("--unwnid"));
    assert_eq!(out.status.code(), Some(2));
    one_error(&out, &["--unwnid"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--unwind"),
        "clap suggests the right flag"
    );
}

#[test]
fn worker_build_flags_and_variables_without_counterpart_say_what_to_use_instead() {
    let dir = copy_fixture("plain");
    let out_dir = dir.path().join("build");
    plant_previous_bundle(&out_dir);
    let before = snapshot(dir.path());
    for (args, env, expected) in [
        (
            &["--release", "--no-panic-recovery"][..],
            None,
            &["--no-panic-recovery", "drop --no-panic-recovery"][..],
        ),
        (&["--profiling"], None, &["--profiling", "--release"]),
        (
            &["--scope", "acme"],
            None,
            &["--scope acme", "drop --scope"],
        ),
        (&["--emscripten"], None, &["--emscripten", "cdylib"]),
        (
            &["--release"],
            Some(("RUN_TO_COMPLETION", "1")),
            &["RUN_TO_COMPLETION", "ctx.wait_until"],
        ),
        (
            &["--release"],
            Some(("CUSTOM_SHIM", "shim.js")),
            &["CUSTOM_SHIM", "--lib"],
        ),
    ] {
        let mut cmd = tool_in(dir.path());
        cmd.args(args);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let out = run(&mut cmd);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}");
        one_error(&out, expected);
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("unexpected argument"),
            "not clap's generic message"
        );
    }
    assert_eq!(snapshot(dir.path()), before, "nothing was touched");
}

#[test]
fn a_crate_directory_that_is_not_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(tool_in(dir.path()).arg("tool"));
    assert_eq!(out.status.code(), Some(1));
    one_error(
        &out,
        &[
            "`tool` is neither a crate directory",
            "new, init, check, tools",
        ],
    );
}

#[test]
fn virtual_workspace_without_package_lists_cdylib_members() {
    let ws = tempfile::tempdir().unwrap();
    fs::write(
        ws.path().join("Cargo.toml"),
        "[workspace]\nmembers = [\"worker\", \"shared\"]\nresolver = \"2\"\n",
    )
    .unwrap();
    let worker = copy_fixture("plain");
    support::copy_tree(worker.path(), &ws.path().join("worker"), &|rel| {
        rel == Path::new("Cargo.lock")
    });
    let worker_toml = ws.path().join("worker/Cargo.toml");
    let text = fs::read_to_string(&worker_toml)
        .unwrap()
        .replace("\n[workspace]\n", "\n");
    fs::write(&worker_toml, text).unwrap();
    fs::copy(
        worker.path().join("Cargo.lock"),
        ws.path().join("Cargo.lock"),
    )
    .unwrap();
    fs::create_dir_all(ws.path().join("shared/src")).unwrap();
    fs::write(
        ws.path().join("shared/Cargo.toml"),
        "[package]\nname = \"shared\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    fs::write(ws.path().join("shared/src/lib.rs"), "").unwrap();

    let out = run(&mut tool_in(ws.path()));
    assert_eq!(out.status.code(), Some(1));
    one_error(
        &out,
        &[
            "virtual workspace",
            "cdylib members: fixture-plain",
            "cargo worker-build -p fixture-plain",
        ],
    );
    let out = run(tool_in(ws.path()).args(["-p", "nope"]));
    one_error(&out, &["`nope` is not a member", "fixture-plain, shared"]);
    // -p picks the member; --dry-run shows the plan without building.
    let out = run(tool_in(ws.path()).args([
        "-p",
        "fixture-plain",
        "--dry-run",
        "--message-format",
        "json",
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let plan: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(
        plan["plan"]["out_dir"],
        ws.path().join("worker/build").display().to_string()
    );
}

#[test]
fn unwritable_out_dir_keeps_everything() {
    let dir = copy_fixture("plain");
    let blocker = dir.path().join("not-a-dir");
    fs::write(&blocker, "a file where a directory would go").unwrap();
    let out = run(tool_in(dir.path())
        .args(["--target-dir"])
        .arg(fixtures_target_dir())
        .arg("--out-dir")
        .arg(blocker.join("build")));
    assert_eq!(out.status.code(), Some(1));
    one_error(&out, &["cannot write the bundle", "--out-dir"]);
    assert_eq!(
        fs::read_to_string(&blocker).unwrap(),
        "a file where a directory would go"
    );
}

#[test]
fn out_dir_that_is_not_a_bundle_is_never_replaced() {
    let dir = copy_fixture("plain");
    let theirs = dir.path().join("src");
    let before = snapshot(&theirs);
    let out = run(tool_in(dir.path())
        .args(["--target-dir"])
        .arg(fixtures_target_dir())
        .arg("--out-dir")
        .arg(&theirs));
    assert_eq!(out.status.code(), Some(1));
    one_error(&out, &["does not hold a cargo-worker-build bundle"]);
    assert_eq!(snapshot(&theirs), before);
}

#[test]
fn compile_error_passes_cargo_exit_code_and_keeps_the_previous_bundle() {
    let dir = copy_fixture("plain");
    // Cargo hashes path packages relative to their workspace, so copies of one fixture share
    // fingerprints in the shared target dir; a copy with different sources needs its own name.
    rename_package(dir.path(), "fixture-plain", "fixture-plain-broken");
    let lib = dir.path().join("src/lib.rs");
    let mut text = fs::read_to_string(&lib).unwrap();
    text.push_str("\nfn broken() -> u32 { \"not a number\" }\n");
    fs::write(&lib, text).unwrap();
    let out_dir = dir.path().join("build");
    plant_previous_bundle(&out_dir);
    let before = snapshot(&out_dir);
    let out = run(tool_in(dir.path())
        .args(["--target-dir"])
        .arg(fixtures_target_dir()));
    assert_eq!(
        out.status.code(),
        Some(101),
        "cargo exit code; stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error[E0308]"),
        "cargo's diagnostic is shown as cargo renders it:\n{stderr}"
    );
    let ours: Vec<_> = error_lines(&out)
        .into_iter()
        .filter(|l| l.contains("could not compile `fixture-plain-broken` for the wasm32"))
        .collect();
    assert_eq!(ours.len(), 1, "{stderr}");
    assert_eq!(
        snapshot(&out_dir),
        before,
        "the previous bundle was touched"
    );
}

#[test]
fn failing_wasm_bindgen_keeps_the_previous_bundle() {
    let dir = copy_fixture("plain");
    let fake = dir.path().join("broken-wasm-bindgen");
    fs::write(&fake, "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'wasm-bindgen 0.2.130'; exit 0; fi\necho 'error: simulated failure' >&2\nexit 1\n").unwrap();
    make_executable(&fake);
    let out_dir = dir.path().join("build");
    plant_previous_bundle(&out_dir);
    let before = snapshot(&out_dir);
    let out = run(tool_in(dir.path())
        .env("WASM_BINDGEN", &fake)
        .args(["--target-dir"])
        .arg(fixtures_target_dir()));
    assert_eq!(out.status.code(), Some(1));
    one_error(&out, &["wasm-bindgen failed", "fixture_plain.wasm"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("  error: simulated failure"),
        "its output is shown below the line:\n{stderr}"
    );
    assert_eq!(
        snapshot(&out_dir),
        before,
        "the previous bundle was touched"
    );
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("staging"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "staging directories left behind: {leftovers:?}"
    );
}

fn rename_package(dir: &Path, from: &str, to: &str) {
    for file in ["Cargo.toml", "Cargo.lock"] {
        let path = dir.join(file);
        let text = fs::read_to_string(&path)
            .unwrap()
            .replace(&format!("name = \"{from}\""), &format!("name = \"{to}\""));
        fs::write(&path, text).unwrap();
    }
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// PATH with every directory holding `program` left out.
fn path_without(program: &str) -> std::ffi::OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::env::split_paths(&path).filter(|d| !d.join(program).exists()))
        .unwrap()
}

#[test]
fn offline_with_the_toolchain_missing_prints_the_rustup_command() {
    let dir = copy_fixture("plain");
    let out = run(tool_in(dir.path()).args([
        "--unwind",
        "--offline",
        "--toolchain",
        "nightly-2026-01-01",
    ]));
    assert_eq!(out.status.code(), Some(1));
    one_error(
        &out,
        &[
            "toolchain `nightly-2026-01-01`",
            "--offline",
            "rustup toolchain install nightly-2026-01-01 --profile minimal --component rust-src --target wasm32-unknown-unknown --no-self-update",
        ],
    );
}

/// worker-build's WASM_OPT_BIN and ESBUILD_BIN reach the steps after cargo: a wasm-opt too old
/// for exception handling, and an esbuild that does not run, are refused by those names.
#[test]
fn worker_builds_wasm_opt_bin_and_esbuild_bin_are_used() {
    let dir = copy_fixture("plain");
    let old_opt = dir.path().join("old-wasm-opt");
    fs::write(&old_opt, "#!/bin/sh\necho 'wasm-opt version 108'\n").unwrap();
    make_executable(&old_opt);
    let out_dir = dir.path().join("build");
    plant_previous_bundle(&out_dir);
    let before = snapshot(&out_dir);
    let out = run(tool_in(dir.path())
        .env_remove("WASM_OPT")
        .env("WASM_OPT_BIN", &old_opt)
        .arg("--target-dir")
        .arg(fixtures_target_dir()));
    assert_eq!(out.status.code(), Some(1));
    one_error(
        &out,
        &[
            "WASM_OPT_BIN=",
            "wasm-opt version 108",
            "point WASM_OPT_BIN at",
        ],
    );
    let broken_esbuild = dir.path().join("no-such-esbuild");
    let out = run(tool_in(dir.path())
        .env_remove("ESBUILD")
        .env("ESBUILD_BIN", &broken_esbuild)
        .args(["--no-opt", "--target-dir"])
        .arg(fixtures_target_dir()));
    assert_eq!(out.status.code(), Some(1));
    one_error(
        &out,
        &[
            "ESBUILD_BIN=",
            "not a runnable esbuild",
            "point ESBUILD_BIN at",
        ],
    );
    assert_eq!(
        snapshot(&out_dir),
        before,
        "the previous bundle was touched"
    );
}
