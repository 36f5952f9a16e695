//! Terminal output in cargo's style: right-aligned green status words, `warning:`/`error:`
//! prefixes, colour decided once (`--color`, `CARGO_TERM_COLOR`, `NO_COLOR`, a terminal or not),
//! and spinners for long steps that cargo itself does not report.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use indicatif::{ProgressBar, ProgressStyle};

use crate::model::ColorChoice;

const STATUS: Style = AnsiColor::Green.on_default().bold();
const WARNING: Style = AnsiColor::Yellow.on_default().bold();
const ERROR: Style = AnsiColor::Red.on_default().bold();
const NOTE: Style = AnsiColor::Cyan.on_default().bold();

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// Where human-readable progress goes (always stderr; stdout is kept for JSON).
#[derive(Debug, Clone)]
pub struct Shell {
    color: bool,
    verbosity: Verbosity,
    interactive: bool,
}

impl Shell {
    pub fn new(choice: Option<ColorChoice>, verbosity: Verbosity) -> Self {
        let stderr_is_tty = std::io::stderr().is_terminal();
        Shell {
            color: resolve_color(choice, stderr_is_tty, |k| std::env::var(k).ok()),
            verbosity,
            interactive: stderr_is_tty,
        }
    }

    pub fn color(&self) -> bool {
        self.color
    }

    /// The value to hand to child processes (cargo) as `--color`.
    pub fn color_arg(&self) -> &'static str {
        if self.color {
            "always"
        } else {
            "never"
        }
    }

    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    /// `   Compiling foo v0.1.0` — the green word right-aligned to 12 columns, like cargo.
    pub fn status(&self, word: &str, message: impl std::fmt::Display) {
        if self.verbosity != Verbosity::Quiet {
            self.line(STATUS, &format!("{word:>12}"), &message.to_string());
        }
    }

    /// A status line shown only with `-v`.
    pub fn verbose(&self, word: &str, message: impl std::fmt::Display) {
        if self.verbosity == Verbosity::Verbose {
            self.line(STATUS, &format!("{word:>12}"), &message.to_string());
        }
    }

    pub fn warn(&self, message: impl std::fmt::Display) {
        if self.verbosity != Verbosity::Quiet {
            self.line(WARNING, "warning:", &message.to_string());
        }
    }

    pub fn note(&self, message: impl std::fmt::Display) {
        if self.verbosity != Verbosity::Quiet {
            self.line(NOTE, "note:", &message.to_string());
        }
    }

    pub fn error(&self, message: impl std::fmt::Display) {
        self.line(ERROR, "error:", &message.to_string());
    }

    /// `error[code]: message`, with the stable code scripts and the book's troubleshooting
    /// chapter use (like rustc's `error[E0277]`).
    pub fn error_with_code(&self, code: &str, message: impl std::fmt::Display) {
        self.line(ERROR, &format!("error[{code}]:"), &message.to_string());
    }

    fn line(&self, style: Style, word: &str, message: &str) {
        let mut err = std::io::stderr().lock();
        let _ = if self.color {
            writeln!(err, "{style}{word}{style:#} {message}")
        } else {
            writeln!(err, "{word} {message}")
        };
    }

    /// A spinner with elapsed time for a long step; hidden when stderr is not a terminal or -q.
    pub fn spinner(&self, word: &str, message: impl std::fmt::Display) -> Spinner {
        self.status(word, &message);
        if !self.interactive || self.verbosity == Verbosity::Quiet {
            return Spinner(None);
        }
        let bar = ProgressBar::new_spinner();
        let template = if self.color {
            "{spinner:.green} {msg} {elapsed:.dim}"
        } else {
            "{spinner} {msg} {elapsed}"
        };
        bar.set_style(ProgressStyle::with_template(template).expect("valid spinner template"));
        bar.set_message(message.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        Spinner(Some(bar))
    }
}

/// Clears itself when dropped, so an early return never leaves a spinner behind.
pub struct Spinner(Option<ProgressBar>);

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

/// `--color` wins, then `CARGO_TERM_COLOR`, then `NO_COLOR`, then whether stderr is a terminal.
pub fn resolve_color(
    choice: Option<ColorChoice>,
    is_tty: bool,
    env: impl Fn(&str) -> Option<String>,
) -> bool {
    let choice = choice.or_else(|| match env("CARGO_TERM_COLOR").as_deref() {
        Some("always") => Some(ColorChoice::Always),
        Some("never") => Some(ColorChoice::Never),
        _ => None,
    });
    match choice {
        Some(ColorChoice::Always) => true,
        Some(ColorChoice::Never) => false,
        Some(ColorChoice::Auto) | None => is_tty && env("NO_COLOR").is_none_or(|v| v.is_empty()),
    }
}

/// Writes `text` to standard output (reports, JSON records, listings). A reader that closed the
/// pipe (`| head -1`) has all it wanted: the rest is dropped and the build goes on to the end,
/// its bundle and exit code unchanged, instead of the process dying on the write. Any other
/// failure to write is said once per write on stderr.
pub fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    if let Err(err) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        if err.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write to standard output: {err}");
        }
    }
}

/// [`out`] with a newline.
pub fn out_line(line: impl std::fmt::Display) {
    out(&format!("{line}\n"));
}

/// `1.2 MiB`-style sizes for the summary line.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn color_flag_beats_environment() {
        assert!(resolve_color(
            Some(ColorChoice::Always),
            false,
            env(&[("CARGO_TERM_COLOR", "never")])
        ));
        assert!(!resolve_color(Some(ColorChoice::Never), true, env(&[])));
    }

    #[test]
    fn cargo_term_color_beats_no_color_and_tty() {
        assert!(resolve_color(
            None,
            false,
            env(&[("CARGO_TERM_COLOR", "always"), ("NO_COLOR", "1")])
        ));
        assert!(!resolve_color(
            None,
            true,
            env(&[("CARGO_TERM_COLOR", "never")])
        ));
    }

    #[test]
    fn no_color_turns_auto_off() {
        assert!(!resolve_color(None, true, env(&[("NO_COLOR", "1")])));
        assert!(resolve_color(None, true, env(&[("NO_COLOR", "")])));
        assert!(!resolve_color(None, false, env(&[])));
    }

    #[test]
    fn sizes_read_like_cargo() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3 * 1024 * 1024), "3.0 MiB");
    }
}
