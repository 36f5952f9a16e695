//! Short import names for minified bundles.
//!
//! wasm-bindgen names each function the module imports from the glue `__wbg_<name>_<16 hex>`.
//! The name is spelled twice in the bundle, once in the module's import section and once as a
//! key of the glue's import object, and the hashes do not compress. A minified build renames
//! every such import to a one- or two-character name, with one mapping applied to both sides:
//!
//! - the names come from the module's import section (read with wasmparser), and only those
//!   esbuild itself finds as property names in the glue (a parse of the glue with
//!   `--mangle-props` set to exactly these names: the mangle cache it writes lists what it found);
//! - the module gets the new names here, before wasm-opt and the symbol map read it, so every
//!   offset in the map is one of the shipped module (only the import section is rewritten;
//!   every other section is copied byte for byte);
//! - the glue gets them when the bundle is written: esbuild's `--mangle-props` with the same
//!   exact names and a mangle cache holding the mapping, which esbuild's own cache output is
//!   then checked against.
//!
//! Imports the recovery runtime finds by name ([`KEPT_PREFIXES`]) and imports that are not
//! functions (wasm-bindgen's tags, which the check reads) keep their names. Dev builds and
//! unminified ones are not renamed, so their names stay readable.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};
use wasm_encoder::reencode::{Reencode, RoundtripReencoder};

/// Prefixes of import names that `src/runtime/runtime.js` looks up in the module's import list
/// (`WebAssembly.Module.imports`) to route them: imports with these names are never renamed.
pub const KEPT_PREFIXES: &[&str] = &["__wbg___wbindgen_reinit_", "__wbg_queueMicrotask_"];

/// The longest `--mangle-props` expression passed to esbuild (one command-line argument, which
/// Linux caps at 128 KiB): names past it keep their long form.
const MAX_PATTERN: usize = 96 * 1024;

/// Old import name -> new one, for the module and the glue alike.
pub type Renames = BTreeMap<String, String>;

/// Function imports of `wasm` that may be renamed, in import order, and every import name
/// (renamed ones must not collide with any).
fn candidates(wasm: &[u8]) -> Result<(Vec<String>, BTreeSet<String>)> {
    let mut renamable = Vec::new();
    let mut all = BTreeSet::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let wasmparser::Payload::ImportSection(reader) =
            payload.context("the module wasm-bindgen wrote is not valid WebAssembly")?
        {
            for import in reader.into_imports() {
                let import = import.context("the module's import section is malformed")?;
                all.insert(import.name.to_string());
                if matches!(import.ty, wasmparser::TypeRef::Func(_))
                    && is_identifier(import.name)
                    && !KEPT_PREFIXES.iter().any(|p| import.name.starts_with(p))
                    && !renamable.iter().any(|n| n == import.name)
                {
                    renamable.push(import.name.to_string());
                }
            }
        }
    }
    Ok((renamable, all))
}

/// An ASCII JavaScript identifier: what wasm-bindgen writes as an unquoted key.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// The `i`-th shortest identifier: `a`..`Z`, `_`, `$`, then two characters, and so on.
fn short_name(mut i: usize) -> String {
    const FIRST: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_$";
    const REST: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_$0123456789";
    let mut name = vec![FIRST[i % FIRST.len()]];
    i /= FIRST.len();
    while i > 0 {
        i -= 1;
        name.push(REST[i % REST.len()]);
        i /= REST.len();
    }
    String::from_utf8(name).expect("ASCII")
}

/// Pick short names for `found` (in order), avoiding every name in `taken`.
fn assign(found: &[String], taken: &BTreeSet<String>) -> Renames {
    let mut renames = Renames::new();
    let mut next = 0;
    for name in found {
        let short = loop {
            let candidate = short_name(next);
            next += 1;
            if !taken.contains(&candidate) && candidate != "__proto__" {
                break candidate;
            }
        };
        renames.insert(name.clone(), short);
    }
    renames
}

/// Rename the function imports of the module at `wasm` that the glue `glue` (a file in `dir`)
/// holds as properties, in the module, and return the mapping for the glue's bundling.
pub fn shorten(
    wasm: &Path,
    dir: &Path,
    glue: &str,
    esbuild: &crate::esbuild::Esbuild,
) -> Result<Renames> {
    let bytes = crate::fs::read(wasm)?;
    let (renamable, taken) = candidates(&bytes)?;
    let mut budget = MAX_PATTERN;
    let renamable: Vec<&str> = renamable
        .iter()
        .map(String::as_str)
        .take_while(|n| {
            budget = budget.saturating_sub(n.len() + 1);
            budget > 0
        })
        .collect();
    let Some(pattern) = crate::esbuild::exact_pattern(&renamable) else {
        return Ok(Renames::new());
    };
    let found = crate::esbuild::properties_of(esbuild, dir, glue, &pattern)?;
    let found: Vec<String> = renamable
        .iter()
        .filter(|n| found.contains(**n))
        .map(|n| n.to_string())
        .collect();
    let renames = assign(&found, &taken);
    if !renames.is_empty() {
        crate::fs::write(wasm, rename_imports(&bytes, &renames)?)?;
    }
    Ok(renames)
}

/// `wasm` with its imports renamed by `renames`; every section but the import section is
/// copied as it is.
pub fn rename_imports(wasm: &[u8], renames: &Renames) -> Result<Vec<u8>> {
    use wasmparser::{Parser, Payload};
    let mut module = wasm_encoder::Module::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.context("the module is not valid WebAssembly")?;
        if let Payload::ImportSection(reader) = &payload {
            let mut section = wasm_encoder::ImportSection::new();
            for import in reader.clone().into_imports() {
                let import = import.context("the module's import section is malformed")?;
                let name = renames.get(import.name).map_or(import.name, String::as_str);
                let ty = RoundtripReencoder.entity_type(import.ty).map_err(|e| {
                    anyhow::anyhow!("an import of the module cannot be re-encoded: {e}")
                })?;
                section.import(import.module, name, ty);
            }
            module.section(&section);
        } else if let Some((id, range)) = payload.as_section() {
            module.section(&wasm_encoder::RawSection {
                id,
                data: &wasm[range.start as usize..range.end as usize],
            });
        }
    }
    Ok(module.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODULE: &str = r#"(module
        (type $t (func (param i32) (result i32)))
        (import "./index_bg.js" "__wbg_get_0123456789abcdef" (func $get (type $t)))
        (import "./index_bg.js" "__wbg_queueMicrotask_fedcba9876543210" (func $tick (type $t)))
        (import "./index_bg.js" "odd-name" (func $odd (type $t)))
        (import "./index_bg.js" "__wbindgen_jstag" (tag $jstag (param externref)))
        (import "./index_bg.js" "a" (func $a (type $t)))
        (memory (export "memory") 1)
        (func (export "run") (param i32) (result i32)
          (call $get (call $tick (call $odd (call $a (local.get 0))))))
        (data (i32.const 8) "kept")
    )"#;

    fn imports(wasm: &[u8]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for payload in wasmparser::Parser::new(0).parse_all(wasm) {
            if let wasmparser::Payload::ImportSection(r) = payload.unwrap() {
                for i in r.into_imports() {
                    let i = i.unwrap();
                    out.push((i.module.to_string(), i.name.to_string()));
                }
            }
        }
        out
    }

    #[test]
    fn only_function_imports_the_runtime_does_not_hook_are_candidates() {
        let wasm = wat::parse_str(MODULE).unwrap();
        let (renamable, taken) = candidates(&wasm).unwrap();
        assert_eq!(renamable, ["__wbg_get_0123456789abcdef", "a"]);
        assert!(taken.contains("__wbindgen_jstag") && taken.contains("odd-name"));
        // `a` is taken by an import that keeps its name, so the first new name is `b`.
        let renames = assign(&["__wbg_get_0123456789abcdef".to_string()], &taken);
        assert_eq!(renames["__wbg_get_0123456789abcdef"], "b");
    }

    #[test]
    fn renaming_changes_the_import_section_only() {
        let wasm = wat::parse_str(MODULE).unwrap();
        let renames = Renames::from([("__wbg_get_0123456789abcdef".to_string(), "b".to_string())]);
        let renamed = rename_imports(&wasm, &renames).unwrap();
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(&renamed)
            .unwrap();
        let names: Vec<_> = imports(&renamed).into_iter().map(|(_, n)| n).collect();
        assert_eq!(
            names,
            [
                "b",
                "__wbg_queueMicrotask_fedcba9876543210",
                "odd-name",
                "__wbindgen_jstag",
                "a"
            ]
        );
        assert!(imports(&renamed).iter().all(|(m, _)| m == "./index_bg.js"));
        let saved = "__wbg_get_0123456789abcdef".len() - 1;
        assert_eq!(renamed.len(), wasm.len() - saved);
        // Every section after the imports is the same bytes.
        let tail = |w: &[u8]| {
            let start = wasmparser::Parser::new(0)
                .parse_all(w)
                .find_map(|p| match p.unwrap() {
                    wasmparser::Payload::FunctionSection(r) => Some(r.range().start - 2),
                    _ => None,
                })
                .unwrap() as usize;
            w[start..].to_vec()
        };
        assert_eq!(tail(&renamed), tail(&wasm));
    }

    #[test]
    fn short_names_are_distinct_identifiers() {
        let names: Vec<String> = (0..5000).map(short_name).collect();
        assert_eq!(&names[..3], ["a", "b", "c"]);
        assert_eq!(names[54], "aa");
        assert!(names.iter().all(|n| is_identifier(n)));
        assert_eq!(names.iter().collect::<BTreeSet<_>>().len(), names.len());
        assert!(names[..54].iter().all(|n| n.len() == 1));
        assert!(names[54..54 + 54 * 64].iter().all(|n| n.len() == 2));
    }

    #[test]
    fn every_wasm_bindgen_name_the_runtime_spells_keeps_its_name() {
        // The runtime hooks imports by prefix and reads exports by name; exports are never
        // renamed. A new import name in the runtime must be added to KEPT_PREFIXES.
        const EXPORTS: &[&str] = &[
            "__wbg_reset_state",
            "__wbindgen_externrefs",
            "__wbindgen_reinit",
        ];
        for source in [
            include_str!("runtime/runtime.js"),
            include_str!("runtime/entry.js"),
            include_str!("runtime/library.js"),
        ] {
            // String literals that are a whole name (JSDoc mentions in backticks are not code).
            for quote in ['"', '\''] {
                let opening = format!("{quote}__wb");
                for (at, _) in source.match_indices(&opening) {
                    let rest = &source[at + 1..];
                    let end = rest
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
                        .unwrap_or(rest.len());
                    if !rest[end..].starts_with(quote) {
                        continue;
                    }
                    let literal = &rest[..end];
                    assert!(
                        KEPT_PREFIXES.contains(&literal) || EXPORTS.contains(&literal),
                        "the runtime names `{literal}`: add it to imports::KEPT_PREFIXES if it is an import"
                    );
                }
            }
        }
    }
}
