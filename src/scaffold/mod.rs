//! `cargo worker-build new` / `init`: Worker projects from the templates in `templates/`.
//!
//! Resolve first, act second: [`plan_new`] and [`plan_init`] check the inputs and work out every
//! file to write (a [`Plan`]) without touching the disk; [`write::write_plan`] then writes all of
//! it or nothing. Every bad input is one error line that says what is wrong and what to do.

pub mod crate_name;
pub mod manifest;
pub mod node;
pub mod placeholders;
pub mod templates;
mod write;

pub use write::write_plan;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::cli::{InitArgs, NewArgs};
use placeholders::Placeholders;
use templates::Template;

/// Files that `init` merges into an existing copy instead of refusing to replace it.
const CARGO_TOML: &str = "Cargo.toml";
const GITIGNORE: &str = ".gitignore";
/// Kept as it is by `init` (without `--force`): what it lacks is named as npm commands to run.
const PACKAGE_JSON: &str = "package.json";
const PACKAGE_LOCK: &str = "package-lock.json";

/// Everything a generation will write, worked out before writing.
#[derive(Debug)]
pub struct Plan {
    /// The project directory.
    pub root: PathBuf,
    /// The package name the templates were filled with.
    pub name: String,
    pub template: &'static Template,
    /// Files to write, paths relative to `root`; files that would not change are left out.
    pub files: Vec<PlannedFile>,
    /// What `init` added to an existing Cargo.toml.
    pub merged: Vec<String>,
    /// Things the user should know but that do not stop the generation.
    pub warnings: Vec<String>,
}

#[derive(Debug)]
pub struct PlannedFile {
    pub path: PathBuf,
    pub contents: String,
    pub action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A new file.
    Create,
    /// Replaces an existing file (`init --force`).
    Overwrite,
    /// Adds what was missing to an existing file.
    Merge,
}

/// `cargo worker-build new`: a new project in a new directory.
pub fn new_project(args: &NewArgs) -> Result<()> {
    if args.list_templates {
        crate::term::out(&list_templates());
        return Ok(());
    }
    let plan = plan_new(args)?;
    write::write_plan(&plan)?;
    report(&plan, true, Some(&plan.root));
    Ok(())
}

/// `cargo worker-build init`: a project in the current (or given) directory.
pub fn init_project(args: &InitArgs) -> Result<()> {
    if args.list_templates {
        crate::term::out(&list_templates());
        return Ok(());
    }
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let plan = plan_init(args, &cwd)?;
    write::write_plan(&plan)?;
    report(&plan, false, args.path.as_deref());
    Ok(())
}

/// The `--list-templates` text: each template with a one-line description.
pub fn list_templates() -> String {
    templates::list()
}

/// Checks `new`'s inputs and works out what it will write.
pub fn plan_new(args: &NewArgs) -> Result<Plan> {
    let Some(name) = args.name.as_deref() else {
        bail!("missing the project name: run `cargo worker-build new NAME`");
    };
    let root = PathBuf::from(name);
    let Some(package) = root.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        bail!(
            "`{name}` does not name a new directory: to fill an existing directory, run `cargo worker-build init {name}`"
        );
    };
    if let Some(problem) = crate_name::problem(&package) {
        let suggestion = crate_name::suggest(&package);
        let parent = root.parent().filter(|p| !p.as_os_str().is_empty());
        let suggested_path = parent.map_or(PathBuf::from(&suggestion), |p| p.join(&suggestion));
        bail!(
            "invalid project name `{package}`: {problem}; try `cargo worker-build new {}`",
            suggested_path.display()
        );
    }
    let template = templates::find(&args.template)?;
    if root.exists() || root.is_symlink() {
        bail!(
            "`{name}` already exists: choose another name, or fill it with `cargo worker-build init {name}`"
        );
    }
    let files = render(template, &Placeholders::for_package(&package))?
        .into_iter()
        .map(|(path, contents)| PlannedFile {
            path,
            contents,
            action: Action::Create,
        })
        .collect();
    Ok(Plan {
        root,
        name: package,
        template,
        files,
        merged: Vec::new(),
        warnings: Vec::new(),
    })
}

/// Checks `init`'s inputs against the directory's contents and works out what it will write.
/// `cwd` stands in for the current directory (tests pass their own).
pub fn plan_init(args: &InitArgs, cwd: &Path) -> Result<Plan> {
    let root = match &args.path {
        Some(path) => cwd.join(path),
        None => cwd.to_path_buf(),
    };
    let shown_root = args.path.as_deref().unwrap_or(Path::new("."));
    if root.exists() && !root.is_dir() {
        bail!(
            "`{}` is a file, not a directory: give init a directory",
            shown_root.display()
        );
    }
    let existing_manifest = read_if_exists(&root.join(CARGO_TOML))?;
    let name = match &args.name {
        Some(name) => name.clone(),
        None => existing_manifest
            .as_deref()
            .and_then(package_name)
            .or_else(|| directory_name(&root))
            .unwrap_or_default(),
    };
    if let Some(problem) = crate_name::problem(&name) {
        bail!(
            "invalid project name `{name}`: {problem}; pass a valid one, e.g. `cargo worker-build init --name {}`",
            crate_name::suggest(&name)
        );
    }
    let template = templates::find(&args.template)?;

    let mut files = Vec::new();
    let mut merged = Vec::new();
    let mut warnings = Vec::new();
    let mut would_overwrite = Vec::new();
    let package_json_kept = root.join(PACKAGE_JSON).exists();
    for (path, contents) in render(template, &Placeholders::for_package(&name))? {
        if path == Path::new(PACKAGE_LOCK) && package_json_kept && !args.force {
            // The template's lock records the template's package.json, not the one kept.
            continue;
        }
        refuse_links(&root, &path, shown_root)?;
        let target = root.join(&path);
        let existing = if path == Path::new(CARGO_TOML) {
            existing_manifest.clone()
        } else {
            read_if_exists(&target)?
        };
        let Some(existing) = existing else {
            files.push(PlannedFile {
                path,
                contents,
                action: Action::Create,
            });
            continue;
        };
        let (contents, action) = if path == Path::new(CARGO_TOML) {
            let result = manifest::merge(&existing, &contents)?;
            merged = result.added;
            warnings = result.warnings;
            (result.text, Action::Merge)
        } else if path == Path::new(GITIGNORE) {
            (merge_gitignore(&existing, &contents), Action::Merge)
        } else if path == Path::new(PACKAGE_JSON) && !args.force {
            // npm owns package.json (its order, its formatting, the user's other packages): keep
            // it, and say how to add what the template's has with npm itself.
            if let Some(advice) = package_json_advice(&existing, &contents) {
                warnings.push(advice);
            }
            continue;
        } else {
            if existing != contents {
                would_overwrite.push(path.clone());
            }
            (contents, Action::Overwrite)
        };
        if contents != existing {
            files.push(PlannedFile {
                path,
                contents,
                action,
            });
        }
    }
    if !would_overwrite.is_empty() && !args.force {
        let list: Vec<String> = would_overwrite
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        bail!(
            "init would overwrite {} existing file{} in `{}`: {}; rerun with --force to replace them",
            list.len(),
            if list.len() == 1 { "" } else { "s" },
            shown_root.display(),
            list.join(", ")
        );
    }
    Ok(Plan {
        root,
        name,
        template,
        files,
        merged,
        warnings,
    })
}

/// The template's files for a project: output paths and filled contents, without the files
/// that only configure cargo-generate.
pub fn render(template: &Template, values: &Placeholders) -> Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    for file in template.files {
        if templates::GENERATOR_ONLY_FILES.contains(&file.path) {
            continue;
        }
        let origin = format!("templates/{}/{}", template.name, file.path);
        let contents = values.fill(file.contents, &origin)?;
        out.push((
            PathBuf::from(placeholders::output_path(file.path)),
            contents,
        ));
    }
    Ok(out)
}

/// For an existing `package.json` that lacks the template's pinned devDependencies or scripts:
/// one line with the npm commands that add them (`npm install -D -E`, `npm pkg set`).
fn package_json_advice(existing: &str, template: &str) -> Option<String> {
    let Ok(existing) = serde_json::from_str::<serde_json::Value>(existing) else {
        return Some(format!(
            "{PACKAGE_JSON} is not valid JSON and was left as it is; compare it with the template's: `cargo worker-build new --template NAME` writes one"
        ));
    };
    let template: serde_json::Value =
        serde_json::from_str(template).expect("the templates' package.json is valid JSON");
    let mut commands = Vec::new();
    let installs: Vec<String> = template["devDependencies"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(name, version)| {
            existing["devDependencies"][name.as_str()] != **version
                && existing["dependencies"][name.as_str()] != **version
        })
        .map(|(name, version)| format!("{name}@{}", version.as_str().unwrap_or_default()))
        .collect();
    if !installs.is_empty() {
        commands.push(format!("npm install -D -E {}", installs.join(" ")));
    }
    // vitest.config.js is an ES module: in a CommonJS package vitest cannot load it.
    let mut settings: Vec<String> = Vec::new();
    if let Some(kind) = template["type"].as_str().filter(|k| existing["type"] != *k) {
        settings.push(format!("type={kind}"));
    }
    let scripts: Vec<String> = template["scripts"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(name, _)| existing["scripts"].get(name.as_str()).is_none())
        .map(|(name, command)| {
            format!(
                "scripts.{name}={}",
                crate::process::shell_quote(command.as_str().unwrap_or_default())
            )
        })
        .collect();
    settings.extend(scripts);
    if !settings.is_empty() {
        commands.push(format!("npm pkg set {}", settings.join(" ")));
    }
    if commands.is_empty() {
        return None;
    }
    Some(format!(
        "{PACKAGE_JSON} exists and was kept; to add what the template's has, run `{}`",
        commands.join(" && ")
    ))
}

/// `existing` with each line of `template` it lacks appended (`.gitignore` entries).
fn merge_gitignore(existing: &str, template: &str) -> String {
    let have: Vec<&str> = existing.lines().map(str::trim).collect();
    let missing: Vec<&str> = template
        .lines()
        .filter(|line| {
            let entry = line.trim();
            let bare = entry.trim_start_matches('/').trim_end_matches('/');
            !have
                .iter()
                .any(|h| *h == entry || h.trim_start_matches('/').trim_end_matches('/') == bare)
        })
        .collect();
    if missing.is_empty() {
        return existing.to_string();
    }
    let mut out = existing.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    for line in missing {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Refuses a symbolic link at `path` or at a directory on the way to it under `root`: a merge
/// or a replacement would write through it, to a file outside the project.
fn refuse_links(root: &Path, path: &Path, shown_root: &Path) -> Result<()> {
    let mut at = PathBuf::new();
    for part in path.components() {
        at.push(part);
        let Ok(meta) = fs::symlink_metadata(root.join(&at)) else {
            return Ok(());
        };
        if meta.file_type().is_symlink() {
            let target = fs::read_link(root.join(&at)).unwrap_or_default();
            bail!(
                "`{}` in `{}` is a symbolic link to `{}`, and init writes only inside the project: replace the link with a copy of its file (or remove it) and run init again",
                at.display(),
                shown_root.display(),
                target.display()
            );
        }
    }
    Ok(())
}

fn read_if_exists(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot read `{}`", path.display())),
    }
}

/// `[package] name` of a Cargo.toml, when it has a plain one.
fn package_name(manifest: &str) -> Option<String> {
    let doc: toml_edit::DocumentMut = manifest.parse().ok()?;
    Some(doc.get("package")?.get("name")?.as_str()?.to_string())
}

fn directory_name(dir: &Path) -> Option<String> {
    let dir = if dir.file_name().is_some() {
        dir.to_path_buf()
    } else {
        dir.canonicalize().ok()?
    };
    Some(dir.file_name()?.to_string_lossy().into_owned())
}

/// Tells the user what happened and what to run next (on stderr, like cargo's status lines).
/// `cd_into` is the directory to enter first, as the user named it.
fn report(plan: &Plan, created_directory: bool, cd_into: Option<&Path>) {
    let count = plan.files.len();
    if created_directory {
        eprintln!(
            "     Created Worker `{}` from template `{}` in {}/",
            plan.name,
            plan.template.name,
            plan.root.display()
        );
    } else if count == 0 {
        eprintln!(
            "  Up to date: the project already has everything template `{}` adds",
            plan.template.name
        );
    } else {
        eprintln!(
            "     Created Worker `{}` from template `{}` ({count} file{} written)",
            plan.name,
            plan.template.name,
            if count == 1 { "" } else { "s" }
        );
    }
    if !plan.merged.is_empty() {
        eprintln!("      Merged Cargo.toml: added {}", plan.merged.join(", "));
    }
    for warning in &plan.warnings {
        eprintln!("warning: {warning}");
    }
    for line in next_steps(plan, cd_into) {
        eprintln!("{line}");
    }
    let node = node::requirement(Some(&plan.root));
    if let Some(advice) = node::advice(&node, &node::check(&node)) {
        eprintln!("warning: {advice}");
    }
}

/// What to run next, one command a line, aligned under cargo's status words: enter the project,
/// install its npm tools (the wrangler and vitest its package.json pins), serve, test.
pub fn next_steps(plan: &Plan, cd_into: Option<&Path>) -> Vec<String> {
    let build = if plan.template.name == "library" {
        "cargo worker-build --release --lib --unwind"
    } else {
        "cargo worker-build --release --unwind"
    };
    let mut commands = Vec::new();
    if let Some(dir) = cd_into.filter(|dir| *dir != Path::new(".")) {
        commands.push((format!("cd {}", dir.display()), String::new()));
    }
    commands.push((
        "npm install".to_string(),
        "installs the wrangler and vitest package.json pins".to_string(),
    ));
    commands.push((
        "npm run dev".to_string(),
        format!("builds with `{build}`, then serves on http://localhost:8787"),
    ));
    commands.push((
        "npm test".to_string(),
        "builds, then runs test/index.test.js in the Workers runtime".to_string(),
    ));
    let width = commands
        .iter()
        .filter(|(_, why)| !why.is_empty())
        .map(|(c, _)| c.len())
        .max()
        .unwrap_or(0);
    commands
        .iter()
        .enumerate()
        .map(|(i, (command, why))| {
            let word = if i == 0 { "Next:" } else { "" };
            let line = if why.is_empty() {
                command.clone()
            } else {
                format!("{command:<width$}   ({why})")
            };
            format!("{word:>12} {line}")
        })
        .collect()
}
