//! `cfmint sign cookies` and `cfmint sign url`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use super::{BackendArg, CliError, Outcome, now, parse_duration, parse_key_pair_id, print};
use crate::signer::{HashAlgorithm, KeyPairId, Policy, PolicyForm, PrivateKey, SignedPolicy};

#[derive(Debug, Subcommand)]
pub enum SignCommand {
    /// Print the cookies for a resource URL or pattern, one Name=value per line.
    Cookies(CookieArgs),
    /// Print a signed URL (canned policy unless a pattern, start time or IP is given).
    Url(UrlArgs),
}

#[derive(Debug, Args)]
pub struct CookieArgs {
    #[command(flatten)]
    key: KeyArgs,
    /// Resource URL, or a pattern with `*` / `?` (which forces a custom policy).
    #[arg(long, value_name = "URL_OR_PATTERN")]
    resource: String,
    #[command(flatten)]
    policy: PolicyArgs,
    /// Print a JSON object of cookie name → value.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct UrlArgs {
    #[command(flatten)]
    key: KeyArgs,
    /// The URL to sign; its own query parameters are kept.
    #[arg(long)]
    url: String,
    /// Sign a pattern instead of the URL itself (always a custom policy).
    #[arg(long, value_name = "PATTERN")]
    resource: Option<String>,
    #[command(flatten)]
    policy: PolicyArgs,
}

#[derive(Debug, Args)]
struct KeyArgs {
    #[command(flatten)]
    source: KeySource,
    /// CloudFront public key id, e.g. K2JCJMDEHXQW5F.
    #[arg(long, value_name = "ID", value_parser = parse_key_pair_id)]
    key_pair_id: KeyPairId,
    #[command(flatten)]
    backend: BackendArg,
}

/// Where the private key comes from: exactly one of the two.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct KeySource {
    /// PEM private key file (PKCS#1, PKCS#8 or SEC1).
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Environment variable holding the PEM private key (`\n` escapes allowed).
    #[arg(long, value_name = "VAR")]
    key_env: Option<String>,
}

#[derive(Debug, Args)]
struct PolicyArgs {
    /// Expiry (DateLessThan) in epoch seconds.
    #[arg(long, value_name = "EPOCH", conflicts_with = "ttl")]
    expires: Option<u64>,
    /// Expiry as a lifetime from now: a number and a unit (s, m, h, d, w;
    /// also ms), combinable as 1h30m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    ttl: Option<Duration>,
    /// Start (DateGreaterThan) in epoch seconds.
    #[arg(long, value_name = "EPOCH")]
    active: Option<u64>,
    /// Viewer IPv4 range, e.g. 192.0.2.0/24.
    #[arg(long, value_name = "CIDR")]
    ip: Option<String>,
    /// Digest to sign with; SHA256 adds the Hash-Algorithm cookie/parameter.
    #[arg(long, value_enum, default_value_t = HashArg::Sha1)]
    hash: HashArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum HashArg {
    Sha1,
    Sha256,
}

impl From<HashArg> for HashAlgorithm {
    fn from(arg: HashArg) -> Self {
        match arg {
            HashArg::Sha1 => Self::Sha1,
            HashArg::Sha256 => Self::Sha256,
        }
    }
}

impl KeyArgs {
    fn load(self) -> Result<PrivateKey, CliError> {
        let backend = self.backend.backend;
        Ok(match (self.source.key, self.source.key_env) {
            (Some(path), _) => PrivateKey::from_file(self.key_pair_id, &path, backend)?,
            (None, Some(var)) => PrivateKey::from_env(self.key_pair_id, &var, backend)?,
            (None, None) => {
                return Err("a key is required: pass --key FILE or --key-env VAR"
                    .to_owned()
                    .into());
            }
        })
    }
}

/// CloudFront matches a policy's resource against the whole URL, scheme
/// included: a resource that starts otherwise can never match.
fn check_resource(resource: &str) -> Result<(), CliError> {
    const STARTS: [&str; 4] = ["https://", "http://", "http*://", "*"];
    if STARTS.iter().any(|start| resource.starts_with(start)) {
        return Ok(());
    }
    Err(format!(
        "--resource {:?} can never match: CloudFront compares it with the whole URL, scheme \
         included; start it with https://, http:// or http*:// (like https://{})",
        super::printable(resource),
        super::printable(
            resource
                .split_once("://")
                .map_or(resource, |(_, rest)| rest)
        ),
    )
    .into())
}

impl PolicyArgs {
    fn policy(&self, resource: &str) -> Result<Policy, CliError> {
        check_resource(resource)?;
        let expires = match (self.expires, self.ttl) {
            (Some(epoch), _) => epoch,
            (None, Some(ttl)) => now().saturating_add(ttl.as_secs()),
            (None, None) => {
                return Err(
                    "an expiration is required: pass --expires EPOCH or --ttl DURATION"
                        .to_owned()
                        .into(),
                );
            }
        };
        let mut builder = Policy::builder(resource).expires(expires);
        if let Some(active) = self.active {
            builder = builder.active(active);
        }
        if let Some(ip) = &self.ip {
            builder = builder.source_ip(ip.clone());
        }
        Ok(builder.build()?)
    }
}

pub fn run(command: SignCommand) -> Result<Outcome, CliError> {
    match command {
        SignCommand::Cookies(args) => {
            let policy = args.policy.policy(&args.resource)?;
            let key = args.key.load()?;
            let signed = key.sign(&policy, PolicyForm::Auto, args.policy.hash.into())?;
            print(&format_cookies(&signed, args.json));
        }
        SignCommand::Url(args) => {
            crate::signer::check_url(&args.url)?;
            let (resource, form) = match &args.resource {
                Some(pattern) => {
                    let url = crate::signer::split_signing_params(&args.url).unsigned;
                    if !crate::signer::wildcard_matches(pattern, &url) {
                        eprintln!(
                            "warning: --url is outside --resource {pattern}: CloudFront will refuse this URL"
                        );
                    }
                    (pattern.as_str(), PolicyForm::Custom)
                }
                None => (args.url.as_str(), PolicyForm::Auto),
            };
            let policy = args.policy.policy(resource)?;
            let key = args.key.load()?;
            let signed = key.sign(&policy, form, args.policy.hash.into())?;
            print(&format!("{}\n", signed.apply_to_url(&args.url)?));
        }
    }
    Ok(Outcome::Success)
}

fn format_cookies(signed: &SignedPolicy, json: bool) -> String {
    let cookies = signed.cookies();
    if json {
        let object: serde_json::Map<_, _> = cookies
            .into_iter()
            .map(|(name, value)| (name.to_owned(), serde_json::Value::String(value)))
            .collect();
        format!("{}\n", serde_json::Value::Object(object))
    } else {
        cookies
            .into_iter()
            .map(|(name, value)| format!("{name}={value}\n"))
            .collect()
    }
}
