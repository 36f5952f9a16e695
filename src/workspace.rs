//! The package being built, read from `cargo metadata`: which package, its cdylib target,
//! where its target directory is, and the exact wasm-bindgen version its lock file resolves to.

use std::path::{Path, PathBuf};

use anyhow::Result;
use cargo_metadata::{
    semver::Version, DependencyKind, Metadata, MetadataCommand, Package, PackageId,
};

use crate::errors::{problem, Code};

/// What the rest of the build needs to know about the package.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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
    #[serde(skip)]
    pub metadata: serde_json::Value,
}

/// Options that change how `cargo metadata` resolves.
#[derive(Debug, Clone, Default)]
pub struct Query<'a> {
    pub manifest_path: Option<&'a Path>,
    pub package: Option<&'a str>,
    pub locked: bool,
    pub offline: bool,
    pub frozen: bool,
    pub cargo: Option<&'a Path>,
    pub toolchain: Option<&'a str>,
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

/// Run `cargo metadata` for the wasm target.
pub fn metadata(manifest: &Path, query: &Query) -> Result<Metadata> {
    let mut cmd = MetadataCommand::new();
    cmd.manifest_path(manifest);
    if let Some(cargo) = query.cargo {
        cmd.cargo_path(cargo);
    }
    if let Some(tc) = query.toolchain {
        cmd.env("RUSTUP_TOOLCHAIN", tc);
    }
    let mut other = vec![
        "--filter-platform".to_string(),
        crate::toolchain::WASM_TARGET.to_string(),
    ];
    for (on, flag) in [
        (query.locked, "--locked"),
        (query.offline, "--offline"),
        (query.frozen, "--frozen"),
    ] {
        if on {
            other.push(flag.to_string());
        }
    }
    cmd.other_options(other);
    cmd.exec().map_err(|e| {
        let detail = match &e {
            cargo_metadata::Error::CargoMetadata { stderr } => stderr.trim().to_string(),
            other => other.to_string(),
        };
        problem(
            Code::CargoMetadataFailed,
            format!(
                "`cargo metadata` failed for {}: {detail}",
                manifest.display()
            ),
            "fix the error cargo reports above, then run the build again",
        )
    })
}

/// Pick the package to build and read what the build needs from it.
pub fn select(meta: &Metadata, manifest: &Path, package: Option<&str>) -> Result<Selected> {
    let pkg = choose_package(meta, manifest, package)?;
    let lib = pkg.targets.iter().find(|t| t.crate_types.iter().any(|c| c.to_string() == "cdylib")).ok_or_else(|| {
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
            format!("run `cargo add wasm-bindgen@0.2.130 --manifest-path {}` (or depend on the `worker` crate)", pkg.manifest_path),
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
                    format!("choose one of: {}", member_list(&members, false)),
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
                member_list(&cdylibs, false)
            }
        ),
        format!("run `cargo worker-build -p {first}`"),
    ))
}

fn is_cdylib(pkg: &Package) -> bool {
    pkg.targets
        .iter()
        .any(|t| t.crate_types.iter().any(|c| c.to_string() == "cdylib"))
}

fn member_list(members: &[&Package], _with_versions: bool) -> String {
    let mut names: Vec<String> = members.iter().map(|p| p.name.to_string()).collect();
    names.sort();
    names.join(", ")
}

/// The wasm-bindgen the package itself links: a direct dependency when there is one, else the
/// nearest one through its normal dependencies. Lock files may hold several versions (a
/// dependency pinning an older one); the package's own resolution decides.
pub fn resolve_wasm_bindgen(meta: &Metadata, root: &PackageId) -> Option<Version> {
    let resolve = meta.resolve.as_ref()?;
    let node_of = |id: &PackageId| resolve.nodes.iter().find(|n| &n.id == id);
    let mut queue = std::collections::VecDeque::from([root.clone()]);
    let mut seen = std::collections::HashSet::from([root.clone()]);
    while let Some(id) = queue.pop_front() {
        let node = node_of(&id)?;
        let normal = node.deps.iter().filter(|d| {
            d.dep_kinds.is_empty() || d.dep_kinds.iter().any(|k| k.kind == DependencyKind::Normal)
        });
        // Breadth-first: every direct dependency is looked at before anything deeper.
        for dep in normal.clone() {
            if let Some(pkg) = meta.packages.iter().find(|p| p.id == dep.pkg) {
                if pkg.name.as_str() == "wasm-bindgen" {
                    return Some(pkg.version.clone());
                }
            }
        }
        for dep in normal {
            if seen.insert(dep.pkg.clone()) {
                queue.push_back(dep.pkg.clone());
            }
        }
    }
    None
}
