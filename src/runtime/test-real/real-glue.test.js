// Unit tests of runtime.js against the glue of a real wasm-bindgen 0.2.130 build (the
// recovery-lib fixture built with `--unwind --lib`), run by `workerd test` from
// tests/it/runtime_js.rs. They check what the fake glue only imitates: that the runtime finds the
// terminated flag, the executor's queueMicrotask import and the externref table in a real
// module, and captures the promises real glue creates.
import { bump, fault, later, Tally, wasmRecoveryStats } from "./lib/index.js";

function assert(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}
function equal(actual, expected, message) {
  if (actual !== expected) throw new Error(`${message}: expected ${expected}, got ${actual}`);
}

export const realGlue = {
  async test() {
    const stats = () => wasmRecoveryStats();
    assert(stats().observed, "the runtime reads the real module's terminated flag");
    const start = bump();

    // A panic: recoverable, state kept.
    try {
      fault("panic");
      throw new Error("no panic");
    } catch (error) {
      equal(error.name, "PanicError", "the panic reaches the caller");
    }
    equal(bump(), start + 1, "state kept after a panic");

    // A JS exception after an await: the dropped future is found in the externref table.
    const slow = later("ok", 100);
    const started = Date.now();
    try {
      await later("js-throw", 5);
      throw new Error("no exception");
    } catch (error) {
      assert(error instanceof SyntaxError, `the JS exception itself, got ${error}`);
    }
    assert(Date.now() - started < 80, "rejected at once");
    equal(await slow, start + 2, "the call in flight completes");
    equal(stats().droppedFutures, 1, "one dropped future");

    // An abort: one re-initialisation, a fresh instance, objects rebuilt.
    const tally = new Tally(5);
    try {
      fault("abort");
      throw new Error("no abort");
    } catch (error) {
      assert(error instanceof WebAssembly.RuntimeError, `the trap, got ${error}`);
    }
    equal(stats().reinits, 1, "re-initialised once");
    equal(bump(), 1, "a fresh instance");
    equal(tally.add(1), 6, "the object is rebuilt from its constructor arguments");
  },
};
