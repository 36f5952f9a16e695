//! wasm-bindgen: the CLI must be exactly the version in Cargo.lock (its schema check refuses
//! anything else). [`crate::locate`] finds it (`WASM_BINDGEN` or worker-build's
//! `WASM_BINDGEN_BIN`, PATH, the tool cache); this module installs it into the tool cache from
//! the crates registry when it is nowhere, and runs it.

use std::path::{Path, PathBuf};

use anyhow::Result;
use semver::Version;

use crate::errors::{Code, Problem};
use crate::process::Cmd;
use crate::term::Shell;

/// Where the cached CLI of `version` lives.
pub fn cached_binary(version: &Version) -> PathBuf {
    crate::toolcache::dir("wasm-bindgen", &version.to_string())
        .join("bin")
        .join(exe("wasm-bindgen"))
}

fn exe(name: &str) -> String {
    format!("{name}{}", std::env::consts::EXE_SUFFIX)
}

/// The command that installs the CLI of `version` where the tool looks for it.
pub fn install_command(version: &Version, root: &Path) -> Cmd {
    Cmd::new("cargo")
        .args(["install", "wasm-bindgen-cli", "--version"])
        .arg(format!("={version}"))
        .arg("--root")
        .arg(root.as_os_str())
}

/// Install the CLI of `version` into `staging` (the tool cache's directory for it, filled by
/// [`crate::toolcache::install_once`]).
pub fn install(
    version: &Version,
    staging: &Path,
    cache: Option<&crate::cache::Session>,
    shell: &Shell,
) -> Result<()> {
    let _spinner = shell.spinner(
        "Installing",
        format!("wasm-bindgen-cli {version} (once per version; about two minutes)"),
    );
    // Run outside any project so its rust-toolchain.toml and rustflags don't apply.
    let base = install_command(version, staging)
        .cwd(staging)
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR");
    // Through the compile cache when the build uses one: a second machine sharing it installs
    // the CLI in a fraction of the time.
    let base = match cache {
        Some(session) => session.wrap(base),
        None => base,
    };
    if base.clone().arg("--locked").read().is_ok() {
        return Ok(());
    }
    // Its lock file sometimes names a version the registry no longer serves.
    shell.warn(format!("`cargo install wasm-bindgen-cli@{version} --locked` failed; retrying without --locked (dependencies resolved afresh)"));
    base.read_or_stderr().map(drop).map_err(|e| {
        Problem::new(
            Code::BindgenInstallFailed,
            format!("could not install wasm-bindgen-cli {version}: {e}"),
            format!("fix what cargo reports below, or set WASM_BINDGEN to a wasm-bindgen {version} binary"),
        )
        .with_detail(e.stderr)
        .into()
    })
}

/// `wasm-bindgen --version` prints `wasm-bindgen 0.2.130` (maybe followed by a hash).
pub fn version_of(binary: &Path) -> Option<Version> {
    let out = Cmd::new(binary).arg("--version").read().ok()?;
    parse_version(&out)
}

fn parse_version(output: &str) -> Option<Version> {
    let mut words = output.split_whitespace();
    (words.next()? == "wasm-bindgen").then_some(())?;
    Version::parse(words.next()?).ok()
}

/// Run wasm-bindgen on `input` (a copy of the module cargo built at `built`, named in errors),
/// writing into `out_dir`.
pub fn run(
    binary: &Path,
    args: &[String],
    input: &Path,
    built: &Path,
    out_dir: &Path,
) -> Result<()> {
    let cmd = Cmd::new(binary)
        .args(args)
        .arg("--out-dir")
        .arg(out_dir.as_os_str())
        .arg(input.as_os_str());
    cmd.read_or_stderr().map(drop).map_err(|e| {
        Problem::new(
            Code::BindgenFailed,
            format!("wasm-bindgen failed on {} ({})", built.display(), e.status),
            "if it reports a schema or version mismatch, run `cargo update -p wasm-bindgen` and build again; otherwise report its output (below)",
        )
        .with_detail(format!("command: {}\n{}", e.command, e.stderr))
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_output_is_parsed() {
        assert_eq!(
            parse_version("wasm-bindgen 0.2.130\n"),
            Some(Version::new(0, 2, 130))
        );
        assert_eq!(
            parse_version("wasm-bindgen 0.2.100 (a1b2c3)"),
            Some(Version::new(0, 2, 100))
        );
        assert_eq!(parse_version("wasm-bindgen unknown"), None);
        assert_eq!(parse_version("wasm-opt version 116"), None);
        assert_eq!(parse_version(""), None);
    }
}
