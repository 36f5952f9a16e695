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
//   instance is rejected at once instead of hanging, except one whose future no executor tick
//   had polled yet (none of its Rust code ran): that one is made again on the fresh instance;
//   class instances (Durable Objects) are rebuilt from their original constructor arguments
//   when next used.
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

/**
 * Extra executor ticks in a row after futures that threw: bounds the work if the executor
 * itself kept throwing; a queue needs one per future that throws in it.
 */
const MAX_TICK_RESTARTS = 1000;

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
 * @property {{ at: string, text: string } | null} panic what a panic hook printed last since
 *   the current call or executor tick began (each clears it: a hook printed before it is another
 *   call's, one whose panic Rust caught, say): the location of `panicked at FILE:LINE:COL:` and
 *   the text after it (message, hook's stack)
 */

/** How a panic hook's text starts: `panicked at FILE:LINE:COL:` and a newline. */
const HOOK_HEAD = "panicked at ";

/** The longest `FILE:LINE:COL` looked for in a logged line. */
const HOOK_LOCATION_MAX = 4096;

/** How far into a logged line `panicked at ` is looked for (`Error: Rust panic: ` is 19). */
const HOOK_PREFIX_MAX = 64;

/** @type {Observer} */
const observer = /** @type {any} */ (globalThis)[OBSERVER_KEY] ?? installObserver();

/** @returns {Observer} */
function installObserver() {
  /** @type {Observer} */
  const shared = { records: new WeakMap(), runtimes: new Set(), observing: false, panic: null };
  Object.defineProperty(globalThis, OBSERVER_KEY, { value: shared });

  // A panic hook prints `panicked at FILE:LINE:COL:` and a stack taken at the panic site:
  // console_error_panic_hook as a string, workers-rs as an Error whose message starts with
  // `Rust panic: ` (its stack is the site's). The PanicError that reaches us has neither. The
  // text is noted for the fault's record and passed on unchanged. Every line any code logs
  // passes here, so only the start of a string or of an Error's message is searched, and only
  // HOOK_LOCATION_MAX characters after it: the cost does not grow with the line.
  const print = console.error;
  console.error = function (...args) {
    for (const arg of args) {
      let text = typeof arg === "string" ? arg : null;
      if (arg instanceof Error) {
        try {
          if (`${arg.message}`.slice(0, HOOK_PREFIX_MAX + HOOK_HEAD.length).includes(HOOK_HEAD)) {
            text = `${arg.stack}`;
          }
        } catch {
          // An Error whose message or stack throws when read: not a hook's.
        }
      }
      if (text === null) continue;
      const at = text.slice(0, HOOK_PREFIX_MAX + HOOK_HEAD.length).indexOf(HOOK_HEAD);
      if (at < 0) continue;
      const from = at + HOOK_HEAD.length;
      const head = text.slice(from, from + HOOK_LOCATION_MAX + 2);
      const end = head.indexOf(":\n");
      if (end < 0 || !/^[^\n]+:\d+:\d+$/.test(head.slice(0, end))) continue;
      shared.panic = { at: head.slice(0, end), text: text.slice(from + end + 2) };
    }
    return print.apply(this, args);
  };

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
 * @property {Promise<unknown> | null} promise_$
 * @property {((value: unknown) => void) | null} resolve_$ what Rust holds instead of `resolve`
 * @property {((reason: unknown) => void) | null} reject_$ what Rust holds instead of `reject`
 * @property {((value: unknown) => void) | null} done_$ the promise's own `resolve`
 * @property {((reason: unknown) => void) | null} fail_$ the promise's own `reject`, for the runtime
 * @property {boolean} called_$ whether Rust settled the promise
 * @property {boolean} adopting_$ whether it was resolved with a thenable that has not settled yet
 * @property {Pending | null} entry_$ the call this promise belongs to, once it is followed
 * @property {Recovery | null} owner_$ the runtime following it
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
  const handles_$ = {
    promise_$: null,
    resolve_$: null,
    reject_$: null,
    done_$: null,
    fail_$: null,
    called_$: false,
    adopting_$: false,
    entry_$: null,
    owner_$: null,
  };
  // Settling is followed here, where Rust settles the promise, rather than by a reaction on
  // it: no promise and no microtask of our own per call. A thenable is followed by hand, not
  // handed to `resolve` (which would lock the promise in to it): the call stays in flight until
  // the thenable settles, and the runtime can still reject it if its instance dies meanwhile.
  const promise = new NativePromise((resolve, reject) => {
    handles_$.done_$ = resolve;
    handles_$.fail_$ = reject;
    handles_$.resolve_$ = (value) => {
      // Only the first call counts, as for `resolve` itself.
      if (handles_$.called_$) return;
      handles_$.called_$ = true;
      let then;
      try {
        then = thenOf(value);
      } catch (error) {
        rejected(handles_$, error);
        return;
      }
      if (then === undefined) {
        fulfilled(handles_$, value);
      } else {
        handles_$.adopting_$ = true;
        follow(
          value,
          then,
          (next) => fulfilled(handles_$, next),
          (reason) => rejected(handles_$, reason),
          true,
        );
      }
    };
    handles_$.reject_$ = (reason) => {
      if (handles_$.called_$) return;
      handles_$.called_$ = true;
      claimHook(reason);
      rejected(handles_$, reason);
    };
    executor(handles_$.resolve_$, handles_$.reject_$);
  });
  handles_$.promise_$ = promise;
  captured.push(handles_$);
  return promise;
}
CapturingPromise.prototype = NativePromise.prototype;
Object.setPrototypeOf(CapturingPromise, NativePromise);

/**
 * Fulfils a captured promise with `value` (no thenable); the call it belongs to is done.
 * @param {Handles} handles_$
 * @param {unknown} value
 */
function fulfilled(handles_$, value) {
  handles_$.adopting_$ = false;
  const entry = handles_$.entry_$;
  if (entry !== null && !entry.settled_$) {
    entry.settled_$ = true;
    handles_$.owner_$?.pending_$.delete_$(entry);
  }
  /** @type {(value: unknown) => void} */ (handles_$.done_$)(value);
}

/**
 * Rejects a captured promise; when it is a followed call's, its failure is classified.
 * @param {Handles} handles_$
 * @param {unknown} reason
 */
function rejected(handles_$, reason) {
  handles_$.adopting_$ = false;
  const reject = /** @type {(reason: unknown) => void} */ (handles_$.fail_$);
  const entry = handles_$.entry_$;
  const owner = handles_$.owner_$;
  if (entry !== null && owner !== null) {
    if (entry.settled_$) return; // rejected by the runtime already
    entry.settled_$ = true;
    owner.pending_$.delete_$(entry);
    reject(owner.failed_$(reason, entry.label_$, entry.generation_$));
    return;
  }
  reject(reason);
}

/**
 * The `then` method of `value` if it is a thenable, else undefined (reading it may throw).
 * @param {unknown} value
 * @returns {Function | undefined}
 */
function thenOf(value) {
  if (value === null || (typeof value !== "object" && typeof value !== "function")) return undefined;
  const then = /** @type {any} */ (value).then;
  return typeof then === "function" ? then : undefined;
}

/**
 * Settles through `value` as a promise's `resolve` would: a thenable is followed, anything
 * else is `fulfil`led; a `then` that cannot be read is a rejection.
 * @param {unknown} value
 * @param {(value: unknown) => void} fulfil called with a value that is no thenable
 * @param {(reason: unknown) => void} fail
 * @param {boolean} deferred
 */
function resolveThrough(value, fulfil, fail, deferred) {
  let then;
  try {
    then = thenOf(value);
  } catch (error) {
    fail(error);
    return;
  }
  if (then === undefined) fulfil(value);
  else follow(value, then, fulfil, fail, deferred);
}

/**
 * Follows a thenable as the language does: `then` (read once, by the caller) called once, in a
 * microtask when `deferred`; a throw from it is a rejection; only the first callback counts.
 * @param {unknown} value
 * @param {Function} then
 * @param {(value: unknown) => void} fulfil
 * @param {(reason: unknown) => void} fail
 * @param {boolean} deferred
 */
function follow(value, then, fulfil, fail, deferred) {
  let done = false;
  const call = () => {
    try {
      then.call(
        value,
        (/** @type {unknown} */ next) => {
          if (done) return;
          done = true;
          resolveThrough(next, fulfil, fail, true);
        },
        (/** @type {unknown} */ reason) => {
          if (done) return;
          done = true;
          fail(reason);
        },
      );
    } catch (error) {
      if (done) return;
      done = true;
      fail(error);
    }
  };
  if (deferred) later(call);
  else call();
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
 * @property {(reason: unknown) => void} reject_$
 * @property {string} label_$
 * @property {number} generation_$
 * @property {Handles | null} handles_$
 * @property {boolean} settled_$
 * @property {(() => unknown) | null} again_$ makes the call again (null: it may never be)
 * @property {number} ticks_$ executor ticks begun before the call was made
 * @property {(value: unknown) => void} settle_$ resolves the caller's promise
 * @property {Pending | null} prev_$ neighbours in the runtime's list of calls in flight
 * @property {Pending | null} next_$
 */

/**
 * The calls in flight: an intrusive doubly linked list, so following a call allocates nothing
 * beyond its entry (a `Set` of short-lived entries cost more than the rest of a call).
 */
class CallList {
  constructor() {
    /** @type {Pending | null} */
    this.head_$ = null;
    this.size_$ = 0;
  }

  /** @param {Pending} entry */
  add_$(entry) {
    entry.prev_$ = null;
    entry.next_$ = this.head_$;
    if (this.head_$ !== null) this.head_$.prev_$ = entry;
    this.head_$ = entry;
    this.size_$ += 1;
  }

  /** @param {Pending} entry */
  delete_$(entry) {
    if (entry.prev_$ === null && this.head_$ !== entry) return; // not in the list
    if (entry.prev_$ !== null) entry.prev_$.next_$ = entry.next_$;
    else this.head_$ = entry.next_$;
    if (entry.next_$ !== null) entry.next_$.prev_$ = entry.prev_$;
    entry.prev_$ = entry.next_$ = null;
    this.size_$ -= 1;
  }

  /** Empties the list; returns what it held. */
  take_$() {
    /** @type {Pending[]} */
    const all = [];
    for (let entry = this.head_$; entry !== null; ) {
      const next = entry.next_$;
      entry.prev_$ = entry.next_$ = null;
      all.push(entry);
      entry = next;
    }
    this.head_$ = null;
    this.size_$ = 0;
    return all;
  }

  /** @returns {Pending[]} */
  list_$() {
    /** @type {Pending[]} */
    const all = [];
    for (let entry = this.head_$; entry !== null; entry = entry.next_$) all.push(entry);
    return all;
  }
}

/**
 * @typedef {object} ClassInfo
 * @property {string} name
 * @property {(inner: object) => object} adopt_$ wraps an object Rust returned
 */

class Recovery {
  /**
   * @param {any} glue
   * @param {any} EXPORTS
   */
  constructor(glue, EXPORTS) {
    this.glue_$ = glue;
    this.mode = EXPORTS.mode === "abort" ? "abort" : "unwind";
    this.build_$ = EXPORTS.build ?? "unknown"; // the module's build id, as the symbol map has it
    this.json_$ = EXPORTS.log === "json"; // `--log-format json`
    /** @type {Record<string, string>} kinds of abort by the function that traps */
    this.traps_$ = EXPORTS.traps ?? {};
    this.record_$ = this.findRecord_$(EXPORTS.wasmModule);
    this.ownGeneration_$ = 0; // used only without a record
    /** async calls in flight on the current instance */
    this.pending_$ = new CallList();
    this.depth_$ = 0; // Rust frames of ours on the stack (calls, executor ticks)
    this.dying_$ = false; // the instance aborted under frames still on the stack
    /** @type {{ error: unknown, where: string | null } | null} that abort, as first seen */
    this.dyingCause_$ = null;
    this.reinitWanted_$ = false; // `schedule_reinit()` called while the instance was alive
    this.reinitialising_$ = false; // `__wbg_reset_state()` is running
    /** @type {{ outcome: string, inFlight: number, unstarted: number } | null} an abort whose error is not seen yet */
    this.unreported_$ = null;
    this.reinitFailures_$ = 0; // consecutive failed re-initialisations
    this.reinitFailedAt_$ = 0; // when the last one failed (Date.now())
    /** @type {unknown} */
    this.reinitError_$ = null;
    /** @type {Map<Function, ClassInfo>} the glue's classes, by the glue's constructor */
    this.classes_$ = new Map();
    /** @type {Function | null} */
    this.tickCallback_$ = null; // the executor's callback and our wrapper around it
    /** @type {Function | null} */
    this.tickWrapper_$ = null;
    this.tickScheduled_$ = false; // whether the executor asked for a tick since the last began
    this.tickGeneration_$ = -1; // the instance `tickWrapper` was made for
    this.ticks_$ = 0; // executor ticks that entered an instance so far
    this.ticking_$ = false; // an executor tick is running
    /** @type {Int32Array | null} */
    this.flagView_$ = null;
    /** @type {ArrayBuffer | null} */
    this.flagBuffer_$ = null;
    this.stats_$ = {
      reinits: 0, // re-initialisations after an abort or a requested reinit
      aborts: 0, // aborts detected
      failures: 0, // recoverable failures (panics, JS errors, `Err` results)
      abortedInFlight: 0, // calls rejected because their instance aborted or was replaced
      droppedFutures: 0, // calls rejected because wasm-bindgen dropped their future
      retried: 0, // calls in flight at an abort whose future was never polled, run again
      reinitFailures: 0, // re-initialisations that failed (the start function aborted)
      lastAbort: /** @type {string | null} */ (null), // "<kind> in <call>"
      observed: this.record_$ !== null, // whether the terminated flag is read (see the top)
      mode: this.mode, // "unwind" or "abort", as built
    };
    const pending = this.pending_$;
    // Async calls the runtime follows now: back to 0 whenever no call is in flight.
    Object.defineProperty(this.stats_$, "inFlight", { enumerable: true, get: () => pending.size_$ });
    if (typeof glue.__wbg_reset_state !== "function") {
      console.error(
        `${LOG_PREFIX} the wasm-bindgen glue has no __wbg_reset_state(); aborts cannot be ` +
          "recovered (run wasm-bindgen with --experimental-reset-state-function)",
      );
    }
    if (this.record_$ === null) {
      console.error(
        `${LOG_PREFIX} could not observe the Wasm instance; abort detection falls back to ` +
          "error types (import runtime.js before the glue)",
      );
    } else {
      this.record_$.owner = this;
    }
    observer.runtimes.add(this);
  }

  /** @param {unknown} wasmModule */
  findRecord_$(wasmModule) {
    if (wasmModule instanceof WebAssembly.Module) {
      const record = observer.records.get(wasmModule);
      if (record) return record;
    }
    return null;
  }

  /** Generation of the current instance: bumps on every instantiation, ours or the glue's. */
  get generation_$() {
    return this.record_$ !== null ? this.record_$.instances : this.ownGeneration_$;
  }

  /** wasm-bindgen's terminated flag of the current instance (false if it cannot be read). */
  terminated_$() {
    const exports = this.record_$?.exports;
    if (!exports) return false;
    const buffer = exports.memory.buffer;
    if (buffer !== this.flagBuffer_$ || this.flagView_$ === null) {
      this.flagBuffer_$ = buffer;
      this.flagView_$ = new Int32Array(buffer, exports.__instance_terminated.value, 1);
    }
    return this.flagView_$[0] !== 0;
  }

  /**
   * Called by the routed `__wbindgen_reinit` import, from inside Rust: never re-initialise
   * here, the calling instance's frames are on the stack.
   */
  reinitRequested() {
    if (this.terminated_$()) {
      // The abort hook of a dying instance: recovered when the outermost frame has returned.
      this.dying_$ = true;
      // Rust code the runtime did not call (a timer, an event) has no such frame: recover once
      // its stack has unwound, so the calls in flight on it fail now, not at the next call.
      // Not for a start function that aborts while we re-initialise: the next call retries
      // that, a bounded number of times (see ensureLive).
      if (this.depth_$ === 0 && !this.reinitialising_$) later(() => this.abortOutsideCalls_$());
    } else {
      // A live instance asked for a fresh start: do it before the next call, not mid-call.
      this.reinitWanted_$ = true;
    }
  }

  /**
   * Before a call: make sure it enters a live instance.
   * @param {string} label
   */
  ensureLive_$(label) {
    if (this.depth_$ > 0) {
      // A nested call (Rust called JavaScript, which calls Rust again): never re-initialise
      // under the outer frames, and never enter an instance that is dying under them.
      if (this.dying_$ || this.terminated_$()) {
        this.dying_$ = true;
        throw new WasmAbortError(
          `${label} cannot run: the Wasm instance aborted during the call that is still on ` +
            "the stack; it is re-initialised when that call returns",
        );
      }
      return;
    }
    if (this.reinitFailures_$ > 0) {
      // The last re-initialisation failed (its start function aborted): one more attempt per
      // call, up to MAX_REINIT_ATTEMPTS in a row, then every call fails at once.
      if (
        this.reinitFailures_$ < MAX_REINIT_ATTEMPTS ||
        Date.now() - this.reinitFailedAt_$ >= REINIT_BACKOFF_MS
      ) {
        this.replaceInstance_$("retrying the re-initialisation that failed");
      }
    } else if (this.dying_$ || this.terminated_$()) {
      this.abortDetected_$(null, `an earlier call (seen before ${label})`);
    } else if (this.reinitWanted_$) {
      this.replaceInstance_$("schedule_reinit() was called");
    }
    if (this.reinitFailures_$ > 0) {
      const backoff = this.reinitFailures_$ >= MAX_REINIT_ATTEMPTS;
      throw new WasmAbortError(
        `${label} cannot run: the Wasm instance could not be re-initialised ` +
          `(${describe(this.reinitError_$)}; ${this.reinitFailures_$} attempt(s) in a row, ` +
          (backoff
            ? `the next one at most every ${REINIT_BACKOFF_MS} ms)`
            : "the next one at the next call)"),
        { cause: this.reinitError_$ },
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
   * @param {(() => unknown) | null} [again] makes the whole call again, on the live instance:
   *   an async call whose future was never polled when its instance died is run again by it
   */
  invoke_$(fn, thisArg, args, label, objects = false, again = null) {
    this.ensureLive_$(label);
    // What a panic hook printed before this call began is another call's.
    observer.panic = null;
    const generation_$ = this.generation_$;
    const outer = captured;
    /** @type {Handles[]} */
    const mine = [];
    captured = mine;
    // Swapped once per stack of calls (a call from an executor tick swaps it too), and put
    // back as it was.
    const previous = globalThis.Promise;
    const swap = canCapture && previous !== /** @type {unknown} */ (CapturingPromise);
    if (swap) globalThis.Promise = /** @type {any} */ (CapturingPromise);
    this.depth_$ += 1;
    let result;
    try {
      result = fn.apply(thisArg, args);
    } catch (error) {
      this.leave_$(outer, swap ? previous : null);
      claimHook(error);
      throw this.failed_$(error, label, generation_$);
    }
    this.leave_$(outer, swap ? previous : null);
    if (this.dying_$ || generation_$ !== this.generation_$ || this.terminated_$()) {
      // A nested call aborted and JavaScript in between caught its error: this call's result
      // came from a dead instance, so it fails too.
      throw this.failed_$(
        new WasmAbortError(`${label} failed: the Wasm instance aborted during the call`),
        label,
        generation_$,
      );
    }
    if (result !== null && typeof result === "object") {
      if (typeof result.then === "function") {
        let handles_$ = null;
        for (const h of mine) {
          if (h.promise_$ === result) {
            handles_$ = h;
            break;
          }
        }
        // Only a future wasm-bindgen-futures runs can be known never to have been polled: its
        // promise is Rust's (captured), and it is polled only by an executor tick (observed),
        // never by the call that spawns it; a call made during a tick may be polled by it.
        const retry =
          handles_$ !== null && !this.ticking_$ && this.record_$ !== null && this.record_$.tickImports.length > 0
            ? again
            : null;
        if (handles_$ !== null && !objects) return this.follow_$(result, label, generation_$, handles_$, retry);
        return this.track_$(result, label, generation_$, handles_$, objects, retry);
      }
      if (objects) return this.adopt_$(result);
    }
    return result;
  }

  /**
   * @param {Handles[] | null} outer
   * @param {PromiseConstructor | null} previous what `Promise` was before this call swapped it
   */
  leave_$(outer, previous) {
    captured = outer;
    this.depth_$ -= 1;
    if (previous !== null) globalThis.Promise = previous;
  }

  /**
   * Follows an async call; it is rejected at once if its instance aborts meanwhile or its
   * future is dropped.
   * @param {PromiseLike<unknown>} promise
   * @param {string} label
   * @param {number} generation_$
   * @param {Handles | null} handles_$
   * @param {boolean} objects
   * @param {(() => unknown) | null} again
   */
  track_$(promise, label, generation_$, handles_$, objects, again) {
    return new NativePromise((resolve, reject) => {
      const entry = this.enter_$(resolve, reject, label, generation_$, handles_$, again);
      resolveThrough(
        promise,
        (value) => {
          if (entry.settled_$) return;
          entry.settled_$ = true;
          this.pending_$.delete_$(entry);
          resolve(objects ? this.adopt_$(value) : value);
        },
        (error) => {
          if (entry.settled_$) return;
          entry.settled_$ = true;
          this.pending_$.delete_$(entry);
          reject(this.failed_$(error, label, generation_$));
        },
        false,
      );
    });
  }

  /**
   * A new entry in the list of calls in flight, for `track` and `follow`.
   * @param {(value: unknown) => void} settle
   * @param {(reason: unknown) => void} reject
   * @param {string} label
   * @param {number} generation_$
   * @param {Handles | null} handles_$
   * @param {(() => unknown) | null} again
   * @returns {Pending}
   */
  enter_$(settle, reject, label, generation_$, handles_$, again) {
    /** @type {Pending} */
    const entry = {
      reject_$: reject,
      label_$: label,
      generation_$,
      handles_$,
      settled_$: false,
      again_$: again,
      ticks_$: this.ticks_$,
      settle_$: settle,
      prev_$: null,
      next_$: null,
    };
    this.pending_$.add_$(entry);
    return entry;
  }

  /**
   * Like `track`, for a promise whose own `reject` the runtime holds: the caller gets the
   * promise itself (one promise and one microtask fewer per call), and the runtime rejects it
   * directly if its instance aborts or its future is dropped.
   * @param {Promise<unknown>} promise
   * @param {string} label
   * @param {number} generation_$
   * @param {Handles} handles_$
   * @param {(() => unknown) | null} again
   */
  follow_$(promise, label, generation_$, handles_$, again) {
    // Rust settled it during the call (with a thenable, it still has to be followed).
    if (handles_$.called_$ && !handles_$.adopting_$) return promise;
    const entry = this.enter_$(
      /** @type {(value: unknown) => void} */ (handles_$.done_$),
      /** @type {(reason: unknown) => void} */ (handles_$.fail_$),
      label,
      generation_$,
      handles_$,
      again,
    );
    handles_$.entry_$ = entry;
    handles_$.owner_$ = this;
    return promise;
  }

  /**
   * Wraps `value` when it is an instance of one of the glue's wrapped classes.
   * @param {unknown} value
   */
  adopt_$(value) {
    if (value === null || typeof value !== "object" || this.classes_$.size === 0) return value;
    const info = this.classes_$.get(/** @type {any} */ (value).constructor);
    return info === undefined ? value : info.adopt_$(value);
  }

  /**
   * Classifies an error thrown or rejected by a call made on instance `generation`.
   * @param {unknown} error
   * @param {string} label
   * @param {number} generation_$
   */
  failed_$(error, label, generation_$) {
    if (generation_$ !== this.generation_$) {
      // Its instance is gone: the abort was already detected and recovered.
      this.reportAbort_$(error, label);
      return error;
    }
    if (this.dying_$ || this.terminated_$() || (this.record_$ === null && abortKind(error) !== null)) {
      const under = this.dyingCause_$;
      this.abortDetected_$(error, label);
      if (under !== null && under.error !== error && !(error instanceof WasmAbortError)) {
        // An outer frame: the abort happened in a nested call, this error is only its echo.
        return new WasmAbortError(
          `${label} failed: the Wasm instance aborted under it (in ${under.where})`,
          { cause: error },
        );
      }
      return error;
    }
    this.stats_$.failures += 1;
    this.log_$(`${label} failed: ${describe(error)} (recovered; instance kept)`, error, label);
    return error;
  }

  /**
   * The executor tick of wasm-bindgen-futures around `callback` (one wrapper, reused).
   * @param {Function} callback
   */
  tickFor(callback) {
    this.tickScheduled_$ = true;
    if (callback !== this.tickCallback_$ || this.tickGeneration_$ !== this.generation_$) {
      this.tickGeneration_$ = this.generation_$;
      this.tickCallback_$ = callback;
      this.tickWrapper_$ = this.makeTick_$(callback, MAX_TICK_RESTARTS);
    }
    return this.tickWrapper_$;
  }

  /**
   * @param {Function} callback
   * @param {number} restarts how many more times in a row a failure may run the rest of the
   *   queue again (each failing poll drops its future, so the queue shrinks every time)
   */
  makeTick_$(callback, restarts) {
    const recovery = this;
    const made = recovery.generation_$; // the instance whose executor this is
    return function executorTick(/** @type {unknown} */ arg) {
      recovery.tickScheduled_$ = false;
      // Checked before entering, every time: a tick queued before its instance was replaced, or
      // before it aborted outside any call, must not run Rust code on it.
      if (made !== recovery.generation_$) return;
      if (recovery.dying_$ || recovery.terminated_$()) {
        recovery.abortOutsideCalls_$();
        return;
      }
      const generation_$ = made;
      observer.panic = null;
      recovery.depth_$ += 1;
      // Every future spawned before now may be polled by this tick.
      recovery.ticks_$ += 1;
      const ticking = recovery.ticking_$;
      recovery.ticking_$ = true;
      let failed = false;
      let error;
      try {
        callback(arg);
      } catch (e) {
        failed = true;
        error = e;
        claimHook(e);
      }
      recovery.ticking_$ = ticking;
      recovery.depth_$ -= 1;
      if (generation_$ !== recovery.generation_$) return; // a tick of a replaced instance
      if (recovery.dying_$ || recovery.terminated_$()) {
        if (recovery.depth_$ === 0) recovery.abortDetected_$(failed ? error : null, "a Rust future");
        return;
      }
      if (failed) recovery.futureFailed_$(error, callback, restarts);
    };
  }

  /**
   * A tick of the executor threw a recoverable error: the future it was polling was dropped,
   * and the futures queued behind it in that tick were not polled.
   * @param {unknown} error
   * @param {Function} callback
   * @param {number} restarts
   */
  futureFailed_$(error, callback, restarts) {
    const restart = restarts > 0 && !this.tickScheduled_$;
    // One microtask later: the reactions of promises Rust settled during the tick ran first.
    later(() => {
      const dropped = this.droppedCalls_$();
      this.stats_$.failures += 1;
      const what = dropped.length > 0 ? dropped.map((e) => e.label_$).join(", ") : "a Rust future";
      this.log_$(
        `${what} failed: ${describe(error)} in a Rust future, which wasm-bindgen dropped ` +
          "(recovered; instance kept)",
        error,
        what,
      );
      for (const entry of dropped) {
        entry.settled_$ = true;
        this.pending_$.delete_$(entry);
        this.stats_$.droppedFutures += 1;
        entry.reject_$(error);
      }
      // The executor polls the rest of its queue only once it is asked for a new tick; a future
      // behind this one may throw too, so the extra tick may need one of its own.
      if (restart && !this.tickScheduled_$) {
        try {
          this.makeTick_$(callback, restarts - 1)(undefined);
        } catch {
          // Our own extra tick: nothing to report.
        }
      }
    });
  }

  /** Pending calls whose Rust future is gone: its resolve and reject released, never called. */
  droppedCalls_$() {
    /** @type {Pending[]} */
    const candidates = [];
    for (const entry of this.pending_$.list_$()) {
      if (!entry.settled_$ && entry.handles_$ !== null && !entry.handles_$.called_$) candidates.push(entry);
    }
    if (candidates.length === 0) return candidates;
    const table = this.externrefTable_$();
    if (table === null) {
      // Without an externref table the handles cannot be looked up: a lone candidate is the
      // only call the dropped future can have belonged to.
      return candidates.length === 1 && this.pending_$.size_$ === 1 ? candidates : [];
    }
    const held = new Set();
    for (let i = 0; i < table.length; i++) held.add(table.get(i));
    return candidates.filter(
      (entry) => !held.has(entry.handles_$?.resolve_$) && !held.has(entry.handles_$?.reject_$),
    );
  }

  /** @returns {WebAssembly.Table | null} where the instance keeps the JS values Rust holds */
  externrefTable_$() {
    const table = this.record_$?.exports?.__wbindgen_externrefs;
    return table instanceof WebAssembly.Table ? table : null;
  }

  /**
   * The instance died in Rust code that no call of ours ran: recover now, unless the last
   * re-initialisation failed (the next call retries it, a bounded number of times).
   */
  abortOutsideCalls_$() {
    if (this.reinitFailures_$ === 0) this.checkAfterUncaught(null, "Rust code run outside a call");
  }

  /**
   * An error nobody awaited (timer, event): only the terminated flag says it was an abort.
   * @param {unknown} error
   * @param {string} where
   */
  checkAfterUncaught(error, where) {
    if (this.depth_$ === 0 && (this.dying_$ || this.terminated_$())) this.abortDetected_$(error, where);
  }

  /**
   * The instance is dead: re-initialise once, fail the calls in flight on it, log one line.
   * Under frames of ours (a nested call), only note it: the outermost frame recovers.
   * @param {unknown} error
   * @param {string | null} where
   */
  abortDetected_$(error, where) {
    if (this.depth_$ > 0) {
      this.dying_$ = true;
      this.dyingCause_$ ??= { error, where };
      return;
    }
    if (this.dyingCause_$ !== null) {
      // The abort happened under a frame that has returned since: name the first error seen.
      ({ error, where } = this.dyingCause_$);
      this.dyingCause_$ = null;
    }
    this.dying_$ = false;
    this.stats_$.aborts += 1;
    this.unreported_$ = this.replaceInstance_$(null);
    if (error !== null && error !== undefined) {
      this.reportAbort_$(error, where ?? "an unknown call");
    } else {
      later(() => this.reportAbort_$(null, where ?? "an unknown call"));
    }
  }

  /**
   * Builds a fresh instance and fails every call in flight on the old one.
   * @param {string | null} reason logged when not null (a requested reinit, a retry)
   */
  replaceInstance_$(reason) {
    const inFlight = this.pending_$.take_$();
    // A call whose future no executor tick could have polled has run no Rust code of its own
    // (wasm-bindgen-futures polls a spawned future first in the next tick; the export only
    // converted its arguments and spawned it): it lost nothing, and runs on the fresh instance.
    /** @type {Set<Pending>} */
    const unstarted = new Set();
    for (const entry of inFlight) {
      if (entry.again_$ !== null && entry.ticks_$ === this.ticks_$ && !entry.handles_$?.called_$) {
        unstarted.add(entry);
      }
    }
    const outcome = this.reinitialise_$(reason);
    if (inFlight.length > 0) {
      // Each call its own error, with no cause: the abort is another call's (its record is
      // logged once), and a shared object would carry data from one request to the others.
      const failure = () =>
        new WasmAbortError(
          reason === null
            ? "the Wasm instance aborted while this call was in flight; it was re-initialised"
            : `the Wasm instance was re-initialised (${reason}) while this call was in flight`,
        );
      // A call whose promise Rust settled just before (its reaction is queued) keeps its
      // result: the others can never settle now, and fail a few microtasks later.
      const reject = (/** @type {Pending} */ entry) => {
        if (entry.settled_$) return;
        entry.settled_$ = true;
        this.stats_$.abortedInFlight += 1;
        entry.reject_$(failure());
      };
      const retry = (/** @type {Pending} */ entry) => {
        if (entry.settled_$) return;
        entry.settled_$ = true;
        this.stats_$.retried += 1;
        let result;
        try {
          result = /** @type {() => unknown} */ (entry.again_$)();
        } catch (error) {
          result = NativePromise.reject(error);
        }
        entry.settle_$(result);
      };
      later(() => {
        for (const entry of inFlight) {
          if (unstarted.has(entry)) {
            retry(entry);
          } else if (entry.handles_$?.called_$) {
            later(() => later(() => later(() => reject(entry))));
          } else {
            reject(entry);
          }
        }
      });
    }
    return { outcome, inFlight: inFlight.length, unstarted: unstarted.size };
  }

  /**
   * Writes the one log line of the abort recovered last, once.
   * @param {unknown} error
   * @param {string} where
   */
  reportAbort_$(error, where) {
    const report = this.unreported_$;
    if (report === null) return;
    this.unreported_$ = null;
    const kind = error !== null && error !== undefined ? (abortKind(error) ?? describe(error)) : "abort";
    this.stats_$.lastAbort = `${kind} in ${where}`;
    this.log_$(
      `Wasm instance aborted (${kind} in ${where}); ${report.outcome}` +
        (report.inFlight > 0 ? `; ${report.inFlight} call(s) were in flight on it` : "") +
        (report.unstarted > 0
          ? ` (${report.unstarted} not started yet: run on the fresh instance)`
          : ""),
      error,
      where,
    );
  }

  /**
   * Writes the one record of a fault: `text`, then the fault's kind, Rust location and build,
   * then its Wasm frames, one per line (`cargo worker-build symbolize` names them); or, built
   * with `--log-format json`, all of it as one JSON object on one line.
   * @param {string} text
   * @param {unknown} error
   * @param {string} call
   */
  log_$(text, error, call) {
    let record = `${LOG_PREFIX} ${text}`;
    try {
      const { kind, message, location, frames } = faultOf(error, this.traps_$);
      const build = this.build_$;
      record = this.json_$
        ? JSON.stringify({ level: "error", kind, message, location, frames, call, build })
        : `${record} [${kind}${location ? ` at ${location}` : ""}, build ${build}]` +
          frames.map((frame) => `\n    at ${frame}`).join("");
    } catch {
      // An error whose properties throw when read: the line without them.
    }
    console.error(record);
  }

  /**
   * Builds a fresh instance; returns a description for the log line.
   * @param {string | null} reason
   */
  reinitialise_$(reason) {
    if (typeof this.glue_$.__wbg_reset_state !== "function") return "cannot re-initialise";
    this.dying_$ = false;
    this.reinitWanted_$ = false;
    this.reinitialising_$ = true;
    try {
      this.glue_$.__wbg_reset_state();
      this.reinitFailures_$ = 0;
      this.reinitError_$ = null;
    } catch (error) {
      this.reinitFailures_$ += 1;
      this.reinitFailedAt_$ = Date.now();
      this.reinitError_$ = error;
      this.stats_$.reinitFailures += 1;
      const text =
        `re-initialisation failed: ${describe(error)} (attempt ${this.reinitFailures_$} of ` +
        `${MAX_REINIT_ATTEMPTS})`;
      if (reason !== null) console.error(`${LOG_PREFIX} ${reason}; ${text}`);
      return text;
    } finally {
      this.ownGeneration_$ += 1;
      this.reinitialising_$ = false;
    }
    this.stats_$.reinits += 1;
    const text = `re-initialised (re-initialisation #${this.stats_$.reinits})`;
    if (reason !== null) console.error(`${LOG_PREFIX} ${reason}; ${text}`);
    return text;
  }
}

/**
 * What kind of abort an error is, from the types only an abort produces (the flag is not read
 * here), or null for any other error.
 * @param {unknown} error
 * @returns {string | null}
 */
function abortKind(error) {
  if (error instanceof RangeError && /call stack/i.test(error.message)) return "stack overflow";
  if (error instanceof WebAssembly.RuntimeError) return `trap: ${error.message}`;
  if (error instanceof WebAssembly.Exception) return "uncaught Wasm exception";
  if (error instanceof Error && error.message === "Module terminated") return "terminated";
  return null;
}

/** @type {WeakMap<object, { at: string, text: string }>} the hook's text of each PanicError */
const hookOf = new WeakMap();

/**
 * Ties what the panic hook printed to `error` when it reports this panic: called where a
 * PanicError first reaches the runtime (a call's throw, Rust's reject, a failing executor
 * tick), still in the call or tick whose Rust code printed it; its record may be written later
 * (after the reactions of a failing tick), when another call's hook may have printed.
 * @param {unknown} error
 */
function claimHook(error) {
  const hook = observer.panic;
  if (hook === null || error === null || typeof error !== "object") return;
  try {
    const { name, message } = /** @type {any} */ (error);
    if (name !== "PanicError" || typeof message !== "string") return;
    // The hook's text is the message, then (console_error_panic_hook) a blank line and a stack.
    if (hook.text !== message && !hook.text.startsWith(`${message}\n`)) return;
  } catch {
    return;
  }
  observer.panic = null;
  hookOf.set(error, hook);
}

/**
 * What a fault's record says about `error` (null: an abort whose error was not seen): its kind
 * (panic, the trap or the abort it is, stack overflow, error), message, Rust location when a panic hook
 * printed it, and Wasm frames (the panic site's, from the hook, else the error's own).
 * @param {unknown} error
 * @param {Record<string, string>} traps the kind of a trap in these functions (by index)
 */
function faultOf(error, traps) {
  const e = /** @type {any} */ (error);
  let stack = `${e?.stack}`;
  const kind =
    e == null
      ? "abort"
      : e.name === "PanicError"
        ? "panic"
        : e instanceof WebAssembly.RuntimeError
          ? (traps[/wasm-function\[(\d+)\]/.exec(stack)?.[1] ?? ""] ?? e.message)
          : (abortKind(e) ?? "error");
  /** @type {string} */
  const message = e == null ? kind : (e.message ?? describe(e));
  /** @type {string | null} */
  let location = null;
  const hook = e !== null && typeof e === "object" ? hookOf.get(e) : undefined;
  if (kind === "panic" && hook !== undefined) {
    location = hook.at;
    stack = hook.text;
  }
  const frames = stack
    .split("\n")
    .filter((line) => line.includes("wasm-function["))
    .map((line) => line.trim().slice(3));
  return { kind, message, location, frames };
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
        const run = () => recovery.invoke_$(handler, undefined, [event, env, ctx], name, false, run);
        return run();
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
        const { env, ctx } = this;
        const run = () => recovery.invoke_$(handler, undefined, [event, env, ctx], name, false, run);
        return run();
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
      const run = () => recovery.invoke_$(fn, undefined, recovery.unwrapAll_$(args), name, true, run);
      return run();
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
    const run = () => recovery.invoke_$(fn, undefined, recovery.unwrapAll_$(args), name, true, run);
    return run();
  };
  Object.defineProperty(wrapped, "name", { value: name });
  return wrapped;
}

const STATE = Symbol("cargo-worker-build.object");

/**
 * @typedef {object} ObjectState
 * @property {any} inner_$ the glue's object
 * @property {unknown[] | null} args_$ constructor arguments; null for objects Rust made
 * @property {number} generation_$ the instance `inner` belongs to
 * @property {(wrapper: object) => any} current_$ the live glue object (rebuilt if need be)
 */

/**
 * `args` with wrapped objects replaced by the glue's objects behind them, so exports that take
 * `&T` or `T` get what the glue's class assertion expects. A copy when any is replaced: a call
 * made again after an abort unwraps the same arguments onto the fresh instance.
 * @this {Recovery}
 * @param {unknown[]} args
 */
Recovery.prototype.unwrapAll_$ = function (args) {
  if (this.classes_$.size === 0) return args;
  let unwrapped = args;
  for (let i = 0; i < args.length; i++) {
    const arg = /** @type {any} */ (args[i]);
    if (arg !== null && typeof arg === "object") {
      /** @type {ObjectState | undefined} */
      const state = arg[STATE];
      if (state !== undefined) {
        if (unwrapped === args) unwrapped = [...args];
        unwrapped[i] = state.current_$(arg);
      }
    }
  }
  return unwrapped;
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
      const inner = recovery.invoke_$(construct, undefined, recovery.unwrapAll_$([...args]), `new ${name}`);
      /** @type {any} */ (this)[STATE] = { inner_$: inner, args_$: args, generation_$: recovery.generation_$, current_$: current };
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
    recovery.ensureLive_$(`${name} method`);
    if (state.generation_$ !== recovery.generation_$) {
      if (state.args_$ === null) {
        throw new WasmAbortError(
          `this ${name} belonged to a Wasm instance that aborted and was re-initialised; it ` +
            `was made by Rust, so it cannot be rebuilt: make a new ${name}`,
        );
      }
      state.inner_$ = recovery.invoke_$(
        construct,
        undefined,
        recovery.unwrapAll_$([...state.args_$]),
        `rebuilding ${name}`,
      );
      state.generation_$ = recovery.generation_$;
    }
    return state.inner_$;
  }

  recovery.classes_$.set(Inner, {
    name,
    adopt_$(inner) {
      const wrapper = Object.create(Wrapped.prototype);
      wrapper[STATE] = { inner_$: inner, args_$: null, generation_$: recovery.generation_$, current_$: current };
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
          // Made again, it calls the object as rebuilt on the fresh instance.
          const run = () =>
            recovery.invoke_$(method, current(this), recovery.unwrapAll_$(args), label, true, run);
          return run();
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
            return recovery.invoke_$(get, current(this), [], label, true);
          },
        set:
          set &&
          /** @this {any} @param {unknown} value */
          function (value) {
            recovery.invoke_$(set, current(this), recovery.unwrapAll_$([value]), label);
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
      if (state === undefined || state.generation_$ !== recovery.generation_$) return;
      recovery.invoke_$(state.inner_$.free, state.inner_$, [], `${name}.free`);
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
    const label = `${name}.${String(key)}`;
    defineMethod(Wrapped, key, function (/** @type {unknown[]} */ ...args) {
      const run = () => recovery.invoke_$(fn, Inner, recovery.unwrapAll_$(args), label, true, run);
      return run();
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
  return recovery ? { ...recovery.stats_$ } : null;
}

/** @param {Recovery} recovery */
function publishStats(recovery) {
  if (!(STATS_GLOBAL in globalThis)) {
    Object.defineProperty(globalThis, STATS_GLOBAL, {
      value: recovery.stats_$,
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
