//! A Worker with a Durable Object, built by `cargo worker-build --unwind`.
//!
//! The Worker sends every request to one `Counter` object, named "main". The object keeps its
//! count in memory, in an ordinary field:
//! - `GET /` adds one and answers the new count;
//! - `GET /state` answers the count without changing it;
//! - `GET /panic` panics inside the object. With `--unwind` that request fails with status 500
//!   and the object lives on with its count: `/state` answers the same number as before.
//!   A panic=abort build would lose the object, its count and every request waiting on it.

use std::cell::Cell;
use std::panic::RefUnwindSafe;

use worker::*;

#[durable_object]
pub struct Counter {
    /// `fetch` gets `&self`, so the count needs interior mutability.
    count: Cell<u64>,
}

// Under panic=unwind, wasm-bindgen catches panics in the object's methods, and a type whose
// `&self` methods are exported must be `RefUnwindSafe`: after a panic the object is used again,
// so it must not be left half-updated. `Cell` is not `RefUnwindSafe` by default, but a `Cell<u64>`
// is only ever replaced whole, so the count is always consistent, and saying so here is sound.
// For state that a panic could leave half-changed (a `RefCell<Vec<_>>` mid-edit, say), finish
// or undo the change before anything that can panic, or rebuild the state after a panic.
impl RefUnwindSafe for Counter {}

impl DurableObject for Counter {
    fn new(_state: State, _env: Env) -> Self {
        Self {
            count: Cell::new(0),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        match req.path().as_str() {
            "/" => {
                let count = self.count.get() + 1;
                self.count.set(count);
                Response::ok(format!("Count: {count}\n"))
            }
            "/state" => Response::ok(format!("Count: {}\n", self.count.get())),
            "/panic" => panic!("this route panics on purpose, to show that the object recovers"),
            _ => Response::error("Not found: try /, /state or /panic\n", 404),
        }
    }
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let counter = env.durable_object("COUNTER")?.get_by_name("main")?;
    counter.fetch_with_request(req).await
}
