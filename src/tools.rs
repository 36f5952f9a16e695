//! `cargo worker-build tools`: each tool a build of this project uses, the version it needs,
//! what is installed and where it came from, and the tool cache (with `--clean` to remove
//! cached versions the project does not use). Builds themselves never delete other versions.

use std::path::PathBuf;

use anyhow::Result;

use crate::cli::{MessageFormat, ToolsArgs};
use crate::term::Shell;
use crate::{bindgen, toolcache, toolchain, workspace};

#[derive(Debug, serde::Serialize)]
pub struct ToolRow {
    pub tool: String,
    pub needed: String,
    pub installed: Option<String>,
    pub origin: String,
    pub path: Option<PathBuf>,
}

pub fn run(args: &ToolsArgs, shell: &Shell) -> Result<i32> {
    let cwd = std::env::current_dir()?;
    let manifest = workspace::locate_manifest(args.manifest_path.as_deref(), &cwd)?;
    let query = workspace::Query::default();
    let meta = workspace::metadata(&manifest, &query)?;
    let package = workspace::select(&meta, &manifest, None)?;
    let var = |k: &str| std::env::var(k).ok();
    let unwind_tc = toolchain::select(None, true, &package.dir, &var).ok();
    let abort_tc = toolchain::select(None, false, &package.dir, &var)?;

    let mut rows = Vec::new();
    for (label, tc) in [
        ("toolchain (--unwind)", unwind_tc.as_ref()),
        ("toolchain", Some(&abort_tc)),
    ] {
        if let Some(tc) = tc {
            let installed = toolchain::installed_sysroot(&tc.name);
            rows.push(ToolRow {
                tool: label.into(),
                needed: tc.name.clone(),
                installed: installed.as_ref().map(|_| "yes".to_string()),
                origin: match &tc.source {
                    toolchain::Source::Flag => "--toolchain".to_string(),
                    toolchain::Source::Rustup => "cargo +toolchain / RUSTUP_TOOLCHAIN".to_string(),
                    toolchain::Source::File { path } => path.display().to_string(),
                    toolchain::Source::Default => "default".to_string(),
                },
                path: installed,
            });
        }
    }
    let wanted = package.wasm_bindgen.clone();
    let cached = bindgen::cached_binary(&wanted);
    let (installed, origin, path) = if cached.is_file() {
        (
            Some(wanted.to_string()),
            "tool cache".to_string(),
            Some(cached),
        )
    } else if let Some(env) = crate::compat::WASM_BINDGEN.lookup(|k| std::env::var_os(k)) {
        (
            bindgen::version_of(&env.path).map(|v| v.to_string()),
            env.var.to_string(),
            Some(env.path),
        )
    } else {
        match crate::process::which("wasm-bindgen") {
            Some(p) => (
                bindgen::version_of(&p).map(|v| v.to_string()),
                "PATH".to_string(),
                Some(p),
            ),
            None => (None, "installed on first build".to_string(), None),
        }
    };
    rows.push(ToolRow {
        tool: "wasm-bindgen".into(),
        needed: wanted.to_string(),
        installed,
        origin,
        path,
    });
    rows.push(cached_npm_tool(
        "binaryen (wasm-opt)",
        format!("{}+", crate::opt::MIN_WASM_OPT),
        crate::compat::WASM_OPT,
        "binaryen",
        crate::opt::BINARYEN_VERSION,
    ));
    rows.push(cached_npm_tool(
        "esbuild (bundles JS)",
        crate::minify::ESBUILD_VERSION.to_string(),
        crate::compat::ESBUILD,
        "esbuild",
        crate::minify::ESBUILD_VERSION,
    ));
    // Binaryen runs on any Node; the project's wrangler (npm run dev / deploy / test) does not.
    let node_needed = crate::scaffold::node::requirement(Some(&package.dir));
    let node = crate::scaffold::node::check(&node_needed);
    let node_advice = crate::scaffold::node::advice(&node_needed, &node);
    let (installed, path) = match &node {
        crate::scaffold::node::NodeCheck::Fits { version, path }
        | crate::scaffold::node::NodeCheck::TooOld { version, path } => {
            (Some(format!("v{version}")), Some(path.clone()))
        }
        crate::scaffold::node::NodeCheck::Missing => (None, None),
        crate::scaffold::node::NodeCheck::Unknown { .. } => (None, crate::process::which("node")),
    };
    rows.push(ToolRow {
        tool: "node".into(),
        needed: node_needed.range.clone(),
        installed,
        origin: format!("PATH, for wrangler {}", node_needed.wrangler),
        path,
    });

    let compile_cache = crate::cache::tools_view(&cwd, &package.metadata);
    rows.push(ToolRow {
        tool: "sccache (cache)".into(),
        needed: format!("{} (optional)", crate::cache::SCCACHE_VERSION),
        installed: compile_cache.version.clone(),
        origin: compile_cache.origin.clone(),
        path: compile_cache.path.clone(),
    });

    // What this project's builds use: its wasm-bindgen, the pinned Binaryen and esbuild.
    let keep = |tool: &str, version: &str| {
        (tool == "wasm-bindgen" && version == wanted.to_string())
            || (tool == "binaryen" && version == crate::opt::BINARYEN_VERSION)
            || (tool == "esbuild" && version == crate::minify::ESBUILD_VERSION)
    };
    let mut removed = Vec::new();
    if args.clean {
        for (tool, version, path) in toolcache::list() {
            if !keep(&tool, &version) {
                crate::fs::remove_dir_all_if_exists(&path)?;
                removed.push(format!("{tool} {version}"));
            }
        }
    }

    if args.message_format == MessageFormat::Json {
        let cache: Vec<_> = toolcache::list()
            .into_iter()
            .map(|(t, v, p)| serde_json::json!({"tool": t, "version": v, "path": p}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"tools": rows, "cache": {"root": toolcache::root(), "entries": cache}, "compile_cache": {"storage": compile_cache.storage}, "removed": removed, "warnings": node_advice.iter().collect::<Vec<_>>()})
        );
        return Ok(0);
    }
    println!("{:<22} {:<20} {:<12} FROM", "TOOL", "NEEDED", "INSTALLED");
    for r in &rows {
        println!(
            "{:<22} {:<20} {:<12} {}{}",
            r.tool,
            r.needed,
            r.installed.as_deref().unwrap_or("-"),
            r.origin,
            r.path
                .as_ref()
                .map(|p| format!(" ({})", p.display()))
                .unwrap_or_default()
        );
    }
    println!("\ncompile cache: {}", compile_cache.storage);
    println!("\ntool cache: {}", toolcache::root().display());
    for (tool, version, _) in toolcache::list() {
        let used = if keep(&tool, &version) {
            "used by this project"
        } else {
            "not used by this project"
        };
        println!("  {tool} {version} ({used})");
    }
    for r in &removed {
        shell.status("Removed", r);
    }
    if let Some(advice) = &node_advice {
        shell.warn(advice);
    }
    Ok(0)
}

/// The row of a tool installed from npm into the tool cache on demand, unless `env` names one.
fn cached_npm_tool(
    tool: &str,
    needed: String,
    env: crate::compat::ToolVar,
    package: &str,
    version: &str,
) -> ToolRow {
    let dir = toolcache::dir(package, version);
    let (installed, origin, path) = if let Some(found) = env.lookup(|k| std::env::var_os(k)) {
        (None, found.var.to_string(), Some(found.path))
    } else if dir.is_dir() {
        (
            Some(version.to_string()),
            "tool cache".to_string(),
            Some(dir),
        )
    } else {
        (
            None,
            "installed by the first release build".to_string(),
            None,
        )
    };
    ToolRow {
        tool: tool.into(),
        needed,
        installed,
        origin,
        path,
    }
}
