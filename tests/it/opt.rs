//! Optimisation: where its settings come from, which wasm-opt is trusted with exception
//! handling, and what a failing wasm-opt leaves behind. Real builds of the plain fixture.

use crate::support;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use crate::support::{copy_fixture, fixtures_target_dir, run, tool};

fn tool_in(dir: &Path) -> Command {
    let mut cmd = tool();
    cmd.current_dir(dir)
        .arg("--target-dir")
        .arg(fixtures_target_dir());
    cmd
}

/// The tool's first `error:` line, or "" when it printed none.
fn first_error_line(out: &Output) -> String {
    support::error_lines(out)
        .into_iter()
        .next()
        .unwrap_or_default()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn fake_wasm_opt(dir: &Path, name: &str, script: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    fs::write(&path, script).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The plan as `--dry-run --message-format json` prints it.
fn plan_of(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = run(tool_in(dir)
        .args(["--dry-run", "--message-format", "json"])
        .args(args));
    assert!(out.status.success(), "{}", stderr(&out));
    let first = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap()
        .to_string();
    serde_json::from_str::<serde_json::Value>(&first).unwrap()["plan"].clone()
}

fn append_to_manifest(dir: &Path, text: &str) {
    let path = dir.join("Cargo.toml");
    let mut manifest = fs::read_to_string(&path).unwrap();
    manifest.push_str(text);
    fs::write(path, manifest).unwrap();
}

#[test]
fn settings_come_from_flags_then_cargo_toml_then_the_profile() {
    let dir = copy_fixture("plain");
    let p = plan_of(dir.path(), &[]);
    assert_eq!(p["opt"]["args"], serde_json::json!(["-Oz"]));
    assert_eq!(
        plan_of(dir.path(), &["--dev"])["opt"]["args"],
        serde_json::Value::Null
    );
    assert_eq!(
        plan_of(dir.path(), &["--no-opt"])["opt"]["args"],
        serde_json::Value::Null
    );
    assert_eq!(
        plan_of(dir.path(), &["--opt-level", "s"])["opt"]["args"],
        serde_json::json!(["-Os"])
    );

    append_to_manifest(
        dir.path(),
        "\n[package.metadata.wasm-pack.profile.release]\nwasm-opt = [\"-O2\"]\n",
    );
    let p = plan_of(dir.path(), &[]);
    assert_eq!(p["opt"]["args"], serde_json::json!(["-O2"]));
    assert_eq!(
        p["opt"]["source"],
        "package.metadata.wasm-pack.profile.release.wasm-opt"
    );

    append_to_manifest(
        dir.path(),
        "\n[package.metadata.worker-build.profile.release]\nwasm-opt = false\n",
    );
    let p = plan_of(dir.path(), &[]);
    assert_eq!(
        p["opt"]["args"],
        serde_json::Value::Null,
        "our key wins over wasm-pack's"
    );
    assert_eq!(
        plan_of(dir.path(), &["--opt-level", "z"])["opt"]["args"],
        serde_json::json!(["-Oz"]),
        "the command line wins"
    );
}

#[test]
fn an_invalid_cargo_toml_setting_names_the_key() {
    let dir = copy_fixture("plain");
    append_to_manifest(
        dir.path(),
        "\n[package.metadata.worker-build.profile.release]\nwasm-opt = \"-Oz\"\n",
    );
    let out = run(&mut tool_in(dir.path()));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("error[invalid-wasm-opt-config]: `package.metadata.worker-build.profile.release.wasm-opt` in Cargo.toml must be false or a list"), "{err}");
    let out = run(tool_in(dir.path()).args(["--opt-level", "fast"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn a_too_old_wasm_opt_from_the_environment_is_refused() {
    let dir = copy_fixture("plain");
    let old = fake_wasm_opt(
        dir.path(),
        "wasm-opt-108",
        "#!/bin/sh\necho 'wasm-opt version 108'\n",
    );
    let out = run(tool_in(dir.path()).env("WASM_OPT", &old));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let line = first_error_line(&out);
    assert!(
        line.contains("wasm-opt version 108")
            && line.contains("Binaryen 119")
            && line.contains("exception handling"),
        "{err}"
    );
    assert!(line.contains("--no-opt"), "{err}");
    assert!(
        !dir.path().join("build").exists(),
        "no bundle from a refused optimiser"
    );
}

#[test]
fn a_too_old_wasm_opt_on_path_is_passed_over_for_npm_binaryen() {
    let dir = copy_fixture("plain");
    let bin = tempfile::tempdir().unwrap();
    fake_wasm_opt(
        bin.path(),
        "wasm-opt",
        "#!/bin/sh\necho 'wasm-opt version 108'\nexit 0\n",
    );
    let path = std::env::join_paths(
        std::iter::once(bin.path().to_path_buf())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let out = run(tool_in(dir.path()).env("PATH", path));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: ignoring") && err.contains("version 108"),
        "{err}"
    );
    assert!(err.contains("Optimizing with wasm-opt 132"), "{err}");
}

#[test]
fn a_crashing_wasm_opt_reports_its_output_and_keeps_the_previous_bundle() {
    let dir = copy_fixture("plain");
    // A first, good build: the bundle a failed one must not touch.
    let out = run(&mut tool_in(dir.path()));
    assert!(out.status.success(), "{}", stderr(&out));
    let build = dir.path().join("build");
    let before = fs::read(build.join("index_bg.wasm")).unwrap();

    let crash = fake_wasm_opt(dir.path(), "wasm-opt-crash", "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'wasm-opt version 132'; exit 0; fi\necho 'Fatal: simulated crash' >&2\nexit 134\n");
    // A different level changes the bundle's inputs, so the optimiser really runs.
    let out = run(tool_in(dir.path())
        .env("WASM_OPT", &crash)
        .args(["--opt-level", "3"]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("error[wasm-opt-failed]: wasm-opt failed") && err.contains("--no-opt"),
        "{err}"
    );
    assert!(
        err.contains("  Fatal: simulated crash"),
        "wasm-opt's stderr is shown:\n{err}"
    );
    assert!(err.contains("command: "), "the command is shown:\n{err}");
    assert_eq!(
        fs::read(build.join("index_bg.wasm")).unwrap(),
        before,
        "the previous bundle was touched"
    );
}

#[test]
fn optimisation_shrinks_the_module_and_keeps_the_bundle_valid() {
    let dir = copy_fixture("plain");
    let size = |args: &[&str], out: &str| -> u64 {
        let o = run(tool_in(dir.path())
            .args(args)
            .arg("--out-dir")
            .arg(dir.path().join(out)));
        assert!(o.status.success(), "{}", stderr(&o));
        fs::metadata(dir.path().join(out).join("index_bg.wasm"))
            .unwrap()
            .len()
    };
    let plain = size(&["--no-opt"], "unopt");
    let optimised = size(&[], "opt");
    assert!(
        optimised < plain,
        "wasm-opt -Oz did not shrink the module: {optimised} >= {plain}"
    );
    let check = run(tool()
        .args(["check", "--expect", "abort"])
        .arg(dir.path().join("opt")));
    assert!(
        check.status.success(),
        "the optimised bundle fails check:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        stderr(&check)
    );
}

#[test]
fn over_max_size_fails_listing_the_biggest_contributors_and_keeps_the_previous_bundle() {
    let dir = copy_fixture("plain");
    let out = run(&mut tool_in(dir.path()));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("of the free plan's 3 MiB"),
        "the size report names the plan limits:\n{err}"
    );
    let before = fs::read(dir.path().join("build/index_bg.wasm")).unwrap();

    // Over a budget set in Cargo.toml: the build fails and says what is big.
    append_to_manifest(
        dir.path(),
        "\n[package.metadata.worker-build]\nmax-size = \"2KiB\"\n",
    );
    let out = run(tool_in(dir.path()).args(["--opt-level", "s"]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let line = first_error_line(&out);
    assert!(
        line.contains("over the budget of 2.0 KiB set by `package.metadata.worker-build.max-size`"),
        "{err}"
    );
    let listed: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("    ") && (l.contains(" B  ") || l.contains("KiB  ")))
        .collect();
    assert_eq!(listed.len(), 10, "ten contributors:\n{err}");
    assert!(
        err.contains("dlmalloc"),
        "names are demangled from the name section:\n{err}"
    );
    assert_eq!(
        fs::read(dir.path().join("build/index_bg.wasm")).unwrap(),
        before,
        "the previous bundle was touched"
    );

    // The command line wins over Cargo.toml; a generous budget passes.
    let out = run(tool_in(dir.path()).args(["--max-size", "3MiB"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(tool_in(dir.path()).args(["--max-size", "3 parsecs"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("error[invalid-max-size]: --max-size `3 parsecs` is not a size"),
        "{}",
        stderr(&out)
    );
}

/// Whether the bundle's JavaScript reads as esbuild prints it unminified: the runtime's and the
/// glue's functions under their own names, indented.
fn readable(js: &str) -> bool {
    js.contains("function createWorker(")
        && js.contains("function __wbg_reset_state(")
        && js.contains("\n    ")
}

/// The module's function imports, by name.
fn function_imports(bundle: &std::path::Path) -> Vec<String> {
    let wasm = fs::read(bundle.join("index_bg.wasm")).unwrap();
    let mut names = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(&wasm) {
        if let wasmparser::Payload::ImportSection(reader) = payload.unwrap() {
            for import in reader.into_imports() {
                let import = import.unwrap();
                if matches!(import.ty, wasmparser::TypeRef::Func(_)) {
                    names.push(import.name.to_string());
                }
            }
        }
    }
    names
}

/// wasm-bindgen's `__wbg_<name>_<16 hex digits>`.
fn hashed(name: &str) -> bool {
    name.starts_with("__wbg_")
        && name.rsplit_once('_').is_some_and(|(_, hash)| {
            hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit())
        })
}

#[test]
fn release_javascript_is_minified_unless_turned_off() {
    let dir = copy_fixture("plain");
    let build = |args: &[&str], out: &str| -> std::path::PathBuf {
        let o = run(tool_in(dir.path())
            .args(args)
            .arg("--out-dir")
            .arg(dir.path().join(out)));
        assert!(o.status.success(), "{}", stderr(&o));
        dir.path().join(out)
    };
    let readable_dir = build(&["--no-opt"], "readable");
    let minified = build(&[], "minified");
    let small = fs::read_to_string(minified.join("index.js")).unwrap();
    let big = fs::read_to_string(readable_dir.join("index.js")).unwrap();
    assert!(
        small.len() * 10 < big.len() * 7,
        "index.js was not minified: {} bytes against {} with --no-opt",
        small.len(),
        big.len()
    );
    // Template literals keep their own newlines; the code itself is on a few lines.
    assert!(
        !readable(&small) && small.lines().count() * 50 < big.lines().count(),
        "index.js keeps its layout: {} lines against {} with --no-opt",
        small.lines().count(),
        big.lines().count()
    );
    assert!(
        readable(&big),
        "--no-opt ships readable JavaScript, still bundled"
    );
    assert!(!readable_dir.join("runtime.js").exists() && !readable_dir.join("glue.js").exists());
    // Minified, the module imports short names (the glue's keys are the same names, or the
    // bundle would not load: the e2e tests serve release bundles); only the imports the
    // recovery runtime hooks by name keep wasm-bindgen's. Readable bundles keep them all.
    let long = function_imports(&readable_dir);
    let short = function_imports(&minified);
    assert!(long.iter().filter(|n| hashed(n)).count() > 3, "{long:?}");
    for name in &short {
        assert!(
            name.len() <= 2
                || name.starts_with("__wbg_queueMicrotask_")
                || name.starts_with("__wbg___wbindgen_reinit_"),
            "the minified module imports `{name}`: {short:?}"
        );
    }
    // The size report (code the Worker uploads) counts the minified files, and the bundle still
    // passes the check.
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(minified.join(".worker-build.json")).unwrap()).unwrap();
    let on_disk: u64 = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f.as_str())
        .filter(|f| f.ends_with(".js") || f.ends_with(".wasm"))
        .map(|f| fs::metadata(minified.join(f)).unwrap().len())
        .sum();
    assert_eq!(manifest["sizes"]["total"], on_disk);
    let check = run(tool().args(["check", "--expect", "abort"]).arg(&minified));
    assert!(
        check.status.success(),
        "the minified bundle fails check:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        stderr(&check)
    );

    // `minify = false` in Cargo.toml keeps wasm-opt but ships readable JavaScript.
    append_to_manifest(
        dir.path(),
        "\n[package.metadata.worker-build.profile.release]\nminify = false\n",
    );
    let p = plan_of(dir.path(), &[]);
    assert_eq!(p["minify"]["enabled"], false);
    assert_eq!(
        p["minify"]["source"],
        "package.metadata.worker-build.profile.release.minify"
    );
    assert_eq!(p["opt"]["args"], serde_json::json!(["-Oz"]));
    let kept = build(&[], "minified");
    assert!(readable(
        &fs::read_to_string(kept.join("index.js")).unwrap()
    ));
    let names = function_imports(&kept);
    assert!(names.iter().filter(|n| hashed(n)).count() > 3, "{names:?}");
}

/// The esbuild the tool installs into the real tool cache (the first build puts it there).
fn real_esbuild() -> std::path::PathBuf {
    let path = support::real_tool_cache().join("esbuild/0.28.2/node_modules/.bin/esbuild");
    assert!(
        path.is_file(),
        "{} is missing: run ./install.sh (or one online build)",
        path.display()
    );
    path
}

#[test]
fn a_failing_esbuild_reports_its_command_and_output_and_keeps_the_previous_bundle() {
    let dir = copy_fixture("plain");
    let out = run(&mut tool_in(dir.path()));
    assert!(out.status.success(), "{}", stderr(&out));
    let build = dir.path().join("build");
    let files = ["index.js", "index_bg.wasm", ".worker-build.json"];
    let before: Vec<Vec<u8>> = files
        .iter()
        .map(|f| fs::read(build.join(f)).unwrap())
        .collect();

    // esbuild parses the glue, then fails to bundle.
    let broken = fake_wasm_opt(
        dir.path(),
        "esbuild-broken",
        &format!(
            "#!/bin/sh\ncase \" $* \" in *\" --bundle \"*) echo '✘ [ERROR] simulated bundling failure' >&2; exit 1;; esac\nexec '{}' \"$@\"\n",
            real_esbuild().display()
        ),
    );
    // A different level changes the bundle's inputs, so the bundle is really rebuilt.
    let out = run(tool_in(dir.path())
        .env("ESBUILD", &broken)
        .args(["--opt-level", "s"]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let line = first_error_line(&out);
    assert!(
        line.starts_with("error[bundle-failed]: esbuild failed to bundle the Worker's JavaScript"),
        "{err}"
    );
    assert!(err.contains("simulated bundling failure"), "{err}");
    assert!(
        err.contains("command: ")
            && err.contains("--bundle")
            && err.contains("--metafile=index.meta.json"),
        "esbuild's command is shown: {err}"
    );
    let after: Vec<Vec<u8>> = files
        .iter()
        .map(|f| fs::read(build.join(f)).unwrap())
        .collect();
    assert!(before == after, "the previous bundle was touched");

    // A `minify` setting that is not a boolean is named, with the line to write.
    append_to_manifest(
        dir.path(),
        "\n[package.metadata.worker-build.profile.release]\nminify = \"yes\"\n",
    );
    let out = run(tool_in(dir.path()).arg("--dry-run"));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("error[invalid-wasm-opt-config]: `package.metadata.worker-build.profile.release.minify` in Cargo.toml must be true or false")
            && err.contains("minify = false"),
        "{err}"
    );
}

#[test]
fn a_bundle_built_without_its_tools_is_rebuilt_once_they_are_there() {
    let dir = copy_fixture("plain");
    // Offline with an empty tool cache: wasm-bindgen and esbuild (which every bundle needs) from
    // the real cache, no Binaryen.
    let empty = tempfile::tempdir().unwrap();
    let bindgen = support::real_tool_cache().join("wasm-bindgen/0.2.130/bin/wasm-bindgen");
    assert!(
        bindgen.is_file(),
        "{} is missing: run ./install.sh",
        bindgen.display()
    );
    let offline = || {
        let out = run(tool_in(dir.path())
            .env("CARGO_WORKER_BUILD_CACHE", empty.path())
            .env("WASM_BINDGEN", &bindgen)
            .env("ESBUILD", real_esbuild())
            .arg("--offline"));
        assert!(out.status.success(), "{}", stderr(&out));
        stderr(&out)
    };
    for attempt in 1..=2 {
        let err = offline();
        assert!(
            err.contains("warning: the bundle is not optimised")
                && err.contains("--offline forbids installing it"),
            "attempt {attempt}:\n{err}"
        );
    }
    let unoptimised = fs::metadata(dir.path().join("build/index_bg.wasm"))
        .unwrap()
        .len();

    // Online, same inputs: the incomplete bundle is not taken as up to date.
    let out = run(&mut tool_in(dir.path()));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("Optimizing with wasm-opt"), "{err}");
    assert!(
        fs::metadata(dir.path().join("build/index_bg.wasm"))
            .unwrap()
            .len()
            < unoptimised
    );
}

/// A `wasm-opt` at `dir/name` that runs npm's binaryen from the real tool cache.
fn wasm_opt_wrapper(dir: &Path, name: &str) -> std::path::PathBuf {
    let script =
        support::real_tool_cache().join("binaryen/132.0.0/node_modules/binaryen/bin/wasm-opt");
    assert!(
        script.is_file(),
        "{} is missing: run ./install.sh (or one online release build)",
        script.display()
    );
    fake_wasm_opt(
        dir,
        name,
        &format!("#!/bin/sh\nexec node '{}' \"$@\"\n", script.display()),
    )
}

#[test]
fn another_wasm_opt_or_esbuild_binary_rebuilds_the_bundle_and_no_change_stays_fresh() {
    let dir = copy_fixture("plain");
    let bins = tempfile::tempdir().unwrap();
    let first = wasm_opt_wrapper(bins.path(), "wasm-opt-a");
    let second = wasm_opt_wrapper(bins.path(), "wasm-opt-b");
    let esbuild = bins.path().join("esbuild");
    std::os::unix::fs::symlink(real_esbuild(), &esbuild).unwrap();
    // A target directory of its own (kept between runs): other tests build copies of this
    // fixture at other paths into the shared one, and cargo's output file of the crate would
    // then change under a rebuild that is meant to see no change.
    let target = fixtures_target_dir().join("own").join("tool-freshness");
    let build = |wasm_opt: &Path, esbuild: Option<&Path>| {
        let mut cmd = tool();
        cmd.current_dir(dir.path())
            .arg("--target-dir")
            .arg(&target)
            .args(["--message-format", "json"])
            .env("WASM_OPT", wasm_opt);
        if let Some(esbuild) = esbuild {
            cmd.env("ESBUILD", esbuild);
        }
        let out = run(&mut cmd);
        assert!(out.status.success(), "{}", stderr(&out));
        let summary: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap())
                .unwrap();
        let report = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        (summary["fresh"].as_bool().unwrap(), report)
    };
    let (fresh, err) = build(&first, None);
    assert!(!fresh && err.contains("(WASM_OPT)"), "{err}");
    let (fresh, err) = build(&first, None);
    assert!(fresh, "a rebuild with no change is fresh:\n{err}");
    let (fresh, err) = build(&second, None);
    assert!(
        !fresh,
        "WASM_OPT names another binary, but the bundle optimised by the first was kept:\n{err}"
    );
    let (fresh, err) = build(&second, Some(&esbuild));
    assert!(
        !fresh && err.contains("(ESBUILD"),
        "ESBUILD names another binary, but the bundle of the cached esbuild was kept:\n{err}"
    );
    assert!(build(&second, Some(&esbuild)).0);
}

#[test]
fn a_damaged_kept_wasm_opt_result_is_rebuilt_and_replaced() {
    let dir = copy_fixture("plain");
    let cache = tempfile::tempdir().unwrap();
    let bins = tempfile::tempdir().unwrap();
    let wasm_opt = wasm_opt_wrapper(bins.path(), "wasm-opt");
    let bindgen = support::real_tool_cache().join("wasm-bindgen/0.2.130/bin/wasm-bindgen");
    assert!(
        bindgen.is_file(),
        "{} is missing: run ./install.sh",
        bindgen.display()
    );
    let results = cache.path().join(".wasm-opt-results");
    // A target directory of its own: other tests build copies of this fixture into the shared
    // one, and cargo's output file would change between the builds compared here. The bundle
    // is removed before each build, so none is fresh and each one optimises.
    let target = fixtures_target_dir().join("own").join("opt-result-repair");
    let build = || {
        let out_dir = dir.path().join("build");
        let _ = fs::remove_dir_all(&out_dir);
        let out = run(tool()
            .current_dir(dir.path())
            .arg("--target-dir")
            .arg(&target)
            .env("CARGO_WORKER_BUILD_CACHE", cache.path())
            .env("WASM_BINDGEN", &bindgen)
            .env("WASM_OPT", &wasm_opt)
            .env("ESBUILD", real_esbuild()));
        assert!(out.status.success(), "{}", stderr(&out));
        fs::read(out_dir.join("index_bg.wasm")).unwrap()
    };
    let kept = || -> Vec<(std::path::PathBuf, Vec<u8>)> {
        let mut files: Vec<_> = fs::read_dir(&results)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| {
                let bytes = fs::read(&p).unwrap();
                (p, bytes)
            })
            .collect();
        files.sort();
        files
    };
    let first = build();
    let whole = kept();
    assert!(!whole.is_empty(), "the build kept no wasm-opt result");
    // What a build killed while writing the cache, or a damaged disk, would leave: every kept
    // file cut short, then every kept file garbage.
    for (round, damage) in [
        (&|b: &[u8]| b[..b.len() / 2].to_vec()) as &dyn Fn(&[u8]) -> Vec<u8>,
        &|_: &[u8]| b"not what was kept".to_vec(),
    ]
    .into_iter()
    .enumerate()
    {
        for (path, bytes) in &whole {
            fs::write(path, damage(bytes)).unwrap();
        }
        let again = build();
        assert!(
            again == first,
            "round {round}: another module than wasm-opt's ({} bytes, not {})",
            again.len(),
            first.len()
        );
        assert!(
            kept() == whole,
            "round {round}: the kept result was not repaired"
        );
    }
}
