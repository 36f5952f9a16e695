// The Worker, in JavaScript. It uses the Rust library in src/lib.rs, which
// `cargo worker-build --release --lib --unwind` builds into build/index.js.
import { greet, Counter } from "../build/index.js";

// Made on first use and kept for the life of the isolate, like any module-level state.
let counter;

export default {
  async fetch(request) {
    counter ??= new Counter();
    const url = new URL(request.url);
    switch (url.pathname) {
      case "/": {
        const name = url.searchParams.get("name") ?? "World";
        return new Response(`${greet(name)} Visits: ${counter.visit()}\n`);
      }
      case "/state":
        return new Response(`Visits: ${counter.visits()}\n`);
      case "/panic":
        try {
          counter.panicOnPurpose();
          return new Response("No panic?\n");
        } catch (error) {
          // A Rust panic arrives as an Error named "PanicError". Only that one call failed:
          // the counter and the rest of the library keep working.
          if (error.name === "PanicError") {
            return new Response(`Rust panicked: ${error.message}\n`, { status: 500 });
          }
          throw error;
        }
      default:
        return new Response("Not found: try /, /state or /panic\n", { status: 404 });
    }
  },
};
