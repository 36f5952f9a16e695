//! Reads a bundle directory: the build manifest (`.worker-build.json`, when our build wrote one),
//! which file is the entry, the glue and the module, and the import/export declarations of the
//! two JavaScript files.
//!
//! Third-party bundles have no manifest; then the names default to ours (`index.js`, `glue.js`,
//! `index_bg.wasm`), and when there is no separate glue file the entry is taken to be the glue
//! (plain wasm-bindgen `--target module` output, where `index.js` loads the module itself).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::js::ModuleSyntax;
use super::CheckError;
use crate::cli::{EhEncoding, Expect};

/// The manifest our build writes next to the bundle (see [`crate::bundle::Manifest`]).
pub use crate::bundle::MANIFEST as MANIFEST_FILE;
/// Our recovery runtime; the entry must import it before the glue, because it observes the
/// glue's instantiation of the module to find wasm-bindgen's terminated flag.
pub use crate::bundle::RUNTIME as RUNTIME_FILE;
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
    /// `None` when the file is missing or unreadable.
    pub entry: Option<ModuleSyntax>,
    pub glue: Option<ModuleSyntax>,
    /// The bundle was written by cargo-worker-build, so it must contain our recovery runtime.
    pub ours: bool,
    pub runtime_present: bool,
    /// Files the manifest lists that are not in the directory.
    pub missing_files: Vec<String>,
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
        let mut glue_name = named(|m| &m.glue, "glue.js");
        if manifest.as_ref().and_then(|m| m.glue.as_ref()).is_none()
            && !dir.join(&glue_name).is_file()
        {
            glue_name = entry_name.clone();
        }
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
        Ok(BundleInfo {
            dir: dir.to_path_buf(),
            entry: read_js(&entry_name),
            glue: read_js(&glue_name),
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
