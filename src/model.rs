//! The vocabulary every layer shares: what a build expects of a module and which rules decide
//! it. Plain values with no behaviour beyond naming themselves, so the planner, the checker and
//! the terminal can use them without depending on each other or on the argument parser.

use clap::ValueEnum;
use semver::Version;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EhEncoding {
    /// The standard encoding (try_table, throw_ref); rustc's default since 2026-05
    Exnref,
    /// The legacy encoding (try, catch, rethrow, delegate); for runtimes without exnref
    Legacy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum MessageFormat {
    #[default]
    Human,
    Json,
}

/// How the recovery runtime writes the record of each panic and abort it handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line of text, then the Wasm frames
    #[default]
    Text,
    /// One JSON object per line (for Workers Logs and Logpush)
    Json,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// The module must unwind panics (built with --unwind)
    Unwind,
    /// The module is a panic=abort build
    Abort,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetRuntime {
    /// Cloudflare workerd / Workers (legacy EH and exnref)
    #[default]
    Workerd,
    /// Node.js 20 (legacy EH only)
    Node20,
    /// Node.js 22 (legacy EH and exnref)
    Node22,
    /// Node.js 24 and later (legacy EH and exnref)
    Node24,
}

impl EhEncoding {
    /// The name on the command line, in the manifest and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            EhEncoding::Exnref => "exnref",
            EhEncoding::Legacy => "legacy",
        }
    }
}

impl Expect {
    /// The name on the command line, in the manifest and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Unwind => "unwind",
            Expect::Abort => "abort",
        }
    }
}

impl TargetRuntime {
    /// The name on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetRuntime::Workerd => "workerd",
            TargetRuntime::Node20 => "node20",
            TargetRuntime::Node22 => "node22",
            TargetRuntime::Node24 => "node24",
        }
    }
}

/// wasm-bindgen before this leaks shadow stack on every caught panic (fixed in 0.2.127).
pub const MIN_BINDGEN_UNWIND: Version = Version::new(0, 2, 127);
/// The recovery runtime needs the abort handler and `__wbg_reset_state` (0.2.125), which also
/// brought `--force-enable-abort-handler` for panic=abort builds.
pub const MIN_BINDGEN: Version = Version::new(0, 2, 125);
/// The wasm-bindgen that fix lines and new projects pin (the release the tool is tested with).
pub const RECOMMENDED_BINDGEN: Version = Version::new(0, 2, 130);

/// The release a version string names, read leniently: `0.2.130`, `0.2.130 (abc1234)` and
/// `0.2.130-alpha.1` all name 0.2.130 (a pre-release counts as its release). `None` when the
/// first word is not a semver version.
pub fn release_of(text: &str) -> Option<Version> {
    let v = Version::parse(text.split_whitespace().next()?).ok()?;
    Some(Version::new(v.major, v.minor, v.patch))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One name per value: what `as_str` prints is what clap accepts and serde writes.
    fn names_agree<T: ValueEnum + serde::Serialize>(as_str: impl Fn(&T) -> &'static str) {
        for value in T::value_variants() {
            let name = as_str(value);
            let clap = value.to_possible_value().unwrap();
            assert_eq!(clap.get_name(), name);
            assert_eq!(serde_json::to_value(value).unwrap(), name);
        }
    }

    #[test]
    fn names_match_the_command_line_and_json() {
        names_agree::<EhEncoding>(|v| v.as_str());
        names_agree::<Expect>(|v| v.as_str());
        names_agree::<LogFormat>(|v| v.as_str());
        names_agree::<TargetRuntime>(|v| v.as_str());
    }

    #[test]
    fn releases_are_read_with_suffixes() {
        assert_eq!(release_of("0.2.130"), Some(Version::new(0, 2, 130)));
        assert_eq!(
            release_of("0.2.127 (a1b2c3d)"),
            Some(Version::new(0, 2, 127))
        );
        assert_eq!(release_of("0.2.126-alpha.1"), Some(Version::new(0, 2, 126)));
        assert_eq!(release_of("garbage"), None);
        assert_eq!(release_of(""), None);
        assert!(release_of("0.2.126").unwrap() < MIN_BINDGEN_UNWIND);
        assert!(MIN_BINDGEN < MIN_BINDGEN_UNWIND && MIN_BINDGEN_UNWIND < RECOMMENDED_BINDGEN);
    }

    #[test]
    fn every_template_pins_the_recommended_wasm_bindgen() {
        // The templates stay plain cargo-generate templates, so the pin is written out in each
        // one; this keeps them on the version the tool recommends in its errors.
        let templates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut seen = 0;
        for entry in std::fs::read_dir(&templates).unwrap() {
            let manifest = entry.unwrap().path().join("Cargo.toml.liquid");
            let Ok(text) = std::fs::read_to_string(&manifest) else {
                continue;
            };
            let doc: toml_edit::DocumentMut = text.parse().unwrap();
            assert_eq!(
                doc["dependencies"]["wasm-bindgen"].as_str(),
                Some(format!("={RECOMMENDED_BINDGEN}").as_str()),
                "{}",
                manifest.display()
            );
            seen += 1;
        }
        assert!(seen >= 4, "templates read: {seen}");
    }
}
