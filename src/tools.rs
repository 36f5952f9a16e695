//! `cargo worker-build tools`: the tools a build of this project uses (the tool section of its
//! plan, so the same binaries a build runs), the toolchains and node, and the tool cache (with
//! `--clean` to remove cached versions the project does not use: only versions the tool
//! installed, from a cache it made, each under its lock). Builds themselves never delete other
//! versions.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Result;

use crate::cli::{MessageFormat, ToolsArgs};
use crate::locate::{Status, Tool};
use crate::process::which;
use crate::term::Shell;
use crate::{toolcache, toolchain, workspace};

/// One row of `cargo worker-build tools`.
#[derive(Debug, serde::Serialize)]
pub struct ToolRow {
    pub tool: String,
    pub needed: String,
    pub installed: Option<String>,
    pub origin: String,
    pub path: Option<PathBuf>,
}

impl ToolRow {
    fn of(label: &str, tool: &Tool) -> ToolRow {
        let (installed, origin, path) = match &tool.status {
            Status::Found {
                path,
                script,
                version,
                origin,
            } => (
                Some(version.clone()),
                origin.clone(),
                Some(script.clone().unwrap_or_else(|| path.clone())),
            ),
            Status::Install {
                path, script, from, ..
            } => (
                None,
                format!("installed by the next build ({from})"),
                Some(script.clone().unwrap_or_else(|| path.clone())),
            ),
            Status::NotUsed { why } => (None, format!("not used: {why}"), None),
            Status::Unavailable { reason, fatal, .. } => (
                None,
                format!(
                    "unavailable{}: {reason}",
                    if *fatal { ", builds fail" } else { "" }
                ),
                None,
            ),
        };
        ToolRow {
            tool: label.into(),
            needed: tool.needed.clone(),
            installed,
            origin,
            path,
        }
    }
}

/// `cargo worker-build tools`: the tool section of the plan of a default build of the package
/// (the same planner, so the same binaries), the toolchains and node, and the tool cache.
pub fn run(args: &ToolsArgs, shell: &Shell) -> Result<i32> {
    let cwd = std::env::current_dir()?;
    let manifest = workspace::locate_manifest(args.manifest_path.as_deref(), &cwd)?;
    let build = crate::cli::Cli::parse_args([
        OsString::from("cargo-worker-build"),
        OsString::from("--manifest-path"),
        manifest.clone().into_os_string(),
    ])
    .build;
    let plan = crate::plan::from_env(&build, "never")?;
    let package = &plan.package;
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
    let tools = &plan.tools;
    rows.push(ToolRow::of("wasm-bindgen", &tools.wasm_bindgen));
    rows.push(ToolRow::of("binaryen (wasm-opt)", &tools.wasm_opt));
    rows.push(ToolRow::of("esbuild (bundles JS)", &tools.esbuild));
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
        crate::scaffold::node::NodeCheck::Unknown { .. } => (None, which("node")),
    };
    rows.push(ToolRow {
        tool: "node".into(),
        needed: node_needed.range.clone(),
        installed,
        origin: format!("PATH, for wrangler {}", node_needed.wrangler),
        path,
    });

    let compile_cache = crate::cache::tools_view(&cwd, &package.metadata);
    rows.push(match &tools.sccache {
        Some(sccache) => ToolRow {
            needed: format!("{} (optional)", crate::cache::SCCACHE_VERSION),
            ..ToolRow::of("sccache (cache)", sccache)
        },
        None => ToolRow {
            tool: "sccache (cache)".into(),
            needed: format!("{} (optional)", crate::cache::SCCACHE_VERSION),
            installed: compile_cache.version.clone(),
            origin: compile_cache.origin.clone(),
            path: compile_cache.path.clone(),
        },
    });

    // What this project's builds use: its wasm-bindgen, the pinned Binaryen and esbuild.
    let wanted = package.wasm_bindgen.to_string();
    let keep = |tool: &str, version: &str| {
        (tool == "wasm-bindgen" && version == wanted)
            || (tool == "binaryen" && version == crate::opt::BINARYEN_VERSION)
            || (tool == "esbuild" && version == crate::minify::ESBUILD_VERSION)
    };
    let (removed, skipped) = if args.clean {
        toolcache::clean(keep)?
    } else {
        (Vec::new(), Vec::new())
    };

    if args.message_format == MessageFormat::Json {
        let cache: Vec<_> = toolcache::list()
            .into_iter()
            .map(|e| serde_json::json!({"tool": e.tool, "version": e.version, "path": e.path, "recorded": e.recorded}))
            .collect();
        crate::term::out_line(
            serde_json::json!({"tools": rows, "plan": tools, "cache": {"root": toolcache::root(), "entries": cache}, "compile_cache": {"storage": compile_cache.storage}, "removed": removed, "skipped": skipped, "warnings": node_advice.iter().collect::<Vec<_>>()}),
        );
        return Ok(0);
    }
    let mut text = format!("{:<22} {:<20} {:<12} FROM\n", "TOOL", "NEEDED", "INSTALLED");
    for r in &rows {
        writeln!(
            text,
            "{:<22} {:<20} {:<12} {}{}",
            r.tool,
            r.needed,
            r.installed.as_deref().unwrap_or("-"),
            r.origin,
            r.path
                .as_ref()
                .map(|p| format!(" ({})", p.display()))
                .unwrap_or_default()
        )
        .unwrap();
    }
    writeln!(text, "\ncompile cache: {}", compile_cache.storage).unwrap();
    writeln!(text, "\ntool cache: {}", toolcache::root().display()).unwrap();
    for e in toolcache::list() {
        let used = if keep(&e.tool, &e.version) {
            "used by this project"
        } else {
            "not used by this project"
        };
        let recorded = if e.recorded {
            ""
        } else {
            "; not installed by this tool, --clean leaves it"
        };
        writeln!(text, "  {} {} ({used}{recorded})", e.tool, e.version).unwrap();
    }
    crate::term::out(&text);
    for r in &removed {
        shell.status("Removed", r);
    }
    for s in &skipped {
        shell.status("Skipped", s);
    }
    if let Some(advice) = &node_advice {
        shell.warn(advice);
    }
    Ok(0)
}
