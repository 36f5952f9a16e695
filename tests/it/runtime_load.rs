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

/// Requests of the Durable Object load: 0.2% abort the Worker at the top level.
const DO_REQUESTS: usize = 10_000;

fn is_top_level_abort(i: usize) -> bool {
    i % 500 == 250 // 0.2%
}

/// The proof of issue 16: concurrency 32 on a Durable Object route that awaits a timer, with
/// 0.2% of the requests aborting at the top level. No request hangs; no response comes from
/// Rust code running on an instance that had aborted (each answer carries the re-initialisation
/// count when its instance was born and when the answer was made); the requests that fail are
/// only those in flight at an abort, counted per abort.
#[test]
fn durable_object_route_under_top_level_aborts() {
    let bundle = faults_bundle(Build::UnwindExnref);
    let server = Server::start(Serve::Worker(&bundle));
    let paths: Vec<String> = (0..DO_REQUESTS)
        .map(|i| {
            if is_top_level_abort(i) {
                "/fault/abort".into()
            } else {
                format!("/do/load-{}/tick?ms=5", i % 8)
            }
        })
        .collect();
    let reinits_before = server.stats("/recovery")["reinits"].as_u64().unwrap();
    let samples = load(server.port(), &paths, CONCURRENCY, CLIENT_TIMEOUT);
    assert_bounded(&samples);
    let aborts: Vec<&Sample> = samples
        .iter()
        .filter(|s| is_top_level_abort(s.index))
        .collect();
    let mut failed_per_abort = vec![0usize; aborts.len()];
    let mut answered = 0;
    for sample in &samples {
        if is_top_level_abort(sample.index) {
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
        failed_per_abort[abort] += 1;
    }
    let reinits = server.stats("/recovery")["reinits"].as_u64().unwrap() - reinits_before;
    assert_eq!(
        reinits,
        aborts.len() as u64,
        "one re-initialisation per abort"
    );
    for (i, failed) in failed_per_abort.iter().enumerate() {
        assert!(
            *failed < CONCURRENCY,
            "abort {i} failed {failed} requests; at most the {} others in flight can",
            CONCURRENCY - 1
        );
    }
    let failed: usize = failed_per_abort.iter().sum();
    eprintln!(
        "Durable Object route, 0.2% top-level aborts: {} ({} aborts; {answered} answered; \
         {failed} failed in flight, {:.1} per abort: {failed_per_abort:?})",
        summary(&samples, elapsed(&samples)),
        aborts.len(),
        failed as f64 / aborts.len() as f64,
    );
}
