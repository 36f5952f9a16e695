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

/// The Cargo.lock the CLI of each supported version is built with, shipped in the tool: the
/// install resolves nothing, so every machine builds the same dependency versions. Each is the
/// crate's own packaged lock, moved only where a version it names cannot be had: 0.2.130's
/// pins webpki-roots 1.0.11, which the registry index does not list here (ureq 3.5.0 asks for
/// `^1.0.10`; this lock has 1.0.10, the only change).
const LOCKS: &[(&str, &str)] = &[(
    "0.2.130",
    include_str!("locks/wasm-bindgen-cli-0.2.130.lock"),
)];

/// The lock the tool ships for `version`, if it supports that version so.
pub fn shipped_lock(version: &Version) -> Option<&'static str> {
    let wanted = version.to_string();
    LOCKS
        .iter()
        .find(|(v, _)| *v == wanted)
        .map(|(_, lock)| *lock)
}

/// Which Cargo.lock an install of `version` uses, as `tools` and the plan say it.
pub fn lock_used(version: &Version) -> String {
    match shipped_lock(version) {
        Some(lock) => {
            use sha2::{Digest, Sha256};
            let sum = format!("{:x}", Sha256::digest(lock.as_bytes()));
            format!(
                "the Cargo.lock cargo-worker-build {} ships, sha256 {}",
                env!("CARGO_PKG_VERSION"),
                &sum[..16]
            )
        }
        None => "the crate's own Cargo.lock".to_string(),
    }
}

/// The file in an installed version's directory that says which lock built it.
pub const LOCK_NOTE: &str = "cargo-worker-build-lock.txt";

/// Install the CLI of `version` into `staging` (the tool cache's directory for it, filled by
/// [`crate::toolcache::install_once`]), always `--locked`: with the lock the tool ships for
/// this version, else with the crate's own. A lock that cannot be built is an error, never a
/// fresh resolution (the CLI rewrites every module, so it is built the same way everywhere).
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
    // Outside any project, so its rust-toolchain.toml and rustflags don't apply.
    let clean = |cmd: Cmd| {
        cmd.env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
    };
    let failed = |e: crate::process::CommandFailed| -> anyhow::Error {
        Problem::new(
            Code::BindgenInstallFailed,
            format!(
                "could not install wasm-bindgen-cli {version} with {}: {e}",
                lock_used(version)
            ),
            format!("fix what cargo reports below, or set WASM_BINDGEN to a wasm-bindgen {version} binary"),
        )
        .with_detail(e.stderr)
        .into()
    };
    let work = staging.join(".source");
    let base = match shipped_lock(version) {
        Some(lock) => {
            let source = fetch_source(version, &work.join("fetch"), &clean).map_err(failed)?;
            // Beside the throwaway package, not in it, and a workspace of its own: cargo must
            // not take any directory above it for the workspace it belongs to.
            let copy = work.join("wasm-bindgen-cli");
            crate::fs::copy_dir_all(&source, &copy)?;
            let manifest = copy.join("Cargo.toml");
            let mut text = crate::fs::read_to_string(&manifest)?;
            if !text.lines().any(|l| l.trim() == "[workspace]") {
                text.push_str("\n[workspace]\n");
                crate::fs::write(&manifest, text)?;
            }
            crate::fs::write(&copy.join("Cargo.lock"), lock)?;
            Cmd::new("cargo")
                .args(["install", "--path"])
                .arg(copy.as_os_str())
                .arg("--root")
                .arg(staging.as_os_str())
        }
        None => install_command(version, staging),
    };
    let base = clean(base.arg("--locked").cwd(staging));
    // Through the compile cache when the build uses one: a second machine sharing it installs
    // the CLI in a fraction of the time.
    let base = match cache {
        Some(session) => session.wrap(base),
        None => base,
    };
    let result = base.read_or_stderr().map_err(failed);
    let _ = std::fs::remove_dir_all(&work);
    result?;
    crate::fs::write(
        &staging.join(LOCK_NOTE),
        format!("{}\n", lock_used(version)),
    )
}

/// The registry's source of wasm-bindgen-cli `version`, downloaded by cargo (so through the
/// user's registry and source replacement) for a throwaway package in `work` that depends on it.
fn fetch_source(
    version: &Version,
    work: &Path,
    clean: &dyn Fn(Cmd) -> Cmd,
) -> std::result::Result<PathBuf, crate::process::CommandFailed> {
    let fail = |what: String| crate::process::CommandFailed {
        command: format!("cargo metadata (in {})", work.display()),
        status: what,
        stderr: String::new(),
    };
    std::fs::create_dir_all(work).map_err(|e| fail(e.to_string()))?;
    let manifest = format!(
        "[package]\nname = \"cwb-fetch-wasm-bindgen-cli\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[lib]\npath = \"lib.rs\"\n\n[dependencies]\nwasm-bindgen-cli = \"={version}\"\n\n[workspace]\n"
    );
    std::fs::write(work.join("Cargo.toml"), manifest)
        .and_then(|()| std::fs::write(work.join("lib.rs"), ""))
        .map_err(|e| fail(e.to_string()))?;
    let out = clean(
        Cmd::new("cargo")
            .args(["metadata", "--format-version", "1"])
            .cwd(work),
    )
    .read_or_stderr()?;
    let meta: serde_json::Value =
        serde_json::from_str(&out).map_err(|e| fail(format!("unreadable output: {e}")))?;
    let wanted = version.to_string();
    meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "wasm-bindgen-cli" && p["version"] == wanted.as_str())
        .and_then(|p| p["manifest_path"].as_str())
        .and_then(|m| Path::new(m).parent().map(Path::to_path_buf))
        .ok_or_else(|| fail(format!("no wasm-bindgen-cli {wanted} in its output")))
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
    fn the_supported_version_has_a_lock_that_builds_it_and_others_use_their_own() {
        let supported = Version::new(0, 2, 130);
        let lock = shipped_lock(&supported).expect("0.2.130 has a shipped lock");
        assert!(lock.starts_with("# This file is automatically @generated by Cargo."));
        assert!(
            lock.contains("[[package]]\nname = \"wasm-bindgen-cli\"\nversion = \"0.2.130\"\n"),
            "the lock is not wasm-bindgen-cli 0.2.130's"
        );
        // The one version moved from the crate's own lock: 1.0.11 is not in the registry here.
        assert!(lock.contains("[[package]]\nname = \"webpki-roots\"\nversion = \"1.0.10\"\n"));
        // Every registry package is pinned by checksum.
        let registry = lock.matches("source = \"registry+").count();
        assert!(registry > 100 && lock.matches("checksum = \"").count() == registry);
        assert!(lock_used(&supported).contains("Cargo.lock cargo-worker-build"));
        assert_eq!(
            shipped_lock(&Version::new(0, 2, 100)),
            None,
            "no lock shipped for 0.2.100"
        );
        assert_eq!(
            lock_used(&Version::new(0, 2, 100)),
            "the crate's own Cargo.lock"
        );
    }

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
