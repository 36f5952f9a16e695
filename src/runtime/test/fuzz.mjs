// Property test of runtime.js against the fake glue (fake-glue.js), run in Node by
// tests/it/runtime_js.rs: random sequences of calls (values, promises, thenables; panics, JS
// errors thrown at once or after an await, aborts at once, after an await or in a timer;
// futures woken together, so several fail in one executor tick;
// requested re-initialisations; nested and concurrent calls; through a Worker handler and
// through a library function) on two instances (with and without a workers-rs-style abort
// hook). After every sequence:
// - every call has settled (a call waiting on a thenable that never calls back only until the
//   abort that ends its sequence; a call whose future no executor tick had polled when its
//   instance died runs on the fresh one);
// - no call entered an instance whose terminated flag was set;
// - no error a caller got and no record the runtime logged carries another call's data (each
//   call has its own tag, which its panics print and carry);
// - the runtime follows no call any more, and `Promise` is the platform's again.
//
// Usage: node fuzz.mjs DIR [SEED] [SEQUENCES] [SECONDS]; DIR holds hooked.wasm and plain.wasm.
// Prints `fuzz: N sequences, M calls (seed S)` and exits 0, or prints the failing sequence.

import { readFileSync } from "node:fs";
import { join } from "node:path";

const [dir, seedText = "1", sequencesText = "3000", secondsText = "20"] = process.argv.slice(2);
const SEED = Number(seedText) >>> 0;
const SEQUENCES = Number(sequencesText);
const SECONDS = Number(secondsText);

// Installed before the runtime, which patches it: the runtime's records land here.
/** @type {string[]} */
const records = [];
console.error = (...args) => {
  records.push(args.map((a) => (a instanceof Error ? `${a.stack}` : String(a))).join(" "));
};

const { createWorker, wrapFunction, recoveryStats, WasmAbortError } = await import("./runtime.js");
const { makeGlue } = await import("./fake-glue.js");
const NativePromise = Promise;

const glues = ["hooked", "plain"].map((name) => {
  const wasmModule = new WebAssembly.Module(readFileSync(join(dir, `${name}.wasm`)));
  const glue = makeGlue(wasmModule, { hook: name === "hooked" });
  const EXPORTS = { mode: "unwind", handlers: ["later"], functions: [], classes: [], wasmModule };
  /** @type {Record<string, Function>} */
  const fns = {};
  for (const fn of ["bump", "trap", "panic", "caughtPanic", "jsRangeError", "scheduleReinit", "later", "after", "nested", "abortInTimer"]) {
    fns[fn] = wrapFunction(glue, fn, EXPORTS);
  }
  const worker = /** @type {any} */ (createWorker(glue, EXPORTS));
  return { name, glue, fns, worker };
});

/** mulberry32: a small seeded PRNG, so a failing sequence can be run again. */
function prng(seed) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Panics: with the call's tag as message, or with a message every call shares ("boom") and
// the hook printing the call's location; without a hook; caught by Rust (only the hook prints).
const SYNC = ["value", "value", "panic", "panic-boom", "panic-nohook", "caught-panic", "js-throw", "trap"];
const ASYNC = ["ok", "ok", "panic", "js-throw", "abort", "thenable", "thenable-late", "thenable-throws", "thenable-never"];
const OTHER = ["nested", "timer-abort", "reinit"];

/**
 * @param {{ fns: Record<string, Function> }} g
 * @param {string} kind one of SYNC
 * @param {string} tag
 */
function syncCall(g, kind, tag) {
  switch (kind) {
    case "value":
      return g.fns.bump();
    case "panic":
      return g.fns.panic(tag);
    case "panic-boom":
      return g.fns.panic(tag, "boom");
    case "panic-nohook":
      return g.fns.panic(tag, "boom", false);
    case "caught-panic":
      return g.fns.caughtPanic(tag, "boom");
    case "js-throw":
      return g.fns.jsRangeError();
    default:
      return g.fns.trap();
  }
}

const sleep = (/** @type {number} */ ms) => new NativePromise((resolve) => setTimeout(resolve, ms));
const TAG = /t\d+x\d+z/g;

/**
 * One sequence; returns the number of calls made, or throws what went wrong.
 * @param {number} seq
 * @param {() => number} random
 */
async function sequence(seq, random) {
  const pick = (/** @type {any[]} */ list) => list[Math.floor(random() * list.length)];
  /** @type {{ tag: string, op: string, promise: Promise<unknown> }[]} */
  const calls = [];
  /** @type {Set<any>} glues that got a call waiting on a thenable that never calls back */
  const stuck = new Set();
  const dead = glues.map((g) => g.glue.__fakeDeadEntries());
  const seen = records.length;
  // Calls waiting on this gate are polled in one executor tick when it opens.
  /** @type {() => void} */
  let open = () => {};
  const gate = new NativePromise((resolve) => (open = resolve));
  const count = 1 + Math.floor(random() * 8);
  for (let i = 0; i < count; i++) {
    const g = pick(glues);
    const tag = `t${seq}x${i}z`;
    const draw = random();
    const kind = draw < 0.35 ? pick(SYNC) : draw < 0.65 ? pick(ASYNC) : draw < 0.8 ? pick(OTHER) : "gated";
    const op = `${g.name} ${kind}`;
    /** @type {() => unknown} */
    let run;
    if (SYNC.includes(kind)) {
      run = () => syncCall(g, kind, tag);
    } else if (kind === "nested") {
      const inner = pick(SYNC);
      run = () =>
        g.fns.nested(() => {
          try {
            syncCall(g, inner, tag);
          } catch {
            // JavaScript between two Rust frames that catches the inner call's error.
          }
        });
    } else if (kind === "timer-abort") {
      run = () => g.fns.abortInTimer(Math.floor(random() * 3), random() < 0.5);
    } else if (kind === "reinit") {
      run = () => g.fns.scheduleReinit();
    } else if (kind === "gated") {
      const inner = pick(["ok", "panic", "js-throw", "js-throw", "js-throw", "abort"]);
      run = () => g.fns.after(gate, inner, tag);
    } else {
      if (kind === "thenable-never") stuck.add(g);
      const ms = Math.floor(random() * 2);
      run = random() < 0.5 ? () => g.worker.later(kind, ms, tag) : () => g.fns.later(kind, ms, tag);
    }
    /** @type {Promise<unknown>} */
    let promise;
    const logged = records.length;
    try {
      promise = NativePromise.resolve(run());
    } catch (error) {
      promise = NativePromise.reject(error);
    }
    // What the runtime logged while this call ran is about this call.
    for (const record of records.slice(logged)) {
      if (!record.startsWith("cargo-worker-build:")) continue;
      for (const other of record.match(TAG) ?? []) {
        if (other !== tag) throw new Error(`the record of ${tag} (${op}) carries the data of ${other}: ${record}`);
      }
    }
    promise.catch(() => {});
    calls.push({ tag, op, promise });
    // Interleaving: the next call in the same task, after a microtask, after the other tasks
    // queued now, or after a timer.
    const wait = random();
    if (wait < 0.3) await null;
    else if (wait < 0.5) await new NativePromise((resolve) => setImmediate(resolve));
    else if (wait < 0.6) await sleep(1);
  }
  open();
  // A call waiting on a thenable that never calls back settles only when its instance dies
  // after its future was polled (one that had not started would run on the fresh instance): its
  // timer (at most 1 ms) and the executor tick behind it have run by then.
  for (const g of stuck) {
    await sleep(5);
    try {
      g.fns.trap();
    } catch {
      // the abort that ends it
    }
  }
  const pending = Symbol("pending");
  const deadline = sleep(2000).then(() => pending);
  const outcomes = await NativePromise.all(
    calls.map((c) =>
      NativePromise.race([
        c.promise.then(
          (value) => ({ value }),
          (error) => ({ error }),
        ),
        deadline,
      ]),
    ),
  );
  // The aborts in timers of this sequence have happened (and been recovered) before the checks.
  if (calls.some((c) => c.op.endsWith("timer-abort"))) await sleep(3);
  const where = () => `sequence ${seq}: ${calls.map((c) => `${c.tag} ${c.op}`).join("; ")}`;
  outcomes.forEach((outcome, i) => {
    const call = calls[i];
    if (outcome === pending) throw new Error(`${call.tag} (${call.op}) never settled; ${where()}`);
    if ("error" in outcome) {
      for (let e = outcome.error, depth = 0; e != null && depth < 5; e = e.cause, depth++) {
        const text = `${e?.message ?? e} ${e?.stack ?? ""}`;
        for (const tag of text.match(TAG) ?? []) {
          if (tag !== call.tag) throw new Error(`${call.tag} (${call.op}) got the data of ${tag}: ${text}; ${where()}`);
        }
      }
      // Only a call whose own Rust code aborted may have the abort as its error's cause.
      if (outcome.error instanceof WasmAbortError && outcome.error.cause !== undefined && !/(trap|abort|nested)$/.test(call.op)) {
        throw new Error(`${call.tag} (${call.op}) got another call's abort as its cause; ${where()}`);
      }
    }
  });
  for (const record of records.slice(seen)) {
    if (!record.startsWith("cargo-worker-build:")) continue;
    const tags = new Set(record.match(TAG) ?? []);
    if (tags.size > 1) throw new Error(`a record carries several calls' data: ${record}; ${where()}`);
  }
  glues.forEach((g, i) => {
    const entered = g.glue.__fakeDeadEntries() - dead[i];
    if (entered !== 0) throw new Error(`${entered} entries into a dead ${g.name} instance; ${where()}`);
    const inFlight = recoveryStats(g.glue)?.inFlight;
    if (inFlight !== 0) throw new Error(`${inFlight} call(s) still followed on ${g.name}; ${where()}`);
  });
  if (globalThis.Promise !== NativePromise) throw new Error(`Promise was left swapped; ${where()}`);
  return calls.length;
}

const random = prng(SEED);
const started = Date.now();
let sequences = 0;
let calls = 0;
while (sequences < SEQUENCES && Date.now() - started < SECONDS * 1000) {
  try {
    calls += await sequence(sequences, random);
  } catch (error) {
    process.stdout.write(`fuzz: FAILED after ${sequences} sequences (seed ${SEED}): ${error?.message ?? error}\n`);
    process.exit(1);
  }
  sequences += 1;
  // Keep the record list from growing for the whole run.
  records.length = 0;
}
process.stdout.write(`fuzz: ${sequences} sequences, ${calls} calls (seed ${SEED}) in ${Date.now() - started} ms\n`);
