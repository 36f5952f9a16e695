//! End-to-end fault injection: the fault fixture (`tests/fixtures/faults`) built by the tool and
//! served in workerd on 127.0.0.1, one server per build mode. Each test walks through every
//! kind of failure and asserts what a client sees (status, body, latency) and which state
//! survives (the static counter, Durable Object fields), plus the runtime's log lines and its
//! re-initialisation counter.

use crate::support;

use std::thread;
use std::time::Duration;

use crate::support::recovery::{faults_bundle, fixture_bundle, Build, Serve, Server};

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
    // future, polled in a microtask, so both are): wasm-bindgen-futures drops the future, whose
    // promise can then never settle. The runtime finds the call whose future was dropped and
    // fails it with the exception; the instance and its state are kept; one log line each.
    failed_promptly(server, "/async/js-throw?ms=5");
    assert_eq!(counter(server), 2);
    assert_eq!(
        lines_containing(
            server,
            "fetch failed: SyntaxError: Expected property name or '}' in JSON at position 2 \
             (line 1 column 3) in a Rust future, which wasm-bindgen dropped (recovered; \
             instance kept)"
        ),
        2,
        "{}",
        server.log()
    );
    assert_eq!(server.stats("/recovery")["droppedFutures"], 2);

    // A Durable Object keeps its fields across its panics.
    for expected in ["1", "2", "3"] {
        assert_eq!(server.expect("/do/kept/inc", 200), expected);
    }
    failed_promptly(server, "/do/kept/panic");
    assert_eq!(server.expect("/do/kept/get", 200), "3");
    failed_promptly(server, "/do/kept/async-panic?ms=5");
    assert_eq!(server.expect("/do/kept/get", 200), "3");
    // A JS exception after an await in a Durable Object method: its call fails at once, the
    // object keeps its fields.
    failed_promptly(server, "/do/kept/async-js-throw?ms=5");
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

/// `schedule_reinit()` on a live instance while requests are in flight: the next request runs
/// on a fresh instance, and those in flight fail at once instead of hanging.
fn reinit_with_requests_in_flight(server: &Server) {
    server.expect("/count", 200);
    let before = reinits(server);
    let port = server.port();
    let slow: Vec<_> = (0..4)
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
    assert_eq!(server.expect("/reinit", 200), "reinit scheduled");
    assert_eq!(server.expect("/count", 200), "1", "a fresh instance");
    for handle in slow {
        let (status, body, secs) = handle.join().unwrap();
        assert_eq!(status, 500, "{body:?}");
        assert!(
            secs < 1.4,
            "failed at the reinit, not after 1.5 s ({secs:.2} s)"
        );
    }
    assert_eq!(reinits(server), before + 1);
}

/// Plain JavaScript failing in a microtask and a timer of its own is not a Rust failure: not
/// counted, not logged by the runtime, and a request in flight meanwhile succeeds.
fn unrelated_errors(server: &Server) {
    let failures = server.stats("/recovery")["failures"].clone();
    let lines = server.runtime_lines().len();
    let port = server.port();
    let slow = thread::spawn(move || {
        let mut conn = support::recovery::Conn::open(port).expect("connect");
        conn.get("/slow?ms=400").expect("a response")
    });
    thread::sleep(Duration::from_millis(100));
    server.get("/noise");
    server.get("/noise");
    let (status, body) = slow.join().unwrap();
    assert_eq!(status, 200, "the request in flight succeeds: {body}");
    thread::sleep(Duration::from_millis(50));
    assert_eq!(server.stats("/recovery")["failures"], failures);
    assert_eq!(
        server.runtime_lines().len(),
        lines,
        "the runtime logged nothing: {:?}",
        server.runtime_lines()
    );
}

fn unwind_suite(build: Build) {
    let bundle = faults_bundle(build);
    let server = Server::start(Serve::Worker(&bundle));
    recoverable_failures(&server);
    aborts(&server);
    reinit_with_requests_in_flight(&server);
    unrelated_errors(&server);
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

// ---------------------------------------------------------------------------------------------
// Library mode on the recovery-lib fixture (`tests/fixtures/recovery-lib`): a plain wasm-bindgen
// crate imported by a JavaScript Worker (`js/client.js`), one scenario per route.

fn library_server() -> Server {
    let bundle = fixture_bundle("recovery-lib", Build::UnwindLibrary);
    let client = support::fixture("recovery-lib").join("js/client.js");
    Server::start(Serve::Library {
        bundle: &bundle,
        client: &client,
    })
}

/// The JSON a scenario route answered.
fn scenario(server: &Server, path: &str) -> serde_json::Value {
    server.stats(path)
}

fn error_of(outcome: &serde_json::Value) -> &str {
    outcome["error"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error, got {outcome}"))
}

/// Item 2: an async export that awaits, then calls an imported JS function that throws, rejects
/// its caller at once with that exception; a call in flight meanwhile completes; no
/// re-initialisation, state kept.
#[test]
fn library_async_js_exception_rejects_promptly() {
    let server = library_server();
    assert_eq!(scenario(&server, "/bump")["value"], 1);
    let seen = scenario(&server, "/async-js-throw");
    let dropped = &seen["dropped"];
    assert!(
        error_of(dropped).starts_with("SyntaxError: "),
        "the JS exception itself: {seen}"
    );
    assert!(
        dropped["ms"].as_f64().unwrap() < 250.0,
        "settled at once, not when the other call did: {seen}\n{}",
        server.log()
    );
    assert_eq!(
        seen["slow"]["value"], 2,
        "the call in flight is not touched: {seen}"
    );
    let stats = server.stats("/stats");
    assert_eq!(stats["reinits"], 0, "{stats}");
    assert_eq!(stats["droppedFutures"], 1, "{stats}");
    assert_eq!(
        lines_containing(&server, "later failed: SyntaxError"),
        1,
        "{}",
        server.log()
    );
}

/// Item 2 when two futures are polled in the same executor tick and the first one's JS
/// exception unwinds out of the tick: the second, not polled yet, still completes (the runtime
/// runs the rest of the executor's queue) instead of waiting for an unrelated wake-up.
#[test]
fn library_async_js_exception_leaves_the_rest_of_the_tick_running() {
    let server = library_server();
    let seen = scenario(&server, "/async-js-throw-same-tick");
    assert!(
        error_of(&seen["dropped"]).starts_with("SyntaxError: "),
        "{seen}"
    );
    assert_eq!(seen["next"]["value"], 1, "the other call completed: {seen}");
    assert!(
        seen["next"]["ms"].as_f64().unwrap() < 250.0,
        "at once: {seen}"
    );
    let stats = server.stats("/stats");
    assert_eq!(stats["droppedFutures"], 1, "{stats}");
    assert_eq!(stats["reinits"], 0, "{stats}");
}

/// Item 8: errors of plain JavaScript (a microtask, a timer, an event listener) are not Rust
/// failures: not counted, not logged by the runtime, and a call in flight completes.
#[test]
fn library_unrelated_errors_are_not_rust_failures() {
    let server = library_server();
    let port = server.port();
    let slow = thread::spawn(move || {
        let mut conn = support::recovery::Conn::open(port).expect("connect");
        conn.get("/later?kind=ok&ms=400").expect("a response")
    });
    thread::sleep(Duration::from_millis(100));
    server.get("/unrelated-errors");
    server.get("/unrelated-errors");
    let (status, body) = slow.join().unwrap();
    assert_eq!(status, 200, "{body}");
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["value"], 1, "the call in flight completed: {seen}");
    let stats = server.stats("/stats");
    assert_eq!(stats["failures"], 0, "{stats}");
    assert_eq!(stats["droppedFutures"], 0, "{stats}");
    assert!(
        server.runtime_lines().is_empty(),
        "the runtime logged nothing: {:?}",
        server.runtime_lines()
    );
}

/// Item 4: `schedule_reinit()` on a live instance with calls in flight: the next call runs on a
/// fresh instance; a call in flight whose future had been polled fails at once instead of
/// hanging, and one whose future no executor tick had polled yet runs on the fresh instance
/// (issue 22, finding 15).
#[test]
fn library_schedule_reinit_settles_calls_in_flight() {
    let server = library_server();
    assert_eq!(scenario(&server, "/bump")["value"], 1);
    let seen = scenario(&server, "/reinit-in-flight");
    assert_eq!(seen["next"]["value"], 1, "fresh instance: {seen}");
    assert!(
        error_of(&seen["slow"]).starts_with("WasmAbortError: "),
        "{seen}"
    );
    assert!(
        seen["slow"]["ms"].as_f64().unwrap() < 250.0,
        "at once, not after its 300 ms timer: {seen}"
    );
    // Its future had never been polled: it runs on the fresh instance, once (after `next`).
    assert_eq!(
        seen["queued"]["value"], 2,
        "the call that had not started: {seen}"
    );
    let stats = server.stats("/stats");
    assert_eq!(stats["reinits"], 1, "{stats}");
    assert_eq!(stats["retried"], 1, "{stats}");
}

/// Item 5: JS -> Rust -> JS callback -> Rust export that aborts. The inner call sees the trap,
/// nothing enters the dying instance, the outer call fails cleanly instead of running on a new
/// instance, and the instance is re-initialised once, after the outer call.
#[test]
fn library_nested_abort_recovers_after_the_outer_call() {
    let server = library_server();
    assert_eq!(scenario(&server, "/bump")["value"], 1);
    let seen = scenario(&server, "/nested");
    assert_eq!(
        error_of(&seen["inner"]),
        "RuntimeError: unreachable",
        "{seen}"
    );
    assert!(
        error_of(&seen["again"]).starts_with("WasmAbortError: "),
        "no call enters the dying instance: {seen}"
    );
    assert!(
        error_of(&seen["outer"]).starts_with("WasmAbortError: "),
        "the outer call fails cleanly: {seen}"
    );
    assert_eq!(seen["next"]["value"], 1, "fresh instance: {seen}");
    let stats = server.stats("/stats");
    assert_eq!(stats["reinits"], 1, "once: {stats}");
    assert_eq!(stats["aborts"], 1, "{stats}");
    assert_eq!(
        lines_containing(
            &server,
            "Wasm instance aborted (trap: unreachable in fault)"
        ),
        1,
        "{}",
        server.log()
    );
}

/// Item 6: the start function aborts during re-initialisation: bounded attempts, one clear
/// error per call meanwhile, no stack overflow, and a later call recovers.
#[test]
fn library_start_abort_retries_are_bounded() {
    let server = library_server();
    let seen = scenario(&server, "/start-abort?n=2&calls=3");
    assert_eq!(error_of(&seen["abort"]), "RuntimeError: unreachable");
    let calls = seen["calls"].as_array().unwrap();
    assert!(
        error_of(&calls[0]).contains("could not be re-initialised"),
        "{seen}"
    );
    assert_eq!(calls[1]["value"], 1, "the second attempt succeeds: {seen}");
    assert_eq!(calls[2]["value"], 2, "{seen}");

    let seen = scenario(&server, "/start-abort?n=1000&calls=6");
    let calls = seen["calls"].as_array().unwrap();
    for call in calls {
        assert!(
            error_of(call).starts_with("WasmAbortError: ")
                && error_of(call).contains("could not be re-initialised"),
            "every call gets one clear error: {seen}"
        );
    }
    let stats = server.stats("/stats");
    assert_eq!(
        stats["reinitFailures"], 5,
        "2 attempts in the first run, then 3 in a row and a backoff: {stats}"
    );
    assert!(
        !server.log().contains("Maximum call stack"),
        "{}",
        server.log()
    );
}

/// Item 7: wrapped objects pass to exports taking `&T` and `T`; `instanceof` works for objects
/// Rust returns; after an abort a constructed object is rebuilt and a returned one throws an
/// error naming its class.
#[test]
fn library_objects_cross_the_boundary() {
    let server = library_server();
    let seen = scenario(&server, "/objects");
    assert_eq!(seen["constructed"], true, "{seen}");
    assert_eq!(seen["byRef"]["value"], 4, "&T: {seen}");
    assert_eq!(seen["byValue"]["value"], 9, "T: {seen}");
    assert_eq!(
        seen["fromStatic"],
        serde_json::json!([true, {"value": 4}]),
        "{seen}"
    );
    assert_eq!(
        seen["fromMethod"],
        serde_json::json!([true, {"value": 5}]),
        "{seen}"
    );
    assert_eq!(
        seen["fromFunction"],
        serde_json::json!([true, {"value": 5}]),
        "{seen}"
    );
    let after = &seen["afterAbort"];
    assert_eq!(after["constructed"]["value"], 4, "rebuilt: {seen}");
    assert_eq!(
        after["byRef"]["value"], 5,
        "the rebuilt object, by reference: {seen}"
    );
    for key in ["fromStatic", "fromFunction"] {
        let error = error_of(&after[key]);
        assert!(
            error.starts_with("WasmAbortError: ") && error.contains("Tally"),
            "{key}: {seen}"
        );
    }
}
