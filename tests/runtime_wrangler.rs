//! The `--unwind` fault bundle is wrangler-ready: `wrangler dev` (npm, under Node >= 22.12 from
//! npm, network features off, 127.0.0.1) serves it with panic and abort recovery, Durable
//! Object included, and `wrangler deploy --dry-run --outdir` accepts it.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::free_port;
use support::recovery::{faults_bundle, Build, Conn};
use support::{copy_tree, describe_output, repo_root, run};

const WRANGLER_TOML: &str = r#"name = "faults"
main = "build/index.js"
compatibility_date = "2025-09-01"

[[durable_objects.bindings]]
name = "FAULT_OBJECT"
class_name = "FaultObject"

[[migrations]]
tag = "v1"
new_classes = ["FaultObject"]
"#;

/// Node >= 22.12 and wrangler from the repository's npm install.
fn node_and_wrangler() -> (PathBuf, PathBuf) {
    let root = repo_root();
    let node = root.join("node_modules/node/bin/node");
    let wrangler = root.join("node_modules/wrangler/bin/wrangler.js");
    for path in [&node, &wrangler] {
        assert!(
            path.is_file(),
            "{} is missing: run `npm ci` in {} (package.json pins node@24 and wrangler)",
            path.display(),
            root.display()
        );
    }
    (node, wrangler)
}

/// A wrangler command in `project` with everything that could reach the network turned off.
fn wrangler(project: &Path) -> Command {
    let (node, wrangler) = node_and_wrangler();
    let mut cmd = Command::new(&node);
    cmd.arg(wrangler)
        .current_dir(project)
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("WRANGLER_SEND_METRICS", "false")
        .env("XDG_CONFIG_HOME", project.join(".config"))
        .env("NO_COLOR", "1")
        // wrangler starts child processes with `node` from PATH: the same Node 24.
        .env(
            "PATH",
            format!(
                "{}:{}",
                node.parent().unwrap().display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .stdin(Stdio::null());
    cmd
}

/// `wrangler dev` in its own process group (it starts workerd as a child); the whole group is
/// killed on drop, also when the test fails.
struct WranglerDev {
    child: Child,
    log: PathBuf,
}

impl WranglerDev {
    fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log).unwrap_or_default()).into_owned()
    }
}

impl Drop for WranglerDev {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

fn project(bundle: &Path) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("cwb-wrangler-")
        .tempdir()
        .expect("temporary directory");
    copy_tree(bundle, &dir.path().join("build"), &|_| false);
    fs::write(dir.path().join("wrangler.toml"), WRANGLER_TOML).expect("write wrangler.toml");
    dir
}

fn get(port: u16, path: &str, dev: &WranglerDev) -> (u16, String) {
    let mut conn = Conn::open(port).unwrap_or_else(|e| panic!("{path}: {e}\n{}", dev.log()));
    conn.get(path)
        .unwrap_or_else(|e| panic!("GET {path}: {e}\n--- wrangler ---\n{}", dev.log()))
}

#[test]
fn wrangler_dev_serves_the_bundle_with_recovery() {
    let bundle = faults_bundle(Build::UnwindExnref);
    let project = project(&bundle);
    let port = free_port();
    let log = project.path().join("wrangler-dev.log");
    let out = fs::File::create(&log).unwrap();
    let err = out.try_clone().unwrap();
    let child = {
        use std::os::unix::process::CommandExt;
        wrangler(project.path())
            .args(["dev", "--ip", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--inspector-port",
                &free_port().to_string(),
                "--log-level",
                "info",
            ])
            .process_group(0)
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start wrangler dev")
    };
    let mut dev = WranglerDev { child, log };

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(Some(status)) = dev.child.try_wait() {
            panic!("wrangler dev exited with {status}:\n{}", dev.log());
        }
        if let Ok((200, body)) = Conn::open(port).and_then(|mut c| c.get("/hello")) {
            assert_eq!(body, "hello");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "wrangler dev did not serve within 90 s:\n{}",
            dev.log()
        );
        thread::sleep(Duration::from_millis(250));
    }

    assert_eq!(get(port, "/count", &dev), (200, "1".into()));
    assert_eq!(get(port, "/fault/panic", &dev).0, 500);
    assert_eq!(
        get(port, "/state", &dev),
        (200, "1".into()),
        "state kept after a panic"
    );
    assert_eq!(get(port, "/do/w/inc", &dev), (200, "1".into()));
    assert_eq!(get(port, "/do/w/panic", &dev).0, 500);
    assert_eq!(
        get(port, "/do/w/get", &dev),
        (200, "1".into()),
        "Durable Object fields kept"
    );
    assert_eq!(get(port, "/fault/abort", &dev).0, 500);
    assert_eq!(
        get(port, "/state", &dev),
        (200, "0".into()),
        "fresh instance after an abort"
    );
    assert_eq!(
        get(port, "/do/w/inc", &dev),
        (200, "1".into()),
        "object rebuilt"
    );
    let (status, stats) = get(port, "/recovery", &dev);
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["reinits"], 1, "{stats}");
    assert_eq!(
        stats["observed"], true,
        "the runtime observes the instance under wrangler: {stats}"
    );
    let log = dev.log();
    assert!(
        log.contains("cargo-worker-build: fetch failed: PanicError: fault: panic requested"),
        "{log}"
    );
    assert!(
        log.contains("cargo-worker-build: Wasm instance aborted ("),
        "{log}"
    );
}

#[test]
fn wrangler_deploy_dry_run_accepts_the_bundle() {
    let bundle = faults_bundle(Build::UnwindExnref);
    let project = project(&bundle);
    let out_dir = project.path().join("dist");
    let mut cmd = wrangler(project.path());
    cmd.args(["deploy", "--dry-run", "--outdir"]).arg(&out_dir);
    let output = run(&mut cmd);
    let report = describe_output(&cmd, &output);
    assert!(output.status.success(), "{report}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Total Upload:"), "{report}");
    assert!(
        stdout.contains("env.FAULT_OBJECT (FaultObject)"),
        "{report}"
    );
    let entry = fs::read_to_string(out_dir.join("index.js")).expect("the bundled entry");
    assert!(
        entry.contains("cargo-worker-build.observer"),
        "the recovery runtime is part of the upload"
    );
    let wasm = fs::read_dir(&out_dir)
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with(".wasm"));
    assert!(
        wasm,
        "the Wasm module is uploaded next to the entry: {report}"
    );
}
