//! Benchmark of the recovery runtime in workerd on 127.0.0.1 (the figures in BENCHMARKS.md):
//! requests per second and p50/p99 latency of the fault fixture's `/hello` through our entry
//! and runtime, through the raw wasm-bindgen export called from a minimal hand-written entry
//! (`tests/fixtures/faults/js/raw-entry.js`), and, when `WORKER_BUILD_BUNDLE` names the `build/`
//! directory of workers-rs worker-build 0.8.7's bundle of the same crate, through that; plus the
//! time from an abort to the next successful response.
//!
//! Run: `cargo bench --bench runtime_bench`; `EXTRA_BUNDLES="name=dir;name=dir"` adds rows for
//! other bundles of the same crate (ablations of the runtime, say), and
//! `BENCH_OTHER_RUNTIME="name=path;..."` rows of our module-worker entry with other copies of
//! `runtime.js`. Each round measures a freshly started workerd per variant (`BENCH_FRESH=0`:
//! one long-lived server each), in `BENCH_SLICES` slices that alternate between the variants;
//! `BENCH_KEEP=dir` keeps every variant's config and bundle for
//! `benches/workerd_instructions.mjs`. It checks that every request succeeded (a failed
//! one would make the figures meaningless) and prints the figures; it asserts no speed.

#[path = "../tests/it/support/mod.rs"]
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::recovery::{faults_bundle, load, quantile_ms, Build, Conn, Serve, Server};
use support::{copy_tree, fixture};

/// A setting from the environment (`BENCH_REQUESTS`, `BENCH_CONCURRENCY`, `BENCH_ROUNDS`), or
/// its default.
fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
        })
        .unwrap_or(default)
}

static REQUESTS: std::sync::LazyLock<usize> =
    std::sync::LazyLock::new(|| setting("BENCH_REQUESTS", 5_000));
static CONCURRENCY: std::sync::LazyLock<usize> =
    std::sync::LazyLock::new(|| setting("BENCH_CONCURRENCY", 32));
static ROUNDS: std::sync::LazyLock<usize> =
    std::sync::LazyLock::new(|| setting("BENCH_ROUNDS", 20));
/// Whether each round measures a workerd started for it (`BENCH_FRESH=1`, the default) or the
/// same long-lived server every round (`BENCH_FRESH=0`). One workerd process keeps the JIT and
/// heap state it happened to reach: two processes of an identical bundle stay a few percent
/// apart in instructions per request for their whole life (BENCHMARKS.md), so rounds on one
/// process per variant compare two draws, and rounds on fresh processes a median of many.
static FRESH: std::sync::LazyLock<bool> =
    std::sync::LazyLock::new(|| setting("BENCH_FRESH", 1) != 0);
/// How many slices a round's requests to each variant are cut into (`BENCH_SLICES`). The
/// slices of all variants alternate (A B C .. A B C ..), so every variant of a round is measured
/// across the same stretch of time and a change in the machine's speed during the round (a
/// neighbour on the host, the CPU's clock) falls on all of them alike; with one slice each
/// variant had its own second of the round, and two servers of one identical bundle measured up
/// to 4% apart in median over 40 rounds.
static SLICES: std::sync::LazyLock<usize> =
    std::sync::LazyLock::new(|| setting("BENCH_SLICES", 10).max(1));
const ABORTS: usize = 30;

struct Variant {
    name: String,
    /// The bundle, for the fresh server of each round.
    dir: PathBuf,
    server: Server,
    /// The variant this one is compared with (its raw baseline), by index.
    baseline: Option<usize>,
    /// Whether it recovers from aborts (the raw entries do not).
    recovers: bool,
}

#[derive(Debug, Clone, Copy)]
struct Figures {
    rps: f64,
    p50: f64,
    p99: f64,
    /// CPU time workerd spent per request, in microseconds: unlike throughput, barely moved by
    /// other work on the machine (the client shares its two cores).
    cpu_us: f64,
}

/// CPU time of process `pid` so far, in seconds: the sum over its threads of the time the
/// scheduler ran them (`/proc/<pid>/task/*/schedstat`, nanoseconds), else user + system time
/// from `/proc/<pid>/stat` (10 ms ticks).
fn cpu_seconds(pid: u32) -> f64 {
    if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
        let mut ns = 0u64;
        let mut read = false;
        for task in tasks.flatten() {
            let Ok(text) = fs::read_to_string(task.path().join("schedstat")) else {
                continue;
            };
            if let Some(Ok(v)) = text.split(' ').next().map(str::parse::<u64>) {
                ns += v;
                read = true;
            }
        }
        if read {
            return ns as f64 / 1e9;
        }
    }
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/<pid>/stat");
    // The fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0 // USER_HZ
}

/// What one slice of a round measured on one server: requests sent, wall time, workerd's CPU
/// time, and every request's latency.
#[derive(Default)]
struct Tally {
    requests: usize,
    seconds: f64,
    cpu_seconds: f64,
    latencies: Vec<Duration>,
}

impl Tally {
    /// Sends `requests` GETs of `/hello` to `server` and adds what they took.
    fn add_slice(&mut self, server: &Server, requests: usize) {
        let paths = vec!["/hello".to_string(); requests];
        let cpu_before = cpu_seconds(server.pid());
        let started = Instant::now();
        let samples = load(server.port(), &paths, *CONCURRENCY, Duration::from_secs(15));
        self.seconds += started.elapsed().as_secs_f64();
        self.cpu_seconds += cpu_seconds(server.pid()) - cpu_before;
        for sample in &samples {
            assert_eq!(
                (sample.status, sample.body.as_str()),
                (200, "hello"),
                "{sample:?}"
            );
        }
        self.requests += requests;
        self.latencies.extend(samples.iter().map(|s| s.latency()));
    }

    fn figures(mut self) -> Figures {
        Figures {
            rps: self.requests as f64 / self.seconds,
            p50: quantile_ms(&mut self.latencies, 0.5),
            p99: quantile_ms(&mut self.latencies, 0.99),
            cpu_us: self.cpu_seconds * 1e6 / self.requests as f64,
        }
    }
}

/// Pins every thread of process `pid` to `cpus` with `taskset`; says so when it cannot.
fn pin(pid: u32, cpus: &str) -> bool {
    let ok = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("could not pin process {pid} to CPU {cpus} (taskset); figures will be noisier");
    }
    ok
}

/// The quartiles (25%, 50%, 75%) of `values`.
fn quartiles(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    (at(0.25), at(0.5), at(0.75))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

/// Median over `ABORTS` trials of the time from sending `/fault/abort` to receiving the next
/// successful `/hello`, and of the abort request alone, in milliseconds.
fn abort_to_next_success(port: u16) -> (f64, f64) {
    let mut total = Vec::new();
    let mut abort_only = Vec::new();
    let mut conn = Conn::open(port).expect("connect");
    for _ in 0..ABORTS {
        let started = Instant::now();
        let (status, body) = conn.get("/fault/abort").expect("the abort answers");
        assert_eq!(status, 500, "{body}");
        abort_only.push(started.elapsed().as_secs_f64() * 1000.0);
        loop {
            let (status, _) = conn.get("/hello").expect("a response after the abort");
            if status == 200 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no success after an abort"
            );
        }
        total.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    (median(total), median(abort_only))
}

/// The esbuild the tool installs into the tool cache.
fn tool_esbuild() -> cargo_worker_build::minify::Esbuild {
    cargo_worker_build::minify::Esbuild {
        program: cargo_worker_build::minify::binary(&cargo_worker_build::toolcache::dir(
            "esbuild",
            cargo_worker_build::minify::ESBUILD_VERSION,
        )),
        origin: "tool cache".into(),
    }
}

/// Where [`regenerated_glue`] keeps the import renaming of the module, beside the glue.
const RENAMES: &str = "renames.json";

/// wasm-bindgen's glue for the module in our bundle, regenerated from cargo's artifact with the
/// tool's arguments (the bundle holds the glue only inside its one module). The module
/// wasm-bindgen writes must import exactly what ours does, so the glue is the one we bundled.
fn regenerated_glue(ours: &Path) -> tempfile::TempDir {
    let artifact =
        support::fixtures_target_dir().join("wasm32-unknown-unknown/release/fixture_faults.wasm");
    let bindgen =
        cargo_worker_build::toolcache::dir("wasm-bindgen", "0.2.130").join("bin/wasm-bindgen");
    assert!(
        bindgen.is_file(),
        "no wasm-bindgen 0.2.130 in the tool cache ({}): build any fixture once",
        bindgen.display()
    );
    let dir = tempfile::Builder::new()
        .prefix("cwb-glue-")
        .tempdir()
        .unwrap();
    support::run_ok(
        std::process::Command::new(&bindgen)
            .args([
                "--target",
                "module",
                "--out-name",
                "index",
                "--experimental-reset-state-function",
                "--out-dir",
            ])
            .arg(dir.path())
            .arg(&artifact),
    );
    // The module of a minified bundle imports short names (cargo_worker_build::imports): the
    // same renaming, kept beside the glue for the bundling runs.
    let renames = cargo_worker_build::imports::shorten(
        &dir.path().join("index_bg.wasm"),
        dir.path(),
        "index.js",
        &tool_esbuild(),
    )
    .expect("the regenerated module's imports are renamed as the tool renames them");
    fs::write(
        dir.path().join(RENAMES),
        serde_json::to_vec(&renames).unwrap(),
    )
    .unwrap();
    let imports = |path: &Path| -> Vec<String> {
        let bytes = fs::read(path).unwrap();
        let mut names = Vec::new();
        for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
            if let Ok(wasmparser::Payload::ImportSection(reader)) = payload {
                for import in reader.into_imports().flatten() {
                    names.push(format!("{}/{}", import.module, import.name));
                }
            }
        }
        names.sort();
        names
    };
    assert_eq!(
        imports(&dir.path().join("index_bg.wasm")),
        imports(&ours.join("index_bg.wasm")),
        "{} is not the module of our --unwind bundle (another build of the fault fixture ran \
         since?): run the bench again",
        artifact.display()
    );
    dir
}

/// A bundle of the fault fixture with `entry` for its entry, made as the tool makes ours: the
/// entry, the runtime and the glue bundled by the tool's esbuild job (minified), beside our
/// (optimised) module.
fn bundle_with_entry(ours: &Path, glue: &Path, entry: &str) -> tempfile::TempDir {
    bundle_with_runtime(ours, glue, entry, include_str!("../src/runtime/runtime.js"))
}

/// [`bundle_with_entry`] with another recovery runtime (`BENCH_OTHER_RUNTIME`).
fn bundle_with_runtime(ours: &Path, glue: &Path, entry: &str, runtime: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("cwb-variant-")
        .tempdir()
        .unwrap();
    let sources = dir.path().join(".bundle-src");
    fs::create_dir_all(&sources).unwrap();
    fs::copy(glue.join("index.js"), sources.join("glue.js")).unwrap();
    if glue.join("snippets").is_dir() {
        copy_tree(&glue.join("snippets"), &sources.join("snippets"), &|_| {
            false
        });
    }
    fs::write(sources.join("runtime.js"), runtime).unwrap();
    fs::write(sources.join("index.js"), entry).unwrap();
    let renames: cargo_worker_build::imports::Renames =
        serde_json::from_slice(&fs::read(glue.join(RENAMES)).unwrap()).unwrap();
    cargo_worker_build::esbuild::bundle(
        &tool_esbuild(),
        &cargo_worker_build::esbuild::BundleJob {
            dir: dir.path(),
            sources: ".bundle-src",
            entry: "index.js",
            glue: "glue.js",
            metafile: "index.meta.json",
            minify: true,
            snippets: &[],
            profile: "release",
            renames: &renames,
        },
    )
    .expect("esbuild bundles the variant");
    fs::remove_dir_all(&sources).unwrap();
    fs::copy(ours.join("index_bg.wasm"), dir.path().join("index_bg.wasm")).unwrap();
    dir
}

/// Our bundle as a crate without RPC functions gets it: the entry the tool renders then, whose
/// default export is a plain module-worker object instead of a `WorkerEntrypoint` class.
fn module_worker_bundle(ours: &Path, glue: &Path) -> tempfile::TempDir {
    module_worker_bundle_with(ours, glue, include_str!("../src/runtime/runtime.js"))
}

fn module_worker_bundle_with(ours: &Path, glue: &Path, runtime: &str) -> tempfile::TempDir {
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(ours.join(".worker-build.json")).unwrap()).unwrap();
    let mut exports: cargo_worker_build::exports::Exports =
        serde_json::from_value(manifest["exports"].clone()).unwrap();
    exports.functions.clear();
    let entry = cargo_worker_build::bundle::render_entry(
        &cargo_worker_build::plan::Mode::Unwind {
            eh: cargo_worker_build::cli::EhEncoding::Exnref,
        },
        false,
        &exports,
    );
    bundle_with_runtime(ours, glue, &entry, runtime)
}

/// Our module with a raw hand-written entry from the fixture's `js/` (no runtime).
fn raw_bundle(ours: &Path, glue: &Path, entry: &str) -> tempfile::TempDir {
    let entry = fs::read_to_string(fixture("faults").join("js").join(entry)).unwrap();
    bundle_with_entry(ours, glue, &entry)
}

fn main() {
    let ours = faults_bundle(Build::UnwindExnref);
    let glue = regenerated_glue(&ours);
    let raw_object = raw_bundle(&ours, glue.path(), "raw-entry.js");
    let raw_object_again = raw_bundle(&ours, glue.path(), "raw-entry.js");
    let raw_class = raw_bundle(&ours, glue.path(), "raw-entrypoint.js");
    let raw_class_rpc = raw_bundle(&ours, glue.path(), "raw-entrypoint-rpc.js");
    let raw_class_again = raw_bundle(&ours, glue.path(), "raw-entrypoint.js");
    let object = module_worker_bundle(&ours, glue.path());
    let variant = |name: &str, dir: &Path, baseline, recovers| Variant {
        name: name.to_string(),
        dir: dir.to_path_buf(),
        server: Server::start(Serve::Worker(dir)),
        baseline,
        recovers,
    };
    // Rows 0 and 1 are the baselines: a hand-written module-worker object and a hand-written
    // `WorkerEntrypoint`, each calling the export directly. Row 2 is the same as row 0 (a
    // second server of an identical bundle): how far apart two identical variants measure is
    // the noise floor of the run.
    let mut variants = vec![
        variant(
            "raw export, hand-written module-worker object",
            raw_object.path(),
            None,
            false,
        ),
        variant(
            "raw export, hand-written WorkerEntrypoint",
            raw_class.path(),
            None,
            false,
        ),
        variant(
            "raw export, module-worker object again (noise floor)",
            raw_object_again.path(),
            Some(0),
            false,
        ),
        variant(
            "cargo-worker-build --unwind, hello crate (module-worker object)",
            object.path(),
            Some(0),
            true,
        ),
        variant(
            "cargo-worker-build --unwind, crate with RPC functions (WorkerEntrypoint)",
            &ours,
            Some(1),
            true,
        ),
        // What the crate's RPC methods cost by themselves, without the runtime: the same
        // hand-written class with them added, against the one without.
        variant(
            "raw export, hand-written WorkerEntrypoint with the RPC methods",
            raw_class_rpc.path(),
            Some(1),
            false,
        ),
        // The class path's own noise floor: a second server of the identical class bundle
        // against the first, so the class row is read against the spread of its baseline.
        variant(
            "raw export, hand-written WorkerEntrypoint again (noise floor)",
            raw_class_again.path(),
            Some(1),
            false,
        ),
    ];
    // Other copies of the runtime (an older one, say: `git show REV:src/runtime/runtime.js`,
    // or one with a mechanism taken out) in the module-worker entry:
    // BENCH_OTHER_RUNTIME="path" or "name=path;name=path".
    let others: Vec<(String, tempfile::TempDir)> = std::env::var("BENCH_OTHER_RUNTIME")
        .map(|list| {
            list.split(';')
                .filter(|item| !item.is_empty())
                .map(|item| {
                    let (name, path) = item
                        .split_once('=')
                        .unwrap_or(("BENCH_OTHER_RUNTIME", item));
                    let runtime = fs::read_to_string(path)
                        .unwrap_or_else(|e| panic!("BENCH_OTHER_RUNTIME: {path}: {e}"));
                    (
                        format!("module-worker object with {name}"),
                        module_worker_bundle_with(&ours, glue.path(), &runtime),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    for (name, dir) in &others {
        variants.push(variant(name, dir.path(), Some(0), true));
    }
    let worker_build = std::env::var_os("WORKER_BUILD_BUNDLE").map(PathBuf::from);
    if let Some(dir) = &worker_build {
        assert!(
            dir.join("index.js").is_file(),
            "WORKER_BUILD_BUNDLE={} has no index.js",
            dir.display()
        );
        variants.push(variant(
            "workers-rs worker-build 0.8.7 --panic-unwind (WorkerEntrypoint)",
            dir,
            Some(1),
            true,
        ));
    }

    // Any other bundles of the same crate to compare (ablations of the runtime, other tools'
    // entries): EXTRA_BUNDLES="name=dir;name=dir".
    if let Ok(extra) = std::env::var("EXTRA_BUNDLES") {
        for item in extra.split(';').filter(|i| !i.is_empty()) {
            let (name, dir) = item
                .split_once('=')
                .expect("EXTRA_BUNDLES items are name=dir");
            variants.push(variant(name, Path::new(dir), Some(0), true));
        }
    }

    // BENCH_KEEP=dir keeps each variant's workerd config and bundle in dir/<n>-<name>, for
    // benches/workerd_instructions.mjs (instructions per request, which load does not move).
    if let Some(keep) = std::env::var_os("BENCH_KEEP") {
        for (i, variant) in variants.iter().enumerate() {
            let slug: String = variant
                .name
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            let to = Path::new(&keep).join(format!("{i:02}-{slug}"));
            copy_tree(variant.server.dir(), &to, &|path| {
                path.ends_with("workerd.log")
            });
            eprintln!("kept {}", to.display());
        }
    }

    // workerd runs its JavaScript on one thread: give the servers one core and the client the
    // other, so the client's threads do not steal time from the server being measured.
    let pinned = variants.iter().all(|v| pin(v.server.pid(), "0")) && pin(std::process::id(), "1");

    // Warm up, then interleave the variants within each round (slices) and across rounds, so
    // drift on the machine hits every variant alike.
    let warm_up = |server: &Server| {
        let paths = vec!["/hello".to_string(); 2_000];
        load(server.port(), &paths, *CONCURRENCY, Duration::from_secs(15));
    };
    for variant in &variants {
        warm_up(&variant.server);
    }
    let mut rounds: Vec<Vec<Figures>> = vec![Vec::new(); variants.len()];
    let slice = (*REQUESTS).div_ceil(*SLICES);
    for round in 0..*ROUNDS {
        // This round's servers: fresh ones, started and warmed up before any is measured, in an
        // order that moves on each round (the one warmed first waits longest for its first
        // slice, and V8 does work of its own while a process idles).
        let n = variants.len();
        let mut fresh: Vec<Option<Server>> = (0..n).map(|_| None).collect();
        if *FRESH {
            for k in 0..n {
                let i = (round + k) % n;
                let server = Server::start(Serve::Worker(&variants[i].dir));
                if pinned {
                    pin(server.pid(), "0");
                }
                warm_up(&server);
                fresh[i] = Some(server);
            }
        }
        let server = |i: usize| fresh[i].as_ref().unwrap_or(&variants[i].server);
        let mut tallies: Vec<Tally> = (0..n).map(|_| Tally::default()).collect();
        // Each slice starts with the next variant, so none is always measured first or last.
        for s in 0..*SLICES {
            for k in 0..n {
                let i = (round + s + k) % n;
                let requests = slice.min(*REQUESTS - tallies[i].requests);
                if requests > 0 {
                    tallies[i].add_slice(server(i), requests);
                }
            }
        }
        for (i, tally) in tallies.into_iter().enumerate() {
            rounds[i].push(tally.figures());
        }
    }

    println!(
        "\n/hello, {} requests x {} rounds ({} interleaved slices per round), concurrency {}, \
         workerd on 127.0.0.1{}, {} (medians of rounds; CPU: least of rounds)",
        *REQUESTS,
        *ROUNDS,
        *SLICES,
        *CONCURRENCY,
        if pinned {
            ", pinned to CPU 0, client on CPU 1"
        } else {
            ", not pinned"
        },
        if *FRESH {
            "a fresh workerd per variant and round"
        } else {
            "one workerd per variant (BENCH_FRESH=0)"
        }
    );
    println!(
        "| variant | req/s | p50 ms | p99 ms | workerd CPU µs/req \
         | abort -> next 200 ms | abort request ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut cpu = Vec::new();
    for (i, variant) in variants.iter_mut().enumerate() {
        let figures = &rounds[i];
        let row_rps = median(figures.iter().map(|f| f.rps).collect());
        let p50 = median(figures.iter().map(|f| f.p50).collect());
        let p99 = median(figures.iter().map(|f| f.p99).collect());
        // The least CPU time of the rounds: other work on the machine only ever adds to it.
        let cpu_us = figures
            .iter()
            .map(|f| f.cpu_us)
            .fold(f64::INFINITY, f64::min);
        // The raw entries cannot recover: after their first abort every request fails.
        let reinit = if !variant.recovers {
            "n/a (never recovers) | n/a".to_string()
        } else {
            let (total, abort) = abort_to_next_success(variant.server.port());
            format!("{total:.2} | {abort:.2}")
        };
        println!(
            "| {} | {row_rps:.0} | {p50:.2} | {p99:.2} | {cpu_us:.0} | {reinit} |",
            variant.name
        );
        cpu.push(cpu_us);
    }
    // Each round ran the variants back to back, so the ratio within a round cancels the drift
    // of the machine between rounds; its quartiles over the rounds say how sure the figure is.
    println!(
        "\nagainst its raw baseline: throughput per round (25% / median / 75% of {} rounds); CPU efficiency (baseline CPU per request / this: least of rounds, then 25% / median / 75% per round)",
        *ROUNDS
    );
    for (i, variant) in variants.iter().enumerate() {
        let Some(base) = variant.baseline else {
            continue;
        };
        let (q1, q2, q3) = quartiles(
            (0..*ROUNDS)
                .map(|r| rounds[i][r].rps / rounds[base][r].rps)
                .collect(),
        );
        // CPU per request of the baseline over this one's, within each round.
        let (c1, c2, c3) = quartiles(
            (0..*ROUNDS)
                .map(|r| rounds[base][r].cpu_us / rounds[i][r].cpu_us)
                .collect(),
        );
        println!(
            "  {} / {}: {q1:.3} / {q2:.3} / {q3:.3}; CPU {:.3} (per round: {c1:.3} / {c2:.3} / {c3:.3})",
            variant.name,
            variants[base].name,
            cpu[base] / cpu[i]
        );
    }
    // The target is 0.98x the raw export. This prints the figures and asserts nothing about
    // them: on a shared two-core machine (the client runs on the same cores) rates and even
    // workerd's CPU per request move by tens of percent between runs, so a bound would either
    // fail at random or prove nothing. BENCHMARKS.md records runs with their conditions.
}
