//! Optimisation with Binaryen's `wasm-opt`, which understands both exception-handling encodings
//! from version 119 on (older ones reject exnref or corrupt legacy EH). [`crate::locate`] finds
//! it: `WASM_OPT`, PATH (when new enough), or npm's `binaryen` package installed once into the
//! tool cache and run with node. Without node or a usable `wasm-opt` the bundle is written
//! unoptimised with one warning, unless the user asked for optimisation explicitly.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::Value;

use crate::errors::{problem, Code, Problem};
use crate::process::Cmd;

/// The npm `binaryen` release installed when nothing usable is found (verified with exnref
/// and legacy modules, recovery intact after `-Oz`).
pub const BINARYEN_VERSION: &str = "132.0.0";
/// The first Binaryen that reads and writes exnref (`try_table`, `throw_ref`).
pub const MIN_WASM_OPT: u32 = 119;
/// Every feature a Rust Worker module may use, named one by one: `--all-features` can emit
/// encodings workerd rejects.
pub const FEATURES: &[&str] = &[
    "--enable-exception-handling",
    "--enable-reference-types",
    "--enable-multivalue",
    "--enable-bulk-memory",
    "--enable-sign-ext",
    "--enable-nontrapping-float-to-int",
    "--enable-mutable-globals",
];

/// What the plan says about optimisation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OptPlan {
    /// `None`: no optimisation.
    pub args: Option<Vec<String>>,
    /// Where the decision came from (`--no-opt`, a Cargo.toml key, the profile default).
    pub source: String,
    /// The user asked for it explicitly: failing to optimise is then an error, not a warning.
    pub required: bool,
}

/// Decide optimisation for a profile: `--no-opt`/`--opt-level` win, then
/// `[package.metadata.worker-build.profile.<p>] wasm-opt`, then wasm-pack's key of the same
/// shape (for existing workers-rs projects), then `-Oz` for release-like profiles and none for dev.
pub fn plan(
    no_opt: bool,
    opt_level: Option<&str>,
    profile: &str,
    metadata: &Value,
) -> Result<OptPlan> {
    if no_opt {
        return Ok(OptPlan {
            args: None,
            source: "--no-opt".into(),
            required: false,
        });
    }
    if let Some(level) = opt_level {
        let flag = level_flag(level)?;
        return Ok(OptPlan {
            args: Some(vec![flag]),
            source: "--opt-level".into(),
            required: true,
        });
    }
    // worker-build reads wasm-pack's `custom` table for every profile but dev and release.
    let tables = std::iter::once(("worker-build", profile)).chain(
        crate::compat::wasm_pack_tables(profile)
            .into_iter()
            .map(|t| ("wasm-pack", t)),
    );
    for (tool, prof) in tables {
        let key = format!("package.metadata.{tool}.profile.{prof}.wasm-opt");
        let Some(value) = metadata
            .get(tool)
            .and_then(|t| t.get("profile"))
            .and_then(|p| p.get(prof))
            .and_then(|p| p.get("wasm-opt"))
        else {
            continue;
        };
        return match value {
            Value::Bool(false) => Ok(OptPlan { args: None, source: key, required: false }),
            Value::Bool(true) => Ok(OptPlan { args: Some(default_args()), source: key, required: true }),
            Value::Array(items) if items.iter().all(Value::is_string) => Ok(OptPlan {
                args: Some(items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()),
                source: key,
                required: true,
            }),
            other => Err(problem(
                Code::InvalidOptConfig,
                format!("`{key}` in Cargo.toml must be false or a list of wasm-opt arguments, not `{other}`"),
                format!("write `wasm-opt = [\"-Oz\"]` or `wasm-opt = false` under [package.metadata.{tool}.profile.{prof}]"),
            )),
        };
    }
    if profile == "dev" {
        Ok(OptPlan {
            args: None,
            source: "dev profile default".into(),
            required: false,
        })
    } else {
        Ok(OptPlan {
            args: Some(default_args()),
            source: format!("{profile} profile default"),
            required: false,
        })
    }
}

fn default_args() -> Vec<String> {
    vec!["-Oz".to_string()]
}

fn level_flag(level: &str) -> Result<String> {
    let level = level.trim_start_matches("-O").trim_start_matches('O');
    match level {
        "0" | "1" | "2" | "3" | "4" | "s" | "z" => Ok(format!("-O{level}")),
        _ => Err(problem(
            Code::InvalidOptConfig,
            format!("`--opt-level {level}` is not a wasm-opt level"),
            "use one of 0, 1, 2, 3, 4, s, z (e.g. `--opt-level z`)",
        )),
    }
}

/// A runnable `wasm-opt`: a native binary, or Binaryen's JavaScript build run by node.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WasmOpt {
    pub program: PathBuf,
    /// The script node runs, for the npm build.
    pub script: Option<PathBuf>,
    pub version: u32,
    pub origin: String,
}

impl WasmOpt {
    fn command(&self) -> Cmd {
        match &self.script {
            Some(script) => Cmd::new(&self.program).arg(script.as_os_str()),
            None => Cmd::new(&self.program),
        }
    }
}

/// `wasm-opt version 132 (version_132)` -> 132.
pub fn parse_version(output: &str) -> Option<u32> {
    let rest = output.trim().strip_prefix("wasm-opt version ")?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

pub fn version_of(cmd: &Cmd) -> Option<u32> {
    parse_version(&cmd.clone().arg("--version").read().ok()?)
}

/// Where npm's binaryen keeps its `wasm-opt` script.
pub fn npm_script(dir: &Path) -> PathBuf {
    dir.join("node_modules")
        .join("binaryen")
        .join("bin")
        .join("wasm-opt")
}

/// How many optimised modules [`run`] keeps (the least recently used go first): enough for the
/// release bundles of a whole test suite (one run of this repository's writes more than 16,
/// so with 16 the next run found none of them), each a few hundred kilobytes.
const RESULTS_KEPT: usize = 64;

/// Where [`run`] keeps optimised modules, by what produced them: a fresh checkout or a second
/// project whose module is the same (the compile cache makes it byte-identical) skips wasm-opt,
/// which is the longest step after cargo.
fn results_dir() -> PathBuf {
    crate::toolcache::root().join(".wasm-opt-results")
}

fn result_key(wasm_opt: &WasmOpt, args: &[String], input: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(format!("binaryen {}\0", wasm_opt.version));
    // Which wasm-opt, exactly: its path, size and modification time (another program that says
    // it is the same version must not be answered from this one's results). For npm's Binaryen
    // that is its script, not the node running it: which node is first on PATH (npm scripts put
    // a project's own first) does not change what Binaryen writes.
    let file = wasm_opt.script.as_ref().unwrap_or(&wasm_opt.program);
    let meta = std::fs::metadata(file).ok();
    h.update(format!(
        "{}\0{:?}\0{:?}\0",
        file.display(),
        meta.as_ref().map(|m| m.len()),
        meta.and_then(|m| m.modified().ok())
    ));
    for a in FEATURES
        .iter()
        .copied()
        .chain(args.iter().map(String::as_str))
    {
        h.update(a);
        h.update("\0");
    }
    h.update(input);
    format!("{:x}", h.finalize())
}

/// Keep the result for next time; a failure to keep it only loses the shortcut.
fn keep_result(key: &str, optimised: &Path) {
    keep_result_in(&results_dir(), key, optimised, RESULTS_KEPT);
}

/// Marks the kept result `kept` as just used, so the results used most recently are the ones
/// kept; a failure only makes it go sooner.
fn mark_used(kept: &Path) {
    let _ = std::fs::File::options()
        .write(true)
        .open(kept)
        .and_then(|f| f.set_modified(std::time::SystemTime::now()));
}

/// [`keep_result`] into `dir`, keeping the `limit` most recently used results.
fn keep_result_in(dir: &Path, key: &str, optimised: &Path, limit: usize) {
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let partial = dir.join(format!(".{key}.{}", std::process::id()));
    if std::fs::copy(optimised, &partial).is_err()
        || std::fs::rename(&partial, dir.join(format!("{key}.wasm"))).is_err()
    {
        let _ = std::fs::remove_file(&partial);
        return;
    }
    let mut kept: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "wasm"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    kept.sort();
    let excess = kept.len().saturating_sub(limit);
    for (_, path) in kept.into_iter().take(excess) {
        let _ = std::fs::remove_file(path.with_extension("map"));
        let _ = std::fs::remove_file(path);
    }
}

/// A source map for the module wasm-opt reads, and where it writes the one for its output.
pub struct SourceMaps<'a> {
    pub input: &'a Path,
    pub output: &'a Path,
}

/// Optimise `wasm` in place. On failure the file is left as it was.
pub fn run(
    wasm_opt: &WasmOpt,
    args: &[String],
    wasm: &Path,
    maps: Option<SourceMaps<'_>>,
) -> Result<()> {
    let mut input = crate::fs::read(wasm)?;
    if let Some(maps) = &maps {
        // The result depends on the map too (not on where it is).
        input.extend_from_slice(b"\0source map\0");
        input.extend_from_slice(&crate::fs::read(maps.input)?);
    }
    let key = result_key(wasm_opt, args, &input);
    let kept = results_dir().join(format!("{key}.wasm"));
    if let Ok(optimised) = std::fs::read(&kept) {
        let map = maps
            .as_ref()
            .map(|m| (std::fs::read(kept.with_extension("map")), m.output));
        match map {
            None => {
                mark_used(&kept);
                return crate::fs::write(wasm, optimised);
            }
            Some((Ok(text), to)) => {
                mark_used(&kept);
                crate::fs::write(to, text)?;
                return crate::fs::write(wasm, optimised);
            }
            Some((Err(_), _)) => {}
        }
    }
    let output = wasm.with_extension("opt.wasm");
    let mut cmd = wasm_opt
        .command()
        .args(FEATURES.iter().copied())
        .args(args)
        .arg(wasm.as_os_str())
        .arg("-o")
        .arg(output.as_os_str());
    if let Some(maps) = &maps {
        cmd = cmd
            .arg("--input-source-map")
            .arg(maps.input.as_os_str())
            .arg("--output-source-map")
            .arg(maps.output.as_os_str());
    }
    match cmd.read_or_stderr() {
        Ok(_) => {
            keep_result(&key, &output);
            if let Some(maps) = &maps {
                let _ = std::fs::copy(maps.output, results_dir().join(format!("{key}.map")));
            }
            crate::fs::rename(&output, wasm)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&output);
            Err(Problem::new(
                Code::WasmOptFailed,
                format!("wasm-opt failed ({})", e.status),
                "rebuild with --no-opt to skip optimisation, and report wasm-opt's output (below)",
            )
            .with_detail(format!("command: {}\n{}", e.command, e.stderr))
            .into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_kept_result_is_found_only_for_the_same_module_arguments_and_binaryen() {
        let w = |version| WasmOpt {
            program: "/a/wasm-opt".into(),
            script: None,
            version,
            origin: String::new(),
        };
        let oz = vec!["-Oz".to_string()];
        let key = result_key(&w(132), &oz, b"module");
        assert_eq!(key, result_key(&w(132), &oz, b"module"));
        let other = WasmOpt {
            program: "/b/wasm-opt".into(),
            ..w(132)
        };
        assert_ne!(key, result_key(&other, &oz, b"module"));
        assert_ne!(key, result_key(&w(133), &oz, b"module"));
        assert_ne!(key, result_key(&w(132), &["-O2".to_string()], b"module"));
        assert_ne!(key, result_key(&w(132), &oz, b"module2"));
        // npm's Binaryen: its script is the program; the node running it is not.
        let npm = |node: &str, script: &str| WasmOpt {
            program: node.into(),
            script: Some(script.into()),
            ..w(132)
        };
        let by_npm = result_key(&npm("/usr/bin/node", "/c/wasm-opt"), &oz, b"module");
        assert_eq!(
            by_npm,
            result_key(
                &npm("/p/node_modules/.bin/node", "/c/wasm-opt"),
                &oz,
                b"module"
            )
        );
        assert_ne!(
            by_npm,
            result_key(&npm("/usr/bin/node", "/d/wasm-opt"), &oz, b"module")
        );
    }

    #[test]
    fn the_results_used_most_recently_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path().join("results");
        let module = dir.path().join("module.wasm");
        std::fs::write(&module, b"optimised").unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for (i, key) in ["a", "b", "c"].into_iter().enumerate() {
            keep_result_in(&results, key, &module, 3);
            let kept = std::fs::File::options()
                .write(true)
                .open(results.join(format!("{key}.wasm")))
                .unwrap();
            kept.set_modified(old + std::time::Duration::from_secs(i as u64))
                .unwrap();
        }
        // `a` was written first, but used since: `b` is the least recently used.
        mark_used(&results.join("a.wasm"));
        keep_result_in(&results, "d", &module, 3);
        let mut left: Vec<String> = std::fs::read_dir(&results)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["a.wasm", "c.wasm", "d.wasm"]);
    }

    #[test]
    fn release_defaults_to_oz_and_dev_to_none() {
        let p = plan(false, None, "release", &Value::Null).unwrap();
        assert_eq!(p.args, Some(vec!["-Oz".to_string()]));
        assert!(!p.required);
        assert_eq!(plan(false, None, "dev", &Value::Null).unwrap().args, None);
    }

    #[test]
    fn command_line_wins_over_cargo_toml() {
        let meta = json!({"worker-build": {"profile": {"release": {"wasm-opt": ["-O2"]}}}});
        assert_eq!(plan(true, None, "release", &meta).unwrap().args, None);
        let p = plan(false, Some("s"), "release", &meta).unwrap();
        assert_eq!(p.args, Some(vec!["-Os".to_string()]));
        assert!(p.required);
    }

    #[test]
    fn our_key_then_wasm_pack_key() {
        let ours = json!({"worker-build": {"profile": {"release": {"wasm-opt": ["-O3", "--strip-debug"]}}}, "wasm-pack": {"profile": {"release": {"wasm-opt": false}}}});
        let p = plan(false, None, "release", &ours).unwrap();
        assert_eq!(
            p.args,
            Some(vec!["-O3".to_string(), "--strip-debug".to_string()])
        );
        assert_eq!(
            p.source,
            "package.metadata.worker-build.profile.release.wasm-opt"
        );
        let theirs = json!({"wasm-pack": {"profile": {"release": {"wasm-opt": false}}}});
        let p = plan(false, None, "release", &theirs).unwrap();
        assert_eq!(p.args, None);
        assert_eq!(
            p.source,
            "package.metadata.wasm-pack.profile.release.wasm-opt"
        );
    }

    #[test]
    fn wasm_pack_custom_table_serves_custom_profiles_after_the_named_one() {
        let meta = json!({"wasm-pack": {"profile": {
            "custom": {"wasm-opt": ["-O2"]},
            "small": {"wasm-opt": ["-Os"]},
            "release": {"wasm-opt": false},
        }}});
        let p = plan(false, None, "size", &meta).unwrap();
        assert_eq!(p.args, Some(vec!["-O2".to_string()]));
        assert_eq!(
            p.source,
            "package.metadata.wasm-pack.profile.custom.wasm-opt"
        );
        let p = plan(false, None, "small", &meta).unwrap();
        assert_eq!(p.args, Some(vec!["-Os".to_string()]));
        // dev and release never fall back to `custom`.
        assert_eq!(plan(false, None, "release", &meta).unwrap().args, None);
        assert_eq!(
            plan(false, None, "dev", &meta).unwrap().source,
            "dev profile default"
        );
        // Our own table still comes first.
        let ours = json!({"worker-build": {"profile": {"size": {"wasm-opt": false}}}, "wasm-pack": {"profile": {"custom": {"wasm-opt": ["-O2"]}}}});
        assert_eq!(plan(false, None, "size", &ours).unwrap().args, None);
    }

    #[test]
    fn an_invalid_setting_names_the_key() {
        let bad = json!({"worker-build": {"profile": {"release": {"wasm-opt": "-Oz"}}}});
        let err = plan(false, None, "release", &bad).unwrap_err().to_string();
        assert!(
            err.contains("package.metadata.worker-build.profile.release.wasm-opt"),
            "{err}"
        );
        assert!(err.contains("wasm-opt = [\"-Oz\"]"), "{err}");
        let bad = json!({"worker-build": {"profile": {"release": {"wasm-opt": ["-Oz", 3]}}}});
        assert!(plan(false, None, "release", &bad).is_err());
    }

    #[test]
    fn versions_are_parsed() {
        assert_eq!(
            parse_version("wasm-opt version 132 (version_132)\n"),
            Some(132)
        );
        assert_eq!(parse_version("wasm-opt version 108"), Some(108));
        assert_eq!(parse_version("wasm-bindgen 0.2.130"), None);
    }
}
