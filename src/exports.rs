//! What the crate exports to JavaScript, read from the module wasm-bindgen wrote (with
//! wasmparser), so the entry can wire handlers, RPC functions and classes by name.
//!
//! wasm-bindgen exports free functions under their JavaScript names, and a class `Foo` as
//! `__wbg_foo_free` plus `foo_<method>` members: the module has every name, but a class's name
//! only in lower case. Its exact spelling is taken from the glue's `export class` declaration
//! that lower-cases to it; the module stays the authority on which classes exist.

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
}

/// Read the exports of a wasm-bindgen output module; `glue_js` gives classes their spelling.
pub fn read(wasm: &[u8], glue_js: &str) -> Result<Exports> {
    let mut names = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let wasmparser::Payload::ExportSection(reader) =
            payload.context("the module wasm-bindgen wrote is not valid WebAssembly")?
        {
            for export in reader {
                let export = export.context("the module's export section is malformed")?;
                if export.kind == wasmparser::ExternalKind::Func {
                    names.push(export.name.to_string());
                }
            }
        }
    }
    Ok(classify(&names, &glue_class_names(glue_js)))
}

/// Sort function export names into handlers, functions and classes.
pub fn classify(names: &[String], glue_classes: &[String]) -> Exports {
    let class_keys: BTreeSet<&str> = names
        .iter()
        .filter_map(|n| n.strip_prefix("__wbg_")?.strip_suffix("_free"))
        .collect();
    let mut exports = Exports::default();
    for key in &class_keys {
        let spelled = glue_classes
            .iter()
            .find(|c| c.to_lowercase() == *key)
            .cloned();
        // A class the glue does not declare is not reachable from JavaScript; skip it.
        if let Some(name) = spelled {
            exports.classes.push(name);
        }
    }
    for name in names {
        let internal = name.starts_with("__") || name == "main";
        let member = class_keys.iter().any(|k| {
            name.strip_prefix(k)
                .is_some_and(|rest| rest.starts_with('_'))
        });
        if internal || member {
            continue;
        }
        if HANDLERS.contains(&name.as_str()) {
            exports.handlers.push(name.clone());
        } else {
            exports.functions.push(name.clone());
        }
    }
    exports
        .handlers
        .sort_by_key(|h| HANDLERS.iter().position(|x| x == h));
    exports.functions.sort();
    exports.functions.dedup();
    exports
}

/// Names declared by top-level `export class Name` statements in wasm-bindgen's glue.
fn glue_class_names(glue_js: &str) -> Vec<String> {
    glue_js
        .lines()
        .filter_map(|line| line.strip_prefix("export class "))
        .filter_map(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn handlers_functions_and_classes_are_told_apart() {
        let exports = classify(
            &names(&[
                "fetch",
                "scheduled",
                "greet",
                "__wbg_counter_free",
                "counter_new",
                "counter_increment",
                "__wbindgen_malloc",
                "__wbindgen_start",
                "__wbg_reset_state",
                "__instance_terminated",
            ]),
            &names(&["Counter"]),
        );
        assert_eq!(exports.handlers, ["fetch", "scheduled"]);
        assert_eq!(exports.functions, ["greet"]);
        assert_eq!(exports.classes, ["Counter"]);
    }

    #[test]
    fn class_spelling_comes_from_the_glue() {
        let exports = classify(
            &names(&["__wbg_mydurableobject_free", "mydurableobject_fetch"]),
            &names(&["MyDurableObject"]),
        );
        assert_eq!(exports.classes, ["MyDurableObject"]);
        assert!(
            exports.handlers.is_empty(),
            "a class's fetch method is not the Worker's fetch"
        );
    }

    #[test]
    fn glue_class_declarations_are_read_from_top_level_lines_only() {
        let glue = "export class Counter {\n  static __wrap(ptr) {}\n}\n// export class NotThis\nexport function fetch(a) {}\nexport class $Weird_1 {}\n";
        assert_eq!(glue_class_names(glue), ["Counter", "$Weird_1"]);
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
        let exports = read(&wasm, "export class Counter {}\n").unwrap();
        assert_eq!(
            exports,
            Exports {
                handlers: names(&["fetch"]),
                functions: vec![],
                classes: names(&["Counter"])
            }
        );
    }

    #[test]
    fn a_broken_module_is_an_error_not_a_panic() {
        assert!(read(b"\0asm\x01\0\0\0\x07\xff\xff", "").is_err());
    }
}
