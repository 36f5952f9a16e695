//! Node.js (24, from the repository's npm install) and the npm harnesses that run on it:
//! wrangler, Miniflare, vitest. Each process runs in its own process group, which is killed by
//! its id when the test is done with it, also when the test fails: wrangler and Miniflare start
//! workerd as a child, and killing only the parent would leave workerd serving.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::repo_root;

/// `node_modules/.bin/node`: Node 24 from npm (package.json pins it), which wrangler 4.164
/// (Node >= 22.12) and `import source` of a Wasm module (Node >= 24) need.
pub fn node() -> PathBuf {
    npm_file("node_modules/.bin/node")
}

/// A file of the repository's npm install, or a failure naming the command that installs it.
pub fn npm_file(relative: &str) -> PathBuf {
    let root = repo_root();
    let path = root.join(relative);
    assert!(
        path.exists(),
        "{} is missing: run `npm ci` in {} (package-lock.json pins node@24, wrangler, miniflare, \
         vitest and @cloudflare/vitest-pool-workers)",
        path.display(),
        root.display()
    );
    path
}

/// `node ARGS` in `dir`, with `node` first on PATH (wrangler and vitest start children with
/// the `node` they find there), network features of wrangler off, and no colour.
pub fn node_command(dir: &Path) -> Command {
    let node = node();
    let mut cmd = Command::new(&node);
    cmd.current_dir(dir)
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("WRANGLER_SEND_METRICS", "false")
        .env("XDG_CONFIG_HOME", dir.join(".config"))
        .env("NO_COLOR", "1")
        .env("FORCE_COLOR", "0")
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

/// `wrangler ARGS` in `dir` (wrangler's own entry run by Node 24).
pub fn wrangler(dir: &Path) -> Command {
    let mut cmd = node_command(dir);
    cmd.arg(npm_file("node_modules/wrangler/bin/wrangler.js"));
    cmd
}

/// Makes `dir` a project that resolves the repository's npm packages (`import "miniflare"`,
/// `vitest.config.js`), as a project with its own `npm install` would.
pub fn link_node_modules(dir: &Path) {
    let modules = npm_file("node_modules");
    std::os::unix::fs::symlink(&modules, dir.join("node_modules")).unwrap_or_else(|e| {
        panic!(
            "cannot link {} into {}: {e}",
            modules.display(),
            dir.display()
        )
    });
    fs::write(
        dir.join("package.json"),
        "{ \"name\": \"harness\", \"private\": true, \"type\": \"module\" }\n",
    )
    .expect("write package.json");
}

/// A process in its own group, its output in a log file; the group is killed on drop.
pub struct Group {
    pub child: Child,
    pub log: PathBuf,
    command: String,
}

impl Group {
    /// Starts `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(cmd: &mut Command, log: &Path) -> Group {
        let out = fs::File::create(log).expect("create the log");
        let err = out.try_clone().expect("clone the log");
        let command = super::command_line(cmd);
        let child = cmd
            .process_group(0)
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
        Group {
            child,
            log: log.to_path_buf(),
            command,
        }
    }

    pub fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Waits for the process to exit; a failure (with the command and its log) after `timeout`.
    pub fn wait(mut self, timeout: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return (status, self.log());
            }
            if Instant::now() > deadline {
                panic!(
                    "`{}` did not finish within {} s:\n{}",
                    self.command,
                    timeout.as_secs(),
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn command(&self) -> &str {
        &self.command
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let kill = |signal: &str| {
            // The group may be gone already (its leader exited and took workerd with it).
            let _ = Command::new("kill")
                .args([signal, "--", &group])
                .stderr(Stdio::null())
                .status();
        };
        kill("-TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
        kill("-KILL");
        let _ = self.child.wait();
    }
}

/// Runs `cmd` to completion in its own group (killed on timeout): (status, stdout and stderr).
pub fn run_in_group(cmd: &mut Command, log: &Path, timeout: Duration) -> (ExitStatus, String) {
    Group::spawn(cmd, log).wait(timeout)
}

/// `Total Upload: 59.05 KiB / gzip: 21.83 KiB` -> the two sizes in bytes.
pub fn parse_total_upload(stdout: &str) -> Option<(f64, f64)> {
    let line = stdout.lines().find(|l| l.contains("Total Upload:"))?;
    let rest = line.split("Total Upload:").nth(1)?;
    let (total, gzip) = rest.split_once("/ gzip:")?;
    Some((size_in_bytes(total)?, size_in_bytes(gzip)?))
}

fn size_in_bytes(text: &str) -> Option<f64> {
    let mut parts = text.split_whitespace();
    let number: f64 = parts.next()?.parse().ok()?;
    let scale = match parts.next()? {
        "B" | "bytes" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        _ => return None,
    };
    Some(number * scale)
}
