//! Times the `--check-eh` analyser on a generated ~10 MB module (the speed target is under 1 s in a
//! release build), or on the modules / bundles given as arguments.
//!
//! ```text
//! cargo run --release --example bench_check            # generated 10 MB modules, exnref and legacy
//! cargo run --release --example bench_check -- build/  # real bundles or .wasm files, with the report
//! ```
//!
//! It prints numbers only; nothing here asserts a time.

use std::path::PathBuf;
use std::time::Instant;

use cargo_worker_build::check::{self, CheckOptions};
use cargo_worker_build::cli::TargetRuntime;

/// Bytes of code to generate.
const TARGET_SIZE: usize = 10 * 1024 * 1024;

fn main() {
    let paths: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let opts = CheckOptions {
        expect: None,
        eh: None,
        runtime: TargetRuntime::Workerd,
    };
    if !paths.is_empty() {
        for path in &paths {
            let start = Instant::now();
            let result = check::check_path(path, &opts);
            let elapsed = start.elapsed();
            match result {
                Ok(report) => {
                    report.render_human(&mut std::io::stdout(), false).unwrap();
                    println!("{}: {:.1} ms", path.display(), elapsed.as_secs_f64() * 1e3);
                }
                Err(e) => println!(
                    "{}: error after {:.1} ms: {e}",
                    path.display(),
                    elapsed.as_secs_f64() * 1e3
                ),
            }
        }
        return;
    }
    for legacy in [false, true] {
        let wasm = generate(TARGET_SIZE, legacy);
        let name = if legacy { "legacy" } else { "exnref" };
        // One warm-up run, then the best and the mean of five.
        let _ = check::check_module(name, &wasm, None, &opts);
        let mut times = Vec::new();
        let mut report = None;
        for _ in 0..5 {
            let start = Instant::now();
            report = Some(check::check_module(name, &wasm, None, &opts));
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
        let report = report.unwrap();
        let scan = best_of(5, || {
            check::scan::scan(&wasm).expect("generated module decodes");
        });
        let validate = best_of(5, || {
            let features = check::features::validator_features(TargetRuntime::Workerd);
            wasmparser::Validator::new_with_features(features)
                .validate_all(&wasm)
                .expect("generated module validates");
        });
        let facts = report.facts.as_ref().expect("generated module decodes");
        let best = times.iter().cloned().fold(f64::INFINITY, f64::min);
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        println!(
            "{name}: {:.2} MB, {} functions, {} instructions (try_table {}, try {}, throw {}): best {best:.1} ms, mean {mean:.1} ms, {:.0} MB/s (scan {scan:.1} ms, validation {validate:.1} ms)",
            wasm.len() as f64 / 1e6,
            facts.functions,
            facts.instructions,
            facts.eh.try_table,
            facts.eh.try_,
            facts.eh.throw,
            wasm.len() as f64 / 1e6 / (best / 1e3),
        );
        assert!(
            report
                .load
                .as_ref()
                .is_some_and(|l| l.validation_error.is_none()),
            "generated module must validate"
        );
    }
}

/// The best wall time of `runs` calls, in milliseconds.
fn best_of(runs: usize, mut f: impl FnMut()) -> f64 {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

fn leb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn section(module: &mut Vec<u8>, id: u8, body: &[u8]) {
    module.push(id);
    leb(module, body.len() as u64);
    module.extend_from_slice(body);
}

/// A valid module shaped like Rust's panic=unwind output: a local `(param i32)` tag, one memory,
/// and functions whose bodies repeat a handler block (exnref `try_table` or legacy `try`), memory
/// traffic, arithmetic, a conditional `throw` and calls.
fn generate(size: usize, legacy: bool) -> Vec<u8> {
    // Types: 0 = (func (param i32)) for the tag, 1 = (func (param i32)) for the functions too.
    let mut types = Vec::new();
    leb(&mut types, 1);
    types.extend_from_slice(&[0x60, 0x01, 0x7f, 0x00]);

    let mut unit = Vec::new();
    if legacy {
        unit.extend_from_slice(&[0x06, 0x40]); // try
    } else {
        unit.extend_from_slice(&[0x02, 0x40]); // block
        unit.extend_from_slice(&[0x1f, 0x40, 0x01, 0x02, 0x00]); // try_table (catch_all 0)
    }
    unit.extend_from_slice(&[0x20, 0x00, 0x41, 0x01, 0x6a, 0x21, 0x00]); // local.get 0; i32.const 1; i32.add; local.set 0
    unit.extend_from_slice(&[0x20, 0x00, 0x28, 0x02, 0x00, 0x1a]); // local.get 0; i32.load; drop
    unit.extend_from_slice(&[0x41, 0x08, 0x20, 0x00, 0x36, 0x02, 0x04]); // i32.const 8; local.get 0; i32.store offset=4
    unit.extend_from_slice(&[0x20, 0x00, 0x04, 0x40, 0x41, 0x00, 0x08, 0x00, 0x0b]); // local.get 0; if; i32.const 0; throw 0; end
    unit.extend_from_slice(&[0x20, 0x00, 0x10, 0x00]); // local.get 0; call 0
    if legacy {
        unit.extend_from_slice(&[0x19, 0x0b]); // catch_all; end
    } else {
        unit.extend_from_slice(&[0x0b, 0x0b]); // end (try_table); end (block)
    }

    let mut body = vec![0x00]; // no locals besides the parameter
    while body.len() < 64 * 1024 {
        body.extend_from_slice(&unit);
    }
    body.push(0x0b);
    let mut sized_body = Vec::new();
    leb(&mut sized_body, body.len() as u64);
    sized_body.extend_from_slice(&body);
    let functions = size / sized_body.len() + 1;

    let mut funcs = Vec::new();
    leb(&mut funcs, functions as u64);
    // Every function has type 0.
    funcs.resize(funcs.len() + functions, 0x00);
    let mut code = Vec::new();
    leb(&mut code, functions as u64);
    for _ in 0..functions {
        code.extend_from_slice(&sized_body);
    }

    let mut module = b"\0asm\x01\0\0\0".to_vec();
    section(&mut module, 1, &types);
    section(&mut module, 3, &funcs);
    section(&mut module, 5, &[0x01, 0x00, 0x01]); // one memory, min 1 page
    section(&mut module, 13, &[0x01, 0x00, 0x00]); // one tag: exception, type 0
    section(&mut module, 10, &code);
    module
}
