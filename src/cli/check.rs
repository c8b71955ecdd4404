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
    let mut report = match &checked.problems {
        None => format!("{name}: valid\n"),
        Some(problems) => format!("{name}: {problems}\n"),
    };
    if !checked.dependencies.is_empty() {
        let label = if args.network {
            "called"
        } else {
            "not reached (add --network)"
        };
        report.push_str(&format!("{label}: {}\n", checked.dependencies.join(", ")));
    }
    super::print(&report);
    Ok(match checked.problems {
        None => Outcome::Success,
        Some(_) => Outcome::Denied,
    })
}
