//! What the crate exports to JavaScript, so the entry can wire handlers, RPC functions, classes
//! and other values by name.
//!
//! The glue's export names come from esbuild's parse of the glue (its metafile), never from a
//! text search. Whether a name is a function or a class comes from the module wasm-bindgen
//! wrote (read with wasmparser): a free function is exported under its own name, a class `Foo`
//! as `__wbg_foo_free` (plus `foo_<method>` members, which the glue does not export). Names are
//! never sorted by prefix, so `tally_sum` next to a class `Tally` is a function.

use std::collections::BTreeSet;

use anyhow::{Context, Result};

/// Handler names a Worker entry dispatches to, in the order the runtime documents them.
pub const HANDLERS: &[&str] = &["fetch", "scheduled", "queue", "email", "tail", "trace"];

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Exports {
    /// Exported free functions that are Worker handlers (`fetch`, `scheduled`, ...).
    pub handlers: Vec<String>,
    /// Other exported free functions (RPC methods of the entrypoint; library functions).
    pub functions: Vec<String>,
    /// Exported classes with their JavaScript names.
    pub classes: Vec<String>,
    /// Other exports of the glue (enums as frozen objects): re-exported as they are by a library.
    #[serde(default)]
    pub values: Vec<String>,
}

/// The function export names of a wasm-bindgen output module.
pub fn module_functions(wasm: &[u8]) -> Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let wasmparser::Payload::ExportSection(reader) =
            payload.context("the module wasm-bindgen wrote is not valid WebAssembly")?
        {
            for export in reader {
                let export = export.context("the module's export section is malformed")?;
                if export.kind == wasmparser::ExternalKind::Func {
                    names.insert(export.name.to_string());
                }
            }
        }
    }
    Ok(names)
}

/// Sort the glue's export names (`glue_exports`) by what the module exports (`wasm`).
pub fn read(wasm: &[u8], glue_exports: &[String]) -> Result<Exports> {
    Ok(classify(&module_functions(wasm)?, glue_exports))
}

/// Every glue export lands in exactly one list, except `__`-prefixed plumbing
/// (`__wbg_reset_state`), which the runtime uses itself.
pub fn classify(module: &BTreeSet<String>, glue_exports: &[String]) -> Exports {
    let mut exports = Exports::default();
    for name in glue_exports {
        if name.starts_with("__") {
            continue;
        }
        if module.contains(name) {
            if HANDLERS.contains(&name.as_str()) {
                exports.handlers.push(name.clone());
            } else {
                exports.functions.push(name.clone());
            }
        } else if module.contains(&format!("__wbg_{}_free", name.to_lowercase())) {
            exports.classes.push(name.clone());
        } else {
            exports.values.push(name.clone());
        }
    }
    exports
        .handlers
        .sort_by_key(|h| HANDLERS.iter().position(|x| x == h));
    for list in [
        &mut exports.functions,
        &mut exports.classes,
        &mut exports.values,
    ] {
        list.sort();
        list.dedup();
    }
    exports
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn module(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn handlers_functions_classes_and_values_are_told_apart() {
        let exports = classify(
            &module(&[
                "fetch",
                "scheduled",
                "greet",
                "__wbg_counter_free",
                "counter_new",
                "counter_increment",
                "__wbindgen_malloc",
                "__wbindgen_start",
                "__wbg_reset_state",
                "init",
            ]),
            &names(&[
                "Color",
                "Counter",
                "__wbg_reset_state",
                "fetch",
                "greet",
                "scheduled",
            ]),
        );
        assert_eq!(exports.handlers, ["fetch", "scheduled"]);
        assert_eq!(exports.functions, ["greet"], "only what the glue exports");
        assert_eq!(exports.classes, ["Counter"]);
        assert_eq!(exports.values, ["Color"]);
    }

    #[test]
    fn a_function_named_like_a_class_member_is_a_function() {
        let exports = classify(
            &module(&["__wbg_tally_free", "tally_new", "tally_add", "tally_sum"]),
            &names(&["Tally", "tally_sum"]),
        );
        assert_eq!(exports.classes, ["Tally"]);
        assert_eq!(exports.functions, ["tally_sum"]);
    }

    #[test]
    fn a_class_and_a_function_that_differ_in_case_are_both_kept() {
        let exports = classify(
            &module(&["__wbg_tally_free", "tally"]),
            &names(&["Tally", "tally"]),
        );
        assert_eq!(exports.classes, ["Tally"]);
        assert_eq!(exports.functions, ["tally"]);
    }

    #[test]
    fn class_spelling_comes_from_the_glue() {
        let exports = classify(
            &module(&["__wbg_mydurableobject_free", "mydurableobject_fetch"]),
            &names(&["MyDurableObject"]),
        );
        assert_eq!(exports.classes, ["MyDurableObject"]);
        assert!(
            exports.handlers.is_empty(),
            "a class's fetch method is not the Worker's fetch"
        );
    }

    #[test]
    fn real_module_exports_are_read() {
        let wasm = wat::parse_str(
            r#"(module
                (func (export "fetch"))
                (func (export "__wbg_counter_free") (param i32))
                (func (export "counter_new") (result i32) i32.const 0)
                (memory (export "memory") 1)
                (global (export "__instance_terminated") i32 (i32.const 0)))"#,
        )
        .unwrap();
        let exports = read(&wasm, &names(&["Counter", "fetch"])).unwrap();
        assert_eq!(
            exports,
            Exports {
                handlers: names(&["fetch"]),
                classes: names(&["Counter"]),
                ..Exports::default()
            }
        );
    }

    #[test]
    fn a_broken_module_is_an_error_not_a_panic() {
        assert!(read(b"\0asm\x01\0\0\0\x07\xff\xff", &[]).is_err());
    }
}
