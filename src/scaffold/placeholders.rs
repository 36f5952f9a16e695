//! Filling a template's placeholders.
//!
//! The templates use cargo-generate's Liquid syntax so that `cargo generate --path templates/T`
//! works on them as they are. We fill exactly the subset they use: `{{project-name}}` and
//! `{{crate_name}}` (spaces inside the braces allowed) in file contents, and the `.liquid` suffix
//! that cargo-generate strips from file names. Anything else that looks like Liquid (an unknown
//! variable, a filter, a `{% tag %}`) is an error, so a template cannot quietly rely on a feature
//! only cargo-generate has; a test renders every template to keep it so.

use anyhow::{bail, Result};

/// The suffix cargo-generate removes from file names after filling them. It lets a template
/// ship `Cargo.toml.liquid`: `cargo package` leaves out any directory holding a `Cargo.toml`.
const LIQUID_SUFFIX: &str = ".liquid";

/// The values of the placeholders for one generated project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholders {
    /// `{{project-name}}`: the package name, as the user wrote it (also the Worker's name).
    pub project_name: String,
    /// `{{crate_name}}`: the name as a Rust identifier (`-` becomes `_`), as cargo-generate makes it.
    pub crate_name: String,
}

impl Placeholders {
    /// Placeholders for a package called `name` (already validated).
    pub fn for_package(name: &str) -> Self {
        Self {
            project_name: name.to_string(),
            crate_name: name.replace('-', "_"),
        }
    }

    /// `text` with every placeholder filled. `origin` names the file in errors.
    pub fn fill(&self, text: &str, origin: &str) -> Result<String> {
        if let Some(at) = text.find("{%") {
            bail!(
                "template file `{origin}` uses a Liquid tag at byte {at}, which cargo worker-build does not fill: use only {{{{project-name}}}} and {{{{crate_name}}}}"
            );
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                bail!("template file `{origin}` has `{{{{` without a closing `}}}}`");
            };
            let value = match after[..end].trim() {
                "project-name" => &self.project_name,
                "crate_name" => &self.crate_name,
                other => bail!(
                    "template file `{origin}` uses the placeholder `{other}`, which cargo worker-build does not fill: use only {{{{project-name}}}} and {{{{crate_name}}}}"
                ),
            };
            out.push_str(value);
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// Where a template file lands in the generated project: its path without `.liquid`.
pub fn output_path(template_path: &str) -> &str {
    template_path
        .strip_suffix(LIQUID_SUFFIX)
        .unwrap_or(template_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_both_placeholders_with_or_without_spaces() {
        let values = Placeholders::for_package("my-worker");
        let filled = values
            .fill("name = \"{{project-name}}\"\nuse {{ crate_name }};\n", "t")
            .unwrap();
        assert_eq!(filled, "name = \"my-worker\"\nuse my_worker;\n");
    }

    #[test]
    fn leaves_single_braces_and_dollar_braces_alone() {
        let values = Placeholders::for_package("w");
        let text = "fn f() { g(`${x}`) }";
        assert_eq!(values.fill(text, "t").unwrap(), text);
    }

    #[test]
    fn rejects_what_it_cannot_fill() {
        let values = Placeholders::for_package("w");
        for text in [
            "{{ authors }}",
            "{% raw %}",
            "{{project-name | upcase}}",
            "{{ open",
        ] {
            let err = values.fill(text, "x.toml").unwrap_err().to_string();
            assert!(err.contains("`x.toml`"), "{err}");
        }
    }

    #[test]
    fn strips_the_liquid_suffix_only() {
        assert_eq!(output_path("Cargo.toml.liquid"), "Cargo.toml");
        assert_eq!(output_path("src/lib.rs"), "src/lib.rs");
    }
}
