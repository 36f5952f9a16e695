// The Worker's routes, called in the Workers runtime through the Worker's own fetch handler.
// Every request goes to the one `Counter` Durable Object, named "main".
import { exports } from "cloudflare:workers";
import { expect, it } from "vitest";

async function get(path) {
  const response = await exports.default.fetch(`http://localhost${path}`);
  return { status: response.status, body: await response.text() };
}

it("counts in the Durable Object, answers 500 on a panic and keeps the count", async () => {
  expect(await get("/")).toEqual({ status: 200, body: "Count: 1\n" });
  expect(await get("/")).toEqual({ status: 200, body: "Count: 2\n" });

  // The object's fetch panics; with --unwind only this request fails.
  expect((await get("/panic")).status).toBe(500);

  // The object lived on with its in-memory field: the count is where it was.
  expect(await get("/state")).toEqual({ status: 200, body: "Count: 2\n" });
  expect(await get("/")).toEqual({ status: 200, body: "Count: 3\n" });
});
