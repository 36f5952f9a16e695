// The fake glue over its own module copy, with a workers-rs-style abort hook (see fake-glue.js).
import source wasmModule from "./hooked.wasm";
import { makeGlue } from "./fake-glue.js";

export { wasmModule };
export const glue = makeGlue(wasmModule, { hook: true });
