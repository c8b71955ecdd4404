use std::process::ExitCode;

fn main() -> ExitCode {
    cfmint::cli::init_tracing();
    cfmint::cli::run()
}
