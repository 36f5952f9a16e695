// Written by cargo-worker-build for configs made for worker-build (main = "build/worker/shim.mjs"):
// the Worker is ../index.js; this module only re-exports it.
export * from "../index.js";
export { default } from "../index.js";
