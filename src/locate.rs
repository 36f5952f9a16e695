//! The tools a build runs besides cargo: wasm-bindgen, wasm-opt, esbuild, and sccache when the
//! compile cache is on. They are found once, while planning, in one search order: the tool's
//! environment variable, then PATH (when the version there fits), then the tool cache, else
//! the build installs it into the tool cache first. The Plan records each one (path, version,
//! where it came from) or why it is unavailable and whether the build stops for that.
//! `cargo worker-build tools` ([`crate::tools`]) prints the same section, so it never names
//! another binary than the one a build runs.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Result;
use semver::Version;

use crate::compat::ToolVar;
use crate::errors::{problem, Code};
use crate::process::{which, Cmd};
use crate::term::Shell;
use crate::{bindgen, toolcache};

/// Every tool a build runs besides cargo, as the plan resolved them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Tools {
    pub wasm_bindgen: Tool,
    pub wasm_opt: Tool,
    pub esbuild: Tool,
    /// Present when the compile cache is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sccache: Option<Tool>,
}

/// Which tool a [`Tool`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    WasmBindgen,
    WasmOpt,
    Esbuild,
    Sccache,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::WasmBindgen => "wasm-bindgen",
            Kind::WasmOpt => "wasm-opt",
            Kind::Esbuild => "esbuild",
            Kind::Sccache => "sccache",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Tool {
    pub name: Kind,
    /// The version the build needs (`0.2.130`, `119+`).
    pub needed: String,
    #[serde(flatten)]
    pub status: Status,
    /// What planning passed over or noticed, printed before the build.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Message>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Status {
    /// Ready to run: `path` (with `script` for a JavaScript build run by node).
    Found {
        path: PathBuf,
        #[serde(skip_serializing_if = "Option::is_none")]
        script: Option<PathBuf>,
        version: String,
        /// The environment variable, `PATH` or `tool cache`.
        origin: String,
    },
    /// Not here yet: the build installs it there first.
    Install {
        path: PathBuf,
        #[serde(skip_serializing_if = "Option::is_none")]
        script: Option<PathBuf>,
        version: String,
        /// What is installed: `cargo install wasm-bindgen-cli`, `npm binaryen@132.0.0`.
        from: String,
    },
    /// This build does not run it.
    NotUsed { why: String },
    /// It cannot be had here. `fatal`: the build stops before it starts; otherwise it goes on
    /// without this step (and says so).
    Unavailable {
        #[serde(serialize_with = "code_str")]
        code: Code,
        reason: String,
        fix: String,
        fatal: bool,
    },
}

fn code_str<S: serde::Serializer>(code: &Code, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(code.as_str())
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Message {
    pub level: Level,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Warn,
    Note,
    Verbose,
}

const INSTALLED: &str = "tool cache (installed now)";

/// A tool ready to run, once the build has installed what the plan said it would.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Ready {
    pub program: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script: Option<PathBuf>,
    pub version: String,
    pub origin: String,
}

impl Ready {
    /// Where it came from, as the `tool` JSON message names it: `env`, `path`, `cache` or
    /// `installed`.
    pub fn origin_kind(&self) -> &'static str {
        match self.origin.as_str() {
            "PATH" => "path",
            INSTALLED => "installed",
            o if o.starts_with("tool cache") => "cache",
            _ => "env",
        }
    }

    /// As the optimiser runs it.
    pub fn into_wasm_opt(self) -> crate::opt::WasmOpt {
        crate::opt::WasmOpt {
            version: self.version.parse().unwrap_or(0),
            program: self.program,
            script: self.script,
            origin: self.origin,
        }
    }

    /// As the bundler runs it.
    pub fn into_esbuild(self) -> crate::minify::Esbuild {
        crate::minify::Esbuild {
            program: self.program,
            origin: self.origin,
        }
    }
}

impl Tool {
    fn new(name: Kind, needed: impl Into<String>, status: Status) -> Tool {
        Tool {
            name,
            needed: needed.into(),
            status,
            messages: Vec::new(),
        }
    }

    fn with_messages(mut self, messages: Vec<Message>) -> Tool {
        self.messages = messages;
        self
    }

    /// The path and version the build runs, once installed: what the freshness key hashes.
    pub fn identity(&self) -> Option<(&Path, Option<&Path>, &str)> {
        match &self.status {
            Status::Found {
                path,
                script,
                version,
                ..
            }
            | Status::Install {
                path,
                script,
                version,
                ..
            } => Some((path, script.as_deref(), version)),
            Status::NotUsed { .. } | Status::Unavailable { .. } => None,
        }
    }

    /// The error a fatal unavailability is, before anything runs.
    pub fn fatal(&self) -> Option<anyhow::Error> {
        match &self.status {
            Status::Unavailable {
                code,
                reason,
                fix,
                fatal: true,
            } => Some(problem(*code, reason.clone(), fix.clone())),
            _ => None,
        }
    }

    /// One line for `-v`: `wasm-opt 132 /path (WASM_OPT)`, `esbuild 0.28.2: installed by the
    /// build (npm esbuild@0.28.2)`, ...
    pub fn describe(&self) -> String {
        let name = self.name.as_str();
        match &self.status {
            Status::Found {
                path,
                script,
                version,
                origin,
            } => format!(
                "{name} {version} {}{} ({origin})",
                path.display(),
                script
                    .as_ref()
                    .map(|s| format!(" {}", s.display()))
                    .unwrap_or_default()
            ),
            Status::Install { version, from, .. } => {
                format!("{name} {version}: installed by the build ({from})")
            }
            Status::NotUsed { why } => format!("{name}: not used ({why})"),
            Status::Unavailable { reason, fatal, .. } => format!(
                "{name}: unavailable{} ({reason})",
                if *fatal { ", the build fails" } else { "" }
            ),
        }
    }

    pub fn print_messages(&self, shell: &Shell) {
        for m in &self.messages {
            match m.level {
                Level::Warn => shell.warn(&m.text),
                Level::Note => shell.note(&m.text),
                Level::Verbose => shell.verbose("Ignoring", &m.text),
            }
        }
    }
}

impl Tools {
    pub fn all(&self) -> impl Iterator<Item = &Tool> {
        [&self.wasm_bindgen, &self.wasm_opt, &self.esbuild]
            .into_iter()
            .chain(self.sccache.as_ref())
    }

    /// The first tool the build cannot go without, as the error it stops with.
    pub fn fatal(&self) -> Option<anyhow::Error> {
        self.all().find_map(Tool::fatal)
    }
}

/// What the tool search depends on besides the environment.
pub struct Needs<'a> {
    /// The wasm-bindgen version in Cargo.lock: the CLI must be exactly that.
    pub wasm_bindgen: &'a Version,
    /// The optimisation the plan asks for.
    pub opt: &'a crate::opt::OptPlan,
    pub offline: bool,
    pub cache: &'a crate::cache::CachePlan,
}

/// Find every tool the build runs. `var` reads the environment.
pub fn resolve(needs: &Needs, var: &dyn Fn(&str) -> Option<OsString>) -> Tools {
    Tools {
        wasm_bindgen: wasm_bindgen(needs.wasm_bindgen, needs.offline, var),
        wasm_opt: wasm_opt(needs.opt, needs.offline, var),
        esbuild: esbuild(needs.offline, var),
        sccache: sccache(needs.cache),
    }
}

fn exe(name: &str) -> String {
    format!("{name}{}", std::env::consts::EXE_SUFFIX)
}

/// The variable's tool, with a note when worker-build's variable names another one.
fn from_env(
    tool: ToolVar,
    var: &dyn Fn(&str) -> Option<OsString>,
    messages: &mut Vec<Message>,
) -> Option<crate::compat::ToolOverride> {
    let found = tool.lookup(var)?;
    if let Some((name, value)) = &found.ignored {
        messages.push(Message {
            level: Level::Note,
            text: format!(
                "{}={} and {name}={} differ; using {} (unset one of them to silence this)",
                tool.ours,
                found.path.display(),
                PathBuf::from(value).display(),
                tool.ours
            ),
        });
    }
    Some(found)
}

fn found(path: PathBuf, script: Option<PathBuf>, version: String, origin: &str) -> Status {
    Status::Found {
        path,
        script,
        version,
        origin: origin.to_string(),
    }
}

/// What the tool cache holds in `dir`, whose `program` the build runs: used only as installed.
fn in_cache(dir: &Path, program: &Path) -> toolcache::Cached {
    match toolcache::check(dir) {
        toolcache::Cached::Intact if !program.is_file() => toolcache::Cached::Changed(
            program
                .strip_prefix(dir)
                .unwrap_or(program)
                .display()
                .to_string(),
        ),
        state => state,
    }
}

fn changed(tool: &str, version: &str, dir: &Path, file: &str) -> String {
    format!(
        "{tool} {version} in the tool cache ({}) is not as it was installed ({file} differs from the SHA-256 recorded then), and --offline forbids installing it again",
        dir.display()
    )
}

/// Why a cached tool is installed again, for the plan's `from`.
fn again(state: &toolcache::Cached) -> String {
    match state {
        toolcache::Cached::Changed(file) => {
            format!(", again: the cached {file} is not as it was installed")
        }
        _ => String::new(),
    }
}

fn wasm_bindgen(version: &Version, offline: bool, var: &dyn Fn(&str) -> Option<OsString>) -> Tool {
    let wanted = version.to_string();
    let mut messages = Vec::new();
    let tool = |status| Tool::new(Kind::WasmBindgen, wanted.clone(), status);
    if let Some(env) = from_env(crate::compat::WASM_BINDGEN, var, &mut messages) {
        let got = bindgen::version_of(&env.path);
        let status = if got.as_ref() == Some(version) {
            found(env.path, None, wanted.clone(), env.var)
        } else {
            Status::Unavailable {
                code: Code::BindgenWrongVersion,
                reason: format!(
                    "{}={} is {}, but Cargo.lock resolves wasm-bindgen {wanted} and the CLI must match exactly",
                    env.var,
                    env.path.display(),
                    got.map_or("not a runnable wasm-bindgen".to_string(), |v| format!("wasm-bindgen {v}"))
                ),
                fix: format!("point {} at wasm-bindgen {wanted}, or unset it to let the tool install it", env.var),
                fatal: true,
            }
        };
        return tool(status).with_messages(messages);
    }
    if let Some(path) = which(&exe("wasm-bindgen")) {
        match bindgen::version_of(&path) {
            Some(v) if v == *version => {
                return tool(found(path, None, wanted.clone(), "PATH")).with_messages(messages)
            }
            other => messages.push(Message {
                level: Level::Verbose,
                text: format!(
                    "{} ({}), not {wanted}",
                    path.display(),
                    other.map_or("unknown version".to_string(), |v| format!(
                        "wasm-bindgen {v}"
                    ))
                ),
            }),
        }
    }
    let cached = bindgen::cached_binary(version);
    let dir = toolcache::dir("wasm-bindgen", &wanted);
    let status = match in_cache(&dir, &cached) {
        toolcache::Cached::Intact => {
            // Which Cargo.lock built it, as its install wrote down (none before the tool did).
            let origin = match std::fs::read_to_string(dir.join(bindgen::LOCK_NOTE)) {
                Ok(lock) => format!("tool cache, built with {}", lock.trim()),
                // Installed by a release that did not write it down (maybe unlocked).
                Err(_) => "tool cache, lock not recorded".to_string(),
            };
            found(cached, None, wanted.clone(), &origin)
        }
        toolcache::Cached::Absent if offline => Status::Unavailable {
            code: Code::OfflineMissingTool,
            reason: format!(
                "wasm-bindgen {wanted} is not installed, and --offline forbids installing it"
            ),
            // The install is the tool's own (the crate's source with the Cargo.lock it ships,
            // --locked): a bare `cargo install` would not reproduce it, and may not resolve.
            fix: format!(
                "build once without --offline (it installs wasm-bindgen {wanted} into {} from the Cargo.lock this tool ships), or set WASM_BINDGEN to a wasm-bindgen {wanted} binary",
                dir.display()
            ),
            fatal: true,
        },
        toolcache::Cached::Changed(file) if offline => Status::Unavailable {
            code: Code::OfflineMissingTool,
            reason: changed("wasm-bindgen", &wanted, &dir, &file),
            fix: format!("build once without --offline (the tool installs it again), or set WASM_BINDGEN to a wasm-bindgen {wanted} binary"),
            fatal: true,
        },
        state => Status::Install {
            path: cached,
            script: None,
            version: wanted.clone(),
            from: format!(
                "cargo install wasm-bindgen-cli --version ={wanted} --locked, with {}{}",
                bindgen::lock_used(version),
                again(&state)
            ),
        },
    };
    tool(status).with_messages(messages)
}

fn wasm_opt(
    opt: &crate::opt::OptPlan,
    offline: bool,
    var: &dyn Fn(&str) -> Option<OsString>,
) -> Tool {
    use crate::opt::{BINARYEN_VERSION, MIN_WASM_OPT};
    let needed = format!("{MIN_WASM_OPT}+");
    if opt.args.is_none() {
        return Tool::new(
            Kind::WasmOpt,
            needed,
            Status::NotUsed {
                why: format!("no optimisation ({})", opt.source),
            },
        );
    }
    let mut messages = Vec::new();
    let tool = |status| Tool::new(Kind::WasmOpt, needed.clone(), status);
    if let Some(env) = from_env(crate::compat::WASM_OPT, var, &mut messages) {
        let status = match crate::opt::version_of(&Cmd::new(&env.path)) {
            Some(v) if v >= MIN_WASM_OPT => found(env.path, None, v.to_string(), env.var),
            got => Status::Unavailable {
                code: Code::WasmOptTooOld,
                reason: format!(
                    "{}={} is {}; Binaryen {MIN_WASM_OPT} or newer is needed, older versions reject or corrupt modules with exception handling",
                    env.var,
                    env.path.display(),
                    got.map_or("not a runnable wasm-opt".to_string(), |v| format!("wasm-opt version {v}"))
                ),
                fix: format!("point {} at Binaryen {MIN_WASM_OPT}+ or unset it (the tool then installs npm binaryen@{BINARYEN_VERSION}), or pass --no-opt", env.var),
                fatal: true,
            },
        };
        return tool(status).with_messages(messages);
    }
    if let Some(path) = which(&exe("wasm-opt")) {
        match crate::opt::version_of(&Cmd::new(&path)) {
            Some(v) if v >= MIN_WASM_OPT => {
                return tool(found(path, None, v.to_string(), "PATH")).with_messages(messages)
            }
            got => messages.push(Message {
                level: Level::Warn,
                text: format!(
                    "ignoring {} ({}): Binaryen {MIN_WASM_OPT} or newer is needed for exception handling; using npm binaryen@{BINARYEN_VERSION} instead",
                    path.display(),
                    got.map_or("unknown version".to_string(), |v| format!("version {v}"))
                ),
            }),
        }
    }
    // npm's binaryen is Binaryen compiled to JavaScript: node runs it.
    let version = BINARYEN_VERSION
        .split('.')
        .next()
        .unwrap_or(BINARYEN_VERSION)
        .to_string();
    let script = crate::opt::npm_script(&toolcache::dir("binaryen", BINARYEN_VERSION));
    let node = which(&exe("node"));
    let dir = toolcache::dir("binaryen", BINARYEN_VERSION);
    let state = in_cache(&dir, &script);
    let status = match node {
        Some(node) if state == toolcache::Cached::Intact => {
            found(node, Some(script), version, "tool cache (npm binaryen)")
        }
        Some(node) if !offline && which(&exe("npm")).is_some() => Status::Install {
            path: node,
            script: Some(script),
            version,
            from: format!("npm binaryen@{BINARYEN_VERSION}{}", again(&state)),
        },
        node => {
            let (reason, fix) = if let (Some(_), true, toolcache::Cached::Changed(file)) =
                (&node, offline, &state)
            {
                (
                    changed("npm binaryen", BINARYEN_VERSION, &dir, file),
                    "build once without --offline (the tool installs it again), set WASM_OPT, or pass --no-opt".to_string(),
                )
            } else if node.is_some() && offline {
                (
                    format!("no wasm-opt {MIN_WASM_OPT}+ on PATH, and npm binaryen@{BINARYEN_VERSION} is not in the tool cache (--offline forbids installing it)"),
                    "build once online, set WASM_OPT, or pass --no-opt".to_string(),
                )
            } else if node.is_some() {
                (
                    format!("no wasm-opt {MIN_WASM_OPT}+ on PATH, and no npm to install npm binaryen@{BINARYEN_VERSION}"),
                    "install npm, set WASM_OPT to a Binaryen 119+ wasm-opt, or pass --no-opt".to_string(),
                )
            } else {
                (
                    format!("no wasm-opt {MIN_WASM_OPT}+ and no node to run npm binaryen"),
                    "install Node.js or set WASM_OPT, or pass --no-opt".to_string(),
                )
            };
            if opt.required {
                Status::Unavailable {
                    code: Code::WasmOptUnavailable,
                    reason: format!("optimisation was asked for ({}), but no wasm-opt {MIN_WASM_OPT}+ is available and npm binaryen cannot be installed here", opt.source),
                    fix: format!("install Node.js (the tool then installs binaryen@{BINARYEN_VERSION} once), set WASM_OPT to a Binaryen {MIN_WASM_OPT}+ wasm-opt, or pass --no-opt"),
                    fatal: true,
                }
            } else {
                Status::Unavailable {
                    code: Code::WasmOptUnavailable,
                    reason,
                    fix,
                    fatal: false,
                }
            }
        }
    };
    tool(status).with_messages(messages)
}

fn esbuild(offline: bool, var: &dyn Fn(&str) -> Option<OsString>) -> Tool {
    use crate::minify::ESBUILD_VERSION;
    let mut messages = Vec::new();
    let tool = |status| Tool::new(Kind::Esbuild, ESBUILD_VERSION, status);
    if let Some(env) = from_env(crate::compat::ESBUILD, var, &mut messages) {
        let status = match Cmd::new(&env.path).arg("--version").read() {
            Ok(v) => found(env.path, None, v.trim().to_string(), env.var),
            Err(e) => Status::Unavailable {
                code: Code::BundleFailed,
                reason: format!("{}={} is not a runnable esbuild ({e})", env.var, env.path.display()),
                fix: format!("point {} at an esbuild binary or unset it (the tool then installs npm esbuild@{ESBUILD_VERSION}), then build again", env.var),
                fatal: true,
            },
        };
        return tool(status).with_messages(messages);
    }
    // The bundle is written with exactly the esbuild the tool was tested with: one on PATH
    // serves only when it is that version.
    if let Some(path) = which(&exe("esbuild")) {
        match Cmd::new(&path).arg("--version").read() {
            Ok(v) if v.trim() == ESBUILD_VERSION => {
                return tool(found(path, None, ESBUILD_VERSION.into(), "PATH"))
                    .with_messages(messages)
            }
            got => messages.push(Message {
                level: Level::Verbose,
                text: format!(
                    "{} ({}), not esbuild {ESBUILD_VERSION}",
                    path.display(),
                    got.map_or("unknown version".to_string(), |v| format!(
                        "esbuild {}",
                        v.trim()
                    ))
                ),
            }),
        }
    }
    let dir = toolcache::dir("esbuild", ESBUILD_VERSION);
    let program = crate::minify::binary(&dir);
    let install = format!(
        "npm install --prefix {} esbuild@{ESBUILD_VERSION}",
        crate::process::shell_quote(&dir.display().to_string())
    );
    let state = in_cache(&dir, &program);
    let status = if state == toolcache::Cached::Intact {
        found(
            program,
            None,
            ESBUILD_VERSION.into(),
            "tool cache (npm esbuild)",
        )
    } else if let (true, toolcache::Cached::Changed(file)) = (offline, &state) {
        Status::Unavailable {
            code: Code::OfflineMissingTool,
            reason: changed("esbuild", ESBUILD_VERSION, &dir, file),
            fix: "build once without --offline (the tool installs it again), or set ESBUILD to an esbuild binary".into(),
            fatal: true,
        }
    } else if offline {
        Status::Unavailable {
            code: Code::OfflineMissingTool,
            reason: format!("esbuild {ESBUILD_VERSION} (which writes the bundle) is not in the tool cache, and --offline forbids installing it"),
            fix: format!("run `{install}` while online (or build once without --offline), or set ESBUILD to an esbuild binary"),
            fatal: true,
        }
    } else if which(&exe("npm")).is_none() {
        Status::Unavailable {
            code: Code::EsbuildUnavailable,
            reason: format!("esbuild {ESBUILD_VERSION} writes the bundle, but there is no npm on PATH to install it"),
            fix: format!("install Node.js with npm (the tool then runs `{install}` once), or set ESBUILD to an esbuild binary"),
            fatal: true,
        }
    } else {
        Status::Install {
            path: program,
            script: None,
            version: ESBUILD_VERSION.into(),
            from: format!("npm esbuild@{ESBUILD_VERSION}{}", again(&state)),
        }
    };
    tool(status).with_messages(messages)
}

/// sccache, when the compile cache is on: the cache plan found it (in its own order: the
/// user's wrapper, then PATH), this adds its version.
fn sccache(cache: &crate::cache::CachePlan) -> Option<Tool> {
    let path = cache.sccache.clone()?;
    // A wrapper named in cargo's configuration may be the project's own program: only cargo
    // runs it, when it compiles, so planning (and `--dry-run`, `tools`) never does.
    let version = if cache.origin.as_deref() == Some(crate::cache::CONFIG_WRAPPER) {
        crate::cache::NOT_RUN.to_string()
    } else {
        Cmd::new(&path)
            .arg("--version")
            .read()
            .ok()
            .and_then(|v| v.split_whitespace().nth(1).map(str::to_string))
            .unwrap_or_else(|| "unknown".into())
    };
    Some(Tool::new(
        Kind::Sccache,
        format!("{}+", crate::cache::SCCACHE_VERSION),
        found(
            path,
            None,
            version,
            cache.origin.as_deref().unwrap_or("PATH"),
        ),
    ))
}

/// Keep the cached version of `kind` the build runs from being removed until it ends.
fn hold(kind: Kind, version: &str) {
    match kind {
        Kind::WasmBindgen => toolcache::hold("wasm-bindgen", version),
        Kind::WasmOpt => toolcache::hold("binaryen", crate::opt::BINARYEN_VERSION),
        Kind::Esbuild => toolcache::hold("esbuild", crate::minify::ESBUILD_VERSION),
        Kind::Sccache => {}
    }
}

/// Make `tool` ready to run, installing it where the plan said. `Ok(None)`: unavailable and
/// not fatal (the caller goes on without it).
pub fn ensure(
    tool: &Tool,
    cache: Option<&crate::cache::Session>,
    shell: &Shell,
) -> Result<Option<Ready>> {
    match &tool.status {
        Status::Found {
            path,
            script,
            version,
            origin,
        } => Ok(Some({
            if origin.starts_with("tool cache") {
                hold(tool.name, version);
            }
            Ready {
                program: path.clone(),
                script: script.clone(),
                version: version.clone(),
                origin: origin.clone(),
            }
        })),
        Status::Install {
            path,
            script,
            version,
            ..
        } => {
            match tool.name {
                Kind::WasmBindgen => {
                    let v = Version::parse(version)?;
                    toolcache::install_once("wasm-bindgen", version, |staging| {
                        bindgen::install(&v, staging, cache, shell)
                    })?;
                }
                Kind::WasmOpt => {
                    toolcache::install_npm(
                        "binaryen",
                        crate::opt::BINARYEN_VERSION,
                        false,
                        Code::WasmOptFailed,
                        "fix what npm reports below, set WASM_OPT to a Binaryen 119+ wasm-opt, or pass --no-opt",
                        shell,
                    )?;
                }
                Kind::Esbuild => {
                    toolcache::install_npm(
                        "esbuild",
                        version,
                        false,
                        Code::BundleFailed,
                        "fix what npm reports below, or set ESBUILD to an esbuild binary",
                        shell,
                    )?;
                }
                Kind::Sccache => anyhow::bail!("sccache is never installed by the tool"),
            }
            hold(tool.name, version);
            Ok(Some(Ready {
                program: path.clone(),
                script: script.clone(),
                version: version.clone(),
                origin: INSTALLED.into(),
            }))
        }
        Status::NotUsed { .. } => Ok(None),
        Status::Unavailable {
            fatal: true,
            code,
            reason,
            fix,
        } => Err(problem(*code, reason.clone(), fix.clone())),
        // Only wasm-opt can be missing without failing the build.
        Status::Unavailable {
            fatal: false,
            reason,
            fix,
            ..
        } => {
            shell.warn(format!(
                "the bundle is not optimised: {reason}; {fix} to silence this"
            ));
            Ok(None)
        }
    }
}
