use std::process::ExitCode;

fn main() -> ExitCode {
    cfmint::cli::run()
}
