//! `cargo worker-build new` / `init` through the real binary: exit codes, the one-line errors a
//! user sees, `--list-templates`, and that a refused command writes nothing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::tool;

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("cannot start cargo-worker-build")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every file under `dir` with its contents, to prove a refused command changed nothing.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            // A link is its target's name: never followed (it may point outside, or nowhere).
            if path.is_symlink() {
                let target = fs::read_link(&path).unwrap();
                out.push((path, target.to_string_lossy().as_bytes().to_vec()));
            } else if path.is_dir() {
                out.push((path.clone(), Vec::new()));
                walk(&path, out);
            } else {
                let bytes = fs::read(&path).unwrap();
                out.push((path, bytes));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// Asserts a refusal: non-zero exit, exactly one line on stderr containing each of `parts`,
/// and `dir` unchanged.
fn assert_refused(output: &Output, parts: &[&str], dir: &Path, before: &[(PathBuf, Vec<u8>)]) {
    let err = stderr(output);
    assert!(!output.status.success(), "should fail, stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected, got: {err}");
    assert!(err.starts_with("error: "), "{err}");
    for part in parts {
        assert!(err.contains(part), "`{part}` missing from: {err}");
    }
    assert_eq!(tree(dir), before, "nothing may be written ({err})");
}

#[test]
fn list_templates_prints_each_template_with_a_description() {
    for subcommand in ["new", "init"] {
        let output = run(tool().args([subcommand, "--list-templates"]));
        assert!(output.status.success(), "{}", stderr(&output));
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert_eq!(stdout, cargo_worker_build::scaffold::list_templates());
        crate::support::assert_snapshot("scaffold-list-templates", &stdout);
    }
}

#[test]
fn new_creates_the_project_and_says_what_to_run_next() {
    let tmp = tempfile::tempdir().unwrap();
    let output = run(tool()
        .args(["new", "my-worker", "--template", "plain"])
        .current_dir(tmp.path()));
    assert!(output.status.success(), "{}", stderr(&output));
    let dir = tmp.path().join("my-worker");
    let manifest = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("name = \"my-worker\""), "{manifest}");
    assert!(dir.join("src/lib.rs").is_file());
    let err = stderr(&output);
    let steps: Vec<&str> = err
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("Next:"))
        .take(4)
        .map(|l| l.trim().trim_start_matches("Next:").trim())
        .map(|l| l.split("   (").next().unwrap().trim())
        .collect();
    assert_eq!(
        steps,
        ["cd my-worker", "npm install", "npm run dev", "npm test"],
        "{err}"
    );
    assert!(dir.join("package.json").is_file());
}

/// `new` and `tools` compare the `node` on PATH with the pinned wrangler's Node range and say
/// what to run when it is older. The old Node here is a script that prints what Node 20 prints.
#[test]
fn new_and_tools_say_what_to_run_when_node_is_too_old() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let node = bin.join("node");
    fs::write(&node, "#!/bin/sh\necho v20.20.2\n").unwrap();
    fs::set_permissions(&node, fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());

    let output = run(tool()
        .args(["new", "old-node"])
        .env("PATH", &path)
        .current_dir(tmp.path()));
    assert!(
        output.status.success(),
        "the project is written anyway: {}",
        stderr(&output)
    );
    let err = stderr(&output);
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    for part in [
        "Node 20.20.2",
        "wrangler 4.164.0",
        "Node >=22.12.0",
        "`npx -y -p node@24 -- npm install`",
    ] {
        assert!(warnings[0].contains(part), "{part} missing: {err}");
    }

    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plain/Cargo.toml");
    let output = run(tool()
        .arg("tools")
        .arg("--manifest-path")
        .arg(&fixture)
        .env("PATH", &path)
        .current_dir(tmp.path()));
    assert!(output.status.success(), "{}", stderr(&output));
    let table = String::from_utf8_lossy(&output.stdout);
    let row = table.lines().find(|l| l.starts_with("node ")).unwrap();
    assert!(
        row.contains(">=22.12.0") && row.contains("v20.20.2"),
        "{row}"
    );
    assert!(
        stderr(&output)
            .lines()
            .any(|l| l.starts_with("warning: Node 20.20.2") && l.contains("npx -y -p node@24")),
        "{}",
        stderr(&output)
    );

    // With a new enough Node: no warning.
    fs::write(&node, "#!/bin/sh\necho v24.21.0\n").unwrap();
    let output = run(tool()
        .args(["new", "new-node"])
        .env("PATH", &path)
        .current_dir(tmp.path()));
    assert!(!stderr(&output).contains("warning:"), "{}", stderr(&output));
}

#[test]
fn cargo_style_invocation_works_too() {
    // cargo runs `cargo-worker-build worker-build new NAME`.
    let tmp = tempfile::tempdir().unwrap();
    let output = run(tool()
        .args(["worker-build", "new", "via-cargo"])
        .current_dir(tmp.path()));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(tmp.path().join("via-cargo/wrangler.toml").is_file());
}

#[test]
fn bad_inputs_exit_non_zero_with_one_line_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fs::create_dir(root.join("taken")).unwrap();
    fs::write(root.join("taken/notes.txt"), "mine\n").unwrap();
    fs::create_dir_all(root.join("crate/src")).unwrap();
    fs::write(
        root.join("crate/Cargo.toml"),
        "[package]\nname = \"crate-x\"\n",
    )
    .unwrap();
    fs::write(root.join("crate/src/lib.rs"), "// mine\n").unwrap();
    let before = tree(root);
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["new", "My Worker"],
            &[
                "invalid project name `My Worker`",
                "a space is not allowed",
                "try `cargo worker-build new my-worker`",
            ],
        ),
        (&["new", "self"], &["`self`", "Rust keyword", "self-worker"]),
        (
            &["new", "2fast"],
            &["cannot start with a digit", "worker-2fast"],
        ),
        (
            &["new", "taken"],
            &["`taken` already exists", "cargo worker-build init taken"],
        ),
        (
            &["new", "fine", "--template", "nope"],
            &[
                "unknown template `nope`",
                "hello, durable-object, library, plain",
                "--list-templates",
            ],
        ),
        (&["new"], &["cargo worker-build new NAME"]),
        (
            &["new", "."],
            &["does not name a new directory", "cargo worker-build init ."],
        ),
        (
            &["init", "crate"],
            &["would overwrite 1 existing file", "src/lib.rs", "--force"],
        ),
        (
            &["init", "taken", "--name", "Nope!"],
            &["invalid project name `Nope!`", "--name nope"],
        ),
        (
            &["init", "taken", "--template", "nope"],
            &["unknown template `nope`"],
        ),
    ];
    for (args, parts) in cases {
        let output = run(tool().args(*args).current_dir(root));
        assert_refused(&output, parts, root, &before);
    }
}

/// Whether this process runs as root, who can write anywhere regardless of permission bits.
fn running_as_root() -> bool {
    let output = Command::new("id")
        .arg("-u")
        .output()
        .expect("cannot run `id -u`");
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

/// Runs the binary in `dir` (owned by this user, mode 0555 or owned by root) as someone who
/// cannot write there: as root, drops to `nobody` with setpriv; otherwise the mode suffices.
fn run_without_write_permission(dir: &Path, args: &[&str]) -> Output {
    use std::os::unix::fs::PermissionsExt;
    if running_as_root() {
        // A copy of the binary that `nobody` can reach whatever the checkout's permissions.
        let bin_dir = tempfile::tempdir().unwrap();
        fs::set_permissions(bin_dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let bin = bin_dir.path().join("cargo-worker-build");
        fs::copy(env!("CARGO_BIN_EXE_cargo-worker-build"), &bin).unwrap();
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
        let mut parent = dir.parent();
        while let Some(p) = parent {
            // `nobody` must be able to reach the directory (tempdirs are 0700).
            let mode = fs::metadata(p).unwrap().permissions().mode();
            if mode & 0o001 == 0 {
                fs::set_permissions(p, fs::Permissions::from_mode(mode | 0o011)).unwrap();
            }
            parent = p.parent();
        }
        let output = run(Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&bin)
            .args(args)
            .current_dir(dir)
            .env("HOME", dir));
        drop(bin_dir);
        output
    } else {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o555)).unwrap();
        let output = run(tool().args(args).current_dir(dir));
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
        output
    }
}

#[test]
fn no_write_permission_is_one_line_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("readonly");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("existing.txt"), "mine\n").unwrap();
    let before = tree(&dir);

    let output = run_without_write_permission(&dir, &["new", "my-worker"]);
    assert_refused(
        &output,
        &[
            "no permission to write in",
            "choose a directory you can write to",
        ],
        &dir,
        &before,
    );

    let output = run_without_write_permission(&dir, &["init", "--name", "my-worker"]);
    assert_refused(
        &output,
        &[
            "no permission to write in",
            "choose a directory you can write to",
        ],
        &dir,
        &before,
    );
}

/// Issue 22: `init` merged into, and created, files through symbolic links pointing outside
/// the project. Each link is refused with one line, and nothing anywhere changes.
#[cfg(unix)]
#[test]
fn init_refuses_symbolic_links_and_leaves_their_targets_alone() {
    use std::os::unix::fs::symlink;
    let cases: &[(&str, bool)] = &[
        // (the linked path, whether its target exists)
        (".gitignore", true),
        ("Cargo.toml", true),
        ("wrangler.toml", false),
        ("src", true),
    ];
    for &(linked, exists) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let outside = root.join("outside");
        fs::create_dir_all(outside.join("src")).unwrap();
        fs::write(outside.join(".gitignore"), "/secrets\n").unwrap();
        fs::write(outside.join("Cargo.toml"), "[package]\nname = \"other\"\n").unwrap();
        fs::write(outside.join("src/lib.rs"), "// someone else's\n").unwrap();
        let project = root.join("proj");
        fs::create_dir(&project).unwrap();
        let target = outside.join(if exists { linked } else { "absent" });
        symlink(&target, project.join(linked)).unwrap();
        let before = tree(root);
        let output = run(tool()
            .args(["init", "proj", "--name", "proj"])
            .current_dir(root));
        assert_refused(
            &output,
            &[
                &format!("`{linked}` in `proj` is a symbolic link"),
                "run init again",
            ],
            root,
            &before,
        );
        assert!(
            !outside.join("absent").exists(),
            "{linked}: created through the link"
        );
    }
}
