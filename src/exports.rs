//! What the crate exports to JavaScript, read from the module wasm-bindgen wrote (with
//! wasmparser), so the entry can wire handlers, RPC functions and classes by name.
//!
//! wasm-bindgen exports free functions under their JavaScript names, and a class `Foo` as
//! `__wbg_foo_free` plus `foo_<method>` members: the module has every name, but a class's name
//! only in lower case. The module also exports functions only the glue calls (closure
//! trampolines, start functions). So the module says what exists, and the glue's top-level
//! `export function` / `export class` declarations say what JavaScript can see and how a
//! class is spelled; a name must be in both.

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
    let glue = glue_declarations(glue_js);
    Ok(classify(&names, &glue.classes, &glue.functions))
}

/// Sort function export names into handlers, functions and classes.
pub fn classify(names: &[String], glue_classes: &[String], glue_functions: &[String]) -> Exports {
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
        let internal = name.starts_with("__") || !glue_functions.contains(name);
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

#[derive(Debug, Default, PartialEq, Eq)]
struct GlueDeclarations {
    classes: Vec<String>,
    functions: Vec<String>,
}

/// Names declared by top-level `export class Name` and `export function name` statements in
/// wasm-bindgen's glue (it writes each at the start of a line).
fn glue_declarations(glue_js: &str) -> GlueDeclarations {
    let ident = |rest: &str| -> Option<String> {
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
            .collect();
        (!name.is_empty()).then_some(name)
    };
    let mut out = GlueDeclarations::default();
    for line in glue_js.lines() {
        if let Some(rest) = line.strip_prefix("export class ") {
            out.classes.extend(ident(rest));
        } else if let Some(rest) = line
            .strip_prefix("export function ")
            .or_else(|| line.strip_prefix("export async function "))
        {
            out.functions.extend(ident(rest));
        }
    }
    out
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
                "init",
                "wasm_bindgen__convert__closures_____invoke__h0123",
            ]),
            &names(&["Counter"]),
            &names(&["fetch", "scheduled", "greet", "__wbg_reset_state"]),
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
            &[],
        );
        assert_eq!(exports.classes, ["MyDurableObject"]);
        assert!(
            exports.handlers.is_empty(),
            "a class's fetch method is not the Worker's fetch"
        );
    }

    #[test]
    fn glue_declarations_are_read_from_top_level_lines_only() {
        let glue = "export class Counter {\n  static __wrap(ptr) {}\n}\n// export class NotThis\nexport function fetch(a) {}\n  export function nested() {}\nexport class $Weird_1 {}\n";
        let d = glue_declarations(glue);
        assert_eq!(d.classes, ["Counter", "$Weird_1"]);
        assert_eq!(d.functions, ["fetch"]);
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
        let exports = read(
            &wasm,
            "export class Counter {}\nexport function fetch() {}\n",
        )
        .unwrap();
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
