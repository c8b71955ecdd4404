//! `cfmint healthcheck`: GET /healthz, exit 0 on 200 and 1 otherwise. For a
//! container's HEALTHCHECK, so the image needs no curl.

use std::time::Duration;

use clap::Args;

use super::{CliError, Outcome};

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// What to ask.
    #[arg(long, default_value = "http://127.0.0.1:8080/healthz")]
    url: String,
    /// Give up after this long.
    #[arg(long, default_value = "3s", value_parser = super::parse_duration)]
    timeout: Duration,
    /// Accept a self-signed certificate (for https:// on loopback).
    #[arg(long)]
    insecure: bool,
}

pub fn run(args: HealthcheckArgs) -> Result<Outcome, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let client = reqwest::Client::builder()
        .timeout(args.timeout)
        .danger_accept_invalid_certs(args.insecure)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let answer = runtime.block_on(async { client.get(&args.url).send().await });
    match answer {
        Ok(response) if response.status().is_success() => Ok(Outcome::Success),
        Ok(response) => {
            eprintln!("unhealthy: {} answered {}", args.url, response.status());
            Ok(Outcome::Denied)
        }
        Err(e) => {
            eprintln!("unhealthy: {}: {e}", args.url);
            Ok(Outcome::Denied)
        }
    }
}
