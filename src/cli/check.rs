//! `cfmint check`: everything `serve` checks at start-up, without binding a
//! port or (unless `--network`) calling anything. Exit codes as `cloudfront
//! check`: 0 valid, 1 problems found, 2 could not check.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, Outcome};
use crate::app::{Application, Reach};
use crate::config::Settings;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The configuration file `serve` would run with.
    #[arg(long, short, env = "CFMINT_CONFIG", value_name = "FILE")]
    config: PathBuf,
    /// Also call each network dependency once (the key ring's secret, key
    /// stores, Redis, the JWKS URL, the OpenID issuer, the authorization
    /// callback), within its configured timeout.
    #[arg(long)]
    network: bool,
}

pub fn run(args: CheckArgs) -> Result<Outcome, CliError> {
    let name = args.config.display().to_string();
    let text =
        std::fs::read_to_string(&args.config).map_err(|e| format!("cannot read {name}: {e}"))?;
    let settings = match Settings::load(&text, std::env::vars()) {
        Ok(settings) => settings,
        Err(error) => {
            super::print(&format!("{name}: {error}\n"));
            return Ok(Outcome::Denied);
        }
    };
    let reach = if args.network {
        Reach::Network
    } else {
        Reach::Offline
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let checked = runtime.block_on(Application::check(settings, reach));
    let mut report = String::new();
    if checked.problems.is_empty() {
        report.push_str(&format!("{name}: valid\n"));
    } else {
        let count = checked.problems.len();
        let plural = if count == 1 { "" } else { "s" };
        report.push_str(&format!(
            "{name}: cannot start ({count} problem{plural}):\n"
        ));
        for problem in &checked.problems {
            report.push_str(&format!("  {problem}\n"));
        }
    }
    if !checked.reached.is_empty() {
        report.push_str(&format!("called: {}\n", checked.reached.join(", ")));
    }
    if !checked.not_reached.is_empty() {
        report.push_str(&format!(
            "not reached (add --network): {}\n",
            checked.not_reached.join(", ")
        ));
    }
    super::print(&report);
    Ok(if checked.problems.is_empty() {
        Outcome::Success
    } else {
        Outcome::Denied
    })
}
