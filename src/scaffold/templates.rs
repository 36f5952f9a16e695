//! The project templates, embedded in the binary at compile time from `templates/<name>/`.
//!
//! Each row below names one file of a template tree. A test compares this table with the trees
//! on disk, so a file added to `templates/` without a row here (or the reverse) fails the build's
//! tests instead of silently missing from generated projects.

use anyhow::{bail, Result};

/// The template `new` and `init` use without `--template`.
pub const DEFAULT_TEMPLATE: &str = "hello";

/// One project template: a tree of files with placeholders.
#[derive(Debug)]
pub struct Template {
    pub name: &'static str,
    /// One line for `--list-templates`.
    pub description: &'static str,
    pub files: &'static [TemplateFile],
}

/// One file of a template, as written in `templates/<name>/`.
#[derive(Debug)]
pub struct TemplateFile {
    /// Path inside the template, `/`-separated, before the `.liquid` suffix is removed.
    pub path: &'static str,
    pub contents: &'static str,
}

/// Embeds `templates/<template>/<path>`.
macro_rules! file {
    ($template:literal, $path:literal) => {
        TemplateFile {
            path: $path,
            contents: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/templates/",
                $template,
                "/",
                $path
            )),
        }
    };
}

/// Every template, the default first, in the order `--list-templates` shows them.
pub static TEMPLATES: &[Template] = &[
    Template {
        name: "hello",
        description: "A Worker with a router: / greets and counts, /panic panics and the Worker keeps serving",
        files: &[
            file!("hello", ".github/workflows/worker.yml"),
            file!("hello", ".gitignore"),
            file!("hello", "Cargo.toml.liquid"),
            file!("hello", "README.md"),
            file!("hello", "cargo-generate.toml"),
            file!("hello", "package-lock.json"),
            file!("hello", "package.json"),
            file!("hello", "rust-toolchain.toml"),
            file!("hello", "src/lib.rs"),
            file!("hello", "test/index.test.js"),
            file!("hello", "vitest.config.js"),
            file!("hello", "wrangler.toml"),
        ],
    },
    Template {
        name: "durable-object",
        description: "A Durable Object whose in-memory counter survives a panic, with its binding and migration",
        files: &[
            file!("durable-object", ".github/workflows/worker.yml"),
            file!("durable-object", ".gitignore"),
            file!("durable-object", "Cargo.toml.liquid"),
            file!("durable-object", "README.md"),
            file!("durable-object", "cargo-generate.toml"),
            file!("durable-object", "package-lock.json"),
            file!("durable-object", "package.json"),
            file!("durable-object", "rust-toolchain.toml"),
            file!("durable-object", "src/lib.rs"),
            file!("durable-object", "test/index.test.js"),
            file!("durable-object", "vitest.config.js"),
            file!("durable-object", "wrangler.toml"),
        ],
    },
    Template {
        name: "library",
        description: "A Rust Wasm library imported by a JavaScript Worker (built with --lib)",
        files: &[
            file!("library", ".github/workflows/worker.yml"),
            file!("library", ".gitignore"),
            file!("library", "Cargo.toml.liquid"),
            file!("library", "README.md"),
            file!("library", "cargo-generate.toml"),
            file!("library", "package-lock.json"),
            file!("library", "package.json"),
            file!("library", "rust-toolchain.toml"),
            file!("library", "src/index.js"),
            file!("library", "src/lib.rs"),
            file!("library", "test/index.test.js"),
            file!("library", "vitest.config.js"),
            file!("library", "wrangler.toml"),
        ],
    },
    Template {
        name: "plain",
        description: "A Worker with plain wasm-bindgen and web-sys, no worker crate: the smallest bundle",
        files: &[
            file!("plain", ".github/workflows/worker.yml"),
            file!("plain", ".gitignore"),
            file!("plain", "Cargo.toml.liquid"),
            file!("plain", "README.md"),
            file!("plain", "cargo-generate.toml"),
            file!("plain", "package-lock.json"),
            file!("plain", "package.json"),
            file!("plain", "rust-toolchain.toml"),
            file!("plain", "src/lib.rs"),
            file!("plain", "test/index.test.js"),
            file!("plain", "vitest.config.js"),
            file!("plain", "wrangler.toml"),
        ],
    },
];

/// Files that configure cargo-generate and are not part of a generated project
/// (cargo-generate leaves them out too).
pub const GENERATOR_ONLY_FILES: &[&str] = &["cargo-generate.toml"];

/// The template called `name`, or an error that lists the valid names.
pub fn find(name: &str) -> Result<&'static Template> {
    match TEMPLATES.iter().find(|t| t.name == name) {
        Some(template) => Ok(template),
        None => bail!(
            "unknown template `{name}`: choose one of {} (`cargo worker-build new --list-templates` describes them)",
            names().join(", ")
        ),
    }
}

/// The template names, default first.
pub fn names() -> Vec<&'static str> {
    TEMPLATES.iter().map(|t| t.name).collect()
}

/// The `--list-templates` text: one line per template, name then description.
pub fn list() -> String {
    let width = TEMPLATES
        .iter()
        .map(|t| display_name(t).len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for template in TEMPLATES {
        let name = display_name(template);
        out.push_str(&format!("{name:<width$}  {}\n", template.description));
    }
    out
}

fn display_name(template: &Template) -> String {
    if template.name == DEFAULT_TEMPLATE {
        format!("{} (default)", template.name)
    } else {
        template.name.to_string()
    }
}
