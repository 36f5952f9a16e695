// The JavaScript Worker in src/index.js, called in the Workers runtime through its own fetch
// handler, and the Rust library it imports, called directly.
import { exports } from "cloudflare:workers";
import { expect, it } from "vitest";
import { Counter, greet } from "../build/index.js";

async function get(path) {
  const response = await exports.default.fetch(`http://localhost${path}`);
  return { status: response.status, body: await response.text() };
}

it("the Worker counts visits, answers 500 on a panic and keeps the count", async () => {
  const hello = (n) => ({ status: 200, body: `Hello, Ferris, from Rust! Visits: ${n}\n` });
  expect(await get("/?name=Ferris")).toEqual(hello(1));
  expect(await get("/?name=Ferris")).toEqual(hello(2));

  // The Rust method panics; the Worker catches the PanicError and answers 500.
  const panic = await get("/panic");
  expect(panic.status).toBe(500);
  expect(panic.body).toMatch(/^Rust panicked: .*panics on purpose/);

  // The library lived on, with its state: the count is where it was.
  expect(await get("/state")).toEqual({ status: 200, body: "Visits: 2\n" });
  expect(await get("/?name=Ferris")).toEqual(hello(3));
});

it("a panic in the library is a PanicError for that one call", () => {
  const counter = new Counter();
  expect(counter.visit()).toBe(1);
  expect(() => counter.panicOnPurpose()).toThrow(expect.objectContaining({ name: "PanicError" }));
  expect(counter.visits()).toBe(1);
  expect(counter.visit()).toBe(2);
  expect(greet("Ferris")).toBe("Hello, Ferris, from Rust!");
});
