//! The integration tests: one test binary (`cargo test --locked --test it`), one module per
//! area, sharing `support` (fixtures, the hermetic tool command, workerd, HTTP). Run one module
//! with `cargo test --locked --test it -- <module>::` and one test with
//! `cargo test --locked --test it -- <module>::<name> --exact`.

mod support;

mod book;
mod bundle;
mod cache;
mod check_bundle;
mod check_fuzz;
mod check_real;
mod check_wat;
mod ci_script;
mod cli;
mod cli_errors;
mod docs_sync;
mod e2e_build;
mod harnesses;
mod msrv;
mod opt;
mod real_world;
mod runtime_faults;
mod runtime_js;
mod runtime_load;
mod runtime_wrangler;
mod scaffold;
mod scaffold_cli;
mod scaffold_e2e;
mod symbols;
mod trust;
