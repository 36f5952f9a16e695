//! `cargo worker-build symbolize`: rewrite the `wasm-function[N]:0xOFF` frames of a log (from
//! `wrangler tail`, its `--format json`, workerd's stderr or the dashboard) into the Rust
//! functions the bundle's symbol sidecar names. Text that is not a frame passes through as it
//! is; a frame the map cannot place stays as it is, marked.

use std::io::{BufRead, BufReader, Read, Write};

use anyhow::{Context as _, Result};

use crate::cli::SymbolizeArgs;
use crate::errors::{problem, Code};
use crate::symbols::Sidecar;

/// `cargo worker-build symbolize [FILE]`: the rewritten log on stdout.
pub fn run(args: &SymbolizeArgs) -> Result<i32> {
    let dir = match &args.out_dir {
        Some(dir) => dir.clone(),
        None => {
            let cwd = std::env::current_dir()?;
            let manifest = crate::workspace::locate_manifest(args.manifest_path.as_deref(), &cwd)?;
            manifest
                .parent()
                .map_or(cwd.join("build"), |d| d.join("build"))
        }
    };
    let map = load_for(&dir)?;
    let source: Box<dyn Read> = match &args.file {
        Some(file) => Box::new(
            std::fs::File::open(file)
                .with_context(|| format!("could not read {}", file.display()))?,
        ),
        None => Box::new(std::io::stdin()),
    };
    let mut input = BufReader::with_capacity(1 << 16, source);
    let mut stdout = std::io::stdout().lock();
    let mut rewriter = Rewriter::new(&map);
    // Whether the log has shown a frame of this build: until then, each line with frames is
    // checked against the map.
    let mut ours = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        let refusal = refusal(&text, &map, &mut ours, &dir);
        // A refused line is not printed; the record held before it is.
        let ready = match refusal {
            Some(_) => rewriter.finish(),
            None => rewriter.line(&text),
        };
        // `wrangler tail | symbolize`: each line is out as soon as it is read, and the output
        // is flushed whenever no more input is waiting (not after every line of a file).
        let written = stdout.write_all(ready.as_bytes()).and_then(|()| {
            if input.buffer().is_empty() {
                stdout.flush()
            } else {
                Ok(())
            }
        });
        if let Some(refusal) = refusal {
            let _ = stdout.flush();
            return Err(refusal);
        }
        match written {
            Ok(()) => {}
            // The reader went away (`| head`): nothing more to do.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(0),
            Err(e) => return Err(e).context("cannot write to standard output"),
        }
    }
    match stdout
        .write_all(rewriter.finish().as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write to standard output")
        }
        _ => Ok(0),
    }
}

/// Why `line` shows that the log cannot be from the bundle in `dir`: a runtime record of
/// another build, or (up to the first line with frames of this build) frames that this build
/// cannot have printed.
fn refusal(
    line: &str,
    map: &Sidecar,
    ours: &mut bool,
    dir: &std::path::Path,
) -> Option<anyhow::Error> {
    if let Some(theirs) = record_builds(line)
        .into_iter()
        .find(|id| *id != map.build_id)
    {
        return Some(problem(
            Code::SymbolsOtherBuild,
            format!(
                "the log is from build {theirs}, but the bundle in {} is build {}",
                dir.display(),
                map.build_id
            ),
            "pass --out-dir with the bundle that produced the log, or rebuild the deployed commit and symbolize again",
        ));
    }
    if *ours || !line.contains(FUNCTION) {
        return None;
    }
    match other_build(line, map) {
        Some(theirs) => Some(problem(
            Code::SymbolsOtherBuild,
            format!(
                "the log is from another build: it shows {theirs}, but the bundle in {} is build {}",
                dir.display(),
                map.build_id
            ),
            "pass --out-dir with the bundle that produced the log, or rebuild the deployed commit and symbolize again",
        )),
        None => {
            *ours = !frames(line).is_empty();
            None
        }
    }
}

/// The bundle's sidecar, checked against the module next to it.
pub fn load_for(dir: &std::path::Path) -> Result<Sidecar> {
    let wasm_path = dir.join(crate::bundle::WASM);
    let map = match crate::symbols::read_sidecar(dir) {
        Ok(map) => map,
        Err(why) => return Err(problem(
            Code::NoSymbols,
            format!("{} has no readable symbol map ({why})", dir.display()),
            "rebuild with `cargo worker-build` (every build writes it), or pass --out-dir with the bundle the log came from",
        )),
    };
    let wasm = std::fs::read(&wasm_path).unwrap_or_default();
    let shipped = crate::symbols::build_id(&wasm);
    if shipped != map.build_id {
        return Err(problem(
            Code::SymbolsOtherBuild,
            format!(
                "the symbol map in {} is for build {}, but {} is build {shipped}",
                dir.display(),
                map.build_id,
                wasm_path.display()
            ),
            "rebuild with `cargo worker-build` so the module and its map come from the same build",
        ));
    }
    Ok(map)
}

/// How the runtime's text records of faults begin.
const RECORD_PREFIX: &str = "cargo-worker-build: ";

/// Appended to a frame the map does not place.
pub const UNMAPPED: &str = " [not symbolized: not in this build]";

/// A frame as V8 prints it: `wasm://wasm/<script>:wasm-function[N]:0xOFF` (the script part is
/// optional in some tools' output).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Frame<'a> {
    /// The byte range of the whole frame text in its line.
    start: usize,
    end: usize,
    script: Option<&'a str>,
    index: u32,
    offset: u64,
}

const FUNCTION: &str = "wasm-function[";
const SCRIPT: &str = "wasm://wasm/";

fn frames(text: &str) -> Vec<Frame<'_>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find(FUNCTION) {
        let at = from + found;
        from = at + FUNCTION.len();
        let rest = &text[from..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let Ok(index) = rest[..digits].parse::<u32>() else {
            continue;
        };
        let Some(after) = rest[digits..].strip_prefix("]:0x") else {
            continue;
        };
        let hex = after.bytes().take_while(u8::is_ascii_hexdigit).count();
        let Ok(offset) = u64::from_str_radix(&after[..hex], 16) else {
            continue;
        };
        let end = from + digits + "]:0x".len() + hex;
        // `wasm://wasm/<script>:` right before, when it is there. Only the script's own
        // characters are looked at (never back to the start of the text: that was quadratic
        // in a log of frames without the prefix); they end at the `[` of any frame before.
        let (start, script) = match text[..at].strip_suffix(':') {
            Some(head) => {
                let name = head
                    .bytes()
                    .rev()
                    .take_while(|&b| {
                        b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'
                    })
                    .count();
                let name_at = head.len() - name;
                match head[..name_at].strip_suffix(SCRIPT) {
                    Some(before) => (before.len(), Some(&head[name_at..])),
                    None => (at, None),
                }
            }
            None => (at, None),
        };
        out.push(Frame {
            start,
            end,
            script,
            index,
            offset,
        });
        from = end;
    }
    out
}

/// The V8 script ids the log's frames name (module name prefixes dropped), in order, distinct.
pub fn scripts_in(log: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut known = std::collections::HashSet::new();
    for frame in frames(log) {
        if let Some(script) = frame.script {
            let id = script.rsplit('-').next().unwrap_or(script);
            if known.insert(id) {
                seen.push(id.to_string());
            }
        }
    }
    seen
}

/// Why the log cannot come from this build: the V8 script ids its frames name differ from this
/// module's, or it has frames and not one of them falls inside the function it names. `None`
/// when the log has no frames, or some of them fit.
pub fn other_build(log: &str, map: &Sidecar) -> Option<String> {
    let scripts = scripts_in(log);
    if !map.v8_script_id.is_empty() && !scripts.is_empty() && !scripts.contains(&map.v8_script_id) {
        return Some(format!(
            "module wasm://wasm/{}",
            scripts.join(", wasm://wasm/")
        ));
    }
    let found = frames(log);
    let first = found.first()?;
    if found
        .iter()
        .any(|f| map.function_at(f.index, f.offset).is_some())
    {
        return None;
    }
    Some(format!(
        "frames such as wasm-function[{}]:0x{:x} that lie outside this build's functions",
        first.index, first.offset
    ))
}

/// The build ids the runtime's fault records in `log` name, distinct, in order: `, build <id>]`
/// ends a text record, `"build":"<id>"` is a JSON record's field (also inside a string of
/// `wrangler tail --format json`, where its quotes are escaped).
pub fn record_builds(log: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for marker in [", build ", "\"build\":\"", "\\\"build\\\":\\\""] {
        let mut rest = log;
        while let Some(at) = rest.find(marker) {
            rest = &rest[at + marker.len()..];
            let hex = rest.bytes().take_while(u8::is_ascii_hexdigit).count();
            let after = rest.as_bytes().get(hex).copied();
            let closed = if marker.starts_with(',') {
                after == Some(b']')
            } else {
                matches!(after, Some(b'"' | b'\\'))
            };
            if hex == 16 && closed && !out.iter().any(|id| id == &rest[..hex]) {
                out.push(rest[..hex].to_string());
            }
        }
    }
    out
}

/// Rewrite one piece of text (a line, or a string inside a JSON record).
fn rewrite_text(text: &str, map: &Sidecar) -> String {
    let found = frames(text);
    if found.is_empty() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 64 * found.len());
    let mut last = 0;
    // The start of the line the frame is on, found from the last frame on (not from the start
    // of the text, which is quadratic in a long text of frames).
    let mut line_start = 0;
    for frame in found {
        if let Some(nl) = text[last..frame.start].rfind('\n') {
            line_start = last + nl + 1;
        }
        out.push_str(&text[last..frame.start]);
        let raw = &text[frame.start..frame.end];
        let ours = frame
            .script
            .map(|s| s.rsplit('-').next().unwrap_or(s))
            .is_none_or(|s| map.v8_script_id.is_empty() || s == map.v8_script_id);
        let function = map.function_at(frame.index, frame.offset).filter(|_| ours);
        let chain = function
            .and_then(|f| map.chain_at(f, frame.offset))
            .filter(|c| !c.is_empty());
        match (function, chain) {
            (Some(_), Some(chain)) => {
                let indent: String = text[line_start..frame.start]
                    .chars()
                    .take_while(|c| c.is_whitespace())
                    .collect();
                for (i, source) in chain.iter().enumerate() {
                    if i > 0 {
                        out.push('\n');
                        out.push_str(&indent);
                        out.push_str("at ");
                    }
                    out.push_str(source.function.as_deref().unwrap_or("<unknown>"));
                    out.push_str(" (");
                    match (&source.file, source.line) {
                        (Some(file), Some(line)) => {
                            out.push_str(&format!("{file}:{line}"));
                            if let Some(col) = source.column {
                                out.push_str(&format!(":{col}"));
                            }
                        }
                        _ => out.push_str(&format!(
                            "wasm-function[{}]:0x{:x}",
                            frame.index, frame.offset
                        )),
                    }
                    out.push(')');
                    if chain.len() > 1 && i + 1 < chain.len() {
                        out.push_str(" [inlined]");
                    }
                }
            }
            (Some(f), None) if f.name.is_some() => {
                out.push_str(f.name.as_deref().unwrap_or_default());
                out.push_str(&format!(
                    " (wasm-function[{}]:0x{:x})",
                    frame.index, frame.offset
                ));
            }
            _ => {
                out.push_str(raw);
                out.push_str(UNMAPPED);
            }
        }
        last = frame.end;
    }
    out.push_str(&text[last..]);
    out
}

/// The Rust location of a trap's top frame: the innermost function of its inline chain that is
/// the project's own code (`src/lib.rs:31:9`), not the standard library's (`library/...`) or a
/// registry crate's (`wasm-bindgen-0.2.130/...`); else the innermost.
fn location_of(frame: &Frame<'_>, map: &Sidecar) -> Option<String> {
    let f = map.function_at(frame.index, frame.offset)?;
    let chain = map.chain_at(f, frame.offset)?;
    let ours = |file: &str| {
        let first = file.split('/').next().unwrap_or(file);
        let versioned = first.rsplit_once('-').is_some_and(|(_, v)| {
            v.split('.').count() >= 3 && v.starts_with(|c: char| c.is_ascii_digit())
        });
        !file.starts_with("library/") && !versioned
    };
    let source = chain
        .iter()
        .find(|s| s.line.is_some() && s.file.as_deref().is_some_and(ours))
        .or_else(|| chain.iter().find(|s| s.file.is_some() && s.line.is_some()))?;
    let (file, line) = (source.file.as_deref()?, source.line?);
    Some(match source.column {
        Some(col) => format!("{file}:{line}:{col}"),
        None => format!("{file}:{line}"),
    })
}

/// What an `unreachable` trap was, from the functions inlined at its top frame: Rust's
/// out-of-memory handler, or `std::process::abort`. The runtime sees only `unreachable`.
fn trap_kind(frame: &Frame<'_>, map: &Sidecar) -> Option<&'static str> {
    let f = map.function_at(frame.index, frame.offset)?;
    let names = map
        .chain_at(f, frame.offset)
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s.function.as_deref())
        .chain(f.name.as_deref());
    let mut kind = None;
    for name in names {
        if name.contains("rust_oom") || name.contains("handle_alloc_error") {
            return Some("out of memory");
        }
        if name == "std::process::abort" || name == "abort" {
            kind = Some("abort");
        }
    }
    kind
}

/// A fault record of the runtime (`--log-format json`): each frame becomes its chain of
/// functions, one array item each, and a missing `location` becomes the top frame's.
fn rewrite_record(fields: &mut serde_json::Map<String, serde_json::Value>, map: &Sidecar) {
    use serde_json::Value;
    let Some(Value::Array(items)) = fields.get("frames") else {
        return;
    };
    let top = items
        .first()
        .and_then(Value::as_str)
        .and_then(|f| frames(f).first().and_then(|frame| location_of(frame, map)));
    let first = items
        .first()
        .and_then(Value::as_str)
        .and_then(|f| frames(f).first().and_then(|frame| trap_kind(frame, map)));
    let expanded: Vec<Value> = items
        .iter()
        .flat_map(|item| match item.as_str() {
            Some(text) => rewrite_text(text, map)
                .split('\n')
                .map(|line| Value::from(line.strip_prefix("at ").unwrap_or(line)))
                .collect(),
            None => vec![item.clone()],
        })
        .collect();
    fields.insert("frames".into(), Value::Array(expanded));
    if let (Some(kind), Some(Value::String(was))) = (first, fields.get_mut("kind")) {
        if was == "unreachable" {
            *was = kind.into();
        }
    }
    let panic = fields.get("kind").and_then(Value::as_str) == Some("panic");
    if !panic && fields.get("location").is_none_or(Value::is_null) {
        if let Some(top) = top {
            fields.insert("location".into(), Value::from(top));
        }
    }
}

fn rewrite_json(value: &mut serde_json::Value, map: &Sidecar) {
    use serde_json::Value;
    match value {
        // A record logged as a string (inside `wrangler tail --format json`) stays one string
        // of JSON.
        Value::String(s) if s.contains(FUNCTION) && s.trim_start().starts_with('{') => {
            match serde_json::from_str::<Value>(s) {
                Ok(mut inner) => {
                    rewrite_json(&mut inner, map);
                    *s = inner.to_string();
                }
                Err(_) => *s = rewrite_text(s, map),
            }
        }
        Value::Object(fields) if fields.contains_key("kind") && fields.contains_key("frames") => {
            rewrite_record(fields, map)
        }
        Value::String(s) if s.contains(FUNCTION) => *s = rewrite_text(s, map),
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_json(v, map)),
        Value::Object(fields) => fields.values_mut().for_each(|v| rewrite_json(v, map)),
        _ => {}
    }
}

/// Rewrite a whole log (see [`Rewriter`]).
pub fn rewrite(log: &str, map: &Sidecar) -> String {
    let mut rewriter = Rewriter::new(map);
    let mut out = String::with_capacity(log.len());
    for line in log.split_inclusive('\n') {
        out.push_str(&rewriter.line(line));
    }
    out.push_str(&rewriter.finish());
    out
}

/// Rewrites a log line by line, in time linear in its length. A line that is a JSON value
/// (`wrangler tail --format json`) has the strings inside it rewritten and stays one line of
/// JSON; any other line is rewritten as text. Only a text record of the runtime that has no
/// location waits, for the line after it: its top frame gives the location (the runtime
/// cannot symbolize).
pub struct Rewriter<'m> {
    map: &'m Sidecar,
    /// A record waiting for its frames, and where in it the location goes.
    held: Option<(String, usize)>,
}

impl<'m> Rewriter<'m> {
    pub fn new(map: &'m Sidecar) -> Self {
        Self { map, held: None }
    }

    /// `line` (with its newline, if it has one) rewritten, after the record held before it, if
    /// any; empty when `line` itself is held.
    pub fn line(&mut self, line: &str) -> String {
        let map = self.map;
        let (body, newline) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let mut out = String::new();
        if let Some((mut record, at)) = self.held.take() {
            if body.contains(FUNCTION) {
                let first = frames(body).into_iter().next();
                if let Some(location) = first.as_ref().and_then(|f| location_of(f, map)) {
                    record.insert_str(at, &format!(" at {location}"));
                }
                // `[unreachable` becomes `[out of memory` or `[abort` when the frame says so.
                let kind_at = record[..at].rfind(" [").map(|b| b + 2);
                if let (Some(k), Some(kind)) =
                    (kind_at, first.as_ref().and_then(|f| trap_kind(f, map)))
                {
                    if record[k..at].starts_with("unreachable") {
                        record.replace_range(k..k + "unreachable".len(), kind);
                    }
                }
            }
            out.push_str(&record);
        }
        if !body.contains(FUNCTION) {
            match record_location_at(body) {
                Some(at) => self.held = Some((line.to_string(), at)),
                None => out.push_str(line),
            }
            return out;
        }
        let trimmed = body.trim_start();
        let json = (trimmed.starts_with('{') || trimmed.starts_with('['))
            .then(|| serde_json::from_str::<serde_json::Value>(body).ok())
            .flatten();
        match json {
            Some(mut value) => {
                rewrite_json(&mut value, map);
                out.push_str(&value.to_string());
            }
            None => out.push_str(&rewrite_text(body, map)),
        }
        out.push_str(newline);
        out
    }

    /// The record still held, if any.
    pub fn finish(&mut self) -> String {
        self.held
            .take()
            .map(|(record, _)| record)
            .unwrap_or_default()
    }
}

/// Where the location goes in a text record of the runtime that has none (a trap's), if `body`
/// is one.
fn record_location_at(body: &str) -> Option<usize> {
    if !(body.starts_with(RECORD_PREFIX) && body.ends_with(']')) {
        return None;
    }
    let bracket = body.rfind(" [").unwrap_or(0);
    let build = body.rfind(", build ").filter(|&b| b > bracket)?;
    // A panic's frames are where wasm-bindgen caught it, not where it happened.
    let kind = &body[bracket + 2..build];
    (!kind.contains(" at ") && kind != "panic").then_some(build)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::symbols::Function;

    fn map() -> Sidecar {
        Sidecar {
            format: crate::symbols::FORMAT,
            build_id: "0123456789abcdef".into(),
            module_size: 40000,
            v8_script_id: "00027102".into(),
            locations: vec![(0x100, 0), (0x180, u32::MAX)],
            chains: vec![vec![
                crate::symbols::SourceFrame {
                    function: Some("fixture::trap_here".into()),
                    file: Some("src/lib.rs".into()),
                    line: Some(31),
                    column: Some(9),
                },
                crate::symbols::SourceFrame {
                    function: Some("fixture::descend".into()),
                    file: Some("src/lib.rs".into()),
                    line: Some(38),
                    column: Some(5),
                },
            ]],
            functions: vec![
                Function {
                    index: 3,
                    start: 0x100,
                    end: 0x200,
                    name: Some("fixture::trap_here".into()),
                },
                Function {
                    index: 4,
                    start: 0x200,
                    end: 0x300,
                    name: None,
                },
            ],
        }
    }

    #[test]
    fn frames_of_this_build_are_named_and_others_marked() {
        let log = "Error: unreachable\n    at wasm://wasm/00027102:wasm-function[3]:0x150\n    at wasm://wasm/00027102:wasm-function[3]:0x190\n    at wasm://wasm/00027102:wasm-function[4]:0x250\n    at wasm-function[3]:0x999\nnot a frame\n";
        let out = rewrite(log, &map());
        assert_eq!(
            out,
            format!("Error: unreachable\n    at fixture::trap_here (src/lib.rs:31:9) [inlined]\n    at fixture::descend (src/lib.rs:38:5)\n    at fixture::trap_here (wasm-function[3]:0x190)\n    at wasm://wasm/00027102:wasm-function[4]:0x250{UNMAPPED}\n    at wasm-function[3]:0x999{UNMAPPED}\nnot a frame\n")
        );
    }

    #[test]
    fn json_records_stay_json() {
        let line =
            r#"{"logs":[{"message":["at wasm://wasm/00027102:wasm-function[3]:0x1ff"]}],"n":1}"#;
        let out = rewrite(line, &map());
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            value["logs"][0]["message"][0],
            "at fixture::trap_here (wasm-function[3]:0x1ff)"
        );
        assert_eq!(value["n"], 1);
    }

    #[test]
    fn a_log_of_another_module_is_recognised() {
        let log = "at wasm://wasm/0006aaaa:wasm-function[3]:0x150";
        assert_eq!(
            other_build(log, &map()).as_deref(),
            Some("module wasm://wasm/0006aaaa")
        );
        assert_eq!(
            other_build("at wasm://wasm/00027102:wasm-function[3]:0x150", &map()),
            None
        );
        assert_eq!(other_build("at wasm-function[3]:0x150", &map()), None);
        assert_eq!(other_build("no frames here", &map()), None);
        let elsewhere = "at wasm-function[3]:0x250\n at wasm-function[9]:0x10";
        assert!(other_build(elsewhere, &map())
            .unwrap()
            .contains("wasm-function[3]:0x250"));
        assert!(rewrite(log, &map()).ends_with(UNMAPPED));
    }

    #[test]
    fn records_get_the_top_frames_location_and_name_their_build() {
        let text = "cargo-worker-build: fetch failed (x) [unreachable, build 0123456789abcdef]\n    at wasm://wasm/00027102:wasm-function[3]:0x150\n";
        let out = rewrite(text, &map());
        assert_eq!(
            out.lines().next().unwrap(),
            "cargo-worker-build: fetch failed (x) [unreachable at src/lib.rs:31:9, build 0123456789abcdef]"
        );
        // A panic's frames are the catch site: no location from them.
        let panic = text.replace("[unreachable", "[panic");
        assert_eq!(rewrite(&panic, &map()).lines().next(), panic.lines().next());

        let json = r#"{"level":"error","kind":"unreachable","message":"unreachable","location":null,"frames":["wasm://wasm/00027102:wasm-function[3]:0x150"],"call":"fetch","build":"0123456789abcdef"}"#;
        let value: serde_json::Value = serde_json::from_str(&rewrite(json, &map())).unwrap();
        assert_eq!(value["location"], "src/lib.rs:31:9");
        assert_eq!(
            value["frames"],
            serde_json::json!([
                "fixture::trap_here (src/lib.rs:31:9) [inlined]",
                "fixture::descend (src/lib.rs:38:5)"
            ])
        );
        // The same record inside `wrangler tail --format json` stays a string of JSON.
        let tail = serde_json::json!({"logs": [{"message": [json]}]}).to_string();
        let outer: serde_json::Value = serde_json::from_str(&rewrite(&tail, &map())).unwrap();
        let inner: serde_json::Value =
            serde_json::from_str(outer["logs"][0]["message"][0].as_str().unwrap()).unwrap();
        assert_eq!(inner["location"], "src/lib.rs:31:9");

        assert_eq!(
            record_builds(&format!(
                "{text}{json}\n{tail}\n[x, build 00000000000000ff]"
            )),
            ["0123456789abcdef", "00000000000000ff"]
        );
        assert!(record_builds("[panic, build 0123]\n\"build\":\"unknown\"").is_empty());
    }

    /// A bounded, seeded fuzz: random bytes, truncated frames and cut real logs never panic, and
    /// text without a complete frame comes back unchanged.
    #[test]
    fn garbage_and_truncated_logs_pass_through() {
        let real = "2026-12-01 panicked at src/lib.rs:8:9\n    at wasm://wasm/00027102:wasm-function[3]:0x150\n{\"logs\":[\"wasm-function[4]:0x250\"]}\n    at fixture (wasm://wasm/name-00027102:wasm-function[3]:0x1a0)\n";
        let alphabet: Vec<char> = "wasm-function[]:0x0123456789abcdefg://{}\"\\\n ()é\u{0}"
            .chars()
            .collect();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let sidecar = map();
        for round in 0..5000 {
            let input: String = if round % 2 == 0 {
                let cut = real
                    .char_indices()
                    .map(|(i, _)| i)
                    .nth(next() as usize % real.chars().count())
                    .unwrap_or(0);
                let tail = real
                    .char_indices()
                    .map(|(i, _)| i)
                    .nth(next() as usize % real.chars().count())
                    .unwrap_or(0);
                format!("{}{}", &real[..cut], &real[tail..])
            } else {
                (0..next() % 200)
                    .map(|_| alphabet[next() as usize % alphabet.len()])
                    .collect()
            };
            let out = rewrite(&input, &sidecar);
            let _ = other_build(&input, &sidecar);
            if frames(&input).is_empty() {
                assert_eq!(
                    out, input,
                    "text without frames must pass through unchanged"
                );
            } else if !input
                .lines()
                .any(|l| l.trim_start().starts_with(['{', '[']))
            {
                // Everything around the frames is kept, in order.
                let (mut at, mut last) = (0, 0);
                for frame in frames(&input) {
                    let keep = &input[last..frame.start];
                    let found = out[at..]
                        .find(keep)
                        .unwrap_or_else(|| panic!("{keep:?} lost: {input:?} -> {out:?}"));
                    at += found + keep.len();
                    last = frame.end;
                }
                assert!(out[at..].contains(&input[last..]), "{input:?} -> {out:?}");
            }
        }
    }
}
