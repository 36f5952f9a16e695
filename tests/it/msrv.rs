//! `cargo install --locked cargo-worker-build` must work on the Rust that `Cargo.toml`'s
//! `rust-version` promises: no package the lockfile pins may ask for a newer one.

use crate::support;

#[test]
fn every_locked_package_builds_on_our_rust_version() {
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(support::repo_root().join("Cargo.toml"))
        .other_options(vec!["--locked".to_string()])
        .exec()
        .expect("cargo metadata --locked reads the lockfile");
    let root = metadata.root_package().expect("the tool's own package");
    let ours = root
        .rust_version
        .clone()
        .expect("Cargo.toml declares rust-version");
    let mut above: Vec<String> = metadata
        .packages
        .iter()
        .filter_map(|p| {
            let theirs = p.rust_version.as_ref()?;
            (*theirs > ours).then(|| {
                format!(
                    "{} {} needs Rust {theirs}: `cargo update -p {} --precise <an older version>`, \
                     or raise rust-version in Cargo.toml",
                    p.name, p.version, p.name
                )
            })
        })
        .collect();
    above.sort();
    assert!(
        above.is_empty(),
        "Cargo.toml says rust-version = \"{ours}\", but the lockfile pins:\n{}",
        above.join("\n")
    );
}
