//! The proof for the templates (issue 5): for every template, generate a project with the real
//! binary, run the exact `cargo worker-build` commands its CI workflow runs (build with
//! `--unwind`, then `--check-eh`), serve the result in workerd the way its wrangler.toml
//! describes it (entry module, Durable Object bindings, compatibility date), and assert the
//! routes its README documents: the panic route answers 500 and the state is kept afterwards.
//! Then, in the same project (sharing the build), the user's first run (issue 12): the
//! workflow's `npm install` and `npm test`, which builds again (nothing to do by then) and runs
//! the template's own tests in `@cloudflare/vitest-pool-workers`.
//!
//! Needs `npm ci` in the repository root (workerd, and Node 24 for npm) and the toolchain the
//! templates pin; `npm install` in the generated project reads npm's cache (`--prefer-offline`).
//!
//! The templates pin the same npm packages. One `npm install` from nothing per set of pinned
//! packages is kept under `target/fixtures/npm-installs/`; each project starts from hard links to
//! its `node_modules` (half a gigabyte, most of the install's time), and the project's own
//! `npm install` then checks that tree against the project's package.json and completes it.

use crate::support;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use cargo_worker_build::cli::NewArgs;
use toml_edit::DocumentMut;

/// Generates `template` into a temp dir as `cargo worker-build new` does, then runs the workflow's
/// build and check commands in it. Returns the temp dir and the project directory.
fn generate_and_build(template: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::Builder::new()
        .prefix("cwb-scaffold-e2e-")
        .tempdir()
        .unwrap();
    let project = tmp.path().join(format!("e2e-{template}"));
    // The same function `cargo worker-build new` calls (tests/it/scaffold_cli.rs runs the binary).
    cargo_worker_build::scaffold::new_project(&NewArgs {
        name: Some(project.to_string_lossy().into_owned()),
        template: template.to_string(),
        list_templates: false,
    })
    .unwrap();

    let _serial = support::BUILD_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let commands = workflow_commands(&project);
    assert_eq!(
        commands.len(),
        2,
        "{template}: the workflow should build and check: {commands:?}"
    );
    assert!(
        commands[0].contains(&"--unwind".to_string()),
        "{commands:?}"
    );
    assert!(
        commands[1].contains(&"--check-eh".to_string()),
        "{commands:?}"
    );
    for args in &commands {
        let mut cmd = support::tool();
        cmd.args(args)
            .arg("--target-dir")
            .arg(support::fixtures_target_dir())
            .current_dir(&project);
        let started = Instant::now();
        support::run_ok(&mut cmd);
        eprintln!(
            "{template}: `cargo worker-build {}` took {:.1?}",
            args.join(" "),
            started.elapsed()
        );
    }
    // Independently of the tool's own check: Rust's unwinder tag is defined in the module and
    // the code uses the default (exnref) encoding only.
    let wasm = project.join("build/index_bg.wasm");
    let eh = support::eh_instructions(&wasm);
    assert!(
        eh.local_tags > 0 && eh.exnref > 0 && eh.legacy == 0,
        "{}: not an unwinding exnref module: {eh:?}",
        wasm.display()
    );
    (tmp, project)
}

/// The arguments of every `cargo worker-build` step in the project's CI workflow, in order.
fn workflow_commands(project: &Path) -> Vec<Vec<String>> {
    workflow_steps(project, "cargo worker-build ")
}

/// The arguments after `program` of every `run: <program>...` step in the project's workflow.
fn workflow_steps(project: &Path, program: &str) -> Vec<Vec<String>> {
    let workflow = fs::read_to_string(project.join(".github/workflows/worker.yml")).unwrap();
    workflow
        .lines()
        .filter_map(|line| line.trim().strip_prefix("run: ")?.strip_prefix(program))
        .map(|rest| rest.split_whitespace().map(String::from).collect())
        .collect()
}

/// How long `npm ci` may take: from npm's cache, the packages the template's lock records.
const NPM_INSTALL_TIMEOUT: Duration = Duration::from_secs(300);
/// How long `npm test` may take: a build with nothing to do, then vitest starting workerd.
const NPM_TEST_TIMEOUT: Duration = Duration::from_secs(300);

/// The user's first run, as the workflow gives it: `npm ci` (exactly the packages of the
/// package-lock.json `new` wrote; it fails when the lock and package.json disagree), then
/// `npm test` (which runs `cargo worker-build` through package.json, then vitest-pool-workers).
/// npm runs on the repository's Node 24, first in PATH, with the binary under test as
/// `cargo worker-build`; the build shares the fixtures target dir, where `generate_and_build`
/// already built the project.
fn npm_install_and_test(template: &str, project: &Path) {
    let steps = workflow_steps(project, "npm ");
    assert_eq!(
        steps,
        [vec!["ci".to_string()], vec!["test".to_string()]],
        "{template}: the workflow should run `npm ci` then `npm test`"
    );
    let node = support::repo_root().join("node_modules/node/bin/node");
    assert!(
        node.is_file(),
        "{} is missing: run `npm ci` in {} (package.json pins node@24)",
        node.display(),
        support::repo_root().display()
    );
    let tool = PathBuf::from(env!("CARGO_BIN_EXE_cargo-worker-build"));
    let path = std::env::join_paths(
        [tool.parent().unwrap(), node.parent().unwrap()]
            .into_iter()
            .map(Path::to_path_buf)
            .chain(std::env::split_paths(
                &std::env::var_os("PATH").unwrap_or_default(),
            )),
    )
    .unwrap();
    let npm = |args: &[&str], dir: &Path| {
        let mut cmd = Command::new("npm");
        cmd.args(args)
            .current_dir(dir)
            .env("PATH", &path)
            .env("CARGO_TARGET_DIR", support::fixtures_target_dir())
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env("WRANGLER_SEND_METRICS", "false")
            .env("NO_COLOR", "1")
            .env("CI", "1")
            // As every test's build (support::tool): the machine's own sccache is not started.
            .env("WORKER_BUILD_CACHE", "none")
            // As in a user's shell: no toolchain chosen by the `cargo test` that runs this, so
            // `cargo worker-build` takes the project's rust-toolchain.toml.
            .env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("RUSTUP_TOOLCHAIN_SOURCE")
            .env_remove("RUSTFLAGS")
            .stdin(Stdio::null());
        cmd
    };
    let install = ["ci", "--prefer-offline", "--no-audit", "--no-fund"];
    for (args, timeout) in [
        (&install[..], NPM_INSTALL_TIMEOUT),
        (&["test"][..], NPM_TEST_TIMEOUT),
    ] {
        let mut cmd = npm(args, project);
        let started = Instant::now();
        let output = run_bounded(&mut cmd, timeout);
        eprintln!(
            "{template}: `npm {}` took {:.1?}",
            args.join(" "),
            started.elapsed()
        );
        assert!(
            output.status.success(),
            "{template}: {}",
            support::describe_output(&cmd, &output)
        );
        if args[0] == "test" {
            // vitest's summary, e.g. `      Tests  2 passed (2)`: every test ran and passed.
            let stdout = String::from_utf8_lossy(&output.stdout);
            let summary = stdout
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("Tests "))
                .unwrap_or_default();
            let counts: Vec<&str> = summary.split_whitespace().collect();
            assert!(
                matches!(counts[..], ["Tests", n, "passed", total] if total == format!("({n})")),
                "{template}: vitest's summary is not all passed: {summary:?}\n{stdout}"
            );
        }
    }
}

/// Runs `cmd` in its own process group with captured output, and kills the whole group (npm,
/// vitest, workerd) by its id when it runs past `timeout`, or when the test fails meanwhile.
fn run_bounded(cmd: &mut Command, timeout: Duration) -> Output {
    use std::os::unix::process::CommandExt;
    struct Group(Child);
    impl Drop for Group {
        fn drop(&mut self) {
            let group = format!("-{}", self.0.id());
            let _ = Command::new("kill")
                .args(["-KILL", "--", &group])
                .stderr(Stdio::null())
                .status();
            let _ = self.0.wait();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let child = cmd
        .process_group(0)
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", support::command_line(cmd)));
    let mut group = Group(child);
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = group.0.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            panic!(
                "`{}` did not finish within {timeout:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                support::command_line(cmd),
                fs::read_to_string(&out_path).unwrap_or_default(),
                fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(200));
    };
    // Also stops anything the command left running in its group.
    drop(group);
    Output {
        status,
        stdout: fs::read(&out_path).unwrap(),
        stderr: fs::read(&err_path).unwrap(),
    }
}

fn wrangler(project: &Path) -> DocumentMut {
    fs::read_to_string(project.join("wrangler.toml"))
        .unwrap()
        .parse()
        .unwrap()
}

/// workerd serving a generated project as its wrangler.toml describes it.
struct Served {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Served {
    fn start(project: &Path) -> Served {
        let dir = tempfile::Builder::new()
            .prefix("cwb-scaffold-workerd-")
            .tempdir()
            .unwrap();
        let config = dir.path().join("config.capnp");
        let log = dir.path().join("workerd.log");
        let port = support::free_port();
        // workerd embeds files by paths relative to the config, so the modules are copied
        // next to it (which also keeps a rebuild from changing the running server).
        let (config_text, modules) = workerd_config(project, port);
        for module in &modules {
            let copy = dir.path().join("project").join(module);
            fs::create_dir_all(copy.parent().unwrap()).unwrap();
            fs::copy(project.join(module), &copy).unwrap();
        }
        fs::write(&config, config_text).unwrap();
        let mut served = Served {
            child: support::spawn_workerd(&config, &log, true),
            port,
            log,
            _dir: dir,
        };
        // Dropping `served` on a failure stops workerd.
        if let Err(why) = support::wait_until_listening(&mut served.child, port) {
            panic!(
                "{why}\n--- config ---\n{}\n--- log ---\n{}",
                fs::read_to_string(&config).unwrap_or_default(),
                served.log_contents()
            );
        }
        served
    }

    fn get(&self, path: &str) -> (u16, String) {
        support::try_http(self.port, "GET", path, support::HTTP_TIMEOUT)
            .unwrap_or_else(|why| panic!("{why}\n--- workerd log ---\n{}", self.log_contents()))
    }

    fn log_contents(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A workerd config for `project`: the entry module named in wrangler.toml's `main`, every
/// module of the bundle in `build/`, and the Durable Object bindings wrangler.toml declares.
/// Modules are named by their path in the project, so imports resolve as they do under wrangler
/// (`../build/index.js` from `src/index.js` is `build/index.js`); they are embedded from a copy
/// under `project/` next to the config. Returns the config and the module paths.
fn workerd_config(project: &Path, port: u16) -> (String, Vec<String>) {
    let wrangler = wrangler(project);
    let main = wrangler["main"].as_str().expect("wrangler.toml main");
    let date = wrangler["compatibility_date"].as_str().unwrap();
    let mut modules = vec![main.to_string()];
    for module in support::bundle_modules(&project.join("build")) {
        let name = format!("build/{module}");
        if name != main {
            modules.push(name);
        }
    }
    let mut module_list = String::new();
    for name in &modules {
        let kind = if name.ends_with(".wasm") {
            "wasm"
        } else {
            "esModule"
        };
        writeln!(
            module_list,
            "      (name = {name:?}, {kind} = embed {:?}),",
            format!("project/{name}")
        )
        .unwrap();
    }

    let mut bindings = String::new();
    let mut namespaces = String::new();
    let sqlite_classes: Vec<String> = wrangler
        .get("migrations")
        .and_then(|m| m.as_array_of_tables())
        .into_iter()
        .flat_map(|migrations| migrations.iter())
        .filter_map(|m| m.get("new_sqlite_classes").and_then(|c| c.as_array()))
        .flat_map(|classes| classes.iter().filter_map(|c| c.as_str().map(String::from)))
        .collect();
    if let Some(dos) = wrangler
        .get("durable_objects")
        .and_then(|d| d.get("bindings"))
        .and_then(|b| b.as_array_of_tables())
    {
        for binding in dos.iter() {
            let name = binding["name"].as_str().unwrap();
            let class = binding["class_name"].as_str().unwrap();
            writeln!(
                bindings,
                "    (name = {name:?}, durableObjectNamespace = {class:?}),"
            )
            .unwrap();
            let sql = sqlite_classes.iter().any(|c| c == class);
            writeln!(
                namespaces,
                "    (className = {class:?}, uniqueKey = \"scaffold-e2e-{class}\", enableSql = {sql}),"
            )
            .unwrap();
        }
    }
    let durable = if namespaces.is_empty() {
        String::new()
    } else {
        format!(
            "  durableObjectNamespaces = [\n{namespaces}  ],\n  durableObjectStorage = (inMemory = void),\n"
        )
    };
    let config = format!(
        r#"using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "main", worker = .worker) ],
  sockets = [ (name = "http", address = "127.0.0.1:{port}", http = (), service = "main") ],
);

const worker :Workerd.Worker = (
  modules = [
{module_list}  ],
  bindings = [
{bindings}  ],
{durable}  compatibilityDate = {date:?},
);
"#
    );
    (config, modules)
}

/// The README's story for every template: count twice, look, panic (500), look again (same
/// count), count once more.
fn assert_recovers(
    served: &Served,
    first: &str,
    count_line: impl Fn(u32) -> String,
    state_line: impl Fn(u32) -> String,
) {
    for n in 1..=2 {
        assert_eq!(served.get(first), (200, count_line(n)), "visit {n}");
    }
    assert_eq!(served.get("/state"), (200, state_line(2)));
    let (status, body) = served.get("/panic");
    assert_eq!(status, 500, "the panic route answers 500, body: {body}");
    assert_eq!(
        served.get("/state"),
        (200, state_line(2)),
        "the state is kept after the panic"
    );
    assert_eq!(
        served.get(first),
        (200, count_line(3)),
        "and the Worker goes on"
    );
    let log = served.log_contents();
    assert!(
        !log.contains("Module terminated"),
        "a panic must not terminate the instance under --unwind:\n{log}"
    );
}

#[test]
fn hello_template_recovers_after_a_panic_and_passes_its_npm_test() {
    let (_tmp, project) = generate_and_build("hello");
    let served = Served::start(&project);
    assert_recovers(
        &served,
        "/",
        |n| format!("Hello from Rust! Visits: {n}\n"),
        |n| format!("Visits: {n}\n"),
    );
    drop(served);
    npm_install_and_test("hello", &project);
}

#[test]
fn plain_template_recovers_after_a_panic_and_passes_its_npm_test() {
    let (_tmp, project) = generate_and_build("plain");
    let served = Served::start(&project);
    assert_recovers(
        &served,
        "/",
        |n| format!("Hello from Rust! Visits: {n}\n"),
        |n| format!("Visits: {n}\n"),
    );
    assert_eq!(served.get("/nowhere").0, 404);
    drop(served);
    npm_install_and_test("plain", &project);
}

#[test]
fn durable_object_keeps_its_count_after_a_panic_and_passes_its_npm_test() {
    let (_tmp, project) = generate_and_build("durable-object");
    let served = Served::start(&project);
    assert_recovers(
        &served,
        "/",
        |n| format!("Count: {n}\n"),
        |n| format!("Count: {n}\n"),
    );
    drop(served);
    npm_install_and_test("durable-object", &project);
}

#[test]
fn library_template_is_imported_by_its_javascript_worker_recovers_and_passes_its_npm_test() {
    let (_tmp, project) = generate_and_build("library");
    let served = Served::start(&project);
    assert_recovers(
        &served,
        "/?name=Ferris",
        |n| format!("Hello, Ferris, from Rust! Visits: {n}\n"),
        |n| format!("Visits: {n}\n"),
    );
    let (status, body) = served.get("/panic");
    assert_eq!(status, 500);
    assert!(body.starts_with("Rust panicked: "), "{body}");
    assert!(body.contains("panics on purpose"), "{body}");
    drop(served);
    npm_install_and_test("library", &project);
}
