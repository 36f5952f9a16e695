//! End-to-end fault injection: the fault fixture (`tests/fixtures/faults`) built by the tool and
//! served in workerd on 127.0.0.1, one server per build mode. Each test walks through every
//! kind of failure and asserts what a client sees (status, body, latency) and which state
//! survives (the static counter, Durable Object fields), plus the runtime's log lines and its
//! re-initialisation counter.

mod support;

use std::thread;
use std::time::Duration;

use support::recovery::{faults_bundle, Build, Serve, Server};

/// A failing request must answer well before any runtime timeout (workerd's is 30 s and more).
const PROMPT_SECS: f64 = 5.0;

/// The aborts every build must survive: route, and what the log line names.
const ABORTS: &[&str] = &[
    "/fault/abort",
    "/fault/oom",
    "/fault/overflow",
    "/fault/double-panic",
    "/fault/extern-c-panic",
    "/async/abort?ms=5",
];

fn failed_promptly(server: &Server, path: &str) -> String {
    let (status, body, secs) = server.get(path);
    assert_eq!(
        status,
        500,
        "GET {path} should fail its request, got {status} {body:?}\n{}",
        server.log()
    );
    assert!(secs < PROMPT_SECS, "GET {path} took {secs:.1} s to fail");
    body
}

fn counter(server: &Server) -> u32 {
    server.expect("/state", 200).parse().expect("a number")
}

fn reinits(server: &Server) -> u64 {
    server.stats("/recovery")["reinits"]
        .as_u64()
        .expect("reinits")
}

fn heap(server: &Server) -> (u64, u64) {
    let body = server.expect("/heap", 200);
    let field = |name: &str| -> u64 {
        body.split(' ')
            .find_map(|part| part.strip_prefix(name))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {body:?}"))
    };
    (field("live="), field("pages="))
}

fn lines_containing(server: &Server, needle: &str) -> usize {
    server
        .runtime_lines()
        .iter()
        .filter(|line| line.contains(needle))
        .count()
}

/// `/do/<name>/info` -> (id, construction)
fn object_info(server: &Server, name: &str) -> (String, String) {
    let body = server.expect(&format!("/do/{name}/info"), 200);
    let field = |key: &str| {
        body.split(' ')
            .find_map(|part| part.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {body:?}"))
            .to_string()
    };
    (field("id="), field("construction="))
}

/// Panics, JS exceptions and async panics fail only their request under `--unwind`.
fn recoverable_failures(server: &Server) {
    assert_eq!(server.expect("/count", 200), "1");
    assert_eq!(server.expect("/count", 200), "2");

    // A panic: 500, one log line with its message, counter kept, no re-initialisation.
    failed_promptly(server, "/fault/panic");
    assert_eq!(counter(server), 2);
    assert_eq!(
        lines_containing(
            server,
            "fetch failed: PanicError: fault: panic requested (recovered; instance kept)"
        ),
        1,
        "one log line per recovered panic:\n{}",
        server.log()
    );

    // Panics unwinding past a live 1 MiB Vec free it: the heap stays flat over 200 of them.
    let (live_before, pages_before) = heap(server);
    for _ in 0..200 {
        failed_promptly(server, "/fault/panic-vec");
    }
    let (live_after, pages_after) = heap(server);
    assert!(
        live_after <= live_before + 64 * 1024,
        "live heap grew from {live_before} to {live_after} bytes over 200 caught panics"
    );
    assert!(
        pages_after <= pages_before + 32,
        "Wasm memory grew from {pages_before} to {pages_after} pages over 200 caught panics"
    );

    // A JS exception from an imported function, unwinding through Rust: recoverable.
    failed_promptly(server, "/fault/js-throw");
    assert_eq!(
        counter(server),
        2,
        "a JS exception through Rust keeps the state"
    );
    assert_eq!(
        lines_containing(server, "SyntaxError"),
        1,
        "{}",
        server.log()
    );

    // A panic after an await runs in a microtask: the request still fails at once.
    failed_promptly(server, "/async/panic?ms=5");
    assert_eq!(counter(server), 2);

    // A JS exception after an await, like the one above (the `worker` crate's handler is a
    // future, polled in a microtask): Rust drops the future, whose promise can then never
    // settle. The instance and its state are kept, the runtime logs one line, and the request
    // still fails at once (workerd ends a request that can no longer produce a response).
    failed_promptly(server, "/async/js-throw?ms=5");
    assert_eq!(counter(server), 2);
    assert_eq!(
        lines_containing(server, "a microtask failed: SyntaxError"),
        2,
        "{}",
        server.log()
    );

    // A Durable Object keeps its fields across its panics.
    for expected in ["1", "2", "3"] {
        assert_eq!(server.expect("/do/kept/inc", 200), expected);
    }
    failed_promptly(server, "/do/kept/panic");
    assert_eq!(server.expect("/do/kept/get", 200), "3");
    failed_promptly(server, "/do/kept/async-panic?ms=5");
    assert_eq!(server.expect("/do/kept/get", 200), "3");
    assert_eq!(
        object_info(server, "kept").1,
        "1",
        "the object was never rebuilt"
    );

    let stats = server.stats("/recovery");
    assert_eq!(
        stats["reinits"], 0,
        "no re-initialisation after recoverable failures: {stats}"
    );
    assert_eq!(stats["aborts"], 0, "{stats}");
    assert_eq!(
        stats["observed"], true,
        "the runtime reads the terminated flag: {stats}"
    );
    assert_eq!(lines_containing(server, "aborted"), 0, "{}", server.log());
}

/// Every kind of abort: the request fails, the next one runs on a fresh instance, once.
fn aborts(server: &Server) {
    let (object_id, _) = object_info(server, "rebuilt");
    server.expect("/do/rebuilt/inc", 200);
    let base = reinits(server);

    for (i, path) in ABORTS.iter().enumerate() {
        server.expect("/count", 200);
        assert!(counter(server) > 0);
        failed_promptly(server, path);
        assert_eq!(
            counter(server),
            0,
            "after {path} the next request runs on a fresh instance"
        );
        assert_eq!(
            reinits(server),
            base + i as u64 + 1,
            "exactly one re-initialisation for {path}"
        );
    }
    assert_eq!(
        lines_containing(server, "Wasm instance aborted ("),
        (base as usize) + ABORTS.len(),
        "one log line per abort:\n{}",
        server.log()
    );
    assert!(
        lines_containing(server, "Wasm instance aborted (stack overflow") >= 1,
        "the stack overflow is named:\n{}",
        server.log()
    );

    // Durable Objects bound to the dead instance are rebuilt with their constructor arguments:
    // same object id, fresh fields (the constructor ran once on the new instance).
    assert_eq!(server.expect("/do/rebuilt/get", 200), "0");
    let (id_after, construction) = object_info(server, "rebuilt");
    assert_eq!(
        id_after, object_id,
        "rebuilt from the original DurableObjectState"
    );
    assert_eq!(construction, "1");

    // An abort inside a Durable Object method.
    assert_eq!(server.expect("/do/dying/inc", 200), "1");
    let before = reinits(server);
    failed_promptly(server, "/do/dying/abort");
    assert_eq!(reinits(server), before + 1);
    assert_eq!(server.expect("/do/dying/inc", 200), "1");
    failed_promptly(server, "/do/dying/async-abort?ms=5");
    assert_eq!(reinits(server), before + 2);
    assert_eq!(server.expect("/do/dying/inc", 200), "1");

    in_flight_abort(server);
}

/// Slow requests in flight when another request aborts fail at once (no hang), the instance is
/// re-initialised exactly once, and the next requests succeed.
fn in_flight_abort(server: &Server) {
    server.expect("/count", 200);
    let before = reinits(server);
    let port = server.port();
    let slow: Vec<_> = (0..8)
        .map(|_| {
            thread::spawn(move || {
                let started = std::time::Instant::now();
                let mut conn = support::recovery::Conn::open(port).expect("connect");
                let (status, body) = conn.get("/slow?ms=1500").expect("a response");
                (status, body, started.elapsed().as_secs_f64())
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    failed_promptly(server, "/fault/abort");
    for handle in slow {
        let (status, body, secs) = handle.join().unwrap();
        assert_eq!(
            status, 500,
            "a request in flight on the aborted instance fails: {body:?}"
        );
        assert!(
            secs < 1.4,
            "it fails at the abort, not after its own 1.5 s wait ({secs:.2} s)"
        );
    }
    assert_eq!(
        reinits(server),
        before + 1,
        "one re-initialisation however many were in flight"
    );
    // The dead instance's futures never resume: had a timer continuation of a slow request run
    // Rust (on either instance), it would have incremented the counter after its 1.5 s wait.
    thread::sleep(Duration::from_millis(1700));
    assert_eq!(server.expect("/count", 200), "1");
    assert_eq!(server.expect("/slow?ms=5", 200), "2");
    assert_eq!(
        reinits(server),
        before + 1,
        "nothing ran on the dead instance"
    );
}

fn unwind_suite(build: Build) {
    let bundle = faults_bundle(build);
    let server = Server::start(Serve::Worker(&bundle));
    recoverable_failures(&server);
    aborts(&server);
}

#[test]
fn unwind_exnref_recovers_from_every_fault() {
    unwind_suite(Build::UnwindExnref);
}

#[test]
fn unwind_legacy_recovers_from_every_fault() {
    unwind_suite(Build::UnwindLegacy);
}

#[test]
fn panic_abort_build_recovers_from_every_fault() {
    let bundle = faults_bundle(Build::Abort);
    let server = Server::start(Serve::Worker(&bundle));

    // Under panic=abort a panic is an abort: the request fails, the next runs on a fresh
    // instance (state lost, as the build mode implies), and nothing hangs.
    assert_eq!(server.expect("/count", 200), "1");
    failed_promptly(&server, "/fault/panic");
    assert_eq!(counter(&server), 0);
    assert_eq!(reinits(&server), 1);
    assert_eq!(server.stats("/recovery")["observed"], true);

    failed_promptly(&server, "/async/panic?ms=5");
    assert_eq!(reinits(&server), 2);

    // The Durable Object panic that hangs worker-build 0.8.7's panic=abort bundle for 30 s.
    assert_eq!(server.expect("/do/kept/inc", 200), "1");
    failed_promptly(&server, "/do/kept/panic");
    failed_promptly(&server, "/do/kept/async-panic?ms=5");
    assert_eq!(
        server.expect("/do/kept/inc", 200),
        "1",
        "rebuilt with fresh fields"
    );
    assert_eq!(reinits(&server), 4);

    aborts(&server);
}

/// Library mode: a JavaScript Worker imports the crate's functions and classes; each failing
/// call throws (or rejects) for its caller and the next call works.
#[test]
fn library_mode_recovers_every_call() {
    let bundle = faults_bundle(Build::UnwindLibrary);
    let client = support::fixture("faults").join("js/library-client.js");
    let server = Server::start(Serve::Library {
        bundle: &bundle,
        client: &client,
    });
    assert_eq!(server.expect("/add", 200), "5");
    assert_eq!(server.expect("/bump", 200), "1");

    // Recoverable: the caller sees the error itself, the library keeps its state.
    let body = server.expect("/fault?kind=panic", 500);
    assert_eq!(body, "PanicError: fault: panic requested");
    assert_eq!(server.expect("/bump", 200), "2");
    let body = server.expect("/fault?kind=js-throw", 500);
    assert!(
        body.starts_with("SyntaxError: "),
        "the JS exception, not a panic: {body}"
    );
    assert_eq!(server.expect("/bump", 200), "3");
    let body = server.expect("/fault-later?kind=panic", 500);
    assert_eq!(body, "PanicError: fault: panic requested");
    assert_eq!(server.expect("/bump", 200), "4");
    assert_eq!(server.expect("/tally/new?start=10", 200), "10");
    assert_eq!(server.expect("/tally/add", 200), "11");
    server.expect("/tally/fault?kind=panic", 500);
    assert_eq!(
        server.expect("/tally/add", 200),
        "12",
        "the object keeps its fields"
    );
    assert_eq!(server.stats("/stats")["reinits"], 0);

    // Aborts: the failing call throws, the next call runs on a fresh instance, objects are
    // rebuilt from their constructor arguments.
    assert_eq!(
        server.expect("/fault?kind=abort", 500),
        "RuntimeError: unreachable"
    );
    assert_eq!(server.expect("/bump", 200), "1");
    assert_eq!(server.expect("/tally/start", 200), "10");
    assert_eq!(server.expect("/tally/add", 200), "11");
    let body = server.expect("/tally/fault?kind=overflow", 500);
    assert!(body.starts_with("RangeError: Maximum call stack"), "{body}");
    assert_eq!(server.expect("/tally/add", 200), "11");
    let body = failed_promptly(&server, "/fault-later?kind=abort");
    assert!(body.starts_with("WasmAbortError: "), "{body}");
    assert_eq!(server.expect("/bump", 200), "1");

    let stats = server.stats("/stats");
    assert_eq!(stats["reinits"], 3, "{stats}");
    assert_eq!(stats["aborts"], 3, "{stats}");
    assert_eq!(stats["failures"], 4, "{stats}");
    assert_eq!(
        lines_containing(&server, "Wasm instance aborted ("),
        3,
        "{}",
        server.log()
    );
}

/// Exported free functions are RPC methods of the Worker's default entrypoint, with the same
/// recovery as its handlers.
#[test]
fn rpc_methods_recover() {
    let bundle = faults_bundle(Build::UnwindExnref);
    let client = support::fixture("faults").join("js/rpc-client.js");
    let server = Server::start(Serve::Rpc {
        bundle: &bundle,
        client: &client,
    });
    assert_eq!(server.expect("/add", 200), "5");
    assert_eq!(server.expect("/bump", 200), "1");
    let body = server.expect("/fault?kind=panic", 500);
    assert!(body.contains("fault: panic requested"), "{body}");
    assert_eq!(
        server.expect("/bump", 200),
        "2",
        "state kept after a panic in an RPC call"
    );
    failed_promptly(&server, "/fault?kind=abort");
    assert_eq!(
        server.expect("/bump", 200),
        "1",
        "fresh instance after an abort"
    );
    assert_eq!(
        server.expect("/http?path=/state", 200),
        "1",
        "fetch over the binding"
    );
    failed_promptly(&server, "/fault-later?kind=abort");
    assert_eq!(server.expect("/bump", 200), "1");
    assert_eq!(
        lines_containing(&server, "Wasm instance aborted ("),
        2,
        "{}",
        server.log()
    );
}
