use std::process::ExitCode;

use cargo_worker_build::cli::{Cli, Command, MessageFormat};
use cargo_worker_build::errors::exit_code_of;
use cargo_worker_build::pipeline::{self, Events};
use cargo_worker_build::term::{Shell, Verbosity};

fn main() -> ExitCode {
    let cli = Cli::from_env();
    let build = &cli.build;
    let verbosity = match (build.quiet, build.verbose) {
        (true, _) => Verbosity::Quiet,
        (false, 0) => Verbosity::Normal,
        (false, _) => Verbosity::Verbose,
    };
    let shell = Shell::new(build.color, verbosity);
    let result = match &cli.command {
        None => {
            let events = Events::new(build.message_format);
            pipeline::build(build, &shell, &events).map(|(_, summary)| {
                if build.message_format == MessageFormat::Json {
                    println!("{}", serde_json::to_string(&summary).expect("summary serialises"));
                }
                0
            })
        }
        Some(_) => Err(anyhow::anyhow!("this subcommand is not available yet")),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            shell.error(format!("{err:#}"));
            ExitCode::from(exit_code_of(&err) as u8)
        }
    }
}
