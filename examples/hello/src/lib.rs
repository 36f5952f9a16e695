//! A Cloudflare Worker in Rust, built by `cargo worker-build --unwind`.
//!
//! Routes:
//! - `GET /` greets and counts the visit;
//! - `GET /state` shows the count without changing it;
//! - `GET /panic` panics. With `--unwind` that request fails with status 500, and the Worker
//!   keeps serving with its state intact: `/state` still shows the same count.

use std::sync::atomic::{AtomicU32, Ordering};

use worker::*;

/// Lives as long as the Wasm instance. A panic under `--unwind` leaves it alone; a panic=abort
/// build would lose it (and the instance) on the first panic.
static VISITS: AtomicU32 = AtomicU32::new(0);

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    Router::new()
        .get("/", hello)
        .get("/state", state)
        .get("/panic", panic_on_purpose)
        .run(req, env)
        .await
}

fn hello(_req: Request, _ctx: RouteContext<()>) -> Result<Response> {
    let visits = VISITS.fetch_add(1, Ordering::Relaxed) + 1;
    Response::ok(format!("Hello from Rust! Visits: {visits}\n"))
}

fn state(_req: Request, _ctx: RouteContext<()>) -> Result<Response> {
    Response::ok(format!("Visits: {}\n", VISITS.load(Ordering::Relaxed)))
}

fn panic_on_purpose(_req: Request, _ctx: RouteContext<()>) -> Result<Response> {
    panic!("this route panics on purpose, to show that the Worker recovers")
}
