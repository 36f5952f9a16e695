//! Reads the top-level `import` and `export` declarations of an ES module.
//!
//! The bundle check needs to know what the entry module imports from the glue and what the glue
//! exports; searching the text for a name would also match comments, strings and unrelated
//! identifiers. This is a small tokenizer (comments, strings, template literals and regular
//! expressions are skipped as units) followed by a parser for the declaration forms only. It never
//! fails: text it cannot make sense of yields no declarations, which the check reports as missing.

/// One `import ... from "x"`, `import "x"`, `export ... from "x"` declaration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportDecl {
    pub specifier: String,
    /// `source` or `defer` for phase imports (`import source m from "./x.wasm"`).
    pub phase: Option<String>,
    /// Imported names as the exporting module calls them (`default` for a default import).
    pub names: Vec<String>,
    /// `import * as ns from` or `export * from`: every export is reachable.
    pub namespace: bool,
    /// An `export ... from` re-export rather than an import.
    pub reexport: bool,
}

/// The declarations of one module.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModuleSyntax {
    pub imports: Vec<ImportDecl>,
    /// Names this module exports (`default` included), re-exports with a name included.
    pub exports: Vec<String>,
}

impl ModuleSyntax {
    pub fn parse(source: &str) -> ModuleSyntax {
        Parser {
            toks: tokenize(source),
            pos: 0,
        }
        .module()
    }

    pub fn imports_from<'s>(
        &'s self,
        specifier: &'s str,
    ) -> impl Iterator<Item = &'s ImportDecl> + 's {
        self.imports
            .iter()
            .filter(move |i| i.specifier == specifier)
    }

    pub fn exports_name(&self, name: &str) -> bool {
        self.exports.iter().any(|e| e == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok<'a> {
    Ident(&'a str),
    Str(&'a str),
    Punct(char),
    /// Numbers, template literals, regular expressions: content that matters to no declaration.
    Opaque,
}

/// Keywords after which a `/` starts a regular expression rather than a division.
const KEYWORDS_BEFORE_EXPRESSION: &[&str] = &[
    "return",
    "typeof",
    "instanceof",
    "in",
    "of",
    "new",
    "delete",
    "void",
    "throw",
    "case",
    "do",
    "else",
    "yield",
    "await",
];

/// Tokens with their brace depth (0 = module top level).
fn tokenize(src: &str) -> Vec<(Tok<'_>, u32)> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut depth: u32 = 0;
    // Brace depths at which a template literal's `${` was opened, to resume the template at `}`.
    let mut template_stack: Vec<u32> = Vec::new();
    // A `/` before this offset is a division: a regular expression was already ruled out there.
    let mut no_regex_before = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'/' if bytes.get(i + 1) == Some(&b'/') => i = skip_line(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = find(bytes, i + 2, b"*/").map_or(bytes.len(), |end| end + 2);
            }
            b'/' if i >= no_regex_before && regex_allowed(out.last().map(|(t, _)| t)) => {
                match scan_regex(bytes, i) {
                    Ok(end) => {
                        out.push((Tok::Opaque, depth));
                        i = end;
                    }
                    Err(line_end) => {
                        // No regular expression ends on this line: rescanning from every later
                        // `/` on it would be quadratic on a long line.
                        no_regex_before = line_end;
                        out.push((Tok::Punct('/'), depth));
                        i += 1;
                    }
                }
            }
            b'"' | b'\'' => {
                let end = scan_string(bytes, i);
                let content_end = end.saturating_sub(1).max(i + 1);
                out.push((Tok::Str(src.get(i + 1..content_end).unwrap_or("")), depth));
                i = end;
            }
            b'`' => {
                let (end, substitution) = scan_template(bytes, i + 1);
                out.push((Tok::Opaque, depth));
                i = end;
                if substitution {
                    template_stack.push(depth);
                    depth += 1;
                }
            }
            b'{' => {
                out.push((Tok::Punct('{'), depth));
                depth += 1;
                i += 1;
            }
            b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
                if template_stack.last() == Some(&depth) {
                    // The end of a `${...}` substitution: the template literal continues.
                    template_stack.pop();
                    let (end, substitution) = scan_template(bytes, i);
                    i = end;
                    if substitution {
                        template_stack.push(depth);
                        depth += 1;
                    }
                } else {
                    out.push((Tok::Punct('}'), depth));
                }
            }
            c if c == b'_' || c == b'$' || c.is_ascii_alphabetic() || c >= 0x80 => {
                let start = i;
                while i < bytes.len()
                    && (bytes[i] == b'_'
                        || bytes[i] == b'$'
                        || bytes[i].is_ascii_alphanumeric()
                        || bytes[i] >= 0x80)
                {
                    i += 1;
                }
                // Multi-byte characters are consumed whole, so `start..i` is on char boundaries.
                out.push((Tok::Ident(&src[start..i]), depth));
            }
            c if c.is_ascii_digit() => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.' || bytes[i] == b'_')
                {
                    i += 1;
                }
                out.push((Tok::Opaque, depth));
            }
            _ => {
                out.push((Tok::Punct(c as char), depth));
                i += 1;
            }
        }
    }
    out
}

fn skip_line(bytes: &[u8], i: usize) -> usize {
    bytes[i..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |p| i + p)
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

fn regex_allowed(prev: Option<&Tok<'_>>) -> bool {
    match prev {
        None => true,
        Some(Tok::Ident(word)) => KEYWORDS_BEFORE_EXPRESSION.contains(word),
        Some(Tok::Str(_)) | Some(Tok::Opaque) => false,
        Some(Tok::Punct(c)) => !matches!(c, ')' | ']'),
    }
}

/// The end (exclusive) of a regular expression literal starting at `start`, or `Err` with the
/// end of the line when the line ends first (then the `/` was a division after all).
fn scan_regex(bytes: &[u8], start: usize) -> Result<usize, usize> {
    let mut i = start + 1;
    let mut in_class = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' | b'\r' => return Err(i),
            b'\\' => i += 1,
            b'[' => in_class = true,
            b']' => in_class = false,
            b'/' if !in_class => {
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                    i += 1;
                }
                return Ok(i);
            }
            _ => {}
        }
        i += 1;
    }
    Err(bytes.len())
}

/// The end (exclusive) of a string literal; an unterminated string ends at the line's end.
fn scan_string(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'\n' => return i,
            b if b == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Skip template text from `i` up to its closing backtick or up to a `${`; returns the index after
/// either and whether a substitution was opened.
fn scan_template(bytes: &[u8], mut i: usize) -> (usize, bool) {
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'`' => return (i + 1, false),
            b'$' if bytes.get(i + 1) == Some(&b'{') => return (i + 2, true),
            _ => i += 1,
        }
    }
    (bytes.len(), false)
}

struct Parser<'a> {
    toks: Vec<(Tok<'a>, u32)>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&Tok<'a>> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn peek_at(&self, ahead: usize) -> Option<&Tok<'a>> {
        self.toks.get(self.pos + ahead).map(|(t, _)| t)
    }

    fn next(&mut self) -> Option<Tok<'a>> {
        let tok = self.toks.get(self.pos).map(|(t, _)| t.clone());
        self.pos += 1;
        tok
    }

    fn eat_punct(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Punct(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_ident(&mut self, word: &str) -> bool {
        if self.peek() == Some(&Tok::Ident(word)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> Option<&'a str> {
        match self.peek() {
            Some(&Tok::Ident(w)) => {
                self.pos += 1;
                Some(w)
            }
            _ => None,
        }
    }

    /// An export or import name: an identifier or (ES2022) a string.
    fn name(&mut self) -> Option<&'a str> {
        match self.peek() {
            Some(&Tok::Ident(w)) | Some(&Tok::Str(w)) => {
                self.pos += 1;
                Some(w)
            }
            _ => None,
        }
    }

    fn module(mut self) -> ModuleSyntax {
        let mut syntax = ModuleSyntax::default();
        while self.pos < self.toks.len() {
            let (tok, depth) = &self.toks[self.pos];
            let after_dot = self.pos > 0 && self.toks[self.pos - 1].0 == Tok::Punct('.');
            if *depth != 0 || after_dot {
                self.pos += 1;
                continue;
            }
            match tok {
                Tok::Ident("import") => {
                    self.pos += 1;
                    if let Some(decl) = self.import() {
                        syntax.imports.push(decl);
                    }
                }
                Tok::Ident("export") => {
                    self.pos += 1;
                    self.export(&mut syntax);
                }
                _ => self.pos += 1,
            }
        }
        syntax
    }

    fn import(&mut self) -> Option<ImportDecl> {
        // `import(...)` and `import.meta` are expressions, not declarations.
        if matches!(self.peek(), Some(Tok::Punct('(' | '.'))) {
            return None;
        }
        let mut decl = ImportDecl::default();
        if let Some(&Tok::Str(spec)) = self.peek() {
            self.pos += 1;
            decl.specifier = spec.to_string();
            return Some(decl);
        }
        // `source`/`defer` is a phase keyword unless it is the default binding itself
        // (`import source from "x"`).
        if let Some(&Tok::Ident(word @ ("source" | "defer"))) = self.peek() {
            if self.peek_at(1) != Some(&Tok::Ident("from")) {
                decl.phase = Some(word.to_string());
                self.pos += 1;
            }
        }
        loop {
            if self.eat_punct('*') {
                if !self.eat_ident("as") {
                    return None;
                }
                self.ident()?;
                decl.namespace = true;
            } else if self.eat_punct('{') {
                decl.names.extend(
                    self.specifier_list()?
                        .into_iter()
                        .map(|(imported, _)| imported),
                );
            } else if self.ident().is_some() {
                decl.names.push("default".to_string());
            } else {
                return None;
            }
            if !self.eat_punct(',') {
                break;
            }
        }
        if !self.eat_ident("from") {
            return None;
        }
        match self.next() {
            Some(Tok::Str(spec)) => decl.specifier = spec.to_string(),
            _ => return None,
        }
        Some(decl)
    }

    /// `{ a, b as c, "d" as e }` after its `{`: `(name in the other module, local name)` pairs.
    fn specifier_list(&mut self) -> Option<Vec<(String, String)>> {
        let mut out = Vec::new();
        loop {
            if self.eat_punct('}') {
                return Some(out);
            }
            let first = self.name()?;
            let second = if self.eat_ident("as") {
                self.name()?
            } else {
                first
            };
            out.push((first.to_string(), second.to_string()));
            if !self.eat_punct(',') {
                return self.eat_punct('}').then_some(out);
            }
        }
    }

    fn export(&mut self, syntax: &mut ModuleSyntax) {
        // `export async function f`: the modifier changes nothing here.
        self.eat_ident("async");
        match self.peek().cloned() {
            Some(Tok::Ident("default")) => {
                self.pos += 1;
                syntax.exports.push("default".to_string());
            }
            Some(Tok::Ident("function")) => {
                self.pos += 1;
                self.eat_punct('*');
                if let Some(name) = self.ident() {
                    syntax.exports.push(name.to_string());
                }
            }
            Some(Tok::Ident("class" | "const" | "let" | "var")) => {
                self.pos += 1;
                if let Some(name) = self.ident() {
                    syntax.exports.push(name.to_string());
                }
            }
            Some(Tok::Punct('*')) => {
                self.pos += 1;
                let alias = if self.eat_ident("as") {
                    self.name()
                } else {
                    None
                };
                if !self.eat_ident("from") {
                    return;
                }
                if let Some(Tok::Str(spec)) = self.next() {
                    if let Some(alias) = alias {
                        syntax.exports.push(alias.to_string());
                    }
                    syntax.imports.push(ImportDecl {
                        specifier: spec.to_string(),
                        namespace: true,
                        reexport: true,
                        ..ImportDecl::default()
                    });
                }
            }
            Some(Tok::Punct('{')) => {
                self.pos += 1;
                let Some(list) = self.specifier_list() else {
                    return;
                };
                syntax
                    .exports
                    .extend(list.iter().map(|(_, exported)| exported.clone()));
                if self.eat_ident("from") {
                    if let Some(Tok::Str(spec)) = self.next() {
                        syntax.imports.push(ImportDecl {
                            specifier: spec.to_string(),
                            names: list.into_iter().map(|(imported, _)| imported).collect(),
                            reexport: true,
                            ..ImportDecl::default()
                        });
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wasm_bindgen_module_glue() {
        let glue = r#"
/* @ts-self-types="./index.d.ts" */
import source wasmModule from "./index_bg.wasm";
import { helper } from './snippets/x/inline0.js';
export function __wbg_reset_state () {
    wasmInstance = new WebAssembly.Instance(wasmModule, __wbg_get_imports());
}
export function add(a, b) { return a + b; }
export class Counter { get() { return `count ${this.n}`; } }
"#;
        let m = ModuleSyntax::parse(glue);
        assert_eq!(m.exports, ["__wbg_reset_state", "add", "Counter"]);
        let wasm: Vec<_> = m.imports_from("./index_bg.wasm").collect();
        assert_eq!(wasm.len(), 1);
        assert_eq!(wasm[0].phase.as_deref(), Some("source"));
        assert_eq!(wasm[0].names, ["default"]);
        assert_eq!(
            m.imports_from("./snippets/x/inline0.js")
                .next()
                .unwrap()
                .names,
            ["helper"]
        );
    }

    #[test]
    fn ignores_lookalikes_in_comments_strings_templates_and_regexes() {
        let src = r#"
// import { __wbg_reset_state } from "./glue.js";
/* export function fake() {} */
const s = "import { a } from './glue.js'";
const t = `export function ${name}() { import x from "./glue.js" }`;
const r = /"import\/ { b } from '.\/glue.js'"/g;
function inner() { const o = { export: 1 }; return o.export; }
export { real as renamed };
"#;
        let m = ModuleSyntax::parse(src);
        assert!(m.imports.is_empty(), "{:?}", m.imports);
        assert_eq!(m.exports, ["renamed"]);
    }

    #[test]
    fn reads_every_import_and_reexport_form() {
        let src = r#"
import * as glue from "./glue.js";
import def, { __wbg_reset_state as reset, "odd name" as odd } from "./glue.js";
import "./side-effect.js";
import source from "./not-a-phase.js";
export * from "./glue.js";
export * as ns from "./other.js";
export { fetch, default as lib } from "./glue.js";
export default { fetch };
const later = import("./dynamic.js");
"#;
        let m = ModuleSyntax::parse(src);
        let glue: Vec<_> = m.imports_from("./glue.js").collect();
        assert_eq!(glue.len(), 4);
        assert!(glue[0].namespace && !glue[0].reexport);
        assert_eq!(glue[1].names, ["default", "__wbg_reset_state", "odd name"]);
        assert!(glue[2].namespace && glue[2].reexport);
        assert_eq!(glue[3].names, ["fetch", "default"]);
        assert_eq!(m.imports_from("./side-effect.js").count(), 1);
        let not_phase = m.imports_from("./not-a-phase.js").next().unwrap();
        assert_eq!(
            (not_phase.phase.as_ref(), &not_phase.names[..]),
            (None, &["default".to_string()][..])
        );
        assert_eq!(m.imports_from("./dynamic.js").count(), 0);
        assert_eq!(m.exports, ["ns", "fetch", "lib", "default"]);
    }

    #[test]
    fn pathological_input_stays_linear_and_shallow() {
        // Many unterminated regular-expression starts on one line, and a long modifier chain.
        let started = std::time::Instant::now();
        let line = "=/[".repeat(200_000);
        assert!(ModuleSyntax::parse(&line).exports.is_empty());
        let chain = format!("export {}function f() {{}}", "async ".repeat(200_000));
        assert!(ModuleSyntax::parse(&chain).exports.is_empty());
        // A hang guard, not a benchmark: linear takes milliseconds, quadratic takes minutes.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn division_is_not_a_regex_and_garbage_does_not_panic() {
        let m = ModuleSyntax::parse(
            "const x = a / b; export const y = (c) / 2 / d;\nexport function z() {}",
        );
        assert_eq!(m.exports, ["y", "z"]);
        for src in [
            "`unterminated ${",
            "'",
            "/",
            "import {",
            "export {a as",
            "}}}}{{",
            "/*",
            "`${`${`",
            "\u{e9}x",
        ] {
            let _ = ModuleSyntax::parse(src);
        }
    }
}
