//! Ctrl-C and `kill` (SIGINT, SIGTERM, SIGHUP) mid-build: the staging directories this process
//! made are removed before it exits, so an interrupted build leaves only the previous bundle.
//! wrangler cancels a running `[build] command` with SIGTERM when the next edit arrives.
//!
//! A swap of the output holds [`critical`] from its checks to its last rename; a signal that
//! arrives meanwhile waits for it, so the output is never left half-swapped by an interrupt.
//! SIGKILL cannot be caught: what it leaves is swept by the next successful build.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The signal that interrupted the process, 0 before one did.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// Directories to remove if the process is interrupted.
fn registry() -> &'static Mutex<Vec<PathBuf>> {
    static DIRS: OnceLock<Mutex<Vec<PathBuf>>> = OnceLock::new();
    DIRS.get_or_init(|| Mutex::new(Vec::new()))
}

fn lock() -> MutexGuard<'static, Vec<PathBuf>> {
    registry()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Remove `dir` if the process is interrupted before [`forget`] is called for it.
pub fn remove_on_interrupt(dir: &Path) {
    lock().push(dir.to_path_buf());
}

pub fn forget(dir: &Path) {
    lock().retain(|d| d != dir);
}

/// Held while the output is swapped: an interrupt waits until it is dropped.
pub fn critical() -> MutexGuard<'static, Vec<PathBuf>> {
    lock()
}

/// Install the handler (once, at start). Exits with 128 + the signal's number, as a shell
/// reports a process the signal killed.
pub fn install() {
    #[cfg(unix)]
    {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            return;
        };
        std::thread::spawn(move || {
            if let Some(signal) = signals.forever().next() {
                RECEIVED.store(signal, Ordering::SeqCst);
                let dirs = lock();
                for dir in dirs.iter() {
                    let _ = std::fs::remove_dir_all(dir);
                }
                std::process::exit(128 + signal);
            }
        });
    }
}

/// Tests of interrupted builds stop the tool at the start of a stage: with
/// `__CARGO_WORKER_BUILD_PAUSE=<stage>` (`cargo`, `wasm-bindgen`, `wasm-opt`, `esbuild`, `swap`)
/// it prints `paused at <stage>` to stderr and sleeps there, at most a minute, for the test to
/// send its signal. Not for users: cargo's own test hooks are named the same way.
pub fn pause_for_tests(stage: &str) {
    if std::env::var("__CARGO_WORKER_BUILD_PAUSE").is_ok_and(|p| p == stage) {
        eprintln!("paused at {stage}");
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

/// A step that failed because the signal also stopped its child process (Ctrl-C reaches the
/// whole process group; wrangler signals the whole tree) is no error to report: when a signal
/// arrived, wait for the handler, which cleans up and exits with the signal's code.
pub fn exit_if_interrupted() {
    if RECEIVED.load(Ordering::SeqCst) != 0 {
        let _wait_for_the_handler = lock();
        std::thread::sleep(std::time::Duration::from_secs(5));
        std::process::exit(128 + RECEIVED.load(Ordering::SeqCst));
    }
}
