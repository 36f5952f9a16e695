//! The symbol sidecar: which Rust function each code offset of the shipped module belongs to.
//!
//! Runtimes print a Wasm frame as `wasm-function[N]:0xOFF` (a function index and a byte offset
//! into the module file). The names that could explain it live in the module's name section,
//! which costs upload size, so a release build keeps them out of the module and writes them to
//! `index_bg.symbols.json` next to it instead: no import reaches that file, so wrangler does not
//! upload it. The map is read from the final module itself (wasm-opt runs with `-g` so the name
//! section survives optimisation; the section is removed afterwards), so every offset is exact
//! for the bytes that ship. `cargo worker-build symbolize` reads it.

pub mod lines;

use std::ops::Range;
use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

/// The sidecar's file name in the bundle directory.
pub const SIDECAR: &str = "index_bg.symbols.json";
/// Bump when the sidecar's shape changes.
pub const FORMAT: u32 = 5;

/// Most frames one code offset may name: real inline chains are a few dozen deep.
pub const MAX_CHAIN: usize = 1024;

/// Most bytes the chains may take once expanded (each chain holds its own copy of its frames),
/// so that a small crafted map cannot take gigabytes.
pub const MAX_EXPANDED: usize = 256 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sidecar {
    pub format: u32,
    /// Identifies the shipped module: the start of the SHA-256 of its bytes.
    pub build_id: String,
    /// The module's size in bytes.
    pub module_size: u64,
    /// What V8 (workerd, Node) prints after `wasm://wasm/` in this module's frames.
    pub v8_script_id: String,
    /// Functions with a body, by index (imports have none).
    pub functions: Vec<Function>,
    /// Source locations from the crate's DWARF, carried through wasm-opt as a source map:
    /// `[offset, chain]` pairs, sorted by offset; the chain (an index into `chains`) holds from
    /// that offset up to the next pair. Empty when the module had no DWARF.
    #[serde(default)]
    pub locations: Vec<(u64, u32)>,
    /// Inline chains: the innermost frame first, then the functions it was inlined into.
    /// Written as a tree of shared tails (chains share their callers), each frame once.
    #[serde(default, with = "compact")]
    pub chains: Vec<Vec<SourceFrame>>,
}

/// The sidecar's `locations` and `chains`.
pub type Lines = (Vec<(u64, u32)>, Vec<Vec<SourceFrame>>);

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SourceFrame {
    pub function: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Function {
    pub index: u32,
    /// Module-relative byte range of the body.
    pub start: u64,
    pub end: u64,
    /// Demangled, without the hash; `None` when the module had no name for it.
    pub name: Option<String>,
}

impl Sidecar {
    /// The function `index`, when `offset` lies in its body.
    pub fn function_at(&self, index: u32, offset: u64) -> Option<&Function> {
        let f = self
            .functions
            .binary_search_by_key(&index, |f| f.index)
            .ok()
            .map(|i| &self.functions[i])?;
        (f.start <= offset && offset < f.end).then_some(f)
    }

    /// The inline chain at `offset` of function `f`, when the map has one.
    pub fn chain_at(&self, f: &Function, offset: u64) -> Option<&[SourceFrame]> {
        let i = self.locations.partition_point(|(o, _)| *o <= offset);
        let (at, chain) = *self.locations.get(i.checked_sub(1)?)?;
        // u32::MAX: the code from `at` on has no location.
        (at >= f.start).then(|| self.chains.get(chain as usize).map(Vec::as_slice))?
    }
}

/// The functions whose `unreachable` trap is an abort of a known kind, by index: Rust's
/// out-of-memory handler, and the aborts of `std::process::abort`, a panic while panicking
/// (`panic_with_hook`) or a panic that cannot unwind. The runtime names a trap in one of them
/// by this kind instead of `unreachable`.
pub fn trap_kinds(map: &Sidecar) -> std::collections::BTreeMap<u32, &'static str> {
    const OUT_OF_MEMORY: &[&str] = &[
        "alloc::alloc::handle_alloc_error",
        "std::alloc::rust_oom",
        "std::alloc::default_alloc_error_hook",
        "__rdl_oom",
        "__rg_oom",
    ];
    const ABORT: &[&str] = &[
        "std::process::abort",
        "std::panicking::panic_with_hook",
        "core::panicking::panic_nounwind",
        "core::panicking::panic_nounwind_fmt",
        "core::panicking::panic_cannot_unwind",
        "core::panicking::panic_in_cleanup",
    ];
    map.functions
        .iter()
        .filter_map(|f| {
            let name = f.name.as_deref()?;
            let kind = if OUT_OF_MEMORY.contains(&name) {
                "out of memory"
            } else if ABORT.contains(&name) || name.ends_with("::abort_internal") {
                "abort"
            } else {
                return None;
            };
            Some((f.index, kind))
        })
        .collect()
}

/// The build id of a module: 16 hex digits of its SHA-256.
pub fn build_id(wasm: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(wasm))[..16].to_owned()
}

/// V8 names a module's script `wasm://wasm/<8 hex digits>`: the hash of its bytes, which for any
/// module over 16,383 bytes is derived from the length alone (`length << 2 | 2`).
pub fn v8_script_id(len: usize) -> Option<String> {
    (len > 16383).then(|| format!("{:08x}", ((len as u64) << 2 | 2) as u32))
}

/// A function name without the crate hash: `core::panicking::panic_fmt::h0123...` or its mangled
/// form become `core::panicking::panic_fmt`.
pub fn clean_name(raw: &str) -> String {
    let demangled = match rustc_demangle::try_demangle(raw) {
        Ok(d) => format!("{d:#}"),
        Err(_) => raw.to_string(),
    };
    // v0 names print each crate's disambiguator: `core[b1a56e2c75bceed0]::fmt`.
    let mut demangled = demangled;
    while let Some(open) = demangled.find('[') {
        let Some(len) = demangled[open + 1..].find(']') else {
            break;
        };
        let inner = &demangled[open + 1..open + 1 + len];
        if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_hexdigit()) {
            break;
        }
        demangled.replace_range(open..open + len + 2, "");
    }
    match demangled.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            head.to_string()
        }
        _ => demangled,
    }
}

/// Read the function bodies and names of `wasm`.
pub fn read(wasm: &[u8]) -> Result<Sidecar> {
    use wasmparser::{KnownCustom, Name, Parser, Payload};
    let mut imported = 0u32;
    let mut bodies: Vec<Range<u64>> = Vec::new();
    let mut names = std::collections::HashMap::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    if matches!(import?.ty, wasmparser::TypeRef::Func(_)) {
                        imported += 1;
                    }
                }
            }
            Payload::CodeSectionEntry(body) => bodies.push(body.range()),
            Payload::CustomSection(reader) => {
                if let KnownCustom::Name(section) = reader.as_known() {
                    for part in section {
                        // A damaged name section costs names, never the build.
                        let Ok(Name::Function(map)) = part else {
                            continue;
                        };
                        for naming in map.into_iter().flatten() {
                            names.insert(naming.index, clean_name(naming.name));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let functions = bodies
        .into_iter()
        .enumerate()
        .map(|(i, range)| {
            let index = imported + i as u32;
            Function {
                index,
                start: range.start,
                end: range.end,
                name: names.remove(&index),
            }
        })
        .collect();
    Ok(Sidecar {
        format: FORMAT,
        build_id: build_id(wasm),
        module_size: wasm.len() as u64,
        v8_script_id: v8_script_id(wasm.len()).unwrap_or_default(),
        functions,
        locations: Vec::new(),
        chains: Vec::new(),
    })
}

/// Functions reachable other than by a direct call: exported, in a table, or the start function.
pub fn entry_points(wasm: &[u8]) -> Result<std::collections::HashSet<u32>> {
    use wasmparser::{ElementItems, ExternalKind, Parser, Payload};
    let mut out = std::collections::HashSet::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export?;
                    if export.kind == ExternalKind::Func {
                        out.insert(export.index);
                    }
                }
            }
            Payload::StartSection { func, .. } => {
                out.insert(func);
            }
            Payload::ElementSection(reader) => {
                for element in reader {
                    match element?.items {
                        ElementItems::Functions(funcs) => {
                            for f in funcs {
                                out.insert(f?);
                            }
                        }
                        // Expressions (ref.func): treat every function they could name as
                        // reachable by being conservative about the whole segment.
                        ElementItems::Expressions(_, exprs) => {
                            for expr in exprs {
                                for op in expr?.get_operators_reader() {
                                    if let Ok(wasmparser::Operator::RefFunc { function_index }) = op
                                    {
                                        out.insert(function_index);
                                    }
                                }
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The module without its name section, when that section comes after the code (as every
/// tool writes it), so no code offset moves. `None` when there is nothing to remove.
pub fn without_names(wasm: &[u8]) -> Option<Vec<u8>> {
    without_custom_sections(wasm, |name| name == "name")
}

/// The module without the custom sections after the code whose name `drop` picks (sections
/// before the code are kept: removing them would move every code offset).
pub fn without_custom_sections(wasm: &[u8], drop: impl Fn(&str) -> bool) -> Option<Vec<u8>> {
    let mut pos = 8;
    let mut seen_code = false;
    let mut cuts: Vec<Range<usize>> = Vec::new();
    while pos < wasm.len() {
        let start = pos;
        let id = wasm[pos];
        pos += 1;
        let (size, n) = leb128(wasm.get(pos..)?)?;
        pos += n;
        let end = pos
            .checked_add(size as usize)
            .filter(|&e| e <= wasm.len())?;
        if id == 10 {
            seen_code = true;
        } else if id == 0 && seen_code {
            let (len, n) = leb128(wasm.get(pos..end)?)?;
            let name = wasm.get(pos + n..(pos + n).checked_add(len as usize)?)?;
            if std::str::from_utf8(name).is_ok_and(&drop) {
                cuts.push(start..end);
            }
        }
        pos = end;
    }
    if cuts.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(wasm.len());
    let mut last = 0;
    for cut in cuts {
        out.extend_from_slice(&wasm[last..cut.start]);
        last = cut.end;
    }
    out.extend_from_slice(&wasm[last..]);
    Some(out)
}

fn leb128(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Write the sidecar for the module at `wasm` into `dir`; with `strip_names`, first remove the
/// name section from the module (it was kept through wasm-opt only for this map).
pub fn write(dir: &Path, wasm: &Path, strip_names: bool, lines: Option<Lines>) -> Result<Sidecar> {
    let bytes = crate::fs::read(wasm)?;
    let named = read(&bytes)?;
    let shipped = match strip_names.then(|| without_names(&bytes)).flatten() {
        Some(stripped) => {
            crate::fs::write(wasm, &stripped)?;
            stripped
        }
        None => bytes,
    };
    let sidecar = Sidecar {
        build_id: build_id(&shipped),
        module_size: shipped.len() as u64,
        v8_script_id: v8_script_id(shipped.len()).unwrap_or_default(),
        ..named
    };
    let sidecar = match lines {
        Some((locations, chains)) => {
            let (locations, chains) = referenced_only(locations, chains);
            Sidecar {
                locations,
                chains,
                ..sidecar
            }
        }
        None => sidecar,
    };
    let mut json = serde_json::to_vec(&sidecar)?;
    json.push(b'\n');
    crate::fs::write(&dir.join(SIDECAR), json)?;
    Ok(sidecar)
}

/// Whether wasm-opt with these arguments keeps the module's name section.
pub fn opt_keeps_names(args: &[String]) -> bool {
    args.iter().any(|a| a == "-g" || a == "--debuginfo")
}

/// wasm-opt's arguments with `-g` (keep the name section) added unless the user's arguments
/// already keep names; says whether it was added (and so is ours to remove afterwards).
pub fn opt_args_keeping_names(args: &[String]) -> (Vec<String>, bool) {
    if opt_keeps_names(args) {
        return (args.to_vec(), false);
    }
    let mut with = args.to_vec();
    with.push("-g".into());
    (with, true)
}

/// Only the chains the locations use (wasm-opt removes code, and its chains with it).
fn referenced_only(locations: Vec<(u64, u32)>, chains: Vec<Vec<SourceFrame>>) -> Lines {
    let mut renumbered = std::collections::HashMap::new();
    let mut kept = Vec::new();
    let locations = locations
        .into_iter()
        .map(|(offset, chain)| {
            let Some(frames) = chains.get(chain as usize) else {
                return (offset, u32::MAX);
            };
            let id = *renumbered.entry(chain).or_insert_with(|| {
                kept.push(frames.clone());
                kept.len() as u32 - 1
            });
            (offset, id)
        })
        .collect();
    (locations, kept)
}

/// The chains as `{frames, nodes, heads}`: every distinct frame once, `nodes` as `[frame,
/// parent]` (parent `-1` at the outermost), each chain the node of its innermost frame.
mod compact {
    use std::collections::HashMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{SourceFrame, MAX_CHAIN, MAX_EXPANDED};

    #[derive(Serialize, Deserialize, Default)]
    struct Tree {
        frames: Vec<SourceFrame>,
        nodes: Vec<(u32, i64)>,
        heads: Vec<u32>,
    }

    pub fn serialize<S: Serializer>(chains: &[Vec<SourceFrame>], s: S) -> Result<S::Ok, S::Error> {
        let mut tree = Tree::default();
        let mut frame_ids: HashMap<&SourceFrame, u32> = HashMap::new();
        let mut node_ids: HashMap<(u32, i64), u32> = HashMap::new();
        for chain in chains {
            let mut parent = -1i64;
            for frame in chain.iter().rev() {
                let f = *frame_ids.entry(frame).or_insert_with(|| {
                    tree.frames.push(frame.clone());
                    tree.frames.len() as u32 - 1
                });
                let node = *node_ids.entry((f, parent)).or_insert_with(|| {
                    tree.nodes.push((f, parent));
                    tree.nodes.len() as u32 - 1
                });
                parent = i64::from(node);
            }
            tree.heads.push(u32::try_from(parent).unwrap_or(u32::MAX));
        }
        tree.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<SourceFrame>>, D::Error> {
        use serde::de::Error;
        let tree = Tree::deserialize(d)?;
        // The writer numbers a node after its parent, so each parent comes first: that rules
        // out cycles and self-references, and bounds every walk by the node's own index.
        for (i, &(frame, parent)) in tree.nodes.iter().enumerate() {
            if frame as usize >= tree.frames.len() {
                return Err(D::Error::custom(format!(
                    "damaged symbol map: node {i} names frame {frame}, but there are {} frames",
                    tree.frames.len()
                )));
            }
            if parent != -1 && !(0..i as i64).contains(&parent) {
                return Err(D::Error::custom(format!(
                    "damaged symbol map: node {i} has parent {parent}, which is not an earlier node"
                )));
            }
        }
        let size = |f: &SourceFrame| {
            std::mem::size_of::<SourceFrame>()
                + f.function.as_ref().map_or(0, String::len)
                + f.file.as_ref().map_or(0, String::len)
        };
        let mut expanded = 0usize;
        let mut chains = Vec::with_capacity(tree.heads.len().min(MAX_EXPANDED / 64));
        for head in tree.heads {
            let mut chain = Vec::new();
            // u32::MAX: a chain without frames.
            if head != u32::MAX {
                let Some(&(mut frame, mut parent)) = tree.nodes.get(head as usize) else {
                    return Err(D::Error::custom(format!(
                        "damaged symbol map: a chain starts at node {head}, but there are {} nodes",
                        tree.nodes.len()
                    )));
                };
                loop {
                    let f = &tree.frames[frame as usize];
                    expanded += size(f);
                    if chain.len() == MAX_CHAIN || expanded > MAX_EXPANDED {
                        return Err(D::Error::custom(format!(
                            "symbol map too large: its chains name more than {MAX_CHAIN} frames at \
                             one offset or take more than {} MiB",
                            MAX_EXPANDED >> 20
                        )));
                    }
                    chain.push(f.clone());
                    let Ok(up) = usize::try_from(parent) else {
                        break;
                    };
                    (frame, parent) = tree.nodes[up];
                }
            }
            chains.push(chain);
        }
        Ok(chains)
    }
}

/// The sidecar in a bundle directory, or why there is no usable one (missing, not JSON, or
/// damaged: one line).
pub fn read_sidecar(dir: &Path) -> std::result::Result<Sidecar, String> {
    let path = dir.join(SIDECAR);
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// The sidecar in a bundle directory, if there is a readable one.
pub fn load(dir: &Path) -> Option<Sidecar> {
    read_sidecar(dir).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module() -> Vec<u8> {
        wat::parse_str(
            r#"(module
                (import "env" "f" (func $imp))
                (func $_ZN7fixture5inner17h0123456789abcdefE (result i32) i32.const 1)
                (func $plain (result i32) unreachable)
                (export "plain" (func $plain)))"#,
        )
        .unwrap()
    }

    #[test]
    fn names_are_demangled_without_hashes_and_indexed_after_imports() {
        let s = read(&module()).unwrap();
        assert_eq!(s.functions.len(), 2);
        assert_eq!(s.functions[0].index, 1);
        assert_eq!(s.functions[0].name.as_deref(), Some("fixture::inner"));
        assert_eq!(s.functions[1].name.as_deref(), Some("plain"));
        assert_eq!(
            clean_name("core::panicking::panic::h0123456789abcdef"),
            "core::panicking::panic"
        );
        assert_eq!(clean_name("main"), "main");
        assert_eq!(
            clean_name("<dlmalloc[71df60a1a79aab31]::Dlmalloc<dlmalloc[71df60a1a79aab31]::System>>::malloc"),
            "<dlmalloc::Dlmalloc<dlmalloc::System>>::malloc"
        );
    }

    #[test]
    fn stripping_names_keeps_every_code_offset() {
        let wasm = module();
        let stripped = without_names(&wasm).expect("has a name section");
        assert!(stripped.len() < wasm.len());
        let (a, b) = (read(&wasm).unwrap(), read(&stripped).unwrap());
        let ranges = |s: &Sidecar| {
            s.functions
                .iter()
                .map(|f| (f.index, f.start, f.end))
                .collect::<Vec<_>>()
        };
        assert_eq!(ranges(&a), ranges(&b));
        assert!(b.functions.iter().all(|f| f.name.is_none()));
        assert_eq!(without_names(&stripped), None);
        wasmparser::Validator::new()
            .validate_all(&stripped)
            .unwrap();
    }

    #[test]
    fn chains_round_trip_through_the_compact_form() {
        let frame = |f: &str, line| SourceFrame {
            function: Some(f.into()),
            file: Some("src/lib.rs".into()),
            line: Some(line),
            column: None,
        };
        let mut s = read(&module()).unwrap();
        s.chains = vec![
            vec![frame("a", 1), frame("main", 9)],
            vec![frame("b", 2), frame("main", 9)],
            vec![frame("main", 9)],
        ];
        let json = serde_json::to_string(&s).unwrap();
        let back: Sidecar = serde_json::from_str(&json).unwrap();
        assert_eq!(back.chains, s.chains);
        assert_eq!(json.matches("\"main\"").count(), 1, "{json}");
    }

    /// A map from `nodes` and `heads` over two frames, as the sidecar's JSON has them.
    fn crafted(nodes: &str, heads: &str) -> Result<Sidecar, serde_json::Error> {
        serde_json::from_str(&format!(
            r#"{{"format":{FORMAT},"build_id":"0123456789abcdef","module_size":1,
            "v8_script_id":"","functions":[],"locations":[[0,0]],"chains":{{"frames":[
            {{"function":"a","file":"src/lib.rs","line":1,"column":null}},
            {{"function":"b","file":null,"line":null,"column":null}}],
            "nodes":{nodes},"heads":{heads}}}}}"#
        ))
    }

    #[test]
    fn damaged_or_crafted_chains_are_refused_quickly() {
        let ok = crafted("[[1,-1],[0,0]]", "[1,0,4294967295]").unwrap();
        assert_eq!(ok.chains.len(), 3);
        assert_eq!(ok.chains[0].len(), 2);
        assert!(ok.chains[2].is_empty());

        // Issue 22: nodes that point to themselves made 8,000 nodes expand to 64 M frames.
        let started = std::time::Instant::now();
        let n = 8000;
        let selfish: Vec<String> = (0..n).map(|i| format!("[0,{i}]")).collect();
        let heads: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        let (nodes, heads) = (
            format!("[{}]", selfish.join(",")),
            format!("[{}]", heads.join(",")),
        );
        let e = crafted(&nodes, &heads).unwrap_err().to_string();
        assert!(
            e.contains("node 0 has parent 0, which is not an earlier node"),
            "{e}"
        );
        for (nodes, heads, says) in [
            ("[[0,1],[0,0]]", "[0]", "node 0 has parent 1"),
            ("[[0,-1],[0,-2]]", "[1]", "node 1 has parent -2"),
            (
                "[[2,-1]]",
                "[0]",
                "node 0 names frame 2, but there are 2 frames",
            ),
            (
                "[[0,-1]]",
                "[1]",
                "a chain starts at node 1, but there are 1 nodes",
            ),
        ] {
            let e = crafted(nodes, heads).unwrap_err().to_string();
            assert!(e.contains(says), "{nodes} {heads}: {e}");
        }

        // A well-formed path as deep as it has nodes, each node a head: quadratically many
        // frames, capped per offset.
        let path: Vec<String> = (0..n).map(|i| format!("[0,{}]", i as i64 - 1)).collect();
        let e = crafted(&format!("[{}]", path.join(",")), &heads)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("more than {MAX_CHAIN} frames")), "{e}");
        // The deepest chain allowed still reads.
        let path: Vec<String> = (0..MAX_CHAIN)
            .map(|i| format!("[0,{}]", i as i64 - 1))
            .collect();
        let deep = crafted(
            &format!("[{}]", path.join(",")),
            &format!("[{}]", MAX_CHAIN - 1),
        );
        assert_eq!(deep.unwrap().chains[0].len(), MAX_CHAIN);
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    #[test]
    fn offsets_outside_a_function_do_not_match_it() {
        let s = read(&module()).unwrap();
        let f = &s.functions[1];
        assert!(s.function_at(2, f.start).is_some());
        assert!(s.function_at(2, f.end).is_none());
        assert!(s.function_at(1, f.start).is_none());
        assert!(s.function_at(0, 0).is_none());
    }
}
