//! The command as users drive it: through cargo, with JSON messages, with -v, twice in a row,
//! and twice at the same time. Real builds of the plain fixture (panic=abort, stable).

use crate::support;

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::{copy_fixture, fixtures_target_dir, json_lines, run, tool};

fn tool_in(dir: &Path) -> Command {
    let mut cmd = tool();
    cmd.current_dir(dir)
        .arg("--target-dir")
        .arg(fixtures_target_dir());
    cmd
}

#[test]
fn runs_as_a_cargo_subcommand() {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_cargo-worker-build"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = std::env::join_paths(
        std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let out = run(Command::new("cargo")
        .args(["worker-build", "--version"])
        .env("PATH", &path));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("cargo-worker-build {}", env!("CARGO_PKG_VERSION"))
    );
    let out = run(Command::new("cargo")
        .args(["worker-build", "--help"])
        .env("PATH", &path));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Usage: cargo worker-build [OPTIONS]") && help.contains("--unwind"),
        "{help}"
    );
}

#[test]
fn json_messages_describe_each_step_then_a_summary_and_a_rebuild_is_fresh() {
    // Not about optimisation: --no-opt skips wasm-opt (the steps reported are the same).
    let dir = copy_fixture("plain");
    let out = run(tool_in(dir.path()).args(["--message-format", "json", "--no-opt"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out.stdout);
    let reasons: Vec<&str> = lines
        .iter()
        .map(|l| l["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        ["plan", "cargo-artifact", "tool", "bundle", "build-finished"]
    );
    let summary = lines.last().unwrap();
    assert_eq!(summary["success"], true);
    assert_eq!(summary["mode"], "abort");
    assert_eq!(summary["wasm_bindgen"], "0.2.130");
    assert_eq!(
        summary["out_dir"],
        dir.path().join("build").display().to_string()
    );
    let files: Vec<&str> = summary["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for f in [
        "index.js",
        "index_bg.wasm",
        "index.meta.json",
        "worker/shim.mjs",
        ".gitignore",
    ] {
        assert!(files.contains(&f), "{f} missing from {files:?}");
    }
    for f in ["glue.js", "runtime.js"] {
        assert!(
            !files.contains(&f),
            "{f} is bundled into index.js, not shipped: {files:?}"
        );
    }
    let wasm_len = fs::metadata(dir.path().join("build/index_bg.wasm"))
        .unwrap()
        .len();
    assert_eq!(summary["sizes"]["wasm"], wasm_len);
    assert!(summary["sizes"]["wasm_gzip"].as_u64().unwrap() < wasm_len);
    assert_eq!(summary["fresh"], false);
    // Nothing changed: cargo's no-op, and the steps after it are skipped.
    let before = fs::metadata(dir.path().join("build/index_bg.wasm"))
        .unwrap()
        .modified()
        .unwrap();
    let out = run(tool_in(dir.path()).args(["--message-format", "json", "--no-opt"]));
    let again = json_lines(&out.stdout);
    assert_eq!(again.last().unwrap()["fresh"], true);
    assert_eq!(
        fs::metadata(dir.path().join("build/index_bg.wasm"))
            .unwrap()
            .modified()
            .unwrap(),
        before,
        "the bundle was rewritten"
    );
    // The human summary goes to stderr; stdout stays JSON only.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Finished release [abort] bundle in"),
        "{stderr}"
    );
}

#[test]
fn verbose_prints_the_plan_and_dry_run_builds_nothing() {
    let dir = copy_fixture("plain");
    let out = run(tool_in(dir.path()).args(["--unwind", "--eh", "legacy", "-v", "--dry-run"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "toolchain nightly-2026-10-30",
        "-Cpanic=unwind",
        "-Cllvm-args=-wasm-use-legacy-eh=true",
        "-Zbuild-std=std,panic_unwind",
        "--experimental-reset-state-function",
        "wasm-opt -Oz",
        "mode unwind (legacy), profile release",
        "tool wasm-bindgen 0.2.130 ",
        "tool esbuild 0.28.2 ",
    ] {
        assert!(
            stderr.contains(expected),
            "plan lacks {expected:?}:\n{stderr}"
        );
    }
    assert!(
        !dir.path().join("build").exists(),
        "--dry-run wrote a bundle"
    );
}

/// A worker-build command line, as a `[build] command` written for worker-build has it: the
/// crate directory, `-d`, `--panic-unwind` and `NO_MINIFY` mean what they meant there.
#[test]
fn a_worker_build_command_line_plans_the_same_build() {
    let root = tempfile::tempdir().unwrap();
    let krate = copy_fixture("plain");
    support::copy_tree(krate.path(), &root.path().join("api"), &|_| false);
    let out = run(tool_in(root.path())
        .args(["--dry-run", "--message-format", "json"])
        .args(["--release", "--panic-unwind", "api", "-d", "dist"])
        .env("NO_MINIFY", "1"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan = &json_lines(&out.stdout)[0]["plan"];
    let api = root.path().join("api");
    assert_eq!(
        plan["package"]["manifest_path"],
        api.join("Cargo.toml").display().to_string()
    );
    assert_eq!(
        plan["out_dir"],
        api.join("dist").display().to_string(),
        "-d is taken from the crate directory"
    );
    assert_eq!(plan["mode"]["panic"], "unwind");
    assert_eq!(plan["profile"], "release");
    assert_eq!(plan["minify"]["enabled"], false);
    assert_eq!(plan["minify"]["source"], "NO_MINIFY");
    assert!(!api.join("dist").exists(), "a dry run writes nothing");
}

#[test]
fn concurrent_builds_of_one_bundle_take_turns_whatever_their_target_dirs() {
    let dir = copy_fixture("plain");
    // A second target dir of its own, kept between runs like the first (a fresh one would cost
    // a cold build of the fixture's dependencies every time): only the two paths must differ.
    let targets = [
        fixtures_target_dir(),
        fixtures_target_dir().join("second-target-dir"),
    ];
    let build = |target: &Path| {
        let mut cmd = tool();
        cmd.current_dir(dir.path())
            .args(["-q", "--no-opt", "--target-dir"])
            .arg(target);
        cmd
    };
    // Warm both target directories, so that the concurrent builds below reach the bundle step
    // together rather than one cargo build after the other.
    for target in &targets {
        support::run_ok(&mut build(target));
    }
    // A source change every build must bundle anew, and a wasm-bindgen that logs when it runs
    // and takes its time: the lock must keep the two runs apart.
    let lib = dir.path().join("src/lib.rs");
    let source = fs::read_to_string(&lib).unwrap();
    fs::write(
        &lib,
        source.replace("panic requested by /panic", "panic requested"),
    )
    .unwrap();
    let real = which_cached_bindgen();
    let log = dir.path().join("bindgen.log");
    let slow = dir.path().join("slow-wasm-bindgen");
    fs::write(
        &slow,
        format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then exec '{real}' --version; fi\n\
             echo \"start $(date +%s%N)\" >> '{log}'\nsleep 2\n'{real}' \"$@\"; s=$?\n\
             echo \"end $(date +%s%N)\" >> '{log}'\nexit $s\n",
            real = real.display(),
            log = log.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&slow, fs::Permissions::from_mode(0o755)).unwrap();
    }
    // Different inputs after cargo (a Worker and a library), so that neither can take the
    // other's bundle as up to date and skip its own.
    let mut children: Vec<_> = targets
        .iter()
        .zip([&[][..], &["--lib"][..]])
        .map(|(t, extra)| {
            build(t)
                .args(extra)
                .env("WASM_BINDGEN", &slow)
                .spawn()
                .unwrap()
        })
        .collect();
    // While the first runs wasm-bindgen, the lock is held and both builds are still running.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while !fs::read_to_string(&log).is_ok_and(|l| l.starts_with("start")) {
        assert!(
            std::time::Instant::now() < deadline,
            "no build reached wasm-bindgen"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let lock = fs::File::open(dir.path().join(".build.lock")).unwrap();
    assert!(
        matches!(lock.try_lock(), Err(fs::TryLockError::WouldBlock)),
        "the output's lock is not held while a bundle is written"
    );
    drop(lock);
    for child in &mut children {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the two builds did not overlap"
        );
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
    }
    let events: Vec<(String, u128)> = fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| {
            let (what, at) = l.split_once(' ').unwrap();
            (what.to_string(), at.parse().unwrap())
        })
        .collect();
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        ["start", "end", "start", "end"],
        "both builds bundled, one after the other, never at once: {events:?}"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("build/.worker-build.json")).unwrap())
            .unwrap();
    for f in manifest["files"].as_array().unwrap() {
        assert!(
            dir.path().join("build").join(f.as_str().unwrap()).is_file(),
            "{f} listed but missing"
        );
    }
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".build.") && n != ".build.lock")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// The wasm-bindgen 0.2.130 CLI in the tool cache (the warm-up builds installed it).
fn which_cached_bindgen() -> std::path::PathBuf {
    let cache = std::env::var_os("CARGO_WORKER_BUILD_CACHE")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME").map(|d| Path::new(&d).join("cargo-worker-build"))
        })
        .unwrap_or_else(|| {
            Path::new(&std::env::var_os("HOME").unwrap()).join(".cache/cargo-worker-build")
        });
    let bin = cache.join("wasm-bindgen/0.2.130/bin/wasm-bindgen");
    assert!(bin.is_file(), "no wasm-bindgen CLI at {}", bin.display());
    bin
}

#[test]
fn tools_lists_what_a_build_uses_and_clean_keeps_only_that() {
    let dir = copy_fixture("plain");
    let cache = tempfile::tempdir().unwrap();
    for (tool, version) in [
        ("wasm-bindgen", "0.2.130"),
        ("wasm-bindgen", "0.2.100"),
        ("binaryen", "132.0.0"),
        ("binaryen", "116.0.0"),
        ("esbuild", "0.28.2"),
        ("esbuild", "0.19.0"),
    ] {
        let dir = cache.path().join(tool).join(version);
        fs::create_dir_all(dir.join("bin")).unwrap();
        // As the tool records what it installed (nothing to hash in these empty versions).
        fs::write(
            dir.join(".cargo-worker-build-files.json"),
            r#"{"sha256": {}}"#,
        )
        .unwrap();
    }
    fs::write(
        cache.path().join("wasm-bindgen/0.2.130/bin/wasm-bindgen"),
        "",
    )
    .unwrap();
    // Something else's files where the cache is: never the tool's to remove.
    let foreign = cache.path().join("photos/2025");
    fs::create_dir_all(&foreign).unwrap();
    fs::write(foreign.join("a.jpg"), "jpeg").unwrap();
    let tools_out = |args: &[&str]| {
        run(tool()
            .current_dir(dir.path())
            .env("CARGO_WORKER_BUILD_CACHE", cache.path())
            .arg("tools")
            .args(args))
    };
    let tools = |args: &[&str]| {
        let out = tools_out(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    // A directory the tool did not make: --clean refuses, in one line, and removes nothing.
    let out = tools_out(&["--clean"]);
    let errors = support::error_lines(&out);
    assert!(
        !out.status.success()
            && errors.len() == 1
            && errors[0].contains("error[foreign-tool-cache]")
            && errors[0].contains(".cargo-worker-build-cache"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(cache.path().join("wasm-bindgen/0.2.100").is_dir() && foreign.is_dir());
    fs::write(cache.path().join(".cargo-worker-build-cache"), "").unwrap();
    let listing = tools(&[]);
    assert!(
        listing.contains("wasm-bindgen 0.2.100 (not used by this project)"),
        "{listing}"
    );
    assert!(
        listing.contains("wasm-bindgen 0.2.130 (used by this project)"),
        "{listing}"
    );
    assert!(
        listing.contains("binaryen 132.0.0 (used by this project)"),
        "{listing}"
    );
    assert!(
        listing.contains("esbuild 0.28.2 (used by this project)")
            && listing.contains("esbuild 0.19.0 (not used by this project)"),
        "{listing}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&tools(&["--message-format", "json"])).unwrap();
    let bindgen = json["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tool"] == "wasm-bindgen")
        .unwrap();
    assert_eq!(bindgen["needed"], "0.2.130");
    assert_eq!(bindgen["installed"], "0.2.130");

    tools(&["--clean"]);
    assert!(
        cache.path().join("wasm-bindgen/0.2.130").is_dir()
            && cache.path().join("binaryen/132.0.0").is_dir()
            && cache.path().join("esbuild/0.28.2").is_dir(),
        "a used tool was removed"
    );
    assert!(
        !cache.path().join("wasm-bindgen/0.2.100").exists()
            && !cache.path().join("binaryen/116.0.0").exists()
            && !cache.path().join("esbuild/0.19.0").exists(),
        "unused versions remain"
    );
    assert!(
        foreign.join("a.jpg").is_file(),
        "--clean removed files the tool did not install"
    );
}

#[test]
fn a_cached_tool_whose_files_changed_is_not_used() {
    let dir = copy_fixture("plain");
    let cache = tempfile::tempdir().unwrap();
    let esbuild = cache.path().join("esbuild/0.28.2");
    // As npm lays it out: the package's binary, and a link to it in node_modules/.bin.
    let program = esbuild.join("node_modules/esbuild/bin/esbuild");
    fs::create_dir_all(program.parent().unwrap()).unwrap();
    fs::create_dir_all(esbuild.join("node_modules/.bin")).unwrap();
    fs::write(&program, "the binary npm installed").unwrap();
    std::os::unix::fs::symlink(
        "../esbuild/bin/esbuild",
        esbuild.join("node_modules/.bin/esbuild"),
    )
    .unwrap();
    // Planning asks wasm-bindgen only its version.
    let bindgen = cache.path().join("fake-wasm-bindgen");
    fs::write(&bindgen, "#!/bin/sh\necho wasm-bindgen 0.2.130\n").unwrap();
    fs::set_permissions(
        &bindgen,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let plan = |offline: bool| {
        let mut cmd = tool();
        cmd.current_dir(dir.path())
            .env("CARGO_WORKER_BUILD_CACHE", cache.path())
            .env("WASM_BINDGEN", &bindgen)
            .env_remove("ESBUILD")
            .args(["--dry-run", "--message-format", "json", "--no-opt"]);
        if offline {
            cmd.arg("--offline");
        }
        run(&mut cmd)
    };
    let esbuild_status = |out: &std::process::Output| -> serde_json::Value {
        let line = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        let plan: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        plan["plan"]["tools"]["esbuild"].clone()
    };
    // Installed before the tool recorded hashes: recorded as it is, and used.
    let first = plan(true);
    let found = esbuild_status(&first);
    assert_eq!(
        found["status"],
        "found",
        "{found}\n{}",
        String::from_utf8_lossy(&first.stderr)
    );
    fs::write(&program, "the binary, edited").unwrap();
    let online = plan(false);
    let again = esbuild_status(&online);
    assert_eq!(again["status"], "install", "{again}");
    assert!(
        again["from"].as_str().unwrap_or_default().contains("again"),
        "{again}"
    );
    let offline = plan(true);
    let errors = support::error_lines(&offline);
    assert!(
        !offline.status.success()
            && errors.len() == 1
            && errors[0].contains("error[offline-missing-tool]")
            && errors[0].contains("not as it was installed"),
        "{}",
        String::from_utf8_lossy(&offline.stderr)
    );
}

#[test]
fn tools_and_the_build_name_the_same_wasm_bindgen_when_the_environment_and_the_cache_disagree() {
    let dir = copy_fixture("plain");
    let cached = support::real_tool_cache().join("wasm-bindgen/0.2.130/bin/wasm-bindgen");
    assert!(
        cached.is_file(),
        "{} is missing: run ./install.sh",
        cached.display()
    );
    // The same CLI under another path: WASM_BINDGEN names it, the tool cache holds the original.
    let bin = tempfile::tempdir().unwrap();
    let from_env = bin.path().join("wasm-bindgen");
    std::os::unix::fs::symlink(&cached, &from_env).unwrap();

    let out = run(tool()
        .current_dir(dir.path())
        .env("WASM_BINDGEN", &from_env)
        .args(["tools", "--message-format", "json"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = listing["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tool"] == "wasm-bindgen")
        .unwrap()
        .clone();
    assert_eq!(row["path"], from_env.to_str().unwrap(), "{row}");
    assert_eq!(row["origin"], "WASM_BINDGEN", "{row}");

    let out = run(tool_in(dir.path()).env("WASM_BINDGEN", &from_env).args([
        "--dry-run",
        "--message-format",
        "json",
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan = &json_lines(&out.stdout)[0]["plan"];
    assert_eq!(
        plan["tools"]["wasm_bindgen"],
        listing["plan"]["wasm_bindgen"]
    );
    // Every tool the plan names, with where it came from.
    for tool in ["wasm_opt", "esbuild"] {
        assert_eq!(plan["tools"][tool]["status"], "found", "{}", plan["tools"]);
        assert!(plan["tools"][tool]["path"].is_string(), "{}", plan["tools"]);
    }

    let out = run(tool_in(dir.path()).env("WASM_BINDGEN", &from_env).args([
        "--no-opt",
        "--message-format",
        "json",
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = json_lines(&out.stdout).pop().unwrap();
    assert_eq!(summary["wasm_bindgen_path"], row["path"], "{summary}");
}

/// A reader that stops early (`cargo worker-build --dry-run --message-format json | head -1`,
/// `tools | head`) closes the pipe before the tool has written everything: the tool must end as
/// it would have, with no panic and the same exit status.
#[test]
fn a_closed_stdout_ends_the_command_as_usual() {
    let krate = copy_fixture("plain");
    let runs: [&[&str]; 3] = [
        &["--unwind", "--dry-run", "--message-format", "json"],
        &["new", "--list-templates"],
        &["tools", "--message-format", "json"],
    ];
    for args in runs {
        let mut child = tool()
            .current_dir(krate.path())
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the first line: every write finds the pipe closed.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !stderr.contains("panicked"),
            "{args:?} with stdout closed: {}\n{stderr}",
            out.status
        );
    }
}

/// `--dry-run` and `tools` only read: a rustc wrapper the project names in its cargo
/// configuration is a program it ships, and neither may run it (cargo runs it when a build
/// compiles). Both kinds: another wrapper, and one the tool takes for sccache by its name.
#[test]
fn dry_run_and_tools_run_no_rustc_wrapper_of_the_project() {
    use std::os::unix::fs::PermissionsExt;
    for name in ["wrap.sh", "sccache"] {
        let dir = copy_fixture("plain");
        let marker = dir.path().join("wrapper-ran");
        let bin = dir.path().join("bin");
        fs::create_dir_all(&bin).unwrap();
        fs::create_dir_all(dir.path().join(".cargo")).unwrap();
        let wrapper = bin.join(name);
        fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\necho \"$*\" >> '{}'\nexec \"$@\"\n",
                marker.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(
            dir.path().join(".cargo/config.toml"),
            format!("[build]\nrustc-wrapper = \"bin/{name}\"\n"),
        )
        .unwrap();
        for args in [
            &["--dry-run"][..],
            &["tools"],
            &["tools", "--message-format", "json"],
        ] {
            let out = run(tool()
                .current_dir(dir.path())
                .env_remove("RUSTC_WRAPPER")
                .args(args));
            assert!(
                out.status.success(),
                "{name} {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                !marker.exists(),
                "{args:?} ran the project's {name}: {}",
                fs::read_to_string(&marker).unwrap_or_default()
            );
        }
    }
}

/// The wasm-bindgen CLI is built only from a lock: the one the tool ships for this version,
/// `--locked`, from the crate's source as the registry serves it. When that install fails the
/// build fails, in one line naming the lock; it never resolves the dependencies afresh (the
/// CLI rewrites every module, so every machine must build the same one).
#[test]
fn wasm_bindgen_is_installed_only_with_a_lock_and_never_retried_without_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = copy_fixture("plain");
    let cache = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    let log = bin.path().join("cargo-calls");
    let real_cargo = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join("cargo"))
        .find(|c| c.is_file())
        .expect("cargo on PATH");
    // cargo as the build runs it, but every `cargo install` fails as it would offline.
    let fake = bin.path().join("cargo");
    fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nif [ \"$1\" = install ]; then echo 'error: simulated failure' >&2; exit 101; fi\nexec '{}' \"$@\"\n",
            log.display(),
            real_cargo.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    let path = std::env::join_paths(
        std::iter::once(bin.path().to_path_buf())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();

    let plan = run(tool()
        .current_dir(dir.path())
        .env("CARGO_WORKER_BUILD_CACHE", cache.path())
        .env("PATH", &path)
        .args(["tools", "--message-format", "json"]));
    let json: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&plan.stdout).trim()).unwrap();
    let row = json["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tool"] == "wasm-bindgen")
        .unwrap()
        .clone();
    assert!(
        row["origin"]
            .as_str()
            .unwrap_or_default()
            .contains("--locked, with the Cargo.lock cargo-worker-build"),
        "tools does not say which lock the install uses: {row}"
    );

    let out = run(tool()
        .current_dir(dir.path())
        .arg("--target-dir")
        .arg(support::fixtures_target_dir())
        .env("CARGO_WORKER_BUILD_CACHE", cache.path())
        .env("PATH", &path)
        .arg("--no-opt"));
    let errors = support::error_lines(&out);
    assert!(
        !out.status.success()
            && errors.len() == 1
            && errors[0].contains("error[wasm-bindgen-install-failed]")
            && errors[0].contains("Cargo.lock"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = fs::read_to_string(&log).unwrap_or_default();
    let installs: Vec<&str> = calls.lines().filter(|l| l.starts_with("install")).collect();
    assert_eq!(installs.len(), 1, "one install, no retry: {calls}");
    assert!(
        installs[0].contains("--locked") && installs[0].contains("--path"),
        "not built from the source with the shipped lock: {}",
        installs[0]
    );
    assert!(
        !cache.path().join("wasm-bindgen/0.2.130").exists(),
        "a failed install left a version in the cache"
    );
}
