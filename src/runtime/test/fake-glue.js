// A stand-in for wasm-bindgen 0.2.130's `--target module` glue, with the same recovery
// machinery as the generated code (terminated flag in linear memory, call guard, catch handler,
// abort hook, reinit import, `__wbg_reset_state`, instance ids on objects and closures), over
// the tiny module in fake.wat. It lets runtime.js be tested in workerd without a Rust build.

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

  const imports = () => ({
    "./index_bg.js": {
      __wbg___wbindgen_reinit_0000000000000000: () => {
        reinitScheduled = true;
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
  function guard() {
    if (flag()) {
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
  function call(body) {
    guard();
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
    wasm = new WebAssembly.Instance(wasmModule, imports()).exports;
    wasm.__wbindgen_start();
  }
  /** A closure from Rust: refuses to run on a later instance, like the glue's makeMutClosure. */
  function closure(body) {
    const instance = instanceId;
    return () => {
      if (instance !== instanceId) throw new Error("Cannot invoke closure from previous WASM instance");
      return call(body);
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
  }

  wasm = new WebAssembly.Instance(wasmModule, imports()).exports;
  wasm.__wbindgen_start();

  return {
    bump: () => call(() => wasm.bump()),
    trap: () => call(() => wasm.trap()),
    panic: () => call(() => {
      throw new Recoverable(new PanicError("boom"));
    }),
    jsRangeError: () => call(() => {
      throw new Recoverable(new RangeError("thrown by an imported JS function"));
    }),
    scheduleReinit: () => call(() => wasm.request_reinit()),
    // An async export: the future runs in a microtask after `ms`, like wasm-bindgen-futures.
    later: (kind, ms) =>
      new Promise((resolve, reject) => {
        const poll = closure(() => {
          if (kind === "abort") wasm.trap();
          if (kind === "panic") return reject(new PanicError("async boom"));
          resolve(wasm.bump());
        });
        setTimeout(() => queueMicrotask(poll), ms);
      }),
    fetch: (request, env, ctx) => call(() => new Response(`${request.url} ${env.NAME} ${typeof ctx}`)),
    Counter,
    __wbg_reset_state: reset,
  };
}
