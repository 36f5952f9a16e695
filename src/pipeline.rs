//! The build, top to bottom, once [`crate::plan`] has decided everything: toolchain -> tools ->
//! cargo -> wasm-bindgen -> optimise -> bundle (entry and recovery runtime) -> check. Each stage
//! is its own module; this one only sequences them, reports progress and skips the steps after
//! cargo when their inputs (the plan and cargo's module) have not changed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::bundle::{self, Manifest, Sizes};
use crate::cli::MessageFormat;
use crate::plan::Plan;
use crate::term::{human_size, Shell};
use crate::{bindgen, cargo, toolchain};

/// What a finished build reports (`--message-format json` prints it as the last line).
#[derive(Debug, serde::Serialize)]
pub struct Summary {
    pub reason: &'static str,
    pub success: bool,
    pub package: String,
    pub out_dir: PathBuf,
    pub entry: PathBuf,
    pub fresh: bool,
    pub mode: String,
    pub eh: Option<String>,
    pub profile: String,
    pub toolchain: String,
    pub wasm_bindgen: String,
    pub wasm_bindgen_path: PathBuf,
    pub files: Vec<String>,
    pub sizes: Sizes,
    pub durations_ms: Durations,
    /// This build's compile-cache hits, misses and non-cacheable calls.
    pub cache: crate::cache::Report,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct Durations {
    pub plan: u128,
    pub toolchain: u128,
    pub tools: u128,
    pub cargo: u128,
    pub bundle: u128,
    pub total: u128,
}

/// One JSON object per step on stdout with `--message-format json`.
pub struct Events {
    json: bool,
}

impl Events {
    pub fn new(format: MessageFormat) -> Self {
        Events {
            json: format == MessageFormat::Json,
        }
    }

    pub fn emit(&self, value: serde_json::Value) {
        if self.json {
            crate::term::out_line(value);
        }
    }
}

/// Carry out `plan` (planned from `started` on): print it, then, unless `dry_run`, every stage in
/// turn, each taking the previous one's output. Returns the summary of a bundle that is complete
/// on disk.
pub fn execute(
    plan: &Plan,
    dry_run: bool,
    started: Instant,
    shell: &Shell,
    events: &Events,
) -> Result<Summary> {
    let start = started;
    let mut durations = Durations {
        plan: start.elapsed().as_millis(),
        ..Durations::default()
    };
    for note in &plan.notes {
        shell.note(note);
    }
    print_plan(plan, shell, events);
    plan.cache.print_message(shell);
    for tool in plan.tools.all() {
        tool.print_messages(shell);
    }
    // A tool the build cannot go without fails it before any work (a dry run too: it shows
    // the plan first).
    if let Some(err) = plan.tools.fatal() {
        return Err(err);
    }
    // An output the swap would refuse is refused before minutes of compiling (and checked
    // again when the bundle is swapped in).
    bundle::check_out_dir(&plan.out_dir)?;
    if dry_run {
        return Ok(dry_run_summary(plan));
    }

    let step = Instant::now();
    toolchain::ensure(
        &plan.toolchain,
        crate::plan::toolchain_needs(plan.mode),
        plan.offline,
        shell,
    )?;
    durations.toolchain = step.elapsed().as_millis();

    let cache = crate::cache::Session::begin(&plan.cache, &plan.package.target_dir)?;
    let step = Instant::now();
    let bindgen = crate::locate::ensure(&plan.tools.wasm_bindgen, cache.as_ref(), shell)?
        .expect("wasm-bindgen is always used, and fatal when unavailable");
    durations.tools = step.elapsed().as_millis();

    let step = Instant::now();
    shell.verbose("Running", &plan.cargo);
    // Builds of the same crate name share one output file in a target directory; holding this
    // lock until the module is read keeps another run from replacing it in between.
    let target_lock = bundle::lock_target(&plan.package.target_dir)?;
    let cargo_cmd = match &cache {
        Some(session) => session.wrap(plan.cargo.clone()),
        None => plan.cargo.clone(),
    };
    crate::interrupt::pause_for_tests("cargo");
    let (artifact, wasm_bytes) =
        cargo::build_own(&cargo_cmd, &plan.package.name, &plan.package.manifest_path)?;
    drop(target_lock);
    durations.cargo = step.elapsed().as_millis();
    let cache_report = match cache {
        Some(session) => session.finish(shell),
        None => crate::cache::Report::off(&plan.cache),
    };
    events.emit(serde_json::json!({"reason": "cargo-artifact", "wasm": artifact.wasm, "fresh": artifact.fresh}));
    events.emit(serde_json::json!({"reason": "tool", "name": "wasm-bindgen", "version": bindgen.version, "path": bindgen.program, "origin": bindgen.origin_kind()}));

    let step = Instant::now();
    let key = bundle::input_key(plan, &wasm_bytes);
    let (manifest, fresh) = match bundle::is_fresh(&plan.out_dir, &key) {
        Some(manifest) => {
            check_budget(plan, &manifest.sizes, &wasm_bytes, &artifact.wasm)?;
            (manifest, true)
        }
        None => (
            write_bundle(plan, &wasm_bytes, &artifact.wasm, &bindgen, &key, shell)?,
            false,
        ),
    };
    durations.bundle = step.elapsed().as_millis();
    let sizes = manifest.sizes;
    events.emit(serde_json::json!({"reason": "bundle", "out_dir": plan.out_dir, "fresh": fresh, "files": manifest.files, "exports": manifest.exports}));

    durations.total = start.elapsed().as_millis();
    let summary = Summary {
        reason: "build-finished",
        success: true,
        package: plan.package.name.clone(),
        entry: plan.out_dir.join(bundle::ENTRY),
        out_dir: plan.out_dir.clone(),
        fresh,
        mode: manifest.mode.clone(),
        eh: manifest.eh.clone(),
        profile: plan.profile.clone(),
        toolchain: plan.toolchain.name.clone(),
        wasm_bindgen: bindgen.version.clone(),
        wasm_bindgen_path: bindgen.program.clone(),
        files: manifest.files.clone(),
        sizes,
        durations_ms: durations,
        cache: cache_report,
    };
    let what = match &summary.eh {
        Some(eh) => format!("{} [unwind, {eh}]", summary.profile),
        None => format!("{} [abort]", summary.profile),
    };
    shell.status(
        "Size",
        format!(
            "{} {} (gzip {}), bundle {} (gzip {}): {}",
            bundle::WASM,
            human_size(sizes.wasm),
            human_size(sizes.wasm_gzip),
            human_size(sizes.total),
            human_size(sizes.total_gzip),
            crate::size::share_of_limits(sizes.total_gzip)
        ),
    );
    shell.status(
        "Finished",
        format!(
            "{what} bundle in {} in {}{}",
            display_relative(&plan.out_dir),
            seconds(start.elapsed()),
            summary
                .cache
                .summary()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default()
        ),
    );
    Ok(summary)
}

fn write_bundle(
    plan: &Plan,
    wasm: &[u8],
    built: &Path,
    bindgen: &crate::locate::Ready,
    key: &str,
    shell: &Shell,
) -> Result<Manifest> {
    let _lock = bundle::lock_output(&plan.out_dir)?;
    // Every bundle is written by esbuild: without it, fail before any work.
    let esbuild = crate::locate::ensure(&plan.tools.esbuild, None, shell)?
        .map(crate::locate::Ready::into_esbuild)
        .expect("esbuild is always used, and fatal when unavailable");
    let staging = bundle::Staging::create(&plan.out_dir)?;
    shell.status(
        "Generating",
        format!("bindings with wasm-bindgen {}", bindgen.version),
    );
    // wasm-bindgen reads the module as it was when cargo finished, from the staging directory.
    let input = staging.dir.join(".cargo-output.wasm");
    crate::fs::write(&input, wasm)?;
    crate::interrupt::pause_for_tests("wasm-bindgen");
    bindgen::run(
        &bindgen.program,
        &plan.bindgen_args,
        &input,
        built,
        &staging.dir,
    )?;
    crate::fs::remove_file(&input)?;
    // Minified bundles import short names; renamed before wasm-opt and the symbol map read
    // the module, so both see the bytes that ship.
    let renames = if plan.minify.enabled {
        crate::imports::shorten(
            &staging.dir.join(bundle::WASM),
            &staging.dir,
            bundle::ENTRY,
            &esbuild,
        )?
    } else {
        crate::imports::Renames::new()
    };
    let mut complete = true;
    // wasm-opt drops the name section unless told to keep it: it is kept for the symbol map
    // only, and removed from the module once the map is written. The crate's DWARF becomes a
    // source map wasm-opt carries through, and leaves the module before it.
    let mut names_added = false;
    let mut lines = None;
    let module = staging.dir.join(bundle::WASM);
    if let Some(args) = &plan.opt.args {
        let (args, added) = crate::symbols::opt_args_keeping_names(args);
        names_added = added;
        let mapped = crate::symbols::lines::prepare(
            &module,
            &staging.dir,
            &plan.package.name.replace('-', "_"),
        )?;
        complete &= optimise(plan, &args, &module, mapped.as_ref(), shell)?;
        if let Some(mapped) = mapped {
            lines = mapped.read_back()?;
        }
    }
    crate::symbols::write(&staging.dir, &module, names_added, lines)?;
    shell.status(
        "Bundling",
        format!(
            "{} entry, recovery runtime and glue into {} with esbuild ({}{})",
            if plan.library { "library" } else { "Worker" },
            bundle::ENTRY,
            esbuild.origin,
            if plan.minify.enabled {
                ", minified"
            } else {
                ""
            }
        ),
    );
    crate::interrupt::pause_for_tests("esbuild");
    let assembled = bundle::assemble(&staging.dir, plan, &esbuild, &renames)?;
    // A bundle that went without a step it was meant to have (no wasm-opt here) is
    // never taken as up to date: the next build tries again.
    let key = if complete {
        key.to_string()
    } else {
        format!("{key}+incomplete")
    };
    let manifest = bundle::write_manifest(&staging.dir, plan, assembled, &bindgen.version, &key)?;
    check_budget(plan, &manifest.sizes, wasm, built)?;
    staging.commit(&plan.out_dir)?;
    Ok(manifest)
}

/// Fail when the bundle's gzip size is over the budget, naming what makes it big (from the
/// module cargo built, whose name section is still there).
fn check_budget(plan: &Plan, sizes: &Sizes, wasm: &[u8], built_wasm: &Path) -> Result<()> {
    let Some((limit, origin)) = &plan.max_size else {
        return Ok(());
    };
    if sizes.total_gzip <= *limit {
        return Ok(());
    }
    let top = crate::size::contributors(wasm, 10);
    let mut detail = format!(
        "biggest contributors in {} (before wasm-opt):",
        built_wasm.display()
    );
    for (name, bytes) in &top {
        detail.push_str(&format!("\n  {:>10}  {name}", human_size(*bytes)));
    }
    Err(crate::errors::Problem::new(
        crate::errors::Code::OverMaxSize,
        format!("the bundle is {} gzip, over the budget of {} set by {origin}", human_size(sizes.total_gzip), human_size(*limit)),
        "shrink it (its biggest parts are listed below) or raise the budget; the previous bundle is kept",
    )
    .with_detail(detail)
    .into())
}

/// Run wasm-opt on the staged module, and say whether it ran. Without a usable wasm-opt the
/// plan says so (fatal only when optimisation was asked for explicitly, which planning
/// already refused); the bundle then stays unoptimised with a warning.
fn optimise(
    plan: &Plan,
    args: &[String],
    wasm: &Path,
    mapped: Option<&crate::symbols::lines::Prepared>,
    shell: &Shell,
) -> Result<bool> {
    let Some(ready) = crate::locate::ensure(&plan.tools.wasm_opt, None, shell)? else {
        return Ok(false);
    };
    let wasm_opt = ready.into_wasm_opt();
    crate::interrupt::pause_for_tests("wasm-opt");
    let _spinner = shell.spinner(
        "Optimizing",
        format!(
            "with wasm-opt {} {} ({})",
            wasm_opt.version,
            args.join(" "),
            wasm_opt.origin
        ),
    );
    let maps = mapped.map(|m| crate::opt::SourceMaps {
        input: &m.input,
        output: &m.output,
    });
    crate::opt::run(&wasm_opt, args, wasm, maps).map(|()| true)
}

fn print_plan(plan: &Plan, shell: &Shell, events: &Events) {
    events.emit(serde_json::json!({"reason": "plan", "plan": plan}));
    shell.verbose(
        "Plan",
        format!(
            "package {} {} ({})",
            plan.package.name,
            plan.package.version,
            plan.package.manifest_path.display()
        ),
    );
    shell.verbose(
        "Plan",
        format!(
            "toolchain {} ({:?})",
            plan.toolchain.name, plan.toolchain.source
        ),
    );
    shell.verbose(
        "Plan",
        format!(
            "mode {}{}, profile {}",
            plan.mode.as_str(),
            plan.mode
                .eh()
                .map(|eh| format!(" ({})", eh.as_str()))
                .unwrap_or_default(),
            plan.profile
        ),
    );
    shell.verbose("Plan", format!("rustflags {:?}", plan.rustflags));
    shell.verbose("Plan", format!("cargo: {}", plan.cargo));
    shell.verbose(
        "Plan",
        format!(
            "wasm-bindgen {} {}",
            plan.package.wasm_bindgen,
            plan.bindgen_args.join(" ")
        ),
    );
    shell.verbose(
        "Plan",
        format!(
            "wasm-opt {} ({})",
            plan.opt
                .args
                .as_ref()
                .map_or("off".to_string(), |a| a.join(" ")),
            plan.opt.source
        ),
    );
    shell.verbose(
        "Plan",
        format!(
            "minify {} ({})",
            if plan.minify.enabled { "on" } else { "off" },
            plan.minify.source
        ),
    );
    shell.verbose(
        "Plan",
        format!(
            "fault log {} ({})",
            plan.log.format.as_str(),
            plan.log.source
        ),
    );
    shell.verbose("Plan", format!("output {}", plan.out_dir.display()));
    for tool in plan.tools.all() {
        shell.verbose("Plan", format!("tool {}", tool.describe()));
    }
}

fn dry_run_summary(plan: &Plan) -> Summary {
    Summary {
        reason: "dry-run",
        success: true,
        package: plan.package.name.clone(),
        out_dir: plan.out_dir.clone(),
        entry: plan.out_dir.join(bundle::ENTRY),
        fresh: false,
        mode: plan.mode.as_str().into(),
        eh: plan.mode.eh().map(|e| e.as_str().into()),
        profile: plan.profile.clone(),
        toolchain: plan.toolchain.name.clone(),
        wasm_bindgen: plan.package.wasm_bindgen.to_string(),
        wasm_bindgen_path: PathBuf::new(),
        files: Vec::new(),
        sizes: Sizes {
            wasm: 0,
            wasm_gzip: 0,
            total: 0,
            total_gzip: 0,
        },
        durations_ms: Durations::default(),
        cache: crate::cache::Report::off(&plan.cache),
    }
}

/// The last `--message-format json` line of a build that failed: `success: false`, the stable
/// error code (null for an error without one), the message, and the exit code.
pub fn failure_record(err: &anyhow::Error) -> serde_json::Value {
    let problem = err.downcast_ref::<crate::errors::Problem>();
    serde_json::json!({
        "reason": "build-finished",
        "success": false,
        "code": problem.map(|p| p.code.as_str()),
        "message": format!("{err:#}"),
        "detail": problem.and_then(|p| p.detail.clone()),
        "exit_code": crate::errors::exit_code_of(err),
    })
}

fn seconds(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

/// A path relative to the current directory when it is below it, like cargo prints them.
fn display_relative(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(|p| p.display().to_string()))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| path.display().to_string())
}
