fn main() {
    let _cli = cargo_worker_build::cli::Cli::from_env();
}
