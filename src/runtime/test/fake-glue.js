// A stand-in for wasm-bindgen 0.2.130's `--target module` glue, with the same recovery
// machinery as the generated code (terminated flag in linear memory, call guard, catch handler,
// abort hook, reinit import, `__wbg_reset_state`, instance ids on objects and closures, and an
// executor like wasm-bindgen-futures': one tick closure scheduled through the module's
// `queueMicrotask` import, futures that hold their promise's resolve and reject in the
// externref table and are dropped when a poll throws), over the tiny module in fake.wat. It
// lets runtime.js be tested in workerd (runtime.test.js) and Node (fuzz.mjs, long-lines.mjs)
// without a Rust build; it counts the entries the runtime makes into a terminated instance.

class PanicError extends Error {}
Object.defineProperty(PanicError.prototype, "name", { value: "PanicError" });

/** What wasm-bindgen's wrapped tag carries: a recoverable error. */
class Recoverable {
  constructor(payload) {
    this.payload = payload;
  }
}

/** A glue namespace over `wasmModule`; `hook` says whether the abort hook asks for a reinit. */
export function makeGlue(wasmModule, { hook }) {
  let wasm;
  let instanceId = 0;
  let reinitScheduled = false;
  let calledAbort = false;
  let tasks = [];
  let scheduled = false;
  let tick = null;
  let deadEntries = 0; // entries by the runtime into an instance whose terminated flag was set

  const imports = () => ({
    "./index_bg.js": {
      __wbg___wbindgen_reinit_0000000000000000: () => {
        reinitScheduled = true;
      },
      __wbg_queueMicrotask_0000000000000000: (callback) => {
        queueMicrotask(callback);
      },
    },
  });
  const flag = () => new Int32Array(wasm.memory.buffer)[wasm.__instance_terminated.value / 4];

  function abortHook() {
    calledAbort = true;
    try {
      if (hook) wasm.on_abort();
    } catch {}
  }
  function guard(counted) {
    if (flag()) {
      if (counted) deadEntries++;
      if (!calledAbort) abortHook();
      if (reinitScheduled) {
        reset();
        return;
      }
      throw new Error("Module terminated");
    } else if (reinitScheduled) {
      reset();
    }
  }
  function handleCatch(e) {
    if (e instanceof Recoverable) throw e.payload;
    new Int32Array(wasm.memory.buffer)[wasm.__instance_terminated.value / 4] = 1;
    abortHook();
    throw e;
  }
  // `counted`: an entry the runtime made (an export or an executor tick), not JavaScript
  // running a closure it was handed.
  function call(body, counted = true) {
    guard(counted);
    try {
      return body();
    } catch (e) {
      handleCatch(e);
    }
  }
  function reset() {
    instanceId++;
    calledAbort = false;
    reinitScheduled = false;
    tasks = [];
    scheduled = false;
    wasm = new WebAssembly.Instance(wasmModule, imports()).exports;
    tick = makeTick();
    const aborts = globalThis.__fake_start_aborts ?? 0;
    if (aborts > 0) {
      // The start function aborts (see startAbortRetriesAreBounded), through the abort
      // machinery: the flag is set and the abort hook runs.
      globalThis.__fake_start_aborts = aborts - 1;
      try {
        wasm.trap();
      } catch (e) {
        handleCatch(e);
      }
    }
    wasm.__wbindgen_start();
  }
  /** The executor's tick: polls every task queued before it began, like run_all. */
  function makeTick() {
    const instance = instanceId;
    return () => {
      if (instance !== instanceId) throw new Error("Cannot invoke closure from previous WASM instance");
      call(() => {
        scheduled = false;
        let left = tasks.length;
        while (left-- > 0) {
          const task = tasks.shift();
          try {
            task.poll();
          } catch (e) {
            task.drop(); // the future is dropped as the exception unwinds
            throw e;
          }
        }
      });
    };
  }
  function schedule(task) {
    tasks.push(task);
    if (!scheduled) {
      scheduled = true;
      wasm.schedule(tick);
    }
  }
  /** Rust holding a JS value: a slot of the externref table. */
  function hold(value) {
    const table = wasm.__wbindgen_externrefs;
    for (let i = 1; i < table.length; i++) {
      if (table.get(i) == null) {
        table.set(i, value);
        return i;
      }
    }
    throw new Error("externref table full");
  }
  /**
   * What Rust may resolve a call's promise with (a JsValue it got from JavaScript): a thenable
   * that calls back with `value` at once ("thenable"), after a timer ("thenable-late"), never
   * ("thenable-never"), or whose `then` throws ("thenable-throws").
   */
  function thenable(kind, value) {
    return {
      then(resolve) {
        if (kind === "thenable") resolve(value);
        else if (kind === "thenable-late") setTimeout(() => resolve(value), 1);
        else if (kind === "thenable-throws") throw new TypeError("then threw");
      },
    };
  }
  function printHook(tag, message = tag, style = "console_error_panic_hook") {
    if (style === "workers-rs") {
      console.error("Critical", new Error(`Rust panic: panicked at src/${tag}.rs:1:1:\n${message}`));
      return;
    }
    console.error(
      `panicked at src/${tag}.rs:1:1:\n${message}\n\nStack:\n\nError\n    at ${tag} (wasm://wasm/0001:wasm-function[3]:0x10)`,
    );
  }
  /**
   * The promise of an async export: a future that holds its resolve and reject in the externref
   * table, queued for the executor when `waker` calls back, then finishing as `kind` says (with
   * a `tag`, a panic's hook prints first, as in `panic`).
   */
  function future(kind, tag, waker) {
    return new Promise((resolve, reject) => {
      const slots = [hold(resolve), hold(reject)];
      const release = () => {
        for (const slot of slots) wasm.__wbindgen_externrefs.set(slot, null);
      };
      const task = {
        poll() {
          if (kind === "abort") wasm.trap();
          if (kind === "js-throw") {
            throw new Recoverable(new SyntaxError("thrown by an imported JS function"));
          }
          release();
          if (kind === "panic") {
            if (tag !== undefined) printHook(tag);
            reject(new PanicError(tag ?? "async boom"));
          } else if (kind.startsWith("thenable")) {
            resolve(thenable(kind, wasm.bump()));
          } else {
            resolve(wasm.bump());
          }
        },
        drop: release,
      };
      const instance = instanceId;
      waker(() => {
        if (instance === instanceId) schedule(task);
      });
    });
  }
  /** A closure from Rust: refuses to run on a later instance, like the glue's makeMutClosure. */
  function closure(body) {
    const instance = instanceId;
    return () => {
      if (instance !== instanceId) throw new Error("Cannot invoke closure from previous WASM instance");
      return call(body, false);
    };
  }

  class Counter {
    constructor(start) {
      this.__wbg_inst = instanceId;
      call(() => wasm.bump());
      this.first = start;
      this.total = start;
    }
    add(amount) {
      if (this.__wbg_inst !== instanceId) throw new Error("Invalid stale object from previous Wasm instance");
      return call(() => {
        wasm.bump();
        this.total += amount;
        return this.total;
      });
    }
    get start() {
      if (this.__wbg_inst !== instanceId) throw new Error("Invalid stale object from previous Wasm instance");
      return this.first;
    }
    trap() {
      return call(() => wasm.trap());
    }
    free() {}
    static make(start) {
      return call(() => start * 2);
    }
    static create(start) {
      return call(() => new Counter(start));
    }
  }

  wasm = new WebAssembly.Instance(wasmModule, imports()).exports;
  tick = makeTick();
  wasm.__wbindgen_start();

  return {
    bump: () => call(() => wasm.bump()),
    trap: () => call(() => wasm.trap()),
    // With a `tag`, a panic hook first prints where it happened (src/<tag>.rs) and the message
    // (the tag, unless given), as console_error_panic_hook does, or workers-rs (hook
    // "workers-rs").
    panic: (tag, message = tag ?? "boom", hook = tag !== undefined) => call(() => {
      if (hook) printHook(tag, message, hook === "workers-rs" ? hook : undefined);
      throw new Recoverable(new PanicError(message));
    }),
    // A panic that Rust catches (catch_unwind): its hook prints, no PanicError leaves Rust.
    caughtPanic: (tag, message = tag) => call(() => {
      printHook(tag, message);
      return wasm.bump();
    }),
    jsRangeError: () => call(() => {
      throw new Recoverable(new RangeError("thrown by an imported JS function"));
    }),
    scheduleReinit: () => call(() => wasm.request_reinit()),
    // An async export: a future polled by the executor after a timer of `ms`.
    // An async export: a future polled by the executor after a timer of `ms`.
    later: (kind, ms, tag) => call(() => future(kind, tag, (wake) => setTimeout(wake, ms))),
    // The same, polled once the caller's `gate` settles: calls given one gate are polled in
    // the same executor tick.
    after: (gate, kind, tag) => call(() => future(kind, tag, (wake) => gate.then(wake))),
    // Rust code run by a timer (a closure, outside any call of the runtime) aborts; with `wake`,
    // a future is woken just before, so an executor tick is queued behind the abort.
    abortInTimer: (ms, wake) =>
      call(() => {
        const trap = closure(() => wasm.trap());
        const poke = closure(() => schedule({ poll() {}, drop() {} }));
        setTimeout(() => {
          try {
            if (wake) poke();
            trap();
          } catch {
            // The JavaScript that ran the closure swallows its error: nobody else sees it.
          }
        }, ms);
      }),
    // Calls `callback` (JavaScript, which may call back into Rust), then bumps.
    nested: (callback) =>
      call(() => {
        callback();
        return wasm.bump();
      }),
    // Takes a Counter by reference, with the glue's class assertion.
    total: (counter) =>
      call(() => {
        if (!(counter instanceof Counter)) throw new Error("expected instance of Counter");
        return counter.total;
      }),
    trace: (events, env, ctx) => call(() => `${events.length} ${typeof env} ${typeof ctx}`),
    fetch: (request, env, ctx) => call(() => new Response(`${request.url} ${env.NAME} ${typeof ctx}`)),
    Counter,
    __wbg_reset_state: reset,
    __fakeDeadEntries: () => deadEntries,
  };
}
