//! Mutation fuzzing of the `--check-eh` analyser, bounded in time.
//!
//! Seeds are small modules shaped like real wasm-bindgen output (both EH encodings, tags, custom
//! sections, recovery exports) and JavaScript shaped like the bundle's entry and glue. Each round
//! mutates a seed (bit flips, interesting bytes, huge LEB128 counts, inserted, deleted, duplicated
//! and spliced ranges, truncation, random sections) and holds the analyser to:
//!
//! - no panic (the analyser reports its own panics as an "analyser failed" error, which fails here);
//! - no hang: a watchdog fails the test when one input takes longer than [`HANG_LIMIT`];
//! - every module wasmparser validates (with every feature on) decodes in the analyser too;
//! - a report is internally consistent (decoded xor error, "loads" only without validation error,
//!   the encoding agrees with the opcode counts).
//!
//! `CHECK_FUZZ_SECS` sets the duration (default 10 s) and `CHECK_FUZZ_SEED` the PRNG seed (default:
//! time-based, printed, so a failure can be replayed). A failing input is written to
//! `target/check-fuzz-failure.wasm` (or `.js`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cargo_worker_build::check::js::ModuleSyntax;
use cargo_worker_build::check::{self, CheckId, CheckOptions, Encoding, Status};
use cargo_worker_build::cli::{EhEncoding, Expect, TargetRuntime};

/// One input may take this long before the run counts as hung (generous for a debug build on a
/// shared machine; inputs here are a few hundred bytes).
const HANG_LIMIT: Duration = Duration::from_secs(20);

const SEEDS_WAT: &[&str] = &[
    // panic=unwind, exnref, as wasm-bindgen leaves it.
    r#"(module
  (import "./index_bg.js" "__wbindgen_jstag" (tag $jstag (param externref)))
  (import "./index_bg.js" "__wbg_parse" (func $parse (param i32)))
  (tag $rust (param i32))
  (memory (export "memory") 17)
  (global $t i32 (i32.const 1048576)) (export "__instance_terminated" (global $t))
  (global $a i32 (i32.const 1048580)) (export "__abort_handler" (global $a))
  (func $panic i32.const 8 throw $rust)
  (func (export "run") (param i32)
    block $pad (result exnref)
      try_table (catch_all_ref $pad)
        local.get 0 call $parse
        call $panic
      end
      return
    end
    throw_ref)
  (func $wrap (param i32)
    block $c (result externref)
      try_table (catch $jstag $c) local.get 0 call $parse end
      return
    end
    drop)
  (data (i32.const 16) "panicked at src/lib.rs")
  (@producers (processed-by "rustc" "1.101.0-nightly") (processed-by "wasm-bindgen" "0.2.130"))
  (@custom "target_features" "\02\2b\12exception-handling\2b\0amultivalue")
)"#,
    // panic=unwind, legacy.
    r#"(module
  (import "./index_bg.js" "__wbindgen_jstag" (tag $jstag (param externref)))
  (tag $rust (param i32))
  (memory 1)
  (table 4 funcref)
  (elem (i32.const 1) $leaf)
  (func $leaf (param i32) local.get 0 if i32.const 1 throw $rust end)
  (func (export "run") (param i32)
    try
      local.get 0 call $leaf
    catch $rust
      drop
    catch_all
      rethrow 0
    end
    try
      try local.get 0 i32.const 0 call_indirect (param i32) delegate 0
    catch $jstag
      drop
    end)
  (@producers (processed-by "wasm-bindgen" "0.2.126"))
)"#,
    // Mixed, with an imported Rust tag, multi-value and bulk memory.
    r#"(module
  (import "env" "__cpp_exception" (tag $rust (param i32)))
  (memory 1 2)
  (func (result i32 i64) i32.const 1 i64.const 2)
  (func (param i32)
    i32.const 0 i32.const 0 i32.const 4 memory.copy
    try local.get 0 throw $rust catch_all end
    block $h (result exnref) try_table (catch_all_ref $h) end return end throw_ref)
)"#,
    // Features some runtimes lack: SIMD, GC types, 64-bit memory, tail calls, extended-const.
    r#"(module
  (type $pair (struct (field i32) (field i64)))
  (memory i64 1)
  (global $g i32 (i32.add (i32.const 1) (i32.const 2)))
  (func $f (param v128) (result v128) local.get 0 local.get 0 i32x4.add)
  (func $t (result i32) return_call $u)
  (func $u (result i32) i32.const 0)
)"#,
    "(module)",
];

const SEEDS_JS: &[&str] = &[
    r#"import { createWorker, wrapClass } from "./runtime.js";
import * as glue from "./glue.js";
import source wasmModule from "./index_bg.wasm";
const EXPORTS = { ...{"handlers":["fetch"]}, wasmModule };
export default createWorker(glue, EXPORTS);
export const Counter = wrapClass(glue, "Counter", EXPORTS);
"#,
    r#"import source wasmModule from "./index_bg.wasm";
export function __wbg_reset_state () { wasm = new WebAssembly.Instance(wasmModule, imports()).exports; }
function debugString(val) { const m = /\[object ([^\]]+)\]/.exec(String(val)); return `${m ? m[1] : `x${val}`}`; }
export { debugString as "odd name", a as b } from './x.js';
export * as ns from "./y.js";
"#,
];

/// xorshift64*: small, fast and reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Bytes that mean something in the binary format: opcodes of both EH encodings, section ids,
/// LEB128 continuation and sign bits, type constructors.
const INTERESTING: &[u8] = &[
    0x00, 0x01, 0x02, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0d, 0x18, 0x19, 0x1f, 0x40, 0x60, 0x69,
    0x6f, 0x70, 0x7f, 0x80, 0xfb, 0xfc, 0xfd, 0xfe, 0xff,
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, donors: &[Vec<u8>]) {
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let len = input.len();
        match rng.below(10) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                // A huge LEB128 count or size.
                let i = rng.below(len + 1);
                let huge: &[u8] = [
                    &[0xff, 0xff, 0xff, 0xff, 0x0f][..],
                    &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
                ][rng.below(2)];
                let end = (i + huge.len()).min(len);
                input.splice(i..end, huge.iter().copied());
            }
            3 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                input.splice(i..i, bytes);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(32));
                input.drain(i..i + n);
            }
            5 if len > 1 => {
                // Duplicate a range somewhere else (repeated sections, nested blocks).
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                let chunk = input[i..i + n].to_vec();
                let at = rng.below(len + 1);
                input.splice(at..at, chunk);
            }
            6 if len > 8 => input.truncate(8 + rng.below(len - 8)),
            7 if !donors.is_empty() => {
                let donor = &donors[rng.below(donors.len())];
                if donor.len() > 8 {
                    let i = 8 + rng.below(donor.len() - 8);
                    let n = 1 + rng.below((donor.len() - i).min(64));
                    let at = rng.below(len + 1);
                    input.splice(at..at, donor[i..i + n].iter().copied());
                }
            }
            8 => {
                // Append a section with a random id, a plausible size and random contents.
                let id = [0u8, 1, 2, 3, 5, 6, 7, 10, 11, 12, 13, 14, 0x7f][rng.below(13)];
                let n = rng.below(16);
                input.push(id);
                input.push(n as u8);
                input.extend((0..n).map(|_| rng.next() as u8));
            }
            _ if len > 8 => {
                // Overwrite one byte inside the body with a nearby opcode: keeps decoding deep.
                let i = 8 + rng.below(len - 8);
                input[i] = input[i].wrapping_add(rng.below(5) as u8).wrapping_sub(2);
            }
            _ => {}
        }
    }
}

fn all_options() -> [CheckOptions; 4] {
    [
        CheckOptions {
            expect: None,
            eh: None,
            runtime: TargetRuntime::Workerd,
        },
        CheckOptions {
            expect: Some(Expect::Abort),
            eh: Some(EhEncoding::Legacy),
            runtime: TargetRuntime::Node20,
        },
        CheckOptions {
            expect: Some(Expect::Unwind),
            eh: Some(EhEncoding::Exnref),
            runtime: TargetRuntime::Node22,
        },
        CheckOptions {
            expect: Some(Expect::Unwind),
            eh: None,
            runtime: TargetRuntime::Node24,
        },
    ]
}

/// The properties every report must have; `Err` describes the violation.
fn check_properties(wasm: &[u8], opts: &CheckOptions) -> Result<(), String> {
    let report = check::check_module("fuzz.wasm", wasm, None, opts);
    if let Some(error) = &report.error {
        if error.message.contains("analyser failed") {
            return Err(format!("the analyser panicked: {}", error.message));
        }
        if report.facts.is_some() || report.load.is_some() {
            return Err("a decode error with facts".into());
        }
        if report.check(CheckId::Decode).map(|c| c.status) != Some(Status::Fail) {
            return Err("a decode error without a failed decode check".into());
        }
        // wasmparser validates it, so our decoder must read it too (components aside).
        let is_component = wasm.get(4..8).is_some_and(|v| v != [1, 0, 0, 0]);
        if !is_component
            && wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
                .validate_all(wasm)
                .is_ok()
        {
            return Err(format!(
                "valid module rejected by the analyser: {}",
                error.message
            ));
        }
        return Ok(());
    }
    let facts = report.facts.as_ref().ok_or("no error and no facts")?;
    let load = report.load.as_ref().ok_or("no load verdict")?;
    if load.loads && load.validation_error.is_some() {
        return Err("loads despite a validation error".into());
    }
    if report.encoding != Some(Encoding::of(&facts.eh)) {
        return Err("encoding disagrees with the counts".into());
    }
    if report.encoding == Some(Encoding::Mixed) && load.loads {
        return Err("a mixed module loads".into());
    }
    if report.passed() != report.checks.iter().all(|c| c.status != Status::Fail) {
        return Err("passed() disagrees with the checks".into());
    }
    for c in report.checks.iter().filter(|c| c.status == Status::Fail) {
        if c.cause.as_deref().unwrap_or("").is_empty() || c.fix.as_deref().unwrap_or("").is_empty()
        {
            return Err(format!(
                "failed check {} without cause and fix",
                c.id.as_str()
            ));
        }
    }
    // Rendering must not fail either.
    let whole = check::Report {
        modules: vec![report],
        errors: Vec::new(),
    };
    whole
        .render_human(&mut Vec::new(), true)
        .map_err(|e| e.to_string())?;
    serde_json::to_string(&whole.to_json()).map_err(|e| e.to_string())?;
    Ok(())
}

fn failure_path(ext: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(format!("check-fuzz-failure.{ext}"))
}

/// What the watchdog sees: how many inputs are done and the input being checked now.
struct Progress {
    done: AtomicU64,
    current: Mutex<(Vec<u8>, &'static str)>,
}

#[test]
fn analyser_survives_mutated_modules_and_scripts() {
    let secs: u64 = std::env::var("CHECK_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let seed: u64 = std::env::var("CHECK_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    println!("check fuzz: {secs} s, CHECK_FUZZ_SEED={seed}");
    let wasm_seeds: Vec<Vec<u8>> = SEEDS_WAT
        .iter()
        .map(|w| wat::parse_str(w).unwrap_or_else(|e| panic!("seed does not assemble: {e}\n{w}")))
        .collect();
    for seed_module in &wasm_seeds {
        // The seeds themselves must be clean, or mutations start from a broken analyser.
        for opts in all_options() {
            check_properties(seed_module, &opts).unwrap();
        }
    }

    let progress = Arc::new(Progress {
        done: AtomicU64::new(0),
        current: Mutex::new((Vec::new(), "wasm")),
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let worker = {
        let progress = Arc::clone(&progress);
        std::thread::spawn(
            move || -> Result<(u64, u64), (Vec<u8>, &'static str, String)> {
                let mut rng = Rng(seed);
                let (mut modules, mut scripts) = (0u64, 0u64);
                let options = all_options();
                while Instant::now() < deadline {
                    if rng.chance(8) {
                        let mut js = SEEDS_JS[rng.below(SEEDS_JS.len())].as_bytes().to_vec();
                        let donors: Vec<Vec<u8>> =
                            SEEDS_JS.iter().map(|s| s.as_bytes().to_vec()).collect();
                        mutate(&mut rng, &mut js, &donors);
                        *progress.current.lock().unwrap() = (js.clone(), "js");
                        let text = String::from_utf8_lossy(&js);
                        match std::panic::catch_unwind(|| ModuleSyntax::parse(&text)) {
                            Err(_) => {
                                return Err((js, "js", "the JavaScript reader panicked".into()))
                            }
                            // An error says where: a line and column inside the text.
                            Ok(Err(e))
                                if e.line == 0
                                    || e.column == 0
                                    || e.line > text.lines().count() + 1 =>
                            {
                                return Err((js, "js", format!("error outside the text: {e}")));
                            }
                            Ok(_) => {}
                        }
                        scripts += 1;
                    } else {
                        let mut wasm = wasm_seeds[rng.below(wasm_seeds.len())].clone();
                        mutate(&mut rng, &mut wasm, &wasm_seeds);
                        *progress.current.lock().unwrap() = (wasm.clone(), "wasm");
                        let opts = &options[rng.below(options.len())];
                        if let Err(why) = check_properties(&wasm, opts) {
                            return Err((wasm, "wasm", why));
                        }
                        modules += 1;
                    }
                    progress.done.fetch_add(1, Ordering::Relaxed);
                }
                Ok((modules, scripts))
            },
        )
    };

    // The watchdog: fail, with the input saved, if one input stalls.
    let mut last = (0, Instant::now());
    while !worker.is_finished() {
        std::thread::sleep(Duration::from_millis(200));
        let done = progress.done.load(Ordering::Relaxed);
        if done != last.0 {
            last = (done, Instant::now());
        } else if last.1.elapsed() > HANG_LIMIT {
            let (input, ext) = progress.current.lock().unwrap().clone();
            let path = failure_path(ext);
            let _ = std::fs::write(&path, &input);
            panic!(
                "one input took over {HANG_LIMIT:?} (seed {seed}); saved to {}",
                path.display()
            );
        }
    }
    match worker.join().expect("the fuzz loop itself does not panic") {
        Ok((modules, scripts)) => {
            println!(
                "check fuzz: {modules} modules and {scripts} scripts in {secs} s without a failure"
            );
            assert!(modules > 0, "no module was checked");
        }
        Err((input, ext, why)) => {
            let path = failure_path(ext);
            let _ = std::fs::write(&path, &input);
            panic!("{why} (seed {seed}); input saved to {}", path.display());
        }
    }
}
