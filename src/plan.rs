//! Resolve first, act second: arguments, cargo metadata, cargo configuration and the environment
//! become one plain [`Plan`] before anything runs. `-v` and `--dry-run` print it; unit tests check
//! it without running a build.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::cli::BuildArgs;
use crate::errors::{problem, Code};
use crate::model::{EhEncoding, Expect, LogFormat, TargetRuntime};
use crate::process::Cmd;
use crate::toolchain::{self, Toolchain, WASM_TARGET};
use crate::workspace::{self, Selected};

/// Flags that make the standard library and the crate unwind. `-Cpanic=unwind` also turns on
/// the `exception-handling` target feature; naming the feature as well only adds a warning.
pub const UNWIND_RUSTFLAGS: &[&str] = &["-Cpanic=unwind"];
/// rustc emits exnref (try_table/throw_ref) since 2026-05; this asks LLVM for the legacy
/// encoding (try/catch/rethrow/delegate) that older engines such as Node 20 understand.
pub const LEGACY_EH_RUSTFLAGS: &[&str] = &["-Cllvm-args=-wasm-use-legacy-eh=true"];
/// panic=unwind needs a standard library built with it, and `panic_unwind` itself.
pub const BUILD_STD: &str = "-Zbuild-std=std,panic_unwind";

use crate::model::{MIN_BINDGEN, MIN_BINDGEN_UNWIND};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "panic", rename_all = "lowercase")]
pub enum Mode {
    /// panic=unwind with Wasm exception handling in the given encoding.
    Unwind { eh: EhEncoding },
    /// panic=abort; aborts are still contained by re-initialising the instance.
    Abort,
}

impl Mode {
    pub fn is_unwind(self) -> bool {
        matches!(self, Mode::Unwind { .. })
    }

    pub fn eh(self) -> Option<EhEncoding> {
        match self {
            Mode::Unwind { eh } => Some(eh),
            Mode::Abort => None,
        }
    }

    /// `unwind` or `abort`, as the manifest and the JSON summary name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Unwind { .. } => "unwind",
            Mode::Abort => "abort",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CheckPlan {
    pub expect: Expect,
    pub eh: Option<EhEncoding>,
    pub runtime: TargetRuntime,
}

/// Everything a build will do, decided before it starts.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    pub package: Selected,
    pub toolchain: Toolchain,
    pub mode: Mode,
    /// `--lib`: a library for a JavaScript Worker instead of a Worker entry.
    pub library: bool,
    pub profile: String,
    /// The rustflags the target build gets: the project's own (from its cargo configuration or
    /// the environment), then ours.
    pub rustflags: Vec<String>,
    /// `cargo build`, ready to run (stdout carries JSON messages, stderr is the user's).
    pub cargo: Cmd,
    /// wasm-bindgen's arguments besides the input and output directory.
    pub bindgen_args: Vec<String>,
    /// wasm-opt's level and arguments (besides the feature flags), or none.
    pub opt: crate::opt::OptPlan,
    /// Whether the glue and runtime are minified with esbuild.
    pub minify: crate::minify::MinifyPlan,
    /// The budget for the bundle's gzip size, and where it was set.
    pub max_size: Option<(u64, String)>,
    pub out_dir: PathBuf,
    pub check: Option<CheckPlan>,
    pub offline: bool,
    /// The compile cache (sccache) and why it is off when it is.
    pub cache: crate::cache::CachePlan,
    /// How the runtime logs panics and aborts, and where that was decided.
    pub log: LogPlan,
    /// What the user should know about how the plan reads their project (printed as notes).
    pub notes: Vec<String>,
    /// The tools the build runs besides cargo: found, to be installed, or unavailable.
    pub tools: crate::locate::Tools,
}

impl Plan {
    /// The plan as the bundle's freshness key sees it: all of it, tools included (each as
    /// the path and version that runs, wherever it was found), except what changes no byte of
    /// the bundle other than through the module cargo built, which the key hashes itself.
    pub fn fingerprint(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).expect("a plan is plain data");
        if let Some(map) = value.as_object_mut() {
            // cargo's command line (colour, -q, -v) and the rustflags reach the bundle only
            // through the module; the output directory, the budget, --check-eh, --offline, the
            // notes and the compile cache do not change what is written.
            for key in [
                "cargo", "out_dir", "max_size", "check", "offline", "notes", "cache",
            ] {
                map.remove(key);
            }
            let tools: Vec<_> = [
                &self.tools.wasm_bindgen,
                &self.tools.wasm_opt,
                &self.tools.esbuild,
            ]
            .into_iter()
            .map(|t| serde_json::json!([t.name, t.identity()]))
            .collect();
            map.insert("tools".into(), tools.into());
        }
        value
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogPlan {
    pub format: LogFormat,
    /// `--log-format`, the Cargo.toml key, or the default.
    pub source: String,
}

/// `--log-format`, else `[package.metadata.worker-build] log-format = "text" | "json"`, else text.
pub fn log_plan(flag: Option<LogFormat>, metadata: &serde_json::Value) -> Result<LogPlan> {
    const KEY: &str = "package.metadata.worker-build.log-format";
    if let Some(format) = flag {
        return Ok(LogPlan {
            format,
            source: "--log-format".into(),
        });
    }
    let Some(value) = metadata
        .get("worker-build")
        .and_then(|w| w.get("log-format"))
    else {
        return Ok(LogPlan {
            format: LogFormat::Text,
            source: "default".into(),
        });
    };
    match value.as_str() {
        Some("text") => Ok(LogPlan { format: LogFormat::Text, source: KEY.into() }),
        Some("json") => Ok(LogPlan { format: LogFormat::Json, source: KEY.into() }),
        _ => Err(problem(
            Code::InvalidLogFormat,
            format!("`{KEY}` in Cargo.toml must be \"text\" or \"json\", not `{value}`"),
            "write `log-format = \"json\"` (or \"text\") under [package.metadata.worker-build], or pass --log-format json",
        )),
    }
}

/// Plan a build from the arguments and the world: the current directory, the package's cargo
/// metadata (kept between runs), its cargo configuration and the environment.
pub fn from_env(args: &BuildArgs, color: &'static str) -> Result<Plan> {
    validate_args(args)?;
    crate::compat::refuse_unsupported(args, |k| std::env::var_os(k))?;
    let cwd = std::env::current_dir()?;
    let manifest = workspace::locate_manifest(args.manifest_path.as_deref(), &cwd)?;
    let var = |k: &str| std::env::var(k).ok();
    let manifest_dir = manifest.parent().unwrap_or(Path::new("."));
    let toolchain = toolchain::select(args.toolchain.as_deref(), args.unwind, manifest_dir, &var)?;
    // Metadata comes from the cargo that ran us (`$CARGO`), so a toolchain that is not
    // installed yet does not stop us from reading the package.
    let outer_cargo = std::env::var_os("CARGO").map(PathBuf::from);
    let query = workspace::Query {
        locked: args.locked,
        offline: args.offline,
        frozen: args.frozen,
        cargo: outer_cargo.as_deref(),
    };
    let cache_key = workspace::cache::key(&[
        &cwd.to_string_lossy(),
        &manifest.to_string_lossy(),
        args.package.as_deref().unwrap_or(""),
        &std::env::var("CARGO_TARGET_DIR").unwrap_or_default(),
    ]);
    let config_files = workspace::cache::config_files(&cwd);
    let package = match workspace::cache::load(&cache_key, &config_files) {
        Some(selected) => selected,
        None => {
            let meta = workspace::metadata(&manifest, &query)?;
            let selected = workspace::select(&meta, &manifest, args.package.as_deref())?;
            workspace::cache::store(&cache_key, &selected, &config_files);
            selected
        }
    };
    // Read once, as cargo reads it from this directory: the rustflags and the compile cache's
    // settings come from it. Only an unwinding build, which merges the rustflags, needs it.
    let config = cargo_config2::Config::load_with_cwd(&cwd);
    let project_rustflags = if args.unwind {
        project_rustflags(config.as_ref().map_err(|e| {
            anyhow::anyhow!(
                "could not read cargo configuration from {}: {e:#}",
                cwd.display()
            )
        })?)?
    } else {
        Vec::new()
    };
    let cache = crate::cache::resolve(&crate::cache::inputs(
        args.cache,
        config.as_ref().ok(),
        &package.metadata,
    ));
    let env = Env {
        cwd: &cwd,
        project_rustflags,
        color,
        no_minify: crate::compat::no_minify(|k| std::env::var_os(k)),
        cache,
        var: &|k| std::env::var_os(k),
    };
    resolve(args, package, toolchain, &env)
}

/// Inputs to [`resolve`] that come from outside the arguments.
pub struct Env<'a> {
    pub cwd: &'a Path,
    /// The project's effective rustflags for the wasm target, as cargo would compute them.
    pub project_rustflags: Vec<String>,
    pub color: &'a str,
    /// worker-build's `NO_MINIFY` is set.
    pub no_minify: bool,
    pub cache: crate::cache::CachePlan,
    /// Reads the environment (the tools' variables).
    pub var: &'a dyn Fn(&str) -> Option<OsString>,
}

/// Usage errors that need no metadata: checked first so they fail fast.
pub fn validate_args(args: &BuildArgs) -> Result<()> {
    if args.eh.is_some() && !args.unwind {
        return Err(problem(
            Code::EhWithoutUnwind,
            "--eh picks the exception-handling encoding of an unwinding build, but --unwind was not given",
            "add --unwind (`cargo worker-build --unwind --eh legacy`), or drop --eh",
        ));
    }
    Ok(())
}

pub fn mode_of(args: &BuildArgs) -> Mode {
    if args.unwind {
        Mode::Unwind {
            eh: args.eh.unwrap_or(EhEncoding::Exnref),
        }
    } else {
        Mode::Abort
    }
}

/// The cargo profile name the arguments select.
pub fn profile_of(args: &BuildArgs) -> String {
    match (&args.profile, args.dev) {
        (Some(p), _) => p.clone(),
        (None, true) => "dev".to_string(),
        (None, false) => "release".to_string(),
    }
}

/// Turn arguments + package + toolchain + environment into the plan.
pub fn resolve(
    args: &BuildArgs,
    package: Selected,
    toolchain: Toolchain,
    env: &Env,
) -> Result<Plan> {
    let mode = mode_of(args);
    check_bindgen_version(&package, mode)?;
    let profile = profile_of(args);
    let mut package = package;
    if let Some(dir) = &args.target_dir {
        package.target_dir = env.cwd.join(dir);
    }
    let notes = notes(&package, mode, &profile);

    let mut rustflags = env.project_rustflags.clone();
    if let Mode::Unwind { eh } = mode {
        let mut ours = UNWIND_RUSTFLAGS.to_vec();
        if eh == EhEncoding::Legacy {
            ours.extend(LEGACY_EH_RUSTFLAGS);
        }
        // Always the same list in the same order (the project's, then ours, none twice): the
        // flags are part of every compile-cache key, so two builds of one project must agree.
        for flag in ours {
            if !rustflags.iter().any(|f| f == flag) {
                rustflags.push(flag.to_string());
            }
        }
    }

    let max_size = match (
        &args.max_size,
        package
            .metadata
            .get("worker-build")
            .and_then(|w| w.get("max-size")),
    ) {
        (Some(text), _) => Some((
            crate::size::parse(text, "--max-size")?,
            "--max-size".to_string(),
        )),
        (None, Some(value)) => {
            let origin = "`package.metadata.worker-build.max-size` in Cargo.toml";
            let text = value
                .as_str()
                .map(str::to_string)
                .or_else(|| value.as_u64().map(|n| n.to_string()))
                .unwrap_or_else(|| value.to_string());
            Some((crate::size::parse(&text, origin)?, origin.to_string()))
        }
        (None, None) => None,
    };
    let opt = crate::opt::plan(
        args.no_opt,
        args.opt_level.as_deref(),
        &profile,
        &package.metadata,
    )?;
    let minify = crate::minify::plan(args.no_opt, env.no_minify, &profile, &package.metadata)?;
    let log = log_plan(args.log_format, &package.metadata)?;
    // Optimised builds get line tables for the symbol map (the DWARF leaves the module before
    // wasm-opt), unless the profile says what debug info it wants. A `--no-opt` build of a
    // profile that would be optimised gets them too: `--no-opt` skips wasm-opt and the minifier,
    // not the compile, so it reuses the optimised build's -Zbuild-std standard library and
    // dependencies instead of compiling a second set (wasm-bindgen drops the DWARF, as it is not
    // asked to keep it). A wasm-opt setting the optimised build would refuse stays no error
    // under `--no-opt`: that build has no profile to share.
    let optimised_profile = opt.args.is_some()
        || (args.no_opt
            && crate::opt::plan(false, None, &profile, &package.metadata)
                .is_ok_and(|would| would.args.is_some()));
    let line_tables = optimised_profile
        && manifest_profile_value(&package.workspace_root, &profile, "debug").is_none()
        && std::env::var_os(format!(
            "CARGO_PROFILE_{}_DEBUG",
            profile.to_uppercase().replace('-', "_")
        ))
        .is_none();
    let cargo = cargo_command(
        args,
        &package,
        &toolchain,
        mode,
        &profile,
        &rustflags,
        env,
        line_tables,
    );

    let mut bindgen_args: Vec<String> = [
        "--target",
        "module",
        "--out-name",
        "index",
        "--experimental-reset-state-function",
    ]
    .map(String::from)
    .to_vec();
    if !mode.is_unwind() {
        // Without unwinding every panic is an abort; this makes the glue notice it and
        // re-initialise instead of calling into a dead instance.
        bindgen_args.push("--force-enable-abort-handler".to_string());
    }
    bindgen_args.extend(bindgen_profile_args(&profile, &package.metadata)?);
    if opt.args.is_some() && !bindgen_args.iter().any(|a| a == "--keep-debug") {
        // The symbol map reads the DWARF; it is removed from the module before wasm-opt.
        bindgen_args.push("--keep-debug".to_string());
    }

    let out_dir = match &args.out_dir {
        Some(dir) if dir.is_absolute() => dir.clone(),
        Some(dir) => env.cwd.join(dir),
        None => package.dir.join("build"),
    };

    let check = args.check_eh.then(|| CheckPlan {
        expect: args.expect.unwrap_or(if mode.is_unwind() {
            Expect::Unwind
        } else {
            Expect::Abort
        }),
        eh: mode.eh(),
        runtime: args.runtime,
    });

    let tools = crate::locate::resolve(
        &crate::locate::Needs {
            wasm_bindgen: &package.wasm_bindgen,
            opt: &opt,
            offline: args.offline || args.frozen,
            cache: &env.cache,
        },
        env.var,
    );
    Ok(Plan {
        package,
        toolchain,
        mode,
        library: args.library,
        profile,
        rustflags,
        cargo,
        bindgen_args,
        opt,
        minify,
        max_size,
        out_dir,
        check,
        offline: args.offline || args.frozen,
        tools,
        cache: env.cache.clone(),
        log,
        notes,
    })
}

/// What the plan tells the user about settings of theirs it reads differently.
fn notes(package: &Selected, mode: Mode, profile: &str) -> Vec<String> {
    let mut notes = Vec::new();
    let unread = crate::compat::unread_wasm_pack_settings(&package.metadata, profile);
    if !unread.is_empty() {
        notes.push(format!(
            "Cargo.toml sets `{}`, which worker-build passes to wasm-bindgen; cargo worker-build does not read it (the bundle's glue keeps one shape)",
            unread.join("`, `")
        ));
    }
    if mode.is_unwind()
        && manifest_profile_panic(&package.workspace_root, profile).as_deref() == Some("abort")
    {
        notes.push(format!(
            "{} sets `panic = \"abort\"` in [profile.{profile}]; --unwind builds this profile with panic=unwind (Cargo.toml is not changed)",
            package.workspace_root.join("Cargo.toml").display()
        ));
    }
    notes
}

/// wasm-bindgen's per-profile settings, as wasm-pack spells them:
/// `[package.metadata.worker-build.profile.<p>.wasm-bindgen]`, else the same table under
/// `wasm-pack` (so existing workers-rs projects keep theirs), key by key, else the defaults
/// worker-build and wasm-pack use: readable glue in dev, demangled names, and no DWARF. DWARF
/// stays out of the module unless asked for: it makes a dev module several times larger, and
/// every Miniflare or workerd instance compiles the whole module again.
pub fn bindgen_profile_args(profile: &str, metadata: &serde_json::Value) -> Result<Vec<String>> {
    // (key, flag, default, flag is passed when the value is ...)
    let settings: [(&str, &str, bool, bool); 3] = [
        ("debug-js-glue", "--debug", profile == "dev", true),
        ("demangle-name-section", "--no-demangle", true, false),
        ("dwarf-debug-info", "--keep-debug", false, true),
    ];
    let mut args = Vec::new();
    for (key, flag, default, passed_when) in settings {
        let mut value = default;
        // worker-build's reading of wasm-pack's tables includes `custom` for custom profiles.
        let tables = std::iter::once(("worker-build", profile)).chain(
            crate::compat::wasm_pack_tables(profile)
                .into_iter()
                .map(|t| ("wasm-pack", t)),
        );
        for (tool, profile) in tables {
            let Some(setting) = metadata
                .get(tool)
                .and_then(|t| t.get("profile"))
                .and_then(|p| p.get(profile))
                .and_then(|p| p.get("wasm-bindgen"))
                .and_then(|b| b.get(key))
            else {
                continue;
            };
            value = setting.as_bool().ok_or_else(|| {
                problem(
                    Code::InvalidOptConfig,
                    format!("`package.metadata.{tool}.profile.{profile}.wasm-bindgen.{key}` in Cargo.toml must be true or false, not `{setting}`"),
                    format!("write `{key} = {default}` under [package.metadata.{tool}.profile.{profile}.wasm-bindgen]"),
                )
            })?;
            break;
        }
        if value == passed_when {
            args.push(flag.to_string());
        }
    }
    Ok(args)
}

pub fn check_bindgen_version(package: &Selected, mode: Mode) -> Result<()> {
    use crate::model::RECOMMENDED_BINDGEN;
    let v = &package.wasm_bindgen;
    let line = format!("wasm-bindgen = \"={RECOMMENDED_BINDGEN}\"` under [dependencies] in {} (then `cargo update -p wasm-bindgen`)", package.manifest_path.display());
    if mode.is_unwind() && *v < MIN_BINDGEN_UNWIND {
        return Err(problem(
            Code::BindgenTooOldForUnwind,
            format!("wasm-bindgen {v} leaks shadow-stack memory on every caught panic; --unwind needs {MIN_BINDGEN_UNWIND} or newer"),
            format!("set `{line}"),
        ));
    }
    if *v < MIN_BINDGEN {
        return Err(problem(
            Code::BindgenTooOld,
            format!("wasm-bindgen {v} has no abort handler or reset function, which abort recovery needs ({MIN_BINDGEN} or newer)"),
            format!("set `{line}"),
        ));
    }
    Ok(())
}

// Each argument is one resolved part of the plan; a struct for them would only rename them.
#[allow(clippy::too_many_arguments)]
fn cargo_command(
    args: &BuildArgs,
    package: &Selected,
    toolchain: &Toolchain,
    mode: Mode,
    profile: &str,
    rustflags: &[String],
    env: &Env,
    line_tables: bool,
) -> Cmd {
    let mut cmd = Cmd::new("cargo")
        .args([
            "build",
            "--lib",
            "--target",
            WASM_TARGET,
            "--message-format",
            // Diagnostics come back as JSON with cargo's own rendering, which we print as they
            // arrive: the user sees exactly what cargo shows, and we can recognise the errors
            // that --unwind causes (a type that is not UnwindSafe) and say how to fix them.
            if env.color == "always" {
                "json-diagnostic-rendered-ansi"
            } else {
                "json"
            },
        ])
        .arg("--manifest-path")
        .arg(package.manifest_path.as_os_str());
    match profile {
        "release" => cmd = cmd.arg("--release"),
        "dev" => {}
        other => cmd = cmd.args(["--profile", other]),
    }
    for features in &args.features {
        cmd = cmd.args(["--features", features]);
    }
    if args.all_features {
        cmd = cmd.arg("--all-features");
    }
    if args.no_default_features {
        cmd = cmd.arg("--no-default-features");
    }
    if args.target_dir.is_some() {
        cmd = cmd.arg("--target-dir").arg(package.target_dir.as_os_str());
    }
    for (on, flag) in [
        (args.locked, "--locked"),
        (args.offline, "--offline"),
        (args.frozen, "--frozen"),
    ] {
        if on {
            cmd = cmd.arg(flag);
        }
    }
    if args.quiet {
        cmd = cmd.arg("-q");
    }
    // Our own -v prints the plan; cargo gets its -v from the second level on (-vv).
    for _ in 1..args.verbose {
        cmd = cmd.arg("-v");
    }
    cmd = cmd.args(["--color", env.color]);
    if mode.is_unwind() {
        cmd = cmd.arg(BUILD_STD);
        // A profile's `panic = "abort"` (from Cargo.toml, a config file or the environment)
        // is overridden at its source rather than countermanded by a later -Cpanic flag: cargo
        // then builds no panic_abort and the rebuilt std is shared with other unwind builds.
        cmd = cmd
            .arg("--config")
            .arg(format!("profile.{profile}.panic=\"unwind\""));
    }
    if line_tables {
        cmd = cmd
            .arg("--config")
            .arg(format!("profile.{profile}.debug=\"line-tables-only\""));
    }
    cmd = cmd.args(args.cargo_args.iter());
    cmd = cmd.env("RUSTUP_TOOLCHAIN", &toolchain.name);
    if env.cache.is_on() {
        // sccache cannot cache incremental compilation (the dev profile's default).
        cmd = cmd.env("CARGO_INCREMENTAL", "0");
    } else if env.cache.drop_user_wrapper {
        // `--cache none` with sccache as the user's wrapper: an empty RUSTC_WRAPPER is no
        // wrapper at all, for cargo, whatever its configuration says.
        cmd = cmd.env("RUSTC_WRAPPER", "");
    }
    if mode.is_unwind() {
        // Cargo takes exactly one rustflags source; handing it the merged list keeps the
        // project's own flags (config files, RUSTFLAGS) and adds ours. With --target, these
        // reach only target artifacts, never build scripts or proc macros.
        cmd = cmd
            .env(
                "CARGO_ENCODED_RUSTFLAGS",
                OsString::from(rustflags.join("\x1f")),
            )
            .env_remove("RUSTFLAGS");
    }
    cmd
}

/// The project's rustflags for the wasm target, computed the way cargo does it (environment
/// first, then `target.<triple>` / `target.<cfg>`, then `build.rustflags`) from the directory
/// cargo will run in.
/// The `panic` setting of a profile in the workspace's Cargo.toml, if it sets one.
pub fn manifest_profile_panic(workspace_root: &Path, profile: &str) -> Option<String> {
    manifest_profile_value(workspace_root, profile, "panic")?
        .as_str()
        .map(str::to_string)
}

/// `[profile.<profile>] <key>` in the workspace's Cargo.toml, when it is set there.
pub fn manifest_profile_value(
    workspace_root: &Path,
    profile: &str,
    key: &str,
) -> Option<toml_edit::Item> {
    let text = std::fs::read_to_string(workspace_root.join("Cargo.toml")).ok()?;
    let doc: toml_edit::DocumentMut = text.parse().ok()?;
    doc.get("profile")?.get(profile)?.get(key).cloned()
}

pub fn project_rustflags(config: &cargo_config2::Config) -> Result<Vec<String>> {
    let flags = config.rustflags(WASM_TARGET).map_err(|e| {
        anyhow::anyhow!("could not resolve rustflags from cargo configuration: {e:#}")
    })?;
    Ok(flags.map(|f| f.flags).unwrap_or_default())
}

/// The toolchain needs of a mode.
pub fn toolchain_needs(mode: Mode) -> toolchain::Needs {
    toolchain::Needs {
        rust_src: mode.is_unwind(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toolchain::Source;

    /// The environment of a build in `/work` with nothing set.
    fn test_env() -> Env<'static> {
        Env {
            cwd: Path::new("/work"),
            project_rustflags: vec![],
            color: "never",
            no_minify: false,
            var: &|_| None,
            cache: crate::cache::resolve(&crate::cache::Inputs::default()),
        }
    }

    fn args(argv: &[&str]) -> BuildArgs {
        let mut full = vec!["cargo-worker-build"];
        full.extend_from_slice(argv);
        crate::cli::Cli::parse_args(full.into_iter().map(OsString::from)).build
    }

    fn package(bindgen: &str) -> Selected {
        Selected {
            name: "hello".into(),
            version: "0.1.0".into(),
            manifest_path: "/p/hello/Cargo.toml".into(),
            dir: "/p/hello".into(),
            lib_name: "hello".into(),
            workspace_root: "/p/hello".into(),
            target_dir: "/p/hello/target".into(),
            wasm_bindgen: semver::Version::parse(bindgen).unwrap(),
            metadata: serde_json::Value::Null,
            inputs: vec![],
        }
    }

    fn plan_with(argv: &[&str], project_rustflags: &[&str]) -> Result<Plan> {
        let a = args(argv);
        let tc = Toolchain {
            name: if a.unwind {
                toolchain::DEFAULT_NIGHTLY.into()
            } else {
                "stable".into()
            },
            source: Source::Default,
        };
        let env = Env {
            project_rustflags: project_rustflags.iter().map(|s| s.to_string()).collect(),
            ..test_env()
        };
        resolve(&a, package("0.2.130"), tc, &env)
    }

    fn plan(argv: &[&str]) -> Plan {
        plan_with(argv, &[]).unwrap()
    }

    fn cargo_args(p: &Plan) -> Vec<String> {
        p.cargo
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn encoded_rustflags(p: &Plan) -> Option<Vec<String>> {
        p.cargo.get_env("CARGO_ENCODED_RUSTFLAGS").map(|v| {
            v.to_string_lossy()
                .split('\x1f')
                .map(String::from)
                .collect()
        })
    }

    #[test]
    fn default_build_is_release_panic_abort_on_stable_with_abort_handler() {
        let p = plan(&[]);
        assert_eq!(p.mode, Mode::Abort);
        assert_eq!(p.profile, "release");
        assert_eq!(p.toolchain.name, "stable");
        let a = cargo_args(&p);
        assert!(a.contains(&"--release".to_string()));
        assert!(!a.iter().any(|x| x.starts_with("-Zbuild-std")));
        assert_eq!(
            encoded_rustflags(&p),
            None,
            "abort builds leave rustflags to cargo"
        );
        assert!(p
            .bindgen_args
            .contains(&"--force-enable-abort-handler".to_string()));
        assert!(p
            .bindgen_args
            .contains(&"--experimental-reset-state-function".to_string()));
        assert_eq!(p.out_dir, PathBuf::from("/p/hello/build"));
    }

    #[test]
    fn unwind_uses_nightly_build_std_and_panic_unwind_exnref() {
        let p = plan(&["--unwind"]);
        assert_eq!(
            p.mode,
            Mode::Unwind {
                eh: EhEncoding::Exnref
            }
        );
        assert_eq!(
            p.cargo.get_env("RUSTUP_TOOLCHAIN").unwrap(),
            toolchain::DEFAULT_NIGHTLY
        );
        assert!(cargo_args(&p).contains(&BUILD_STD.to_string()));
        assert_eq!(encoded_rustflags(&p).unwrap(), vec!["-Cpanic=unwind"]);
        assert_eq!(
            p.cargo
                .env
                .iter()
                .find(|(k, _)| k == "RUSTFLAGS")
                .map(|(_, v)| v.is_none()),
            Some(true),
            "RUSTFLAGS must not override the merged list"
        );
        assert!(!p
            .bindgen_args
            .contains(&"--force-enable-abort-handler".to_string()));
    }

    #[test]
    fn legacy_eh_adds_the_llvm_flag() {
        let p = plan(&["--unwind", "--eh", "legacy"]);
        assert_eq!(
            encoded_rustflags(&p).unwrap(),
            vec!["-Cpanic=unwind", "-Cllvm-args=-wasm-use-legacy-eh=true"]
        );
    }

    #[test]
    fn project_rustflags_are_kept_before_ours() {
        let p = plan_with(&["--unwind"], &["--cfg", "my_flag", "-Copt-level=s"]).unwrap();
        assert_eq!(
            encoded_rustflags(&p).unwrap(),
            vec!["--cfg", "my_flag", "-Copt-level=s", "-Cpanic=unwind"]
        );
    }

    #[test]
    fn rustflags_are_stable_and_never_doubled() {
        let p = plan_with(
            &["--unwind", "--eh", "legacy"],
            &["-Cpanic=unwind", "--cfg", "x"],
        )
        .unwrap();
        assert_eq!(
            encoded_rustflags(&p).unwrap(),
            vec![
                "-Cpanic=unwind",
                "--cfg",
                "x",
                "-Cllvm-args=-wasm-use-legacy-eh=true"
            ]
        );
        // Nothing in them depends on the directory the build runs in.
        let q = plan_with(
            &["--unwind", "--eh", "legacy"],
            &["-Cpanic=unwind", "--cfg", "x"],
        )
        .unwrap();
        assert_eq!(encoded_rustflags(&p), encoded_rustflags(&q));
        assert!(!p.rustflags.iter().any(|f| f.contains("/work")));
    }

    #[test]
    fn a_cached_build_turns_incremental_off_and_none_drops_a_user_sccache() {
        let a = args(&["--unwind"]);
        let tc = Toolchain {
            name: toolchain::DEFAULT_NIGHTLY.into(),
            source: Source::Default,
        };
        let cached = |inputs: crate::cache::Inputs| {
            let env = Env {
                cache: crate::cache::resolve(&inputs),
                ..test_env()
            };
            resolve(&a, package("0.2.130"), tc.clone(), &env).unwrap()
        };
        let on = cached(crate::cache::Inputs {
            on_path: Some("/bin/sccache".into()),
            ..Default::default()
        });
        assert_eq!(on.cargo.get_env("CARGO_INCREMENTAL").unwrap(), "0");
        let none = cached(crate::cache::Inputs {
            flag: Some(crate::cache::CacheChoice::None),
            env_wrapper: Some("/bin/sccache".into()),
            ..Default::default()
        });
        assert_eq!(none.cargo.get_env("RUSTC_WRAPPER").unwrap(), "");
        assert_eq!(none.cargo.get_env("CARGO_INCREMENTAL"), None);
    }

    #[test]
    fn eh_without_unwind_is_a_usage_error() {
        let err = validate_args(&args(&["--eh", "legacy"])).unwrap_err();
        let problem = err.downcast_ref::<crate::errors::Problem>().unwrap();
        assert_eq!(problem.code, Code::EhWithoutUnwind);
        assert_eq!(problem.exit_code(), 2);
        assert!(err
            .to_string()
            .contains("cargo worker-build --unwind --eh legacy"));
    }

    #[test]
    fn a_profile_that_aborts_is_noted_in_the_plan_of_an_unwind_build() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(
            root.path().join("Cargo.toml"),
            "[package]\nname = \"hello\"\n[profile.release]\npanic = \"abort\"\n",
        )
        .unwrap();
        let mut package = package("0.2.130");
        package.workspace_root = root.path().into();
        let env = test_env();
        let tc = Toolchain {
            name: toolchain::DEFAULT_NIGHTLY.into(),
            source: Source::Default,
        };
        let p = resolve(&args(&["--unwind"]), package.clone(), tc.clone(), &env).unwrap();
        assert_eq!(p.notes.len(), 1, "{:?}", p.notes);
        assert!(p.notes[0].contains("panic = \"abort\"` in [profile.release]"));
        // The note is part of what --dry-run --message-format json shows.
        assert_eq!(serde_json::to_value(&p).unwrap()["notes"][0], p.notes[0]);
        let abort = resolve(&args(&[]), package, tc, &env).unwrap();
        assert!(abort.notes.is_empty());
    }

    #[test]
    fn the_fingerprint_follows_the_tools_that_run_and_not_how_the_build_is_reported() {
        use crate::locate::Status;
        let base = plan(&[]);
        let found = |path: &str, version: &str, origin: &str| Status::Found {
            path: path.into(),
            script: None,
            version: version.into(),
            origin: origin.into(),
        };
        let with_opt = |status: Status| {
            let mut p = base.clone();
            p.tools.wasm_opt.status = status;
            p.fingerprint()
        };
        let a = with_opt(found("/a/wasm-opt", "132", "WASM_OPT"));
        assert_ne!(
            a,
            with_opt(found("/b/wasm-opt", "132", "WASM_OPT")),
            "another wasm-opt binary"
        );
        assert_ne!(
            a,
            with_opt(found("/a/wasm-opt", "133", "WASM_OPT")),
            "another wasm-opt version"
        );
        // Where a binary was found, or that it is about to be installed there, is not a change.
        assert_eq!(a, with_opt(found("/a/wasm-opt", "132", "PATH")));
        assert_eq!(
            a,
            with_opt(Status::Install {
                path: "/a/wasm-opt".into(),
                script: None,
                version: "132".into(),
                from: "npm".into()
            })
        );
        let mut esbuild = base.clone();
        esbuild.tools.esbuild.status = Status::Found {
            path: "/other/esbuild".into(),
            script: None,
            version: "0.28.2".into(),
            origin: "ESBUILD".into(),
        };
        assert_ne!(base.fingerprint(), esbuild.fingerprint(), "another esbuild");
        // How the build is run or reported changes nothing that is written.
        for argv in [
            &["-v"][..],
            &["-q"],
            &["--check-eh"],
            &["--color", "always"],
        ] {
            assert_eq!(base.fingerprint(), plan(argv).fingerprint(), "{argv:?}");
        }
        for argv in [&["--dev"][..], &["--no-opt"], &["--lib"], &["--unwind"]] {
            assert_ne!(base.fingerprint(), plan(argv).fingerprint(), "{argv:?}");
        }
    }

    #[test]
    fn the_target_dir_is_decided_once_for_the_plan_and_cargo() {
        let p = plan(&["--target-dir", "t"]);
        assert_eq!(p.package.target_dir, PathBuf::from("/work/t"));
        let a = cargo_args(&p);
        let t = a.iter().position(|x| x == "--target-dir").unwrap();
        assert_eq!(a[t + 1], "/work/t");
        assert_eq!(
            plan(&[]).package.target_dir,
            PathBuf::from("/p/hello/target")
        );
    }

    #[test]
    fn no_opt_compiles_with_the_profile_of_the_optimised_build() {
        let line_tables = |p: &Plan| {
            cargo_args(p)
                .iter()
                .any(|a| a == "profile.release.debug=\"line-tables-only\"")
        };
        let optimised = plan(&[]);
        let no_opt = plan(&["--no-opt"]);
        assert!(line_tables(&optimised), "{:?}", cargo_args(&optimised));
        assert!(line_tables(&no_opt), "{:?}", cargo_args(&no_opt));
        assert!(
            !no_opt.bindgen_args.contains(&"--keep-debug".to_string()),
            "no wasm-opt to take the DWARF out: wasm-bindgen drops it"
        );
        assert!(!cargo_args(&plan(&["--dev", "--no-opt"]))
            .iter()
            .any(|a| a.contains("line-tables-only")));
        // A wasm-opt setting an optimised build refuses: --no-opt still builds, as before.
        let mut bad = package("0.2.130");
        bad.metadata =
            serde_json::json!({"worker-build": {"profile": {"release": {"wasm-opt": "fast"}}}});
        let a = args(&["--no-opt"]);
        let tc = Toolchain {
            name: "stable".into(),
            source: Source::Default,
        };
        assert!(resolve(&a, bad.clone(), tc.clone(), &test_env()).is_ok());
        assert!(resolve(&args(&[]), bad, tc, &test_env()).is_err());
    }

    #[test]
    fn profiles_map_to_cargo_flags() {
        let dev = plan(&["--dev"]);
        assert_eq!(dev.profile, "dev");
        let a = cargo_args(&dev);
        assert!(!a.contains(&"--release".to_string()) && !a.contains(&"--profile".to_string()));
        assert!(dev.bindgen_args.contains(&"--debug".to_string()));
        assert!(
            !dev.bindgen_args.contains(&"--keep-debug".to_string()),
            "DWARF stays out of a dev module unless asked for"
        );
        let custom = plan(&["--profile", "small"]);
        let a = cargo_args(&custom);
        let i = a.iter().position(|x| x == "--profile").unwrap();
        assert_eq!(a[i + 1], "small");
    }

    #[test]
    fn cargo_conventions_pass_through() {
        let p = plan(&[
            "--features",
            "a,b",
            "--no-default-features",
            "--all-features",
            "--locked",
            "--offline",
            "--frozen",
            "--target-dir",
            "t",
            "-q",
            "--",
            "--timings",
            "-j1",
        ]);
        let a = cargo_args(&p);
        for flag in [
            "--no-default-features",
            "--all-features",
            "--locked",
            "--offline",
            "--frozen",
            "-q",
            "--timings",
            "-j1",
        ] {
            assert!(a.contains(&flag.to_string()), "{flag} missing from {a:?}");
        }
        let f = a.iter().position(|x| x == "--features").unwrap();
        assert_eq!(a[f + 1], "a,b");
        let t = a.iter().position(|x| x == "--target-dir").unwrap();
        assert_eq!(a[t + 1], "/work/t");
        // Arguments after -- come last, verbatim.
        assert_eq!(&a[a.len() - 2..], ["--timings", "-j1"]);
        assert!(p.offline);
    }

    #[test]
    fn cargo_reads_artifacts_as_json_and_builds_only_the_library_for_wasm() {
        let a = cargo_args(&plan(&[]));
        assert_eq!(
            &a[..6],
            [
                "build",
                "--lib",
                "--target",
                "wasm32-unknown-unknown",
                "--message-format",
                "json"
            ]
        );
        let m = a.iter().position(|x| x == "--manifest-path").unwrap();
        assert_eq!(a[m + 1], "/p/hello/Cargo.toml");
    }

    #[test]
    fn verbosity_levels() {
        assert!(
            !cargo_args(&plan(&["-v"])).contains(&"-v".to_string()),
            "-v prints our plan only"
        );
        assert!(cargo_args(&plan(&["-vv"])).contains(&"-v".to_string()));
    }

    #[test]
    fn out_dir_is_relative_to_the_current_directory() {
        assert_eq!(
            plan(&["--out-dir", "dist"]).out_dir,
            PathBuf::from("/work/dist")
        );
        assert_eq!(
            plan(&["--out-dir", "/abs/dist"]).out_dir,
            PathBuf::from("/abs/dist")
        );
    }

    #[test]
    fn old_wasm_bindgen_is_refused_for_unwind_naming_the_line() {
        let a = args(&["--unwind"]);
        let tc = Toolchain {
            name: toolchain::DEFAULT_NIGHTLY.into(),
            source: Source::Default,
        };
        let env = test_env();
        let err = resolve(&a, package("0.2.126"), tc.clone(), &env).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("wasm-bindgen 0.2.126"), "{msg}");
        assert!(msg.contains("wasm-bindgen = \"=0.2.130\""), "{msg}");
        assert!(msg.contains("/p/hello/Cargo.toml"), "{msg}");
        // 0.2.126 is fine without unwinding.
        let abort = args(&[]);
        assert!(resolve(&abort, package("0.2.126"), tc.clone(), &env).is_ok());
        let err = resolve(&abort, package("0.2.100"), tc, &env).unwrap_err();
        assert_eq!(
            err.downcast_ref::<crate::errors::Problem>().unwrap().code,
            Code::BindgenTooOld
        );
    }

    /// What a plan does, for comparing two spellings of the same build.
    fn outline(p: &Plan) -> String {
        format!(
            "{:?} {} {:?} {:?} {:?} {:?} {:?} {}",
            p.mode,
            p.profile,
            cargo_args(p),
            encoded_rustflags(p),
            p.bindgen_args,
            p.opt,
            p.minify,
            p.out_dir.display()
        )
    }

    #[test]
    fn worker_build_spellings_plan_the_same_build_as_ours() {
        for (theirs, ours) in [
            (
                &["--release", "--panic-unwind"][..],
                &["--release", "--unwind"][..],
            ),
            (&["--debug"], &["--dev"]),
            (&["--dev", "--panic-unwind"], &["--dev", "--unwind"]),
            (&["--profile", "small"], &["--profile", "small"]),
            (&["-d", "dist"], &["-o", "dist"]),
            (&["--out-dir", "dist"], &["-o", "dist"]),
            (&["--no-optimization"], &["--no-opt"]),
            (&["--release", "--no-typescript"], &["--release"]),
            (&["--target", "module", "--out-name", "index"], &[]),
        ] {
            assert_eq!(
                outline(&plan(theirs)),
                outline(&plan(ours)),
                "{theirs:?} vs {ours:?}"
            );
        }
    }

    #[test]
    fn worker_build_profiles_mean_what_they_meant_there() {
        // worker-build: --release (its default) is cargo --release with wasm-opt; --dev is the
        // dev profile without wasm-opt and with wasm-bindgen's --debug glue; --profile NAME
        // is cargo --profile NAME with wasm-opt.
        let release = plan(&["--release"]);
        assert!(cargo_args(&release).contains(&"--release".to_string()));
        assert!(release.opt.args.is_some());
        let dev = plan(&["--dev"]);
        assert_eq!(dev.opt.args, None);
        assert!(dev.bindgen_args.contains(&"--debug".to_string()));
        let custom = plan(&["--profile", "small"]);
        assert!(custom.opt.args.is_some());
        assert!(!cargo_args(&custom).contains(&"--release".to_string()));
        let no_opt = plan(&["--release", "--no-opt"]);
        assert_eq!(no_opt.opt.args, None);
        assert!(cargo_args(&no_opt).contains(&"--release".to_string()));
    }

    #[test]
    fn no_minify_from_the_environment_reaches_the_plan() {
        let a = args(&["--release"]);
        let env = Env {
            no_minify: true,
            ..test_env()
        };
        let tc = Toolchain {
            name: "stable".into(),
            source: Source::Default,
        };
        let p = resolve(&a, package("0.2.130"), tc, &env).unwrap();
        assert!(!p.minify.enabled);
        assert_eq!(p.minify.source, "NO_MINIFY");
        assert!(p.opt.args.is_some(), "NO_MINIFY leaves wasm-opt alone");
    }

    #[test]
    fn check_eh_expectation_follows_the_mode() {
        assert_eq!(
            plan(&["--unwind", "--check-eh"]).check.unwrap().expect,
            Expect::Unwind
        );
        assert_eq!(plan(&["--check-eh"]).check.unwrap().expect, Expect::Abort);
        assert_eq!(
            plan(&["--check-eh", "--expect", "unwind"])
                .check
                .unwrap()
                .expect,
            Expect::Unwind
        );
        assert!(plan(&[]).check.is_none());
    }

    #[test]
    fn wasm_bindgen_settings_follow_worker_build_then_wasm_pack_then_defaults() {
        use serde_json::json;
        let none = serde_json::Value::Null;
        assert_eq!(bindgen_profile_args("dev", &none).unwrap(), ["--debug"]);
        assert!(bindgen_profile_args("release", &none).unwrap().is_empty());
        let wasm_pack = json!({"wasm-pack": {"profile": {"dev": {"wasm-bindgen": {
            "dwarf-debug-info": true, "debug-js-glue": false, "demangle-name-section": false}}}}});
        assert_eq!(
            bindgen_profile_args("dev", &wasm_pack).unwrap(),
            ["--no-demangle", "--keep-debug"]
        );
        let both = json!({
            "worker-build": {"profile": {"dev": {"wasm-bindgen": {"dwarf-debug-info": false}}}},
            "wasm-pack": {"profile": {"dev": {"wasm-bindgen": {"dwarf-debug-info": true}}}},
        });
        assert_eq!(bindgen_profile_args("dev", &both).unwrap(), ["--debug"]);
        let bad = json!({"wasm-pack": {"profile": {"release": {"wasm-bindgen": {"dwarf-debug-info": "yes"}}}}});
        let err = bindgen_profile_args("release", &bad)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "package.metadata.wasm-pack.profile.release.wasm-bindgen.dwarf-debug-info"
            ),
            "{err}"
        );
        assert!(err.contains("dwarf-debug-info = false"), "{err}");
        // A custom profile falls back to wasm-pack's `custom` table, as worker-build reads it.
        let custom = json!({"wasm-pack": {"profile": {"custom": {"wasm-bindgen": {"debug-js-glue": true}}}}});
        assert_eq!(bindgen_profile_args("small", &custom).unwrap(), ["--debug"]);
        assert!(bindgen_profile_args("release", &custom).unwrap().is_empty());
    }

    #[test]
    fn the_log_format_comes_from_the_flag_then_cargo_toml_then_text() {
        let json = serde_json::json!({"worker-build": {"log-format": "json"}});
        let from = |flag, metadata: &serde_json::Value| log_plan(flag, metadata).unwrap();
        assert_eq!(from(None, &serde_json::Value::Null).format, LogFormat::Text);
        let manifest = from(None, &json);
        assert_eq!(manifest.format, LogFormat::Json);
        assert_eq!(manifest.source, "package.metadata.worker-build.log-format");
        assert_eq!(from(Some(LogFormat::Text), &json).format, LogFormat::Text);
        let bad = serde_json::json!({"worker-build": {"log-format": "yaml"}});
        let err = format!("{:#}", log_plan(None, &bad).unwrap_err());
        assert!(
            err.contains("log-format` in Cargo.toml must be \"text\" or \"json\", not `\"yaml\"`"),
            "{err}"
        );
    }
}
