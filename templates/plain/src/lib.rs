//! A Cloudflare Worker with plain wasm-bindgen and web-sys (no `worker` crate): the smallest
//! bundle. Built by `cargo worker-build --unwind`, which makes the exported `fetch` the Worker's
//! fetch handler.
//!
//! Routes:
//! - `GET /` greets and counts the visit;
//! - `GET /state` shows the count without changing it;
//! - `GET /panic` panics. With `--unwind` that request fails with status 500, and the Worker
//!   keeps serving with its state intact: `/state` still shows the same count.

use std::sync::atomic::{AtomicU32, Ordering};

use wasm_bindgen::prelude::*;
use web_sys::{Request, Response, ResponseInit, Url};

/// Lives as long as the Wasm instance. A panic under `--unwind` leaves it alone; a panic=abort
/// build would lose it (and the instance) on the first panic.
static VISITS: AtomicU32 = AtomicU32::new(0);

/// The Worker's fetch handler: `export default { fetch }` in the bundle calls it with the
/// request, the environment (bindings) and the execution context.
#[wasm_bindgen]
pub fn fetch(req: Request, _env: JsValue, _ctx: JsValue) -> Result<Response, JsValue> {
    let path = Url::new(&req.url())?.pathname();
    match path.as_str() {
        "/" => {
            let visits = VISITS.fetch_add(1, Ordering::Relaxed) + 1;
            text(200, &format!("Hello from Rust! Visits: {visits}\n"))
        }
        "/state" => text(
            200,
            &format!("Visits: {}\n", VISITS.load(Ordering::Relaxed)),
        ),
        "/panic" => panic!("this route panics on purpose, to show that the Worker recovers"),
        _ => text(404, "Not found: try /, /state or /panic\n"),
    }
}

fn text(status: u16, body: &str) -> Result<Response, JsValue> {
    let init = ResponseInit::new();
    init.set_status(status);
    Response::new_with_opt_str_and_init(Some(body), &init)
}
