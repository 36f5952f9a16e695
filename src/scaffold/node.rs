//! Which Node a project's npm tools need, and whether the `node` on PATH is new enough.
//!
//! A generated project runs wrangler (`npm run dev`, `npm run deploy`) and vitest
//! (`npm test`) from its own `package.json`. The pinned wrangler refuses an older Node, and an
//! unpinned `npx wrangler` on an old Node quietly fetches an old wrangler whose workerd rejects
//! the template's compatibility date. `new` and `tools` therefore check the Node on PATH against
//! the range the pinned wrangler declares in its `engines`, and say in one line what to run.
//!
//! The range is read, in order of preference, from the project's installed wrangler
//! (`node_modules/wrangler/package.json`) or from the templates' own `package.json`, which pins
//! wrangler and copies its `engines` (a test checks the copy against the real package).

use std::path::{Path, PathBuf};

use semver::{Version, VersionReq};

use super::templates;

/// A newer Node the advice names; `npx -p node@MAJOR` runs npm and its scripts on it.
pub const SUGGESTED_NODE_MAJOR: u32 = 24;

/// The Node range a project's wrangler needs, and where it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The wrangler version whose `engines` this is.
    pub wrangler: String,
    /// npm's `engines.node` range, e.g. `>=22.12.0`.
    pub range: String,
    /// Where the range was read (a path, or "the templates").
    pub source: String,
}

/// The `node` on PATH, checked against a [`Requirement`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeCheck {
    /// New enough.
    Fits { version: Version, path: PathBuf },
    /// Older than the range allows.
    TooOld { version: Version, path: PathBuf },
    /// No `node` on PATH.
    Missing,
    /// `node --version` printed something that is not a version, or the range cannot be read.
    Unknown { why: String },
}

/// The requirement for a project in `dir` (or for a project generated from the templates when
/// `dir` is `None` or has no wrangler installed yet).
pub fn requirement(dir: Option<&Path>) -> Requirement {
    if let Some(installed) = dir.and_then(installed_wrangler) {
        return installed;
    }
    template_requirement()
}

/// What the templates pin: wrangler's version from their `devDependencies`, and the range of its
/// `engines.node` copied into their own `engines`.
pub fn template_requirement() -> Requirement {
    let text = templates::find(templates::DEFAULT_TEMPLATE)
        .ok()
        .and_then(|t| t.files.iter().find(|f| f.path == "package.json"))
        .map(|f| f.contents)
        .unwrap_or_default();
    // The template is embedded at compile time and a unit test parses it, so the fallbacks below
    // are never reached in a released binary.
    let json: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    Requirement {
        wrangler: json["devDependencies"]["wrangler"]
            .as_str()
            .unwrap_or("?")
            .to_string(),
        range: json["engines"]["node"].as_str().unwrap_or("*").to_string(),
        source: "the templates' package.json".to_string(),
    }
}

/// wrangler as npm installed it in `dir/node_modules`, with its own `engines.node`.
fn installed_wrangler(dir: &Path) -> Option<Requirement> {
    let manifest = dir.join("node_modules/wrangler/package.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).ok()?).ok()?;
    Some(Requirement {
        wrangler: json["version"].as_str()?.to_string(),
        range: json["engines"]["node"].as_str()?.to_string(),
        source: manifest.display().to_string(),
    })
}

/// Runs `node --version` from PATH and compares it with `req`.
pub fn check(req: &Requirement) -> NodeCheck {
    let Some(path) = crate::process::which("node") else {
        return NodeCheck::Missing;
    };
    let printed = match crate::process::Cmd::new(&path).arg("--version").read() {
        Ok(out) => out,
        Err(err) => {
            return NodeCheck::Unknown {
                why: format!("{err:#}"),
            }
        }
    };
    let Some(version) = parse_node_version(&printed) else {
        return NodeCheck::Unknown {
            why: format!(
                "`{} --version` printed `{}`",
                path.display(),
                printed.trim()
            ),
        };
    };
    match satisfies(&version, &req.range) {
        Some(true) => NodeCheck::Fits { version, path },
        Some(false) => NodeCheck::TooOld { version, path },
        None => NodeCheck::Unknown {
            why: format!("cannot read the range `{}` from {}", req.range, req.source),
        },
    }
}

/// `v20.20.2` -> 20.20.2.
pub fn parse_node_version(printed: &str) -> Option<Version> {
    Version::parse(printed.trim().trim_start_matches('v')).ok()
}

/// Whether `version` is in npm's `range`: alternatives joined by `||`, each a comma- or
/// space-separated list of comparators (`>=22.12.0`, `^20.0.0 || >=22`). `None` when a part is
/// not a range semver understands.
pub fn satisfies(version: &Version, range: &str) -> Option<bool> {
    let mut any = false;
    for alternative in range.split("||") {
        let comparators: Vec<&str> = alternative
            .split([' ', ','])
            .filter(|c| !c.is_empty())
            .collect();
        let req = if comparators.is_empty() {
            VersionReq::STAR
        } else {
            VersionReq::parse(&comparators.join(", ")).ok()?
        };
        any |= req.matches(version);
    }
    Some(any)
}

/// One line saying what is wrong with the Node on PATH and what to run instead, or `None` when it
/// is new enough (or cannot be judged: that is no reason to stop anyone).
pub fn advice(req: &Requirement, check: &NodeCheck) -> Option<String> {
    let fix = format!(
        "install Node {} or newer (e.g. `nvm install {major}`), or run npm on Node {major} without installing it: \
         `npx -y -p node@{major} -- npm install`, then `npx -y -p node@{major} -- npm run dev`",
        minimum(&req.range),
        major = SUGGESTED_NODE_MAJOR,
    );
    match check {
        NodeCheck::Fits { .. } | NodeCheck::Unknown { .. } => None,
        NodeCheck::TooOld { version, path } => Some(format!(
            "Node {version} ({}) is too old for wrangler {}, which needs Node {}: {fix}",
            path.display(),
            req.wrangler,
            req.range
        )),
        NodeCheck::Missing => Some(format!(
            "no `node` on PATH: wrangler {} needs Node {}: install Node {} or newer (e.g. `nvm install {major}`)",
            req.wrangler,
            req.range,
            minimum(&req.range),
            major = SUGGESTED_NODE_MAJOR,
        )),
    }
}

/// `>=22.12.0` -> `22.12`: the version to name in advice; the range itself otherwise.
fn minimum(range: &str) -> String {
    let Some(rest) = range.trim().strip_prefix(">=") else {
        return range.trim().to_string();
    };
    match Version::parse(rest.trim()) {
        Ok(v) if v.patch == 0 => format!("{}.{}", v.major, v.minor),
        Ok(v) => v.to_string(),
        Err(_) => range.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_pin_wrangler_and_its_node_range() {
        let req = template_requirement();
        assert!(Version::parse(&req.wrangler).is_ok(), "{req:?}");
        assert!(
            satisfies(&Version::new(99, 0, 0), &req.range) == Some(true),
            "{req:?}"
        );
    }

    #[test]
    fn reads_node_versions_and_npm_ranges() {
        let v20 = parse_node_version("v20.20.2\n").unwrap();
        let v22_11 = parse_node_version("v22.11.0").unwrap();
        let v22_12 = parse_node_version("v22.12.0").unwrap();
        assert_eq!(satisfies(&v20, ">=22.12.0"), Some(false));
        assert_eq!(satisfies(&v22_11, ">=22.12.0"), Some(false));
        assert_eq!(satisfies(&v22_12, ">=22.12.0"), Some(true));
        assert_eq!(
            satisfies(&v20, "^20.0.0 || ^22.0.0 || >=24.0.0"),
            Some(true)
        );
        assert_eq!(satisfies(&v22_11, ">=20 <22.12"), Some(true));
        assert_eq!(satisfies(&v20, "not a range"), None);
        assert_eq!(parse_node_version("node"), None);
    }

    #[test]
    fn advice_is_one_line_naming_the_versions_and_the_command() {
        let req = Requirement {
            wrangler: "4.164.0".into(),
            range: ">=22.12.0".into(),
            source: "t".into(),
        };
        let old = NodeCheck::TooOld {
            version: Version::new(20, 20, 2),
            path: "/usr/bin/node".into(),
        };
        let line = advice(&req, &old).unwrap();
        assert!(!line.contains('\n'), "{line}");
        for part in [
            "Node 20.20.2",
            "wrangler 4.164.0",
            ">=22.12.0",
            "Node 22.12 or newer",
            "`npx -y -p node@24 -- npm install`",
        ] {
            assert!(line.contains(part), "{part} missing from: {line}");
        }
        assert!(advice(&req, &NodeCheck::Missing)
            .unwrap()
            .contains("no `node` on PATH"));
        let fits = NodeCheck::Fits {
            version: Version::new(24, 0, 0),
            path: "/n".into(),
        };
        assert_eq!(advice(&req, &fits), None);
    }
}
