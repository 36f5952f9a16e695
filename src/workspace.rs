//! The package being built, read from `cargo metadata`: which package, its cdylib target,
//! where its target directory is, and the exact wasm-bindgen version its lock file resolves to.

use std::path::{Path, PathBuf};

use std::collections::{HashSet, VecDeque};

use anyhow::Result;

use cargo_metadata::{
    semver::Version, CrateType, DependencyKind, Metadata, MetadataCommand, Package, PackageId,
};

use crate::errors::{problem, Code};

/// What the rest of the build needs to know about the package.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Selected {
    pub name: String,
    pub version: String,
    pub manifest_path: PathBuf,
    /// The directory holding the package's Cargo.toml.
    pub dir: PathBuf,
    /// The library target's name as rustc sees it (dashes become underscores in the .wasm file).
    pub lib_name: String,
    pub workspace_root: PathBuf,
    pub target_dir: PathBuf,
    /// The wasm-bindgen version this package resolves to in Cargo.lock.
    pub wasm_bindgen: Version,
    /// The `[package.metadata]` table, for settings such as wasm-opt arguments.
    pub metadata: serde_json::Value,
    /// Files whose change invalidates this answer (manifests, the lock file, cargo config).
    #[serde(default)]
    pub inputs: Vec<PathBuf>,
}

/// Options that change how `cargo metadata` resolves.
#[derive(Debug, Clone, Default)]
pub struct Query<'a> {
    pub locked: bool,
    pub offline: bool,
    pub frozen: bool,
    pub cargo: Option<&'a Path>,
}

/// Find the Cargo.toml `cargo` would use: `--manifest-path`, else the nearest one at or above `cwd`.
pub fn locate_manifest(manifest_path: Option<&Path>, cwd: &Path) -> Result<PathBuf> {
    if let Some(path) = manifest_path {
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            cwd.join(path)
        };
        if path.is_file() {
            return Ok(path);
        }
        return Err(problem(
            Code::NoManifest,
            format!("manifest path `{}` does not exist", path.display()),
            "pass the path of a package's Cargo.toml to --manifest-path",
        ));
    }
    cwd.ancestors().map(|dir| dir.join("Cargo.toml")).find(|p| p.is_file()).ok_or_else(|| {
        problem(
            Code::NoManifest,
            format!("could not find `Cargo.toml` in `{}` or any parent directory", cwd.display()),
            "run this in a Rust package, pass `--manifest-path path/to/Cargo.toml`, or create one with `cargo worker-build new NAME`",
        )
    })
}

/// Run `cargo metadata` resolved for the wasm target: the workspace's packages, targets and
/// target directory, and the dependency graph as it applies to wasm32 (a native-only
/// dependency's wasm-bindgen does not count). Resolving also brings Cargo.lock up to date.
/// It is the slow part of planning, so its answer is remembered (see [`cache`]).
pub fn metadata(manifest: &Path, query: &Query) -> Result<Metadata> {
    run_metadata(manifest, query, "`cargo metadata` failed")
}

fn run_metadata(manifest: &Path, query: &Query, what: &str) -> Result<Metadata> {
    let mut cmd = MetadataCommand::new();
    cmd.manifest_path(manifest);
    // Cargo asks rustc about the target through the project's rustc wrapper, which can be any
    // program the project ships; reading the package must run none (an empty value turns the
    // configured wrapper off). The compiler's answers do not depend on it.
    cmd.env("RUSTC_WRAPPER", "")
        .env("RUSTC_WORKSPACE_WRAPPER", "");
    if let Some(cargo) = query.cargo {
        cmd.cargo_path(cargo);
    }
    let mut flags = vec![
        (true, "--filter-platform"),
        (true, crate::toolchain::WASM_TARGET),
    ];
    flags.extend([
        (query.locked, "--locked"),
        (query.offline, "--offline"),
        (query.frozen, "--frozen"),
    ]);
    cmd.other_options(
        flags
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, f)| f.to_string())
            .collect::<Vec<_>>(),
    );
    cmd.exec().map_err(|e| {
        let detail = match &e {
            cargo_metadata::Error::CargoMetadata { stderr } => stderr.trim().to_string(),
            other => other.to_string(),
        };
        problem(
            Code::CargoMetadataFailed,
            format!("{what} for {}: {detail}", manifest.display()),
            "fix the error cargo reports, then run the build again",
        )
    })
}

/// Pick the package to build and read what the build needs from it.
pub fn select(meta: &Metadata, manifest: &Path, package: Option<&str>) -> Result<Selected> {
    let lock_path = meta.workspace_root.as_std_path().join("Cargo.lock");
    let lock_path = lock_path.as_path();
    let pkg = choose_package(meta, manifest, package)?;
    let lib = pkg.targets.iter().find(|t| t.crate_types.contains(&CrateType::CDyLib)).ok_or_else(|| {
        problem(
            Code::NoCdylib,
            format!("package `{}` has no `cdylib` library target, so it cannot become a Wasm module", pkg.name),
            format!("add `[lib]` with `crate-type = [\"cdylib\"]` to {}", pkg.manifest_path),
        )
    })?;
    let wasm_bindgen = resolve_wasm_bindgen(meta, &pkg.id).ok_or_else(|| {
        problem(
            Code::NoWasmBindgen,
            format!("package `{}` does not depend on wasm-bindgen, which generates the JavaScript side of the Worker", pkg.name),
            format!("run `cargo add wasm-bindgen@{} --manifest-path {}` (or depend on the `worker` crate)", crate::model::RECOMMENDED_BINDGEN, pkg.manifest_path),
        )
    })?;
    let manifest_path = PathBuf::from(pkg.manifest_path.as_std_path());
    Ok(Selected {
        name: pkg.name.to_string(),
        version: pkg.version.to_string(),
        dir: manifest_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
        manifest_path,
        lib_name: lib.name.replace('-', "_"),
        workspace_root: meta.workspace_root.clone().into_std_path_buf(),
        target_dir: meta.target_directory.clone().into_std_path_buf(),
        wasm_bindgen,
        metadata: pkg.metadata.clone(),
        inputs: meta
            .workspace_packages()
            .iter()
            .map(|p| p.manifest_path.clone().into_std_path_buf())
            .chain([
                meta.workspace_root.as_std_path().join("Cargo.toml"),
                lock_path.to_path_buf(),
            ])
            .collect(),
    })
}

fn choose_package<'m>(
    meta: &'m Metadata,
    manifest: &Path,
    spec: Option<&str>,
) -> Result<&'m Package> {
    let members: Vec<&Package> = meta.workspace_packages();
    if let Some(spec) = spec {
        let (name, version) = spec
            .split_once('@')
            .map_or((spec, None), |(n, v)| (n, Some(v)));
        return members
            .iter()
            .copied()
            .find(|p| p.name.as_str() == name && version.is_none_or(|v| p.version.to_string() == v))
            .ok_or_else(|| {
                problem(
                    Code::PackageNotFound,
                    format!(
                        "package `{spec}` is not a member of the workspace at {}",
                        meta.workspace_root
                    ),
                    format!("choose one of: {}", member_list(&members)),
                )
            });
    }
    let manifest = manifest
        .canonicalize()
        .unwrap_or_else(|_| manifest.to_path_buf());
    if let Some(pkg) = members.iter().copied().find(|p| {
        p.manifest_path
            .as_std_path()
            .canonicalize()
            .is_ok_and(|m| m == manifest)
    }) {
        return Ok(pkg);
    }
    // A virtual manifest: say which members could be built.
    let cdylibs: Vec<&Package> = members.iter().copied().filter(|p| is_cdylib(p)).collect();
    let first = cdylibs
        .first()
        .map_or("NAME".to_string(), |p| p.name.to_string());
    Err(problem(
        Code::VirtualWorkspace,
        format!(
            "{} is a virtual workspace manifest; choose a package to build (cdylib members: {})",
            manifest.display(),
            if cdylibs.is_empty() {
                "none".to_string()
            } else {
                member_list(&cdylibs)
            }
        ),
        format!("run `cargo worker-build -p {first}`"),
    ))
}

fn is_cdylib(pkg: &Package) -> bool {
    pkg.targets
        .iter()
        .any(|t| t.crate_types.contains(&CrateType::CDyLib))
}

fn member_list(members: &[&Package]) -> String {
    let mut names: Vec<String> = members.iter().map(|p| p.name.to_string()).collect();
    names.sort();
    names.join(", ")
}

pub mod cache {
    //! The answer of [`super::select`] remembered between runs, so a no-change rebuild does not
    //! pay for `cargo metadata`. It is keyed by everything that selects the package (current
    //! directory, arguments, CARGO_TARGET_DIR) and valid while none of the files it came from
    //! (every workspace manifest, Cargo.lock, cargo config files) changed size or time.

    use std::path::{Path, PathBuf};
    use std::time::UNIX_EPOCH;

    use sha2::{Digest, Sha256};

    use super::Selected;

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Entry {
        selected: Selected,
        stamps: Vec<(PathBuf, Option<(u64, u128)>)>,
    }

    /// What identifies one question: the same key asks the same question.
    pub fn key(parts: &[&str]) -> String {
        let mut h = Sha256::new();
        h.update(env!("CARGO_PKG_VERSION"));
        for part in parts {
            h.update([0]);
            h.update(part.as_bytes());
        }
        format!("{:x}", h.finalize())
    }

    fn path(key: &str) -> PathBuf {
        crate::toolcache::root()
            .join("plans")
            .join(format!("{key}.json"))
    }

    fn stamp(path: &Path) -> Option<(u64, u128)> {
        let m = std::fs::metadata(path).ok()?;
        let t = m
            .modified()
            .ok()?
            .duration_since(UNIX_EPOCH)
            .ok()?
            .as_nanos();
        Some((m.len(), t))
    }

    /// Cargo configuration files that could change the target directory.
    pub fn config_files(cwd: &Path) -> Vec<PathBuf> {
        // The files cargo reads, as cargo-config2 finds them (creating or removing one changes
        // the list, so the remembered answer is not used).
        cargo_config2::Walk::new(cwd).collect()
    }

    pub fn load(key: &str, extra_inputs: &[PathBuf]) -> Option<Selected> {
        let entry: Entry = serde_json::from_slice(&std::fs::read(path(key)).ok()?).ok()?;
        let expected: Vec<&Path> = entry
            .selected
            .inputs
            .iter()
            .chain(extra_inputs)
            .map(PathBuf::as_path)
            .collect();
        let recorded: Vec<&Path> = entry.stamps.iter().map(|(p, _)| p.as_path()).collect();
        let fresh = expected == recorded && entry.stamps.iter().all(|(p, s)| stamp(p) == *s);
        fresh.then_some(entry.selected)
    }

    /// Best effort: a cache that cannot be written only costs speed.
    pub fn store(key: &str, selected: &Selected, extra_inputs: &[PathBuf]) {
        let stamps = selected
            .inputs
            .iter()
            .chain(extra_inputs)
            .map(|p| (p.clone(), stamp(p)))
            .collect();
        let entry = Entry {
            selected: selected.clone(),
            stamps,
        };
        let file = path(key);
        if let (Some(dir), Ok(json)) = (file.parent(), serde_json::to_vec(&entry)) {
            let tmp = dir.join(format!(".{key}.{}", std::process::id()));
            let _ = std::fs::create_dir_all(dir)
                .and_then(|()| std::fs::write(&tmp, json))
                .and_then(|()| std::fs::rename(&tmp, &file));
        }
    }
}

/// The wasm-bindgen the package links on wasm32: a direct dependency when there is one, else
/// the nearest one through its normal dependencies, breadth first. The graph comes from
/// `cargo metadata --filter-platform wasm32-unknown-unknown`, so a lock file holding several
/// versions (a native-only dependency's, say) does not confuse it.
pub fn resolve_wasm_bindgen(meta: &Metadata, root: &PackageId) -> Option<Version> {
    let resolve = meta.resolve.as_ref()?;
    let node_of = |id: &PackageId| resolve.nodes.iter().find(|n| &n.id == id);
    let package_of = |id: &PackageId| meta.packages.iter().find(|p| &p.id == id);
    let mut queue = VecDeque::from([root.clone()]);
    let mut seen = HashSet::from([root.clone()]);
    while let Some(id) = queue.pop_front() {
        let node = node_of(&id)?;
        let normal: Vec<&PackageId> = node
            .deps
            .iter()
            .filter(|d| {
                d.dep_kinds.is_empty()
                    || d.dep_kinds.iter().any(|k| k.kind == DependencyKind::Normal)
            })
            .map(|d| &d.pkg)
            .collect();
        if let Some(found) = normal
            .iter()
            .filter_map(|id| package_of(id))
            .find(|p| p.name.as_str() == "wasm-bindgen")
        {
            return Some(found.version.clone());
        }
        queue.extend(
            normal
                .into_iter()
                .filter(|id| seen.insert((*id).clone()))
                .cloned(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_remembered_metadata_follows_the_cargo_config_files_cargo_reads() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("a/b");
        std::fs::create_dir_all(&inner).unwrap();
        let before = super::cache::config_files(&inner);
        std::fs::create_dir_all(dir.path().join("a/.cargo")).unwrap();
        let config = dir.path().join("a/.cargo/config.toml");
        std::fs::write(&config, "[build]\ntarget-dir = \"elsewhere\"\n").unwrap();
        let after = super::cache::config_files(&inner);
        assert!(
            !before.contains(&config) && after.contains(&config),
            "{after:?}"
        );
        // cargo reads `config` rather than `config.toml` when both are there.
        let legacy = dir.path().join("a/.cargo/config");
        std::fs::write(&legacy, "").unwrap();
        let both = super::cache::config_files(&inner);
        assert!(
            both.contains(&legacy) && !both.contains(&config),
            "{both:?}"
        );
    }
}
