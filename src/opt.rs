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

/// A kept result is one file: a header, a digest of what follows, the module, then its source
/// map. It is written under a temporary name, synced and renamed, so it appears whole or not
/// at all (the old layout published the module before its map, and a build killed in between
/// left a truncated map that failed every later build). One that does not check out, whatever
/// damaged it, is a miss and is replaced.
const ENTRY_MAGIC: &[u8] = b"cargo-worker-build wasm-opt result 1\n";
const ENTRY_EXT: &str = "entry";

fn entry_digest(wasm: &[u8], map: Option<&[u8]>) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update((wasm.len() as u64).to_le_bytes());
    h.update(wasm);
    match map {
        Some(map) => {
            h.update([1]);
            h.update((map.len() as u64).to_le_bytes());
            h.update(map);
        }
        None => h.update([0]),
    }
    h.finalize().into()
}

fn encode_entry(wasm: &[u8], map: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(ENTRY_MAGIC.len() + 49 + wasm.len());
    out.extend_from_slice(ENTRY_MAGIC);
    out.extend_from_slice(&entry_digest(wasm, map));
    out.extend_from_slice(&(wasm.len() as u64).to_le_bytes());
    out.push(u8::from(map.is_some()));
    out.extend_from_slice(wasm);
    if let Some(map) = map {
        out.extend_from_slice(map);
    }
    out
}

/// The module and map a kept result holds, or `None` when it is not one whole entry.
fn decode_entry(bytes: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let rest = bytes.strip_prefix(ENTRY_MAGIC)?;
    let (digest, rest) = rest.split_first_chunk::<32>()?;
    let (len, rest) = rest.split_first_chunk::<8>()?;
    let (&has_map, rest) = rest.split_first()?;
    let len = usize::try_from(u64::from_le_bytes(*len)).ok()?;
    if len > rest.len() || has_map > 1 {
        return None;
    }
    let (wasm, map) = rest.split_at(len);
    let map = match has_map {
        1 => Some(map),
        _ if map.is_empty() => None,
        _ => return None,
    };
    (entry_digest(wasm, map) == *digest).then_some((wasm, map))
}

/// The kept result for `key` in `dir`: its module, and its source map when `with_map`. A
/// damaged entry, or one without the map asked for, is removed and counts as a miss.
fn lookup_in(dir: &Path, key: &str, with_map: bool) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let path = dir.join(format!("{key}.{ENTRY_EXT}"));
    let bytes = std::fs::read(&path).ok()?;
    match decode_entry(&bytes) {
        Some((wasm, map)) if map.is_some() == with_map => {
            mark_used(&path);
            Some((wasm.to_vec(), map.map(<[u8]>::to_vec)))
        }
        _ => {
            let _ = std::fs::remove_file(&path);
            None
        }
    }
}

/// Keep the result for next time; a failure to keep it only loses the shortcut.
fn keep_result(key: &str, wasm: &[u8], map: Option<&[u8]>) {
    keep_result_in(&results_dir(), key, wasm, map, RESULTS_KEPT);
}

/// Marks the kept result `kept` as just used, so the results used most recently are the ones
/// kept; a failure only makes it go sooner.
fn mark_used(kept: &Path) {
    let _ = std::fs::File::options()
        .write(true)
        .open(kept)
        .and_then(|f| f.set_modified(std::time::SystemTime::now()));
}

/// How old a temporary file in the results directory must be before another build takes it
/// for one a killed build left: far longer than writing a module takes.
const STALE_PARTIAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// [`keep_result`] into `dir`, keeping the `limit` most recently used results.
fn keep_result_in(dir: &Path, key: &str, wasm: &[u8], map: Option<&[u8]>, limit: usize) {
    use std::io::Write as _;
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let partial = dir.join(format!(".{key}.{}.tmp", std::process::id()));
    let written = std::fs::File::create(&partial).and_then(|mut f| {
        f.write_all(&encode_entry(wasm, map))?;
        // On disk before the name is, so a crash cannot leave a complete-looking empty file.
        f.sync_all()
    });
    if written.is_err()
        || std::fs::rename(&partial, dir.join(format!("{key}.{ENTRY_EXT}"))).is_err()
    {
        let _ = std::fs::remove_file(&partial);
        return;
    }
    let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    let mut kept = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        let Ok(modified) = meta.modified() else {
            continue;
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.extension().is_some_and(|x| x == ENTRY_EXT) {
            kept.push((modified, path));
        } else if name.starts_with('.') && name.ends_with(".tmp") {
            if modified.elapsed().is_ok_and(|age| age > STALE_PARTIAL) {
                let _ = std::fs::remove_file(&path);
            }
        } else if path.extension().is_some_and(|x| x == "wasm" || x == "map") {
            // The old layout's files: never read any more.
            let _ = std::fs::remove_file(&path);
        }
    }
    kept.sort();
    let excess = kept.len().saturating_sub(limit);
    for (_, path) in kept.into_iter().take(excess) {
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
    if let Some((optimised, map)) = lookup_in(&results_dir(), &key, maps.is_some()) {
        if let (Some(text), Some(maps)) = (map, &maps) {
            crate::fs::write(maps.output, text)?;
        }
        return crate::fs::write(wasm, optimised);
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
            let map = match &maps {
                Some(maps) => std::fs::read(maps.output).ok(),
                None => None,
            };
            // Kept only whole: a result whose map cannot be read is not kept at all.
            if maps.is_none() || map.is_some() {
                if let Ok(optimised) = std::fs::read(&output) {
                    keep_result(&key, &optimised, map.as_deref());
                }
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
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for (i, key) in ["a", "b", "c"].into_iter().enumerate() {
            keep_result_in(&results, key, b"optimised", None, 3);
            let kept = std::fs::File::options()
                .write(true)
                .open(results.join(format!("{key}.entry")))
                .unwrap();
            kept.set_modified(old + std::time::Duration::from_secs(i as u64))
                .unwrap();
        }
        // `a` was written first, but used since: `b` is the least recently used.
        assert!(lookup_in(&results, "a", false).is_some());
        keep_result_in(&results, "d", b"optimised", None, 3);
        let mut left: Vec<String> = std::fs::read_dir(&results)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["a.entry", "c.entry", "d.entry"]);
    }

    #[test]
    fn a_damaged_kept_result_is_a_miss_and_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path().join("results");
        let map = br#"{"version":3,"mappings":""}"#;
        keep_result_in(&results, "k", b"\0asm module", Some(map), 8);
        let entry = results.join("k.entry");
        let whole = std::fs::read(&entry).unwrap();
        assert_eq!(
            lookup_in(&results, "k", true),
            Some((b"\0asm module".to_vec(), Some(map.to_vec())))
        );
        // Asked without a map, an entry with one is not the same result.
        assert_eq!(lookup_in(&results, "k", false), None);
        assert!(!entry.exists());
        let damaged: [Vec<u8>; 4] = [
            whole[..whole.len() - 5].to_vec(),
            whole[..10].to_vec(),
            b"garbage".to_vec(),
            {
                let mut flipped = whole.clone();
                *flipped.last_mut().unwrap() ^= 1;
                flipped
            },
        ];
        for bytes in damaged {
            std::fs::write(&entry, &bytes).unwrap();
            assert_eq!(lookup_in(&results, "k", true), None, "{bytes:?}");
            assert!(!entry.exists(), "a damaged entry is left behind");
        }
        // The old layout's files and a killed build's leftovers go when a result is kept.
        std::fs::write(results.join("old.wasm"), b"x").unwrap();
        std::fs::write(results.join("old.map"), b"{").unwrap();
        let stale = results.join(".z.1.tmp");
        std::fs::write(&stale, b"half").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - 2 * STALE_PARTIAL)
            .unwrap();
        let live = results.join(".y.2.tmp");
        std::fs::write(&live, b"being written").unwrap();
        keep_result_in(&results, "k", b"\0asm module", Some(map), 8);
        let mut left: Vec<String> = std::fs::read_dir(&results)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [".y.2.tmp", "k.entry"]);
        assert!(lookup_in(&results, "k", true).is_some());
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
