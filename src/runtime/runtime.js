// The recovery runtime of cargo-worker-build.
//
// It sits between the platform (workerd, wrangler, a JavaScript caller) and the wasm-bindgen glue
// (`glue.js`, generated with `--experimental-reset-state-function`), and keeps one promise:
// a failure of Rust code costs the call that failed, never the ones after it.
//
// - A recoverable failure (a caught panic under panic=unwind, a JS exception that unwound
//   through Rust, an `Err` from a handler) fails only its call: one `console.error` line, the
//   instance and its state are kept.
// - An abort (trap, `abort()`, OOM, stack overflow, panic while panicking) kills the Wasm
//   instance. Whether it is dead is read from wasm-bindgen's own terminated flag (the
//   `__instance_terminated` word in linear memory), never guessed from the error's type. On the
//   first sign of death the runtime re-initialises at once through the glue's
//   `__wbg_reset_state()`, so no later call, callback, timer or promise continuation can enter the
//   dead instance (the glue then rejects stale closures and objects by instance id); every call
//   still in flight on the dead instance is rejected at once instead of hanging; class instances
//   (Durable Objects) are rebuilt from their original constructor arguments when next used.
//
// To read the flag the runtime needs the instance's exports, which the glue keeps private. It
// therefore observes instantiation: `WebAssembly.Instance` is replaced by a transparent proxy
// that records, per wasm-bindgen module, the latest instance. The same proxy re-routes the
// module's `__wbindgen_reinit` import (called by `wasm_bindgen::handler::schedule_reinit`, which
// the workers-rs abort hook uses) to the runtime, so re-initialisation happens exactly once, here,
// and never inside the glue's call guard (which would run an old closure pointer on the new
// instance). This module must therefore be evaluated before the glue: the entry imports it first.
//
// It imports nothing, so a library build loads outside Workers too (Node, a browser); a Worker
// entry with RPC methods passes `WorkerEntrypoint` from `cloudflare:workers` to `createWorker`.

const LOG_PREFIX = "cargo-worker-build:";

/** Handler names the platform calls with (event, env, ctx). */
export const HANDLER_NAMES = Object.freeze(["fetch", "scheduled", "queue", "email", "tail"]);

/** Where the statistics of the Worker's runtime are published for code that cannot import us. */
export const STATS_GLOBAL = "__cargo_worker_build_recovery";

/** Names a wrapped class never forwards: object lifetime belongs to the wrapper. */
const LIFETIME_METHODS = new Set(["constructor", "free", "__destroy_into_raw"]);

/** Thrown to calls that were in flight on an instance that aborted. */
export class WasmAbortError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = "WasmAbortError";
  }
}

// ---------------------------------------------------------------------------------------------
// The observer: installed once per isolate and shared by every copy of this file (a Worker may
// import several Rust libraries, each bundled with its own runtime.js).

const OBSERVER_KEY = Symbol.for("cargo-worker-build.observer");

class ModuleRecord {
  constructor(reinitImports) {
    this.reinitImports = reinitImports; // [[namespace, name], ...]
    this.exports = null; // exports of the latest instance
    this.instances = 0; // instances created so far: the generation of `exports`
    this.owner = null; // the Recovery that re-initialises this module
  }
}

const observer = globalThis[OBSERVER_KEY] ?? installObserver();

function installObserver() {
  const shared = {
    records: new WeakMap(), // WebAssembly.Module -> ModuleRecord | null
    runtimes: new Set(), // every Recovery, told about errors that reached no caller
    queueMicrotask: globalThis.queueMicrotask, // the platform's own
    observing: false, // whether instantiation is observed
  };
  Object.defineProperty(globalThis, OBSERVER_KEY, { value: shared });

  // A transparent proxy: only `new WebAssembly.Instance(...)` is intercepted, and only modules
  // that carry wasm-bindgen's abort machinery are touched.
  try {
    WebAssembly.Instance = new Proxy(WebAssembly.Instance, {
      construct(target, args, newTarget) {
        const [module, imports] = args;
        const record = recordFor(shared, module);
        if (record === null) return Reflect.construct(target, args, newTarget);
        const routed = [module, routeReinitImports(imports, record), ...args.slice(2)];
        const instance = Reflect.construct(target, routed, newTarget);
        record.exports = instance.exports;
        record.instances += 1;
        return instance;
      },
    });
    shared.observing = true;
  } catch {
    // A frozen `WebAssembly` namespace: each Recovery falls back to reading errors.
  }

  // wasm-bindgen-futures polls every future in a microtask: an abort there reaches no caller.
  // Report it synchronously, before the next microtask could enter the dead instance.
  const notify = (error, where) => {
    for (const runtime of shared.runtimes) runtime.checkAfterUncaught(error, where);
  };
  if (typeof shared.queueMicrotask === "function") {
    const platformQueueMicrotask = shared.queueMicrotask;
    globalThis.queueMicrotask = function queueMicrotask(callback) {
      if (typeof callback !== "function") return platformQueueMicrotask.call(globalThis, callback);
      return platformQueueMicrotask.call(globalThis, () => {
        try {
          callback();
        } catch (error) {
          notify(error, "a microtask");
          throw error;
        }
      });
    };
  }
  if (typeof globalThis.addEventListener === "function") {
    try {
      globalThis.addEventListener("error", (event) => notify(event?.error, "a callback"));
      globalThis.addEventListener("unhandledrejection", (event) =>
        notify(event?.reason, "a promise continuation"),
      );
    } catch {
      // Not an event target here; the other detection points still apply.
    }
  }
  return shared;
}

/** The record of a wasm-bindgen module with abort machinery, or null for any other module. */
function recordFor(shared, module) {
  if (!(module instanceof WebAssembly.Module)) return null;
  let record = shared.records.get(module);
  if (record !== undefined) return record;
  record = null;
  try {
    const exported = WebAssembly.Module.exports(module);
    if (exported.some((e) => e.name === "__instance_terminated" && e.kind === "global")) {
      const reinitImports = WebAssembly.Module.imports(module)
        .filter((i) => i.kind === "function" && i.name.startsWith("__wbg___wbindgen_reinit_"))
        .map((i) => [i.module, i.name]);
      record = new ModuleRecord(reinitImports);
    }
  } catch {
    record = null;
  }
  shared.records.set(module, record);
  return record;
}

/** Copies `imports` with `__wbindgen_reinit` going to the owning runtime (if any). */
function routeReinitImports(imports, record) {
  if (record.reinitImports.length === 0 || imports === null || typeof imports !== "object") {
    return imports;
  }
  const copy = { ...imports };
  for (const [namespace, name] of record.reinitImports) {
    const original = imports[namespace]?.[name];
    if (typeof original !== "function") continue;
    copy[namespace] = { ...copy[namespace] };
    copy[namespace][name] = function wbindgenReinit(...args) {
      if (record.owner === null) return original.apply(this, args);
      record.owner.reinitRequested();
      return undefined;
    };
  }
  return copy;
}

/** Schedules `callback` without the error reporting wrapper. */
function queueMicrotaskUnobserved(callback) {
  observer.queueMicrotask.call(globalThis, callback);
}

// ---------------------------------------------------------------------------------------------
// Recovery: one per glue module.

const recoveries = new WeakMap();

/** Fails pending calls whose promise was dropped by Rust (see checkAfterUncaught). */
const orphans =
  typeof FinalizationRegistry === "function"
    ? new FinalizationRegistry(({ recovery, entry }) => {
        recovery.pending.delete(entry);
        if (entry.settled) return;
        entry.settled = true;
        entry.reject(
          new Error(
            `${entry.label} can never complete: its Rust future was dropped when a JS ` +
              "exception unwound through it",
          ),
        );
      })
    : { register() {} };

function recoveryFor(glue, EXPORTS) {
  let recovery = recoveries.get(glue);
  if (recovery === undefined) {
    recovery = new Recovery(glue, EXPORTS ?? {});
    recoveries.set(glue, recovery);
  }
  return recovery;
}

class Recovery {
  constructor(glue, EXPORTS) {
    this.glue = glue;
    this.mode = EXPORTS.mode === "abort" ? "abort" : "unwind";
    this.record = this.findRecord(EXPORTS.wasmModule);
    this.ownGeneration = 0; // used only without a record
    this.pending = new Set(); // async calls in flight on the current instance
    this.reinitWanted = false; // `schedule_reinit()` called while the instance was alive
    this.unreported = null; // an abort recovered before its error was seen (see abortDetected)
    this.resetFailed = false; // the last re-initialisation threw: retry before the next call
    this.flagView = null;
    this.flagBuffer = null;
    this.stats = {
      reinits: 0, // re-initialisations after an abort or a requested reinit
      aborts: 0, // aborts detected
      failures: 0, // recoverable failures (panics, JS errors, `Err` results)
      abortedInFlight: 0, // calls rejected because their instance aborted
      lastAbort: null, // "<kind> in <call>"
      observed: this.record !== null, // whether the terminated flag is read (see the top)
      mode: this.mode, // "unwind" or "abort", as built
    };
    if (typeof glue.__wbg_reset_state !== "function") {
      console.error(
        `${LOG_PREFIX} the wasm-bindgen glue has no __wbg_reset_state(); aborts cannot be ` +
          "recovered (run wasm-bindgen with --experimental-reset-state-function)",
      );
    }
    if (this.record === null) {
      console.error(
        `${LOG_PREFIX} could not observe the Wasm instance; abort detection falls back to ` +
          "error types (import runtime.js before the glue)",
      );
    } else {
      this.record.owner = this;
    }
    observer.runtimes.add(this);
  }

  findRecord(wasmModule) {
    if (wasmModule !== undefined) {
      const record = observer.records.get(wasmModule);
      if (record) return record;
    }
    return null;
  }

  /** Generation of the current instance: bumps on every instantiation, ours or the glue's. */
  get generation() {
    return this.record !== null ? this.record.instances : this.ownGeneration;
  }

  /** wasm-bindgen's terminated flag of the current instance (false if it cannot be read). */
  terminated() {
    const exports = this.record?.exports;
    if (!exports) return false;
    const buffer = exports.memory.buffer;
    if (buffer !== this.flagBuffer) {
      this.flagBuffer = buffer;
      this.flagView = new Int32Array(buffer, exports.__instance_terminated.value, 1);
    }
    return this.flagView[0] !== 0;
  }

  /** Called by the routed `__wbindgen_reinit` import, from inside Rust. */
  reinitRequested() {
    if (this.terminated()) {
      // The abort hook of a dying instance: re-initialise now, before anything else can run;
      // the error is still unwinding out of the old instance and is named in the log later.
      this.abortDetected(null, null);
    } else {
      // A live instance asked for a fresh start: do it before the next call, not mid-call.
      this.reinitWanted = true;
    }
  }

  /** Before a call: make sure it enters a live instance. */
  ensureLive(label) {
    if (this.resetFailed) {
      const outcome = this.reinitialise("retrying the re-initialisation that failed");
      if (this.resetFailed) throw new WasmAbortError(`${label} cannot run: ${outcome}`);
    }
    if (this.terminated()) {
      this.abortDetected(null, `an earlier call (seen before ${label})`);
    } else if (this.reinitWanted) {
      this.reinitWanted = false;
      this.reinitialise("schedule_reinit() was called");
    }
  }

  /** Calls `fn` on the live instance; failures are classified, aborts recovered. */
  invoke(fn, thisArg, args, label) {
    this.ensureLive(label);
    const generation = this.generation;
    let result;
    try {
      result = fn.apply(thisArg, args);
    } catch (error) {
      throw this.failed(error, label, generation);
    }
    if (result !== null && typeof result === "object" && typeof result.then === "function") {
      return this.track(result, label, generation);
    }
    return result;
  }

  /** Follows an async call; it is rejected at once if its instance aborts meanwhile. */
  track(promise, label, generation) {
    return new Promise((resolve, reject) => {
      const entry = { reject, label, promise, settled: false };
      this.pending.add(entry);
      promise.then(
        (value) => {
          entry.settled = true;
          this.pending.delete(entry);
          resolve(value);
        },
        (error) => {
          entry.settled = true;
          this.pending.delete(entry);
          reject(this.failed(error, label, generation));
        },
      );
    });
  }

  /** Classifies an error thrown or rejected by a call made on instance `generation`. */
  failed(error, label, generation) {
    if (generation !== this.generation) {
      // Its instance is gone: the abort was already detected and recovered.
      this.reportAbort(error, label);
      return error;
    }
    if (this.terminated() || (this.record === null && looksLikeAbort(error))) {
      this.abortDetected(error, label);
      return error;
    }
    this.stats.failures += 1;
    console.error(`${LOG_PREFIX} ${label} failed: ${describe(error)} (recovered; instance kept)`);
    return error;
  }

  /** An error nobody awaited (microtask, timer, event): was it an abort? */
  checkAfterUncaught(error, where) {
    if (this.terminated()) {
      this.abortDetected(error, where);
    } else if (this.unreported !== null) {
      this.reportAbort(error, where);
    } else if (where === "a microtask" && error !== undefined) {
      // wasm-bindgen-futures polls futures in a microtask: a JS exception that unwound through
      // a future lands here, with no caller to see it. The future was dropped, so its promise
      // will never settle (workerd fails such a request as hung). Which call it was cannot be
      // told, so stop holding every pending call's promise: the one that can never settle is
      // garbage-collected while pending, and then its caller is failed (see `orphans`).
      this.stats.failures += 1;
      console.error(`${LOG_PREFIX} ${where} failed: ${describe(error)} (recovered; instance kept)`);
      for (const entry of this.pending) {
        if (entry.promise !== null) {
          orphans.register(entry.promise, { recovery: this, entry });
          entry.promise = null;
        }
      }
    }
  }

  /**
   * The instance is dead: re-initialise once, fail the calls in flight on it, log one line.
   * Called from the abort hook, the error is not known yet: the line is written when the error
   * arrives (it is unwinding to a caller or a microtask), or at the latest one microtask later.
   */
  abortDetected(error, where) {
    const inFlight = [...this.pending];
    this.pending.clear();
    this.stats.aborts += 1;
    const outcome = this.reinitialise(null);
    this.unreported = { outcome, inFlight: inFlight.length };
    // One microtask later: a call whose promise settled just before the abort (its reaction is
    // already queued) keeps its result; the others can never settle now, and fail.
    queueMicrotaskUnobserved(() => {
      const failure = new WasmAbortError(
        "the Wasm instance aborted while this call was in flight; it was re-initialised",
        { cause: error ?? undefined },
      );
      for (const entry of inFlight) {
        if (entry.settled) continue;
        entry.settled = true;
        this.stats.abortedInFlight += 1;
        entry.reject(failure);
      }
    });
    if (error !== null) {
      this.reportAbort(error, where);
    } else {
      queueMicrotaskUnobserved(() => this.reportAbort(null, where ?? "an unknown call"));
    }
  }

  /** Writes the one log line of the abort recovered last, once. */
  reportAbort(error, where) {
    const report = this.unreported;
    if (report === null) return;
    this.unreported = null;
    const kind = error !== null && error !== undefined ? abortKind(error) : "abort";
    this.stats.lastAbort = `${kind} in ${where}`;
    console.error(
      `${LOG_PREFIX} Wasm instance aborted (${kind} in ${where}); ${report.outcome}` +
        (report.inFlight > 0 ? `; ${report.inFlight} call(s) were in flight on it` : ""),
    );
  }

  /** Builds a fresh instance; returns a description for the log line. */
  reinitialise(reason) {
    if (typeof this.glue.__wbg_reset_state !== "function") return "cannot re-initialise";
    try {
      this.glue.__wbg_reset_state();
      this.resetFailed = false;
    } catch (error) {
      this.resetFailed = true;
      return `re-initialisation failed: ${describe(error)} (retried at the next call)`;
    } finally {
      this.ownGeneration += 1;
    }
    this.stats.reinits += 1;
    const text = `re-initialised (re-initialisation #${this.stats.reinits})`;
    if (reason !== null) console.error(`${LOG_PREFIX} ${reason}; ${text}`);
    return text;
  }
}

/** Without the flag: the error types only an abort produces. */
function looksLikeAbort(error) {
  return (
    error instanceof WebAssembly.RuntimeError ||
    error instanceof WebAssembly.Exception ||
    (error instanceof Error && error.message === "Module terminated") ||
    (error instanceof RangeError && /call stack/i.test(error.message))
  );
}

function abortKind(error) {
  if (error instanceof RangeError && /call stack/i.test(error.message)) return "stack overflow";
  if (error instanceof WebAssembly.RuntimeError) return `trap: ${error.message}`;
  if (error instanceof WebAssembly.Exception) return "uncaught Wasm exception";
  if (error instanceof Error && error.message === "Module terminated") return "terminated";
  return describe(error);
}

function describe(error) {
  try {
    if (error instanceof Error) return `${error.name}: ${error.message}`;
    return String(error);
  } catch {
    return "<unprintable error>";
  }
}

// ---------------------------------------------------------------------------------------------
// Public API used by the generated entry (entry.js) and library module (library.js).

/**
 * The Worker's default export. Handlers (`fetch`, `scheduled`, ...) call the crate's exports of
 * the same name with (event, env, ctx); other exported functions become RPC methods, which needs
 * a `WorkerEntrypoint` class (passed by the entry, which imports it from `cloudflare:workers`
 * only then); without them a plain module-worker object is cheaper per request.
 */
export function createWorker(glue, EXPORTS, WorkerEntrypoint) {
  const recovery = recoveryFor(glue, EXPORTS);
  publishStats(recovery);
  const handlers = (EXPORTS.handlers ?? []).filter(
    (name) => HANDLER_NAMES.includes(name) && typeof glue[name] === "function",
  );
  // `__`-prefixed exports are plumbing (`__wbg_reset_state`, workers-rs `__worker_init_state`).
  const functions = (EXPORTS.functions ?? []).filter(
    (name) => !name.startsWith("__") && typeof glue[name] === "function",
  );

  if (functions.length === 0) {
    const worker = {};
    for (const name of handlers) {
      const handler = glue[name];
      worker[name] = function (event, env, ctx) {
        return recovery.invoke(handler, undefined, [event, env, ctx], name);
      };
    }
    return worker;
  }

  if (typeof WorkerEntrypoint !== "function") {
    throw new TypeError(
      `${LOG_PREFIX} exported functions ${functions.join(", ")} need WorkerEntrypoint from "cloudflare:workers"`,
    );
  }
  class Worker extends WorkerEntrypoint {}
  for (const name of handlers) {
    const handler = glue[name];
    defineMethod(Worker.prototype, name, function (event) {
      return recovery.invoke(handler, undefined, [event, this.env, this.ctx], name);
    });
  }
  for (const name of functions) {
    if (name in Worker.prototype || HANDLER_NAMES.includes(name)) {
      console.error(`${LOG_PREFIX} exported function ${name} clashes with a Worker method; skipped`);
      continue;
    }
    const fn = glue[name];
    defineMethod(Worker.prototype, name, function (...args) {
      return recovery.invoke(fn, undefined, args, name);
    });
  }
  return Worker;
}

/** A crate function with abort recovery (library mode). */
export function wrapFunction(glue, name, EXPORTS) {
  const recovery = recoveryFor(glue, EXPORTS);
  const fn = glue[name];
  if (typeof fn !== "function") throw new TypeError(`${LOG_PREFIX} glue has no function ${name}`);
  const wrapped = function (...args) {
    return recovery.invoke(fn, undefined, args, name);
  };
  Object.defineProperty(wrapped, "name", { value: name });
  return wrapped;
}

const STATE = Symbol("cargo-worker-build.object");

/**
 * A crate class with abort recovery. Instances keep their constructor arguments; an instance
 * whose Wasm object belonged to an instance that has since been re-initialised is rebuilt from
 * them on its next use (this is how Durable Objects survive an abort: with fresh fields).
 */
export function wrapClass(glue, name, EXPORTS) {
  const recovery = recoveryFor(glue, EXPORTS);
  const Inner = glue[name];
  if (typeof Inner !== "function") throw new TypeError(`${LOG_PREFIX} glue has no class ${name}`);

  const Wrapped = class {
    constructor(...args) {
      const inner = recovery.invoke(construct, undefined, args, `new ${name}`);
      this[STATE] = { inner, args, generation: recovery.generation };
    }
  };
  function construct(...args) {
    return new Inner(...args);
  }
  Object.defineProperty(Wrapped, "name", { value: name });

  /** The live Wasm object behind `wrapper`, rebuilt if its instance was replaced. */
  function current(wrapper) {
    const state = wrapper[STATE];
    if (state === undefined) throw new TypeError(`${name}: not a ${name} instance`);
    recovery.ensureLive(`${name} method`);
    if (state.generation !== recovery.generation) {
      state.inner = recovery.invoke(construct, undefined, state.args, `rebuilding ${name}`);
      state.generation = recovery.generation;
    }
    return state.inner;
  }

  for (const key of Reflect.ownKeys(Inner.prototype)) {
    if (typeof key === "string" && LIFETIME_METHODS.has(key)) continue;
    if (key === Symbol.dispose) continue;
    const descriptor = Object.getOwnPropertyDescriptor(Inner.prototype, key);
    const label = `${name}.${String(key)}`;
    if (typeof descriptor.value === "function") {
      const method = descriptor.value;
      defineMethod(Wrapped.prototype, key, function (...args) {
        return recovery.invoke(method, current(this), args, label);
      });
    } else if (descriptor.get || descriptor.set) {
      const { get, set } = descriptor;
      Object.defineProperty(Wrapped.prototype, key, {
        configurable: true,
        enumerable: false,
        get: get && function () {
          return recovery.invoke(get, current(this), [], label);
        },
        set: set && function (value) {
          recovery.invoke(set, current(this), [value], label);
        },
      });
    }
  }

  defineMethod(Wrapped.prototype, "free", function () {
    const state = this[STATE];
    if (state === undefined || state.generation !== recovery.generation) return;
    recovery.invoke(state.inner.free, state.inner, [], `${name}.free`);
  });
  if (typeof Symbol.dispose === "symbol") {
    defineMethod(Wrapped.prototype, Symbol.dispose, Wrapped.prototype.free);
  }

  for (const key of Reflect.ownKeys(Inner)) {
    if (key === "prototype" || key === "length" || key === "name") continue;
    const descriptor = Object.getOwnPropertyDescriptor(Inner, key);
    if (typeof descriptor.value !== "function") continue;
    const fn = descriptor.value;
    defineMethod(Wrapped, key, function (...args) {
      return recovery.invoke(fn, Inner, args, `${name}.${String(key)}`);
    });
  }
  return Wrapped;
}

/** Statistics of the runtime serving `glue`: re-initialisations, aborts, failures. */
export function recoveryStats(glue) {
  const recovery = recoveries.get(glue);
  return recovery ? { ...recovery.stats } : null;
}

function publishStats(recovery) {
  if (!(STATS_GLOBAL in globalThis)) {
    Object.defineProperty(globalThis, STATS_GLOBAL, {
      value: recovery.stats,
      configurable: true,
    });
  }
}

function defineMethod(target, key, fn) {
  if (typeof key === "string") Object.defineProperty(fn, "name", { value: key });
  Object.defineProperty(target, key, {
    value: fn,
    writable: true,
    configurable: true,
    enumerable: false,
  });
}
