//! The `--unwind` fault bundle is wrangler-ready: `wrangler dev` (npm, under Node >= 22.12 from
//! npm, network features off, 127.0.0.1) serves it with panic and abort recovery, Durable
//! Object included, and `wrangler deploy --dry-run --outdir` accepts it.

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::free_port;
use crate::support::node::{wrangler, Group};
use crate::support::recovery::{faults_bundle, Build, Conn};
use crate::support::{copy_tree, describe_output, run};

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

fn project(bundle: &Path) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("cwb-wrangler-")
        .tempdir()
        .expect("temporary directory");
    copy_tree(bundle, &dir.path().join("build"), &|_| false);
    fs::write(dir.path().join("wrangler.toml"), WRANGLER_TOML).expect("write wrangler.toml");
    dir
}

fn get(port: u16, path: &str, dev: &Group) -> (u16, String) {
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
    // Its own process group (wrangler starts workerd as a child), killed on drop.
    let mut dev = Group::spawn(
        wrangler(project.path())
            .args(["dev", "--ip", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--inspector-port",
                &free_port().to_string(),
                "--log-level",
                "info",
            ]),
        &log,
    );

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
