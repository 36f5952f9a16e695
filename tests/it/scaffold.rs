//! `cargo worker-build new` / `init`: what the templates generate, how `init` merges into an
//! existing crate, and how bad inputs are refused.
//!
//! Snapshots are insta snapshots in `tests/snapshots/` (`support::assert_snapshot`): after an
//! intended change, `INSTA_UPDATE=always cargo test --locked --test it -- scaffold` rewrites
//! them; review the diff.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use cargo_worker_build::cli::{InitArgs, NewArgs};
use cargo_worker_build::scaffold::{self, templates};

use crate::support::assert_snapshot;
use toml_edit::DocumentMut;

/// The nightly the tool builds `--unwind` with; every template's rust-toolchain.toml pins it.
const NIGHTLY: &str = cargo_worker_build::toolchain::DEFAULT_NIGHTLY;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `dir`, as sorted `/`-separated relative paths.
fn file_list(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap();
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Every file of every directory, relative path -> contents, to prove nothing changed.
fn tree_contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    file_list(dir)
        .into_iter()
        .map(|rel| {
            let bytes = fs::read(dir.join(&rel)).unwrap();
            (rel, bytes)
        })
        .collect()
}

fn new_args(name: &Path, template: &str) -> NewArgs {
    NewArgs {
        name: Some(name.to_string_lossy().into_owned()),
        template: template.to_string(),
        list_templates: false,
    }
}

fn init_args(path: &Path, template: &str, force: bool) -> InitArgs {
    InitArgs {
        path: Some(path.to_path_buf()),
        name: None,
        template: template.to_string(),
        force,
        list_templates: false,
    }
}

fn toml(path: &Path) -> DocumentMut {
    fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .parse()
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

#[test]
fn template_table_lists_exactly_the_files_in_templates_dir() {
    let on_disk: BTreeSet<String> = fs::read_dir(repo().join("templates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .flat_map(|dir| {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            file_list(&dir)
                .into_iter()
                .map(move |file| format!("{name}/{file}"))
        })
        .collect();
    let embedded: BTreeSet<String> = templates::TEMPLATES
        .iter()
        .flat_map(|t| {
            t.files
                .iter()
                .map(move |f| format!("{}/{}", t.name, f.path))
        })
        .collect();
    assert_eq!(
        embedded, on_disk,
        "src/scaffold/templates.rs must list every file under templates/"
    );
    for template in templates::TEMPLATES {
        for file in template.files {
            let disk =
                fs::read_to_string(repo().join("templates").join(template.name).join(file.path))
                    .unwrap();
            assert_eq!(
                file.contents, disk,
                "{}/{} is stale",
                template.name, file.path
            );
        }
    }
}

#[test]
fn list_templates_matches_snapshot() {
    let list = scaffold::list_templates();
    assert_snapshot("scaffold-list-templates", &list);
    let names: Vec<&str> = list
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(names, ["hello", "durable-object", "library", "plain"]);
    assert!(list.lines().next().unwrap().contains("(default)"));
}

#[test]
fn new_generates_each_template_with_the_snapshot_file_list() {
    let tmp = tempfile::tempdir().unwrap();
    for template in templates::names() {
        let dir = tmp.path().join(format!("snap-{template}"));
        scaffold::new_project(&new_args(&dir, template)).unwrap();
        let files = file_list(&dir).join("\n") + "\n";
        assert_snapshot(&format!("scaffold-files-{template}"), &files);
        for file in file_list(&dir) {
            let text = fs::read_to_string(dir.join(&file)).unwrap();
            assert!(
                !text.contains("{{"),
                "{template}/{file} has an unfilled placeholder"
            );
        }
    }
}

#[test]
fn generated_projects_are_configured_for_unwind_builds() {
    let tmp = tempfile::tempdir().unwrap();
    for template in templates::names() {
        let dir = tmp.path().join(format!("cfg-{template}"));
        scaffold::new_project(&new_args(&dir, template)).unwrap();
        let library = template == "library";

        let cargo = toml(&dir.join("Cargo.toml"));
        assert_eq!(
            cargo["package"]["name"].as_str(),
            Some(format!("cfg-{template}").as_str())
        );
        let types: Vec<_> = cargo["lib"]["crate-type"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(types, ["cdylib"], "{template}");
        let release = &cargo["profile"]["release"];
        assert!(
            matches!(release["opt-level"].as_str(), Some("z" | "s")),
            "{template}: opt-level"
        );
        assert_eq!(release["lto"].as_bool(), Some(true), "{template}: lto");
        assert_eq!(release["codegen-units"].as_integer(), Some(1), "{template}");
        assert!(
            release.get("panic").is_none(),
            "{template} must not set panic"
        );
        assert_eq!(
            cargo["dependencies"]["wasm-bindgen"].as_str(),
            Some("=0.2.130"),
            "{template}"
        );
        let worker = cargo["dependencies"].get("worker").and_then(|w| w.as_str());
        if matches!(template, "hello" | "durable-object") {
            assert_eq!(worker, Some("0.8.7"), "{template}");
        } else {
            assert_eq!(worker, None, "{template} must not use the worker crate");
        }

        let wrangler = toml(&dir.join("wrangler.toml"));
        assert_eq!(
            wrangler["name"].as_str(),
            Some(format!("cfg-{template}").as_str())
        );
        let (main, build) = if library {
            (
                "src/index.js",
                "cargo worker-build --release --lib --unwind",
            )
        } else {
            ("build/index.js", "cargo worker-build --release --unwind")
        };
        assert_eq!(wrangler["main"].as_str(), Some(main), "{template}");
        assert_eq!(
            wrangler["build"]["command"].as_str(),
            Some(build),
            "{template}"
        );
        let date = wrangler["compatibility_date"].as_str().unwrap();
        for (runtime, newest) in newest_compatibility_dates() {
            assert!(
                date <= newest.as_str(),
                "{template}: compatibility_date {date} is newer than {runtime} supports ({newest})"
            );
        }

        let toolchain = toml(&dir.join("rust-toolchain.toml"));
        assert_eq!(toolchain["toolchain"]["channel"].as_str(), Some(NIGHTLY));
        let list = |key: &str| -> Vec<String> {
            toolchain["toolchain"][key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(list("components"), ["rust-src"]);
        assert_eq!(list("targets"), ["wasm32-unknown-unknown"]);

        let gitignore = fs::read_to_string(dir.join(".gitignore")).unwrap();
        // `.build.*`: the output's lock, and what a killed build leaves until the next one.
        for entry in ["target", "build", "node_modules", ".build.*"] {
            assert!(
                gitignore.lines().any(|l| l == entry),
                "{template}: .gitignore {entry}"
            );
        }

        let workflow = fs::read_to_string(dir.join(".github/workflows/worker.yml")).unwrap();
        let lib = if library { " --lib" } else { "" };
        for step in [
            "rustup toolchain install".to_string(),
            format!(
                "cargo install cargo-worker-build --version {} --locked",
                env!("CARGO_PKG_VERSION")
            ),
            format!("cargo worker-build --release{lib} --unwind"),
            format!("cargo worker-build --check-eh{lib} --unwind"),
        ] {
            assert!(
                workflow.lines().any(|l| l.trim() == format!("run: {step}")),
                "{template}: workflow lacks `{step}`"
            );
        }

        let readme = fs::read_to_string(dir.join("README.md")).unwrap();
        assert!(
            readme.starts_with(&format!("# cfg-{template}\n")),
            "{template}"
        );
        assert!(
            readme.contains("/panic"),
            "{template}: README documents the panic route"
        );
    }
}

/// The directory of the npm package `name` as Node resolves it from `dir`: the nearest
/// `node_modules/<name>` at or above `dir`.
fn npm_package_dir(dir: &Path, name: &str) -> std::path::PathBuf {
    dir.ancestors()
        .map(|d| d.join("node_modules").join(name))
        .find(|p| p.join("package.json").is_file())
        .unwrap_or_else(|| {
            panic!(
                "npm package {name} is not installed for {}: run `npm ci` in {}",
                dir.display(),
                repo().display()
            )
        })
}

/// The `package.json` of the npm package `name` as Node resolves it from `dir`.
fn installed_npm_package(dir: &Path, name: &str) -> serde_json::Value {
    let manifest = npm_package_dir(dir, name).join("package.json");
    serde_json::from_str(&fs::read_to_string(manifest).unwrap()).unwrap()
}

/// The newest compatibility date each pinned runtime's workerd accepts: workerd `1.YYYYMMDD.N`
/// supports dates up to YYYY-MM-DD (a later one fails to start: "the newest date supported by
/// this server binary is ..."). wrangler's workerd serves `npm run dev`; the one that
/// vitest-pool-workers brings (through its own Miniflare) runs `npm test`.
fn newest_compatibility_dates() -> Vec<(String, String)> {
    let wrangler = npm_package_dir(repo(), "wrangler");
    let pool = npm_package_dir(repo(), "@cloudflare/vitest-pool-workers");
    let pool_miniflare = npm_package_dir(&pool, "miniflare");
    [
        ("wrangler", wrangler),
        ("vitest-pool-workers", pool_miniflare),
    ]
    .into_iter()
    .map(|(runtime, from)| {
        let version = installed_npm_package(&from, "workerd")["version"]
            .as_str()
            .unwrap()
            .to_string();
        let day = version.split('.').nth(1).unwrap().to_string();
        assert_eq!(day.len(), 8, "workerd version {version}");
        let date = format!("{}-{}-{}", &day[..4], &day[4..6], &day[6..]);
        (format!("{runtime}'s workerd {version}"), date)
    })
    .collect()
}

#[test]
fn every_template_pins_the_npm_tools_the_repository_tests_with() {
    let root_manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(repo().join("package.json")).unwrap()).unwrap();
    let pinned = &root_manifest["devDependencies"];
    let wrangler = installed_npm_package(repo(), "wrangler");
    assert_eq!(
        wrangler["version"], pinned["wrangler"],
        "npm ci is out of date"
    );
    let tmp = tempfile::tempdir().unwrap();
    for template in templates::names() {
        let dir = tmp.path().join(format!("npm-{template}"));
        scaffold::new_project(&new_args(&dir, template)).unwrap();
        let manifest: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dir.join("package.json")).unwrap()).unwrap();
        assert_eq!(manifest["name"], format!("npm-{template}").as_str());
        assert_eq!(
            manifest["type"], "module",
            "{template}: vitest.config.js is ESM"
        );
        for tool in [
            "wrangler",
            "vite",
            "vitest",
            "@cloudflare/vitest-pool-workers",
        ] {
            let version = manifest["devDependencies"][tool]
                .as_str()
                .unwrap_or_default();
            assert!(
                semver::Version::parse(version).is_ok(),
                "{template}: {tool} must be pinned exactly, not `{version}`"
            );
            assert_eq!(
                manifest["devDependencies"][tool], pinned[tool],
                "{template}: {tool} differs from the repository's package.json"
            );
        }
        // Node's range is wrangler's own; `new` and `tools` read it from the templates.
        assert_eq!(
            manifest["engines"]["node"], wrangler["engines"]["node"],
            "{template}: engines.node must be the pinned wrangler's"
        );
        let build = toml(&dir.join("wrangler.toml"))["build"]["command"]
            .as_str()
            .unwrap()
            .to_string();
        let scripts = &manifest["scripts"];
        assert_eq!(scripts["build"], build.as_str(), "{template}");
        assert_eq!(scripts["dev"], "wrangler dev", "{template}");
        assert_eq!(scripts["deploy"], "wrangler deploy", "{template}");
        assert_eq!(scripts["test"], "npm run build && vitest run", "{template}");
        assert!(dir.join("test/index.test.js").is_file(), "{template}");
    }
    assert_eq!(
        cargo_worker_build::scaffold::node::template_requirement().range,
        wrangler["engines"]["node"].as_str().unwrap()
    );
}

/// Generated projects' CI installs the same things every run: this release of the tool with
/// its own lockfile, and exactly the npm packages of the package-lock.json `new` writes, which
/// records the versions package.json pins.
#[test]
fn generated_ci_installs_pinned_versions_from_lockfiles() {
    let tmp = tempfile::tempdir().unwrap();
    for template in templates::names() {
        let name = format!("locked-{template}");
        let dir = tmp.path().join(&name);
        scaffold::new_project(&new_args(&dir, template)).unwrap();
        let workflow = fs::read_to_string(dir.join(".github/workflows/worker.yml")).unwrap();
        let install = format!(
            "cargo install cargo-worker-build --version {} --locked",
            env!("CARGO_PKG_VERSION")
        );
        assert!(
            workflow
                .lines()
                .any(|l| l.trim() == format!("run: {install}")),
            "{template}: the workflow does not run `{install}`:\n{workflow}"
        );
        assert!(
            workflow.lines().any(|l| l.trim() == "run: npm ci")
                && !workflow.contains("npm install"),
            "{template}: the workflow must install with `npm ci`:\n{workflow}"
        );

        let read = |file: &str| -> serde_json::Value {
            serde_json::from_str(&fs::read_to_string(dir.join(file)).unwrap())
                .unwrap_or_else(|e| panic!("{template}: {file}: {e}"))
        };
        let manifest = read("package.json");
        let lock = read("package-lock.json");
        assert_eq!(lock["name"], name.as_str(), "{template}");
        assert_eq!(lock["lockfileVersion"], 3, "{template}");
        let root = &lock["packages"][""];
        assert_eq!(root["name"], name.as_str(), "{template}");
        // What npm ci compares: the lock's record of package.json's dependencies.
        assert_eq!(
            root["devDependencies"], manifest["devDependencies"],
            "{template}: package-lock.json is not package.json's; regenerate it with `npm install --package-lock-only --ignore-scripts`"
        );
        assert!(root.get("dependencies").is_none() && manifest.get("dependencies").is_none());
        for (tool, pinned) in manifest["devDependencies"].as_object().unwrap() {
            let locked = &lock["packages"][format!("node_modules/{tool}")];
            assert_eq!(
                &locked["version"], pinned,
                "{template}: package-lock.json locks {tool} {}, package.json pins {pinned}",
                locked["version"]
            );
            assert!(
                locked["integrity"]
                    .as_str()
                    .is_some_and(|i| i.starts_with("sha512-")),
                "{template}: {tool} has no integrity hash in package-lock.json"
            );
        }
    }
}

#[test]
fn library_template_imports_the_bundle_from_build() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lib-worker");
    scaffold::new_project(&new_args(&dir, "library")).unwrap();
    let entry = fs::read_to_string(dir.join("src/index.js")).unwrap();
    assert!(entry.contains("from \"../build/index.js\""), "{entry}");
    assert!(entry.contains("export default"), "{entry}");
}

#[test]
fn durable_object_template_binds_and_migrates_its_class() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("do-worker");
    scaffold::new_project(&new_args(&dir, "durable-object")).unwrap();
    let wrangler = toml(&dir.join("wrangler.toml"));
    let bindings = wrangler["durable_objects"]["bindings"]
        .as_array_of_tables()
        .unwrap();
    let binding = bindings.get(0).unwrap();
    assert_eq!(binding["name"].as_str(), Some("COUNTER"));
    assert_eq!(binding["class_name"].as_str(), Some("Counter"));
    let migration = wrangler["migrations"]
        .as_array_of_tables()
        .unwrap()
        .get(0)
        .unwrap();
    let classes: Vec<_> = migration["new_sqlite_classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(classes, ["Counter"]);
    let lib = fs::read_to_string(dir.join("src/lib.rs")).unwrap();
    assert!(lib.contains("pub struct Counter"));
    assert!(lib.contains("durable_object(\"COUNTER\")"));
}

/// A crate as a user might have written it: comments everywhere, odd spacing, a [lib] without
/// crate-type, an existing dependency and a profile with one setting.
const USER_MANIFEST: &str = r#"# My crate. Keep this comment.
[package]
name    = "existing-crate"   # aligned, on purpose
version = "1.2.3"
edition = "2021"

# Library settings.
[lib]
path = "src/lib.rs"  # explicit

[dependencies]
# Pinned for a reason.
serde = { version = "1", features = ["derive"] }   # trailing comment
wasm-bindgen = "0.2.130"

[features]
default = []

[profile.release]
opt-level = "s"    # we prefer s

# Trailing comment at the end of the file.
"#;

/// What init adds to USER_MANIFEST with the hello template, line by line.
const ADDED_LINES: &[&str] = &[
    "crate-type = [\"cdylib\"]",
    "worker = \"0.8.7\"",
    "lto = true",
    "codegen-units = 1",
];

#[test]
fn init_keeps_an_existing_package_json_and_names_the_npm_commands_that_complete_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("has-npm");
    fs::create_dir(&dir).unwrap();
    let mine = "{\n  \"name\": \"has-npm\",\n  \"scripts\": { \"dev\": \"my-own-dev\" },\n  \"devDependencies\": { \"prettier\": \"3.0.0\", \"vitest\": \"4.1.12\" }\n}\n";
    fs::write(dir.join("package.json"), mine).unwrap();
    let plan = scaffold::plan_init(&init_args(&dir, "hello", false), tmp.path()).unwrap();
    assert!(
        plan.files
            .iter()
            .all(|f| f.path != Path::new("package.json")),
        "package.json must not be rewritten"
    );
    // The template's lockfile records the template's package.json, not this one.
    assert!(
        plan.files
            .iter()
            .all(|f| f.path != Path::new("package-lock.json")),
        "a package-lock.json for another package.json was planned"
    );
    let advice: Vec<&String> = plan
        .warnings
        .iter()
        .filter(|w| w.starts_with("package.json exists and was kept"))
        .collect();
    assert_eq!(advice.len(), 1, "{:?}", plan.warnings);
    let command = advice[0].split('`').nth(1).unwrap();
    let (install, set) = command.split_once(" && ").unwrap();
    // Only what is missing or pinned differently: vitest 4.1.12 is already there.
    assert_eq!(
        install,
        "npm install -D -E @cloudflare/vitest-pool-workers@0.23.0 vite@8.3.8 wrangler@4.164.0"
    );
    assert!(
        !set.contains("scripts.dev"),
        "the user's dev script is kept: {set}"
    );

    // The `npm pkg set` half, run for real, adds the scripts and keeps the rest.
    scaffold::init_project(&init_args(&dir, "hello", false)).unwrap();
    assert_eq!(fs::read_to_string(dir.join("package.json")).unwrap(), mine);
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(set)
        .current_dir(&dir)
        .output()
        .expect("run sh");
    assert!(
        output.status.success(),
        "`{set}`: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("package.json")).unwrap()).unwrap();
    assert_eq!(json["scripts"]["dev"], "my-own-dev");
    assert_eq!(json["scripts"]["test"], "npm run build && vitest run");
    assert_eq!(
        json["scripts"]["build"],
        "cargo worker-build --release --unwind"
    );
    assert_eq!(json["scripts"]["deploy"], "wrangler deploy");
    assert_eq!(json["devDependencies"]["prettier"], "3.0.0");
    assert_eq!(json["type"], "module");
}

#[test]
fn init_merges_into_an_existing_crate_keeping_its_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("existing-crate");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("Cargo.toml"), USER_MANIFEST).unwrap();
    fs::write(dir.join(".gitignore"), "/target\n*.swp\n").unwrap();

    scaffold::init_project(&init_args(&dir, "hello", false)).unwrap();

    let merged = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert_snapshot("scaffold-init-merged-Cargo.toml", &merged);
    // Removing exactly the added lines gives back the user's file byte for byte.
    let mut added = Vec::new();
    let mut kept = String::new();
    for line in merged.split_inclusive('\n') {
        if ADDED_LINES.contains(&line.trim_end_matches('\n')) {
            added.push(line.trim_end_matches('\n'));
        } else {
            kept.push_str(line);
        }
    }
    assert_eq!(kept, USER_MANIFEST);
    assert_eq!(added, ADDED_LINES);
    // The crate's own values win over the template's.
    let doc: DocumentMut = merged.parse().unwrap();
    assert_eq!(
        doc["dependencies"]["wasm-bindgen"].as_str(),
        Some("0.2.130")
    );
    assert_eq!(doc["profile"]["release"]["opt-level"].as_str(), Some("s"));
    assert_eq!(doc["package"]["name"].as_str(), Some("existing-crate"));

    // .gitignore keeps the user's lines and gains the missing ones.
    let gitignore = fs::read_to_string(dir.join(".gitignore")).unwrap();
    assert_eq!(
        gitignore,
        "/target\n*.swp\nbuild\nnode_modules\n.wrangler\n.build.*\n"
    );
    // The rest of the template is there, named after the crate.
    let wrangler = toml(&dir.join("wrangler.toml"));
    assert_eq!(wrangler["name"].as_str(), Some("existing-crate"));
    assert!(dir.join("src/lib.rs").is_file());

    // A second init finds nothing missing and changes nothing.
    let before = tree_contents(&dir);
    scaffold::init_project(&init_args(&dir, "hello", false)).unwrap();
    assert_eq!(tree_contents(&dir), before);
}

#[test]
fn init_merge_adds_a_lib_section_after_package() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bare");
    fs::create_dir(&dir).unwrap();
    let original =
        "[package]\nname = \"bare\"\nversion = \"0.1.0\"\n# before deps\n[dependencies]\n";
    fs::write(dir.join("Cargo.toml"), original).unwrap();
    scaffold::init_project(&init_args(&dir, "plain", false)).unwrap();
    let merged = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert_snapshot("scaffold-init-merged-bare-Cargo.toml", &merged);
    assert!(
        merged.starts_with("[package]\nname = \"bare\"\nversion = \"0.1.0\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n# before deps\n[dependencies]\n"),
        "{merged}"
    );
}

#[test]
fn init_refuses_to_overwrite_and_lists_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("crowded");
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::write(dir.join("src/lib.rs"), "// mine\n").unwrap();
    fs::write(dir.join("README.md"), "# mine\n").unwrap();
    let before = tree_contents(&dir);

    let err = scaffold::init_project(&init_args(&dir, "hello", false)).unwrap_err();
    let message = format!("{err:#}");
    assert!(!message.contains('\n'), "one line: {message}");
    assert!(
        message.contains("would overwrite 2 existing files"),
        "{message}"
    );
    assert!(
        message.contains("README.md, src/lib.rs") || message.contains("src/lib.rs, README.md"),
        "{message}"
    );
    assert!(message.contains("--force"), "{message}");
    assert_eq!(tree_contents(&dir), before, "nothing written");

    scaffold::init_project(&init_args(&dir, "hello", true)).unwrap();
    let lib = fs::read_to_string(dir.join("src/lib.rs")).unwrap();
    assert!(
        lib.contains("#[event(fetch)]"),
        "--force replaced src/lib.rs"
    );
    assert_eq!(
        file_list(&dir),
        file_list_of_template("hello"),
        "init --force writes the whole template"
    );
}

fn file_list_of_template(template: &str) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("reference");
    scaffold::new_project(&new_args(&dir, template)).unwrap();
    file_list(&dir)
}

#[test]
fn init_into_an_empty_directory_names_the_crate_after_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fresh-dir");
    fs::create_dir(&dir).unwrap();
    scaffold::init_project(&init_args(&dir, "durable-object", false)).unwrap();
    assert_eq!(
        toml(&dir.join("Cargo.toml"))["package"]["name"].as_str(),
        Some("fresh-dir")
    );
    assert_eq!(file_list(&dir), file_list_of_template("durable-object"));
}

/// Checks an error is one line naming `must_contain`, and that `dir` is unchanged.
fn assert_refused(
    result: anyhow::Result<()>,
    must_contain: &[&str],
    dir: &Path,
    before: &[(String, Vec<u8>)],
) {
    let message = format!("{:#}", result.expect_err("should be refused"));
    assert!(!message.contains('\n'), "one line: {message}");
    for part in must_contain {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
    assert_eq!(tree_contents(dir), before, "nothing written ({message})");
}

#[test]
fn bad_inputs_are_refused_in_one_line_without_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    fs::create_dir(root.join("taken")).unwrap();
    fs::write(root.join("taken/keep.txt"), "mine\n").unwrap();
    let before = tree_contents(&root);

    let named = |name: &str, template: &str| new_args(&root.join(name), template);
    assert_refused(
        scaffold::new_project(&named("My Worker", "hello")),
        &[
            "invalid project name `My Worker`",
            "a space is not allowed",
            "my-worker",
        ],
        &root,
        &before,
    );
    assert_refused(
        scaffold::new_project(&named("fn", "hello")),
        &["`fn`", "Rust keyword", "fn-worker"],
        &root,
        &before,
    );
    assert_refused(
        scaffold::new_project(&named("taken", "hello")),
        &["already exists", "cargo worker-build init"],
        &root,
        &before,
    );
    assert_refused(
        scaffold::new_project(&named("fine", "nope")),
        &[
            "unknown template `nope`",
            "hello, durable-object, library, plain",
        ],
        &root,
        &before,
    );
    let mut no_name = named("x", "hello");
    no_name.name = None;
    assert_refused(
        scaffold::new_project(&no_name),
        &["cargo worker-build new NAME"],
        &root,
        &before,
    );

    let mut bad_init = init_args(&root.join("taken"), "hello", false);
    bad_init.name = Some("Bad.Name".into());
    assert_refused(
        scaffold::init_project(&bad_init),
        &["invalid project name `Bad.Name`", "--name bad-name"],
        &root,
        &before,
    );
    let bad_template = init_args(&root.join("taken"), "nope", false);
    assert_refused(
        scaffold::init_project(&bad_template),
        &["unknown template"],
        &root,
        &before,
    );
}

#[test]
fn plan_new_keeps_the_parent_path_in_the_suggestion() {
    let args = NewArgs {
        name: Some("some/dir/Bad_Name".into()),
        template: "hello".into(),
        list_templates: false,
    };
    let err = scaffold::plan_new(&args).unwrap_err().to_string();
    assert!(
        err.contains("try `cargo worker-build new some/dir/bad_name`"),
        "{err}"
    );
}

#[test]
fn toolchain_file_matches_the_pinned_nightly_everywhere() {
    for template in templates::TEMPLATES {
        let file = template
            .files
            .iter()
            .find(|f| f.path == "rust-toolchain.toml")
            .unwrap();
        assert!(
            file.contents.contains(&format!("channel = \"{NIGHTLY}\"")),
            "{}",
            template.name
        );
    }
}

#[test]
fn cargo_package_ships_every_template_file() {
    // `cargo package` leaves out any directory holding a Cargo.toml (that is why the templates
    // have Cargo.toml.liquid); a file missing from the package would break `include_str!` for
    // everyone who runs `cargo install cargo-worker-build`.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args(["package", "--list", "--allow-dirty", "--offline"])
        .current_dir(repo())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "cargo package --list failed: {stderr}"
    );
    let listed: BTreeSet<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    for template in templates::TEMPLATES {
        for file in template.files {
            let path = format!("templates/{}/{}", template.name, file.path);
            assert!(
                listed.contains(&path),
                "`cargo package` would leave out {path}"
            );
        }
    }
}

#[test]
fn template_rust_sources_are_rustfmt_clean() {
    // `cargo generate` runs rustfmt on what it generates; a template that is already formatted
    // gives the same project whichever tool generated it.
    for template in templates::TEMPLATES {
        for file in template.files.iter().filter(|f| f.path.ends_with(".rs")) {
            let path = repo().join("templates").join(template.name).join(file.path);
            let output = std::process::Command::new("rustfmt")
                .args(["--edition", "2024", "--check"])
                .arg(&path)
                .output()
                .expect("cannot run rustfmt (rustup component add rustfmt)");
            assert!(
                output.status.success(),
                "{} is not rustfmt-formatted:\n{}",
                path.display(),
                String::from_utf8_lossy(&output.stdout)
            );
        }
    }
}

/// Issue 22: a link that appears after the plan (a race) is replaced or refused, never written
/// through: `init` renames its merge over the path, and creates files only when absent.
#[cfg(unix)]
#[test]
fn writing_a_plan_never_follows_a_link_put_there_after_planning() {
    use std::os::unix::fs::symlink;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("crate");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("Cargo.toml"), USER_MANIFEST).unwrap();
    fs::write(dir.join(".gitignore"), "/target\n").unwrap();
    let outside = tmp.path().join("outside");
    fs::write(&outside, "not the project's\n").unwrap();

    let plan = scaffold::plan_init(&init_args(&dir, "hello", false), tmp.path()).unwrap();
    fs::remove_file(dir.join(".gitignore")).unwrap();
    symlink(&outside, dir.join(".gitignore")).unwrap();
    scaffold::write_plan(&plan).unwrap();
    assert_eq!(fs::read_to_string(&outside).unwrap(), "not the project's\n");
    assert!(!fs::symlink_metadata(dir.join(".gitignore"))
        .unwrap()
        .is_symlink());

    // A file to create that is a link by then: refused, and the link's target is not created.
    let fresh = tmp.path().join("fresh");
    fs::create_dir(&fresh).unwrap();
    let plan = scaffold::plan_init(&init_args(&fresh, "hello", false), tmp.path()).unwrap();
    let absent = tmp.path().join("absent");
    symlink(&absent, fresh.join("wrangler.toml")).unwrap();
    let err = scaffold::write_plan(&plan).unwrap_err().to_string();
    assert!(err.contains("appeared while init ran"), "{err}");
    assert!(!absent.exists());
    // Undone: only the link the test made is left.
    assert_eq!(file_list(&fresh), ["wrangler.toml"]);
}
