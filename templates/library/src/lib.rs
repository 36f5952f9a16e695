//! A Rust library for a JavaScript Worker. `cargo worker-build --lib --unwind` builds it into
//! `build/index.js`, which `src/index.js` (the Worker) imports. Every export gets the same
//! protection as a Rust Worker: a panic becomes a JavaScript `Error` named `PanicError` for that
//! one call, and the library keeps its state and keeps working.

use std::cell::Cell;
use std::panic::RefUnwindSafe;

use wasm_bindgen::prelude::*;

/// A greeting, to show a plain function export.
#[wasm_bindgen]
pub fn greet(name: &str) -> String {
    format!("Hello, {name}, from Rust!")
}

/// A counter that JavaScript creates with `new Counter()`.
#[wasm_bindgen]
pub struct Counter {
    visits: Cell<u32>,
}

// Under panic=unwind, wasm-bindgen catches panics in every method, and a method that takes `&self`
// needs its type to be `RefUnwindSafe`: after a panic the object is still used, so it must not be
// left half-updated. `Cell` is not `RefUnwindSafe` by default, but a `Cell<u32>` is only ever
// replaced whole, so this counter is always consistent, and saying so here is sound. For state that
// a panic could leave half-changed, keep the panic out of the update or reset the state instead.
impl RefUnwindSafe for Counter {}

#[wasm_bindgen]
impl Counter {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Counter {
        Counter {
            visits: Cell::new(0),
        }
    }

    /// Counts one visit and returns the new count.
    pub fn visit(&self) -> u32 {
        let visits = self.visits.get() + 1;
        self.visits.set(visits);
        visits
    }

    /// The count, unchanged.
    pub fn visits(&self) -> u32 {
        self.visits.get()
    }

    /// Panics, to show that JavaScript gets a `PanicError` and the counter lives on.
    #[wasm_bindgen(js_name = panicOnPurpose)]
    pub fn panic_on_purpose(&self) {
        panic!("this method panics on purpose, to show that the library recovers")
    }
}

impl Default for Counter {
    fn default() -> Self {
        Self::new()
    }
}
