//! Source locations for the symbol map: the crate's DWARF, read before wasm-opt, turned into a
//! source map that Binaryen carries through optimisation (each expression keeps its location,
//! inlined ones included), and read back for the optimised module.
//!
//! A source map names one location per offset, not the inline chain DWARF has there; so each
//! distinct chain becomes one "source" of the map, which Binaryen keeps as it is, and the
//! chains themselves go into the sidecar.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::SourceFrame;

/// The module's DWARF, written as a source map next to it for wasm-opt and removed from it.
pub struct Prepared {
    pub input: PathBuf,
    pub output: PathBuf,
    chains: Vec<Vec<SourceFrame>>,
}

impl Prepared {
    /// The locations of the optimised module, from the map wasm-opt wrote (`None` when it
    /// wrote none: wasm-opt did not run). Both map files are removed.
    pub fn read_back(self) -> Result<Option<super::Lines>> {
        let text = std::fs::read_to_string(&self.output).ok();
        let _ = std::fs::remove_file(&self.input);
        let _ = std::fs::remove_file(&self.output);
        let Some(text) = text else { return Ok(None) };
        let mut locations = Vec::new();
        for (offset, chain) in read_source_map(&text, self.chains.len())? {
            // A segment without a location ends the chain before it.
            locations.push((offset, chain.unwrap_or(u32::MAX)));
        }
        locations.dedup_by_key(|(o, _)| *o);
        Ok(Some((locations, self.chains)))
    }
}

/// Before wasm-opt: turn the module's DWARF (when it has some) into a source map in `dir`, and
/// remove the DWARF from the module.
pub fn prepare(wasm: &Path, dir: &Path, local_crate: &str) -> Result<Option<Prepared>> {
    let bytes = crate::fs::read(wasm)?;
    let Some(mapped) = source_map_from_dwarf(&bytes, Some(local_crate))? else {
        // No line tables (or none readable): the module still loses its DWARF, if any.
        if let Some(stripped) = super::without_custom_sections(&bytes, is_dwarf) {
            crate::fs::write(wasm, stripped)?;
        }
        return Ok(None);
    };
    if let Some(stripped) = super::without_custom_sections(&bytes, is_dwarf) {
        crate::fs::write(wasm, stripped)?;
    }
    let input = dir.join(".dwarf.map");
    crate::fs::write(&input, mapped.source_map)?;
    Ok(Some(Prepared {
        input,
        output: dir.join(".opt.map"),
        chains: mapped.chains,
    }))
}

/// DWARF's custom sections, removed from the module before wasm-opt (they are in the source map
/// by then, and Binaryen would otherwise limit its passes to keep them).
pub fn is_dwarf(section: &str) -> bool {
    section.starts_with(".debug_")
}

/// What the module's DWARF says about each instruction: a source map over module offsets whose
/// sources are the indices of `chains`. `None` when the module has no line tables.
pub struct Mapped {
    pub source_map: String,
    pub chains: Vec<Vec<SourceFrame>>,
}

/// The crate a source file belongs to, from its shortened path: `library/core/...` is `core`,
/// `worker-0.8.0/src/...` is `worker`; the package's own `src/...` is `None`.
fn crate_of_file(file: &str) -> Option<String> {
    if let Some(rest) = file.strip_prefix("library/") {
        return rest.split('/').next().map(str::to_string);
    }
    let (dir, _) = file.split_once("/src/")?;
    let (name, version) = dir.rsplit_once('-')?;
    version
        .starts_with(|c: char| c.is_ascii_digit())
        .then(|| name.replace('-', "_"))
}

/// `local_crate`: the package's crate name, for functions in its own `src/`.
pub fn source_map_from_dwarf(wasm: &[u8], local_crate: Option<&str>) -> Result<Option<Mapped>> {
    use addr2line::gimli;
    use wasmparser::{Parser, Payload};
    let mut sections: HashMap<String, &[u8]> = HashMap::new();
    let mut code_start = None;
    let mut bodies = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::CodeSectionStart {
                unchecked_range, ..
            } => code_start = Some(unchecked_range.start),
            Payload::CodeSectionEntry(body) => bodies.push(body),
            Payload::CustomSection(reader) if is_dwarf(reader.name()) => {
                sections.insert(reader.name().to_string(), reader.data());
            }
            _ => {}
        }
    }
    let Some(code_start) = code_start else {
        return Ok(None);
    };
    if !sections.contains_key(".debug_line") {
        return Ok(None);
    }
    let dwarf = gimli::Dwarf::load(|id| -> Result<_, gimli::Error> {
        let data = sections.get(id.name()).copied().unwrap_or(&[]);
        Ok(gimli::EndianSlice::new(data, gimli::LittleEndian))
    })?;
    let context =
        addr2line::Context::from_dwarf(dwarf).context("the module's DWARF is unreadable")?;

    // Line tables name functions without their path (`parse_digit`); the name section, read
    // from the same module, has the full names: the function an offset is in names the
    // outermost frame, and a short name that only one full name ends with names an inlined one.
    let named = super::read(wasm)?;
    let mut by_last: HashMap<&str, Vec<&str>> = HashMap::new();
    for name in named.functions.iter().filter_map(|f| f.name.as_deref()) {
        by_last
            .entry(name.rsplit("::").next().unwrap_or(name))
            .or_default()
            .push(name);
    }
    let qualify = |short: &str, file: Option<&str>| -> Option<String> {
        if !short
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return None;
        }
        let krate = match file.map(crate_of_file) {
            Some(Some(k)) => k,
            _ => local_crate?.to_string(),
        };
        let mut candidates: Vec<&str> = by_last
            .get(short)?
            .iter()
            .copied()
            .filter(|n| n.trim_start_matches('<').split("::").next() == Some(krate.as_str()))
            .collect();
        candidates.dedup();
        match candidates.as_slice() {
            [one] => Some(one.to_string()),
            _ => None,
        }
    };
    // First pass: every instruction's own chain, and where each function is called from.
    let mut located: Vec<Vec<(u64, Vec<SourceFrame>)>> = Vec::new();
    let mut call_sites: HashMap<u32, Vec<(usize, u64)>> = HashMap::new();
    let mut names = Names::default();
    for (n, (body, function)) in bodies.into_iter().zip(&named.functions).enumerate() {
        let mut ops = body.get_operators_reader()?;
        let mut here: Vec<(u64, Vec<SourceFrame>)> = Vec::new();
        // DWARF's chain at the previous instruction, before naming: most instructions share
        // their neighbour's, and the same chain in the same function is named the same.
        let mut previous: Option<Vec<SourceFrame>> = None;
        while !ops.eof() {
            let (op, offset) = ops.read_with_offset()?;
            if let wasmparser::Operator::Call { function_index }
            | wasmparser::Operator::ReturnCall { function_index } = op
            {
                call_sites
                    .entry(function_index)
                    .or_default()
                    .push((n, offset));
            }
            let raw = frames_at(&context, offset - code_start, &mut names);
            if let (Some(previous), Some((_, named_chain))) = (&previous, here.last()) {
                if *previous == raw {
                    let chain = named_chain.clone();
                    here.push((offset, chain));
                    continue;
                }
            }
            let mut chain = raw.clone();
            previous = Some(raw);
            let outermost = chain.len().saturating_sub(1);
            for (i, frame) in chain.iter_mut().enumerate() {
                if i == outermost && frame.function.is_none() {
                    frame.function = function.name.clone();
                }
                let Some(short) = frame.function.clone().filter(|n| !n.contains("::")) else {
                    continue;
                };
                frame.function = if i == outermost {
                    function.name.clone().filter(|n| n.ends_with(&short))
                } else {
                    None
                }
                .or_else(|| qualify(&short, frame.file.as_deref()))
                .or(Some(short));
            }
            here.push((offset, chain));
        }
        located.push(here);
    }
    // wasm-opt inlines a function called from one place into its caller, and a source map
    // keeps only the innermost location: a function with a single call site (not exported,
    // not in a table) gets its caller's chain at that site appended, up the call graph.
    let reachable_otherwise = super::entry_points(wasm)?;
    let chain_at_site = |n: usize, offset: u64| -> Vec<SourceFrame> {
        located[n]
            .iter()
            .find(|(o, _)| *o == offset)
            .map(|(_, c)| c.clone())
            .unwrap_or_default()
    };
    let mut callers: Vec<Vec<SourceFrame>> = Vec::with_capacity(located.len());
    for (n, function) in named.functions.iter().enumerate() {
        let mut tail = Vec::new();
        let mut current = function.index;
        let mut seen = vec![current];
        while let Some([(caller, site)]) = call_sites.get(&current).map(Vec::as_slice) {
            if reachable_otherwise.contains(&current) {
                break;
            }
            let frames = chain_at_site(*caller, *site);
            if frames.is_empty() {
                break;
            }
            tail.extend(frames);
            current = named.functions[*caller].index;
            if seen.contains(&current) || seen.len() > 64 {
                break;
            }
            seen.push(current);
        }
        let _ = n;
        callers.push(tail);
    }

    let mut chains: Vec<Vec<SourceFrame>> = Vec::new();
    let mut interned: HashMap<Vec<SourceFrame>, u32> = HashMap::new();
    let mut mappings = Vec::new();
    let mut last: Option<u32> = None;
    for (n, here) in located.iter().enumerate() {
        // The previous instruction's chain and its id: the same chain in the same function is
        // the same source (its callers' frames are the function's).
        let mut previous: Option<(&Vec<SourceFrame>, Option<u32>)> = None;
        for (offset, chain) in here {
            let id = if let Some((_, id)) = previous.filter(|(p, _)| *p == chain) {
                id
            } else if chain.is_empty() {
                None
            } else {
                let mut chain = chain.clone();
                chain.extend(callers[n].iter().cloned());
                let next = chains.len() as u32;
                let id = *interned.entry(chain.clone()).or_insert(next);
                if id == next {
                    chains.push(chain);
                }
                Some(id)
            };
            previous = Some((chain, id));
            if id != last {
                if let Some(id) = id {
                    mappings.push((*offset, id));
                }
                last = id;
            }
        }
    }
    if chains.is_empty() {
        return Ok(None);
    }
    let source_map = serde_json::json!({
        "version": 3,
        "sources": (0..chains.len()).map(|i| i.to_string()).collect::<Vec<_>>(),
        "names": [],
        "mappings": encode_mappings(&mappings),
    })
    .to_string();
    Ok(Some(Mapped { source_map, chains }))
}

/// Demangled function names and shortened paths, by what DWARF spells: each is worked out once
/// per module rather than once per instruction.
#[derive(Default)]
struct Names {
    functions: HashMap<String, String>,
    files: HashMap<String, String>,
}

fn frames_at<R: addr2line::gimli::Reader>(
    context: &addr2line::Context<R>,
    probe: u64,
    names: &mut Names,
) -> Vec<SourceFrame> {
    let mut out = Vec::new();
    let Ok(mut frames) = context.find_frames(probe).skip_all_loads() else {
        return out;
    };
    while let Ok(Some(frame)) = frames.next() {
        let function = frame
            .function
            .as_ref()
            .and_then(|f| f.raw_name().ok())
            .map(|n| match names.functions.get(n.as_ref()) {
                Some(clean) => clean.clone(),
                None => {
                    let clean = super::clean_name(&n);
                    names.functions.insert(n.into_owned(), clean.clone());
                    clean
                }
            });
        let (file, line, column) = match &frame.location {
            Some(l) => (
                l.file.map(|f| match names.files.get(f) {
                    Some(short) => short.clone(),
                    None => {
                        let short = short_path(f);
                        names.files.insert(f.to_string(), short.clone());
                        short
                    }
                }),
                l.line,
                l.column,
            ),
            None => (None, None, None),
        };
        out.push(SourceFrame {
            function,
            file,
            line,
            column,
        });
    }
    out
}

/// A path as a reader wants it: the crate's own files relative (`src/lib.rs`), the standard
/// library's from `library/` on, anything else from `.cargo/registry/src/<index>/` on.
fn short_path(path: &str) -> String {
    if let Some(i) = path.find("/library/") {
        return path[i + 1..].to_string();
    }
    if let Some(i) = path.find("/registry/src/") {
        let rest = &path[i + "/registry/src/".len()..];
        return rest.split_once('/').map_or(rest, |(_, r)| r).to_string();
    }
    match path.rfind("/src/") {
        Some(i) if !path.starts_with("src/") => path[i + 1..].to_string(),
        _ => path.to_string(),
    }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn vlq(out: &mut String, value: i64) {
    let mut v = if value < 0 {
        ((-value) << 1) | 1
    } else {
        value << 1
    } as u64;
    loop {
        let mut digit = (v & 31) as u8;
        v >>= 5;
        if v > 0 {
            digit |= 32;
        }
        out.push(BASE64[digit as usize] as char);
        if v == 0 {
            break;
        }
    }
}

/// One line of segments `[column, source, line, column]`, each relative to the one before.
fn encode_mappings(points: &[(u64, u32)]) -> String {
    let mut out = String::new();
    let (mut col, mut src) = (0i64, 0i64);
    for (i, (offset, id)) in points.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        vlq(&mut out, *offset as i64 - col);
        vlq(&mut out, i64::from(*id) - src);
        vlq(&mut out, 0);
        vlq(&mut out, 0);
        col = *offset as i64;
        src = i64::from(*id);
    }
    out
}

/// The `(offset, chain)` pairs of a source map Binaryen wrote, chains named by the map's own
/// `sources` (our chain indices as text). Segments without a source end the one before.
pub fn read_source_map(text: &str, chains: usize) -> Result<Vec<(u64, Option<u32>)>> {
    let map: serde_json::Value =
        serde_json::from_str(text).context("wasm-opt's source map is not JSON")?;
    let sources: Vec<Option<u32>> = map["sources"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|v| {
                    v.as_str()
                        .and_then(|t| t.parse().ok())
                        .filter(|&c: &u32| (c as usize) < chains)
                })
                .collect()
        })
        .unwrap_or_default();
    let mappings = map["mappings"].as_str().unwrap_or_default();
    let mut out = Vec::new();
    let (mut col, mut src) = (0i64, 0i64);
    for segment in mappings.split([',', ';']).filter(|s| !s.is_empty()) {
        let bad = "wasm-opt's source map has a bad segment";
        let fields = decode_vlq(segment).context(bad)?;
        // Offsets are module positions: past 64 bits or below zero, the map is damaged.
        col = col
            .checked_add(fields[0])
            .filter(|c| *c >= 0)
            .context(bad)?;
        if fields.len() >= 4 {
            src = src.checked_add(fields[1]).context(bad)?;
            out.push((
                col as u64,
                usize::try_from(src)
                    .ok()
                    .and_then(|s| sources.get(s).copied().flatten()),
            ));
        } else {
            out.push((col as u64, None));
        }
    }
    out.sort_by_key(|(o, _)| *o);
    Ok(out)
}

fn decode_vlq(segment: &str) -> Option<Vec<i64>> {
    let mut out = Vec::new();
    let (mut value, mut shift) = (0u64, 0u32);
    for c in segment.bytes() {
        let digit = BASE64.iter().position(|&b| b == c)? as u64;
        value |= (digit & 31).checked_shl(shift)?;
        if digit & 32 == 0 {
            let v = (value >> 1) as i64;
            out.push(if value & 1 == 1 { -v } else { v });
            value = 0;
            shift = 0;
        } else {
            shift += 5;
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_round_trip() {
        let points = vec![(10, 0), (25, 3), (26, 1), (4000, 2)];
        let map = serde_json::json!({"version": 3, "sources": ["0", "1", "2", "3"], "mappings": encode_mappings(&points)}).to_string();
        let back = read_source_map(&map, 4).unwrap();
        assert_eq!(
            back,
            points
                .iter()
                .map(|&(o, c)| (o, Some(c)))
                .collect::<Vec<_>>()
        );
    }

    /// Issue 22 (parser fuzzing): offsets that add up past 64 bits, or below zero, are a
    /// damaged map, not a panic or a wrapped-around offset.
    #[test]
    fn out_of_range_offsets_are_an_error() {
        for mappings in [
            "////////////D,".repeat(10),
            "////////////B,".repeat(10),
            "D,".to_string(),
            "AAAA,AD//////////////D".to_string(),
        ] {
            let map = serde_json::json!({"version": 3, "sources": ["0"], "mappings": mappings})
                .to_string();
            let e = read_source_map(&map, 1).unwrap_err();
            assert!(
                format!("{e:#}").contains("bad segment"),
                "{mappings}: {e:#}"
            );
        }
    }

    #[test]
    fn paths_are_shortened() {
        assert_eq!(short_path("/home/u/w/src/lib.rs"), "src/lib.rs");
        assert_eq!(
            short_path("/rustc/abc/library/core/src/panicking.rs"),
            "library/core/src/panicking.rs"
        );
        assert_eq!(
            short_path("/h/.cargo/registry/src/index.crates.io-1/worker-0.8.0/src/lib.rs"),
            "worker-0.8.0/src/lib.rs"
        );
        assert_eq!(short_path("src/lib.rs"), "src/lib.rs");
    }
}
