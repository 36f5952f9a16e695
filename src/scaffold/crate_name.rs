//! Which names a new project may have, and a valid one to suggest when the user's is not.
//!
//! The name becomes the package name in Cargo.toml and the Worker's name in wrangler.toml, so it
//! must satisfy both: cargo's rules (no keywords, no names of the standard crates or of cargo's
//! output directories, no Windows device names) and Cloudflare's (lowercase, at most 63
//! characters). It also may not be the name of a crate the templates depend on: cargo refuses a
//! package that depends on a crate of its own name.

/// Names that cargo or the templates rule out, with the reason.
const RESERVED: &[(&str, &str)] = &[
    ("std", "the name of a standard library crate"),
    ("core", "the name of a standard library crate"),
    ("alloc", "the name of a standard library crate"),
    ("proc_macro", "the name of a standard library crate"),
    ("proc-macro", "the name of a standard library crate"),
    ("test", "the name of a standard library crate"),
    (
        "deps",
        "the name of a directory cargo uses for build output",
    ),
    (
        "examples",
        "the name of a directory cargo uses for build output",
    ),
    (
        "build",
        "the name of a directory cargo uses for build output",
    ),
    (
        "incremental",
        "the name of a directory cargo uses for build output",
    ),
    ("worker", "the name of a crate the templates depend on"),
    (
        "wasm-bindgen",
        "the name of a crate the templates depend on",
    ),
    (
        "wasm_bindgen",
        "the name of a crate the templates depend on",
    ),
    ("web-sys", "the name of a crate the templates depend on"),
    ("web_sys", "the name of a crate the templates depend on"),
    ("js-sys", "the name of a crate the templates depend on"),
    ("js_sys", "the name of a crate the templates depend on"),
];

/// Rust keywords (strict and reserved, all editions): cargo refuses them as package names.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Windows device names: a directory cannot have them there.
const WINDOWS_DEVICES: &[&str] = &[
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// Cloudflare's limit on Worker names.
const MAX_LEN: usize = 63;

/// Why `name` cannot be a project name, or `None` when it can.
pub fn problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a name cannot be empty".to_string());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        let shown = match c {
            ' ' => "a space".to_string(),
            c => format!("`{c}`"),
        };
        return Some(format!(
            "{shown} is not allowed (use lowercase letters, digits, `-` and `_`)"
        ));
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Some("Worker names are lowercase".to_string());
    }
    let first = name.chars().next().unwrap_or_default();
    if first.is_ascii_digit() {
        return Some("a crate name cannot start with a digit".to_string());
    }
    if first == '-' || first == '_' || name.ends_with('-') || name.ends_with('_') {
        return Some("a name must start and end with a letter or digit".to_string());
    }
    if name.len() > MAX_LEN {
        return Some(format!(
            "it is {} characters long, and Worker names have at most {MAX_LEN}",
            name.len()
        ));
    }
    if KEYWORDS.contains(&name) {
        return Some("it is a Rust keyword".to_string());
    }
    if let Some((_, why)) = RESERVED.iter().find(|(reserved, _)| *reserved == name) {
        return Some(format!("it is {why}"));
    }
    if WINDOWS_DEVICES.contains(&name) {
        return Some("it is a reserved file name on Windows".to_string());
    }
    None
}

/// A valid name close to `name`: lowercase, other characters turned into `-`, a `worker`
/// prefix or suffix where the name alone is not allowed.
pub fn suggest(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out = out.trim_matches(|c| c == '-' || c == '_').to_string();
    if out.is_empty() {
        return "my-worker".to_string();
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "worker-");
    }
    out.truncate(MAX_LEN - "-worker".len());
    let mut out = out.trim_end_matches(['-', '_']).to_string();
    if problem(&out).is_some() {
        out.push_str("-worker");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for name in ["hello", "my-worker", "my_worker", "w2", "a"] {
            assert_eq!(problem(name), None, "{name}");
        }
    }

    #[test]
    fn says_why_a_name_is_refused() {
        let cases = [
            ("", "empty"),
            ("my worker", "a space is not allowed"),
            ("my.worker", "`.` is not allowed"),
            ("MyWorker", "lowercase"),
            ("1st", "start with a digit"),
            ("-x", "start and end"),
            ("x_", "start and end"),
            ("fn", "Rust keyword"),
            ("std", "standard library"),
            ("build", "build output"),
            ("worker", "templates depend on"),
            ("nul", "Windows"),
        ];
        for (name, why) in cases {
            let problem = problem(name).unwrap_or_else(|| panic!("{name:?} accepted"));
            assert!(problem.contains(why), "{name:?}: {problem}");
        }
        assert!(problem(&"a".repeat(64)).unwrap().contains("at most 63"));
    }

    #[test]
    fn suggestions_are_valid_and_close() {
        let cases = [
            ("My Worker", "my-worker"),
            ("my.worker", "my-worker"),
            ("1st", "worker-1st"),
            ("fn", "fn-worker"),
            ("worker", "worker-worker"),
            ("--", "my-worker"),
            ("Ünïcode", "n-code"),
        ];
        for (name, expected) in cases {
            assert_eq!(suggest(name), expected, "{name:?}");
        }
        for name in [
            "",
            "___",
            "std",
            "NUL",
            &"x".repeat(100),
            "a-_-b",
            "9",
            "Self",
        ] {
            let suggestion = suggest(name);
            assert_eq!(problem(&suggestion), None, "{name:?} -> {suggestion:?}");
        }
    }
}
