//! Running `cargo build`: the user sees cargo's own diagnostics and progress on stderr, and we
//! read the artifact's path from cargo's JSON messages on stdout (never guessed).

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result};
use cargo_metadata::Message;

use crate::errors::{Code, Problem};
use crate::process::Cmd;

/// What `cargo build` produced for the package.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub wasm: PathBuf,
    /// Whether cargo found it up to date (nothing recompiled for the package).
    pub fresh: bool,
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
    for message in Message::parse_stream(BufReader::new(stdout)) {
        let message = message.with_context(|| format!("could not read the output of `{cmd}`"))?;
        match message {
            Message::CompilerArtifact(artifact) => {
                let ours = artifact.manifest_path.as_std_path() == manifest_path
                    && artifact
                        .target
                        .crate_types
                        .iter()
                        .any(|c| c.to_string() == "cdylib");
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
