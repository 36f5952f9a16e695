//! Time of `--check-eh`'s JavaScript reader (`check::js::ModuleSyntax::parse`, swc's parser) on
//! real files, for BENCHMARKS.md: each file named on the command line is parsed `JS_PARSE_ROUNDS`
//! times (default 20) and the median and fastest round are printed with the declarations read.
//!
//! Run: `cargo bench --locked --bench js_parse -- FILE...` (optimised, as users run the tool),
//! or with `--profile dev` for the debug build the tests use. It asserts no speed.

use std::time::{Duration, Instant};

use cargo_worker_build::check::js::ModuleSyntax;

fn main() {
    let rounds: usize = std::env::var("JS_PARSE_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let files: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    assert!(
        !files.is_empty(),
        "usage: cargo bench --bench js_parse -- FILE..."
    );
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut times: Vec<Duration> = Vec::with_capacity(rounds);
        let mut result = None;
        for _ in 0..rounds.max(1) {
            let started = Instant::now();
            result = Some(ModuleSyntax::parse(&text));
            times.push(started.elapsed());
        }
        times.sort();
        let read = match result.expect("one round") {
            Ok(m) => format!("{} imports, {} exports", m.imports.len(), m.exports.len()),
            Err(e) => format!("error: {e}"),
        };
        println!(
            "{path}: {} bytes, median {:.2} ms, fastest {:.2} ms over {} rounds; {read}",
            text.len(),
            times[times.len() / 2].as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3,
            times.len(),
        );
    }
}
