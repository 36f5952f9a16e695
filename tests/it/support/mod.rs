//! Shared helpers for integration and end-to-end tests: where the fixtures and the shared
//! target dir are, how to run the binary under test, and a `workerd` harness with a tiny HTTP
//! client so a test can assert what a client of the built Worker sees.
//!
//! Every test module reaches it as `crate::support` (tests/it/main.rs declares it once);
//! benches/runtime_bench.rs includes it by path. Nothing here skips: a missing tool is a failure
//! that names the command to run.

// The test binary and the benchmark each use a different subset of these helpers.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The compatibility date every test worker runs with (verified in FACTS.md).
pub const COMPATIBILITY_DATE: &str = "2025-09-01";

/// How long one HTTP request may take before the test fails instead of hanging.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(20);

/// How long workerd may take to start listening.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The source directory of a fixture crate under `tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    let dir = repo_root().join("tests").join("fixtures").join(name);
    assert!(
        dir.join("Cargo.toml").is_file(),
        "no fixture crate at {}",
        dir.display()
    );
    dir
}

/// One target dir shared by every fixture build in every test, so std (and, for `--unwind`,
/// the build-std standard library) is compiled once.
pub fn fixtures_target_dir() -> PathBuf {
    repo_root().join("target").join("fixtures")
}

/// The three ways a crate can be built, as the end-to-end tests compare them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The default: stable toolchain, panic=abort, abort recovery.
    Abort,
    /// `--unwind` with the default (exnref) exception-handling encoding.
    Unwind,
    /// `--unwind --eh legacy`.
    UnwindLegacy,
}

impl Mode {
    pub fn args(self) -> &'static [&'static str] {
        match self {
            Mode::Abort => &[],
            Mode::Unwind => &["--unwind"],
            Mode::UnwindLegacy => &["--unwind", "--eh", "legacy"],
        }
    }
}

/// Fixture builds in one test binary run one at a time: they share a target dir (cargo would
/// serialise them on its lock anyway), and one build must not replace the `.wasm` another is
/// about to read.
pub static BUILD_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `cargo worker-build` in `mode` for the crate in `crate_dir`, writing to `out`, with the shared
/// fixtures target dir. Hold [`BUILD_LOCK`] while it runs.
pub fn build_command(crate_dir: &Path, out: &Path, mode: Mode) -> Command {
    let mut cmd = tool();
    cmd.args(mode.args())
        .arg("--manifest-path")
        .arg(crate_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(fixtures_target_dir())
        .arg("--out-dir")
        .arg(out);
    cmd
}

/// The JSON records of a `--message-format json` run: every line of `stdout` must be one JSON
/// value (the panic names the line and shows the whole output).
pub fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    let text = String::from_utf8_lossy(stdout);
    text.lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n--- stdout ---\n{text}"))
        })
        .collect()
}

/// The JSON record of `stdout` (see [`json_lines`]) whose `reason` is `reason`; panics, showing
/// the output, when there is none.
pub fn json_record(stdout: &[u8], reason: &str) -> serde_json::Value {
    json_lines(stdout)
        .into_iter()
        .find(|v| v["reason"] == reason)
        .unwrap_or_else(|| {
            panic!(
                "no `{reason}` record in the JSON output:\n{}",
                String::from_utf8_lossy(stdout)
            )
        })
}

/// Compares `actual` with the insta snapshot `tests/snapshots/<name>.snap`. After an intended
/// change, `INSTA_UPDATE=always cargo test --locked --test it -- <test>` rewrites the snapshot
/// (review it with `git diff`); on CI (`CI` set) a difference fails and nothing is written.
///
/// insta compares the text without its trailing whitespace and with CRLF read as LF, so the
/// text must also end in exactly one newline and hold no carriage return: the whole text is
/// checked, byte for byte, as the hand-written comparison before insta did.
#[track_caller]
pub fn assert_snapshot(name: &str, actual: &str) {
    assert!(
        actual.ends_with('\n') && !actual.ends_with("\n\n") && !actual.contains('\r'),
        "snapshot {name}: the text should end in exactly one newline and hold no carriage \
         return:\n{actual:?}"
    );
    insta::with_settings!({
        snapshot_path => "../../snapshots",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, actual);
    });
}

/// The `error:` lines the tool printed on stderr (cargo's own diagnostics are not ours to count).
pub fn error_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| is_tool_error(l))
        .map(str::to_string)
        .collect()
}

/// The tool's own error lines: `error: ...` or `error[code]: ...` with one of its lowercase
/// codes (rustc's `error[E0277]` lines are cargo's output, not ours).
pub fn is_tool_error(line: &str) -> bool {
    line.starts_with("error:")
        || line
            .strip_prefix("error[")
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_lowercase()))
}

/// The machine's tool cache (the one `./install.sh` fills), resolved as the tool resolves it,
/// for tests that hand a build one of its tools explicitly.
pub fn real_tool_cache() -> PathBuf {
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(dir) = non_empty("CARGO_WORKER_BUILD_CACHE") {
        return dir.into();
    }
    non_empty("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .expect("HOME is set")
        .join("cargo-worker-build")
}

/// Variables that pick the tools or the toolchain a build uses, ours and worker-build's. The
/// developer's or CI's own settings must not leak into a test; a test that wants one sets it.
pub const TOOL_VARIABLES: &[&str] = &[
    "WASM_BINDGEN",
    "WASM_BINDGEN_BIN",
    "WASM_OPT",
    "WASM_OPT_BIN",
    "ESBUILD",
    "ESBUILD_BIN",
    "NO_MINIFY",
    "RUSTUP_TOOLCHAIN",
    "RUSTUP_TOOLCHAIN_SOURCE",
];

/// The binary under test, hermetic: none of [`TOOL_VARIABLES`] reaches it from outside.
/// Builds run without a compile cache, so no test starts the machine's own sccache server or
/// fills its cache; tests/it/cache.rs turns it on with its own servers.
pub fn tool() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-worker-build"));
    for var in TOOL_VARIABLES {
        cmd.env_remove(var);
    }
    cmd.env("WORKER_BUILD_CACHE", "none");
    cmd
}

/// Runs `cmd` and returns its output; panics with the command line, exit status, stdout and
/// stderr when it fails.
pub fn run_ok(cmd: &mut Command) -> Output {
    let output = run(cmd);
    if !output.status.success() {
        panic!("{}", describe_output(cmd, &output));
    }
    output
}

/// Runs `cmd` to completion with captured stdout and stderr.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", command_line(cmd)))
}

/// A readable report of a finished command, for panic messages.
pub fn describe_output(cmd: &Command, output: &Output) -> String {
    format!(
        "`{}` exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        command_line(cmd),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    )
}

pub fn command_line(cmd: &Command) -> String {
    let mut line = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Copies a fixture crate into a fresh temporary directory (without `build/` and `target/`),
/// so tests that write bundles next to the crate do not race each other. Builds still pass
/// `--target-dir fixtures_target_dir()` to share compiled artifacts.
pub fn copy_fixture(name: &str) -> TempDir {
    let src = fixture(name);
    let dest = tempfile::Builder::new()
        .prefix(&format!("cwb-{name}-"))
        .tempdir()
        .expect("cannot create a temporary directory");
    copy_tree(&src, dest.path(), &|rel| {
        rel == Path::new("build") || rel == Path::new("target")
    });
    dest
}

/// Copies the directory tree `src` into `dest`, leaving out entries whose path relative to
/// `src` satisfies `skip`.
pub fn copy_tree(src: &Path, dest: &Path, skip: &dyn Fn(&Path) -> bool) {
    fn walk(root: &Path, dir: &Path, dest: &Path, skip: &dyn Fn(&Path) -> bool) {
        let entries =
            fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap();
            if skip(rel) {
                continue;
            }
            let to = dest.join(rel);
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                fs::create_dir_all(&to)
                    .unwrap_or_else(|e| panic!("cannot create {}: {e}", to.display()));
                walk(root, &path, dest, skip);
            } else {
                fs::copy(&path, &to).unwrap_or_else(|e| {
                    panic!("cannot copy {} to {}: {e}", path.display(), to.display())
                });
            }
        }
    }
    fs::create_dir_all(dest).unwrap_or_else(|e| panic!("cannot create {}: {e}", dest.display()));
    walk(src, src, dest, skip);
}

/// The workerd binary from the repository's npm install.
///
/// Prefers the platform package's real executable over `node_modules/.bin/workerd`: when npm
/// did not run workerd's postinstall script, `.bin/workerd` may be a Node wrapper, and killing
/// the wrapper by PID would leave the real server running.
pub fn workerd_bin() -> PathBuf {
    let root = repo_root();
    let platform = match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => Some("workerd-linux-64"),
        ("linux", "aarch64") => Some("workerd-linux-arm64"),
        ("macos", "x86_64") => Some("workerd-darwin-64"),
        ("macos", "aarch64") => Some("workerd-darwin-arm64"),
        _ => None,
    };
    let candidates: Vec<PathBuf> = platform
        .map(|p| {
            root.join("node_modules/@cloudflare")
                .join(p)
                .join("bin/workerd")
        })
        .into_iter()
        .chain(std::iter::once(root.join("node_modules/.bin/workerd")))
        .collect();
    for candidate in &candidates {
        if candidate.is_file() {
            return candidate.clone();
        }
    }
    panic!(
        "workerd is not installed: none of {} exists. Run `npm ci` in {} (package.json pins workerd).",
        candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        root.display()
    );
}

/// A `workerd serve` process running one bundle on 127.0.0.1. The process is killed (by PID)
/// when this value is dropped, also when the test panics.
pub struct Workerd {
    child: Child,
    port: u16,
    log: PathBuf,
    /// Holds the config, a snapshot of the bundle and the log; removed on drop.
    dir: TempDir,
}

impl Workerd {
    /// Serves the bundle in `bundle_dir`: `index.js` is the entry module, every other `.js`/
    /// `.mjs` file (`worker/shim.mjs`, any hand-written module) is an ES module and every `.wasm`
    /// file a Wasm module, each named by its path relative to the bundle, which is how workerd
    /// resolves import specifiers relative to the importing module (`../index.js` from
    /// `worker/shim.mjs` is `index.js`).
    ///
    /// The bundle is copied first, so a later rebuild does not change a running server.
    pub fn serve(bundle_dir: &Path) -> Workerd {
        Workerd::try_serve(bundle_dir).unwrap_or_else(|why| panic!("{why}"))
    }

    /// Like [`Workerd::serve`], but a bundle workerd refuses (it exits instead of listening) is an
    /// `Err` with workerd's output, for tests that expect some bundles not to load.
    pub fn try_serve(bundle_dir: &Path) -> Result<Workerd, String> {
        Workerd::try_serve_main(bundle_dir, "index.js")
    }

    /// Like [`Workerd::serve`] with `main` (a module of the bundle) as the main module, as a
    /// config written for worker-build does with `main = "build/worker/shim.mjs"`.
    pub fn serve_main(bundle_dir: &Path, main: &str) -> Workerd {
        Workerd::try_serve_main(bundle_dir, main).unwrap_or_else(|why| panic!("{why}"))
    }

    fn try_serve_main(bundle_dir: &Path, main: &str) -> Result<Workerd, String> {
        Workerd::try_serve_as(bundle_dir, Client::None { main })
    }

    /// Serves a JavaScript Worker `client` (its main module, on the port) that uses the bundle
    /// as [`Client`] says: importing a library build, or calling a Worker build over RPC.
    pub fn serve_client(bundle_dir: &Path, client: Client) -> Workerd {
        Workerd::try_serve_as(bundle_dir, client).unwrap_or_else(|why| panic!("{why}"))
    }

    fn try_serve_as(bundle_dir: &Path, how: Client) -> Result<Workerd, String> {
        let dir = tempfile::Builder::new()
            .prefix("cwb-workerd-")
            .tempdir()
            .expect("cannot create a temporary directory");
        let snapshot = dir.path().join("bundle");
        copy_tree(bundle_dir, &snapshot, &|_| false);
        if let Client::Imports(client) | Client::Rpc(client) = how {
            fs::copy(client, dir.path().join("client.js"))
                .unwrap_or_else(|e| panic!("cannot copy {}: {e}", client.display()));
        }
        Workerd::start(
            dir,
            |port| match how {
                Client::None { main } => workerd_config(&snapshot, "bundle", port, main),
                Client::Imports(_) | Client::Rpc(_) => client_config(&snapshot, port, &how),
            },
            true,
        )
        .map_err(|why| {
            format!(
                "workerd did not start serving {}: {why}",
                bundle_dir.display()
            )
        })
    }

    /// Starts `workerd serve` on the config `config(port)` writes into `dir` (which holds
    /// whatever the config embeds, and the log), on a free port of 127.0.0.1. The port is chosen
    /// free, then released for workerd; another process can take it in between, so a bind
    /// failure is retried on a new port. `verbose` adds workerd's `--verbose`. Every harness of
    /// the tests starts workerd here.
    pub fn start(
        dir: TempDir,
        config: impl Fn(u16) -> String,
        verbose: bool,
    ) -> Result<Workerd, String> {
        let config_path = dir.path().join("config.capnp");
        let log = dir.path().join("workerd.log");
        let mut last_failure = String::new();
        for _ in 0..3 {
            let port = free_port();
            fs::write(&config_path, config(port))
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", config_path.display()));
            let mut child = spawn_workerd(&config_path, &log, verbose);
            match wait_until_listening(&mut child, port) {
                Ok(()) => {
                    return Ok(Workerd {
                        child,
                        port,
                        log,
                        dir,
                    })
                }
                Err(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log_text = fs::read_to_string(&log).unwrap_or_default();
                    last_failure = format!(
                        "{why}\n--- config {} ---\n{}\n--- workerd output ---\n{log_text}",
                        config_path.display(),
                        fs::read_to_string(&config_path).unwrap_or_default()
                    );
                    if !log_text.contains("Address already in use") {
                        break;
                    }
                }
            }
        }
        Err(last_failure)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id of the running `workerd serve`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asserts that GET `path` answers `status` with exactly `body`, showing workerd's output
    /// when it does not.
    #[track_caller]
    pub fn expect(&self, path: &str, status: u16, body: &str) {
        let (got_status, got_body) = self.get(path);
        assert_eq!(
            (got_status, got_body.as_str()),
            (status, body),
            "GET {path}\n--- workerd output ---\n{}",
            self.log_contents()
        );
    }

    /// Sends a GET request and returns the status and body; panics on timeout.
    pub fn get(&self, path: &str) -> (u16, String) {
        self.request("GET", path)
    }

    /// Sends a request and returns the status and body. A failure (timeout, closed connection)
    /// panics with the path and workerd's output so far.
    pub fn request(&self, method: &str, path: &str) -> (u16, String) {
        try_http(self.port, method, path, HTTP_TIMEOUT)
            .unwrap_or_else(|why| panic!("{why}\n--- workerd output ---\n{}", self.log_contents()))
    }

    /// Everything workerd wrote to stdout and stderr so far (console output included).
    pub fn log_contents(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until workerd's output contains `needle` (output is written asynchronously);
    /// panics with the output so far when it does not appear within `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log_contents();
            if log.contains(needle) {
                return;
            }
            if Instant::now() > deadline {
                panic!("workerd's output has no {needle:?} after {timeout:?}:\n{log}");
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The directory holding the generated config and the bundle snapshot.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Workerd {
    fn drop(&mut self) {
        // Child::kill signals exactly this PID (SIGKILL); wait reaps it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a JavaScript Worker uses a bundle in [`Workerd::serve_client`].
#[derive(Clone, Copy)]
pub enum Client<'a> {
    /// No client: the bundle's module `main` is the main module.
    None { main: &'a str },
    /// The client imports the library build as `./bundle/index.js`.
    Imports(&'a Path),
    /// The Worker build is service `lib`; the client calls it through the binding `LIB`.
    Rpc(&'a Path),
}

/// The config serving `client.js` next to the bundle at `<config dir>/bundle`.
fn client_config(bundle: &Path, port: u16, how: &Client) -> String {
    let entry = |name: &str, path: &str| {
        let kind = if name.ends_with(".wasm") {
            "wasm"
        } else {
            "esModule"
        };
        format!(
            "(name = {}, {kind} = embed {})",
            capnp_string(name),
            capnp_string(path)
        )
    };
    let mut bundle_modules = bundle_modules(bundle);
    if let Some(i) = bundle_modules.iter().position(|m| m == "index.js") {
        let main = bundle_modules.remove(i);
        bundle_modules.insert(0, main);
    }
    let date = capnp_string(COMPATIBILITY_DATE);
    let client = entry("client.js", "client.js");
    let (client_modules, services, bindings) = match how {
        Client::Rpc(_) => {
            let lib: Vec<String> = bundle_modules
                .iter()
                .map(|m| entry(m, &format!("bundle/{m}")))
                .collect();
            (
                client,
                format!(
                    ", (name = \"lib\", worker = (modules = [ {} ], compatibilityDate = {date}))",
                    lib.join(", ")
                ),
                "bindings = [ (name = \"LIB\", service = \"lib\") ],",
            )
        }
        _ => {
            let mut list = vec![client];
            list.extend(
                bundle_modules
                    .iter()
                    .map(|m| entry(&format!("bundle/{m}"), &format!("bundle/{m}"))),
            );
            (list.join(", "), String::new(), "")
        }
    };
    format!(
        r#"using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "main", worker = .worker){services} ],
  sockets = [ (name = "http", address = "127.0.0.1:{port}", http = (), service = "main") ],
);

const worker :Workerd.Worker = (
  modules = [ {client_modules} ],
  compatibilityDate = {date},
  {bindings}
);
"#
    )
}

/// The capnp config serving the bundle at `<config dir>/<bundle_rel>` on 127.0.0.1:`port`.
fn workerd_config(bundle: &Path, bundle_rel: &str, port: u16, main: &str) -> String {
    let mut modules = bundle_modules(bundle);
    let entry = modules.iter().position(|m| m == main).unwrap_or_else(|| {
        panic!(
            "bundle {} has no {main} (files: {modules:?})",
            bundle.display()
        )
    });
    // The first module is the worker's main module.
    let entry = modules.remove(entry);
    modules.insert(0, entry);

    let mut list = String::new();
    for name in &modules {
        let kind = if name.ends_with(".wasm") {
            "wasm"
        } else {
            "esModule"
        };
        writeln!(
            list,
            "      (name = {}, {kind} = embed {}),",
            capnp_string(name),
            capnp_string(&format!("{bundle_rel}/{name}"))
        )
        .unwrap();
    }
    format!(
        r#"using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "main", worker = .worker) ],
  sockets = [ (name = "http", address = "127.0.0.1:{port}", http = (), service = "main") ],
);

const worker :Workerd.Worker = (
  modules = [
{list}  ],
  compatibilityDate = {date},
);
"#,
        date = capnp_string(COMPATIBILITY_DATE)
    )
}

/// Module names (paths relative to `bundle`, `/`-separated) of every `.js`, `.mjs` and `.wasm`
/// file in the bundle, sorted.
pub fn bundle_modules(bundle: &Path) -> Vec<String> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
        let entries =
            fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            if entry.file_type().unwrap().is_dir() {
                walk(&entry.path(), &rel, out);
            } else if [".js", ".mjs", ".wasm"]
                .iter()
                .any(|ext| name.ends_with(ext))
            {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(bundle, "", &mut out);
    out.sort();
    out
}

fn capnp_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A port on 127.0.0.1 that was free a moment ago (another process may take it before workerd
/// binds it: callers retry on "Address already in use").
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind a port on 127.0.0.1");
    listener.local_addr().unwrap().port()
}

/// Starts `workerd serve CONFIG` (with `--verbose` when asked) in the config's directory, its
/// output going to `log`. The caller stops it by its PID (dropping a [`Workerd`] does).
pub fn spawn_workerd(config: &Path, log: &Path, verbose: bool) -> Child {
    let bin = workerd_bin();
    let out =
        fs::File::create(log).unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
    let err = out
        .try_clone()
        .expect("cannot duplicate the log file handle");
    Command::new(&bin)
        .arg("serve")
        .arg(config)
        .args(verbose.then_some("--verbose"))
        .current_dir(config.parent().unwrap())
        // Keeps workerd from noting that PWD differs from its working directory.
        .env("PWD", config.parent().unwrap())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()))
}

/// Waits until 127.0.0.1:`port` accepts connections; `Err` when the child exits first or
/// [`STARTUP_TIMEOUT`] passes.
pub fn wait_until_listening(child: &mut Child, port: u16) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!(
                "workerd exited with {status} before listening on {addr}"
            ));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "workerd was not listening on {addr} after {STARTUP_TIMEOUT:?}"
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Sends one HTTP/1.1 request to 127.0.0.1:`port` and returns the status and body. Panics,
/// naming the request, when it fails or takes longer than [`HTTP_TIMEOUT`].
pub fn http(port: u16, method: &str, path: &str) -> (u16, String) {
    try_http(port, method, path, HTTP_TIMEOUT).unwrap_or_else(|why| panic!("{why}"))
}

/// Like [`http`], but returns the failure (which names the request) instead of panicking.
pub fn try_http(
    port: u16,
    method: &str,
    path: &str,
    timeout: Duration,
) -> Result<(u16, String), String> {
    request(&http_agent(timeout), port, method, path)
}

/// The HTTP client of every test (ureq): statuses are answers, not errors; no proxy from the
/// environment; one connection kept alive between requests (a closed one is replaced); and
/// `timeout` over each whole request, so a hang fails the test instead of stalling it.
pub fn http_agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .max_idle_connections_per_host(1)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// `method` `path` on 127.0.0.1:`port` through `agent`: the status and the body. The failure
/// names the request.
pub fn request(
    agent: &ureq::Agent,
    port: u16,
    method: &str,
    path: &str,
) -> Result<(u16, String), String> {
    let what = format!("{method} http://127.0.0.1:{port}{path}");
    let request = ureq::http::Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1:{port}{path}"))
        .body(())
        .map_err(|e| format!("{what}: {e}"))?;
    let mut response = agent.run(request).map_err(|e| format!("{what}: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .map_err(|e| format!("{what}: reading the body: {e}"))?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Exception-handling instructions found in a Wasm module's code.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EhInstructions {
    /// Legacy encoding: `try`, `catch`, `catch_all`, `rethrow`, `delegate`.
    pub legacy: usize,
    /// Standard (exnref) encoding: `try_table`, `throw_ref`.
    pub exnref: usize,
    /// Tags defined in the module itself (Rust's unwinder throws one with an `i32` payload).
    pub local_tags: usize,
}

/// Counts the exception-handling instructions and local tags of the module at `path`.
pub fn eh_instructions(path: &Path) -> EhInstructions {
    use wasmparser::{Operator, Parser, Payload, WasmFeatures};

    let bytes = fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut parser = Parser::new(0);
    // Legacy EH instructions are only decoded with this feature on.
    parser.set_features(WasmFeatures::all());
    let mut found = EhInstructions::default();
    for payload in parser.parse_all(&bytes) {
        let payload = payload.unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()));
        match payload {
            Payload::TagSection(tags) => found.local_tags += tags.count() as usize,
            Payload::CodeSectionEntry(body) => {
                let mut ops = body.get_operators_reader().unwrap();
                while !ops.eof() {
                    let op = ops
                        .read()
                        .unwrap_or_else(|e| panic!("cannot decode {}: {e}", path.display()));
                    match op {
                        Operator::Try { .. }
                        | Operator::Catch { .. }
                        | Operator::CatchAll
                        | Operator::Rethrow { .. }
                        | Operator::Delegate { .. } => found.legacy += 1,
                        Operator::TryTable { .. } | Operator::ThrowRef => found.exnref += 1,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    found
}
pub mod node;
pub mod recovery;
