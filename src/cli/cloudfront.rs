//! `cfmint cloudfront check`: the distribution read against the
//! configuration `serve` runs with (`crate::distribution`). Exit 0 clean,
//! 1 problems found, 2 could not check.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::{CliError, Outcome, parse_duration, print, printable};
use crate::distribution::check::{self, Deployment, Report};
use crate::distribution::model::Snapshot;

#[derive(Debug, Subcommand)]
pub enum CloudFrontCommand {
    /// Find what in a distribution will answer viewers 403 or leave content open.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The configuration `cfmint serve` runs with (grants, keys, cookies,
    /// CORS, IP binding, origin lock); its environment variables apply.
    #[arg(long, env = "CFMINT_CONFIG", value_name = "FILE")]
    config: PathBuf,
    /// Read the distribution through the CloudFront API (credentials from
    /// the standard AWS environment and profile).
    #[arg(
        long,
        value_name = "ID",
        required_unless_present = "saved",
        conflicts_with = "saved"
    )]
    distribution_id: Option<String>,
    /// Read documents saved with the AWS CLI instead (aws cloudfront
    /// get-distribution, get-key-group, get-public-key, get-cache-policy,
    /// get-origin-request-policy, get-response-headers-policy); repeat.
    #[arg(long, value_name = "FILE")]
    saved: Vec<PathBuf>,
    /// Where viewers reach cfmint, when it is not found through the
    /// distribution's origin-lock header (https://auth.example.com).
    #[arg(long, value_name = "URL")]
    cfmint_url: Option<String>,
    /// Print the findings as JSON.
    #[arg(long)]
    json: bool,
    /// How long one AWS call (or a key store) may take.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
}

pub fn run(command: CloudFrontCommand) -> Result<Outcome, CliError> {
    let CloudFrontCommand::Check(args) = command;
    let cfmint_host = match &args.cfmint_url {
        Some(url) => Some(
            url::Url::parse(url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .ok_or_else(|| {
                    format!("--cfmint-url: \"{url}\" is not a URL like https://auth.example.com")
                })?,
        ),
        None => None,
    };
    let settings = crate::config::Settings::load_file(&args.config)
        .map_err(|e| format!("{}: {e}", args.config.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let snapshot = match &args.distribution_id {
        Some(id) => runtime.block_on(from_api(id, args.timeout))?,
        None => {
            let mut files = Vec::new();
            for path in &args.saved {
                let text =
                    std::fs::read(path).map_err(|e| format!("--saved {}: {e}", path.display()))?;
                files.push((path.display().to_string(), text));
            }
            crate::distribution::saved::snapshot(&files)?
        }
    };
    let (keys, active) =
        runtime.block_on(crate::distribution::cfmint_keys(&settings, args.timeout))?;
    let deployment = Deployment {
        settings: &settings,
        keys,
        active,
        cfmint_host,
    };
    let report = check::check(&snapshot, &deployment).map_err(|e| e.0)?;
    if args.json {
        let json = serde_json::json!({
            "distribution": snapshot.id,
            "domain_name": snapshot.domain_name,
            "findings": report.findings,
            "notes": report.notes,
        });
        print(&format!("{json:#}\n"));
    } else {
        print(&human(&snapshot, &args, &report));
    }
    Ok(if report.findings.is_empty() {
        Outcome::Success
    } else {
        Outcome::Denied
    })
}

fn human(snapshot: &Snapshot, args: &CheckArgs, report: &Report) -> String {
    let mut out = format!(
        "distribution {}{}, against {}\n",
        snapshot
            .id
            .as_deref()
            .unwrap_or("(from its saved configuration)"),
        snapshot
            .domain_name
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default(),
        args.config.display()
    );
    for finding in &report.findings {
        out.push_str(&format!(
            "\nproblem [{}] {}\n  {}\n  consequence: {}\n  fix: {}\n",
            finding.code, finding.place, finding.problem, finding.consequence, finding.fix
        ));
    }
    for note in &report.notes {
        out.push_str(&format!("\nnote: {note}\n"));
    }
    out.push_str(&match report.findings.len() {
        0 => "\nno problem found\n".to_owned(),
        1 => "\n1 problem found\n".to_owned(),
        n => format!("\n{n} problems found\n"),
    });
    printable_lines(&out)
}

/// Text from the distribution shown safely: control characters escaped,
/// line breaks kept.
fn printable_lines(text: &str) -> String {
    text.split('\n')
        .map(printable)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(feature = "aws-cloudfront")]
async fn from_api(id: &str, timeout: Duration) -> Result<Snapshot, CliError> {
    Ok(crate::distribution::fetch::snapshot(id, timeout).await?)
}

#[cfg(not(feature = "aws-cloudfront"))]
async fn from_api(_: &str, _: Duration) -> Result<Snapshot, CliError> {
    Err(
        "--distribution-id: this build of cfmint has no CloudFront API support (built \
         without the `aws-cloudfront` cargo feature); save the documents with the AWS CLI \
         and pass them with --saved (docs/deploy.md)"
            .to_owned()
            .into(),
    )
}
