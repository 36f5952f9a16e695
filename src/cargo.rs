//! Running `cargo build`: the user sees cargo's own diagnostics and progress on stderr, and we
//! read the artifact's path from cargo's JSON messages on stdout (never guessed).

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result};
use cargo_metadata::{CrateType, Message};

use crate::errors::{Code, Problem};
use crate::process::Cmd;

/// What `cargo build` produced for the package.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub wasm: PathBuf,
    /// Whether cargo found it up to date (nothing recompiled for the package).
    pub fresh: bool,
}

/// rustc's E0277 for a missing `UnwindSafe`/`RefUnwindSafe`: wasm-bindgen wraps exports in
/// `catch_unwind` under panic=unwind, so `&self` methods of a struct with `Cell`/`RefCell`
/// fields stop compiling.
fn is_not_unwind_safe(diagnostic: &cargo_metadata::diagnostic::Diagnostic) -> bool {
    let code = diagnostic.code.as_ref().map(|c| c.code.as_str());
    // rustc words the message by type ("may contain interior mutability ... across a
    // catch_unwind boundary"); the bound it names is always some `*UnwindSafe`.
    let text = diagnostic
        .rendered
        .as_deref()
        .unwrap_or(&diagnostic.message);
    code == Some("E0277")
        && (text.contains("UnwindSafe")
            || text.contains("unwind_safe")
            || text.contains("catch_unwind"))
}

/// The exported type rustc names in its help ("within `Notes`, the trait ... is not implemented").
fn unsafe_type(diagnostic: &cargo_metadata::diagnostic::Diagnostic) -> Option<String> {
    diagnostic.children.iter().find_map(|child| {
        let rest = child.message.split_once("within `")?.1;
        let ty = rest.split_once('`')?.0;
        Some(ty.rsplit("::").next().unwrap_or(ty).to_string())
    })
}

/// Run the build and return the package's `.wasm`. A compile error exits with cargo's code.
pub fn build(cmd: &Cmd, package_name: &str, manifest_path: &Path) -> Result<Artifact> {
    let mut child = cmd
        .to_std()
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("could not run `{cmd}`"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut found = None;
    let mut not_unwind_safe = None;
    for message in Message::parse_stream(BufReader::new(stdout)) {
        let message = message.with_context(|| format!("could not read the output of `{cmd}`"))?;
        match message {
            Message::CompilerArtifact(artifact) => {
                let ours = artifact.manifest_path.as_std_path() == manifest_path
                    && artifact.target.crate_types.contains(&CrateType::CDyLib);
                if ours {
                    let wasm = artifact
                        .filenames
                        .iter()
                        .find(|f| f.extension() == Some("wasm"));
                    found = wasm.map(|f| Artifact {
                        wasm: f.clone().into_std_path_buf(),
                        fresh: artifact.fresh,
                    });
                }
            }
            Message::CompilerMessage(msg) => {
                if let Some(rendered) = &msg.message.rendered {
                    eprint!("{rendered}");
                }
                if not_unwind_safe.is_none() && is_not_unwind_safe(&msg.message) {
                    not_unwind_safe =
                        Some((msg.message.message.clone(), unsafe_type(&msg.message)));
                }
            }
            // A build script or `--` argument may print plain lines; they are the user's.
            Message::TextLine(line) => eprintln!("{line}"),
            _ => {}
        }
    }
    let status = child
        .wait()
        .with_context(|| format!("could not wait for `{cmd}`"))?;
    if !status.success() {
        let code = status.code().unwrap_or(101);
        if let Some((message, ty)) = not_unwind_safe {
            let ty = ty.unwrap_or_else(|| "MyType".to_string());
            return Err(Problem::new(
                Code::NotUnwindSafe,
                format!("`{package_name}` does not compile with panic=unwind: {message}"),
                format!("types reachable from exported functions or classes must be UnwindSafe: wrap the offending field of `{ty}` as `std::panic::AssertUnwindSafe<RefCell<T>>`, or add `impl std::panic::RefUnwindSafe for {ty} {{}}` if a panic cannot leave it half-updated"),
            )
            .with_exit_code(code)
            .into());
        }
        return Err(Problem::new(
            Code::CompileFailed,
            format!("could not compile `{package_name}` for the wasm32 target (cargo exited with {code})"),
            "fix the errors cargo printed above, then build again",
        )
        .with_exit_code(code)
        .into());
    }
    found.ok_or_else(|| {
        Problem::new(
            Code::NoArtifact,
            format!("cargo finished but reported no .wasm file for `{package_name}`'s cdylib target"),
            "check that `[lib] crate-type` includes \"cdylib\" and that no argument after `--` changed the target",
        )
        .into()
    })
}

/// The module cargo built for this package, read while the caller holds the target directory's
/// lock ([`crate::bundle::lock_target`]), with a record of whose it is.
///
/// A cdylib's file name carries no hash, so two packages with one crate name that share a target
/// directory (two checkouts of a repository, a global `CARGO_TARGET_DIR`, a CI cache) write the
/// same `<name>.wasm`. After every build we record which manifest wrote the file and the digest
/// of what it wrote. When cargo calls the module fresh but the record names another manifest or
/// other bytes, the module is removed with rustc's own copy of it in `deps/` (cargo's older
/// layout, where that copy is shared too, and whose absence makes the unit dirty), and cargo runs
/// again: it compiles this package's module, or, in the layout where each unit has a directory
/// of its own, links this package's up again. Either way the file is then this package's.
pub fn build_own(
    cmd: &Cmd,
    package_name: &str,
    manifest_path: &Path,
) -> Result<(Artifact, Vec<u8>)> {
    let mut artifact = build(cmd, package_name, manifest_path)?;
    let mut bytes = crate::fs::read(&artifact.wasm)?;
    let recorded = Owner::read(&artifact.wasm);
    if artifact.fresh && !recorded.is_some_and(|o| o.is(manifest_path, &bytes)) {
        for stale in [artifact.wasm.clone(), deps_copy(&artifact.wasm)] {
            match std::fs::remove_file(&stale) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("could not remove {}", stale.display()))
                }
                _ => {}
            }
        }
        artifact = build(cmd, package_name, manifest_path)?;
        bytes = crate::fs::read(&artifact.wasm)?;
    }
    Owner::new(manifest_path, &bytes).write(&artifact.wasm)?;
    Ok((artifact, bytes))
}

/// Where rustc wrote the module before cargo linked it up into the profile directory, in
/// cargo's layout before per-unit build directories.
fn deps_copy(wasm: &Path) -> PathBuf {
    let name = wasm.file_name().unwrap_or_default();
    wasm.parent()
        .map(|dir| dir.join("deps").join(name))
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Which package's build wrote a module in the target directory, and what it wrote.
#[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Owner {
    manifest_path: PathBuf,
    sha256: String,
}

impl Owner {
    fn new(manifest_path: &Path, wasm: &[u8]) -> Owner {
        use sha2::Digest;
        Owner {
            manifest_path: manifest_path.to_path_buf(),
            sha256: format!("{:x}", sha2::Sha256::digest(wasm)),
        }
    }

    /// The record sits next to the module: `<name>.wasm.worker-build-owner.json`.
    fn path(wasm: &Path) -> PathBuf {
        let mut name = wasm.file_name().unwrap_or_default().to_os_string();
        name.push(".worker-build-owner.json");
        wasm.with_file_name(name)
    }

    fn read(wasm: &Path) -> Option<Owner> {
        serde_json::from_slice(&std::fs::read(Self::path(wasm)).ok()?).ok()
    }

    fn is(&self, manifest_path: &Path, wasm: &[u8]) -> bool {
        *self == Owner::new(manifest_path, wasm)
    }

    fn write(&self, wasm: &Path) -> Result<()> {
        let path = Self::path(wasm);
        let json = serde_json::to_vec(self)?;
        crate::fs::write_atomic(&path, &json)
    }
}
