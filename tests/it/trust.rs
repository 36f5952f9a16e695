//! The tool keeps what it promises about files (issue 22): a bundle holds this package's code
//! even when another package of the same name shares the target directory, the output directory
//! is replaced only when it is entirely ours, a damaged bundle is rebuilt, and a build killed at
//! any stage leaves the previous bundle intact and complete, with the next build cleaning up.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::{
    self, build_command, copy_fixture, error_lines, json_record, run, run_ok, Mode, Workerd,
};

/// The plain fixture, copied, answering unknown paths with `404 not found <tag>`.
fn tagged_copy(tag: &str) -> tempfile::TempDir {
    let dir = copy_fixture("plain");
    retag(dir.path(), "not found", tag);
    dir
}

/// Change the 404 text of a copy made by [`tagged_copy`] from `old` to `new`.
fn retag(crate_dir: &Path, old_tag: &str, new_tag: &str) {
    let lib = crate_dir.join("src/lib.rs");
    let source = fs::read_to_string(&lib).unwrap();
    let old = format!("text(404, \"{old_tag}\")");
    assert!(source.contains(&old), "{} has {old}", lib.display());
    fs::write(
        &lib,
        source.replace(&old, &format!("text(404, \"{new_tag}\")")),
    )
    .unwrap();
}

/// A quick build: panic=abort on stable (no -Zbuild-std) without wasm-opt.
fn quick_build(crate_dir: &Path) -> Command {
    let mut cmd = build_command(crate_dir, &crate_dir.join("build"), Mode::Abort);
    cmd.arg("--no-opt");
    cmd
}

#[test]
fn a_bundle_holds_its_own_checkouts_code_when_another_shares_the_target_dir() {
    let _serial = support::BUILD_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let main = tagged_copy("MAIN");
    let feature = tagged_copy("FEATURE");

    // Alternately: the second build of `main` finds cargo's module written by `feature`.
    run_ok(&mut quick_build(main.path()));
    run_ok(&mut quick_build(feature.path()));
    let again = run_ok(quick_build(main.path()).args(["--message-format", "json"]));
    assert_eq!(
        json_record(&again.stdout, "build-finished")["success"],
        true
    );
    Workerd::serve(&main.path().join("build")).expect("/x", 404, "MAIN");
    Workerd::serve(&feature.path().join("build")).expect("/x", 404, "FEATURE");

    // Concurrently, each with a change to compile.
    retag(main.path(), "MAIN", "MAIN 2");
    retag(feature.path(), "FEATURE", "FEATURE 2");
    let mut first = quick_build(main.path());
    let mut second = quick_build(feature.path());
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| run(&mut first));
        let b = s.spawn(|| run(&mut second));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(
        a.status.success(),
        "{}",
        support::describe_output(&first, &a)
    );
    assert!(
        b.status.success(),
        "{}",
        support::describe_output(&second, &b)
    );
    Workerd::serve(&main.path().join("build")).expect("/x", 404, "MAIN 2");
    Workerd::serve(&feature.path().join("build")).expect("/x", 404, "FEATURE 2");
}

/// Every file of the bundle in `dir` and its bytes.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let rel = path
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Names next to the bundle directory that a build leaves: staging and old directories.
fn leftovers(crate_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(crate_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".build.") && n != ".build.lock")
        .collect();
    names.sort();
    names
}

#[test]
fn a_build_killed_at_any_stage_keeps_the_previous_bundle_and_the_next_one_cleans_up() {
    let _serial = support::BUILD_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let copy = tagged_copy("v0");
    let out = copy.path().join("build");
    run_ok(&mut quick_build(copy.path()));
    let mut tag = "v0".to_string();
    for stage in ["cargo", "wasm-bindgen", "wasm-opt", "esbuild", "swap"] {
        for (signal, code) in [("KILL", None), ("INT", Some(130))] {
            let previous = contents(&out);
            let next = format!("{stage} {signal}");
            retag(copy.path(), &tag, &next);
            tag = next;
            let mut cmd = quick_build(copy.path());
            if stage == "wasm-opt" {
                cmd = build_command(copy.path(), &out, Mode::Abort);
            }
            let mut child = cmd
                .env("__CARGO_WORKER_BUILD_PAUSE", stage)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let (tx, rx) = mpsc::channel();
            let stderr = child.stderr.take().unwrap();
            let reader = std::thread::spawn(move || {
                let mut seen = String::new();
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.starts_with("paused at ") {
                        let _ = tx.send(());
                    }
                    seen.push_str(&line);
                    seen.push('\n');
                }
                seen
            });
            if rx.recv_timeout(Duration::from_secs(300)).is_err() {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the build never reached {stage}:\n{}",
                    reader.join().unwrap()
                );
            }
            let sent = Command::new("kill")
                .args([format!("-{signal}"), child.id().to_string()])
                .status()
                .unwrap();
            assert!(sent.success());
            let status = child.wait().unwrap();
            let stderr = reader.join().unwrap();
            assert_eq!(
                status.code(),
                code,
                "SIGINT exits 130, at {stage}:\n{stderr}"
            );
            assert!(
                contents(&out) == previous,
                "SIG{signal} at {stage} changed the previous bundle"
            );
            if signal == "INT" {
                assert_eq!(
                    leftovers(copy.path()),
                    Vec::<String>::new(),
                    "SIGINT at {stage} cleans up"
                );
            }
            // The next build succeeds, and sweeps what the killed one left.
            run_ok(&mut quick_build(copy.path()));
            assert_eq!(
                leftovers(copy.path()),
                Vec::<String>::new(),
                "after SIG{signal} at {stage}"
            );
        }
    }
    Workerd::serve(&out).expect("/x", 404, &tag);
}

/// Whether a process of process group `group` runs a command line that contains `needle`.
fn group_runs(group: u32, needle: &str) -> bool {
    let Ok(procs) = fs::read_dir("/proc") else {
        return false;
    };
    procs.flatten().any(|p| {
        let stat = fs::read_to_string(p.path().join("stat")).unwrap_or_default();
        // pid (comm) state ppid pgrp ...: the fields after the last ')'.
        let pgrp = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(2))
            .and_then(|g| g.parse::<u32>().ok());
        pgrp == Some(group)
            && fs::read(p.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
    })
}

/// wrangler cancels a running `[build] command` with SIGTERM to its process tree when the next
/// edit arrives: here while wasm-opt is running, as it is for most of a release bundle step.
#[cfg(unix)]
#[test]
fn a_build_cancelled_as_wrangler_does_while_wasm_opt_runs_keeps_the_previous_bundle() {
    use std::os::unix::process::CommandExt;
    let _serial = support::BUILD_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let copy = tagged_copy("before");
    let out = copy.path().join("build");
    run_ok(&mut quick_build(copy.path()));
    let previous = contents(&out);
    // A module no kept wasm-opt result is for: wasm-opt really runs.
    retag(
        copy.path(),
        "before",
        &format!("cancelled {}", std::process::id()),
    );
    let mut child = build_command(copy.path(), &out, Mode::Abort)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let group = child.id();
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while !group_runs(group, "wasm-opt") {
        if std::time::Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "wasm-opt never ran:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let sent = Command::new("kill")
        .args(["-s", "TERM", "--", &format!("-{group}")])
        .status()
        .unwrap();
    assert!(sent.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(143),
        "SIGTERM exits 143:\n{stderr}"
    );
    assert!(contents(&out) == previous, "the previous bundle changed");
    assert_eq!(leftovers(copy.path()), Vec::<String>::new());
    // The next build takes the same module to the end.
    run_ok(&mut build_command(copy.path(), &out, Mode::Abort));
    Workerd::serve(&out).expect("/x", 404, &format!("cancelled {}", std::process::id()));
}

#[test]
fn an_out_dir_that_is_not_entirely_ours_is_refused_in_one_line_and_kept() {
    let _serial = support::BUILD_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let copy = tagged_copy("one");
    let wrangler = copy.path().join("wrangler.toml");
    fs::write(&wrangler, "name = \"w\"\nmain = \"build/index.js\"\n").unwrap();
    let output = run(build_command(copy.path(), &wrangler, Mode::Abort).arg("--no-opt"));
    assert!(!output.status.success());
    let errors = error_lines(&output);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("is a file"), "{errors:?}");
    assert_eq!(
        fs::read_to_string(&wrangler).unwrap(),
        "name = \"w\"\nmain = \"build/index.js\"\n"
    );
    assert_eq!(
        fs::read_dir(copy.path())
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("wrangler.toml."))
            .count(),
        0,
        "no hidden copy of wrangler.toml"
    );

    // A file the user put into the bundle directory.
    let out = copy.path().join("build");
    run_ok(&mut quick_build(copy.path()));
    fs::write(out.join("_headers"), "/*\n  X-Frame-Options: DENY\n").unwrap();
    let before = contents(&out);
    retag(copy.path(), "one", "two");
    let output = run(&mut quick_build(copy.path()));
    assert!(!output.status.success());
    let errors = error_lines(&output);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("_headers"), "{errors:?}");
    assert_eq!(contents(&out), before, "bundle and the user's file intact");
}

#[test]
fn a_damaged_bundle_is_rebuilt_not_called_fresh() {
    let _serial = support::BUILD_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let copy = tagged_copy("whole");
    let out: PathBuf = copy.path().join("build");
    run_ok(&mut quick_build(copy.path()));
    let good = contents(&out);
    let wasm = out.join("index_bg.wasm");
    let bytes = fs::read(&wasm).unwrap();
    fs::write(&wasm, &bytes[..bytes.len() / 2]).unwrap();
    let again = run_ok(quick_build(copy.path()).args(["--message-format", "json"]));
    assert_eq!(json_record(&again.stdout, "build-finished")["fresh"], false);
    assert_eq!(contents(&out), good, "the module written again, whole");
    Workerd::serve(&out).expect("/x", 404, "whole");
}
