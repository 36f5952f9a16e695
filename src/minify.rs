//! Where esbuild comes from, and whether the bundle it writes is minified (release-like
//! profiles) or readable (dev, `--no-opt`, `minify = false`). Every build bundles with esbuild
//! (see [`crate::esbuild`]); minification is one flag of that run.
//!
//! esbuild comes from `ESBUILD`, PATH (exactly the pinned version) or npm's `esbuild` package
//! installed once into the tool cache (its native binary needs no node to run); see
//! [`crate::locate`].

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::Value;

use crate::errors::{problem, Code};

/// The npm `esbuild` release installed when `ESBUILD` is not set. It parses the source-phase
/// imports (`import source wasmModule from "./index_bg.wasm"`) that the glue uses.
pub const ESBUILD_VERSION: &str = "0.28.2";

/// What the plan says about minification.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MinifyPlan {
    pub enabled: bool,
    /// Where the decision came from (`--no-opt`, a Cargo.toml key, the profile default).
    pub source: String,
    /// The user asked for it explicitly (`minify = true`).
    pub required: bool,
}

/// Decide minification for a profile: `--no-opt` turns it off, then worker-build's `NO_MINIFY`
/// (set in the environment, like a flag for one run), then
/// `[package.metadata.worker-build.profile.<p>] minify = true|false`, then on for release-like
/// profiles and off for dev.
pub fn plan(no_opt: bool, no_minify: bool, profile: &str, metadata: &Value) -> Result<MinifyPlan> {
    if no_opt || no_minify {
        return Ok(MinifyPlan {
            enabled: false,
            source: if no_opt {
                "--no-opt"
            } else {
                crate::compat::NO_MINIFY
            }
            .into(),
            required: false,
        });
    }
    let key = format!("package.metadata.worker-build.profile.{profile}.minify");
    let setting = metadata
        .get("worker-build")
        .and_then(|t| t.get("profile"))
        .and_then(|p| p.get(profile))
        .and_then(|p| p.get("minify"));
    match setting {
        Some(Value::Bool(enabled)) => Ok(MinifyPlan {
            enabled: *enabled,
            source: key,
            required: *enabled,
        }),
        Some(other) => Err(problem(
            Code::InvalidOptConfig,
            format!("`{key}` in Cargo.toml must be true or false, not `{other}`"),
            format!("write `minify = false` (or `true`) under [package.metadata.worker-build.profile.{profile}]"),
        )),
        None => Ok(MinifyPlan {
            enabled: profile != "dev",
            source: format!("{profile} profile default"),
            required: false,
        }),
    }
}

/// A runnable esbuild and where it came from.
#[derive(Debug, Clone)]
pub struct Esbuild {
    pub program: PathBuf,
    pub origin: String,
}

/// The esbuild launcher npm links into `node_modules/.bin` (the native binary when the platform
/// package installed, a node script otherwise).
pub fn binary(dir: &Path) -> PathBuf {
    dir.join("node_modules").join(".bin").join("esbuild")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn release_minifies_and_dev_does_not() {
        let p = plan(false, false, "release", &Value::Null).unwrap();
        assert!(p.enabled && !p.required);
        assert!(!plan(false, false, "dev", &Value::Null).unwrap().enabled);
        assert!(!plan(true, false, "release", &Value::Null).unwrap().enabled);
    }

    #[test]
    fn cargo_toml_key_decides_and_no_opt_wins() {
        let off = json!({"worker-build": {"profile": {"release": {"minify": false}}}});
        let p = plan(false, false, "release", &off).unwrap();
        assert!(!p.enabled);
        assert_eq!(
            p.source,
            "package.metadata.worker-build.profile.release.minify"
        );
        let on = json!({"worker-build": {"profile": {"dev": {"minify": true}}}});
        let p = plan(false, false, "dev", &on).unwrap();
        assert!(p.enabled && p.required);
        assert!(!plan(true, false, "dev", &on).unwrap().enabled);
    }

    #[test]
    fn no_minify_from_the_environment_beats_cargo_toml() {
        let on = json!({"worker-build": {"profile": {"release": {"minify": true}}}});
        let p = plan(false, true, "release", &on).unwrap();
        assert!(!p.enabled && !p.required);
        assert_eq!(p.source, "NO_MINIFY");
        assert_eq!(plan(true, true, "release", &on).unwrap().source, "--no-opt");
    }

    #[test]
    fn an_invalid_setting_names_the_key() {
        let bad = json!({"worker-build": {"profile": {"release": {"minify": "yes"}}}});
        let err = plan(false, false, "release", &bad).unwrap_err().to_string();
        assert!(
            err.contains("package.metadata.worker-build.profile.release.minify"),
            "{err}"
        );
        assert!(err.contains("minify = false"), "{err}");
    }
}
