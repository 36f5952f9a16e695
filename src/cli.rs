//! Command-line arguments. Cargo runs us as `cargo-worker-build worker-build ARGS`; run directly
//! the binary gets `ARGS` alone, so both shapes are accepted.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use crate::model::{ColorChoice, EhEncoding, Expect, MessageFormat, TargetRuntime};

#[derive(Debug, Parser)]
#[command(
    name = "cargo-worker-build",
    bin_name = "cargo worker-build",
    version,
    about = "Build a Cloudflare Worker from a Rust crate, with panics that unwind and aborts that recover",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Run `cargo worker-build --unwind` in a crate with a cdylib target that depends on wasm-bindgen.\nThe bundle lands in build/ (wrangler.toml: main = \"build/index.js\")."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub build: BuildArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new Worker project in a new directory
    New(NewArgs),
    /// Create a Worker project in the current (or given) directory
    Init(InitArgs),
    /// Verify an existing bundle directory or .wasm file without building
    Check(CheckArgs),
    /// Show the tools a build uses (toolchain, wasm-bindgen, Binaryen, node) and the tool cache
    Tools(ToolsArgs),
    /// Name the Rust functions in a log's `wasm-function[N]:0xOFF` frames (from the bundle's symbol map)
    Symbolize(SymbolizeArgs),
}

/// Options shared by everything that reads a package: which package, which cargo settings.
#[derive(Debug, Clone, Default, Args)]
pub struct BuildArgs {
    /// Build with panic=unwind (nightly, -Zbuild-std, Wasm exception handling)
    #[arg(long, alias = "panic-unwind", help_heading = "Build mode")]
    pub unwind: bool,

    /// Exception-handling encoding for --unwind builds [default: exnref]
    #[arg(long, value_enum, value_name = "ENCODING", help_heading = "Build mode")]
    pub eh: Option<EhEncoding>,

    /// After building, verify that the bundle unwinds, recovers and will load
    #[arg(long, help_heading = "Build mode")]
    pub check_eh: bool,

    /// Build a library for a JavaScript Worker to import, instead of a Worker entry
    #[arg(long = "lib", help_heading = "Build mode")]
    pub library: bool,

    /// Rust toolchain to build with [default: pinned nightly with --unwind, else stable]
    #[arg(long, value_name = "TOOLCHAIN", help_heading = "Build mode")]
    pub toolchain: Option<String>,

    /// Path to Cargo.toml
    #[arg(long, value_name = "PATH", help_heading = "Package selection")]
    pub manifest_path: Option<PathBuf>,

    /// Package to build (required at a virtual workspace root)
    #[arg(short, long, value_name = "SPEC", help_heading = "Package selection")]
    pub package: Option<String>,

    /// Space or comma separated list of features to activate
    #[arg(
        short = 'F',
        long,
        value_name = "FEATURES",
        help_heading = "Feature selection"
    )]
    pub features: Vec<String>,

    /// Activate all available features
    #[arg(long, help_heading = "Feature selection")]
    pub all_features: bool,

    /// Do not activate the `default` feature
    #[arg(long, help_heading = "Feature selection")]
    pub no_default_features: bool,

    /// Build with the release profile (the default)
    #[arg(long, conflicts_with_all = ["dev", "profile"], help_heading = "Compilation options")]
    pub release: bool,

    /// Build with the dev profile (debug assertions, no optimisation)
    #[arg(
        long,
        alias = "debug",
        conflicts_with = "profile",
        help_heading = "Compilation options"
    )]
    pub dev: bool,

    /// Build with the given profile
    #[arg(
        long,
        value_name = "PROFILE-NAME",
        help_heading = "Compilation options"
    )]
    pub profile: Option<String>,

    /// Directory for all generated artifacts
    #[arg(long, value_name = "DIRECTORY", help_heading = "Compilation options")]
    pub target_dir: Option<PathBuf>,

    /// Compile cache for rustc calls [env: WORKER_BUILD_CACHE] [default: auto]
    #[arg(
        long,
        value_enum,
        value_name = "CACHE",
        help_heading = "Compilation options"
    )]
    pub cache: Option<crate::cache::CacheChoice>,

    /// Directory for the bundle [default: build, next to the package's Cargo.toml]
    #[arg(
        long,
        short = 'o',
        short_alias = 'd',
        value_name = "DIRECTORY",
        help_heading = "Compilation options"
    )]
    pub out_dir: Option<PathBuf>,

    /// Skip wasm-opt and the minification of the bundle's JavaScript
    #[arg(long, alias = "no-optimization", help_heading = "Optimisation")]
    pub no_opt: bool,

    /// wasm-opt optimisation level: 0-4, s or z [default: z for release profiles, none for dev]
    #[arg(long, value_name = "LEVEL", conflicts_with = "no_opt", value_parser = ["0", "1", "2", "3", "4", "s", "z"], help_heading = "Optimisation")]
    pub opt_level: Option<String>,

    /// Fail when the bundle's gzip size is above SIZE (e.g. 3MiB, 900KiB, 1048576)
    #[arg(long, value_name = "SIZE", help_heading = "Optimisation")]
    pub max_size: Option<String>,

    /// What the check expects (with --check-eh) [default: unwind with --unwind, else abort]
    #[arg(long, value_enum, help_heading = "Check options")]
    pub expect: Option<Expect>,

    /// Runtime the bundle must load in (with --check-eh)
    #[arg(
        long,
        value_enum,
        default_value = "workerd",
        help_heading = "Check options"
    )]
    pub runtime: TargetRuntime,

    /// Require Cargo.lock is up to date
    #[arg(long, help_heading = "Manifest options")]
    pub locked: bool,

    /// Run without accessing the network
    #[arg(long, help_heading = "Manifest options")]
    pub offline: bool,

    /// Equivalent to specifying both --locked and --offline
    #[arg(long, help_heading = "Manifest options")]
    pub frozen: bool,

    /// Use verbose output (-vv very verbose); -v prints the build plan
    #[arg(short, long, action = clap::ArgAction::Count, help_heading = "Output")]
    pub verbose: u8,

    /// Do not print cargo log messages
    #[arg(short, long, conflicts_with = "verbose", help_heading = "Output")]
    pub quiet: bool,

    /// Coloring [env: CARGO_TERM_COLOR, NO_COLOR]
    #[arg(long, value_enum, value_name = "WHEN", help_heading = "Output")]
    pub color: Option<ColorChoice>,

    /// Output format: human, or one JSON object per step on stdout
    #[arg(
        long,
        value_enum,
        value_name = "FMT",
        default_value = "human",
        help_heading = "Output"
    )]
    pub message_format: MessageFormat,

    /// How the runtime logs each panic and abort: text, or one JSON object per line
    /// [default: text]
    #[arg(long, value_enum, value_name = "FMT", help_heading = "Output")]
    pub log_format: Option<crate::model::LogFormat>,

    /// Print the build plan and exit without building
    #[arg(long, help_heading = "Output")]
    pub dry_run: bool,

    /// worker-build's positional crate directory (`worker-build [PATH]`); the same as
    /// `--manifest-path PATH/Cargo.toml`, with a relative `--out-dir` taken from PATH as
    /// worker-build takes it. Hidden: `--manifest-path` is the cargo spelling.
    #[arg(value_name = "PATH", hide = true, conflicts_with = "manifest_path")]
    pub crate_dir: Option<PathBuf>,

    /// The rest of worker-build's interface, parsed only to say what to use instead.
    #[command(flatten)]
    pub worker_build: WorkerBuildOnly,

    /// Arguments after `--` are passed to `cargo build` verbatim
    #[arg(last = true, value_name = "CARGO-ARGS")]
    pub cargo_args: Vec<String>,
}

/// Flags of workers-rs `worker-build` 0.8.7 that have no counterpart here. They are hidden
/// arguments so that a build command written for worker-build fails with one line naming what
/// to use instead (see `compat::refuse_unsupported`), not with clap's "unexpected argument".
#[derive(Debug, Clone, Default, Args)]
pub struct WorkerBuildOnly {
    /// worker-build: the npm scope of the package.json it writes.
    #[arg(long, short = 's', value_name = "SCOPE", hide = true)]
    pub scope: Option<String>,

    /// worker-build (hidden there too): wasm-bindgen's target.
    #[arg(long, short = 't', value_name = "TARGET", hide = true)]
    pub target: Option<String>,

    /// worker-build (hidden there too): the output files' base name.
    #[arg(long, value_name = "NAME", hide = true)]
    pub out_name: Option<String>,

    /// worker-build (hidden there too, and always passed by it): no TypeScript declarations.
    /// Accepted as it is: the bundle needs none.
    #[arg(long, hide = true)]
    pub no_typescript: bool,

    /// worker-build: the legacy bundler-target shim without abort recovery.
    #[arg(long, hide = true)]
    pub no_panic_recovery: bool,

    /// worker-build: a release build with `[package.metadata.wasm-pack.profile.profiling]`.
    #[arg(long, hide = true)]
    pub profiling: bool,

    /// worker-build: build for wasm32-unknown-emscripten.
    #[arg(long, hide = true)]
    pub emscripten: bool,

    /// worker-build: the bin target of an --emscripten build.
    #[arg(long, value_name = "NAME", hide = true)]
    pub bin: Option<String>,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// Name (and directory) of the new project
    pub name: Option<String>,
    /// Template to start from
    #[arg(long, short, default_value = "hello")]
    pub template: String,
    /// List the templates with a one-line description and exit
    #[arg(long)]
    pub list_templates: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory to fill [default: the current directory]
    pub path: Option<PathBuf>,
    /// Crate name [default: the directory's name]
    #[arg(long)]
    pub name: Option<String>,
    /// Template to start from
    #[arg(long, short, default_value = "hello")]
    pub template: String,
    /// Overwrite existing files
    #[arg(long)]
    pub force: bool,
    /// List the templates with a one-line description and exit
    #[arg(long)]
    pub list_templates: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Bundle directories or .wasm files to verify [default: the package's bundle directory]
    pub paths: Vec<PathBuf>,
    /// What to expect [default: what the bundle's build recorded, else unwind]
    #[arg(long, value_enum)]
    pub expect: Option<Expect>,
    /// Required exception-handling encoding
    #[arg(long, value_enum, value_name = "ENCODING")]
    pub eh: Option<EhEncoding>,
    /// Runtime the module must load in
    #[arg(long, value_enum, default_value = "workerd")]
    pub runtime: TargetRuntime,
    /// Output format
    #[arg(long, value_enum, value_name = "FMT", default_value = "human")]
    pub message_format: MessageFormat,
    /// Coloring
    #[arg(long, value_enum, value_name = "WHEN")]
    pub color: Option<ColorChoice>,
    /// Path to Cargo.toml (to find the default bundle directory)
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SymbolizeArgs {
    /// The log to read (`wrangler tail`, its --format json, workerd's stderr) [default: stdin]
    pub file: Option<PathBuf>,
    /// The bundle whose frames the log shows [default: build/ next to Cargo.toml]
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Path to Cargo.toml (to find the default bundle directory)
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ToolsArgs {
    /// Remove cached tools the current project does not use
    #[arg(long)]
    pub clean: bool,
    /// Path to Cargo.toml
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// Output format
    #[arg(long, value_enum, value_name = "FMT", default_value = "human")]
    pub message_format: MessageFormat,
}

impl Cli {
    /// Parse the process arguments, dropping the `worker-build` that cargo inserts.
    pub fn from_env() -> Self {
        Self::parse_args(std::env::args_os())
    }

    /// Parse `args` (program name first) as [`Cli::from_env`] does, exiting on a usage error.
    pub fn parse_args<I: IntoIterator<Item = std::ffi::OsString>>(args: I) -> Self {
        let mut cli = Self::parse_from(normalize_args(args));
        cli.build.resolve_crate_dir();
        cli
    }
}

impl BuildArgs {
    /// worker-build's `[PATH]` is a crate directory: it becomes `--manifest-path`, and a
    /// relative `--out-dir` is taken from it (worker-build writes the bundle relative to the
    /// crate, not to the current directory).
    fn resolve_crate_dir(&mut self) {
        let Some(dir) = &self.crate_dir else {
            return;
        };
        self.manifest_path = Some(if dir.file_name().is_some_and(|n| n == "Cargo.toml") {
            dir.clone()
        } else {
            dir.join("Cargo.toml")
        });
        let crate_root = self
            .manifest_path
            .as_deref()
            .and_then(|m| m.parent())
            .map(PathBuf::from)
            .unwrap_or_default();
        if let Some(out) = self.out_dir.as_mut().filter(|o| o.is_relative()) {
            *out = crate_root.join(&*out);
        }
    }
}

/// Cargo runs `cargo-worker-build worker-build ARGS...`; drop the subcommand name it repeats.
pub fn normalize_args<I: IntoIterator<Item = std::ffi::OsString>>(
    args: I,
) -> Vec<std::ffi::OsString> {
    let mut args: Vec<_> = args.into_iter().collect();
    if args.get(1).is_some_and(|a| a == "worker-build") {
        args.remove(1);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn build(argv: &[&str]) -> BuildArgs {
        let mut full = vec!["cargo-worker-build"];
        full.extend_from_slice(argv);
        Cli::parse_args(full.into_iter().map(OsString::from)).build
    }

    fn parse_error(argv: &[&str]) -> clap::error::ErrorKind {
        let mut full = vec!["cargo-worker-build"];
        full.extend_from_slice(argv);
        Cli::try_parse_from(full).unwrap_err().kind()
    }

    #[test]
    fn worker_build_aliases_set_our_options() {
        assert!(build(&["--panic-unwind"]).unwind);
        assert!(build(&["--debug"]).dev);
        assert!(build(&["--no-optimization"]).no_opt);
        assert_eq!(build(&["-d", "out"]).out_dir, Some(PathBuf::from("out")));
        assert_eq!(build(&["-o", "out"]).out_dir, Some(PathBuf::from("out")));
        assert!(build(&["--no-typescript"]).worker_build.no_typescript);
        // As in worker-build, the profile flags exclude each other.
        assert_eq!(
            parse_error(&["--release", "--debug"]),
            clap::error::ErrorKind::ArgumentConflict
        );
        assert_eq!(
            parse_error(&["--dev", "--profile", "x"]),
            clap::error::ErrorKind::ArgumentConflict
        );
    }

    #[test]
    fn a_crate_directory_becomes_the_manifest_path_and_the_out_dir_base() {
        let a = build(&["--release", "crates/api"]);
        assert_eq!(
            a.manifest_path,
            Some(PathBuf::from("crates/api/Cargo.toml"))
        );
        assert_eq!(a.out_dir, None, "the default stays next to Cargo.toml");
        let a = build(&["crates/api", "-d", "dist"]);
        assert_eq!(a.out_dir, Some(PathBuf::from("crates/api/dist")));
        let a = build(&["crates/api", "-d", "/abs/dist"]);
        assert_eq!(a.out_dir, Some(PathBuf::from("/abs/dist")));
        let a = build(&["crates/api/Cargo.toml"]);
        assert_eq!(
            a.manifest_path,
            Some(PathBuf::from("crates/api/Cargo.toml"))
        );
        // Without a crate directory, a relative --out-dir stays relative to the current one.
        assert_eq!(build(&["-d", "dist"]).out_dir, Some(PathBuf::from("dist")));
        assert_eq!(
            parse_error(&["crates/api", "--manifest-path", "x/Cargo.toml"]),
            clap::error::ErrorKind::ArgumentConflict
        );
    }

    #[test]
    fn subcommands_still_win_over_a_crate_directory() {
        let cli = Cli::parse_args(["cargo-worker-build", "tools"].map(OsString::from));
        assert!(matches!(cli.command, Some(Command::Tools(_))));
        let cli = Cli::parse_args(
            ["cargo-worker-build", "worker-build", "--release", "."].map(OsString::from),
        );
        assert!(cli.command.is_none());
        assert_eq!(cli.build.manifest_path, Some(PathBuf::from("./Cargo.toml")));
    }

    #[test]
    fn cargo_args_after_the_separator_still_pass_through() {
        let a = build(&["crates/api", "--", "--timings"]);
        assert_eq!(a.cargo_args, ["--timings"]);
        assert_eq!(
            a.manifest_path,
            Some(PathBuf::from("crates/api/Cargo.toml"))
        );
    }
}
