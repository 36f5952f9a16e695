//! Reads a bundle directory: the build manifest (`.worker-build.json`, when our build wrote one),
//! which file is the entry, the glue and the module, and how the JavaScript is wired.
//!
//! Our bundles are one ES module written by esbuild: its metafile (named by the manifest, kept
//! next to the bundle and imported by nothing) says what went into the entry and in which order
//! each input imports the next, as esbuild parsed them. Bundles without it (third-party ones,
//! or our older three-file layout) are read by their import/export declarations: the names
//! default to `index.js`, `glue.js` and `index_bg.wasm`, and when there is no separate glue file
//! the entry is taken to be the glue (plain wasm-bindgen `--target module` output, where
//! `index.js` loads the module itself).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::js::{ModuleSyntax, SyntaxError};
use super::CheckError;
use crate::model::{EhEncoding, Expect};

/// The manifest our build writes next to the bundle (see [`crate::bundle::Manifest`]).
pub use crate::bundle::MANIFEST as MANIFEST_FILE;
/// Our recovery runtime in the older three-file layout; the entry must import it before the
/// glue, because it observes the glue's instantiation of the module to find wasm-bindgen's
/// terminated flag.
pub const RUNTIME_FILE: &str = "runtime.js";
/// What our manifest's `tool` field says.
pub const TOOL_NAME: &str = env!("CARGO_PKG_NAME");

/// What the build recorded about itself, read for checking. Unlike [`crate::bundle::Manifest`]
/// (which the build reads strictly to decide freshness), every field is optional: an older or
/// newer tool's manifest, or a hand-edited one, still informs the check.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Manifest {
    /// The manifest as written, reproduced in the JSON report.
    pub raw: Value,
    pub tool: Option<String>,
    pub mode: Option<Expect>,
    pub eh: Option<EhEncoding>,
    pub wasm_bindgen: Option<String>,
    pub library: Option<bool>,
    pub entry: Option<String>,
    pub glue: Option<String>,
    pub wasm: Option<String>,
    /// How the entry was bundled (our one-module layout).
    pub bundled: Option<crate::bundle::Bundled>,
    /// Every file of the bundle, relative to its directory.
    pub files: Vec<String>,
}

impl Manifest {
    pub fn from_json(text: &str) -> Result<Manifest, String> {
        let raw: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if !raw.is_object() {
            return Err("not a JSON object".into());
        }
        let string = |key: &str| raw.get(key).and_then(Value::as_str).map(str::to_string);
        // File names must stay inside the bundle directory.
        let file = |key: &str| string(key).filter(|f| is_plain_relative(f));
        let files = raw
            .get("files")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(Value::as_str)
                    .filter(|f| is_plain_relative(f))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Manifest {
            tool: string("tool"),
            files,
            mode: match raw.get("mode").and_then(Value::as_str) {
                Some("unwind") => Some(Expect::Unwind),
                Some("abort") => Some(Expect::Abort),
                _ => None,
            },
            eh: match raw.get("eh").and_then(Value::as_str) {
                Some("exnref") => Some(EhEncoding::Exnref),
                Some("legacy") => Some(EhEncoding::Legacy),
                _ => None,
            },
            wasm_bindgen: string("wasm_bindgen"),
            library: raw.get("library").and_then(Value::as_bool),
            entry: file("entry"),
            glue: file("glue"),
            wasm: file("wasm"),
            bundled: raw
                .get("bundled")
                .and_then(|b| serde_json::from_value::<crate::bundle::Bundled>(b.clone()).ok())
                .filter(|b| is_plain_relative(&b.metafile)),
            raw,
        })
    }
}

fn is_plain_relative(name: &str) -> bool {
    let path = Path::new(name);
    !name.is_empty()
        && path.is_relative()
        && path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

/// A bundle directory as the check sees it.
#[derive(Debug, Clone, Default)]
pub struct BundleInfo {
    pub dir: PathBuf,
    /// `None` when the directory has no manifest.
    pub manifest: Option<Manifest>,
    /// Set when a manifest exists but could not be read or parsed.
    pub manifest_error: Option<String>,
    pub entry_name: String,
    pub glue_name: String,
    pub wasm_name: String,
    /// `None` when the file is missing or unreadable; an error when it is not an ES module.
    pub entry: Option<Result<ModuleSyntax, SyntaxError>>,
    pub glue: Option<Result<ModuleSyntax, SyntaxError>>,
    /// The bundle was written by cargo-worker-build, so it must contain our recovery runtime.
    pub ours: bool,
    pub runtime_present: bool,
    /// Files the manifest lists that are not in the directory.
    pub missing_files: Vec<String>,
    /// esbuild's metafile of a one-module bundle, or why it could not be read.
    pub metafile: Option<Result<Metafile, String>>,
    /// The entry's size on disk, compared with what the metafile says esbuild wrote.
    pub entry_bytes: Option<u64>,
    /// The one-module layout: named by the manifest, or (when there is no usable manifest)
    /// recognised by a metafile whose entry is ours.
    pub bundled: Option<crate::bundle::Bundled>,
}

/// The bundling run's record, as far as the check reads it.
pub use crate::esbuild::Metafile;

impl BundleInfo {
    /// How the one-module bundle was made, when it is one.
    pub fn bundled(&self) -> Option<&crate::bundle::Bundled> {
        self.bundled.as_ref()
    }

    /// The entry's declarations, when it was read and parsed.
    pub fn entry_syntax(&self) -> Option<&ModuleSyntax> {
        self.entry.as_ref().and_then(|r| r.as_ref().ok())
    }

    /// The glue's declarations, when it was read and parsed.
    pub fn glue_syntax(&self) -> Option<&ModuleSyntax> {
        self.glue.as_ref().and_then(|r| r.as_ref().ok())
    }

    /// The first of the entry and the glue that is not an ES module, with where and why:
    /// `index.js, line 6, column 26: Expected ',', got '<eof>'`.
    pub fn syntax_error(&self) -> Option<String> {
        [
            (&self.entry_name, &self.entry),
            (&self.glue_name, &self.glue),
        ]
        .into_iter()
        .find_map(|(name, parsed)| match parsed {
            Some(Err(e)) => Some(format!("{name}, {e}")),
            _ => None,
        })
    }
}

impl BundleInfo {
    /// Read the manifest and the JavaScript files of the bundle in `dir`. Fails only when the
    /// directory holds no module to check; missing JavaScript is left for the checks to report.
    pub fn read(dir: &Path) -> Result<BundleInfo, CheckError> {
        let (manifest, manifest_error) = match std::fs::read_to_string(dir.join(MANIFEST_FILE)) {
            Ok(text) => match Manifest::from_json(&text) {
                Ok(m) => (Some(m), None),
                Err(e) => (None, Some(format!("{MANIFEST_FILE} is not valid: {e}"))),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, None),
            Err(e) => (None, Some(format!("could not read {MANIFEST_FILE}: {e}"))),
        };
        let named = |pick: fn(&Manifest) -> &Option<String>, default: &str| {
            manifest
                .as_ref()
                .and_then(|m| pick(m).clone())
                .unwrap_or_else(|| default.to_string())
        };
        let entry_name = named(|m| &m.entry, "index.js");
        let wasm_name = match manifest.as_ref().and_then(|m| m.wasm.clone()) {
            Some(name) => name,
            None => find_module(dir)?,
        };
        if !dir.join(&wasm_name).is_file() {
            return Err(CheckError::NotABundle {
                path: dir.to_path_buf(),
                reason: format!("{wasm_name} is missing"),
            });
        }
        let bundled = match manifest.as_ref() {
            Some(m) => m.bundled.clone(),
            None => {
                let ours = crate::bundle::Bundled::ours();
                Metafile::read(&dir.join(&ours.metafile))
                    .ok()
                    .filter(|m| {
                        m.outputs
                            .get(&entry_name)
                            .and_then(|o| o.entry_point.as_deref())
                            == Some(ours.entry_source.as_str())
                    })
                    .map(|_| ours)
            }
        };
        let mut glue_name = named(|m| &m.glue, "glue.js");
        if bundled.is_some()
            || (manifest.as_ref().and_then(|m| m.glue.as_ref()).is_none()
                && !dir.join(&glue_name).is_file())
        {
            glue_name = entry_name.clone();
        }
        let metafile = bundled.as_ref().map(|b| {
            let path = dir.join(&b.metafile);
            Metafile::read(&path).map_err(|e| format!("{e:#}"))
        });
        let ours = manifest.as_ref().and_then(|m| m.tool.as_deref()) == Some(TOOL_NAME);
        let missing_files = manifest
            .iter()
            .flat_map(|m| &m.files)
            .filter(|f| !dir.join(f).is_file())
            .cloned()
            .collect();
        let read_js = |name: &str| {
            std::fs::read(dir.join(name))
                .ok()
                .map(|b| ModuleSyntax::parse(&String::from_utf8_lossy(&b)))
        };
        // A one-module bundle's wiring comes from the metafile, not from its (bundled) text.
        let (entry, glue) = if bundled.is_some() {
            (None, None)
        } else {
            let entry = read_js(&entry_name);
            // A glue inlined into the entry is that same file: parsed once.
            let glue = if glue_name == entry_name {
                entry.clone()
            } else {
                read_js(&glue_name)
            };
            (entry, glue)
        };
        Ok(BundleInfo {
            dir: dir.to_path_buf(),
            entry,
            glue,
            metafile,
            entry_bytes: std::fs::metadata(dir.join(&entry_name))
                .ok()
                .map(|m| m.len()),
            bundled,
            ours,
            runtime_present: dir.join(RUNTIME_FILE).is_file(),
            missing_files,
            manifest,
            manifest_error,
            entry_name,
            glue_name,
            wasm_name,
        })
    }

    pub fn wasm_path(&self) -> PathBuf {
        self.dir.join(&self.wasm_name)
    }
}

/// `index_bg.wasm` if present, else the only `.wasm` file in the directory.
fn find_module(dir: &Path) -> Result<String, CheckError> {
    const DEFAULT: &str = "index_bg.wasm";
    if dir.join(DEFAULT).is_file() {
        return Ok(DEFAULT.to_string());
    }
    let entries = std::fs::read_dir(dir).map_err(|source| CheckError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut modules: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "wasm") && e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    modules.sort();
    match modules.len() {
        1 => Ok(modules.remove(0)),
        0 => Err(CheckError::NotABundle {
            path: dir.to_path_buf(),
            reason: format!("no {DEFAULT} and no other .wasm file"),
        }),
        _ => Err(CheckError::NotABundle {
            path: dir.to_path_buf(),
            reason: format!(
                "no {DEFAULT} and several .wasm files ({}); pass the module's path",
                modules.join(", ")
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_is_read_tolerantly() {
        let m = Manifest::from_json(
            r#"{"tool":"cargo-worker-build","mode":"unwind","eh":"legacy","wasm_bindgen":"0.2.130",
                "library":false,"entry":"index.js","glue":"glue.js","wasm":"index_bg.wasm","future":[1,2]}"#,
        )
        .unwrap();
        assert_eq!(m.mode, Some(Expect::Unwind));
        assert_eq!(m.eh, Some(EhEncoding::Legacy));
        assert_eq!(m.wasm_bindgen.as_deref(), Some("0.2.130"));
        assert_eq!(m.glue.as_deref(), Some("glue.js"));
        assert_eq!(m.tool.as_deref(), Some(TOOL_NAME));

        let odd = Manifest::from_json(
            r#"{"mode":"sideways","eh":null,"wasm":"../../etc/passwd","entry":7}"#,
        )
        .unwrap();
        assert_eq!(
            (odd.mode, odd.eh, odd.wasm, odd.entry),
            (None, None, None, None)
        );
        assert!(Manifest::from_json("[1]").is_err());
        assert!(Manifest::from_json("{").is_err());
    }
}
