// The fake glue over its own module copy, handed to the runtime without its module: the runtime
// cannot read the terminated flag and falls back to error types (see fake-glue.js).
import source wasmModule from "./fallback.wasm";
import { makeGlue } from "./fake-glue.js";

export const glue = makeGlue(wasmModule, { hook: false });
