//! The book's reference parts are kept in step with the code:
//!
//! - `book/src/reference/help/*.txt` are the binary's `--help` output (run with
//!   `UPDATE_SNAPSHOTS=1` to rewrite them after changing the command line);
//! - every option and argument in `--help` has a heading on its command's reference page, and
//!   every command has a page;
//! - every error code in `Code::ALL` has a troubleshooting entry whose anchor is the code, and no
//!   entry is left for a code that is gone;
//! - every check of `--check-eh` has a section, and the JSON report's fields are exactly those the
//!   documented schema names.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use cargo_worker_build::check::{self, CheckId, CheckOptions, Report, JSON_SCHEMA_VERSION};
use cargo_worker_build::errors::Code;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn book_src() -> PathBuf {
    repo_root().join("book").join("src")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The commands whose help the reference documents: snapshot name, arguments, reference page.
const COMMANDS: &[(&str, &[&str], &str)] = &[
    ("build", &[], "reference/build.md"),
    ("new", &["new"], "reference/new.md"),
    ("init", &["init"], "reference/init.md"),
    ("check", &["check"], "reference/check.md"),
    ("tools", &["tools"], "reference/tools.md"),
    ("symbolize", &["symbolize"], "reference/symbolize.md"),
];

/// Options documented once for every command, on the reference's index page.
const COMMON_OPTIONS: &[&str] = &["-h", "--help", "-V", "--version"];

/// `--help` of the real binary, at a fixed width and without colour, so the text is the same on
/// every machine.
fn help(args: &[&str]) -> String {
    let output = crate::support::tool()
        .args(args)
        .arg("--help")
        .env("COLUMNS", "100")
        .env("NO_COLOR", "1")
        .env_remove("CARGO_TERM_COLOR")
        .output()
        .expect("run cargo-worker-build --help");
    assert!(
        output.status.success(),
        "`cargo-worker-build {} --help` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("help is UTF-8")
}

#[test]
fn help_snapshots_match_the_binary() {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (name, args, _) in COMMANDS {
        let actual = help(args);
        let path = book_src()
            .join("reference")
            .join("help")
            .join(format!("{name}.txt"));
        let expected = fs::read_to_string(&path).unwrap_or_default();
        if update {
            if expected != actual {
                fs::write(&path, &actual).unwrap();
                eprintln!("UPDATE_SNAPSHOTS=1: wrote {}", path.display());
            }
            continue;
        }
        if expected != actual {
            let first_difference = expected
                .lines()
                .zip(actual.lines())
                .enumerate()
                .find(|(_, (e, a))| e != a)
                .map(|(i, (e, a))| format!("line {}:\n  book:   {e}\n  binary: {a}", i + 1))
                .unwrap_or_else(|| "one is a prefix of the other".to_string());
            stale.push(format!("{}: {first_difference}", path.display()));
        }
    }
    assert!(
        stale.is_empty(),
        "the --help snapshots in the book are out of date (rewrite them with \
         `UPDATE_SNAPSHOTS=1 cargo test --locked --test it -- docs_sync::`, then update the reference pages):\n{}",
        stale.join("\n")
    );
}

/// What a help text offers: options (`--long` and `-s`), positional arguments, commands.
#[derive(Debug, Default)]
struct HelpItems {
    /// Each option as its spellings, e.g. `["-p", "--package"]`.
    options: Vec<Vec<String>>,
    /// E.g. `[NAME]`, `[PATHS]...`.
    arguments: Vec<String>,
    commands: Vec<String>,
}

/// Reads clap's layout: section headings end with `:` at the start of a line; items are indented
/// by two spaces (`  -p, --package`, `  [NAME]`, `  new`) or six (`      --unwind`); descriptions
/// either follow on the same line after two spaces or are indented further.
fn help_items(text: &str) -> HelpItems {
    let mut items = HelpItems::default();
    let mut section = String::new();
    for line in text.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            section = line.trim_end_matches(':').to_string();
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if indent != 2 && indent != 6 {
            continue;
        }
        let item = line.trim_start().split("  ").next().unwrap_or("").trim();
        if item.starts_with('-') {
            let spellings = item
                .split(", ")
                .map(|s| {
                    s.split([' ', '='])
                        .next()
                        .unwrap()
                        .trim_end_matches("...")
                        .to_string()
                })
                .collect();
            items.options.push(spellings);
        } else if section == "Arguments" && (item.starts_with('[') || item.starts_with('<')) {
            items.arguments.push(item.to_string());
        } else if section == "Commands" && indent == 2 {
            items
                .commands
                .push(item.split_whitespace().next().unwrap().to_string());
        }
    }
    items
}

/// The code spans of every heading of a markdown page: what a reference entry is named by.
fn heading_code_spans(markdown: &str) -> Vec<String> {
    let mut spans = Vec::new();
    let mut in_fence = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence || !line.starts_with('#') {
            continue;
        }
        let mut parts = line.split('`');
        parts.next();
        while let Some(code) = parts.next() {
            spans.push(code.to_string());
            parts.next();
        }
    }
    spans
}

/// Whether a heading code span names `item`: `--package` matches `--package <SPEC>`.
fn names(span: &str, item: &str) -> bool {
    span == item
        || span.strip_prefix(item).is_some_and(|rest| {
            rest.starts_with(' ') || rest.starts_with('=') || rest.starts_with("...")
        })
}

#[test]
fn the_help_parser_reads_clap_layouts() {
    let items = help_items(
        "Usage: x [OPTIONS] [NAME]\n\nCommands:\n  new    Create\n  help   Print\n\nArguments:\n  [NAME]  The name\n\n\
         Options:\n  -t, --template <TEMPLATE>  Template [default: hello]\n      --list-templates       List\n\
         Build mode:\n      --unwind\n          Build with --unwind and --eh\n\n          Possible values:\n          - exnref: x\n\
         Output:\n  -v, --verbose...\n          Use verbose\n",
    );
    assert_eq!(items.commands, ["new", "help"]);
    assert_eq!(items.arguments, ["[NAME]"]);
    assert_eq!(
        items.options,
        [
            vec!["-t", "--template"],
            vec!["--list-templates"],
            vec!["--unwind"],
            vec!["-v", "--verbose"],
        ]
    );
}

#[test]
fn every_option_and_argument_in_help_has_a_reference_entry() {
    let common = heading_code_spans(&read(&book_src().join("reference/index.md")));
    let mut missing = Vec::new();
    let mut total = 0;
    for (name, args, page) in COMMANDS {
        let text = help(args);
        let items = help_items(&text);
        let page_text = read(&book_src().join(page));
        let spans = heading_code_spans(&page_text);
        let documented = |item: &str| {
            spans.iter().any(|s| names(s, item))
                || (COMMON_OPTIONS.contains(&item) && common.iter().any(|s| names(s, item)))
        };
        for spellings in &items.options {
            for spelling in spellings {
                total += 1;
                if !documented(spelling) {
                    missing.push(format!("{page}: `{spelling}` ({name} --help)"));
                }
            }
        }
        for argument in &items.arguments {
            total += 1;
            if !documented(argument) {
                missing.push(format!("{page}: `{argument}` ({name} --help)"));
            }
        }
        assert!(
            page_text.contains(&format!("{{{{#include help/{name}.txt}}}}")),
            "{page} should include its --help snapshot, help/{name}.txt"
        );
    }
    assert!(total > 40, "the help parser found only {total} items");
    assert!(
        missing.is_empty(),
        "options and arguments in --help without a heading on their reference page \
         (add `### `--flag <VALUE>` {{#flag}}` with what it does):\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_command_has_a_reference_page() {
    let items = help_items(&help(&[]));
    assert!(
        items.commands.len() >= 4,
        "no commands found in --help: {items:?}"
    );
    let summary = read(&book_src().join("SUMMARY.md"));
    let index = read(&book_src().join("reference/index.md"));
    for command in &items.commands {
        if command == "help" {
            assert!(
                heading_code_spans(&index).iter().any(|s| s == "help"),
                "reference/index.md has no `help` heading"
            );
            continue;
        }
        assert!(
            COMMANDS.iter().any(|(name, _, _)| name == command),
            "command `{command}` is not in this test's COMMANDS (add it with its page and snapshot)"
        );
        let page = format!("reference/{command}.md");
        assert!(
            book_src().join(&page).is_file(),
            "no reference page {page} for `{command}`"
        );
        assert!(
            summary.contains(&format!("]({page})")),
            "{page} is not in SUMMARY.md"
        );
        assert!(
            index.contains(&format!("]({command}.md)")),
            "reference/index.md does not link to {command}.md"
        );
    }
}

/// `### `code` {#code}` headings under `## Error codes`, in order.
fn troubleshooting_codes(markdown: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut in_codes = false;
    for line in markdown.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            in_codes = title.trim() == "Error codes";
            continue;
        }
        if !in_codes {
            continue;
        }
        if let Some(title) = line.strip_prefix("### ") {
            let anchor = title
                .rsplit_once("{#")
                .map(|(_, a)| a.trim_end_matches('}').to_string())
                .unwrap_or_default();
            out.push((title.to_string(), anchor));
        }
    }
    out
}

#[test]
fn every_error_code_has_a_troubleshooting_entry() {
    let text = read(&book_src().join("troubleshooting.md"));
    let entries = troubleshooting_codes(&text);
    let mut missing = Vec::new();
    for code in Code::ALL {
        let code = code.as_str();
        let found = entries
            .iter()
            .any(|(title, anchor)| anchor == code && title.contains(&format!("`{code}`")));
        if !found {
            missing.push(code);
        }
    }
    assert!(
        missing.is_empty(),
        "error codes without a troubleshooting entry (add `### `CODE` {{#CODE}}` under \
         `## Error codes` in book/src/troubleshooting.md with the message, cause and fix): {missing:?}"
    );
    let known: BTreeSet<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
    let stale: Vec<&String> = entries
        .iter()
        .map(|(_, anchor)| anchor)
        .filter(|a| !known.contains(a.as_str()))
        .collect();
    assert!(
        stale.is_empty(),
        "troubleshooting entries for codes the tool no longer has: {stale:?}"
    );
}

/// Every check identifier. The match makes this fail to compile when a check is added, so the
/// list, and with it the chapter, cannot silently fall behind.
fn all_checks() -> Vec<CheckId> {
    let all = vec![
        CheckId::Decode,
        CheckId::EhEncoding,
        CheckId::Unwinding,
        CheckId::Recovery,
        CheckId::Bundle,
        CheckId::WasmBindgen,
        CheckId::Load,
        CheckId::Symbols,
    ];
    for id in &all {
        match id {
            CheckId::Decode
            | CheckId::EhEncoding
            | CheckId::Unwinding
            | CheckId::Recovery
            | CheckId::Bundle
            | CheckId::WasmBindgen
            | CheckId::Load
            | CheckId::Symbols => {}
        }
    }
    all
}

#[test]
fn every_check_has_a_section_in_the_check_chapter() {
    let text = read(&book_src().join("check-eh.md"));
    let headings: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .map(str::trim)
        .collect();
    for id in all_checks() {
        assert!(
            headings.contains(&id.as_str()),
            "check-eh.md has no `### {}` section",
            id.as_str()
        );
    }
}

/// The schema block of the check chapter: the `text` fence that starts with `{`.
fn documented_schema(chapter: &str) -> String {
    let start = chapter
        .find("```text\n{\n  \"schema_version\"")
        .expect("check-eh.md has the JSON schema block");
    let body = &chapter[start + "```text\n".len()..];
    body[..body.find("```").expect("schema block is closed")].to_string()
}

/// Every `"key":` in the documented schema.
fn documented_keys(schema: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut rest = schema;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('"') else { break };
        let word = &after[..end];
        let tail = after[end + 1..].trim_start();
        if tail.starts_with(':') {
            keys.insert(word.to_string());
        }
        rest = &after[end + 1..];
    }
    keys
}

/// Every object key in a JSON value, except inside the manifest (written by the build, whose
/// fields are the bundle's own business).
fn report_keys(value: &serde_json::Value, keys: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                keys.insert(k.clone());
                if k != "manifest" {
                    report_keys(v, keys);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| report_keys(v, keys)),
        _ => {}
    }
}

/// A small bundle whose report fills every section: a module with Rust's exception tag and
/// wasm-bindgen's recovery globals, an entry and a glue.
fn sample_bundle(dir: &Path) {
    let wasm = wat::parse_str(
        r#"(module
            (import "wbg" "__wbindgen_jstag" (tag (param externref)))
            (tag $rust (export "__cpp_exception") (param i32))
            (global (export "__instance_terminated") i32 (i32.const 1024))
            (global (export "__abort_handler") i32 (i32.const 1028))
            (memory (export "memory") 1)
            (func (export "fetch") (param i32)
                local.get 0
                throw $rust))"#,
    )
    .expect("sample module");
    fs::write(dir.join("index_bg.wasm"), wasm).unwrap();
    fs::write(
        dir.join("index.js"),
        "import \"./runtime.js\";\nimport * as glue from \"./glue.js\";\nexport default { fetch: glue.fetch };\n",
    )
    .unwrap();
    fs::write(dir.join("runtime.js"), "export {};\n").unwrap();
    fs::write(
        dir.join("glue.js"),
        "import source wasmModule from \"./index_bg.wasm\";\nexport function fetch() {}\nexport function __wbg_reset_state() {}\n",
    )
    .unwrap();
}

#[test]
fn the_json_report_has_exactly_the_documented_fields() {
    let chapter = read(&book_src().join("check-eh.md"));
    let schema = documented_schema(&chapter);
    assert!(
        schema.contains(&format!("\"schema_version\": {JSON_SCHEMA_VERSION}")),
        "the documented schema is not version {JSON_SCHEMA_VERSION}"
    );
    let documented = documented_keys(&schema);

    // A real report from the binary: one bundle, and one input that cannot be read.
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("build");
    fs::create_dir(&bundle).unwrap();
    sample_bundle(&bundle);
    let output = crate::support::tool()
        .arg("check")
        .arg(&bundle)
        .arg(dir.path().join("missing.wasm"))
        .args(["--message-format", "json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "check did not print one JSON object ({e}):\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(
        report["modules"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    assert_eq!(
        report["errors"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    assert_eq!(
        report["modules"][0]["unwinding"]["unwinds"], true,
        "the sample module should unwind: {report}"
    );
    let mut actual = BTreeSet::new();
    report_keys(&report, &mut actual);
    // An undecodable module is reported as an input error by the command line; the library's
    // report shows the `error` object the schema documents for it.
    let undecodable = check::check_module(
        "garbage.wasm",
        b"\0asm\x01\0\0\0\x01\xff",
        None,
        &CheckOptions::default(),
    );
    assert!(undecodable.error.is_some());
    report_keys(
        &Report {
            modules: vec![undecodable],
            errors: Vec::new(),
        }
        .to_json(),
        &mut actual,
    );

    let undocumented: Vec<&String> = actual.difference(&documented).collect();
    let stale: Vec<&String> = documented.difference(&actual).collect();
    assert!(
        undocumented.is_empty() && stale.is_empty(),
        "the JSON schema in book/src/check-eh.md is out of step with the report:\n\
         fields in the report but not documented: {undocumented:?}\n\
         documented fields the report does not have: {stale:?}"
    );
}

#[test]
fn the_build_summary_fields_are_documented() {
    let page = read(&book_src().join("reference/build.md"));
    let row = page
        .lines()
        .find(|l| l.starts_with("| `build-finished` |"))
        .expect("build.md documents the build-finished object");
    let output = crate::support::tool()
        .args(["--dry-run", "--message-format", "json", "--manifest-path"])
        .arg(repo_root().join("tests/fixtures/plain/Cargo.toml"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let objects = crate::support::json_lines(&output.stdout);
    let reasons: Vec<&str> = objects
        .iter()
        .filter_map(|o| o["reason"].as_str())
        .collect();
    assert_eq!(
        reasons,
        ["plan", "dry-run"],
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(page.contains("| `plan` |") && page.contains("`dry-run`"));
    let summary = objects[1].as_object().unwrap();
    let undocumented: Vec<&String> = summary
        .keys()
        .filter(|k| k.as_str() != "reason" && !row.contains(&format!("`{k}`")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "fields of the build summary missing from the build-finished row of build.md: {undocumented:?}"
    );
}
