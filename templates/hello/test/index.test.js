// The Worker's routes, called in the Workers runtime through the Worker's own fetch handler.
import { exports } from "cloudflare:workers";
import { expect, it } from "vitest";

async function get(path) {
  const response = await exports.default.fetch(`http://localhost${path}`);
  return { status: response.status, body: await response.text() };
}

it("counts visits, fails only the panicking request and keeps the count", async () => {
  expect(await get("/")).toEqual({ status: 200, body: "Hello from Rust! Visits: 1\n" });
  expect(await get("/")).toEqual({ status: 200, body: "Hello from Rust! Visits: 2\n" });

  // The handler panics; with --unwind only this request fails. Called in-process like this, the
  // fetch handler's promise rejects with the panic; workerd answers an HTTP client's request
  // that ends so with status 500 (try `npm run dev`, then `curl -i localhost:8787/panic`).
  await expect(get("/panic")).rejects.toMatchObject({
    name: "PanicError",
    message: expect.stringContaining("panics on purpose"),
  });

  // The Wasm instance lived on, with its memory: the count is where it was.
  expect(await get("/state")).toEqual({ status: 200, body: "Visits: 2\n" });
  expect(await get("/")).toEqual({ status: 200, body: "Hello from Rust! Visits: 3\n" });
});
