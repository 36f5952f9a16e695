//! Every failure the tool reports to a user, in one place.
//!
//! Each [`Problem`] has a stable code (the troubleshooting chapter of the book has one entry per
//! code, and a test keeps the two in step) and renders as one line: what is wrong, then what to
//! do about it.

use std::fmt;

/// Declares [`Code`] from one list: each variant with its stable name, so the enum, the list of
/// every code and the names cannot drift apart.
macro_rules! codes {
    ($($variant:ident => $name:literal,)*) => {
        /// The kinds of failure a user can meet. The code strings are stable: scripts and the book use them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Code {
            $($variant,)*
        }

        impl Code {
            /// Every code, in declaration order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $name,)*
                }
            }
        }
    };
}

codes! {
    NoManifest => "no-manifest",
    VirtualWorkspace => "virtual-workspace",
    PackageNotFound => "package-not-found",
    NoCdylib => "no-cdylib",
    NoWasmBindgen => "no-wasm-bindgen",
    BindgenTooOldForUnwind => "wasm-bindgen-too-old-for-unwind",
    BindgenTooOld => "wasm-bindgen-too-old",
    BindgenWrongVersion => "wasm-bindgen-wrong-version",
    BindgenInstallFailed => "wasm-bindgen-install-failed",
    BindgenFailed => "wasm-bindgen-failed",
    OfflineMissingTool => "offline-missing-tool",
    ForeignToolCache => "foreign-tool-cache",
    NoRustup => "no-rustup",
    ToolchainNotNightly => "toolchain-not-nightly",
    ToolchainInstallFailed => "toolchain-install-failed",
    EhWithoutUnwind => "eh-without-unwind",
    CompileFailed => "compile-failed",
    NoArtifact => "no-artifact",
    OutDirUnwritable => "out-dir-unwritable",
    CargoMetadataFailed => "cargo-metadata-failed",
    NotUnwindSafe => "not-unwind-safe",
    InvalidOptConfig => "invalid-wasm-opt-config",
    WasmOptTooOld => "wasm-opt-too-old",
    WasmOptFailed => "wasm-opt-failed",
    WasmOptUnavailable => "wasm-opt-unavailable",
    BundleFailed => "bundle-failed",
    EsbuildUnavailable => "esbuild-unavailable",
    SnippetNotInlinable => "snippet-not-inlinable",
    InvalidMaxSize => "invalid-max-size",
    OverMaxSize => "over-max-size",
    WorkerBuildUnsupported => "worker-build-unsupported",
    NoSymbols => "no-symbols",
    SymbolsOtherBuild => "symbols-other-build",
    InvalidLogFormat => "invalid-log-format",
}

impl Code {
    /// Usage mistakes exit with 2 like clap's own; everything else with 1.
    pub fn exit_code(self) -> i32 {
        match self {
            Code::EhWithoutUnwind | Code::WorkerBuildUnsupported => 2,
            _ => 1,
        }
    }
}

/// A failure explained to the user: what is wrong and what to do.
#[derive(Debug)]
pub struct Problem {
    pub code: Code,
    pub what: String,
    pub fix: String,
    /// What a failing command printed, shown indented below the one-line message.
    pub detail: Option<String>,
    /// Exit with this code instead of the code's default (cargo's own exit code after a compile error).
    pub exit_code: Option<i32>,
}

impl Problem {
    pub fn new(code: Code, what: impl Into<String>, fix: impl Into<String>) -> Self {
        Problem {
            code,
            what: what.into(),
            fix: fix.into(),
            detail: None,
            exit_code: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        self.detail = (!detail.trim().is_empty()).then(|| detail.trim_end().to_string());
        self
    }

    pub fn with_exit_code(mut self, code: i32) -> Self {
        self.exit_code = Some(code);
        self
    }

    pub fn exit_code(&self) -> i32 {
        self.exit_code.unwrap_or_else(|| self.code.exit_code())
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.fix.is_empty() {
            write!(f, "{}", self.what)
        } else {
            write!(f, "{}; {}", self.what, self.fix)
        }
    }
}

impl std::error::Error for Problem {}

/// Shorthand for returning a [`Problem`] as an `anyhow::Error`.
pub fn problem(code: Code, what: impl Into<String>, fix: impl Into<String>) -> anyhow::Error {
    Problem::new(code, what, fix).into()
}

/// The exit code for any error: a [`Problem`]'s own, 1 for anything else.
pub fn exit_code_of(err: &anyhow::Error) -> i32 {
    err.downcast_ref::<Problem>().map_or(1, Problem::exit_code)
}
