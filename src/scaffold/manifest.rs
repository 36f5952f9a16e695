//! Merging a template's Cargo.toml into a crate's existing one (`init` in an existing crate).
//!
//! Only what is missing is added: `cdylib` in `[lib] crate-type`, the template's
//! `[dependencies]` the crate lacks, and the template's `[profile.release]` settings the crate
//! has not set. Everything else stays byte-for-byte as the user wrote it, comments included:
//! `toml_edit` keeps the formatting of every item it is not asked to change.

use anyhow::{bail, Context, Result};
use toml_edit::{DocumentMut, Item, Table, Value};

/// The result of a merge.
#[derive(Debug)]
pub struct Merged {
    /// The new Cargo.toml text (equal to the input when nothing was missing).
    pub text: String,
    /// What was added, one short phrase each (for the summary the user sees).
    pub added: Vec<String>,
    /// Settings the crate has that work against the template (e.g. `panic = "abort"`).
    pub warnings: Vec<String>,
}

/// Adds to `existing` (a crate's Cargo.toml) what `template` (the filled template's
/// Cargo.toml) has and `existing` lacks.
pub fn merge(existing: &str, template: &str) -> Result<Merged> {
    let mut doc: DocumentMut = match existing.parse() {
        Ok(doc) => doc,
        Err(err) => bail!(
            "cannot parse the existing Cargo.toml{}: {}; fix it, then run init again",
            line_of(existing, &err),
            err.message().trim()
        ),
    };
    let template: DocumentMut = template
        .parse()
        .context("the template's Cargo.toml is not valid TOML")?;
    if !doc.contains_key("package") {
        bail!(
            "Cargo.toml has no [package] (a workspace root?): run `cargo worker-build new NAME` for a new member, or init inside a package directory"
        );
    }
    let mut added = Vec::new();
    add_cdylib(&mut doc, &mut added)?;
    add_missing_dependencies(&mut doc, &template, &mut added)?;
    add_missing_release_settings(&mut doc, &template, &mut added)?;
    let warnings = conflicting_settings(&doc);
    let text = if added.is_empty() {
        existing.to_string()
    } else {
        doc.to_string()
    };
    Ok(Merged {
        text,
        added,
        warnings,
    })
}

/// ` (line N)` for a parse error, when it has a position.
fn line_of(text: &str, err: &toml_edit::TomlError) -> String {
    err.span()
        .map(|span| {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!(" (line {line})")
        })
        .unwrap_or_default()
}

/// Makes sure `[lib] crate-type` contains `cdylib`, creating `[lib]` right after `[package]`.
fn add_cdylib(doc: &mut DocumentMut, added: &mut Vec<String>) -> Result<()> {
    if !doc.contains_key("lib") {
        let mut lib = Table::new();
        lib.insert("crate-type", toml_edit::value(cdylib_array()));
        // Right after [package]: tables sharing a position keep insertion order.
        if let Some(position) = doc["package"].as_table().and_then(Table::position) {
            lib.set_position(position);
        }
        doc.insert("lib", Item::Table(lib));
        added.push("[lib] crate-type = [\"cdylib\"]".to_string());
        return Ok(());
    }
    let Some(lib) = doc["lib"].as_table_like_mut() else {
        bail!(
            "`lib` in Cargo.toml is not a table: write it as [lib] with crate-type = [\"cdylib\"]"
        );
    };
    match lib.get_mut("crate-type") {
        None => {
            lib.insert("crate-type", toml_edit::value(cdylib_array()));
            added.push("crate-type = [\"cdylib\"] in [lib]".to_string());
        }
        Some(item) => {
            let Some(types) = item.as_array_mut() else {
                bail!("`[lib] crate-type` in Cargo.toml is not an array: write crate-type = [\"cdylib\"]");
            };
            if !types.iter().any(|t| t.as_str() == Some("cdylib")) {
                types.push("cdylib");
                added.push("\"cdylib\" to [lib] crate-type".to_string());
            }
        }
    }
    Ok(())
}

/// An empty table that will be written after every table the document has. (A new table
/// without a position would be written after whichever table precedes it in the map, which
/// need not be the last one in the file.)
fn table_at_end(doc: &DocumentMut) -> Table {
    fn last_position(table: &Table) -> isize {
        let nested = table.iter().filter_map(|(_, item)| match item {
            Item::Table(t) => Some(last_position(t)),
            Item::ArrayOfTables(tables) => tables.iter().map(last_position).max(),
            _ => None,
        });
        nested
            .max()
            .into_iter()
            .chain(table.position())
            .max()
            .unwrap_or(0)
    }
    let mut table = Table::new();
    table.set_position(last_position(doc.as_table()) + 1);
    table
}

fn cdylib_array() -> toml_edit::Array {
    let mut types = toml_edit::Array::new();
    types.push("cdylib");
    types
}

/// Adds each template dependency the crate does not have under any name.
fn add_missing_dependencies(
    doc: &mut DocumentMut,
    template: &DocumentMut,
    added: &mut Vec<String>,
) -> Result<()> {
    let Some(wanted) = template.get("dependencies").and_then(Item::as_table) else {
        return Ok(());
    };
    if !doc.contains_key("dependencies") {
        let table = table_at_end(doc);
        doc.insert("dependencies", Item::Table(table));
    }
    let Some(deps) = doc["dependencies"].as_table_like_mut() else {
        bail!("`dependencies` in Cargo.toml is not a table: write it as [dependencies]");
    };
    for (name, item) in wanted.iter() {
        if has_dependency(&*deps, name) {
            continue;
        }
        let key = wanted.key(name).expect("key of an entry being iterated");
        deps.entry_format(key).or_insert(item.clone());
        added.push(format!("dependency {name}"));
    }
    Ok(())
}

/// Whether `deps` has `name`, directly or renamed (`alias = { package = "name" }`).
fn has_dependency(deps: &dyn toml_edit::TableLike, name: &str) -> bool {
    deps.iter().any(|(key, item)| {
        key == name
            || item
                .get("package")
                .and_then(Item::as_str)
                .is_some_and(|package| package == name)
    })
}

/// Adds each `[profile.release]` setting of the template the crate has not set.
fn add_missing_release_settings(
    doc: &mut DocumentMut,
    template: &DocumentMut,
    added: &mut Vec<String>,
) -> Result<()> {
    let Some(wanted) = template
        .get("profile")
        .and_then(|p| p.get("release"))
        .and_then(Item::as_table)
    else {
        return Ok(());
    };
    let release_table = table_at_end(doc);
    if !doc.contains_key("profile") {
        let mut profile = Table::new();
        profile.set_implicit(true);
        doc.insert("profile", Item::Table(profile));
    }
    let Some(profile) = doc["profile"].as_table_like_mut() else {
        bail!("`profile` in Cargo.toml is not a table: write it as [profile.release]");
    };
    if !profile.contains_key("release") {
        profile.insert("release", Item::Table(release_table));
    }
    let Some(release) = profile.get_mut("release").and_then(Item::as_table_like_mut) else {
        bail!("`profile.release` in Cargo.toml is not a table: write it as [profile.release]");
    };
    for (setting, item) in wanted.iter() {
        if release.contains_key(setting) {
            continue;
        }
        let key = wanted.key(setting).expect("key of an entry being iterated");
        let mut key = key.clone();
        // The template's comments belong to the template; the user's file gets the bare setting.
        key.leaf_decor_mut().clear();
        let mut item = item.clone();
        if let Some(value) = item.as_value_mut() {
            value.decor_mut().clear();
        }
        release.entry_format(&key).or_insert(item);
        added.push(format!("{setting} in [profile.release]"));
    }
    Ok(())
}

/// Settings in the crate's manifest that disagree with `--unwind` builds.
fn conflicting_settings(doc: &DocumentMut) -> Vec<String> {
    let mut warnings = Vec::new();
    let profiles = doc.get("profile").and_then(Item::as_table_like);
    for (name, profile) in profiles.iter().flat_map(|p| p.iter()) {
        let panic = profile
            .get("panic")
            .and_then(Item::as_value)
            .and_then(Value::as_str);
        if panic == Some("abort") {
            warnings.push(format!(
                "Cargo.toml sets panic = \"abort\" in [profile.{name}]: --unwind overrides it for its builds, but plain `cargo build` still aborts; remove it to keep the two alike"
            ));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"[package]
name = "t"

[lib]
crate-type = ["cdylib"]

[dependencies]
worker = "0.8.7"
# Exact: the CLI must match.
wasm-bindgen = "=0.2.130"

[profile.release]
# Small.
opt-level = "z"
lto = true
codegen-units = 1
"#;

    #[test]
    fn a_complete_manifest_is_left_untouched() {
        let merged = merge(TEMPLATE, TEMPLATE).unwrap();
        assert!(merged.added.is_empty(), "{:?}", merged.added);
        assert_eq!(merged.text, TEMPLATE);
    }

    #[test]
    fn adds_cdylib_to_an_existing_crate_type_list() {
        let existing = "[package]\nname = \"x\"\n\n[lib]\ncrate-type = [\"rlib\"] # keep\n";
        let merged = merge(existing, TEMPLATE).unwrap();
        assert!(
            merged
                .text
                .contains("crate-type = [\"rlib\", \"cdylib\"] # keep\n"),
            "{}",
            merged.text
        );
    }

    #[test]
    fn keeps_renamed_and_existing_dependencies_and_settings() {
        let existing = "[package]\nname = \"x\"\n\n[dependencies]\nwb = { package = \"wasm-bindgen\", version = \"0.2\" }\n\n[profile.release]\nopt-level = 3\n";
        let merged = merge(existing, TEMPLATE).unwrap();
        assert_eq!(
            merged.added,
            [
                "[lib] crate-type = [\"cdylib\"]",
                "dependency worker",
                "lto in [profile.release]",
                "codegen-units in [profile.release]",
            ]
        );
        assert!(merged.text.contains("opt-level = 3\n"), "{}", merged.text);
    }

    #[test]
    fn warns_about_panic_abort() {
        let existing = "[package]\nname = \"x\"\n\n[profile.release]\npanic = \"abort\"\n";
        let merged = merge(existing, TEMPLATE).unwrap();
        assert_eq!(merged.warnings.len(), 1);
        assert!(merged.warnings[0].contains("[profile.release]"));
        assert!(merged.text.contains("panic = \"abort\""));
    }

    #[test]
    fn a_parse_error_is_one_line_with_the_line_number() {
        let err = merge("[package]\nname = \"x\"\nbroken =\n", TEMPLATE).unwrap_err();
        let message = format!("{err:#}");
        assert!(!message.contains('\n'), "{message}");
        assert!(message.contains("(line 3)"), "{message}");
    }

    #[test]
    fn refuses_a_workspace_root() {
        let err = merge("[workspace]\nmembers = []\n", TEMPLATE).unwrap_err();
        assert!(err.to_string().contains("no [package]"), "{err}");
    }
}
