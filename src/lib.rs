//! cargo-worker-build: turns a wasm-bindgen crate into a Cloudflare Worker bundle whose panics
//! unwind (one failed request) and whose aborts recover (a fresh instance for the next request).
//!
//! The pipeline, one module per stage: [`plan`] resolves everything up front, then
//! [`toolchain`] -> [`cargo`] -> [`bindgen`] -> optimise ([`opt`]) -> [`bundle`] (entry +
//! recovery runtime + glue in one ES module, with [`esbuild`]; [`minify`] decides its form) ->
//! [`check`] (when asked).

pub mod bindgen;
pub mod bundle;
pub mod cache;
pub mod cargo;
pub mod check;
pub mod cli;
pub mod compat;
pub mod errors;
pub mod esbuild;
pub mod exports;
pub mod fs;
pub mod minify;
pub mod model;
pub mod node;
pub mod opt;
pub mod pipeline;
pub mod plan;
pub mod process;
pub mod scaffold;
pub mod size;
pub mod term;
pub mod toolcache;
pub mod toolchain;
pub mod tools;
pub mod workspace;
