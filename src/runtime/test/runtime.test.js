// Unit tests of runtime.js, run by `workerd test` (tests/it/runtime_js.rs) against the fake glue.
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
import { HANDLERS } from "./handlers.js";

const HOOKED = { mode: "unwind", handlers: ["fetch"], functions: [], classes: ["Counter"], wasmModule: hooked.wasmModule };
const PLAIN = { mode: "abort", handlers: [], functions: [], classes: ["Counter"], wasmModule: plain.wasmModule };
const FALLBACK = { mode: "unwind", handlers: [], functions: [], classes: [] };

function wrapAll(glue, EXPORTS) {
  const fns = {};
  for (const name of ["bump", "trap", "panic", "jsRangeError", "scheduleReinit", "later", "nested", "total", "abortInTimer", "caughtPanic", "after"]) {
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
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** `promise`, or a rejection saying it was still pending after `ms`. */
function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

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
      // Generous margins: the machine running the tests may be busy.
      const slow = fns.later("ok", 1000);
      const dying = fns.later("abort", 10);
      await rejects(dying, (e) => e instanceof WasmAbortError, "the aborting call rejects");
      await rejects(slow, (e) => e instanceof WasmAbortError, "the call in flight rejects");
      assert(Date.now() - started < 600, "both reject at the abort, not when the slow one is due");
      equal(stats(glue).reinits, before + 1, "one re-initialisation for both");
      equal(fns.bump(), 1, "fresh instance");
      await new Promise((resolve) => setTimeout(resolve, 1050));
      equal(fns.bump(), 2, "the dead instance's continuation never ran Rust");
      equal(await fns.later("ok", 1), 3, "async calls work again");
      await rejects(fns.later("panic", 1), (e) => e.name === "PanicError", "async panic");
      equal(stats(glue).reinits, before + 1, "an async panic does not re-initialise");
    }
  },
};

export const asyncJsExceptionRejectsOnlyItsCall = {
  async test() {
    for (const [fns, glue] of [[h, hooked.glue], [p, plain.glue]]) {
      const before = stats(glue);
      const start = fns.bump();
      const started = Date.now();
      const slow = fns.later("ok", 1000);
      const dropped = fns.later("js-throw", 10);
      await rejects(dropped, (e) => e instanceof SyntaxError, "the JS exception itself");
      assert(Date.now() - started < 600, "at once, not when another call settles");
      equal(await slow, start + 1, "the call in flight is not touched and keeps the state");
      const after = stats(glue);
      equal(after.droppedFutures, before.droppedFutures + 1, "one dropped future");
      equal(after.reinits, before.reinits, "no re-initialisation");
    }
  },
};

export const scheduleReinitWithCallsInFlight = {
  async test() {
    const before = stats(hooked.glue).reinits;
    const slow = h.later("ok", 1000);
    await h.later("ok", 0); // an executor tick: `slow` may have started
    h.scheduleReinit();
    const started = Date.now();
    equal(h.bump(), 1, "the next call runs on a fresh instance");
    await rejects(slow, (e) => e instanceof WasmAbortError, "the call in flight on the old instance");
    assert(Date.now() - started < 600, "at once, not after its timer");
    equal(stats(hooked.glue).reinits, before + 1, "one re-initialisation");
  },
};

export const nestedAbortRecoversOnceTheOuterCallReturns = {
  test() {
    for (const [fns, glue] of [[h, hooked.glue], [p, plain.glue]]) {
      const before = stats(glue).reinits;
      fns.bump();
      let inner = null;
      let reinitsInside = null;
      throws(
        () =>
          fns.nested(() => {
            try {
              fns.trap();
            } catch (error) {
              inner = error;
            }
            reinitsInside = stats(glue).reinits;
            // A second nested call must not enter the dying instance.
            throws(() => fns.bump(), (e) => e instanceof WasmAbortError, "no call into a dying instance");
          }),
        (e) => e instanceof WasmAbortError,
        "the outer call fails cleanly",
      );
      assert(inner instanceof WebAssembly.RuntimeError, "the inner call saw the trap");
      equal(reinitsInside, before, "no re-initialisation under the outer Rust frame");
      equal(stats(glue).reinits, before + 1, "one re-initialisation, after the outer call");
      equal(fns.bump(), 1, "fresh instance");
    }
  },
};

export const startAbortRetriesAreBounded = {
  async test() {
    const before = stats(plain.glue);
    globalThis.__fake_start_aborts = 100;
    throws(() => p.trap(), (e) => e instanceof WebAssembly.RuntimeError, "the abort");
    for (let i = 0; i < 5; i++) {
      throws(() => p.bump(), (e) => e instanceof WasmAbortError && /could not be re-initialised/.test(e.message), `call ${i} fails clearly`);
    }
    const after = stats(plain.glue);
    equal(after.reinitFailures - before.reinitFailures, 3, "bounded attempts");
    globalThis.__fake_start_aborts = 0;
    await new Promise((resolve) => setTimeout(resolve, 1100));
    equal(p.bump(), 1, "retried after the backoff, and live again");
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

export const objectsCrossTheBoundary = {
  test() {
    const counter = new HookedCounter(3);
    assert(counter instanceof HookedCounter, "instanceof the exported class");
    equal(h.total(counter), 3, "a wrapped object passed to an export taking &T");
    const made = HookedCounter.create(7);
    assert(made instanceof HookedCounter, "an object Rust returned is wrapped");
    equal(made.add(1), 8, "and works");
    throws(() => h.trap(), (e) => e instanceof WebAssembly.RuntimeError, "an abort");
    equal(counter.add(1), 4, "the constructed one is rebuilt");
    throws(() => made.add(1), (e) => e instanceof WasmAbortError && /Counter/.test(e.message), "the returned one fails clearly");
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

    const traced = createWorker(hooked.glue, { ...HOOKED, handlers: ["fetch", "trace"] });
    equal(await traced.trace([1, 2], {}, {}), "2 object object", "every handler the tool lists, trace included");

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

export const everyHandlerTheToolListsIsServed = {
  async test() {
    // A glue with one function per handler name of the Rust side (src/exports.rs).
    const glue = Object.fromEntries(HANDLERS.map((name) => [name, () => `${name} ran`]));
    glue.__wbg_reset_state = () => {};
    const worker = createWorker(glue, { mode: "unwind", handlers: HANDLERS, functions: [], classes: [] });
    assert(HANDLERS.includes("trace"), "the Rust side lists trace");
    for (const name of HANDLERS) {
      equal(typeof worker[name], "function", `the Worker serves ${name}`);
      equal(await worker[name]({}, {}, {}), `${name} ran`, `${name} calls the export`);
    }
  },
};

/** Runs `call` and returns what it wrote with console.error (still passed on). */
function logged(call) {
  const seen = [];
  const through = console.error;
  console.error = (...args) => {
    seen.push(args.map(String).join(" "));
    through(...args);
  };
  try {
    call();
  } finally {
    console.error = through;
  }
  return seen;
}

export const aPanicRecordTakesTheLocationOfItsHook = {
  test() {
    // The fake's hook prints `panicked at src/lib.rs:1:1:\nboom\n\nStack:...` during the call.
    const lines = logged(() => {
      throws(() => h.panic("lib", "boom"), (e) => e.name === "PanicError", "the panic reaches the caller");
    });
    const record = lines.find((l) => l.startsWith("cargo-worker-build: panic failed"));
    equal(
      record,
      "cargo-worker-build: panic failed: PanicError: boom (recovered; instance kept) [panic at src/lib.rs:1:1, build unknown]\n" +
        "    at lib (wasm://wasm/0001:wasm-function[3]:0x10)",
      "the record has the hook's location and the panic site's frames",
    );
  },
};

export const aHookOfAnotherPanicIsNotTaken = {
  test() {
    const lines = logged(() => {
      console.error("panicked at src/other.rs:1:1:\nsomething else");
      throws(() => h.panic(), (e) => e.name === "PanicError", "the panic reaches the caller");
    });
    const record = lines.find((l) => l.startsWith("cargo-worker-build: panic failed"));
    assert(
      record?.startsWith("cargo-worker-build: panic failed: PanicError: boom (recovered; instance kept) [panic, build unknown]"),
      `no location from a hook that printed another message: ${record}`,
    );
  },
};

export const handlersResolvingWithThenablesSettle = {
  async test() {
    for (const [fns, glue, EXPORTS] of [[h, hooked.glue, HOOKED], [p, plain.glue, PLAIN]]) {
      // A handler (followed through its own promise) and a library function (tracked).
      const worker = createWorker(glue, { ...EXPORTS, handlers: ["later"] });
      const base = stats(glue).inFlight;
      // 1000 calls, 20 at a time (each holds two slots of the fake's externref table).
      for (let batch = 0; batch < 50; batch++) {
        const values = await within(
          Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? worker.later("thenable", 0) : fns.later("thenable", 0)))),
          2000,
          "calls resolved with thenables",
        );
        assert(values.every((v) => typeof v === "number"), "each call has its thenable's value");
      }
      assert(typeof (await within(worker.later("thenable-late", 0), 2000, "a late thenable")) === "number", "late value");
      for (const call of [worker.later, fns.later]) {
        await rejects(
          within(call("thenable-throws", 0), 2000, "a thenable whose then throws"),
          (e) => e instanceof TypeError && e.message === "then threw",
          "a then that throws rejects the call",
        );
      }
      equal(stats(glue).inFlight, base, "no call is left in flight");

      const stuck = [worker.later("thenable-never", 0), fns.later("thenable-never", 0)];
      await sleep(20);
      equal(stats(glue).inFlight, base + 2, "the calls wait on their thenables");
      throws(() => fns.trap(), (e) => e instanceof WebAssembly.RuntimeError, "an abort");
      for (const call of stuck) {
        await rejects(within(call, 1000, "a call waiting on a thenable at the abort"), (e) => e instanceof WasmAbortError, "rejected at the abort");
      }
      equal(stats(glue).inFlight, base, "and no longer followed");
    }
  },
};

export const anAbortOutsideACallFailsCallsInFlightAtOnce = {
  async test() {
    // Rust code run by a timer aborts. With the workers-rs-style hook the runtime hears of it
    // at once; without, from the next executor tick, which must not enter the dead instance.
    for (const [fns, glue, wake] of [[h, hooked.glue, false], [h, hooked.glue, true], [p, plain.glue, true]]) {
      fns.bump();
      const before = stats(glue).reinits;
      const dead = glue.__fakeDeadEntries();
      const started = Date.now();
      const slow = fns.later("ok", 2000);
      await fns.later("ok", 0); // an executor tick: `slow` may have started
      fns.abortInTimer(10, wake);
      await rejects(within(slow, 1500, "the call in flight"), (e) => e instanceof WasmAbortError, "the call in flight fails");
      assert(Date.now() - started < 600, "at the abort, not at the next call or when its own timer fires");
      equal(glue.__fakeDeadEntries(), dead, "nothing entered the dead instance");
      equal(stats(glue).reinits, before + 1, "re-initialised once");
      equal(fns.bump(), 1, "the next call runs on a fresh instance");
    }
  },
};

export const aHookPrintedForAnotherCallIsNotTaken = {
  async test() {
    // One call's panic is caught in Rust (its hook printed); a later call panics with the same
    // message where no hook prints (a library without one). Same task, then a later one.
    for (const wait of [false, true]) {
      const lines = [];
      lines.push(...logged(() => h.caughtPanic("first", "boom")));
      if (wait) await sleep(1);
      lines.push(...logged(() => throws(() => h.panic("second", "boom", false), (e) => e.name === "PanicError", "the panic")));
      const record = lines.find((l) => l.startsWith("cargo-worker-build: panic failed"));
      assert(record !== undefined && !record.includes("first"), `the record has no location of another call: ${record}`);
    }
  },
};

export const callsInFlightDoNotGetAnotherCallsAbort = {
  async test() {
    for (const fns of [h, p]) {
      const inFlight = [fns.later("ok", 1000), fns.later("ok", 1000)];
      await fns.later("ok", 0); // an executor tick: they may have started
      const own = throws(() => fns.trap(), (e) => e instanceof WebAssembly.RuntimeError, "the aborting call gets its trap");
      const errors = [];
      for (const call of inFlight) {
        errors.push(await rejects(within(call, 600, "a call in flight"), (e) => e instanceof WasmAbortError, "each call in flight fails"));
      }
      for (const error of errors) {
        equal(error.cause, undefined, "no cause: the abort was another call's");
        assert(error !== own, "not the aborting call's error");
      }
      assert(errors[0] !== errors[1], "each call its own error object");
    }
  },
};

export const startAbortRetriesAreBoundedWithAnAbortHook = {
  async test() {
    // The start function aborts and the abort hook asks for a reinit each time: the runtime
    // still tries once per call, three times in a row, not again and again on its own.
    const before = stats(hooked.glue);
    globalThis.__fake_start_aborts = 100;
    throws(() => h.trap(), (e) => e instanceof WebAssembly.RuntimeError, "the abort");
    await sleep(20);
    equal(stats(hooked.glue).reinitFailures - before.reinitFailures, 1, "one attempt until the next call");
    for (let i = 0; i < 5; i++) {
      throws(() => h.bump(), (e) => e instanceof WasmAbortError && /could not be re-initialised/.test(e.message), `call ${i} fails clearly`);
    }
    await sleep(20);
    equal(stats(hooked.glue).reinitFailures - before.reinitFailures, 3, "bounded attempts");
    globalThis.__fake_start_aborts = 0;
    await sleep(1100);
    equal(h.bump(), 1, "retried after the backoff, and live again");
  },
};

export const everyFutureThatThrowsInOneTickIsRejected = {
  async test() {
    // Three futures throw a JS exception in the same executor tick, one more is queued behind
    // them: each thrower's call is rejected, and the last one still runs.
    for (const fns of [h, p]) {
      let open;
      const gate = new Promise((resolve) => (open = resolve));
      const calls = ["js-throw", "js-throw", "js-throw", "ok"].map((kind) => fns.after(gate, kind));
      open();
      for (const call of calls.slice(0, 3)) {
        await rejects(within(call, 1000, "a call whose future threw"), (e) => e instanceof SyntaxError, "rejected with its exception");
      }
      equal(typeof (await within(calls[3], 1000, "the call queued behind them")), "number", "the last future runs");
    }
  },
};

export const aWorkersRsHookRecordTakesItsLocation = {
  test() {
    // workers-rs logs `console.error("Critical", new Error("Rust panic: panicked at ...:\n..."))`.
    const lines = logged(() => {
      throws(() => h.panic("wr", "boom", "workers-rs"), (e) => e.name === "PanicError", "the panic reaches the caller");
    });
    const record = lines.find((l) => l.startsWith("cargo-worker-build: panic failed"));
    assert(
      record?.startsWith("cargo-worker-build: panic failed: PanicError: boom (recovered; instance kept) [panic at src/wr.rs:1:1, build unknown]"),
      `the record has the hook's location: ${record}`,
    );
  },
};

export const aCallNotStartedAtAnAbortRunsOnTheFreshInstance = {
  async test() {
    // An executor tick polls every future spawned before it began. A call made since the last
    // tick has run no Rust code of its own when the instance dies: it runs on the fresh
    // instance, once. A call made before a tick may have been polled: it fails, and is never
    // run again. Through a wrapped function (followed by the runtime) and a Worker handler
    // (the caller gets Rust's own promise).
    const worker = createWorker(hooked.glue, { ...HOOKED, handlers: ["later"] });
    const viaHandler = (kind, ms) => worker.later(kind, ms, undefined);
    for (const [later, fns, glue] of [[h.later, h, hooked.glue], [viaHandler, h, hooked.glue], [p.later, p, plain.glue]]) {
      const started = later("ok", 1000);
      await later("ok", 0); // an executor tick ran after `started` was made
      const before = stats(glue);
      const deadEntries = glue.__fakeDeadEntries();
      const notStarted = later("ok", 0);
      throws(() => fns.trap(), (e) => e instanceof WebAssembly.RuntimeError, "the aborting call gets its trap");
      await rejects(within(started, 600, "the call that may have started"), (e) => e instanceof WasmAbortError, "a call that may have started fails");
      equal(await within(notStarted, 600, "the call that had not started"), 1, "the call that had not started ran on the fresh instance");
      equal(fns.bump(), 2, "and ran once");
      const after = stats(glue);
      equal(after.retried - before.retried, 1, "one call run again");
      equal(after.abortedInFlight - before.abortedInFlight, 1, "one call failed");
      equal(after.reinits - before.reinits, 1, "one re-initialisation");
      equal(glue.__fakeDeadEntries(), deadEntries, "no entry into the dead instance");
      equal(after.inFlight, 0, "nothing left in flight");
    }
  },
};
