// The fake glue over its own module copy, without an abort hook (a plain wasm-bindgen crate).
import source wasmModule from "./plain.wasm";
import { makeGlue } from "./fake-glue.js";

export { wasmModule };
export const glue = makeGlue(wasmModule, { hook: false });
