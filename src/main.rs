use std::process::ExitCode;

use anyhow::Result;
use cargo_worker_build::cli::{BuildArgs, CheckArgs, Cli, Command, MessageFormat};
use cargo_worker_build::errors::{exit_code_of, Problem};
use cargo_worker_build::pipeline::{self, Events};
use cargo_worker_build::term::{Shell, Verbosity};
use cargo_worker_build::{check, plan, scaffold, tools, workspace};

fn main() -> ExitCode {
    // cargo runs us as the rustc wrapper of a build that uses the compile cache.
    if let Some(code) = cargo_worker_build::cache::relay_if_asked() {
        return ExitCode::from(code as u8);
    }
    cargo_worker_build::interrupt::install();
    let cli = Cli::from_env();
    let build = &cli.build;
    let verbosity = match (build.quiet, build.verbose) {
        (true, _) => Verbosity::Quiet,
        (false, 0) => Verbosity::Normal,
        (false, _) => Verbosity::Verbose,
    };
    let color = match &cli.command {
        Some(Command::Check(a)) => a.color,
        _ => build.color,
    };
    let shell = Shell::new(color, verbosity);
    let result = match &cli.command {
        None => run_build(build, &shell),
        Some(Command::New(args)) => scaffold::new_project(args).map(|()| 0),
        Some(Command::Init(args)) => scaffold::init_project(args).map(|()| 0),
        Some(Command::Check(args)) => run_check(args, &shell),
        Some(Command::Tools(args)) => tools::run(args, &shell),
        Some(Command::Symbolize(args)) => cargo_worker_build::symbolize::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            cargo_worker_build::interrupt::exit_if_interrupted();
            let problem = err.downcast_ref::<Problem>();
            match problem {
                Some(p) => shell.error_with_code(p.code.as_str(), format!("{err:#}")),
                None => shell.error(format!("{err:#}")),
            }
            if let Some(detail) = problem.and_then(|p| p.detail.as_deref()) {
                for line in detail.lines() {
                    eprintln!("  {line}");
                }
            }
            if cli.command.is_none() && build.message_format == MessageFormat::Json {
                // Scripts reading `--message-format json` see how the build ended either way.
                cargo_worker_build::term::out_line(pipeline::failure_record(&err));
            }
            ExitCode::from(exit_code_of(&err) as u8)
        }
    }
}

/// Plan, then carry the plan out and print the summary, then check the bundle when
/// `--check-eh` asks for it.
fn run_build(args: &BuildArgs, shell: &Shell) -> Result<i32> {
    let events = Events::new(args.message_format);
    let started = std::time::Instant::now();
    let plan = plan::from_env(args, shell.color_arg())?;
    let summary = pipeline::execute(&plan, args.dry_run, started, shell, &events)?;
    if args.message_format == MessageFormat::Json {
        cargo_worker_build::term::out_line(serde_json::to_string(&summary)?);
    }
    let Some(expect) = plan.check.as_ref().filter(|_| !args.dry_run) else {
        return Ok(0);
    };
    let opts = check::CheckOptions {
        expect: Some(expect.expect),
        eh: expect.eh,
        runtime: expect.runtime,
    };
    shell.status(
        "Checking",
        format!(
            "{} ({} expected, {})",
            summary.out_dir.display(),
            expect.expect.as_str(),
            expect.runtime.as_str()
        ),
    );
    Ok(check::run(
        std::slice::from_ref(&plan.out_dir),
        &opts,
        args.message_format,
        shell.color(),
    ))
}

/// `cargo worker-build check [PATH...]`: the package's bundle when no path is given.
fn run_check(args: &CheckArgs, shell: &Shell) -> Result<i32> {
    let paths = if args.paths.is_empty() {
        let cwd = std::env::current_dir()?;
        let manifest = workspace::locate_manifest(args.manifest_path.as_deref(), &cwd)?;
        vec![manifest.parent().unwrap_or(&cwd).join("build")]
    } else {
        args.paths.clone()
    };
    let opts = check::CheckOptions {
        expect: args.expect,
        eh: args.eh,
        runtime: args.runtime,
    };
    Ok(check::run(
        &paths,
        &opts,
        args.message_format,
        shell.color(),
    ))
}
