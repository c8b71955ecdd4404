//! `cfmint sessions revoke`: ends every session of a subject through a
//! running service's admin listener (every replica sharing its store).

use std::time::Duration;

use clap::{Args, Subcommand};

use super::{CliError, Outcome};

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// End every session of one subject; prints how many there were.
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The subject: a username or a token's `sub`.
    #[arg(long)]
    sub: String,
    /// The service's admin listener (`server.admin_listen`).
    #[arg(
        long,
        env = "CFMINT_ADMIN_URL",
        default_value = "http://127.0.0.1:9090"
    )]
    admin_url: String,
    /// The environment variable holding `server.admin_token`, if one is set:
    /// by default the one `serve` reads it from.
    #[arg(long, default_value = "CFMINT__SERVER__ADMIN_TOKEN")]
    token_env: String,
}

pub fn run(command: SessionsCommand) -> Result<Outcome, CliError> {
    let SessionsCommand::Revoke(args) = command;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let url = format!(
        "{}/admin/sessions/revoke",
        args.admin_url.trim_end_matches('/')
    );
    let mut request = client
        .post(&url)
        .json(&serde_json::json!({ "sub": args.sub }));
    if let Ok(token) = std::env::var(&args.token_env) {
        request = request.bearer_auth(token);
    }
    let (status, body) = runtime
        .block_on(async {
            let response = request.send().await?;
            let status = response.status();
            Ok::<_, reqwest::Error>((status, response.text().await?))
        })
        .map_err(|e| format!("{url}: {e}"))?;
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    if !status.is_success() {
        let message = answer["message"].as_str().unwrap_or(&body);
        return Err(format!("{url} answered {status}: {}", super::printable(message)).into());
    }
    let revoked = answer["revoked"].as_u64().unwrap_or(0);
    super::print(&format!(
        "revoked {revoked} session(s) of {}\n",
        super::printable(&args.sub)
    ));
    Ok(Outcome::Success)
}
