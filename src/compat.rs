//! The interface of workers-rs `worker-build` (0.8.7), so that switching is a one-word change in
//! `[build] command`. Its spellings that mean the same here are clap aliases in [`crate::cli`]
//! (`--panic-unwind`, `--debug`, `-d`, `--no-optimization`, the positional crate directory);
//! this module reads its environment variables next to ours, and turns the flags and variables
//! that have no counterpart into one line each saying what to use instead.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Result;

use crate::cli::BuildArgs;
use crate::errors::{problem, Code};
use crate::term::Shell;

/// A tool's variable: ours first, then worker-build's name for the same thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolVar {
    pub ours: &'static str,
    pub worker_build: &'static str,
}

pub const WASM_BINDGEN: ToolVar = ToolVar {
    ours: "WASM_BINDGEN",
    worker_build: "WASM_BINDGEN_BIN",
};
pub const WASM_OPT: ToolVar = ToolVar {
    ours: "WASM_OPT",
    worker_build: "WASM_OPT_BIN",
};
pub const ESBUILD: ToolVar = ToolVar {
    ours: "ESBUILD",
    worker_build: "ESBUILD_BIN",
};

/// worker-build skips minification when `NO_MINIFY` is set, whatever its value.
pub const NO_MINIFY: &str = "NO_MINIFY";

/// A tool path taken from the environment, and the variable it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOverride {
    pub path: PathBuf,
    pub var: &'static str,
    /// worker-build's variable, when it was set to something else and ours won.
    pub ignored: Option<(&'static str, OsString)>,
}

impl ToolVar {
    /// The tool named by the environment `var`: ours wins when both are set (an empty value
    /// counts as unset, as for our own variables).
    pub fn lookup(self, var: impl Fn(&str) -> Option<OsString>) -> Option<ToolOverride> {
        let get = |name: &str| var(name).filter(|v| !v.is_empty());
        match (get(self.ours), get(self.worker_build)) {
            (Some(ours), theirs) => Some(ToolOverride {
                ignored: theirs
                    .filter(|t| *t != ours)
                    .map(|t| (self.worker_build, t)),
                path: PathBuf::from(ours),
                var: self.ours,
            }),
            (None, Some(theirs)) => Some(ToolOverride {
                path: PathBuf::from(theirs),
                var: self.worker_build,
                ignored: None,
            }),
            (None, None) => None,
        }
    }

    /// [`ToolVar::lookup`] on the process environment, with a note when worker-build's
    /// variable is set to another tool and ours wins.
    pub fn from_env(self, shell: &Shell) -> Option<ToolOverride> {
        let found = self.lookup(|k| std::env::var_os(k))?;
        if let Some((name, value)) = &found.ignored {
            shell.note(format!(
                "{}={} and {name}={} differ; using {} (unset one of them to silence this)",
                self.ours,
                found.path.display(),
                PathBuf::from(value).display(),
                self.ours
            ));
        }
        Some(found)
    }
}

/// Whether worker-build's `NO_MINIFY` asks for readable JavaScript.
pub fn no_minify(var: impl Fn(&str) -> Option<OsString>) -> bool {
    var(NO_MINIFY).is_some()
}

/// One line for each worker-build flag or variable that has no counterpart here: the first
/// one found is the error. `var` reads the environment.
pub fn refuse_unsupported(args: &BuildArgs, var: impl Fn(&str) -> Option<OsString>) -> Result<()> {
    if let (Some(dir), Some(manifest)) = (&args.crate_dir, &args.manifest_path) {
        if !manifest.is_file() {
            return Err(problem(
                Code::NoManifest,
                format!(
                    "`{}` is neither a crate directory (there is no {}) nor a command",
                    dir.display(),
                    manifest.display()
                ),
                "pass the directory that holds the package's Cargo.toml, or one of the commands new, init, check, tools",
            ));
        }
    }
    let wb = &args.worker_build;
    let refuse = |what: String, fix: &str| Err(problem(Code::WorkerBuildUnsupported, what, fix));
    if wb.no_panic_recovery {
        return refuse(
            "worker-build's --no-panic-recovery has no counterpart: every bundle recovers from aborts, at no cost until one happens".into(),
            "drop --no-panic-recovery (for a JavaScript Worker of your own around the Rust code, build a library with `cargo worker-build --lib`)",
        );
    }
    if wb.emscripten || wb.bin.is_some() {
        return refuse(
            format!(
                "worker-build's {} is not supported: bundles are built for wasm32-unknown-unknown with wasm-bindgen",
                if wb.emscripten { "--emscripten" } else { "--bin" }
            ),
            "drop --emscripten and --bin, and build the crate's cdylib library (`[lib] crate-type = [\"cdylib\"]`)",
        );
    }
    if wb.profiling {
        return refuse(
            "worker-build's --profiling has no counterpart here".into(),
            "use --release, or --profile NAME with a `[profile.NAME]` (e.g. `inherits = \"release\"`, `debug = true`) in Cargo.toml",
        );
    }
    if let Some(scope) = &wb.scope {
        return refuse(
            format!("worker-build's --scope {scope} sets the npm scope of a package.json, and no package.json is written here"),
            "drop --scope",
        );
    }
    if let Some(target) = wb.target.as_deref().filter(|t| *t != "module") {
        return refuse(
            format!("--target {target} is not supported: the target is always wasm32-unknown-unknown, and wasm-bindgen always writes an ES module (`--target module`)"),
            "drop --target",
        );
    }
    if let Some(name) = wb.out_name.as_deref().filter(|n| *n != "index") {
        return refuse(
            format!("--out-name {name} is not supported: the bundle's files are always index.js and index_bg.wasm"),
            "drop --out-name, and point wrangler.toml at `main = \"build/index.js\"`",
        );
    }
    for (name, what, fix) in [
        (
            "CUSTOM_SHIM",
            "worker-build's CUSTOM_SHIM (a JavaScript entry of your own) is not supported",
            "unset CUSTOM_SHIM, build a library with `cargo worker-build --lib`, and import build/index.js from your own Worker entry",
        ),
        (
            "RUN_TO_COMPLETION",
            "worker-build's RUN_TO_COMPLETION (fetch kept alive with waitUntil) is not supported",
            "unset RUN_TO_COMPLETION, and keep work alive past the response with `ctx.wait_until(...)` in your Rust handler",
        ),
        (
            "COREDUMP",
            "worker-build's COREDUMP (a Wasm coredump rewrite) is not supported: an abort here replaces the instance instead",
            "unset COREDUMP and COREDUMP_FLAGS",
        ),
    ] {
        if var(name).is_some() {
            return refuse(format!("{what} (it is set in the environment)"), fix);
        }
    }
    Ok(())
}

/// The keys of wasm-pack's `wasm-bindgen` table that worker-build passes to wasm-bindgen and
/// this tool does not (`plan::bindgen_profile_args` reads `debug-js-glue`,
/// `demangle-name-section` and `dwarf-debug-info`; these two change the glue's shape).
pub const UNREAD_WASM_BINDGEN_KEYS: &[&str] = &["omit-default-module-path", "split-linked-modules"];

/// The wasm-pack tables worker-build reads for `profile`: its own name, and `custom` for every
/// profile but dev and release.
pub fn wasm_pack_tables(profile: &str) -> Vec<&str> {
    match profile {
        "dev" | "release" => vec![profile],
        _ => vec![profile, "custom"],
    }
}

/// wasm-pack's `wasm-bindgen` settings for `profile` that Cargo.toml sets and this tool does
/// not read, by their full key.
pub fn unread_wasm_pack_settings(metadata: &serde_json::Value, profile: &str) -> Vec<String> {
    let mut unread = Vec::new();
    for table in wasm_pack_tables(profile) {
        let Some(keys) = metadata
            .get("wasm-pack")
            .and_then(|w| w.get("profile"))
            .and_then(|p| p.get(table))
            .and_then(|p| p.get("wasm-bindgen"))
            .and_then(|b| b.as_object())
        else {
            continue;
        };
        unread.extend(
            keys.keys()
                .filter(|k| UNREAD_WASM_BINDGEN_KEYS.contains(&k.as_str()))
                .map(|k| format!("package.metadata.wasm-pack.profile.{table}.wasm-bindgen.{k}")),
        );
    }
    unread
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn args(argv: &[&str]) -> BuildArgs {
        let mut full = vec!["cargo-worker-build"];
        full.extend_from_slice(argv);
        Cli::parse_args(full.into_iter().map(OsString::from)).build
    }

    fn refusal(argv: &[&str], vars: &[(&str, &str)]) -> crate::errors::Problem {
        let err = refuse_unsupported(&args(argv), env(vars)).unwrap_err();
        let problem = err.downcast::<crate::errors::Problem>().unwrap();
        assert_eq!(problem.code, Code::WorkerBuildUnsupported);
        assert_eq!(problem.exit_code(), 2, "a usage error, like clap's");
        problem
    }

    #[test]
    fn worker_build_variables_are_read_when_ours_are_unset() {
        let found = WASM_BINDGEN
            .lookup(env(&[("WASM_BINDGEN_BIN", "/t/wasm-bindgen")]))
            .unwrap();
        assert_eq!(found.path, PathBuf::from("/t/wasm-bindgen"));
        assert_eq!(found.var, "WASM_BINDGEN_BIN");
        assert_eq!(
            WASM_OPT
                .lookup(env(&[("WASM_OPT_BIN", "wasm-opt")]))
                .unwrap()
                .var,
            "WASM_OPT_BIN"
        );
        assert_eq!(
            ESBUILD.lookup(env(&[("ESBUILD_BIN", "/e")])).unwrap().var,
            "ESBUILD_BIN"
        );
        assert_eq!(WASM_BINDGEN.lookup(env(&[])), None);
        assert_eq!(
            WASM_BINDGEN.lookup(env(&[("WASM_BINDGEN_BIN", "")])),
            None,
            "an empty value is unset"
        );
    }

    #[test]
    fn ours_win_when_both_are_set_and_the_loser_is_reported() {
        let found = WASM_OPT
            .lookup(env(&[("WASM_OPT", "/ours"), ("WASM_OPT_BIN", "/theirs")]))
            .unwrap();
        assert_eq!(found.path, PathBuf::from("/ours"));
        assert_eq!(found.var, "WASM_OPT");
        assert_eq!(
            found.ignored,
            Some(("WASM_OPT_BIN", OsString::from("/theirs")))
        );
        let same = ESBUILD
            .lookup(env(&[("ESBUILD", "/e"), ("ESBUILD_BIN", "/e")]))
            .unwrap();
        assert_eq!(same.ignored, None, "the same path is no conflict");
    }

    #[test]
    fn no_minify_counts_when_set_at_all() {
        assert!(no_minify(env(&[("NO_MINIFY", "1")])));
        assert!(no_minify(env(&[("NO_MINIFY", "")])));
        assert!(!no_minify(env(&[])));
    }

    #[test]
    fn only_the_wasm_bindgen_settings_not_read_are_named() {
        let meta = serde_json::json!({"wasm-pack": {"profile": {
            "release": {"wasm-opt": ["-Oz"], "wasm-bindgen": {"dwarf-debug-info": true, "split-linked-modules": true}},
            "custom": {"wasm-bindgen": {"omit-default-module-path": true, "debug-js-glue": true}},
        }}});
        assert_eq!(
            unread_wasm_pack_settings(&meta, "release"),
            ["package.metadata.wasm-pack.profile.release.wasm-bindgen.split-linked-modules"]
        );
        assert_eq!(
            unread_wasm_pack_settings(&meta, "small"),
            ["package.metadata.wasm-pack.profile.custom.wasm-bindgen.omit-default-module-path"]
        );
        assert!(unread_wasm_pack_settings(&meta, "dev").is_empty());
        assert!(unread_wasm_pack_settings(&serde_json::Value::Null, "release").is_empty());
    }

    #[test]
    fn a_worker_build_command_line_is_accepted() {
        refuse_unsupported(
            &args(&[
                "--release",
                "--panic-unwind",
                "--no-typescript",
                "--target",
                "module",
                "--out-name",
                "index",
                "-d",
                "build",
            ]),
            env(&[("EMSDK", "/emsdk"), ("COREDUMP_FLAGS", "x")]),
        )
        .unwrap();
    }

    #[test]
    fn each_unsupported_flag_says_what_to_use_instead() {
        for (argv, fragments) in [
            (
                &["--no-panic-recovery"][..],
                &["--no-panic-recovery", "drop --no-panic-recovery", "--lib"][..],
            ),
            (&["--emscripten"], &["--emscripten", "cdylib"]),
            (
                &["--profiling"],
                &["--profiling", "--release", "--profile NAME"],
            ),
            (&["-s", "acme"], &["--scope acme", "drop --scope"]),
            (
                &["--target", "bundler"],
                &["--target bundler", "drop --target"],
            ),
            (
                &["--out-name", "worker"],
                &["--out-name worker", "main = \"build/index.js\""],
            ),
        ] {
            let line = refusal(argv, &[]).to_string();
            for f in fragments {
                assert!(line.contains(f), "{argv:?}: {line:?} lacks {f:?}");
            }
        }
    }

    #[test]
    fn a_crate_directory_without_cargo_toml_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("tool");
        let err = refuse_unsupported(&args(&[missing.to_str().unwrap()]), env(&[])).unwrap_err();
        let problem = err.downcast::<crate::errors::Problem>().unwrap();
        assert_eq!(problem.code, Code::NoManifest);
        assert!(
            problem.what.contains("is neither a crate directory"),
            "{problem}"
        );
        assert!(problem.fix.contains("new, init, check, tools"), "{problem}");
        std::fs::write(dir.path().join("Cargo.toml"), "").unwrap();
        refuse_unsupported(&args(&[dir.path().to_str().unwrap()]), env(&[])).unwrap();
    }

    #[test]
    fn each_unsupported_variable_says_what_to_use_instead() {
        for (name, fix) in [
            ("CUSTOM_SHIM", "--lib"),
            ("RUN_TO_COMPLETION", "ctx.wait_until"),
            ("COREDUMP", "unset COREDUMP"),
        ] {
            let line = refusal(&[], &[(name, "1")]).to_string();
            assert!(line.contains(name) && line.contains(fix), "{line}");
        }
    }
}
