// The runtime reads every line any code logs with console.error (for a panic hook's location):
// a long line must cost time that does not grow with its length, and the hook's own lines must
// still be read. Run in Node by tests/it/runtime_js.rs: node long-lines.mjs DIR (DIR holds
// hooked.wasm). Prints one line per case, and exits 1 at the first that is too slow or wrong.

import { readFileSync } from "node:fs";
import { join } from "node:path";

const [dir] = process.argv.slice(2);

// Installed before the runtime, which patches it: the runtime's records are kept.
/** @type {string[]} */
const lines = [];
console.error = (...args) => {
  if (typeof args[0] === "string" && args[0].startsWith("cargo-worker-build:")) lines.push(args.join(" "));
};

const { wrapFunction } = await import("./runtime.js");
const { makeGlue } = await import("./fake-glue.js");
const wasmModule = new WebAssembly.Module(readFileSync(join(dir, "hooked.wasm")));
const glue = makeGlue(wasmModule, { hook: true });
const panic = wrapFunction(glue, "panic", { mode: "unwind", handlers: [], functions: [], classes: [], wasmModule });

/**
 * Generous (a machine shared with other builds; a 5 MB panic message is copied a few times on
 * its way to the record): the pattern search this replaces took 11 s for 0.25 MB here.
 */
const BOUND_MS = 1000;
const MB = 1 << 20;

/** @param {string} what @param {() => void} run */
function timed(what, run) {
  const started = performance.now();
  run();
  const ms = performance.now() - started;
  process.stdout.write(`${what}: ${ms.toFixed(1)} ms\n`);
  if (ms > BOUND_MS) {
    process.stdout.write(`FAILED: ${what} took ${ms.toFixed(0)} ms (bound ${BOUND_MS} ms)\n`);
    process.exit(1);
  }
}

/** The record the runtime wrote for the last panic. */
function record() {
  return lines.findLast((l) => l.startsWith("cargo-worker-build: panic failed")) ?? "<none>";
}

for (const size of [MB / 4, MB, 5 * MB]) {
  const label = `${size / MB} MB`;
  // The worst case of a pattern search from every "panicked at ": many of them, no newline.
  timed(`${label} of "panicked at "`, () => console.error("panicked at ".repeat(size / 12)));
  timed(`${label} of "panicked at a:1:1" without a newline`, () =>
    console.error(`panicked at ${"a:1:1".repeat(size / 5)}`),
  );
  timed(`${label} of digits and colons after "panicked at "`, () =>
    console.error(`panicked at ${":1".repeat(size / 2)}:\n`),
  );
  timed(`${label} line, then a hook's line as another argument`, () =>
    console.error("x".repeat(size), "panicked at src/two.rs:3:4:\nboom"),
  );
  timed(`${label} Error message after "panicked at "`, () =>
    console.error("Critical", new Error(`Rust panic: panicked at ${"a:1".repeat(size / 3)}`)),
  );
  // A hook's line with a long message: its location is still read.
  const message = "m".repeat(size);
  timed(`${label} panic message through a hook`, () => {
    try {
      panic("big", message);
    } catch {
      // the PanicError, which the caller gets
    }
  });
  if (!record().includes("[panic at src/big.rs:1:1, build unknown]")) {
    process.stdout.write(`FAILED: the hook's location was not read for a ${label} message\n`);
    process.exit(1);
  }
}

// workers-rs's hook (an Error) with a long message: its location is still read.
try {
  panic("wr", "m".repeat(MB), "workers-rs");
} catch {
  // the PanicError
}
if (!record().includes("[panic at src/wr.rs:1:1, build unknown]")) {
  process.stdout.write("FAILED: the location of workers-rs's hook was not read\n");
  process.exit(1);
}

// And a plain hook line: its location and the panic site's frame reach the record.
try {
  panic("lib", "boom");
} catch {
  // the PanicError
}
const expected =
  "cargo-worker-build: panic failed: PanicError: boom (recovered; instance kept) [panic at src/lib.rs:1:1, build unknown]\n" +
  "    at lib (wasm://wasm/0001:wasm-function[3]:0x10)";
if (record() !== expected) {
  process.stdout.write(`FAILED: the panic record is\n${record()}\nnot\n${expected}\n`);
  process.exit(1);
}
process.stdout.write("long lines: ok\n");
