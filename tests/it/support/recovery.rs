//! Helpers for the recovery-runtime tests (`tests/it/runtime_*.rs`): building the fault fixture
//! once per mode, serving it in workerd with its Durable Object (and, for library mode, a
//! JavaScript client Worker), a keep-alive HTTP client and a bounded load generator.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use super::{copy_tree, fixture, fixtures_target_dir, run_ok, tool, COMPATIBILITY_DATE};

/// How the fault fixture is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Build {
    /// `--unwind` (exnref exception handling).
    UnwindExnref,
    /// `--unwind --eh legacy`.
    UnwindLegacy,
    /// The default panic=abort build.
    Abort,
    /// `--unwind --lib`: library mode for a JavaScript Worker.
    UnwindLibrary,
}

impl Build {
    fn name(self) -> &'static str {
        match self {
            Build::UnwindExnref => "unwind-exnref",
            Build::UnwindLegacy => "unwind-legacy",
            Build::Abort => "abort",
            Build::UnwindLibrary => "unwind-lib",
        }
    }

    fn args(self) -> &'static [&'static str] {
        match self {
            Build::UnwindExnref => &["--unwind"],
            Build::UnwindLegacy => &["--unwind", "--eh", "legacy"],
            Build::Abort => &[],
            Build::UnwindLibrary => &["--unwind", "--lib"],
        }
    }
}

/// Builds `tests/fixtures/faults` with the tool under test, once per mode and process, into
/// `target/fixtures/runtime-bundles/<mode>` (shared by every test binary; the tool keeps a bundle
/// that is up to date and locks the output directory against concurrent builds).
pub fn faults_bundle(build: Build) -> PathBuf {
    fixture_bundle("faults", build)
}

/// Builds the fixture crate `tests/fixtures/<name>` like [`faults_bundle`] builds the fault
/// fixture: once per mode and process, into `target/fixtures/runtime-bundles/<name>-<mode>`
/// (the fault fixture keeps its historical `<mode>`).
pub fn fixture_bundle(name: &str, build: Build) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<(String, Build), PathBuf>>> = OnceLock::new();
    // One bundle of each kind per process; the build itself holds the one BUILD_LOCK like every
    // build into the shared target dir (a build with other flags relinks the same `.wasm`).
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let key = (name.to_string(), build);
    if let Some(dir) = built.get(&key) {
        return dir.clone();
    }
    let out_dir = fixtures_target_dir()
        .join("runtime-bundles")
        .join(if name == "faults" {
            build.name().to_string()
        } else {
            format!("{name}-{}", build.name())
        });
    let manifest = fixture(name).join("Cargo.toml");
    let _serial = super::BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    run_ok(
        tool()
            .args(build.args())
            .arg("--manifest-path")
            .arg(&manifest)
            .arg("--target-dir")
            .arg(fixtures_target_dir())
            .arg("--out-dir")
            .arg(&out_dir),
    );
    for file in ["index.js", "index_bg.wasm"] {
        assert!(
            out_dir.join(file).is_file(),
            "the {} bundle in {} has no {file}",
            build.name(),
            out_dir.display()
        );
    }
    built.insert(key, out_dir.clone());
    out_dir
}

/// A `workerd serve` of a bundle on 127.0.0.1, killed by PID on drop (also when a test panics):
/// [`super::Workerd`], the one workerd harness, with the fault fixture's configurations.
pub struct Server {
    workerd: super::Workerd,
}

/// What the server runs.
pub enum Serve<'a> {
    /// The fault Worker bundle, with its `FaultObject` Durable Object bound as `FAULT_OBJECT`.
    Worker(&'a Path),
    /// A JavaScript client Worker (`client`, its main module) importing the library-mode bundle
    /// as `./lib/index.js`.
    Library { bundle: &'a Path, client: &'a Path },
    /// The fault Worker bundle as service `faults`, and a JavaScript client Worker (served on the
    /// port) that calls it over RPC through the service binding `FAULTS`.
    Rpc { bundle: &'a Path, client: &'a Path },
}

impl Server {
    pub fn start(what: Serve<'_>) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("cwb-runtime-")
            .tempdir()
            .expect("cannot create a temporary directory");
        let mut services = r#"(name = "main", worker = .worker)"#.to_string();
        let (modules, extra) = match what {
            Serve::Worker(bundle) => {
                copy_tree(bundle, &dir.path().join("bundle"), &|_| false);
                (
                    worker_modules(&dir.path().join("bundle"), "bundle"),
                    DURABLE_OBJECTS,
                )
            }
            Serve::Library { bundle, client } => {
                copy_tree(bundle, &dir.path().join("bundle/lib"), &|_| false);
                fs::copy(client, dir.path().join("bundle/client.js")).expect("copy the client");
                let mut modules = vec![("client.js".to_string(), "bundle/client.js".to_string())];
                modules.extend(module_list(
                    &dir.path().join("bundle/lib"),
                    "bundle/lib",
                    "lib/",
                ));
                (modules, "")
            }
            Serve::Rpc { bundle, client } => {
                copy_tree(bundle, &dir.path().join("faults"), &|_| false);
                fs::copy(client, dir.path().join("client.js")).expect("copy the client");
                let mut list = String::new();
                for (name, path) in worker_modules(&dir.path().join("faults"), "faults") {
                    write!(list, "{}, ", module_entry(&name, &path)).unwrap();
                }
                services = format!(
                    "(name = \"main\", worker = .worker), (name = \"faults\", worker = (\n    \
                     modules = [ {list} ],\n    compatibilityDate = {COMPATIBILITY_DATE:?},\n\
                     {DURABLE_OBJECTS}  ))"
                );
                let client = vec![("client.js".to_string(), "client.js".to_string())];
                (
                    client,
                    "  bindings = [ (name = \"FAULTS\", service = \"faults\") ],\n",
                )
            }
        };
        let workerd = super::Workerd::start(
            dir,
            |port| capnp_config(&services, &modules, extra, port),
            false,
        )
        .unwrap_or_else(|why| panic!("workerd did not start: {why}"));
        Server { workerd }
    }

    pub fn port(&self) -> u16 {
        self.workerd.port()
    }

    pub fn pid(&self) -> u32 {
        self.workerd.pid()
    }

    /// GET `path`: (status, body, seconds taken). Panics (with the log) after `HTTP_TIMEOUT`.
    pub fn get(&self, path: &str) -> (u16, String, f64) {
        let started = Instant::now();
        let mut conn = Conn::open(self.port()).unwrap_or_else(|e| panic!("GET {path}: {e}"));
        match conn.get(path) {
            Ok((status, body)) => (status, body, started.elapsed().as_secs_f64()),
            Err(e) => panic!("GET {path}: {e}\n--- workerd output ---\n{}", self.log()),
        }
    }

    /// GET `path` expecting `status`; returns the body.
    pub fn expect(&self, path: &str, status: u16) -> String {
        let (got, body, _) = self.get(path);
        assert_eq!(
            got,
            status,
            "GET {path}: body {body:?}\n--- workerd output ---\n{}",
            self.log()
        );
        body
    }

    /// The runtime's statistics (`/recovery` route of the fixture, or `/stats` of the client).
    pub fn stats(&self, path: &str) -> serde_json::Value {
        let body = self.expect(path, 200);
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body:?}"))
    }

    /// Everything workerd (and console.*) printed so far.
    pub fn log(&self) -> String {
        self.workerd.log_contents()
    }

    /// The runtime's log lines (`cargo-worker-build: ...`), in order.
    pub fn runtime_lines(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|line| line.starts_with("cargo-worker-build:"))
            .map(str::to_owned)
            .collect()
    }

    pub fn dir(&self) -> &Path {
        self.workerd.dir()
    }
}

/// (module name, path relative to the config) of every JS and Wasm file under `root`.
fn module_list(root: &Path, rel: &str, prefix: &str) -> Vec<(String, String)> {
    super::bundle_modules(root)
        .into_iter()
        .map(|name| (format!("{prefix}{name}"), format!("{rel}/{name}")))
        .collect()
}

/// The fault Worker's Durable Object namespace and binding (workerd config fields).
const DURABLE_OBJECTS: &str = r#"  durableObjectNamespaces = [ (className = "FaultObject", uniqueKey = "fault-object") ],
  durableObjectStorage = (inMemory = void),
  bindings = [ (name = "FAULT_OBJECT", durableObjectNamespace = "FaultObject") ],
"#;

/// The modules of a Worker bundle under `root` (config-relative path `rel`), entry first.
fn worker_modules(root: &Path, rel: &str) -> Vec<(String, String)> {
    let mut modules = module_list(root, rel, "");
    let main = modules
        .iter()
        .position(|(name, _)| name == "index.js")
        .expect("the bundle has an index.js");
    let entry = modules.remove(main);
    modules.insert(0, entry);
    modules
}

fn module_entry(name: &str, path: &str) -> String {
    let kind = if name.ends_with(".wasm") {
        "wasm"
    } else {
        "esModule"
    };
    format!("(name = {name:?}, {kind} = embed {path:?})")
}

fn capnp_config(services: &str, modules: &[(String, String)], extra: &str, port: u16) -> String {
    let mut list = String::new();
    for (name, path) in modules {
        writeln!(list, "    {},", module_entry(name, path)).unwrap();
    }
    format!(
        r#"using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ {services} ],
  sockets = [ (name = "http", address = "127.0.0.1:{port}", http = (), service = "main") ],
);
const worker :Workerd.Worker = (
  modules = [
{list}  ],
  compatibilityDate = {COMPATIBILITY_DATE:?},
{extra});
"#
    )
}

/// A keep-alive HTTP/1.1 connection to 127.0.0.1 (reconnects when the server closes it):
/// [`super::http_agent`], the one HTTP client of the tests.
pub struct Conn {
    port: u16,
    agent: ureq::Agent,
}

impl Conn {
    /// Fails when nothing accepts connections on `port` (yet).
    pub fn open(port: u16) -> Result<Conn, String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        TcpStream::connect_timeout(&addr, super::HTTP_TIMEOUT)
            .map_err(|e| format!("connect: {e}"))?;
        Ok(Conn {
            port,
            agent: super::http_agent(super::HTTP_TIMEOUT),
        })
    }

    pub fn with_timeout(self, timeout: Duration) -> Conn {
        Conn {
            port: self.port,
            agent: super::http_agent(timeout),
        }
    }

    /// GET `path`: (status, body).
    pub fn get(&mut self, path: &str) -> Result<(u16, String), String> {
        super::request(&self.agent, self.port, "GET", path)
    }
}

/// One request of a load run, as the client saw it.
#[derive(Debug, Clone)]
pub struct Sample {
    pub index: usize,
    pub path: String,
    pub status: u16,
    pub body: String,
    /// Since the start of the run.
    pub start: Duration,
    pub end: Duration,
    /// Set when the request failed at the transport level (timeout, reset).
    pub error: Option<String>,
}

impl Sample {
    pub fn latency(&self) -> Duration {
        self.end - self.start
    }
}

/// Sends `paths` (in order, `concurrency` at a time, each thread on its own keep-alive
/// connection) to 127.0.0.1:`port`; every request is bounded by `timeout`.
pub fn load(port: u16, paths: &[String], concurrency: usize, timeout: Duration) -> Vec<Sample> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let started = Instant::now();
    let samples = Mutex::new(Vec::with_capacity(paths.len()));
    thread::scope(|scope| {
        for _ in 0..concurrency {
            scope.spawn(|| {
                let mut conn: Option<Conn> = None;
                let mut mine = Vec::new();
                loop {
                    let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(path) = paths.get(index) else { break };
                    let start = started.elapsed();
                    let result = match conn.as_mut() {
                        Some(c) => c.get(path),
                        None => Conn::open(port).and_then(|c| {
                            let c = conn.insert(c.with_timeout(timeout));
                            c.get(path)
                        }),
                    };
                    let end = started.elapsed();
                    let (status, body, error) = match result {
                        Ok((status, body)) => (status, body, None),
                        Err(e) => {
                            conn = None;
                            (0, String::new(), Some(e))
                        }
                    };
                    mine.push(Sample {
                        index,
                        path: path.clone(),
                        status,
                        body,
                        start,
                        end,
                        error,
                    });
                }
                samples.lock().unwrap().extend(mine);
            });
        }
    });
    let mut samples = samples.into_inner().unwrap();
    samples.sort_by_key(|s| s.index);
    samples
}

/// The `q`-quantile (0..=1) of `latencies`, in milliseconds.
pub fn quantile_ms(latencies: &mut [Duration], q: f64) -> f64 {
    latencies.sort();
    if latencies.is_empty() {
        return 0.0;
    }
    let index = ((latencies.len() - 1) as f64 * q).round() as usize;
    latencies[index].as_secs_f64() * 1000.0
}
