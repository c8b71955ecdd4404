//! `cfmint verify`: explains why CloudFront would allow or deny a request.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::{CliError, Outcome, now, print, printable, rfc3339};
use crate::signer::{
    self, CredentialSource, KeyPairId, PublicKey, PublicKeys, Verdict, ViewerRequest,
};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A key of the key group as ID=FILE (public PEM, or a private key); repeatable, up to 5.
    #[arg(long = "public-key", value_name = "ID=FILE", required = true, value_parser = parse_key_arg)]
    public_keys: Vec<(KeyPairId, PathBuf)>,
    /// The request URL; a signed URL's parameters are read from it.
    #[arg(long)]
    url: String,
    /// The Cookie header, e.g. 'CloudFront-Policy=...; CloudFront-Signature=...'; repeatable.
    #[arg(long, value_name = "COOKIES")]
    cookie: Vec<String>,
    /// The viewer's IP address, for policies with an IP range.
    #[arg(long, value_name = "ADDR")]
    ip: Option<IpAddr>,
    /// Evaluate at this time (epoch seconds) instead of now.
    #[arg(long, value_name = "EPOCH")]
    now: Option<u64>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    backend: super::BackendArg,
}

fn parse_key_arg(text: &str) -> Result<(KeyPairId, PathBuf), String> {
    let (id, path) = text
        .split_once('=')
        .ok_or_else(|| format!("\"{text}\" is not ID=FILE"))?;
    let id = KeyPairId::new(id).map_err(|e| e.to_string())?;
    Ok((id, PathBuf::from(path)))
}

pub fn run(args: VerifyArgs) -> Result<Outcome, CliError> {
    let backend = args.backend.backend;
    let keys = args
        .public_keys
        .into_iter()
        .map(|(id, path)| PublicKey::from_file(id, &path, backend))
        .collect::<Result<Vec<_>, _>>()?;
    let keys = PublicKeys::new(keys)?;
    let cookie_header = (!args.cookie.is_empty()).then(|| args.cookie.join("; "));
    let request = ViewerRequest {
        url: &args.url,
        cookie_header: cookie_header.as_deref(),
        client_ip: args.ip,
        now: args.now.unwrap_or_else(now),
    };
    let verdict = signer::verify(&keys, &request);
    print(&if args.json {
        format!("{}\n", as_json(&verdict, request.now))
    } else {
        as_text(&verdict)
    });
    Ok(if verdict.is_allowed() {
        Outcome::Success
    } else {
        Outcome::Denied
    })
}

fn source_name(source: CredentialSource) -> &'static str {
    match source {
        CredentialSource::SignedUrl => "signed URL",
        CredentialSource::Cookies => "cookies",
    }
}

fn policy_type(custom: Option<bool>) -> Option<&'static str> {
    custom.map(|custom| if custom { "custom" } else { "canned" })
}

fn as_text(verdict: &Verdict) -> String {
    let seen = &verdict.inspection;
    let mut lines = Vec::new();
    if let Some(source) = seen.source {
        lines.push(format!("source:      {}", source_name(source)));
    }
    if let Some(id) = &seen.key_pair_id {
        let algorithm = seen
            .key_algorithm
            .map(|a| format!(" ({a})"))
            .unwrap_or_default();
        lines.push(format!("key pair id: {}{algorithm}", printable(id)));
        lines.push(format!("hash:        {}", seen.hash.cloudfront_name()));
    }
    if let Some(kind) = policy_type(seen.custom_policy) {
        lines.push(format!("policy:      {kind}"));
    }
    if let Some(json) = &seen.policy_json {
        lines.push(format!("policy json: {}", printable(json)));
    }
    if let Some(policy) = &seen.policy {
        lines.push(format!("resource:    {}", printable(&policy.resource)));
        lines.push(format!(
            "expires:     {} ({})",
            policy.expires,
            rfc3339(policy.expires)
        ));
        if let Some(active) = policy.active {
            lines.push(format!("active:      {active} ({})", rfc3339(active)));
        }
        if let Some(range) = policy.source_ip {
            lines.push(format!("ip range:    {range}"));
        }
    }
    lines.push(match &verdict.result {
        Ok(()) => "ALLOW".to_owned(),
        Err(denial) => format!("DENY: {denial}"),
    });
    lines.join("\n") + "\n"
}

fn as_json(verdict: &Verdict, now: u64) -> serde_json::Value {
    let seen = &verdict.inspection;
    let policy = seen.policy.as_ref().map(|p| {
        json!({
            "resource": p.resource,
            "expires": p.expires,
            "active": p.active,
            "ip_range": p.source_ip.map(|r| r.to_string()),
        })
    });
    json!({
        "decision": if verdict.is_allowed() { "ALLOW" } else { "DENY" },
        "reason": verdict.result.as_ref().err().map(ToString::to_string),
        "denial": verdict.result.as_ref().err().map(|d| d.kind().as_str()),
        "cloudfront_code": verdict.result.as_ref().err().map(|d| d.cloudfront_code()),
        "source": seen.source.map(source_name),
        "key_pair_id": seen.key_pair_id,
        "key_algorithm": seen.key_algorithm.map(|a| a.to_string()),
        "hash": seen.hash.cloudfront_name(),
        "policy_type": policy_type(seen.custom_policy),
        "policy_json": seen.policy_json,
        "policy": policy,
        "now": now,
    })
}
