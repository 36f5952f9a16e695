// What the recovery runtime adds to one call, in CPU nanoseconds, without workerd or Wasm: the
// Worker entry's `fetch` through `createWorker` (module-worker object and WorkerEntrypoint
// class) against the same stand-in export called directly, as a hand-written entry would.
// The stand-in behaves like a wasm-bindgen async export: it returns a promise made with the
// global `Promise`, settled by a later microtask.
//
// Run: node_modules/.bin/node benches/runtime_overhead.mjs [path/to/runtime.js]
// (the second form measures another copy of the runtime, e.g. an older one from git).
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";

const runtimePath = resolve(process.argv[2] ?? new URL("../src/runtime/runtime.js", import.meta.url).pathname);
const { createWorker } = await import(pathToFileURL(runtimePath).href);

/** Stands in for `cloudflare:workers`' class: workerd builds one per request. */
class WorkerEntrypoint {
  constructor(ctx, env) {
    this.ctx = ctx;
    this.env = env;
  }
}

const glue = {
  fetch(request, _env, _ctx) {
    return new Promise((settle) => queueMicrotask(() => settle(request)));
  },
  add(a, b) {
    return a + b;
  },
  __wbg_reset_state() {},
};
const EXPORTS = { mode: "unwind", handlers: ["fetch"], classes: [] };
const ours = {
  object: createWorker(glue, { ...EXPORTS, functions: [] }, WorkerEntrypoint),
  Class: createWorker(glue, { ...EXPORTS, functions: ["add"] }, WorkerEntrypoint),
};
const raw = {
  object: {
    fetch(request, env, ctx) {
      return glue.fetch(request, env, ctx);
    },
  },
  Class: class extends WorkerEntrypoint {
    fetch(request) {
      return glue.fetch(request, this.env, this.ctx);
    }
  },
};

const CALLS = 200_000;
const BATCH = 32; // calls in flight at once, like the HTTP benchmark's concurrency

/** CPU ns per call of `call`, the least of `rounds` rounds. */
async function measure(call, rounds = 7) {
  let best = Infinity;
  for (let round = 0; round < rounds; round++) {
    const before = process.cpuUsage();
    for (let i = 0; i < CALLS; i += BATCH) {
      const batch = [];
      for (let j = 0; j < BATCH; j++) batch.push(call(j));
      await Promise.all(batch);
    }
    const used = process.cpuUsage(before);
    best = Math.min(best, ((used.user + used.system) * 1000) / CALLS);
  }
  return best;
}

const env = {};
const ctx = {};
const rows = [
  ["raw module-worker object", (i) => raw.object.fetch(i, env, ctx)],
  ["ours, module-worker object", (i) => ours.object.fetch(i, env, ctx)],
  ["raw WorkerEntrypoint (one instance per call)", (i) => new raw.Class(ctx, env).fetch(i)],
  ["ours, WorkerEntrypoint (one instance per call)", (i) => new ours.Class(ctx, env).fetch(i)],
];
console.log(`runtime: ${runtimePath}`);
console.log(`${CALLS} calls per round, ${BATCH} in flight, least CPU of 7 rounds (node ${process.version})`);
const figures = [];
for (const [name, call] of rows) figures.push([name, await measure(call)]);
for (const [name, ns] of figures) console.log(`  ${name}: ${ns.toFixed(0)} ns/call`);
console.log(
  `  added by the runtime: object ${(figures[1][1] - figures[0][1]).toFixed(0)} ns, ` +
    `class ${(figures[3][1] - figures[2][1]).toFixed(0)} ns per call`,
);
