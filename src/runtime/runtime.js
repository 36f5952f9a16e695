// The recovery runtime of cargo-worker-build.
//
// It sits between the platform (workerd, wrangler, a JavaScript caller) and the wasm-bindgen glue
// (`glue.js`, generated with `--experimental-reset-state-function`), and keeps one promise:
// a failure of Rust code costs the call that failed, never the ones after it, and no call is
// left hanging.
//
// - A recoverable failure (a caught panic under panic=unwind, a JS exception that unwound
//   through Rust, an `Err` from a handler) fails only its call: one `console.error` line, the
//   instance and its state are kept. That holds after an `.await` too: a JS exception that
//   unwinds through a Rust future makes wasm-bindgen-futures drop the future, so its promise
//   could never settle; the runtime sees the failing executor tick, finds the call whose
//   future was dropped (below) and rejects it with that exception.
// - An abort (trap, `abort()`, OOM, stack overflow, panic while panicking) kills the Wasm
//   instance. Whether it is dead is read from wasm-bindgen's own terminated flag (the
//   `__instance_terminated` word in linear memory), never guessed from the error's type. When
//   the outermost Rust frame has returned (never while a frame of the dying instance is on the
//   stack) the runtime re-initialises through the glue's `__wbg_reset_state()`, so no later
//   call, callback, timer or promise continuation can enter the dead instance (the glue then
//   rejects stale closures and objects by instance id); every call still in flight on the dead
//   instance is rejected at once instead of hanging; class instances (Durable Objects) are
//   rebuilt from their original constructor arguments when next used.
//
// To read the flag the runtime needs the instance's exports, which the glue keeps private. It
// therefore observes instantiation: `WebAssembly.Instance` is replaced by a transparent proxy
// that records, per wasm-bindgen module, the latest instance. The same proxy re-routes two of
// the module's imports to the runtime: `__wbindgen_reinit` (called by
// `wasm_bindgen::handler::schedule_reinit`, which the workers-rs abort hook uses), so
// re-initialisation happens exactly once, here, and never inside the glue's call guard or the
// dying instance's abort hook; and `queueMicrotask`, through which wasm-bindgen-futures
// schedules its executor, so the runtime knows which microtasks run Rust futures (and no other
// microtask is ever touched). This module must therefore be evaluated before the glue: the
// entry imports it first.
//
// Which call's future was dropped: while a call runs, `Promise` is the capturing constructor
// below, so the runtime holds the resolve and reject functions Rust was given for the call's
// promise. A live future keeps them in the module's externref table; a future that wasm-bindgen
// dropped has released them (its slots are cleared as it unwinds) without calling either. After
// a failing executor tick, a pending call whose functions are neither in the table nor called
// can never settle, and is rejected. No outcome depends on garbage collection.
//
// It imports nothing, so a library build loads outside Workers too (Node, a browser); a Worker
// entry with RPC methods passes `WorkerEntrypoint` from `cloudflare:workers` to `createWorker`.

const LOG_PREFIX = "cargo-worker-build:";

/** Where the statistics of the Worker's runtime are published for code that cannot import us. */
export const STATS_GLOBAL = "__cargo_worker_build_recovery";

/** Names a wrapped class never forwards: object lifetime belongs to the wrapper. */
const LIFETIME_METHODS = new Set(["constructor", "free", "__destroy_into_raw"]);

/** Re-initialisations tried in a row (one per call) when the start function aborts. */
export const MAX_REINIT_ATTEMPTS = 3;

/** After that, at most one more attempt per this many milliseconds. */
export const REINIT_BACKOFF_MS = 1000;

/** Thrown to calls that were in flight on an instance that aborted or was replaced. */
export class WasmAbortError extends Error {
  /**
   * @param {string} message
   * @param {{ cause?: unknown }} [options]
   */
  constructor(message, options) {
    super(message, options);
    this.name = "WasmAbortError";
  }
}

// ---------------------------------------------------------------------------------------------
// The observer: installed once per isolate and shared by every copy of this file (a Worker may
// import several Rust libraries, each bundled with its own runtime).

const OBSERVER_KEY = Symbol.for("cargo-worker-build.observer");

class ModuleRecord {
  /**
   * @param {[string, string][]} reinitImports
   * @param {[string, string][]} tickImports
   */
  constructor(reinitImports, tickImports) {
    this.reinitImports = reinitImports; // [[namespace, name], ...]
    this.tickImports = tickImports; // wasm-bindgen-futures' `queueMicrotask`, [[namespace, name]]
    /** @type {any} exports of the latest instance */
    this.exports = null;
    this.instances = 0; // instances created so far: the generation of `exports`
    /** @type {Recovery | null} the Recovery that re-initialises this module */
    this.owner = null;
  }
}

/**
 * @typedef {object} Observer
 * @property {WeakMap<WebAssembly.Module, ModuleRecord | null>} records
 * @property {Set<Recovery>} runtimes every Recovery, told about errors that reached no caller
 * @property {boolean} observing whether instantiation is observed
 */

/** @type {Observer} */
const observer = /** @type {any} */ (globalThis)[OBSERVER_KEY] ?? installObserver();

/** @returns {Observer} */
function installObserver() {
  /** @type {Observer} */
  const shared = { records: new WeakMap(), runtimes: new Set(), observing: false };
  Object.defineProperty(globalThis, OBSERVER_KEY, { value: shared });

  // A transparent proxy: only `new WebAssembly.Instance(...)` is intercepted, and only modules
  // that carry wasm-bindgen's abort machinery are touched.
  try {
    WebAssembly.Instance = new Proxy(WebAssembly.Instance, {
      construct(target, args, newTarget) {
        const [module, imports] = args;
        const record = recordFor(shared, module);
        if (record === null) return Reflect.construct(target, args, newTarget);
        const routed = [module, routeImports(imports, record), ...args.slice(2)];
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

  // An abort in Rust code that JavaScript called without us (a closure run by a timer or an
  // event) reaches no caller: read the flag when such an error surfaces. Only the flag counts,
  // so an error of plain JavaScript changes nothing.
  const check = (/** @type {unknown} */ error, /** @type {string} */ where) => {
    for (const runtime of shared.runtimes) runtime.checkAfterUncaught(error, where);
  };
  if (typeof globalThis.addEventListener === "function") {
    try {
      globalThis.addEventListener("error", (event) => check(event?.error, "a callback"));
      globalThis.addEventListener("unhandledrejection", (event) =>
        check(event?.reason, "a promise continuation"),
      );
    } catch {
      // Not an event target here; the flag is read before the next call anyway.
    }
  }
  return shared;
}

/**
 * The record of a wasm-bindgen module with abort machinery, or null for any other module.
 * @param {Observer} shared
 * @param {unknown} module
 * @returns {ModuleRecord | null}
 */
function recordFor(shared, module) {
  if (!(module instanceof WebAssembly.Module)) return null;
  let record = shared.records.get(module);
  if (record !== undefined) return record;
  record = null;
  try {
    const exported = WebAssembly.Module.exports(module);
    if (exported.some((e) => e.name === "__instance_terminated" && e.kind === "global")) {
      /** @type {(prefix: string) => [string, string][]} */
      const imported = (prefix) =>
        WebAssembly.Module.imports(module)
          .filter((i) => i.kind === "function" && i.name.startsWith(prefix))
          .map((i) => [i.module, i.name]);
      record = new ModuleRecord(
        imported("__wbg___wbindgen_reinit_"),
        imported("__wbg_queueMicrotask_"),
      );
    }
  } catch {
    record = null;
  }
  shared.records.set(module, record);
  return record;
}

/**
 * Copies `imports` with `__wbindgen_reinit` and the executor's `queueMicrotask` going through
 * the owning runtime (if any).
 * @param {any} imports
 * @param {ModuleRecord} record
 */
function routeImports(imports, record) {
  if (imports === null || typeof imports !== "object") return imports;
  if (record.reinitImports.length === 0 && record.tickImports.length === 0) return imports;
  const copy = { ...imports };
  /** @param {[string, string][]} list @param {(original: Function) => Function} wrap */
  const route = (list, wrap) => {
    for (const [namespace, name] of list) {
      const original = imports[namespace]?.[name];
      if (typeof original !== "function") continue;
      copy[namespace] = { ...copy[namespace] };
      copy[namespace][name] = wrap(original);
    }
  };
  route(
    record.reinitImports,
    (original) =>
      /** @this {unknown} @param {any[]} args */
      function wbindgenReinit(...args) {
        if (record.owner === null) return original.apply(this, args);
        record.owner.reinitRequested();
        return undefined;
      },
  );
  // The same name also serves the `globalThis.queueMicrotask` getter (its argument is the
  // global object, not a function): only a function argument is an executor tick.
  route(
    record.tickImports,
    (original) =>
      /** @this {unknown} @param {unknown} callback */
      function queueMicrotask(callback) {
        const owner = record.owner;
        if (owner === null || typeof callback !== "function") return original.call(this, callback);
        return original.call(this, owner.tickFor(callback));
      },
  );
  return copy;
}

const NativePromise = Promise;
const platformQueueMicrotask = globalThis.queueMicrotask;

/**
 * Schedules `callback` as a microtask of the platform.
 * @param {() => void} callback
 */
function later(callback) {
  if (typeof platformQueueMicrotask === "function") {
    platformQueueMicrotask.call(globalThis, callback);
  } else {
    NativePromise.resolve().then(callback);
  }
}

// ---------------------------------------------------------------------------------------------
// Capturing the resolve and reject functions of the promises Rust creates during a call.

/**
 * @typedef {object} Handles
 * @property {Promise<unknown> | null} promise
 * @property {((value: unknown) => void) | null} resolve what Rust holds instead of `resolve`
 * @property {((reason: unknown) => void) | null} reject what Rust holds instead of `reject`
 * @property {((reason: unknown) => void) | null} fail the promise's own `reject`, for the runtime
 * @property {boolean} called whether Rust settled the promise
 * @property {Pending | null} entry the call this promise belongs to, once it is followed
 * @property {Recovery | null} owner the runtime following it
 */

/** @type {Handles[] | null} the promises created by the call running now */
let captured = null;

/**
 * Stands in for `Promise` while a call runs (see the top); behaves as `Promise` for every use.
 * @this {unknown}
 * @param {(resolve: (value: unknown) => void, reject: (reason: unknown) => void) => void} executor
 */
function CapturingPromise(executor) {
  if (new.target === undefined) return NativePromise.call(this, executor);
  if (captured === null || typeof executor !== "function" || new.target !== CapturingPromise) {
    return Reflect.construct(
      NativePromise,
      [executor],
      new.target === CapturingPromise ? NativePromise : new.target,
    );
  }
  /** @type {Handles} */
  const handles = {
    promise: null,
    resolve: null,
    reject: null,
    fail: null,
    called: false,
    entry: null,
    owner: null,
  };
  // Settling is followed here, where Rust settles the promise, rather than by a reaction on
  // it: no promise and no microtask of our own per call.
  const promise = new NativePromise((resolve, reject) => {
    handles.fail = reject;
    handles.resolve = (value) => {
      handles.called = true;
      const entry = handles.entry;
      // A thenable still has to settle: the call stays in flight until it does.
      if (entry !== null && !entry.settled && !isThenable(value)) {
        entry.settled = true;
        handles.owner?.pending.delete(entry);
      }
      resolve(value);
    };
    handles.reject = (reason) => {
      handles.called = true;
      const entry = handles.entry;
      const owner = handles.owner;
      if (entry !== null && owner !== null && !entry.settled) {
        entry.settled = true;
        owner.pending.delete(entry);
        reject(owner.failed(reason, entry.label, entry.generation));
        return;
      }
      reject(reason);
    };
    executor(handles.resolve, handles.reject);
  });
  handles.promise = promise;
  captured.push(handles);
  return promise;
}
CapturingPromise.prototype = NativePromise.prototype;
Object.setPrototypeOf(CapturingPromise, NativePromise);

/** @param {unknown} value */
function isThenable(value) {
  return (
    value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (/** @type {any} */ (value).then) === "function"
  );
}

/** Whether `globalThis.Promise` can be swapped (a frozen global object cannot). */
const canCapture = (() => {
  const descriptor = Object.getOwnPropertyDescriptor(globalThis, "Promise");
  return descriptor !== undefined && descriptor.writable === true;
})();

// ---------------------------------------------------------------------------------------------
// Recovery: one per glue module.

/** @type {WeakMap<object, Recovery>} */
const recoveries = new WeakMap();

/**
 * @param {any} glue
 * @param {any} EXPORTS
 */
function recoveryFor(glue, EXPORTS) {
  let recovery = recoveries.get(glue);
  if (recovery === undefined) {
    recovery = new Recovery(glue, EXPORTS ?? {});
    recoveries.set(glue, recovery);
  }
  return recovery;
}

/**
 * @typedef {object} Pending an async call in flight
 * @property {(reason: unknown) => void} reject
 * @property {string} label
 * @property {number} generation
 * @property {Handles | null} handles
 * @property {boolean} settled
 * @property {Pending | null} prev neighbours in the runtime's list of calls in flight
 * @property {Pending | null} next
 */

/**
 * The calls in flight: an intrusive doubly linked list, so following a call allocates nothing
 * beyond its entry (a `Set` of short-lived entries cost more than the rest of a call).
 */
class CallList {
  constructor() {
    /** @type {Pending | null} */
    this.head = null;
    this.size = 0;
  }

  /** @param {Pending} entry */
  add(entry) {
    entry.prev = null;
    entry.next = this.head;
    if (this.head !== null) this.head.prev = entry;
    this.head = entry;
    this.size += 1;
  }

  /** @param {Pending} entry */
  delete(entry) {
    if (entry.prev === null && this.head !== entry) return; // not in the list
    if (entry.prev !== null) entry.prev.next = entry.next;
    else this.head = entry.next;
    if (entry.next !== null) entry.next.prev = entry.prev;
    entry.prev = entry.next = null;
    this.size -= 1;
  }

  /** Empties the list; returns what it held. */
  take() {
    /** @type {Pending[]} */
    const all = [];
    for (let entry = this.head; entry !== null; ) {
      const next = entry.next;
      entry.prev = entry.next = null;
      all.push(entry);
      entry = next;
    }
    this.head = null;
    this.size = 0;
    return all;
  }

  /** @returns {Pending[]} */
  list() {
    /** @type {Pending[]} */
    const all = [];
    for (let entry = this.head; entry !== null; entry = entry.next) all.push(entry);
    return all;
  }
}

/**
 * @typedef {object} ClassInfo
 * @property {string} name
 * @property {(inner: object) => object} adopt wraps an object Rust returned
 */

class Recovery {
  /**
   * @param {any} glue
   * @param {any} EXPORTS
   */
  constructor(glue, EXPORTS) {
    this.glue = glue;
    this.mode = EXPORTS.mode === "abort" ? "abort" : "unwind";
    this.record = this.findRecord(EXPORTS.wasmModule);
    this.ownGeneration = 0; // used only without a record
    /** async calls in flight on the current instance */
    this.pending = new CallList();
    this.depth = 0; // Rust frames of ours on the stack (calls, executor ticks)
    this.dying = false; // the instance aborted under frames still on the stack
    /** @type {{ error: unknown, where: string | null } | null} that abort, as first seen */
    this.dyingCause = null;
    this.reinitWanted = false; // `schedule_reinit()` called while the instance was alive
    /** @type {{ outcome: string, inFlight: number } | null} an abort whose error is not seen yet */
    this.unreported = null;
    this.reinitFailures = 0; // consecutive failed re-initialisations
    this.reinitFailedAt = 0; // when the last one failed (Date.now())
    /** @type {unknown} */
    this.reinitError = null;
    /** @type {Map<Function, ClassInfo>} the glue's classes, by the glue's constructor */
    this.classes = new Map();
    /** @type {Function | null} */
    this.tickCallback = null; // the executor's callback and our wrapper around it
    /** @type {Function | null} */
    this.tickWrapper = null;
    this.tickScheduled = false; // whether the executor asked for a tick since the last began
    /** @type {Int32Array | null} */
    this.flagView = null;
    /** @type {ArrayBuffer | null} */
    this.flagBuffer = null;
    this.stats = {
      reinits: 0, // re-initialisations after an abort or a requested reinit
      aborts: 0, // aborts detected
      failures: 0, // recoverable failures (panics, JS errors, `Err` results)
      abortedInFlight: 0, // calls rejected because their instance aborted or was replaced
      droppedFutures: 0, // calls rejected because wasm-bindgen dropped their future
      reinitFailures: 0, // re-initialisations that failed (the start function aborted)
      lastAbort: /** @type {string | null} */ (null), // "<kind> in <call>"
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

  /** @param {unknown} wasmModule */
  findRecord(wasmModule) {
    if (wasmModule instanceof WebAssembly.Module) {
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
    if (buffer !== this.flagBuffer || this.flagView === null) {
      this.flagBuffer = buffer;
      this.flagView = new Int32Array(buffer, exports.__instance_terminated.value, 1);
    }
    return this.flagView[0] !== 0;
  }

  /**
   * Called by the routed `__wbindgen_reinit` import, from inside Rust: never re-initialise
   * here, the calling instance's frames are on the stack.
   */
  reinitRequested() {
    if (this.terminated()) {
      // The abort hook of a dying instance: recovered when the outermost frame has returned.
      this.dying = true;
    } else {
      // A live instance asked for a fresh start: do it before the next call, not mid-call.
      this.reinitWanted = true;
    }
  }

  /**
   * Before a call: make sure it enters a live instance.
   * @param {string} label
   */
  ensureLive(label) {
    if (this.depth > 0) {
      // A nested call (Rust called JavaScript, which calls Rust again): never re-initialise
      // under the outer frames, and never enter an instance that is dying under them.
      if (this.dying || this.terminated()) {
        this.dying = true;
        throw new WasmAbortError(
          `${label} cannot run: the Wasm instance aborted during the call that is still on ` +
            "the stack; it is re-initialised when that call returns",
        );
      }
      return;
    }
    if (this.reinitFailures > 0) {
      // The last re-initialisation failed (its start function aborted): one more attempt per
      // call, up to MAX_REINIT_ATTEMPTS in a row, then every call fails at once.
      if (
        this.reinitFailures < MAX_REINIT_ATTEMPTS ||
        Date.now() - this.reinitFailedAt >= REINIT_BACKOFF_MS
      ) {
        this.replaceInstance("retrying the re-initialisation that failed", null);
      }
    } else if (this.dying || this.terminated()) {
      this.abortDetected(null, `an earlier call (seen before ${label})`);
    } else if (this.reinitWanted) {
      this.replaceInstance("schedule_reinit() was called", null);
    }
    if (this.reinitFailures > 0) {
      const backoff = this.reinitFailures >= MAX_REINIT_ATTEMPTS;
      throw new WasmAbortError(
        `${label} cannot run: the Wasm instance could not be re-initialised ` +
          `(${describe(this.reinitError)}; ${this.reinitFailures} attempt(s) in a row, ` +
          (backoff
            ? `the next one at most every ${REINIT_BACKOFF_MS} ms)`
            : "the next one at the next call)"),
        { cause: this.reinitError },
      );
    }
  }

  /**
   * Calls `fn` on the live instance; failures are classified, aborts recovered.
   * @param {Function} fn
   * @param {unknown} thisArg
   * @param {unknown[]} args
   * @param {string} label
   * @param {boolean} [objects] whether results that are class instances get wrapped
   */
  invoke(fn, thisArg, args, label, objects = false) {
    this.ensureLive(label);
    const generation = this.generation;
    const outer = captured;
    /** @type {Handles[]} */
    const mine = [];
    captured = mine;
    // Swapped once per stack of calls (a call from an executor tick swaps it too), and put
    // back as it was.
    const previous = globalThis.Promise;
    const swap = canCapture && previous !== /** @type {unknown} */ (CapturingPromise);
    if (swap) globalThis.Promise = /** @type {any} */ (CapturingPromise);
    this.depth += 1;
    let result;
    try {
      result = fn.apply(thisArg, args);
    } catch (error) {
      this.leave(outer, swap ? previous : null);
      throw this.failed(error, label, generation);
    }
    this.leave(outer, swap ? previous : null);
    if (this.dying || generation !== this.generation || this.terminated()) {
      // A nested call aborted and JavaScript in between caught its error: this call's result
      // came from a dead instance, so it fails too.
      throw this.failed(
        new WasmAbortError(`${label} failed: the Wasm instance aborted during the call`),
        label,
        generation,
      );
    }
    if (result !== null && typeof result === "object") {
      if (typeof result.then === "function") {
        let handles = null;
        for (const h of mine) {
          if (h.promise === result) {
            handles = h;
            break;
          }
        }
        if (handles !== null && !objects) return this.follow(result, label, generation, handles);
        return this.track(result, label, generation, handles, objects);
      }
      if (objects) return this.adopt(result);
    }
    return result;
  }

  /**
   * @param {Handles[] | null} outer
   * @param {PromiseConstructor | null} previous what `Promise` was before this call swapped it
   */
  leave(outer, previous) {
    captured = outer;
    this.depth -= 1;
    if (previous !== null) globalThis.Promise = previous;
  }

  /**
   * Follows an async call; it is rejected at once if its instance aborts meanwhile or its
   * future is dropped.
   * @param {PromiseLike<unknown>} promise
   * @param {string} label
   * @param {number} generation
   * @param {Handles | null} handles
   * @param {boolean} objects
   */
  track(promise, label, generation, handles, objects) {
    return new NativePromise((resolve, reject) => {
      /** @type {Pending} */
      const entry = { reject, label, generation, handles, settled: false, prev: null, next: null };
      this.pending.add(entry);
      promise.then(
        (value) => {
          if (entry.settled) return;
          entry.settled = true;
          this.pending.delete(entry);
          resolve(objects ? this.adopt(value) : value);
        },
        (error) => {
          if (entry.settled) return;
          entry.settled = true;
          this.pending.delete(entry);
          reject(this.failed(error, label, generation));
        },
      );
    });
  }

  /**
   * Like `track`, for a promise whose own `reject` the runtime holds: the caller gets the
   * promise itself (one promise and one microtask fewer per call), and the runtime rejects it
   * directly if its instance aborts or its future is dropped.
   * @param {Promise<unknown>} promise
   * @param {string} label
   * @param {number} generation
   * @param {Handles} handles
   */
  follow(promise, label, generation, handles) {
    if (handles.called) return promise; // Rust settled it during the call
    /** @type {Pending} */
    const entry = {
      reject: /** @type {(reason: unknown) => void} */ (handles.fail),
      label,
      generation,
      handles,
      settled: false,
      prev: null,
      next: null,
    };
    handles.entry = entry;
    handles.owner = this;
    this.pending.add(entry);
    return promise;
  }

  /**
   * Wraps `value` when it is an instance of one of the glue's wrapped classes.
   * @param {unknown} value
   */
  adopt(value) {
    if (value === null || typeof value !== "object" || this.classes.size === 0) return value;
    const info = this.classes.get(/** @type {any} */ (value).constructor);
    return info === undefined ? value : info.adopt(value);
  }

  /**
   * Classifies an error thrown or rejected by a call made on instance `generation`.
   * @param {unknown} error
   * @param {string} label
   * @param {number} generation
   */
  failed(error, label, generation) {
    if (generation !== this.generation) {
      // Its instance is gone: the abort was already detected and recovered.
      this.reportAbort(error, label);
      return error;
    }
    if (this.dying || this.terminated() || (this.record === null && looksLikeAbort(error))) {
      const under = this.dyingCause;
      this.abortDetected(error, label);
      if (under !== null && under.error !== error && !(error instanceof WasmAbortError)) {
        // An outer frame: the abort happened in a nested call, this error is only its echo.
        return new WasmAbortError(
          `${label} failed: the Wasm instance aborted under it (in ${under.where})`,
          { cause: error },
        );
      }
      return error;
    }
    this.stats.failures += 1;
    console.error(`${LOG_PREFIX} ${label} failed: ${describe(error)} (recovered; instance kept)`);
    return error;
  }

  /**
   * The executor tick of wasm-bindgen-futures around `callback` (one wrapper, reused).
   * @param {Function} callback
   */
  tickFor(callback) {
    this.tickScheduled = true;
    if (callback !== this.tickCallback) {
      this.tickCallback = callback;
      this.tickWrapper = this.makeTick(callback, true);
    }
    return this.tickWrapper;
  }

  /**
   * @param {Function} callback
   * @param {boolean} mayRestart whether a failure may run the rest of the queue again
   */
  makeTick(callback, mayRestart) {
    const recovery = this;
    return function executorTick(/** @type {unknown} */ arg) {
      recovery.tickScheduled = false;
      const generation = recovery.generation;
      recovery.depth += 1;
      let failed = false;
      let error;
      try {
        callback(arg);
      } catch (e) {
        failed = true;
        error = e;
      }
      recovery.depth -= 1;
      if (generation !== recovery.generation) return; // a tick of a replaced instance
      if (recovery.dying || recovery.terminated()) {
        if (recovery.depth === 0) recovery.abortDetected(failed ? error : null, "a Rust future");
        return;
      }
      if (failed) recovery.futureFailed(error, callback, mayRestart);
    };
  }

  /**
   * A tick of the executor threw a recoverable error: the future it was polling was dropped,
   * and the futures queued behind it in that tick were not polled.
   * @param {unknown} error
   * @param {Function} callback
   * @param {boolean} mayRestart
   */
  futureFailed(error, callback, mayRestart) {
    const restart = mayRestart && !this.tickScheduled;
    // One microtask later: the reactions of promises Rust settled during the tick ran first.
    later(() => {
      const dropped = this.droppedCalls();
      this.stats.failures += 1;
      const what = dropped.length > 0 ? dropped.map((e) => e.label).join(", ") : "a Rust future";
      console.error(
        `${LOG_PREFIX} ${what} failed: ${describe(error)} in a Rust future, which ` +
          "wasm-bindgen dropped (recovered; instance kept)",
      );
      for (const entry of dropped) {
        entry.settled = true;
        this.pending.delete(entry);
        this.stats.droppedFutures += 1;
        entry.reject(error);
      }
      // The executor polls the rest of its queue only once it is asked for a new tick.
      if (restart && !this.tickScheduled) {
        try {
          this.makeTick(callback, false)(undefined);
        } catch {
          // Our own extra tick: nothing to report.
        }
      }
    });
  }

  /** Pending calls whose Rust future is gone: its resolve and reject released, never called. */
  droppedCalls() {
    /** @type {Pending[]} */
    const candidates = [];
    for (const entry of this.pending.list()) {
      if (!entry.settled && entry.handles !== null && !entry.handles.called) candidates.push(entry);
    }
    if (candidates.length === 0) return candidates;
    const table = this.externrefTable();
    if (table === null) {
      // Without an externref table the handles cannot be looked up: a lone candidate is the
      // only call the dropped future can have belonged to.
      return candidates.length === 1 && this.pending.size === 1 ? candidates : [];
    }
    const held = new Set();
    for (let i = 0; i < table.length; i++) held.add(table.get(i));
    return candidates.filter(
      (entry) => !held.has(entry.handles?.resolve) && !held.has(entry.handles?.reject),
    );
  }

  /** @returns {WebAssembly.Table | null} where the instance keeps the JS values Rust holds */
  externrefTable() {
    const table = this.record?.exports?.__wbindgen_externrefs;
    return table instanceof WebAssembly.Table ? table : null;
  }

  /**
   * An error nobody awaited (timer, event): only the terminated flag says it was an abort.
   * @param {unknown} error
   * @param {string} where
   */
  checkAfterUncaught(error, where) {
    if (this.depth === 0 && (this.dying || this.terminated())) this.abortDetected(error, where);
  }

  /**
   * The instance is dead: re-initialise once, fail the calls in flight on it, log one line.
   * Under frames of ours (a nested call), only note it: the outermost frame recovers.
   * @param {unknown} error
   * @param {string | null} where
   */
  abortDetected(error, where) {
    if (this.depth > 0) {
      this.dying = true;
      this.dyingCause ??= { error, where };
      return;
    }
    if (this.dyingCause !== null) {
      // The abort happened under a frame that has returned since: name the first error seen.
      ({ error, where } = this.dyingCause);
      this.dyingCause = null;
    }
    this.dying = false;
    this.stats.aborts += 1;
    const { outcome, inFlight } = this.replaceInstance(null, error);
    this.unreported = { outcome, inFlight };
    if (error !== null && error !== undefined) {
      this.reportAbort(error, where ?? "an unknown call");
    } else {
      later(() => this.reportAbort(null, where ?? "an unknown call"));
    }
  }

  /**
   * Builds a fresh instance and fails every call in flight on the old one.
   * @param {string | null} reason logged when not null (a requested reinit, a retry)
   * @param {unknown} error the abort, as the cause of the calls' errors
   */
  replaceInstance(reason, error) {
    const inFlight = this.pending.take();
    const outcome = this.reinitialise(reason);
    if (inFlight.length > 0) {
      const failure = new WasmAbortError(
        reason === null
          ? "the Wasm instance aborted while this call was in flight; it was re-initialised"
          : `the Wasm instance was re-initialised (${reason}) while this call was in flight`,
        { cause: error ?? undefined },
      );
      // A call whose promise Rust settled just before (its reaction is queued) keeps its
      // result: the others can never settle now, and fail a few microtasks later.
      const reject = (/** @type {Pending} */ entry) => {
        if (entry.settled) return;
        entry.settled = true;
        this.stats.abortedInFlight += 1;
        entry.reject(failure);
      };
      later(() => {
        for (const entry of inFlight) {
          if (entry.handles?.called) {
            later(() => later(() => later(() => reject(entry))));
          } else {
            reject(entry);
          }
        }
      });
    }
    return { outcome, inFlight: inFlight.length };
  }

  /**
   * Writes the one log line of the abort recovered last, once.
   * @param {unknown} error
   * @param {string} where
   */
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

  /**
   * Builds a fresh instance; returns a description for the log line.
   * @param {string | null} reason
   */
  reinitialise(reason) {
    if (typeof this.glue.__wbg_reset_state !== "function") return "cannot re-initialise";
    this.dying = false;
    this.reinitWanted = false;
    try {
      this.glue.__wbg_reset_state();
      this.reinitFailures = 0;
      this.reinitError = null;
    } catch (error) {
      this.reinitFailures += 1;
      this.reinitFailedAt = Date.now();
      this.reinitError = error;
      this.stats.reinitFailures += 1;
      const text =
        `re-initialisation failed: ${describe(error)} (attempt ${this.reinitFailures} of ` +
        `${MAX_REINIT_ATTEMPTS})`;
      if (reason !== null) console.error(`${LOG_PREFIX} ${reason}; ${text}`);
      return text;
    } finally {
      this.ownGeneration += 1;
    }
    this.stats.reinits += 1;
    const text = `re-initialised (re-initialisation #${this.stats.reinits})`;
    if (reason !== null) console.error(`${LOG_PREFIX} ${reason}; ${text}`);
    return text;
  }
}

/**
 * Without the flag: the error types only an abort produces.
 * @param {unknown} error
 */
function looksLikeAbort(error) {
  return (
    error instanceof WebAssembly.RuntimeError ||
    error instanceof WebAssembly.Exception ||
    (error instanceof Error && error.message === "Module terminated") ||
    (error instanceof RangeError && /call stack/i.test(error.message))
  );
}

/** @param {unknown} error */
function abortKind(error) {
  if (error instanceof RangeError && /call stack/i.test(error.message)) return "stack overflow";
  if (error instanceof WebAssembly.RuntimeError) return `trap: ${error.message}`;
  if (error instanceof WebAssembly.Exception) return "uncaught Wasm exception";
  if (error instanceof Error && error.message === "Module terminated") return "terminated";
  return describe(error);
}

/** @param {unknown} error */
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
 * The Worker's default export. Handlers (`fetch`, `scheduled`, ...: the list the tool wrote
 * into `EXPORTS.handlers`) call the crate's exports of the same name with (event, env, ctx);
 * other exported functions become RPC methods, which needs a `WorkerEntrypoint` class (passed
 * by the entry, which imports it from `cloudflare:workers` only then); without them a plain
 * module-worker object is cheaper per request.
 * @param {any} glue
 * @param {{ handlers?: string[], functions?: string[] }} EXPORTS
 * @param {new (...args: any[]) => object} [WorkerEntrypoint]
 */
export function createWorker(glue, EXPORTS, WorkerEntrypoint) {
  const recovery = recoveryFor(glue, EXPORTS);
  publishStats(recovery);
  const handlers = (EXPORTS.handlers ?? []).filter((name) => typeof glue[name] === "function");
  // `__`-prefixed exports are plumbing (`__wbg_reset_state`, workers-rs `__worker_init_state`).
  const functions = (EXPORTS.functions ?? []).filter(
    (name) => !name.startsWith("__") && typeof glue[name] === "function",
  );

  if (functions.length === 0) {
    /** @type {Record<string, Function>} */
    const worker = {};
    for (const name of handlers) {
      const handler = glue[name];
      worker[name] = function (/** @type {unknown} */ event, /** @type {unknown} */ env, /** @type {unknown} */ ctx) {
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
    defineMethod(
      Worker.prototype,
      name,
      /** @this {any} @param {unknown} event */
      function (event) {
        return recovery.invoke(handler, undefined, [event, this.env, this.ctx], name);
      },
    );
  }
  for (const name of functions) {
    if (name in Worker.prototype || handlers.includes(name)) {
      console.error(`${LOG_PREFIX} exported function ${name} clashes with a Worker method; skipped`);
      continue;
    }
    const fn = glue[name];
    defineMethod(Worker.prototype, name, function (/** @type {unknown[]} */ ...args) {
      return recovery.invoke(fn, undefined, recovery.unwrapAll(args), name, true);
    });
  }
  return Worker;
}

/**
 * A crate function with abort recovery (library mode).
 * @param {any} glue
 * @param {string} name
 * @param {any} EXPORTS
 */
export function wrapFunction(glue, name, EXPORTS) {
  const recovery = recoveryFor(glue, EXPORTS);
  const fn = glue[name];
  if (typeof fn !== "function") throw new TypeError(`${LOG_PREFIX} glue has no function ${name}`);
  const wrapped = function (/** @type {unknown[]} */ ...args) {
    return recovery.invoke(fn, undefined, recovery.unwrapAll(args), name, true);
  };
  Object.defineProperty(wrapped, "name", { value: name });
  return wrapped;
}

const STATE = Symbol("cargo-worker-build.object");

/**
 * @typedef {object} ObjectState
 * @property {any} inner the glue's object
 * @property {unknown[] | null} args constructor arguments; null for objects Rust made
 * @property {number} generation the instance `inner` belongs to
 * @property {(wrapper: object) => any} current the live glue object (rebuilt if need be)
 */

/**
 * Replaces wrapped objects among `args` by the glue's objects behind them, so exports that
 * take `&T` or `T` get what the glue's class assertion expects.
 * @this {Recovery}
 * @param {unknown[]} args
 */
Recovery.prototype.unwrapAll = function (args) {
  if (this.classes.size === 0) return args;
  for (let i = 0; i < args.length; i++) {
    const arg = /** @type {any} */ (args[i]);
    if (arg !== null && typeof arg === "object") {
      /** @type {ObjectState | undefined} */
      const state = arg[STATE];
      if (state !== undefined) args[i] = state.current(arg);
    }
  }
  return args;
};

/**
 * A crate class with abort recovery. Instances keep their constructor arguments; an instance
 * whose Wasm object belonged to an instance that has since been re-initialised is rebuilt from
 * them on its next use (this is how Durable Objects survive an abort: with fresh fields).
 * Objects Rust returns (from methods, statics and functions) are wrapped the same way; they
 * cannot be rebuilt, so after an abort using one throws an error naming the class.
 * @param {any} glue
 * @param {string} name
 * @param {any} EXPORTS
 */
export function wrapClass(glue, name, EXPORTS) {
  const recovery = recoveryFor(glue, EXPORTS);
  const Inner = glue[name];
  if (typeof Inner !== "function") throw new TypeError(`${LOG_PREFIX} glue has no class ${name}`);

  const Wrapped = class {
    /** @param {unknown[]} args */
    constructor(...args) {
      const inner = recovery.invoke(construct, undefined, recovery.unwrapAll([...args]), `new ${name}`);
      /** @type {any} */ (this)[STATE] = { inner, args, generation: recovery.generation, current };
    }
  };
  /** @param {unknown[]} args */
  function construct(...args) {
    return new Inner(...args);
  }
  Object.defineProperty(Wrapped, "name", { value: name });

  /**
   * The live Wasm object behind `wrapper`, rebuilt if its instance was replaced.
   * @param {any} wrapper
   * @returns {any}
   */
  function current(wrapper) {
    /** @type {ObjectState | undefined} */
    const state = wrapper?.[STATE];
    if (state === undefined) throw new TypeError(`${name}: not a ${name} instance`);
    recovery.ensureLive(`${name} method`);
    if (state.generation !== recovery.generation) {
      if (state.args === null) {
        throw new WasmAbortError(
          `this ${name} belonged to a Wasm instance that aborted and was re-initialised; it ` +
            `was made by Rust, so it cannot be rebuilt: make a new ${name}`,
        );
      }
      state.inner = recovery.invoke(
        construct,
        undefined,
        recovery.unwrapAll([...state.args]),
        `rebuilding ${name}`,
      );
      state.generation = recovery.generation;
    }
    return state.inner;
  }

  recovery.classes.set(Inner, {
    name,
    adopt(inner) {
      const wrapper = Object.create(Wrapped.prototype);
      wrapper[STATE] = { inner, args: null, generation: recovery.generation, current };
      return wrapper;
    },
  });

  for (const key of Reflect.ownKeys(Inner.prototype)) {
    if (typeof key === "string" && LIFETIME_METHODS.has(key)) continue;
    if (key === Symbol.dispose) continue;
    const descriptor = /** @type {PropertyDescriptor} */ (
      Object.getOwnPropertyDescriptor(Inner.prototype, key)
    );
    const label = `${name}.${String(key)}`;
    if (typeof descriptor.value === "function") {
      const method = descriptor.value;
      defineMethod(
        Wrapped.prototype,
        key,
        /** @this {any} @param {unknown[]} args */
        function (...args) {
          return recovery.invoke(method, current(this), recovery.unwrapAll(args), label, true);
        },
      );
    } else if (descriptor.get || descriptor.set) {
      const { get, set } = descriptor;
      Object.defineProperty(Wrapped.prototype, key, {
        configurable: true,
        enumerable: false,
        get:
          get &&
          /** @this {any} */
          function () {
            return recovery.invoke(get, current(this), [], label, true);
          },
        set:
          set &&
          /** @this {any} @param {unknown} value */
          function (value) {
            recovery.invoke(set, current(this), recovery.unwrapAll([value]), label);
          },
      });
    }
  }

  defineMethod(
    Wrapped.prototype,
    "free",
    /** @this {any} */
    function () {
      /** @type {ObjectState | undefined} */
      const state = this[STATE];
      if (state === undefined || state.generation !== recovery.generation) return;
      recovery.invoke(state.inner.free, state.inner, [], `${name}.free`);
    },
  );
  if (typeof Symbol.dispose === "symbol") {
    defineMethod(Wrapped.prototype, Symbol.dispose, /** @type {any} */ (Wrapped.prototype).free);
  }

  for (const key of Reflect.ownKeys(Inner)) {
    if (key === "prototype" || key === "length" || key === "name") continue;
    // `__wrap` and friends are the glue's own plumbing.
    if (typeof key === "string" && key.startsWith("__")) continue;
    const descriptor = Object.getOwnPropertyDescriptor(Inner, key);
    if (typeof descriptor?.value !== "function") continue;
    const fn = descriptor.value;
    defineMethod(Wrapped, key, function (/** @type {unknown[]} */ ...args) {
      return recovery.invoke(fn, Inner, recovery.unwrapAll(args), `${name}.${String(key)}`, true);
    });
  }
  return Wrapped;
}

/**
 * Statistics of the runtime serving `glue`: re-initialisations, aborts, failures.
 * @param {object} glue
 */
export function recoveryStats(glue) {
  const recovery = recoveries.get(glue);
  return recovery ? { ...recovery.stats } : null;
}

/** @param {Recovery} recovery */
function publishStats(recovery) {
  if (!(STATS_GLOBAL in globalThis)) {
    Object.defineProperty(globalThis, STATS_GLOBAL, {
      value: recovery.stats,
      configurable: true,
    });
  }
}

/**
 * Defines a non-enumerable method.
 * @param {object} target
 * @param {string | symbol} key
 * @param {Function} fn
 */
function defineMethod(target, key, fn) {
  if (typeof key === "string") Object.defineProperty(fn, "name", { value: key });
  Object.defineProperty(target, key, {
    value: fn,
    writable: true,
    configurable: true,
    enumerable: false,
  });
}
