//! The package being built, read from `cargo metadata`: which package, its cdylib target,
//! where its target directory is, and the exact wasm-bindgen version its lock file resolves to.

use std::path::{Path, PathBuf};

use anyhow::Result;
use cargo_metadata::{semver::Version, Metadata, MetadataCommand, Package};

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
    /// The workspace's Cargo.lock.
    pub lock: PathBuf,
    /// The `[package.metadata]` table, for settings such as wasm-opt arguments.
    pub metadata: serde_json::Value,
    /// Files whose change invalidates this answer (manifests, the lock file, cargo config).
    #[serde(default)]
    pub inputs: Vec<PathBuf>,
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

/// Run `cargo metadata --no-deps`: the workspace's packages, targets and target directory,
/// without resolving dependencies (that answer comes from Cargo.lock, read directly; see
/// [`lock`]). Resolution is the slow part of `cargo metadata`, and a no-change rebuild pays
/// for every millisecond here.
pub fn metadata(manifest: &Path, query: &Query) -> Result<Metadata> {
    run_metadata(manifest, query, false, "`cargo metadata` failed")
}

/// Make sure Cargo.lock exists and is not older than any workspace manifest; when it is, a
/// resolving `cargo metadata` has cargo bring it up to date (or refuse, under --locked).
pub fn ensure_lock_current(meta: &Metadata, manifest: &Path, query: &Query) -> Result<PathBuf> {
    let lock = meta.workspace_root.as_std_path().join("Cargo.lock");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let stale = match modified(&lock) {
        None => true,
        Some(t) => meta
            .workspace_packages()
            .iter()
            .any(|p| modified(p.manifest_path.as_std_path()).is_some_and(|m| m > t)),
    };
    if stale {
        run_metadata(
            manifest,
            query,
            true,
            &format!("could not update {}", lock.display()),
        )?;
    }
    Ok(lock)
}

fn run_metadata(manifest: &Path, query: &Query, resolve: bool, what: &str) -> Result<Metadata> {
    let mut cmd = MetadataCommand::new();
    cmd.manifest_path(manifest);
    if !resolve {
        cmd.no_deps();
    }
    if let Some(cargo) = query.cargo {
        cmd.cargo_path(cargo);
    }
    if let Some(tc) = query.toolchain {
        cmd.env("RUSTUP_TOOLCHAIN", tc);
    }
    let flags = [
        (query.locked, "--locked"),
        (query.offline, "--offline"),
        (query.frozen, "--frozen"),
    ];
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
pub fn select(
    meta: &Metadata,
    manifest: &Path,
    package: Option<&str>,
    lock_path: &Path,
) -> Result<Selected> {
    let pkg = choose_package(meta, manifest, package)?;
    let lib = pkg.targets.iter().find(|t| t.crate_types.iter().any(|c| c.to_string() == "cdylib")).ok_or_else(|| {
        problem(
            Code::NoCdylib,
            format!("package `{}` has no `cdylib` library target, so it cannot become a Wasm module", pkg.name),
            format!("add `[lib]` with `crate-type = [\"cdylib\"]` to {}", pkg.manifest_path),
        )
    })?;
    let lock = lock::Lock::read(lock_path)?;
    let wasm_bindgen = lock.wasm_bindgen_of(pkg.name.as_str(), &pkg.version).ok_or_else(|| {
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
        lock: lock_path.to_path_buf(),
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
        let mut files: Vec<PathBuf> = cwd
            .ancestors()
            .flat_map(|d| [d.join(".cargo/config.toml"), d.join(".cargo/config")])
            .collect();
        if let Some(home) = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        {
            files.push(home.join("config.toml"));
            files.push(home.join("config"));
        }
        files
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

pub mod lock {
    //! Cargo.lock, read directly: which wasm-bindgen a package resolves to.

    use std::collections::{HashSet, VecDeque};
    use std::path::Path;

    use anyhow::{Context, Result};
    use cargo_metadata::semver::Version;

    #[derive(Debug)]
    struct Entry {
        name: String,
        version: Version,
        /// As written: `name`, `name version` or `name version (source)`.
        deps: Vec<String>,
    }

    #[derive(Debug)]
    pub struct Lock {
        packages: Vec<Entry>,
    }

    impl Lock {
        pub fn read(path: &Path) -> Result<Lock> {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("could not read {}", path.display()))?;
            Lock::parse(&text).with_context(|| format!("could not parse {}", path.display()))
        }

        pub fn parse(text: &str) -> Result<Lock> {
            let doc: toml_edit::DocumentMut = text.parse()?;
            let mut packages = Vec::new();
            if let Some(array) = doc.get("package").and_then(|p| p.as_array_of_tables()) {
                for table in array.iter() {
                    let (Some(name), Some(version)) = (
                        table.get("name").and_then(|v| v.as_str()),
                        table.get("version").and_then(|v| v.as_str()),
                    ) else {
                        continue;
                    };
                    let Ok(version) = Version::parse(version) else {
                        continue;
                    };
                    let deps = table
                        .get("dependencies")
                        .and_then(|d| d.as_array())
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    packages.push(Entry {
                        name: name.to_string(),
                        version,
                        deps,
                    });
                }
            }
            Ok(Lock { packages })
        }

        /// The package a dependency string names.
        fn find(&self, dep: &str) -> Option<usize> {
            let mut words = dep.split_whitespace();
            let name = words.next()?;
            let version = words.next().and_then(|v| Version::parse(v).ok());
            self.packages
                .iter()
                .position(|p| p.name == name && version.as_ref().is_none_or(|v| *v == p.version))
        }

        /// The wasm-bindgen the package links: a direct dependency when there is one, else the
        /// nearest through its dependencies (breadth first). A lock file may hold several
        /// versions (a dependency pinning an older one); the package's own graph decides.
        pub fn wasm_bindgen_of(&self, name: &str, version: &Version) -> Option<Version> {
            let root = self
                .packages
                .iter()
                .position(|p| p.name == name && p.version == *version)?;
            let mut queue = VecDeque::from([root]);
            let mut seen = HashSet::from([root]);
            while let Some(i) = queue.pop_front() {
                let deps: Vec<usize> = self.packages[i]
                    .deps
                    .iter()
                    .filter_map(|d| self.find(d))
                    .collect();
                if let Some(found) = deps
                    .iter()
                    .find(|&&d| self.packages[d].name == "wasm-bindgen")
                {
                    return Some(self.packages[*found].version.clone());
                }
                queue.extend(deps.into_iter().filter(|d| seen.insert(*d)));
            }
            None
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        const TWO_VERSIONS: &str = r#"
version = 4

[[package]]
name = "app"
version = "0.1.0"
dependencies = ["helper", "wasm-bindgen 0.2.130"]

[[package]]
name = "helper"
version = "1.0.0"
dependencies = ["wasm-bindgen 0.2.100"]

[[package]]
name = "other"
version = "0.1.0"
dependencies = ["helper"]

[[package]]
name = "wasm-bindgen"
version = "0.2.100"
source = "registry+https://github.com/rust-lang/crates.io-index"

[[package]]
name = "wasm-bindgen"
version = "0.2.130"
source = "registry+https://github.com/rust-lang/crates.io-index"
"#;

        #[test]
        fn the_package_own_resolution_decides_between_two_locked_versions() {
            let lock = Lock::parse(TWO_VERSIONS).unwrap();
            let v = |s: &str| Version::parse(s).unwrap();
            assert_eq!(
                lock.wasm_bindgen_of("app", &v("0.1.0")),
                Some(v("0.2.130")),
                "direct dependency wins"
            );
            assert_eq!(
                lock.wasm_bindgen_of("other", &v("0.1.0")),
                Some(v("0.2.100")),
                "found through a dependency"
            );
            assert_eq!(lock.wasm_bindgen_of("wasm-bindgen", &v("0.2.100")), None);
            assert_eq!(lock.wasm_bindgen_of("missing", &v("1.0.0")), None);
        }

        #[test]
        fn unambiguous_dependencies_are_written_by_name_only() {
            let lock = Lock::parse("[[package]]\nname = \"app\"\nversion = \"0.1.0\"\ndependencies = [\"worker\"]\n\n[[package]]\nname = \"worker\"\nversion = \"0.8.7\"\ndependencies = [\"wasm-bindgen\"]\n\n[[package]]\nname = \"wasm-bindgen\"\nversion = \"0.2.130\"\n").unwrap();
            assert_eq!(
                lock.wasm_bindgen_of("app", &Version::new(0, 1, 0)),
                Some(Version::new(0, 2, 130))
            );
        }

        #[test]
        fn a_broken_lock_file_is_an_error() {
            assert!(Lock::parse("[[package]\nname = ").is_err());
        }
    }
}
