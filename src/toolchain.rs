//! Which Rust toolchain builds the crate, and making sure it has what the build needs.
//!
//! `--unwind` needs a nightly (for `-Zbuild-std`) with `rust-src` (the standard library's source,
//! rebuilt with `-Cpanic=unwind`). Every build needs the `wasm32-unknown-unknown` target.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::errors::{problem, Code};
use crate::process::{which, Cmd};
use crate::term::Shell;

/// The nightly `--unwind` uses unless told otherwise. Verified on this date: it builds
/// wasm-bindgen crates with build-std unwind (exnref), and wasm-bindgen 0.2.130 and workerd
/// take the result. Moving it is a deliberate change with its own tests.
pub const DEFAULT_NIGHTLY: &str = "nightly-2026-10-30";

/// The only target a Worker module is built for.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Source {
    /// `--toolchain NAME`
    Flag,
    /// `cargo +NAME worker-build`, `RUSTUP_TOOLCHAIN` or a `rustup override`
    Rustup,
    /// `rust-toolchain.toml` (or `rust-toolchain`) next to the package or above it
    File { path: PathBuf },
    /// Nothing said: the pinned nightly with `--unwind`, stable without
    Default,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Toolchain {
    pub name: String,
    pub source: Source,
}

impl Toolchain {
    /// Whether the toolchain's name says nightly. Custom (linked) toolchains are trusted.
    pub fn looks_nightly(&self) -> bool {
        let name = self.name.as_str();
        name.starts_with("nightly")
            || !(name.starts_with("stable")
                || name.starts_with("beta")
                || name.starts_with(|c: char| c.is_ascii_digit()))
    }
}

/// Pick the toolchain: `--toolchain`, then an explicit rustup choice (`cargo +X`, `RUSTUP_TOOLCHAIN`,
/// an override), then the project's toolchain file, then the default for the mode.
pub fn select(
    flag: Option<&str>,
    unwind: bool,
    package_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Toolchain> {
    let chosen = if let Some(name) = flag {
        Toolchain {
            name: name.to_string(),
            source: Source::Flag,
        }
    } else if let Some(name) = explicit_rustup_choice(env) {
        Toolchain {
            name,
            source: Source::Rustup,
        }
    } else if let Some((path, name)) = find_toolchain_file(package_dir)? {
        Toolchain {
            name,
            source: Source::File { path },
        }
    } else {
        let name = if unwind { DEFAULT_NIGHTLY } else { "stable" };
        Toolchain {
            name: name.to_string(),
            source: Source::Default,
        }
    };
    if unwind && !chosen.looks_nightly() {
        let fix = match &chosen.source {
            Source::File { path } => format!("set `channel = \"{DEFAULT_NIGHTLY}\"` in {}, or pass `--toolchain {DEFAULT_NIGHTLY}`", path.display()),
            Source::Rustup => format!("run `cargo +{DEFAULT_NIGHTLY} worker-build --unwind`, or drop the `+toolchain`/RUSTUP_TOOLCHAIN"),
            _ => format!("pass `--toolchain {DEFAULT_NIGHTLY}`"),
        };
        return Err(problem(
            Code::ToolchainNotNightly,
            format!(
                "--unwind needs a nightly toolchain (for -Zbuild-std), but `{}` was chosen ({})",
                chosen.name,
                describe_source(&chosen.source)
            ),
            fix,
        ));
    }
    Ok(chosen)
}

fn describe_source(source: &Source) -> String {
    match source {
        Source::Flag => "from --toolchain".into(),
        Source::Rustup => "from cargo +toolchain or RUSTUP_TOOLCHAIN".into(),
        Source::File { path } => format!("from {}", path.display()),
        Source::Default => "the default".into(),
    }
}

/// rustup tells a subcommand why it picked its toolchain. Only an explicit choice by the user
/// counts; a directory's toolchain file is looked up from the package, not the current directory.
fn explicit_rustup_choice(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let name = env("RUSTUP_TOOLCHAIN").filter(|n| !n.is_empty())?;
    match env("RUSTUP_TOOLCHAIN_SOURCE").as_deref() {
        Some("cli" | "env" | "override") | None => Some(name),
        Some(_) => None,
    }
}

/// The nearest `rust-toolchain.toml` or `rust-toolchain` at or above `dir`, with its channel.
pub fn find_toolchain_file(dir: &Path) -> Result<Option<(PathBuf, String)>> {
    for ancestor in dir.ancestors() {
        for file in ["rust-toolchain.toml", "rust-toolchain"] {
            let path = ancestor.join(file);
            if let Ok(text) = std::fs::read_to_string(&path) {
                return Ok(Some((path.clone(), parse_toolchain_file(&text, &path)?)));
            }
        }
    }
    Ok(None)
}

fn parse_toolchain_file(text: &str, path: &Path) -> Result<String> {
    let trimmed = text.trim();
    // The legacy form is a bare channel name on one line.
    if !trimmed.contains('\n')
        && !trimmed.contains('=')
        && !trimmed.starts_with('[')
        && !trimmed.is_empty()
    {
        return Ok(trimmed.to_string());
    }
    let doc: toml_edit::DocumentMut = trimmed
        .parse()
        .map_err(|e| anyhow::anyhow!("{} is not valid TOML: {e}", path.display()))?;
    doc.get("toolchain")
        .and_then(|t| t.get("channel").or_else(|| t.get("path")))
        .and_then(|c| c.as_str())
        .map(str::to_string)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{} has no `[toolchain] channel`; add `channel = \"{DEFAULT_NIGHTLY}\"`",
                path.display()
            )
        })
}

/// What the toolchain must contain for this build.
#[derive(Debug, Clone, Copy)]
pub struct Needs {
    pub rust_src: bool,
}

/// The command that installs what is missing, as the user would run it.
pub fn install_command(toolchain: &str, needs: Needs) -> Cmd {
    let mut cmd =
        Cmd::new("rustup").args(["toolchain", "install", toolchain, "--profile", "minimal"]);
    if needs.rust_src {
        cmd = cmd.args(["--component", "rust-src"]);
    }
    cmd.args(["--target", WASM_TARGET, "--no-self-update"])
}

/// Make sure the toolchain is installed with the wasm target (and rust-src when needed),
/// installing what is missing with rustup unless offline. Returns the toolchain's sysroot.
pub fn ensure(
    toolchain: &Toolchain,
    needs: Needs,
    offline: bool,
    shell: &Shell,
) -> Result<PathBuf> {
    let install = install_command(&toolchain.name, needs);
    let Some(rustup) = which("rustup") else {
        return Err(problem(
            Code::NoRustup,
            format!(
                "rustup was not found on PATH, and it is needed to use the `{}` toolchain",
                toolchain.name
            ),
            format!("install rustup, then run `{install}`"),
        ));
    };
    if let Some(sysroot) = sysroot_of(&rustup, &toolchain.name) {
        let missing = missing_parts(&sysroot, needs);
        if missing.is_empty() {
            return Ok(sysroot);
        }
    }
    if offline {
        return Err(problem(
            Code::OfflineMissingTool,
            format!(
                "toolchain `{}` (with {}) is not installed, and --offline forbids installing it",
                toolchain.name,
                describe_needs(needs)
            ),
            format!("run `{install}` while online"),
        ));
    }
    let _spinner = shell.spinner(
        "Installing",
        format!(
            "toolchain {} with {}",
            toolchain.name,
            describe_needs(needs)
        ),
    );
    // `toolchain install` also adds missing components and targets to an installed toolchain.
    install
        .clone()
        .env("RUSTUP_AUTO_INSTALL", "1")
        .read_or_stderr()
        .map_err(|e| {
            anyhow::Error::from(
                crate::errors::Problem::new(
                    Code::ToolchainInstallFailed,
                    format!("could not install toolchain `{}`: {e}", toolchain.name),
                    format!("run `{install}` and fix what it reports"),
                )
                .with_detail(e.stderr),
            )
        })?;
    sysroot_of(&rustup, &toolchain.name)
        .filter(|s| missing_parts(s, needs).is_empty())
        .ok_or_else(|| {
            problem(
                Code::ToolchainInstallFailed,
                format!(
                    "toolchain `{}` is still incomplete after installing",
                    toolchain.name
                ),
                format!("run `{install}`"),
            )
        })
}

fn describe_needs(needs: Needs) -> String {
    if needs.rust_src {
        format!("rust-src and the {WASM_TARGET} target")
    } else {
        format!("the {WASM_TARGET} target")
    }
}

/// The sysroot of an installed toolchain, or `None`.
pub fn installed_sysroot(name: &str) -> Option<PathBuf> {
    sysroot_of(&which("rustup")?, name)
}

/// The toolchain's sysroot: found on disk when rustup's layout is the usual one (no process),
/// otherwise asked of rustup. `None` when the toolchain is not installed.
fn sysroot_of(rustup: &Path, name: &str) -> Option<PathBuf> {
    if let Some(dir) = rustup_home().map(|h| h.join("toolchains")) {
        let exact = dir.join(name);
        if exact.join("bin").is_dir() {
            return Some(exact);
        }
        let with_host = dir.join(format!("{name}-{}", host_triple()));
        if with_host.join("bin").is_dir() {
            return Some(with_host);
        }
    }
    let out = Cmd::new(rustup)
        .args(["run", name, "rustc", "--print", "sysroot"])
        .env("RUSTUP_AUTO_INSTALL", "0")
        .read()
        .ok()?;
    Some(PathBuf::from(out.trim()))
}

fn missing_parts(sysroot: &Path, needs: Needs) -> Vec<&'static str> {
    let mut missing = Vec::new();
    if needs.rust_src && !sysroot.join("lib/rustlib/src/rust/library/std").is_dir() {
        missing.push("rust-src");
    }
    if !sysroot.join("lib/rustlib").join(WASM_TARGET).is_dir() {
        missing.push(WASM_TARGET);
    }
    missing
}

fn rustup_home() -> Option<PathBuf> {
    std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".rustup")))
}

/// The triple rustup appends to channel names on this machine: the one this tool was built
/// for (build.rs). A tool built for another triple than rustup's host only misses the shortcut
/// on disk and asks rustup.
fn host_triple() -> &'static str {
    env!("CARGO_WORKER_BUILD_HOST")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_follow_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let unwind = select(None, true, dir.path(), &no_env).unwrap();
        assert_eq!(
            unwind,
            Toolchain {
                name: DEFAULT_NIGHTLY.into(),
                source: Source::Default
            }
        );
        let abort = select(None, false, dir.path(), &no_env).unwrap();
        assert_eq!(abort.name, "stable");
    }

    #[test]
    fn flag_beats_rustup_and_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("rust-toolchain.toml"),
            "[toolchain]\nchannel = \"nightly-2026-01-01\"\n",
        )
        .unwrap();
        let env = |k: &str| (k == "RUSTUP_TOOLCHAIN").then(|| "nightly-2026-02-02".to_string());
        let tc = select(Some("nightly-2026-03-03"), true, dir.path(), &env).unwrap();
        assert_eq!(tc.name, "nightly-2026-03-03");
        let tc = select(None, true, dir.path(), &env).unwrap();
        assert_eq!(tc.name, "nightly-2026-02-02");
    }

    #[test]
    fn rustup_default_does_not_count_as_a_choice() {
        let dir = tempfile::tempdir().unwrap();
        let env = |k: &str| match k {
            "RUSTUP_TOOLCHAIN" => Some("stable-x86_64-unknown-linux-gnu".to_string()),
            "RUSTUP_TOOLCHAIN_SOURCE" => Some("default".to_string()),
            _ => None,
        };
        assert_eq!(
            select(None, true, dir.path(), &env).unwrap().name,
            DEFAULT_NIGHTLY
        );
    }

    #[test]
    fn toolchain_file_is_found_above_the_package() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("rust-toolchain.toml"),
            "[toolchain]\nchannel = \"nightly-2026-09-01\"\ncomponents = [\"rust-src\"]\n",
        )
        .unwrap();
        let member = dir.path().join("crates/worker");
        std::fs::create_dir_all(&member).unwrap();
        let tc = select(None, true, &member, &no_env).unwrap();
        assert_eq!(tc.name, "nightly-2026-09-01");
        assert_eq!(
            tc.source,
            Source::File {
                path: dir.path().join("rust-toolchain.toml")
            }
        );
    }

    #[test]
    fn legacy_toolchain_file_is_a_bare_channel() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rust-toolchain"), "nightly-2026-08-08\n").unwrap();
        assert_eq!(
            select(None, true, dir.path(), &no_env).unwrap().name,
            "nightly-2026-08-08"
        );
    }

    #[test]
    fn stable_pinned_by_file_is_refused_for_unwind_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("rust-toolchain.toml"),
            "[toolchain]\nchannel = \"1.95.0\"\n",
        )
        .unwrap();
        let err = select(None, true, dir.path(), &no_env).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("needs a nightly"), "{msg}");
        assert!(msg.contains("rust-toolchain.toml"), "{msg}");
        assert!(
            msg.contains(&format!("channel = \"{DEFAULT_NIGHTLY}\"")),
            "{msg}"
        );
        // Without --unwind a stable pin is fine.
        assert_eq!(
            select(None, false, dir.path(), &no_env).unwrap().name,
            "1.95.0"
        );
    }

    #[test]
    fn install_command_is_minimal_and_never_self_updates() {
        let cmd = install_command("nightly-2026-10-30", Needs { rust_src: true });
        assert_eq!(
            cmd.to_string(),
            "rustup toolchain install nightly-2026-10-30 --profile minimal --component rust-src --target wasm32-unknown-unknown --no-self-update"
        );
    }
}
