// Unit tests of runtime.js, run by `workerd test` (tests/runtime_js.rs) against the fake glue.
// The runtime must be imported before the glue modules, as in the generated entry.
import {
  createWorker,
  recoveryStats,
  wrapClass,
  wrapFunction,
  WasmAbortError,
  STATS_GLOBAL,
} from "./runtime.js";
import { WorkerEntrypoint } from "cloudflare:workers";
import * as hooked from "./glue-hooked.js";
import * as plain from "./glue-plain.js";
import * as fallback from "./glue-fallback.js";

const HOOKED = { mode: "unwind", handlers: ["fetch"], functions: [], classes: ["Counter"], wasmModule: hooked.wasmModule };
const PLAIN = { mode: "abort", handlers: [], functions: [], classes: ["Counter"], wasmModule: plain.wasmModule };
const FALLBACK = { mode: "unwind", handlers: [], functions: [], classes: [] };

function wrapAll(glue, EXPORTS) {
  const fns = {};
  for (const name of ["bump", "trap", "panic", "jsRangeError", "scheduleReinit", "later"]) {
    fns[name] = wrapFunction(glue, name, EXPORTS);
  }
  return fns;
}

const h = wrapAll(hooked.glue, HOOKED);
const p = wrapAll(plain.glue, PLAIN);
const f = wrapAll(fallback.glue, FALLBACK);
const HookedCounter = wrapClass(hooked.glue, "Counter", HOOKED);
const PlainCounter = wrapClass(plain.glue, "Counter", PLAIN);

function assert(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}
function equal(actual, expected, message) {
  if (actual !== expected) throw new Error(`${message}: expected ${expected}, got ${actual}`);
}
function throws(call, check, message) {
  try {
    call();
  } catch (error) {
    assert(check(error), `${message}: unexpected ${error?.name}: ${error?.message}`);
    return error;
  }
  throw new Error(`${message}: did not throw`);
}
async function rejects(promise, check, message) {
  try {
    await promise;
  } catch (error) {
    assert(check(error), `${message}: unexpected ${error?.name}: ${error?.message}`);
    return error;
  }
  throw new Error(`${message}: did not reject`);
}
const stats = (glue) => recoveryStats(glue);

// The tests share one isolate and run in any order: each compares with the state it found and
// leaves the instances alive.

export const panicKeepsState = {
  test() {
    const before = stats(hooked.glue).reinits;
    const start = h.bump();
    throws(() => h.panic(), (e) => e.name === "PanicError", "the panic reaches the caller");
    equal(h.bump(), start + 1, "state kept after a panic");
    equal(stats(hooked.glue).reinits, before, "no re-initialisation");
    assert(stats(hooked.glue).observed, "the hooked module is observed");
  },
};

export const jsRangeErrorIsRecoverable = {
  test() {
    // A RangeError thrown through Rust is not a stack overflow: the flag says the instance lives.
    const before = stats(plain.glue).reinits;
    const start = p.bump();
    throws(() => p.jsRangeError(), (e) => e instanceof RangeError, "the JS error itself");
    equal(p.bump(), start + 1, "state kept");
    equal(stats(plain.glue).reinits, before, "no re-initialisation");
  },
};

export const trapReinitialisesOnce = {
  test() {
    for (const [fns, glue] of [[h, hooked.glue], [p, plain.glue]]) {
      const before = stats(glue).reinits;
      fns.bump();
      throws(() => fns.trap(), (e) => e instanceof WebAssembly.RuntimeError, "the trap reaches the caller");
      equal(stats(glue).reinits, before + 1, "re-initialised at once");
      equal(fns.bump(), 1, "the next call runs on a fresh instance");
      equal(stats(glue).reinits, before + 1, "exactly once");
    }
  },
};

export const asyncAbortFailsCallsInFlight = {
  async test() {
    for (const [fns, glue] of [[h, hooked.glue], [p, plain.glue]]) {
      const before = stats(glue).reinits;
      const started = Date.now();
      const slow = fns.later("ok", 200);
      const dying = fns.later("abort", 10);
      await rejects(dying, (e) => e instanceof WasmAbortError, "the aborting call rejects");
      await rejects(slow, (e) => e instanceof WasmAbortError, "the call in flight rejects");
      assert(Date.now() - started < 150, "both reject at the abort, not when the slow one is due");
      equal(stats(glue).reinits, before + 1, "one re-initialisation for both");
      equal(fns.bump(), 1, "fresh instance");
      await new Promise((resolve) => setTimeout(resolve, 250));
      equal(fns.bump(), 2, "the dead instance's continuation never ran Rust");
      equal(await fns.later("ok", 1), 3, "async calls work again");
      await rejects(fns.later("panic", 1), (e) => e.name === "PanicError", "async panic");
      equal(stats(glue).reinits, before + 1, "an async panic does not re-initialise");
    }
  },
};

export const scheduleReinitWhileAlive = {
  test() {
    h.bump();
    const before = stats(hooked.glue).reinits;
    h.scheduleReinit(); // a live instance asks for a fresh start
    equal(stats(hooked.glue).reinits, before, "not in the middle of a call");
    equal(h.bump(), 1, "before the next call");
    equal(stats(hooked.glue).reinits, before + 1, "counted");
  },
};

export const classesAreRebuiltFromTheirArguments = {
  test() {
    for (const [Counter, fns] of [[HookedCounter, h], [PlainCounter, p]]) {
      const counter = new Counter(5);
      equal(counter.add(1), 6, "method");
      equal(counter.start, 5, "getter");
      equal(Counter.make(4), 8, "static method");
      throws(() => counter.trap(), (e) => e instanceof WebAssembly.RuntimeError, "a method aborts");
      equal(counter.add(1), 6, "rebuilt from its constructor arguments");
      throws(() => fns.trap(), (e) => e instanceof WebAssembly.RuntimeError, "another call aborts");
      equal(counter.start, 5, "rebuilt again, getter");
      equal(counter.add(2), 7, "method after the rebuild");
      counter.free();
      equal(Counter.name, "Counter", "the class keeps its name");
    }
  },
};

export const fallbackWithoutObservation = {
  test() {
    equal(stats(fallback.glue).observed, false, "not observed without its module");
    const before = stats(fallback.glue).reinits;
    const start = f.bump();
    throws(() => f.panic(), (e) => e.name === "PanicError", "panic");
    equal(f.bump(), start + 1, "a panic keeps state");
    throws(() => f.trap(), (e) => e instanceof WebAssembly.RuntimeError, "trap");
    equal(stats(fallback.glue).reinits, before + 1, "a RuntimeError is taken for an abort");
    equal(f.bump(), 1, "fresh instance");
  },
};

export const workerShapes = {
  async test() {
    const worker = createWorker(hooked.glue, HOOKED);
    assert(!(worker.prototype instanceof WorkerEntrypoint), "a plain module worker without RPC");
    const response = await worker.fetch(new Request("http://x/"), { NAME: "env" }, {});
    equal(await response.text(), "http://x/ env object", "handlers get (request, env, ctx)");

    const rpc = createWorker(plain.glue, {
      ...PLAIN,
      handlers: [],
      functions: ["bump", "__wbg_reset_state", "missing"],
    }, WorkerEntrypoint);
    assert(rpc.prototype instanceof WorkerEntrypoint, "RPC methods need a WorkerEntrypoint");
    assert(typeof rpc.prototype.bump === "function", "exported functions are RPC methods");
    assert(!("__wbg_reset_state" in rpc.prototype), "plumbing is not exposed");
    assert(!("missing" in rpc.prototype), "names the glue lacks are ignored");
    assert(globalThis[STATS_GLOBAL] !== undefined, "the counters are published on globalThis");
    equal(typeof globalThis[STATS_GLOBAL].reinits, "number", "with the re-initialisation count");
  },
};
