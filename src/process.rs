//! Child processes. Every command is built from an argument vector (no shell strings), and every
//! failure names the full command line so the user can rerun it by hand.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A command to run: program, arguments, environment changes and working directory.
/// Kept as plain data so plans can show it (`-v`, `--dry-run`) and tests can compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: OsString,
    pub args: Vec<OsString>,
    /// Variables set (`Some`) or removed (`None`) for the child.
    pub env: Vec<(String, Option<OsString>)>,
    pub cwd: Option<PathBuf>,
}

impl Cmd {
    pub fn new(program: impl Into<OsString>) -> Self {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), Some(value.into())));
        self
    }

    pub fn env_remove(mut self, key: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), None));
        self
    }

    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }

    pub fn get_env(&self, key: &str) -> Option<&OsStr> {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }

    /// The duct expression for this command (stdio inherited unless the caller changes it).
    pub fn to_duct(&self) -> duct::Expression {
        let mut expr = duct::cmd(&self.program, &self.args);
        for (key, value) in &self.env {
            expr = match value {
                Some(v) => expr.env(key, v),
                None => expr.env_remove(key),
            };
        }
        if let Some(dir) = &self.cwd {
            expr = expr.dir(dir);
        }
        expr
    }

    /// The same command as a `std::process::Command`, for callers that stream its output.
    pub fn to_std(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.program);
        cmd.args(&self.args);
        for (key, value) in &self.env {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        cmd
    }

    /// Run to completion with captured output; on a non-zero exit, the command's stderr.
    pub fn read_or_stderr(&self) -> std::result::Result<String, CommandFailed> {
        let out = match self
            .to_duct()
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
        {
            Ok(out) => out,
            Err(e) => {
                return Err(CommandFailed {
                    command: self.to_string(),
                    status: format!("could not start: {e}"),
                    stderr: String::new(),
                })
            }
        };
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(CommandFailed {
                command: self.to_string(),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }

    /// Run to completion with captured stdout and stderr; a non-zero exit is an error that
    /// includes the command and its stderr.
    pub fn read(&self) -> Result<String> {
        let out = self
            .to_duct()
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .with_context(|| format!("could not run `{self}`"))?;
        if !out.status.success() {
            anyhow::bail!(
                "`{self}` failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim_end()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// A command that ran and failed: what it was, how it ended, what it said.
#[derive(Debug)]
pub struct CommandFailed {
    pub command: String,
    pub status: String,
    pub stderr: String,
}

impl fmt::Display for CommandFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` failed ({})", self.command, self.status)
    }
}

/// In JSON a command reads as text: `{"program": "cargo", "args": [...], "env": {...}}`.
impl serde::Serialize for Cmd {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let text = |s: &OsStr| s.to_string_lossy().into_owned();
        let env: std::collections::BTreeMap<&str, Option<String>> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref().map(text)))
            .collect();
        let mut st = serializer.serialize_struct("Cmd", 4)?;
        st.serialize_field("program", &text(&self.program))?;
        st.serialize_field(
            "args",
            &self.args.iter().map(|a| text(a)).collect::<Vec<_>>(),
        )?;
        st.serialize_field("env", &env)?;
        st.serialize_field("cwd", &self.cwd)?;
        st.end()
    }
}

impl fmt::Display for Cmd {
    /// The command as a user could type it (environment changes first, quoted where needed).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words = Vec::new();
        for (key, value) in &self.env {
            if let Some(v) = value {
                // `KEY='a b' cmd`, not `'KEY=a b' cmd`, which a shell runs as a command.
                words.push(format!("{key}={}", shell_quote(&v.to_string_lossy())));
            }
        }
        words.push(shell_quote(&self.program.to_string_lossy()));
        for arg in &self.args {
            words.push(shell_quote(&arg.to_string_lossy()));
        }
        f.write_str(&words.join(" "))
    }
}

/// Quote a word for a POSIX shell only when it needs it. Words of letters, digits and
/// `-_./=:,+@%^` stay bare (shlex would quote `=` and `,`, which are plain in an argument and
/// common in ours: `--version =0.2.130`, `-Cllvm-args=...`); shlex quotes the rest.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%^".contains(c));
    if plain {
        return s.to_string();
    }
    // The only word shlex refuses holds a NUL byte, which no command line can carry anyway.
    shlex::try_quote(s).map_or_else(|_| s.escape_default().to_string(), |q| q.into_owned())
}

/// Find a program on PATH (with the executable suffixes of the platform, so `npm` finds
/// `npm.cmd` on Windows).
pub fn which(program: &str) -> Option<PathBuf> {
    which::which(program).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_a_command_a_user_can_paste() {
        let cmd = Cmd::new("cargo")
            .args(["build", "--config", "profile.release.panic=\"unwind\""])
            .env("RUSTUP_TOOLCHAIN", "nightly-2026-10-30")
            .env("RUSTFLAGS", "-Cpanic=unwind -Zemit-stack-sizes")
            .env_remove("CARGO_ENCODED_RUSTFLAGS");
        assert_eq!(
            cmd.to_string(),
            r#"RUSTUP_TOOLCHAIN=nightly-2026-10-30 RUSTFLAGS='-Cpanic=unwind -Zemit-stack-sizes' cargo build --config 'profile.release.panic="unwind"'"#
        );
        assert_eq!(shell_quote("it's"), r#""it's""#);
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("--version=0.2.130"), "--version=0.2.130");
    }

    #[test]
    fn failure_names_the_command_and_its_stderr() {
        let err = Cmd::new("sh")
            .args(["-c", "echo boom >&2; exit 3"])
            .read()
            .unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("`sh -c 'echo boom >&2; exit 3'` failed"),
            "{msg}"
        );
        assert!(msg.contains("boom"), "{msg}");
    }
}
