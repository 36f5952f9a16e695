//! wasm-bindgen: the CLI must be exactly the version in Cargo.lock (its schema check refuses
//! anything else). Found from `WASM_BINDGEN` (or worker-build's `WASM_BINDGEN_BIN`), the tool
//! cache or PATH; otherwise installed into
//! the tool cache from crates.io.

use std::path::{Path, PathBuf};

use anyhow::Result;
use semver::Version;

use crate::errors::{problem, Code, Problem};
use crate::process::{which, Cmd};
use crate::term::Shell;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    Env,
    Cache,
    Path,
    Installed,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Located {
    pub path: PathBuf,
    pub version: String,
    pub origin: Origin,
}

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

/// The `wasm-bindgen` binary of exactly `version`, installing it when allowed.
pub fn locate_or_install(
    version: &Version,
    offline: bool,
    cache: Option<&crate::cache::Session>,
    shell: &Shell,
) -> Result<Located> {
    let wanted = version.to_string();
    if let Some(found) = crate::compat::WASM_BINDGEN.from_env(shell) {
        let (path, var) = (found.path, found.var);
        let found = version_of(&path);
        if found.as_ref() == Some(version) {
            return Ok(Located {
                path,
                version: wanted,
                origin: Origin::Env,
            });
        }
        return Err(problem(
            Code::BindgenWrongVersion,
            format!(
                "{var}={} is {}, but Cargo.lock resolves wasm-bindgen {wanted} and the CLI must match exactly",
                path.display(),
                found.map_or("not a runnable wasm-bindgen".to_string(), |v| format!("wasm-bindgen {v}"))
            ),
            format!("point {var} at wasm-bindgen {wanted}, or unset it to let the tool install it"),
        ));
    }
    let cached = cached_binary(version);
    if cached.is_file() {
        return Ok(Located {
            path: cached,
            version: wanted,
            origin: Origin::Cache,
        });
    }
    if let Some(path) = which(&exe("wasm-bindgen")) {
        match version_of(&path) {
            Some(v) if v == *version => {
                return Ok(Located {
                    path,
                    version: wanted,
                    origin: Origin::Path,
                })
            }
            other => shell.verbose(
                "Ignoring",
                format!(
                    "{} ({}), not {wanted}",
                    path.display(),
                    other.map_or("unknown version".to_string(), |v| format!(
                        "wasm-bindgen {v}"
                    ))
                ),
            ),
        }
    }
    let root = crate::toolcache::dir("wasm-bindgen", &wanted);
    if offline {
        return Err(problem(
            Code::OfflineMissingTool,
            format!("wasm-bindgen {wanted} is not installed, and --offline forbids installing it"),
            format!(
                "run `{}` while online, or set WASM_BINDGEN to a wasm-bindgen {wanted} binary",
                install_command(version, &root)
            ),
        ));
    }
    let dir = crate::toolcache::install_once("wasm-bindgen", &wanted, |staging| {
        install(version, staging, cache, shell)
    })?;
    Ok(Located {
        path: dir.join("bin").join(exe("wasm-bindgen")),
        version: wanted,
        origin: Origin::Installed,
    })
}

fn install(
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
