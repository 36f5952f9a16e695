//! Every failure the tool reports to a user, in one place.
//!
//! Each [`Problem`] has a stable code (the troubleshooting chapter of the book has one entry per
//! code, and a test keeps the two in step) and renders as one line: what is wrong, then what to
//! do about it.

use std::fmt;

/// The kinds of failure a user can meet. The code strings are stable: scripts and the book use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    NoManifest,
    VirtualWorkspace,
    PackageNotFound,
    NoCdylib,
    NoWasmBindgen,
    BindgenTooOldForUnwind,
    BindgenTooOld,
    BindgenWrongVersion,
    BindgenInstallFailed,
    BindgenFailed,
    OfflineMissingTool,
    NoRustup,
    ToolchainNotNightly,
    ToolchainInstallFailed,
    EhWithoutUnwind,
    CompileFailed,
    NoArtifact,
    OutDirUnwritable,
    CargoMetadataFailed,
    NotUnwindSafe,
    InvalidOptConfig,
    WasmOptTooOld,
    WasmOptFailed,
    WasmOptUnavailable,
    BundleFailed,
    EsbuildUnavailable,
    SnippetNotInlinable,
    InvalidMaxSize,
    OverMaxSize,
    WorkerBuildUnsupported,
    NoSymbols,
    SymbolsOtherBuild,
    InvalidLogFormat,
}

impl Code {
    pub const ALL: &'static [Code] = &[
        Code::NoManifest,
        Code::VirtualWorkspace,
        Code::PackageNotFound,
        Code::NoCdylib,
        Code::NoWasmBindgen,
        Code::BindgenTooOldForUnwind,
        Code::BindgenTooOld,
        Code::BindgenWrongVersion,
        Code::BindgenInstallFailed,
        Code::BindgenFailed,
        Code::OfflineMissingTool,
        Code::NoRustup,
        Code::ToolchainNotNightly,
        Code::ToolchainInstallFailed,
        Code::EhWithoutUnwind,
        Code::CompileFailed,
        Code::NoArtifact,
        Code::OutDirUnwritable,
        Code::CargoMetadataFailed,
        Code::NotUnwindSafe,
        Code::InvalidOptConfig,
        Code::WasmOptTooOld,
        Code::WasmOptFailed,
        Code::WasmOptUnavailable,
        Code::BundleFailed,
        Code::EsbuildUnavailable,
        Code::SnippetNotInlinable,
        Code::InvalidMaxSize,
        Code::OverMaxSize,
        Code::WorkerBuildUnsupported,
        Code::NoSymbols,
        Code::SymbolsOtherBuild,
        Code::InvalidLogFormat,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::NoManifest => "no-manifest",
            Code::VirtualWorkspace => "virtual-workspace",
            Code::PackageNotFound => "package-not-found",
            Code::NoCdylib => "no-cdylib",
            Code::NoWasmBindgen => "no-wasm-bindgen",
            Code::BindgenTooOldForUnwind => "wasm-bindgen-too-old-for-unwind",
            Code::BindgenTooOld => "wasm-bindgen-too-old",
            Code::BindgenWrongVersion => "wasm-bindgen-wrong-version",
            Code::BindgenInstallFailed => "wasm-bindgen-install-failed",
            Code::BindgenFailed => "wasm-bindgen-failed",
            Code::OfflineMissingTool => "offline-missing-tool",
            Code::NoRustup => "no-rustup",
            Code::ToolchainNotNightly => "toolchain-not-nightly",
            Code::ToolchainInstallFailed => "toolchain-install-failed",
            Code::EhWithoutUnwind => "eh-without-unwind",
            Code::CompileFailed => "compile-failed",
            Code::NoArtifact => "no-artifact",
            Code::OutDirUnwritable => "out-dir-unwritable",
            Code::CargoMetadataFailed => "cargo-metadata-failed",
            Code::NotUnwindSafe => "not-unwind-safe",
            Code::InvalidOptConfig => "invalid-wasm-opt-config",
            Code::WasmOptTooOld => "wasm-opt-too-old",
            Code::WasmOptFailed => "wasm-opt-failed",
            Code::WasmOptUnavailable => "wasm-opt-unavailable",
            Code::BundleFailed => "bundle-failed",
            Code::EsbuildUnavailable => "esbuild-unavailable",
            Code::SnippetNotInlinable => "snippet-not-inlinable",
            Code::InvalidMaxSize => "invalid-max-size",
            Code::OverMaxSize => "over-max-size",
            Code::WorkerBuildUnsupported => "worker-build-unsupported",
            Code::NoSymbols => "no-symbols",
            Code::SymbolsOtherBuild => "symbols-other-build",
            Code::InvalidLogFormat => "invalid-log-format",
        }
    }

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
