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

// ---------------------------------------------------------------------------------------------
// The tool's other parsers (issue 22): the symbol map, the bundle manifest and esbuild's
// metafile (read by `check`), wasm-opt's source map, `symbolize` on logs of 10 MB and more, and
// the Cargo.toml merge of `init`. Each must not panic or hang, and must give a clear error or a
// correct result. `PARSER_FUZZ_SECS` sets the duration (default 10 s), `CHECK_FUZZ_SEED` the
// seed; a failing input is written to `target/parser-fuzz-failure.<kind>`.

use cargo_worker_build::symbols::{self, Sidecar, SourceFrame};

/// A symbol map with names, lines and shared inline chains, as JSON.
fn seed_symbol_map() -> String {
    let frame = |f: &str, line| SourceFrame {
        function: Some(f.into()),
        file: Some("src/lib.rs".into()),
        line: Some(line),
        column: Some(5),
    };
    let map = Sidecar {
        format: symbols::FORMAT,
        build_id: "0123456789abcdef".into(),
        module_size: 40000,
        v8_script_id: "00027102".into(),
        functions: vec![
            symbols::Function {
                index: 3,
                start: 0x100,
                end: 0x200,
                name: Some("fixture::trap_here".into()),
            },
            symbols::Function {
                index: 4,
                start: 0x200,
                end: 0x300,
                name: None,
            },
        ],
        locations: vec![(0x100, 0), (0x140, 1), (0x180, u32::MAX), (0x210, 2)],
        chains: vec![
            vec![frame("inner", 1), frame("main", 9)],
            vec![frame("other", 2), frame("inner", 1), frame("main", 9)],
            vec![frame("main", 9)],
        ],
    };
    serde_json::to_string(&map).unwrap()
}

/// Mutations that keep JSON's shape often: numbers swapped for interesting ones (negative, huge,
/// self-references), plus the byte mutations of [`mutate`].
fn mutate_json(rng: &mut Rng, text: &mut Vec<u8>, donors: &[Vec<u8>]) {
    const NUMBERS: &[&str] = &[
        "-1",
        "0",
        "1",
        "2",
        "3",
        "4294967295",
        "4294967296",
        "-9223372036854775808",
        "18446744073709551616",
        "1e309",
        "0.5",
        "null",
        "[]",
        "{}",
        "\"x\"",
    ];
    for _ in 0..1 + rng.below(3) {
        let digits: Vec<usize> = (0..text.len())
            .filter(|&i| text[i].is_ascii_digit() && (i == 0 || !text[i - 1].is_ascii_digit()))
            .collect();
        if digits.is_empty() || rng.chance(3) {
            mutate(rng, text, donors);
            continue;
        }
        let at = digits[rng.below(digits.len())];
        let end = at + text[at..].iter().take_while(|b| b.is_ascii_digit()).count();
        let with = NUMBERS[rng.below(NUMBERS.len())].as_bytes().to_vec();
        text.splice(at..end, with);
    }
}

/// A small bundle for `check`: the module, an entry, a manifest, esbuild's metafile and a
/// symbol map, each replaceable.
const FUZZ_ENTRY: &str =
    "import { createWorker } from \"./runtime.js\";\nexport default createWorker({});\n";

fn seed_manifest(wasm: &[u8]) -> String {
    serde_json::json!({
        "tool": "cargo-worker-build", "tool_version": "0.1.0", "mode": "unwind",
        "eh": "exnref", "wasm_bindgen": "0.2.130", "library": false,
        "entry": "index.js", "wasm": "index_bg.wasm",
        "files": ["index.js", "index.meta.json", "index_bg.wasm", "index_bg.symbols.json"],
        "bundled": {
            "metafile": "index.meta.json", "entry_source": ".bundle-src/index.js",
            "runtime_source": ".bundle-src/runtime.js", "glue_source": ".bundle-src/glue.js",
        },
        "symbols": {"file": "index_bg.symbols.json", "build_id": symbols::build_id(wasm)},
    })
    .to_string()
}

fn seed_metafile() -> String {
    serde_json::json!({
        "inputs": {
            ".bundle-src/glue.js": {"bytes": 300, "imports": [
                {"path": "./index_bg.wasm", "kind": "import-statement", "external": true,
                 "original": "./index_bg.wasm"}]},
            ".bundle-src/runtime.js": {"bytes": 200, "imports": []},
            ".bundle-src/index.js": {"bytes": 100, "imports": [
                {"path": ".bundle-src/runtime.js", "kind": "import-statement"},
                {"path": ".bundle-src/glue.js", "kind": "import-statement"},
                {"path": "./index_bg.wasm", "kind": "import-statement", "external": true}]},
        },
        "outputs": {
            "index.js": {
                "imports": [{"path": "./index_bg.wasm", "kind": "import-statement", "external": true}],
                "exports": ["default"], "entryPoint": ".bundle-src/index.js",
                "inputs": {".bundle-src/runtime.js": {"bytesInOutput": 150},
                           ".bundle-src/glue.js": {"bytesInOutput": 250},
                           ".bundle-src/index.js": {"bytesInOutput": 80}},
                "bytes": 480,
            },
            "glue.js": {"exports": ["__wbg_reset_state", "fetch"], "entryPoint": ".bundle-src/glue.js",
                        "inputs": {}, "bytes": 250},
        },
    })
    .to_string()
}

/// A crate's Cargo.toml as users write them, for the merge of `init`.
const SEED_MANIFESTS: &[&str] = &[
    "[package]\nname = \"my-crate\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n# keep\n[lib]\ncrate-type = [\"rlib\"]\npath = \"src/lib.rs\"\n\n[dependencies]\nwasm-bindgen = \"0.2.130\"\nserde = { version = \"1\", features = [\"derive\"] }\n\n[profile.release]\nopt-level = \"s\"\npanic = \"abort\"\n",
    "[package]\nname = \"x\"\nversion = \"0.1.0\"\n",
    "package.name = \"dotted\"\npackage.version = \"1.0.0\"\nlib.crate-type = [\"cdylib\", \"rlib\"]\ndependencies.worker = { version = \"0.8\" }\nprofile.release.lto = true\n",
    "[package]\nname = \"t\"\n[workspace]\nmembers = [\"a\"]\n[target.'cfg(unix)'.dependencies]\nlibc = \"0.2\"\n[dev-dependencies]\nwasm-bindgen = \"1\"\n",
];

/// wasm-opt's source map as Binaryen writes it: sources are chain indices.
const SEED_SOURCE_MAP: &str = r#"{"version":3,"sources":["0","1","2"],"names":[],"mappings":"wBAAA,EAAC,GAAA,CAAC;KACE,MAAA,cAAE,GAAG,2BAA2B"}"#;

/// A log of ten megabytes or more in the shapes `symbolize` reads (frames with and without the
/// `wasm://wasm/` prefix, records, `wrangler tail --format json` lines), mutated line by line.
fn large_log(rng: &mut Rng, bytes: usize) -> Vec<u8> {
    const LINES: &[&str] = &[
        "Error: unreachable",
        "    at wasm://wasm/00027102:wasm-function[3]:0x150",
        "    at wasm-function[3]:0x190",
        "    at fixture (wasm://wasm/name-00027102:wasm-function[3]:0x1a0)",
        "cargo-worker-build: fetch failed (x) [unreachable, build 0123456789abcdef]",
        r#"{"logs":[{"message":["at wasm://wasm/00027102:wasm-function[3]:0x1ff"]}],"n":1}"#,
        r#"{"level":"error","kind":"unreachable","message":"unreachable","location":null,"frames":["wasm://wasm/00027102:wasm-function[3]:0x150"],"call":"fetch","build":"0123456789abcdef"}"#,
        "a plain line of text without any frame in it",
        "wasm-function[3]:0x150 wasm-function[4]:0x250 wasm-function[3]:0x999 wasm-function[",
    ];
    let donors: Vec<Vec<u8>> = LINES.iter().map(|l| l.as_bytes().to_vec()).collect();
    let mut log = Vec::with_capacity(bytes + 4096);
    while log.len() < bytes {
        let mut line = donors[rng.below(donors.len())].clone();
        if rng.chance(4) {
            mutate(rng, &mut line, &donors);
        }
        // Now and then a very long line: many frames with no prefix, as in the issue.
        if rng.chance(2000) {
            for _ in 0..20_000 {
                line.extend_from_slice(b" wasm-function[3]:0x150");
            }
        }
        line.retain(|&b| b != b'\n');
        log.extend_from_slice(&line);
        log.push(b'\n');
    }
    log
}

/// `Err` says which property failed.
fn symbol_map_properties(json: &[u8]) -> Result<(), String> {
    match serde_json::from_slice::<Sidecar>(json) {
        Ok(map) => {
            if let Some(c) = map.chains.iter().find(|c| c.len() > symbols::MAX_CHAIN) {
                return Err(format!("a chain of {} frames was let through", c.len()));
            }
            // A map that loads writes back to the same map.
            let again: Sidecar = serde_json::from_str(&serde_json::to_string(&map).unwrap())
                .map_err(|e| format!("a map that loaded does not load again: {e}"))?;
            if again != map {
                return Err("a map changed through writing and reading".into());
            }
            // And any frame of a log is rewritten against it without panicking.
            let log = "at wasm://wasm/00027102:wasm-function[3]:0x150\n at wasm-function[4]:0x250\ncargo-worker-build: x [unreachable, build 0123456789abcdef]\n    at wasm-function[3]:0x1a0\n";
            let _ = cargo_worker_build::symbolize::rewrite(log, &map);
            Ok(())
        }
        Err(e) if e.to_string().is_empty() || e.to_string().contains('\n') => {
            Err(format!("an error that is not one line: {e:?}"))
        }
        Err(_) => Ok(()),
    }
}

fn source_map_properties(text: &str) -> Result<(), String> {
    match cargo_worker_build::symbols::lines::read_source_map(text, 3) {
        Ok(points) => {
            if points.windows(2).any(|w| w[0].0 > w[1].0) {
                return Err("offsets out of order".into());
            }
            if points.iter().any(|(_, c)| c.is_some_and(|c| c >= 3)) {
                return Err("a chain index out of range".into());
            }
            Ok(())
        }
        Err(e) if format!("{e:#}").is_empty() => Err("an empty error".into()),
        Err(_) => Ok(()),
    }
}

fn cargo_merge_properties(existing: &str, template: &str) -> Result<(), String> {
    use cargo_worker_build::scaffold::manifest::merge;
    match merge(existing, template) {
        Ok(merged) => {
            let doc: toml_edit::DocumentMut = merged
                .text
                .parse()
                .map_err(|e| format!("the merge wrote invalid TOML: {e}"))?;
            let cdylib = doc
                .get("lib")
                .and_then(|l| l.get("crate-type"))
                .and_then(|t| t.as_array())
                .is_some_and(|a| a.iter().any(|v| v.as_str() == Some("cdylib")));
            if !cdylib {
                return Err("the merge did not make a cdylib".into());
            }
            // Nothing is lost: every key the crate had is still there with its value.
            let before: toml_edit::DocumentMut = existing.parse().unwrap();
            if let Some(name) = before.get("package").and_then(|p| p.get("name")) {
                if doc["package"].get("name").map(|n| n.to_string()) != Some(name.to_string()) {
                    return Err("the package name changed".into());
                }
            }
            // Merging again finds nothing to add.
            let again = merge(&merged.text, template)
                .map_err(|e| format!("a merged Cargo.toml does not merge again: {e:#}"))?;
            if !again.added.is_empty() || again.text != merged.text {
                return Err(format!("a second merge added {:?}", again.added));
            }
            Ok(())
        }
        Err(e) => {
            let msg = format!("{e:#}");
            if msg.is_empty() || msg.contains('\n') {
                Err(format!("an error that is not one line: {msg:?}"))
            } else {
                Ok(())
            }
        }
    }
}

/// `check` on a bundle directory: a report (rendered without failing) or one error line.
fn bundle_properties(dir: &std::path::Path) -> Result<(), String> {
    let opts = CheckOptions {
        expect: None,
        eh: None,
        runtime: TargetRuntime::Workerd,
    };
    match check::check_path(dir, &opts) {
        Ok(report) => {
            if report.modules.iter().any(|m| {
                m.error
                    .as_ref()
                    .is_some_and(|e| e.message.contains("analyser failed"))
            }) {
                return Err("the check panicked".into());
            }
            report
                .render_human(&mut Vec::new(), false)
                .map_err(|e| e.to_string())?;
            serde_json::to_string(&report.to_json()).map_err(|e| e.to_string())?;
            Ok(())
        }
        Err(e) if e.to_string().is_empty() => Err("an empty error".into()),
        Err(_) => Ok(()),
    }
}

#[test]
fn parsers_survive_mutated_and_large_inputs() {
    const KINDS: [&str; 6] = [
        "symbol map",
        "manifest",
        "metafile",
        "source map",
        "Cargo.toml merge",
        "symbolize 10 MB log",
    ];
    let secs: u64 = std::env::var("PARSER_FUZZ_SECS")
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
    println!("parser fuzz: {secs} s, CHECK_FUZZ_SEED={seed}");

    let map_seed = seed_symbol_map().into_bytes();
    symbol_map_properties(&map_seed).unwrap();
    let wasm = wat::parse_str(SEEDS_WAT[0]).unwrap();
    let manifest_seed = seed_manifest(&wasm).into_bytes();
    let metafile_seed = seed_metafile().into_bytes();
    let bundle = tempfile::tempdir().unwrap();
    let bundle_dir = bundle.path().to_path_buf();
    let write_bundle = {
        let d = bundle_dir.clone();
        move |manifest: &[u8], metafile: &[u8], map: &[u8]| {
            std::fs::write(d.join("index_bg.wasm"), &wasm).unwrap();
            std::fs::write(d.join("index.js"), FUZZ_ENTRY).unwrap();
            std::fs::write(d.join(".worker-build.json"), manifest).unwrap();
            std::fs::write(d.join("index.meta.json"), metafile).unwrap();
            std::fs::write(d.join("index_bg.symbols.json"), map).unwrap();
        }
    };
    write_bundle(&manifest_seed, &metafile_seed, &map_seed);
    bundle_properties(&bundle_dir).unwrap();
    source_map_properties(SEED_SOURCE_MAP).unwrap();
    let template = cargo_worker_build::scaffold::render(
        cargo_worker_build::scaffold::templates::find("hello").unwrap(),
        &cargo_worker_build::scaffold::placeholders::Placeholders::for_package("my-crate"),
    )
    .unwrap()
    .into_iter()
    .find(|(path, _)| path == std::path::Path::new("Cargo.toml"))
    .unwrap()
    .1;
    for m in SEED_MANIFESTS {
        cargo_merge_properties(m, &template).unwrap();
    }
    let toml_donors: Vec<Vec<u8>> = SEED_MANIFESTS
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .chain(
            [
                "[lib]\n",
                "crate-type = 1\n",
                "[profile.release]\npanic = \"abort\"\n",
                "lib = 3\n",
                "[[lib]]\n",
                "dependencies = \"x\"\n",
                "{ a = ",
                "'''\n",
            ]
            .iter()
            .map(|s| s.as_bytes().to_vec()),
        )
        .collect();
    let map_sidecar = Sidecar {
        format: symbols::FORMAT,
        build_id: "0123456789abcdef".into(),
        module_size: 40000,
        v8_script_id: "00027102".into(),
        functions: vec![symbols::Function {
            index: 3,
            start: 0x100,
            end: 0x200,
            name: Some("fixture::trap_here".into()),
        }],
        locations: vec![(0x100, 0), (0x180, u32::MAX)],
        chains: vec![vec![SourceFrame {
            function: Some("fixture::trap_here".into()),
            file: Some("src/lib.rs".into()),
            line: Some(31),
            column: Some(9),
        }]],
    };

    let progress = Arc::new(Progress {
        done: AtomicU64::new(0),
        current: Mutex::new((Vec::new(), "none")),
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let worker = {
        let progress = Arc::clone(&progress);
        std::thread::spawn(
            move || -> Result<[u64; 6], (Vec<u8>, &'static str, String)> {
                let mut rng = Rng(seed ^ 0x5eed);
                let mut runs = [0u64; 6];
                // At least one 10 MB log per run, first.
                while runs[5] == 0 || Instant::now() < deadline {
                    let kind = if runs[5] == 0 || rng.chance(400) {
                        5
                    } else {
                        rng.below(5)
                    };
                    let name = KINDS[kind];
                    let set = |input: &[u8]| {
                        *progress.current.lock().unwrap() = (input.to_vec(), name);
                    };
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(
                        || -> Result<Vec<u8>, (Vec<u8>, String)> {
                            match kind {
                                0 => {
                                    let mut json = map_seed.clone();
                                    mutate_json(
                                        &mut rng,
                                        &mut json,
                                        std::slice::from_ref(&map_seed),
                                    );
                                    set(&json);
                                    symbol_map_properties(&json).map_err(|e| (json.clone(), e))?;
                                    Ok(json)
                                }
                                1 | 2 => {
                                    let (mut manifest, mut metafile) =
                                        (manifest_seed.clone(), metafile_seed.clone());
                                    let input = if kind == 1 {
                                        &mut manifest
                                    } else {
                                        &mut metafile
                                    };
                                    mutate_json(&mut rng, input, &[]);
                                    let input = input.clone();
                                    set(&input);
                                    write_bundle(&manifest, &metafile, &map_seed);
                                    bundle_properties(&bundle_dir)
                                        .map_err(|e| (input.clone(), e))?;
                                    Ok(input)
                                }
                                3 => {
                                    let mut text = SEED_SOURCE_MAP.as_bytes().to_vec();
                                    if rng.chance(2) {
                                        // Inside the mappings: VLQ digits and separators.
                                        let at = text.len() - 3 - rng.below(40);
                                        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/,;!";
                                        for _ in 0..1 + rng.below(8) {
                                            // Now and then a value of 64 bits or more.
                                            if rng.chance(6) {
                                                let big: &[u8] = [
                                                    &b"////////////D,"[..],
                                                    b"////////////B,",
                                                    b"/////////////////D,",
                                                ][rng.below(3)];
                                                text.splice(at..at, big.iter().copied());
                                                continue;
                                            }
                                            let c = if rng.chance(3) {
                                                b'/'
                                            } else {
                                                alphabet[rng.below(alphabet.len())]
                                            };
                                            text.insert(at, c);
                                        }
                                    } else {
                                        mutate_json(&mut rng, &mut text, &[]);
                                    }
                                    set(&text);
                                    source_map_properties(&String::from_utf8_lossy(&text))
                                        .map_err(|e| (text.clone(), e))?;
                                    Ok(text)
                                }
                                4 => {
                                    let mut text =
                                        toml_donors[rng.below(SEED_MANIFESTS.len())].clone();
                                    mutate(&mut rng, &mut text, &toml_donors);
                                    set(&text);
                                    cargo_merge_properties(
                                        &String::from_utf8_lossy(&text),
                                        &template,
                                    )
                                    .map_err(|e| (text.clone(), e))?;
                                    Ok(text)
                                }
                                _ => {
                                    let log = large_log(&mut rng, 10 << 20);
                                    set(b"(a generated 10 MB log)");
                                    let text = String::from_utf8_lossy(&log);
                                    let started = Instant::now();
                                    let mut rewriter =
                                        cargo_worker_build::symbolize::Rewriter::new(&map_sidecar);
                                    for line in text.split_inclusive('\n') {
                                        let out = rewriter.line(line);
                                        // Text without frames and outside records comes back as it was
                                        // (after the record held before it, if any).
                                        if !line.contains("wasm-function[")
                                            && !line.starts_with("cargo-worker-build: ")
                                            && !out.ends_with(line)
                                        {
                                            return Err((
                                                line.as_bytes().to_vec(),
                                                "a line without frames changed".into(),
                                            ));
                                        }
                                    }
                                    let _ = rewriter.finish();
                                    let took = started.elapsed();
                                    println!(
                                        "parser fuzz: symbolize of {:.1} MB in {took:?}",
                                        log.len() as f64 / (1 << 20) as f64
                                    );
                                    Ok(Vec::new())
                                }
                            }
                        },
                    ));
                    match outcome {
                        Ok(Ok(_)) => runs[kind] += 1,
                        Ok(Err((input, why))) => return Err((input, name, why)),
                        Err(_) => {
                            let input = progress.current.lock().unwrap().0.clone();
                            return Err((input, name, "panicked".into()));
                        }
                    }
                    progress.done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(runs)
            },
        )
    };

    let mut last = (0, Instant::now());
    while !worker.is_finished() {
        std::thread::sleep(Duration::from_millis(200));
        let done = progress.done.load(Ordering::Relaxed);
        if done != last.0 {
            last = (done, Instant::now());
        } else if last.1.elapsed() > HANG_LIMIT * 3 {
            let (input, kind) = progress.current.lock().unwrap().clone();
            let path = failure_path(&format!("parser-{}", kind.replace(' ', "-")));
            let _ = std::fs::write(&path, &input);
            panic!(
                "one {kind} input took over {:?} (seed {seed}); saved to {}",
                HANG_LIMIT * 3,
                path.display()
            );
        }
    }
    let outcome = worker.join().expect("the fuzz loop itself does not panic");
    drop(bundle);
    match outcome {
        Ok(runs) => {
            for (kind, n) in KINDS.iter().zip(runs) {
                println!("parser fuzz: {kind}: {n} runs without a failure");
                assert!(n > 0, "no {kind} input was tried");
            }
        }
        Err((input, kind, why)) => {
            let path = failure_path(&format!("parser-{}", kind.replace(' ', "-")));
            let _ = std::fs::write(&path, &input);
            panic!(
                "{kind}: {why} (seed {seed}); input saved to {}",
                path.display()
            );
        }
    }
}
