//! esbuild, run twice per build: once to read the names the wasm-bindgen glue exports (esbuild
//! parses the module and lists them in its metafile), and once to bundle the entry, the recovery
//! runtime, the glue and its snippets into the one ES module the bundle ships (`index.js`).
//!
//! The bundle's only imports stay external: the Wasm module (the glue's source-phase
//! `import source wasmModule from "./index_bg.wasm"`, kept as written) and the platform's
//! builtins (`cloudflare:*`, and `node:*` for snippets of crates that use Node compatibility).
//! esbuild keeps the evaluation order of ES module imports, so the runtime, imported first by
//! the entry, is evaluated before the glue instantiates the module.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};

use crate::errors::{Code, Problem};
pub use crate::minify::Esbuild;
use crate::process::Cmd;

/// Import specifiers the bundle leaves to the platform.
pub const EXTERNAL: &[&str] = &["./index_bg.wasm", "cloudflare:*", "node:*"];

/// esbuild's metafile (`--metafile`): what went into each output and what each file imports,
/// as esbuild parsed it. Only the fields the tool reads are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Metafile {
    #[serde(default)]
    pub inputs: BTreeMap<String, Input>,
    #[serde(default)]
    pub outputs: BTreeMap<String, Output>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Input {
    /// In source order, which is evaluation order for ES modules.
    #[serde(default)]
    pub imports: Vec<Import>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Import {
    /// The resolved input path, or the specifier as written for an external import.
    pub path: String,
    /// `import-statement`, `dynamic-import`, `require-call`, ...
    pub kind: String,
    #[serde(default)]
    pub external: bool,
    /// The specifier as written, when it differs from `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Output {
    /// External imports left in the output.
    #[serde(default)]
    pub imports: Vec<Import>,
    /// The names the output exports.
    #[serde(default)]
    pub exports: Vec<String>,
    #[serde(
        default,
        rename = "entryPoint",
        skip_serializing_if = "Option::is_none"
    )]
    pub entry_point: Option<String>,
    /// The inputs whose code is in the output, with how many bytes each contributes.
    #[serde(default)]
    pub inputs: BTreeMap<String, OutputInput>,
    /// The output's size as written.
    #[serde(default)]
    pub bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutputInput {
    #[serde(rename = "bytesInOutput")]
    pub bytes_in_output: u64,
}

impl Metafile {
    pub fn read(path: &Path) -> Result<Metafile> {
        let bytes = crate::fs::read(path)?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("esbuild's metafile {} is not readable", path.display()))
    }
}

/// The export names of the ES module `module` (run in `dir`, which receives the scratch output).
pub fn exports_of(esbuild: &Esbuild, dir: &Path, module: &str) -> Result<Vec<String>> {
    let out = format!("{module}.parsed.js");
    let meta = format!("{module}.meta.json");
    let cmd = Cmd::new(&esbuild.program)
        .cwd(dir)
        .arg(module)
        .args(["--format=esm", "--platform=neutral", "--log-level=error"])
        .arg(format!("--outfile={out}"))
        .arg(format!("--metafile={meta}"));
    cmd.read_or_stderr().map_err(glue_unparsed)?;
    let metafile = Metafile::read(&dir.join(&meta))?;
    let _ = std::fs::remove_file(dir.join(&out));
    let _ = std::fs::remove_file(dir.join(&meta));
    let output = metafile
        .outputs
        .into_values()
        .next()
        .context("esbuild's metafile lists no output for the glue")?;
    Ok(output.exports)
}

/// esbuild failed to read the glue: its command and stderr go with the error.
fn glue_unparsed(e: crate::process::CommandFailed) -> anyhow::Error {
    Problem::new(
        Code::BundleFailed,
        format!(
            "esbuild could not parse the wasm-bindgen glue ({})",
            e.status
        ),
        "report esbuild's output (below) with the crate's wasm-bindgen version",
    )
    .with_detail(format!("command: {}\n{}", e.command, e.stderr))
    .into()
}

/// The property names matching `pattern` (a Go regular expression) that esbuild finds in the
/// ES module `module` (run in `dir`): it parses the module with `--mangle-props=pattern`, and the
/// mangle cache it writes lists every property it matched.
pub fn properties_of(
    esbuild: &Esbuild,
    dir: &Path,
    module: &str,
    pattern: &str,
) -> Result<std::collections::BTreeSet<String>> {
    let out = format!("{module}.props.js");
    let cache = format!("{module}.props.json");
    let cmd = Cmd::new(&esbuild.program)
        .cwd(dir)
        .arg(module)
        .args(["--format=esm", "--platform=neutral", "--log-level=error"])
        .arg(format!("--outfile={out}"))
        .arg(format!("--mangle-props={pattern}"))
        .arg(format!("--mangle-cache={cache}"));
    let result = cmd.read_or_stderr();
    let _ = std::fs::remove_file(dir.join(&out));
    result.map_err(|e| {
        let _ = std::fs::remove_file(dir.join(&cache));
        glue_unparsed(e)
    })?;
    let found = read_mangle_cache(&dir.join(&cache));
    let _ = std::fs::remove_file(dir.join(&cache));
    Ok(found?.into_keys().collect())
}

/// esbuild's mangle cache: property name -> its new name (`false` for names it must keep).
fn read_mangle_cache(path: &Path) -> Result<BTreeMap<String, serde_json::Value>> {
    let bytes = crate::fs::read(path)?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("esbuild's mangle cache {} is not readable", path.display()))
}

/// A Go regular expression (esbuild's) matching exactly `names`, or `None` for no names.
pub fn exact_pattern(names: &[&str]) -> Option<String> {
    if names.is_empty() {
        return None;
    }
    let escaped: Vec<String> = names
        .iter()
        .map(|n| {
            n.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        c.to_string()
                    } else {
                        format!("\\{c}")
                    }
                })
                .collect()
        })
        .collect();
    Some(format!("^(?:{})$", escaped.join("|")))
}

/// What one bundling run is given.
pub struct BundleJob<'a> {
    /// The working directory, which receives the outputs: every other path is relative to it
    /// (and so are the metafile's).
    pub dir: &'a Path,
    /// The directory of the sources; an input `<sources>/x.js` is written to `x.js`.
    pub sources: &'a str,
    /// The entry, inside `sources`.
    pub entry: &'a str,
    /// The glue, inside `sources`, bundled on its own as well so that the metafile records
    /// its exports; that output is then removed.
    pub glue: &'a str,
    pub metafile: &'a str,
    pub minify: bool,
    /// Snippet files (relative to `dir`, under `sources`) the glue imports, named (relative to
    /// `sources`, as in wasm-bindgen's output) when esbuild fails on one.
    pub snippets: &'a [String],
    /// The build's profile, for the fix line.
    pub profile: &'a str,
    /// Property names to give fixed new names when minifying (the module's import names,
    /// [`crate::imports`]); the mangle cache holding them is written among the sources.
    pub renames: &'a BTreeMap<String, String>,
}

/// Bundle `job.entry` and everything it imports, except [`EXTERNAL`], into one module in
/// `job.dir` named like the entry.
pub fn bundle(esbuild: &Esbuild, job: &BundleJob) -> Result<()> {
    let mangle_cache = format!("{}/mangle-cache.json", job.sources);
    let mut cmd = Cmd::new(&esbuild.program)
        .cwd(job.dir)
        .arg(format!("{}/{}", job.sources, job.entry))
        .arg(format!("{}/{}", job.sources, job.glue))
        .args([
            "--bundle",
            "--format=esm",
            "--platform=neutral",
            "--charset=utf8",
            "--log-level=error",
        ])
        .args(EXTERNAL.iter().map(|e| format!("--external:{e}")))
        .arg("--outdir=.")
        .arg(format!("--outbase={}", job.sources))
        .arg(format!("--metafile={}", job.metafile));
    if job.minify {
        // The runtime's internal properties end in `_$` (src/runtime/runtime.js); no glue name
        // does (Rust identifiers hold no `$`), so only they are renamed, and the glue's import
        // names listed in `renames`, to the names the module already has.
        let mut pattern = "_\\$$".to_string();
        let names: Vec<&str> = job.renames.keys().map(String::as_str).collect();
        if let Some(exact) = exact_pattern(&names) {
            pattern = format!("{pattern}|{exact}");
            crate::fs::write(
                &job.dir.join(&mangle_cache),
                serde_json::to_vec(job.renames)?,
            )?;
            cmd = cmd.arg(format!("--mangle-cache={mangle_cache}"));
        }
        cmd = cmd.args(["--minify".to_string(), format!("--mangle-props={pattern}")]);
    }
    cmd.read_or_stderr().map_err(|e| {
        let detail = format!("command: {}\n{}", e.command, e.stderr);
        let problem = match job.snippets.iter().find(|s| e.stderr.contains(s.as_str())) {
            Some(path) => {
                let snippet = path
                    .strip_prefix(&format!("{}/", job.sources))
                    .unwrap_or(path);
                Problem::new(
                Code::SnippetNotInlinable,
                format!(
                    "the JavaScript snippet {snippet} cannot be inlined into the bundle (esbuild: {})",
                    first_error(&e.stderr)
                ),
                "make it import only relative files, `cloudflare:*` or `node:*` builtins (no npm packages), \
                 then build again; the snippet comes from a `#[wasm_bindgen(module = ...)]` or `inline_js` in the crate or a dependency",
            )
            }
            None => Problem::new(
                Code::BundleFailed,
                format!("esbuild failed to bundle the Worker's JavaScript ({})", e.status),
                format!(
                    "report esbuild's output (below); `minify = false` under [package.metadata.worker-build.profile.{}] or --no-opt skips minification only",
                    job.profile
                ),
            ),
        };
        anyhow::Error::from(problem.with_detail(detail))
    })?;
    if job.minify && !job.renames.is_empty() {
        // esbuild keeps a cache entry as given; one it changed would leave the glue and the
        // module with different names.
        let written = read_mangle_cache(&job.dir.join(&mangle_cache))?;
        if let Some((name, short)) = job.renames.iter().find(|(name, short)| {
            written.get(*name).and_then(|v| v.as_str()) != Some(short.as_str())
        }) {
            return Err(Problem::new(
                Code::BundleFailed,
                format!("esbuild did not give the glue's import `{name}` the module's name `{short}`"),
                format!("report this with esbuild's version; `minify = false` under [package.metadata.worker-build.profile.{}] builds without renaming", job.profile),
            )
            .into());
        }
    }
    crate::fs::remove_file(&job.dir.join(job.glue))
}

/// esbuild's first error message, without its location and source excerpt.
fn first_error(stderr: &str) -> String {
    stderr
        .lines()
        .find_map(|l| {
            l.trim_start()
                .strip_prefix("✘ [ERROR] ")
                .or_else(|| l.split_once("error: ").map(|(_, m)| m))
        })
        .unwrap_or("see below")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metafile_reads_imports_in_order_and_output_exports() {
        let text = r#"{"inputs":{"src/entry.js":{"bytes":3,"imports":[
              {"path":"cloudflare:workers","kind":"import-statement","external":true},
              {"path":"src/runtime.js","kind":"import-statement","original":"./runtime.js"},
              {"path":"src/glue.js","kind":"import-statement","original":"./glue.js"}],"format":"esm"}},
            "outputs":{"index.js":{"imports":[],"exports":["Tally","default"],"entryPoint":"src/entry.js",
              "inputs":{"src/runtime.js":{"bytesInOutput":10}},"bytes":4}}}"#;
        let m: Metafile = serde_json::from_str(text).unwrap();
        let paths: Vec<_> = m.inputs["src/entry.js"]
            .imports
            .iter()
            .map(|i| i.path.as_str())
            .collect();
        assert_eq!(
            paths,
            ["cloudflare:workers", "src/runtime.js", "src/glue.js"]
        );
        assert_eq!(m.outputs["index.js"].exports, ["Tally", "default"]);
        assert_eq!(
            m.outputs["index.js"].inputs["src/runtime.js"].bytes_in_output,
            10
        );
    }

    #[test]
    fn the_pattern_matches_exactly_the_names() {
        assert_eq!(exact_pattern(&[]), None);
        assert_eq!(
            exact_pattern(&["__wbg_a_01", "x$y"]).unwrap(),
            "^(?:__wbg_a_01|x\\$y)$"
        );
    }

    #[test]
    fn the_first_error_line_is_extracted() {
        let stderr =
            "✘ [ERROR] Could not resolve \"left-pad\"\n\n    snippets/x/inline0.js:1:17:\n";
        assert_eq!(first_error(stderr), "Could not resolve \"left-pad\"");
        assert_eq!(first_error("weird"), "see below");
    }
}
