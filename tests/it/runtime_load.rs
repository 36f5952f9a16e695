//! Bounded load against the `--unwind` fault fixture in workerd (127.0.0.1 only): 20,000
//! requests at concurrency 32, first with 5% panicking requests, then with 5% panics and 0.1%
//! aborts, then 20,000 caught panics in a row for the memory check; and 10,000 requests to a
//! Durable Object route that awaits, with 0.2% top-level aborts (issue 16's proof). Each
//! request is bounded by a client timeout, so a hang fails the test instead of stalling it.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::support::recovery::{faults_bundle, load, quantile_ms, Build, Sample, Serve, Server};

const REQUESTS: usize = 20_000;
const CONCURRENCY: usize = 32;
/// The client gives up on a request after this long (and the test then fails).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);
/// No request may take longer than this, failed or not.
const LATENCY_BOUND: Duration = Duration::from_secs(5);

fn is_panic(i: usize) -> bool {
    i % 20 == 7 // 5%
}

fn is_abort(i: usize) -> bool {
    i % 1000 == 500 // 0.1%
}

/// Requests that wait on a timer before they increment: in flight when an abort strikes.
fn is_slow(i: usize) -> bool {
    i % 10 == 3 // 10%
}

fn assert_bounded(samples: &[Sample]) {
    let transport: Vec<_> = samples
        .iter()
        .filter(|s| s.error.is_some())
        .take(5)
        .collect();
    assert!(
        transport.is_empty(),
        "requests without a response: {transport:#?}"
    );
    let slowest = samples.iter().max_by_key(|s| s.latency()).unwrap();
    assert!(
        slowest.latency() < LATENCY_BOUND,
        "a request took {:?} (bound {LATENCY_BOUND:?}): {slowest:?}",
        slowest.latency()
    );
}

fn summary(samples: &[Sample], elapsed: Duration) -> String {
    let mut latencies: Vec<_> = samples.iter().map(Sample::latency).collect();
    format!(
        "{} requests in {:.1} s ({:.0} req/s), p50 {:.2} ms, p99 {:.2} ms",
        samples.len(),
        elapsed.as_secs_f64(),
        samples.len() as f64 / elapsed.as_secs_f64(),
        quantile_ms(&mut latencies, 0.5),
        quantile_ms(&mut latencies, 0.99)
    )
}

fn elapsed(samples: &[Sample]) -> Duration {
    samples.iter().map(|s| s.end).max().unwrap() - samples.iter().map(|s| s.start).min().unwrap()
}

#[test]
fn unwind_under_load_with_panics_and_aborts() {
    let bundle = faults_bundle(Build::UnwindExnref);
    let server = Server::start(Serve::Worker(&bundle));
    let port = server.port();

    // Phase 1: 5% panics. Only the panicking requests fail, and every successful increment is
    // counted exactly once.
    let paths: Vec<String> = (0..REQUESTS)
        .map(|i| {
            if is_panic(i) {
                "/fault/panic".into()
            } else {
                "/count".into()
            }
        })
        .collect();
    let samples = load(port, &paths, CONCURRENCY, CLIENT_TIMEOUT);
    assert_bounded(&samples);
    let mut values = Vec::new();
    for sample in &samples {
        if is_panic(sample.index) {
            assert_eq!(sample.status, 500, "a panic fails its request: {sample:?}");
        } else {
            assert_eq!(
                sample.status, 200,
                "only panicking requests fail: {sample:?}"
            );
            values.push(sample.body.parse::<u32>().expect("a counter value"));
        }
    }
    values.sort_unstable();
    let expected: Vec<u32> = (1..=values.len() as u32).collect();
    assert!(
        values == expected,
        "each increment answered exactly once, none lost"
    );
    assert_eq!(server.expect("/state", 200), values.len().to_string());
    let stats = server.stats("/recovery");
    assert_eq!(stats["reinits"], 0, "panics never re-initialise: {stats}");
    eprintln!("panics only: {}", summary(&samples, elapsed(&samples)));

    // Phase 2: 5% panics and 0.1% aborts (10% of the requests wait 20 ms before incrementing,
    // so some are in flight at each abort). Requests in flight at an abort fail at once; every
    // other request succeeds; one re-initialisation per abort.
    let paths: Vec<String> = (0..REQUESTS)
        .map(|i| {
            if is_abort(i) {
                "/fault/abort".into()
            } else if is_panic(i) {
                "/fault/panic".into()
            } else if is_slow(i) {
                "/tick?ms=20".into()
            } else {
                "/tick".into()
            }
        })
        .collect();
    let reinits_before = server.stats("/recovery")["reinits"].as_u64().unwrap();
    // The instance serving so far, and its counter: its increments continue from there.
    let first = server.expect("/tick", 200);
    let (first_token, first_value) = first.split_once(' ').expect("`<token> <n>`");
    let first_value: u32 = first_value.parse().unwrap();
    let samples = load(port, &paths, CONCURRENCY, CLIENT_TIMEOUT);
    assert_bounded(&samples);
    let aborts: Vec<&Sample> = samples.iter().filter(|s| is_abort(s.index)).collect();
    let mut per_instance: HashMap<String, Vec<u32>> = HashMap::new();
    let mut failed_in_flight = 0;
    for sample in &samples {
        if is_abort(sample.index) || is_panic(sample.index) {
            assert_eq!(sample.status, 500, "{sample:?}");
            continue;
        }
        if sample.status == 200 {
            let (token, value) = sample.body.split_once(' ').expect("`<token> <n>`");
            per_instance
                .entry(token.to_string())
                .or_default()
                .push(value.parse().unwrap());
            continue;
        }
        assert_eq!(sample.status, 500, "{sample:?}");
        let overlaps = aborts
            .iter()
            .any(|a| sample.start < a.end && sample.end > a.start);
        assert!(
            overlaps,
            "a request failed without an abort in flight: {sample:?}"
        );
        failed_in_flight += 1;
    }
    let reinits = server.stats("/recovery")["reinits"].as_u64().unwrap() - reinits_before;
    assert_eq!(
        reinits,
        aborts.len() as u64,
        "exactly one re-initialisation per abort"
    );
    // Each instance counted its successful increments exactly once: values 1..=k (continuing
    // after `first_value` on the instance that served phase 1).
    for (token, values) in &mut per_instance {
        values.sort_unstable();
        let base = if token == first_token { first_value } else { 0 };
        let expected: Vec<u32> = (base + 1..=base + values.len() as u32).collect();
        if *values != expected {
            let mut seen = std::collections::HashSet::new();
            let repeated: Vec<_> = values.iter().filter(|v| !seen.insert(**v)).collect();
            let missing: Vec<_> = expected.iter().filter(|v| !seen.contains(*v)).collect();
            panic!(
                "instance {token}: {} answered increments; missing {missing:?}, repeated {repeated:?}",
                values.len()
            );
        }
    }
    let after = server.expect("/tick", 200);
    let (token, value) = after.split_once(' ').unwrap();
    let base = if token == first_token { first_value } else { 0 };
    let counted = per_instance.get(token).map_or(0, Vec::len) as u32;
    assert_eq!(
        value,
        (base + counted + 1).to_string(),
        "the final counter equals the increments"
    );
    eprintln!(
        "panics and aborts: {} ({} aborts, {failed_in_flight} requests in flight at an abort failed)",
        summary(&samples, elapsed(&samples)),
        aborts.len()
    );

    // Phase 3: memory stays flat across 20,000 caught panics, each unwinding past a live 1 MiB
    // allocation.
    let heap = || -> BTreeMap<String, u64> {
        server
            .expect("/heap", 200)
            .split(' ')
            .filter_map(|part| part.split_once('='))
            .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
            .collect()
    };
    // One panic first: the allocator grows memory once for the 1 MiB buffer and keeps it.
    server.get("/fault/panic-vec");
    let before = heap();
    let paths = vec!["/fault/panic-vec".to_string(); REQUESTS];
    let samples = load(port, &paths, CONCURRENCY, CLIENT_TIMEOUT);
    assert_bounded(&samples);
    assert!(samples.iter().all(|s| s.status == 500));
    let after = heap();
    assert!(
        after["live"] <= before["live"] + 64 * 1024,
        "live heap {before:?} -> {after:?} across {REQUESTS} caught panics"
    );
    assert!(
        after["pages"] <= before["pages"] + 1,
        "Wasm memory {before:?} -> {after:?} across {REQUESTS} caught panics"
    );
    assert_eq!(
        server.stats("/recovery")["reinits"].as_u64().unwrap() - reinits_before,
        reinits
    );
    eprintln!(
        "caught panics: {} (heap {before:?} -> {after:?})",
        summary(&samples, elapsed(&samples))
    );
}

/// A soak with top-level aborts (issue 16's proof, issue 22's finding 15): `requests` requests,
/// one in `abort_every` of them `/fault/abort`.
struct Soak {
    name: &'static str,
    route: fn(usize) -> String,
    requests: usize,
    abort_every: usize,
    /// worker-build's failures per abort on this route.
    worker_build: f64,
}

impl Soak {
    fn is_abort(&self, i: usize) -> bool {
        i % self.abort_every == self.abort_every / 2
    }
}

/// worker-build 0.8.7's failures per abort in the same soaks, as issue 22 (finding 15) measured
/// them: on the Durable Object route (where it also left 62 requests hanging) and on the async
/// top-level route. They are not measured here: worker-build cannot build in this harness.
const WORKER_BUILD_DO_PER_ABORT: f64 = 9.9;
const WORKER_BUILD_ASYNC_PER_ABORT: f64 = 15.5;

/// What one soak lost.
struct Losses {
    aborts: usize,
    /// Failed requests whose handler had started on the instance that then aborted.
    entered: Vec<usize>,
    /// Failed requests whose handler never started on it (each could have run on the fresh one).
    not_entered: Vec<usize>,
}

impl Losses {
    fn per_abort(&self, counts: &[usize]) -> f64 {
        counts.iter().sum::<usize>() as f64 / self.aborts as f64
    }
}

/// Sends the soak's requests, made by its `route(i)` (each carrying `id=first_id + i`: the
/// fixture's notes outlive a soak) at concurrency 32, some `/fault/abort` instead. No request hangs; no response comes from Rust code running on
/// an instance that had aborted (each answer carries the re-initialisation count when its
/// instance was born and when the answer was made); a failed request must have been in flight
/// at an abort, and is counted as having entered the dead instance if its handler had started
/// there (the fixture notes each start), else as not entered.
fn soak(server: &Server, soak: &Soak, first_id: usize) -> Losses {
    let paths: Vec<String> = (0..soak.requests)
        .map(|i| {
            if soak.is_abort(i) {
                "/fault/abort".into()
            } else {
                format!("{}&id={}", (soak.route)(i), first_id + i)
            }
        })
        .collect();
    let before = server.stats("/recovery");
    let reinits_before = before["reinits"].as_u64().unwrap();
    let samples = load(server.port(), &paths, CONCURRENCY, CLIENT_TIMEOUT);
    assert_bounded(&samples);
    let after = server.stats("/recovery");
    let reinits = after["reinits"].as_u64().unwrap();
    let retried = after["retried"].as_u64().unwrap() - before["retried"].as_u64().unwrap();
    // Which instance (by re-initialisations before it) each request's handler started on.
    let entered: HashMap<usize, u64> = server
        .expect("/entered", 200)
        .split(' ')
        .filter_map(|note| note.split_once('@'))
        .map(|(id, at)| (id.parse().unwrap(), at.parse::<f64>().unwrap() as u64))
        .collect();
    let aborts: Vec<&Sample> = samples.iter().filter(|s| soak.is_abort(s.index)).collect();
    let mut losses = Losses {
        aborts: aborts.len(),
        entered: vec![0; aborts.len()],
        not_entered: vec![0; aborts.len()],
    };
    let mut answered = 0;
    for sample in &samples {
        if soak.is_abort(sample.index) {
            assert_eq!(sample.status, 500, "{sample:?}");
            continue;
        }
        if sample.status == 200 {
            let fields: Vec<&str> = sample.body.split(' ').collect();
            assert_eq!(
                fields.len(),
                4,
                "`<token> <born> <now> <value>`: {sample:?}"
            );
            assert_eq!(
                fields[1], fields[2],
                "a response made by Rust code on an instance that had been replaced: {sample:?}"
            );
            answered += 1;
            continue;
        }
        assert_eq!(sample.status, 500, "{sample:?}");
        let during = aborts
            .iter()
            .position(|a| sample.start < a.end && sample.end > a.start);
        let Some(abort) = during else {
            panic!("a request failed without an abort in flight: {sample:?}");
        };
        match entered.get(&(first_id + sample.index)) {
            Some(&at) => {
                assert!(
                    at < reinits,
                    "a request failed on the instance that is still live: {sample:?}"
                );
                losses.entered[abort] += 1;
            }
            None => losses.not_entered[abort] += 1,
        }
    }
    assert_eq!(
        reinits - reinits_before,
        aborts.len() as u64,
        "one re-initialisation per abort"
    );
    for i in 0..aborts.len() {
        let failed = losses.entered[i] + losses.not_entered[i];
        assert!(
            failed < CONCURRENCY,
            "abort {i} failed {failed} requests; at most the {} others in flight can",
            CONCURRENCY - 1
        );
    }
    eprintln!(
        "{}, 1 in {} requests aborts at the top level: {} ({} aborts; {answered} answered; \
         failures per abort {:.1}: {:.1} had entered the dead instance {:?}, {:.1} had not {:?}; \
         {retried} calls run again on a fresh instance)",
        soak.name,
        soak.abort_every,
        summary(&samples, elapsed(&samples)),
        aborts.len(),
        losses.per_abort(&losses.entered) + losses.per_abort(&losses.not_entered),
        losses.per_abort(&losses.entered),
        losses.entered,
        losses.per_abort(&losses.not_entered),
        losses.not_entered,
    );
    losses
}

/// Issue 16's proof and issue 22's finding 15: soaks of a Durable Object route that awaits a
/// timer, then of an async top-level route, with 0.2% of the requests aborting at the top
/// level. A request whose handler had not started on the instance that aborted has lost nothing,
/// so it must run on the fresh instance: none of them may fail.
#[test]
fn durable_object_route_under_top_level_aborts() {
    let bundle = faults_bundle(Build::UnwindExnref);
    let server = Server::start(Serve::Worker(&bundle));
    let soaks = [
        Soak {
            name: "Durable Object route",
            route: |i| format!("/do/load-{}/tick?ms=5", i % 8),
            requests: 10_000,
            abort_every: 500, // 0.2%, as in the issue
            worker_build: WORKER_BUILD_DO_PER_ABORT,
        },
        // Half the requests at twice the abort rate: as many aborts, each with 31 others in
        // flight as before, in half the time (the CI budget).
        Soak {
            name: "async top-level route",
            route: |_| "/work?ms=5".into(),
            requests: 5_000,
            abort_every: 250,
            worker_build: WORKER_BUILD_ASYNC_PER_ABORT,
        },
    ];
    let mut first_id = 0;
    for each in &soaks {
        let losses = soak(&server, each, first_id);
        first_id += each.requests;
        assert_eq!(
            losses.not_entered.iter().sum::<usize>(),
            0,
            "{}: requests failed that had not entered the instance which aborted: {:?}",
            each.name,
            losses.not_entered
        );
        eprintln!(
            "{}: {:.1} failures per abort, each by a request that had entered the dead instance \
             (worker-build 0.8.7: {}, measured in issue 22)",
            each.name,
            losses.per_abort(&losses.entered),
            each.worker_build
        );
    }
}
