// Property test of runtime.js against the glue of a real wasm-bindgen 0.2.130 build (the
// recovery-lib fixture built with `--unwind --lib`), run by `workerd test` from
// tests/it/runtime_js.rs; fuzz.mjs does the same against the fake glue in Node, with more checks
// the fake can make (entries into a dead instance, each call's own panic data). Random sequences
// of calls: values; panics, JS exceptions and aborts at once and after an await (a timer, or a
// promise or thenable of the caller's, which may throw from `then`); nested calls; requested
// re-initialisations; methods of objects. After every sequence every call has settled, no call
// got another call's abort as its error's cause, no call is left followed, `Promise` is the
// platform's again, and the instance answers. Prints `real fuzz: N sequences, M calls`.
import { after, bump, fault, later, nested, requestReinit, Tally, wasmRecoveryStats } from "./lib/index.js";

const SEED = 1;
const SEQUENCES = 5000;
const SECONDS = 15;

const NativePromise = Promise;
const sleep = (ms) => new NativePromise((resolve) => setTimeout(resolve, ms));

/** mulberry32, as in fuzz.mjs. */
function prng(seed) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KINDS = ["ok", "ok", "panic", "js-throw", "abort"];
const GATES = ["promise", "thenable", "thenable-throws"];
const OPS = ["bump", "fault", "later", "later", "after", "after", "nested", "reinit", "tally"];

/** A gate for `after`: settles after a timer, or throws from `then`. */
function gate(kind) {
  if (kind === "promise") return new NativePromise((resolve) => setTimeout(resolve, 0));
  if (kind === "thenable") {
    // Calls Rust's callback from a timer: after an abort that callback belongs to a replaced
    // instance and throws (the glue refuses it), which this JavaScript swallows.
    return {
      then: (resolve) =>
        setTimeout(() => {
          try {
            resolve();
          } catch {
            // "Cannot invoke closure from previous WASM instance"
          }
        }, 0),
    };
  }
  return {
    then() {
      throw new TypeError("then threw");
    },
  };
}

async function sequence(seq, random) {
  const pick = (list) => list[Math.floor(random() * list.length)];
  const calls = [];
  const count = 1 + Math.floor(random() * 6);
  for (let i = 0; i < count; i++) {
    const op = pick(OPS);
    const kind = pick(KINDS);
    let label = `${op} ${kind}`;
    let run;
    switch (op) {
      case "bump":
        run = () => bump();
        break;
      case "fault":
        run = () => fault(kind);
        break;
      case "later":
        run = () => later(kind, Math.floor(random() * 2));
        break;
      case "after": {
        const g = pick(GATES);
        label += ` ${g}`;
        run = () => after(gate(g), kind);
        break;
      }
      case "nested":
        run = () =>
          nested(() => {
            try {
              fault(kind);
            } catch {
              // JavaScript between two Rust frames that catches the inner call's error.
            }
          });
        break;
      case "reinit":
        run = () => requestReinit();
        break;
      default:
        run = () => new Tally(i).fault(kind);
    }
    let promise;
    try {
      promise = NativePromise.resolve(run());
    } catch (error) {
      promise = NativePromise.reject(error);
    }
    promise.catch(() => {});
    calls.push({ label, promise });
    const wait = random();
    if (wait < 0.3) await null;
    else if (wait < 0.5) await sleep(0);
  }
  const pending = Symbol("pending");
  const deadline = sleep(3000).then(() => pending);
  const outcomes = await NativePromise.all(
    calls.map((c) => NativePromise.race([c.promise.then((value) => ({ value }), (error) => ({ error })), deadline])),
  );
  const where = () => `sequence ${seq}: ${calls.map((c) => c.label).join("; ")}`;
  outcomes.forEach((outcome, i) => {
    const label = calls[i].label;
    if (outcome === pending) throw new Error(`${label} never settled; ${where()}`);
    const error = outcome.error;
    if (error?.name === "WasmAbortError" && error.cause !== undefined && !/^(fault|nested|tally) abort/.test(label)) {
      throw new Error(`${label} got another call's abort as its cause (${error.cause}); ${where()}`);
    }
  });
  const stats = wasmRecoveryStats();
  if (stats.inFlight !== 0) throw new Error(`${stats.inFlight} call(s) still followed; ${where()}`);
  if (globalThis.Promise !== NativePromise) throw new Error(`Promise was left swapped; ${where()}`);
  if (typeof bump() !== "number") throw new Error(`the instance does not answer; ${where()}`);
  return calls.length;
}

export const realGlueFuzz = {
  async test() {
    const random = prng(SEED);
    const started = Date.now();
    let sequences = 0;
    let calls = 0;
    while (sequences < SEQUENCES && Date.now() - started < SECONDS * 1000) {
      calls += await sequence(sequences, random);
      sequences += 1;
    }
    console.log(`real fuzz: ${sequences} sequences, ${calls} calls (seed ${SEED}) in ${Date.now() - started} ms`);
  },
};
