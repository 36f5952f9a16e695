//! Reads the top-level `import` and `export` declarations of an ES module.
//!
//! The bundle check needs to know what the entry module imports from the glue and what the glue
//! exports; searching the text for a name would also match comments, strings and unrelated
//! identifiers. The module is parsed by `swc_ecma_parser`, a complete ECMAScript parser (import
//! attributes and source-phase imports included), and only its module declarations are kept.
//!
//! A file that is not a valid ES module yields a [`SyntaxError`] with its line and column, which
//! the check reports as the reason it cannot read the bundle's wiring. The parser is recursive, so
//! it runs on a thread of its own with a large stack, and text whose brackets nest deeper than
//! [`MAX_NESTING`] is refused before parsing rather than overflowing that stack.

use std::fmt;

use swc_common::{BytePos, Spanned};
use swc_ecma_ast::{
    Decl, ExportSpecifier, ImportPhase, ImportSpecifier, ModuleDecl, ModuleExportName, ModuleItem,
    ObjectPatProp, Pat, Str,
};
use swc_ecma_parser::{EsSyntax, Parser, StringInput, Syntax};

/// Deepest bracket nesting (`(`, `[`, `{`, counted over the raw text) a module may have. Real
/// bundles stay far below it (the deepest of 76 large npm bundles measured: 250).
pub const MAX_NESTING: usize = 2000;

/// Most operators and statements the parser may be inside at once without a bracket between
/// them (`!!!!x`, `a = a = ...`, `a ? b : a ? ...`, `a => a => ...`, `if (a) if (a) ...`,
/// `l: l: ...`), over all bracket levels: the parser recurses on each, as on a bracket. Counted
/// by [`operators_exceeded`], which over-counts a little. The costliest (arrow functions, about
/// 13-25 KiB of stack a level in a debug build, measured) at this depth take a fifth of
/// [`PARSER_STACK`]. Real code stays far below: the 32 files over 300 KB in this repository's
/// `node_modules` (wrangler, TypeScript, miniflare, vite; up to 20 MB) count less than 400.
pub const MAX_OPERATORS: usize = 2000;

/// Stack of the parsing thread: four times what [`MAX_NESTING`] levels of parentheses take in a
/// debug build (16-32 KiB a level, measured), so chains that recurse without brackets
/// (`a => b => ...`) have room too. Only the pages used are allocated.
const PARSER_STACK: usize = 256 << 20;

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

/// Why a text is not a module the check can read: where (1-based line and column, in
/// characters) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for SyntaxError {}

impl ModuleSyntax {
    /// Parse `source` as an ES module (strict mode, module goal) and read its declarations.
    pub fn parse(source: &str) -> Result<ModuleSyntax, SyntaxError> {
        if let Some(offset) = nesting_exceeded(source.as_bytes()) {
            return Err(SyntaxError::at(
                source,
                offset,
                format!("brackets nest more than {MAX_NESTING} deep"),
            ));
        }
        if let Some(offset) = operators_exceeded(source.as_bytes()) {
            return Err(SyntaxError::at(
                source,
                offset,
                format!(
                    "operators and statements nest more than {MAX_OPERATORS} deep without brackets"
                ),
            ));
        }
        // The tree is built, read and dropped (its drop recurses too) on the parser's thread.
        std::thread::scope(|scope| {
            let parser = std::thread::Builder::new()
                .name("js-parser".into())
                .stack_size(PARSER_STACK)
                .spawn_scoped(scope, || parse_module(source));
            match parser {
                Ok(handle) => handle.join().unwrap_or_else(|_| {
                    Err(SyntaxError::at(
                        source,
                        0,
                        "the JavaScript parser failed".into(),
                    ))
                }),
                Err(e) => Err(SyntaxError::at(
                    source,
                    0,
                    format!("could not start the JavaScript parser: {e}"),
                )),
            }
        })
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

impl SyntaxError {
    fn at(source: &str, offset: usize, message: String) -> SyntaxError {
        let mut offset = offset.min(source.len());
        while !source.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &source[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        SyntaxError {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
            message,
        }
    }
}

/// The offset at which the raw bracket depth first exceeds [`MAX_NESTING`]. Brackets inside
/// strings and comments count too, so this over-counts a little; it never parses.
fn nesting_exceeded(bytes: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    for (offset, b) in bytes.iter().enumerate() {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(offset);
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// What the token before says about the next one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Prev {
    /// The end of an operand (a name, a literal, a closing bracket): a `/` divides, a `+` adds,
    /// and a name after it starts a new statement.
    Operand,
    /// An operator, a keyword or the start: a `/` starts a regular expression.
    Other,
}

/// One bracket level of [`operators_exceeded`]: how many operators are open in it, what closes
/// it (a backtick: the template literal a `${` is in), and whether it is the `(...)` of an `if`,
/// `while`, `for`, `with`, `switch` or `catch` (a statement that goes on after it).
struct Level {
    open: usize,
    closer: u8,
    header: bool,
}

impl Level {
    fn new(closer: u8) -> Level {
        Level {
            open: 0,
            closer,
            header: false,
        }
    }

    fn template() -> Level {
        Level::new(b'`')
    }
}

/// The offset at which more than [`MAX_OPERATORS`] operators and statements the parser recurses
/// on are open at once. A light tokenizer (comments, strings, template literals and regular
/// expressions skipped) counts them for each bracket level; a level's count restarts where
/// what was open in it has ended for sure: at `;` and `,`, and where a name follows an operand
/// (a new statement), except before `else`, `while`, `catch` and `finally`, which continue one.
fn operators_exceeded(bytes: &[u8]) -> Option<usize> {
    const CONTINUING: &[&[u8]] = &[
        b"else",
        b"while",
        b"catch",
        b"finally",
        b"in",
        b"instanceof",
        b"of",
    ];
    const OPENING: &[&[u8]] = &[
        b"typeof", b"void", b"delete", b"await", b"new", b"yield", b"if", b"while", b"for",
        b"with", b"do", b"else", b"return", b"throw", b"case",
    ];
    // Words an operand follows in the same statement (`async x => y`, `a in b`).
    const BEFORE_OPERAND: &[&[u8]] = &[
        b"async",
        b"extends",
        b"let",
        b"const",
        b"var",
        b"export",
        b"default",
        b"import",
        b"function",
        b"class",
        b"static",
        b"get",
        b"set",
        b"from",
        b"as",
    ];
    const HEADERS: &[&[u8]] = &[b"if", b"while", b"for", b"with", b"switch", b"catch"];
    let is_name = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80;
    let mut levels: Vec<Level> = vec![Level::new(0)];
    let mut total = 0usize;
    let mut prev = Prev::Other;
    let mut last_word: &[u8] = b"";
    // After `.` or `?.`, a keyword is a property name (`promise.catch`, `map.delete`).
    let mut property = false;
    // A `;` or `,` was read: the count restarts unless the next word continues the statement.
    let mut ended = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let start = i;
        if b.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if b == b'/' && bytes.get(i + 1) == Some(&b'/') {
            i = memchr_or_end(bytes, i, b'\n');
            continue;
        }
        if b == b'/' && bytes.get(i + 1) == Some(&b'*') {
            i = bytes[i + 2..]
                .windows(2)
                .position(|w| w == b"*/")
                .map_or(bytes.len(), |p| i + 2 + p + 2);
            continue;
        }
        let word: &[u8] = if is_name(b) {
            while i < bytes.len() && is_name(bytes[i]) {
                i += 1;
            }
            &bytes[start..i]
        } else {
            b""
        };
        let level = levels.last_mut().expect("the top level is never closed");
        let continues = CONTINUING.contains(&word);
        if ended && !continues {
            total -= level.open;
            level.open = 0;
        }
        ended = false;
        if !word.is_empty() {
            if b.is_ascii_digit() {
                prev = Prev::Operand;
                property = false;
                last_word = b"";
                continue;
            }
            // A name after an operand: the statement before ended (or the text is no module).
            if prev == Prev::Operand && !continues {
                total -= level.open;
                level.open = 0;
            }
            let is_property = std::mem::take(&mut property);
            if OPENING.contains(&word) && !is_property {
                level.open += 1;
                total += 1;
                prev = Prev::Other;
            } else if (continues || BEFORE_OPERAND.contains(&word)) && !is_property {
                prev = Prev::Other;
            } else {
                prev = Prev::Operand;
            }
            last_word = word;
            if total > MAX_OPERATORS {
                return Some(start);
            }
            continue;
        }
        let word_before = std::mem::take(&mut last_word);
        if !matches!(b, b'.' | b'?') {
            property = false;
        }
        i += 1;
        match b {
            b'"' | b'\'' => {
                i = string_end(bytes, i, b);
                prev = Prev::Operand;
            }
            b'`' => {
                i = template_end(bytes, i, &mut levels);
                prev = Prev::Operand;
            }
            b'/' if prev == Prev::Other => {
                i = regex_end(bytes, i);
                prev = Prev::Operand;
            }
            b'(' | b'[' | b'{' => {
                levels.push(Level {
                    open: 0,
                    closer: match b {
                        b'(' => b')',
                        b'[' => b']',
                        _ => b'}',
                    },
                    header: b == b'(' && HEADERS.contains(&word_before),
                });
                prev = Prev::Other;
            }
            b')' | b']' | b'}' => {
                if levels.len() > 1 && levels.last().is_some_and(|l| l.closer == b) {
                    let closed = levels.pop().expect("more than one level");
                    total -= closed.open;
                    // `if (a)` goes on with its statement: not an operand.
                    prev = if closed.header {
                        Prev::Other
                    } else {
                        Prev::Operand
                    };
                    // The rest of a template literal after `${...}`.
                    if closed.closer == b'}' && levels.last().is_some_and(|l| l.closer == b'`') {
                        levels.pop();
                        i = template_end(bytes, i, &mut levels);
                        prev = Prev::Operand;
                    }
                } else {
                    prev = Prev::Operand;
                }
            }
            b';' | b',' => {
                ended = true;
                prev = Prev::Other;
            }
            _ => {
                // The longest punctuator here (`=>`, `**=`, `>>>=`, `?.`, `...`).
                let rest = &bytes[start..];
                let len = PUNCTUATORS
                    .iter()
                    .find(|p| {
                        rest.starts_with(p)
                            // `a?.5:b` is a conditional.
                            && !(**p == b"?." && rest.get(2).is_some_and(u8::is_ascii_digit))
                    })
                    .map_or(1, |p| p.len());
                let end = start + len;
                let op = &bytes[start..end];
                i = end;
                property = op == b"." || op == b"?.";
                let opens = match op {
                    b"!" | b"~" | b"?" | b":" | b"=>" | b"**" | b"..." => true,
                    b"+" | b"-" | b"++" | b"--" => prev == Prev::Other,
                    b"==" | b"===" | b"!=" | b"!==" | b"<=" | b">=" => false,
                    _ => op.ends_with(b"="),
                };
                if opens {
                    let level = levels.last_mut().expect("the top level is never closed");
                    level.open += 1;
                    total += 1;
                    if total > MAX_OPERATORS {
                        return Some(start);
                    }
                }
                // `x++ / 2`: a postfix operator ends an operand.
                prev = if (op == b"++" || op == b"--") && prev == Prev::Operand {
                    Prev::Operand
                } else {
                    Prev::Other
                };
            }
        }
    }
    None
}

/// JavaScript's punctuators of more than one character, longest first.
const PUNCTUATORS: &[&[u8]] = &[
    b">>>=", b"...", b"===", b"!==", b"**=", b"<<=", b">>=", b">>>", b"&&=", b"||=", b"??=", b"=>",
    b"==", b"!=", b"<=", b">=", b"&&", b"||", b"??", b"?.", b"++", b"--", b"+=", b"-=", b"*=",
    b"/=", b"%=", b"&=", b"|=", b"^=", b"**", b"<<", b">>",
];

fn memchr_or_end(bytes: &[u8], from: usize, byte: u8) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == byte)
        .map_or(bytes.len(), |p| from + p)
}

/// After the closing quote (or at the end of the line: an unterminated string).
fn string_end(bytes: &[u8], mut i: usize, quote: u8) -> usize {
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

/// After a template literal's closing backtick, or after a `${` (a level is pushed whose `}`
/// returns to the literal).
fn template_end(bytes: &[u8], mut i: usize, levels: &mut Vec<Level>) -> usize {
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'`' => return i + 1,
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                levels.push(Level::template());
                levels.push(Level::new(b'}'));
                return i + 2;
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

/// After a regular expression literal (`[...]` classes may hold a `/`), or at the end of the
/// line.
fn regex_end(bytes: &[u8], mut i: usize) -> usize {
    let mut class = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'\n' => return i,
            b'[' => {
                class = true;
                i += 1;
            }
            b']' => {
                class = false;
                i += 1;
            }
            b'/' if !class => {
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
                    i += 1;
                }
                return i;
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The span offsets start here: swc reserves position 0 for "no position".
const START: u32 = 1;

fn parse_module(source: &str) -> Result<ModuleSyntax, SyntaxError> {
    let Ok(len) = u32::try_from(source.len()) else {
        return Err(SyntaxError::at(source, 0, "the file is over 4 GiB".into()));
    };
    let input = StringInput::new(source, BytePos(START), BytePos(START + len));
    let syntax = Syntax::Es(EsSyntax {
        import_attributes: true,
        explicit_resource_management: true,
        ..EsSyntax::default()
    });
    let mut parser = Parser::new(syntax, input, None);
    let parsed = parser.parse_module();
    // The parser recovers from some errors (an unterminated string, a strict-mode violation) and
    // goes on; the runtime would refuse the module all the same, and what follows the error may
    // be misread (a truncated file), so the first error of either kind is the result.
    let mut errors = parser.take_errors();
    let module = match parsed {
        Ok(module) if errors.is_empty() => module,
        Ok(_) => return Err(first_error(source, errors)),
        Err(fatal) => {
            errors.push(fatal);
            return Err(first_error(source, errors));
        }
    };
    let mut syntax = ModuleSyntax::default();
    for item in &module.body {
        if let ModuleItem::ModuleDecl(decl) = item {
            syntax.read(decl);
        }
    }
    Ok(syntax)
}

/// The error that comes first in the text.
fn first_error(source: &str, errors: Vec<swc_ecma_parser::error::Error>) -> SyntaxError {
    let first = errors.into_iter().min_by_key(|e| e.span().lo);
    let offset = first
        .as_ref()
        .map_or(0, |e| e.span().lo.0.saturating_sub(START) as usize);
    let message = first.map_or_else(|| "not a module".into(), |e| e.kind().msg().into_owned());
    SyntaxError::at(source, offset, message)
}

fn text(s: &Str) -> String {
    s.value.to_string_lossy().into_owned()
}

fn name(n: &ModuleExportName) -> String {
    n.atom().to_string()
}

impl ModuleSyntax {
    fn read(&mut self, decl: &ModuleDecl) {
        match decl {
            ModuleDecl::Import(import) => {
                let mut decl = ImportDecl {
                    specifier: text(&import.src),
                    phase: match import.phase {
                        ImportPhase::Evaluation => None,
                        ImportPhase::Source => Some("source".into()),
                        ImportPhase::Defer => Some("defer".into()),
                    },
                    ..ImportDecl::default()
                };
                for specifier in &import.specifiers {
                    match specifier {
                        ImportSpecifier::Named(named) => decl.names.push(match &named.imported {
                            Some(imported) => name(imported),
                            None => named.local.sym.to_string(),
                        }),
                        ImportSpecifier::Default(_) => decl.names.push("default".into()),
                        ImportSpecifier::Namespace(_) => decl.namespace = true,
                    }
                }
                self.imports.push(decl);
            }
            ModuleDecl::ExportDecl(export) => match &export.decl {
                Decl::Class(class) => self.exports.push(class.ident.sym.to_string()),
                Decl::Fn(function) => self.exports.push(function.ident.sym.to_string()),
                Decl::Var(var) => {
                    for declarator in &var.decls {
                        bound_names(&declarator.name, &mut self.exports);
                    }
                }
                Decl::Using(using) => {
                    for declarator in &using.decls {
                        bound_names(&declarator.name, &mut self.exports);
                    }
                }
                _ => {}
            },
            ModuleDecl::ExportNamed(export) => {
                let mut reexport = ImportDecl {
                    reexport: true,
                    ..ImportDecl::default()
                };
                for specifier in &export.specifiers {
                    match specifier {
                        ExportSpecifier::Named(named) => {
                            let exported = named.exported.as_ref().unwrap_or(&named.orig);
                            self.exports.push(name(exported));
                            reexport.names.push(name(&named.orig));
                        }
                        ExportSpecifier::Namespace(namespace) => {
                            self.exports.push(name(&namespace.name));
                            reexport.namespace = true;
                        }
                        ExportSpecifier::Default(default) => {
                            self.exports.push(default.exported.sym.to_string());
                            reexport.names.push("default".into());
                        }
                    }
                }
                if let Some(src) = &export.src {
                    reexport.specifier = text(src);
                    self.imports.push(reexport);
                }
            }
            ModuleDecl::ExportDefaultDecl(_) | ModuleDecl::ExportDefaultExpr(_) => {
                self.exports.push("default".into());
            }
            ModuleDecl::ExportAll(all) => self.imports.push(ImportDecl {
                specifier: text(&all.src),
                namespace: true,
                reexport: true,
                ..ImportDecl::default()
            }),
            _ => {}
        }
    }
}

/// The names a binding pattern declares: `a` in `const a = 1`, `b` and `c` in
/// `const { b, x: [c] } = o`.
fn bound_names(pat: &Pat, out: &mut Vec<String>) {
    match pat {
        Pat::Ident(binding) => out.push(binding.id.sym.to_string()),
        Pat::Array(array) => {
            for element in array.elems.iter().flatten() {
                bound_names(element, out);
            }
        }
        Pat::Rest(rest) => bound_names(&rest.arg, out),
        Pat::Object(object) => {
            for prop in &object.props {
                match prop {
                    ObjectPatProp::KeyValue(kv) => bound_names(&kv.value, out),
                    ObjectPatProp::Assign(assign) => out.push(assign.key.id.sym.to_string()),
                    ObjectPatProp::Rest(rest) => bound_names(&rest.arg, out),
                }
            }
        }
        Pat::Assign(assign) => bound_names(&assign.left, out),
        _ => {}
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
        let m = ModuleSyntax::parse(glue).unwrap();
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
        let m = ModuleSyntax::parse(src).unwrap();
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
        let m = ModuleSyntax::parse(src).unwrap();
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
    fn reads_attributes_phases_and_every_export_form() {
        let src = r#"
import data from "./data.json" with { type: "json" };
import defer * as lazy from "./lazy.js";
import source wasm from "./index_bg.wasm";
export let a = 1, b;
export const { c, d: [e, ...f], g = 2, ...h } = data;
export async function run() { await lazy.go(); }
export function* gen() {}
export default class Counter {}
export { a as "string name" };
"#;
        let m = ModuleSyntax::parse(src).unwrap();
        let phases: Vec<_> = m
            .imports
            .iter()
            .map(|i| (i.specifier.as_str(), i.phase.as_deref(), i.namespace))
            .collect();
        assert_eq!(
            phases,
            [
                ("./data.json", None, false),
                ("./lazy.js", Some("defer"), true),
                ("./index_bg.wasm", Some("source"), false),
            ]
        );
        assert_eq!(
            m.exports,
            [
                "a",
                "b",
                "c",
                "e",
                "f",
                "g",
                "h",
                "run",
                "gen",
                "default",
                "string name"
            ]
        );
    }

    #[test]
    fn a_script_without_module_syntax_has_no_declarations() {
        let m = ModuleSyntax::parse("addEventListener('fetch', (e) => e.respondWith(go(e)));\n")
            .unwrap();
        assert_eq!(m, ModuleSyntax::default());
    }

    #[test]
    fn a_file_that_is_not_a_module_says_where_and_why() {
        let e = ModuleSyntax::parse("import { a } from './x.js';\nexport function (b) {}\n")
            .unwrap_err();
        assert_eq!((e.line, e.column), (2, 17), "{e}");
        assert!(e.to_string().starts_with("line 2, column 17: "), "{e}");
        // A truncated file (a download cut short) is an error too, not a module without imports.
        let e = ModuleSyntax::parse("import { __wbg_reset_state } from \"./gl").unwrap_err();
        assert_eq!(e.line, 1, "{e}");
        // Multi-byte characters count as one column: the error is at the `;`.
        let e = ModuleSyntax::parse("const \u{e9}\u{e9} = 1 +;").unwrap_err();
        assert_eq!((e.line, e.column), (1, 15), "{e}");
    }

    #[test]
    fn pathological_input_stays_linear_and_shallow() {
        // Many unterminated regular-expression starts on one line, and a long modifier chain.
        let started = std::time::Instant::now();
        let line = "=/[".repeat(200_000);
        assert!(ModuleSyntax::parse(&line).is_err());
        let chain = format!("export {}function f() {{}}", "async ".repeat(200_000));
        assert!(ModuleSyntax::parse(&chain).is_err());
        // Nesting the parser would recurse into until its stack overflows is refused up front.
        for open in ["(", "[", "{", "x = `${"] {
            let e = ModuleSyntax::parse(&open.repeat(100_000)).unwrap_err();
            assert!(e.message.contains("nest more than"), "{open}: {e}");
        }
        // Up to the limit, and in chains without brackets, the parser's stack suffices (in a
        // debug build, where frames are largest).
        let n = MAX_NESTING - 10;
        let deep = format!("export const x = {}1{};", "(".repeat(n), ")".repeat(n));
        assert_eq!(ModuleSyntax::parse(&deep).unwrap().exports, ["x"]);
        let deep = format!(
            "export const x = [{}{}];",
            "{a:[".repeat(n / 2),
            "]}".repeat(n / 2)
        );
        assert_eq!(ModuleSyntax::parse(&deep).unwrap().exports, ["x"]);
        for chain in [
            "a => ", "!", "a ? b : ", "a = ", "-", "new ", "typeof ", "await ",
        ] {
            let src = format!("export const x = {}1;", chain.repeat(10_000));
            let _ = ModuleSyntax::parse(&src);
        }
        let src = format!(
            "if (a) {{}}{} export {{ a }};",
            " else if (a) {}".repeat(MAX_OPERATORS / 2 - 10)
        );
        assert_eq!(ModuleSyntax::parse(&src).unwrap().exports, ["a"]);
        // A hang guard, not a benchmark: linear takes milliseconds, quadratic takes minutes.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "{:?}",
            started.elapsed()
        );
    }

    /// Issue 22: the bracket guard let through nesting without brackets, which overflowed the
    /// parser's stack (aborting the process) at 20,000 arrow functions or 50,000 `if`s, and
    /// took minutes on nested labels. Each is refused up front, quickly, saying where.
    #[test]
    fn nesting_without_brackets_is_refused_before_parsing() {
        let started = std::time::Instant::now();
        let expressions = [
            "!",
            "~",
            "- ",
            "+ ",
            "++",
            "typeof ",
            "void ",
            "delete ",
            "await ",
            "new ",
            "a = ",
            "a += ",
            "a ??= ",
            "a ? b : ",
            "a => ",
            "async a => ",
            "2 ** ",
            "...",
            "x.y = ",
            "`${a}` + !",
            "a = b in ",
            "a instanceof ! ",
        ];
        for unit in expressions {
            for n in [MAX_OPERATORS + 1, 1_000_000] {
                let src = format!("export const x = {}1;", unit.repeat(n));
                let e = ModuleSyntax::parse(&src).map(|_| ()).expect_err(unit);
                assert!(
                    e.message.contains("without brackets"),
                    "{unit:?} x {n}: {e}"
                );
                assert_eq!(e.line, 1, "{unit:?}: {e}");
            }
        }
        let statements = [
            "if (a) ",
            "while (a) ",
            "for (;;) ",
            "for (x of y) ",
            "do ",
            "l: ",
            "if (a) x; else ",
            "if (a) {} else ",
            "\nif (a)\n",
            "label: for (;;) ",
        ];
        for unit in statements {
            let src = format!("{}x;", unit.repeat(MAX_OPERATORS + 1));
            let e = ModuleSyntax::parse(&src).map(|_| ()).expect_err(unit);
            assert!(e.message.contains("without brackets"), "{unit:?}: {e}");
        }
        // The limit counts across brackets too.
        let src = format!(
            "export const x = {}1{};",
            "!(".repeat(MAX_OPERATORS),
            ")".repeat(MAX_OPERATORS)
        );
        assert!(ModuleSyntax::parse(&src).is_err());
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "{:?}",
            started.elapsed()
        );
    }

    /// What the guard must not refuse: code that is long but not deep, at any length (a
    /// statement, a comma or a new line ends what was open), and the deepest it allows.
    #[test]
    fn long_real_code_and_the_deepest_allowed_still_parse() {
        let n = 20_000;
        let mut src = String::from("export const x = 1;\n");
        src.push_str(&"a = b ? c : d;\nif (a) b = !c; else d = -e;\n".repeat(n));
        src.push_str(&"a = 1\nb = c => d\nif (x) y\nwhile (z) w()\n".repeat(n));
        src.push_str(&format!("f({});\n", "a = !b, ".repeat(n)));
        src.push_str(&format!("o = {{ {} }};\n", "k: v ? 1 : 2, ".repeat(n)));
        src.push_str(&format!("s = \"\" {};\n", "+ x + \"!\"".repeat(n)));
        src.push_str(&format!("c = {}z;\n", "a.b().c?.d[e].".repeat(n)));
        src.push_str(&format!(
            "t = `{}`;\n",
            "${a ? b : !c} = ${x => y} ! ? : = ".repeat(n)
        ));
        src.push_str(&"r = /[!?:=]+/g.test(s) ? x / 2 : y++ / 3;\n".repeat(n));
        src.push_str(&"m.delete(k); p.catch(e => f(e)).finally(g); q.new = !1;\n".repeat(n));
        src.push_str(&"// ! ? : = => if else\n/* !!!!!!!! ? : */ '!!!!'; \"? ?\";\n".repeat(n));
        src.push_str(&"switch (a) { case 1: b = c; break; default: d = !e }\n".repeat(100));
        assert_eq!(ModuleSyntax::parse(&src).unwrap().exports, ["x"]);

        // The deepest allowed, in the costliest form, inside the deepest brackets allowed: the
        // parser's stack still suffices (in a debug build, where frames are largest).
        let k = MAX_NESTING - 10;
        let src = format!(
            "export const x = {}{}1{};",
            "(".repeat(k),
            "a => ".repeat(MAX_OPERATORS - 10),
            ")".repeat(k)
        );
        assert_eq!(ModuleSyntax::parse(&src).unwrap().exports, ["x"]);
    }

    #[test]
    fn division_is_not_a_regex_and_garbage_is_an_error() {
        let m = ModuleSyntax::parse(
            "const x = a / b; export const y = (c) / 2 / d;\nexport function z() {}",
        )
        .unwrap();
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
            "\u{0}\u{1}\u{fffd}",
        ] {
            assert!(ModuleSyntax::parse(src).is_err(), "{src:?}");
        }
        assert_eq!(
            ModuleSyntax::parse("\u{e9}x").unwrap(),
            ModuleSyntax::default()
        );
    }
}
