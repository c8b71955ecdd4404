//! Verification the way CloudFront does it: find the signature (signed-URL
//! parameters take precedence over cookies), check it against the key group,
//! then the policy's dates, IP range and resource. Every denial has a reason.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;

use super::backend::{HashAlgorithm, KeyAlgorithm};
use super::encoding;
use super::keys::PublicKeys;
use super::policy::{self, ParsedPolicy};
use super::query;
use super::sign::{
    COOKIE_EXPIRES, COOKIE_HASH_ALGORITHM, COOKIE_KEY_PAIR_ID, COOKIE_POLICY, COOKIE_SIGNATURE,
};
use super::wildcard;

/// One viewer request, as CloudFront sees it.
#[derive(Debug, Clone, Copy)]
pub struct ViewerRequest<'a> {
    /// The full request URL, `https://host/path?query`.
    pub url: &'a str,
    /// The `Cookie` header, if any.
    pub cookie_header: Option<&'a str>,
    /// The viewer's address, if known.
    pub client_ip: Option<IpAddr>,
    /// The current time in epoch seconds.
    pub now: u64,
}

/// Where the signature was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    /// The URL's query parameters.
    SignedUrl,
    /// The `CloudFront-*` cookies.
    Cookies,
}

/// What was presented, decoded as far as it could be.
#[derive(Debug, Clone, Default)]
pub struct Inspection {
    /// Where the signature was found, if anywhere.
    pub source: Option<CredentialSource>,
    /// The key pair id presented.
    pub key_pair_id: Option<String>,
    /// The algorithm of the key group's key with that id.
    pub key_algorithm: Option<KeyAlgorithm>,
    /// The digest named by `Hash-Algorithm` (SHA-1 when absent).
    pub hash: HashAlgorithm,
    /// True for a custom policy, false for canned, None before it is known.
    pub custom_policy: Option<bool>,
    /// The policy bytes the signature covers (rebuilt for a canned policy).
    pub policy_json: Option<String>,
    /// The policy, parsed.
    pub policy: Option<ParsedPolicy>,
}

/// The answer: allowed, or denied with a reason, and what was seen.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// What the request carried.
    pub inspection: Inspection,
    /// Allowed, or why not.
    pub result: Result<(), Denial>,
}

impl Verdict {
    /// True when CloudFront would serve the request.
    pub fn is_allowed(&self) -> bool {
        self.result.is_ok()
    }
}

/// Why CloudFront would refuse the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// Neither signed-URL parameters nor CloudFront cookies.
    NoCredentials,
    /// A signature was presented but one of its parts is absent.
    Missing {
        /// The parameter or cookie that is absent.
        name: &'static str,
    },
    /// The key pair id is not in the key group.
    UnknownKeyPairId(String),
    /// The policy (or canned `Expires`) cannot be decoded or parsed.
    MalformedPolicy(String),
    /// The signature is not valid CloudFront base64.
    MalformedSignature,
    /// `Hash-Algorithm` names something other than SHA1 or SHA256.
    UnsupportedHashAlgorithm(String),
    /// The signature does not match the policy under that key.
    BadSignature {
        /// True when the policy was canned (rebuilt from the URL).
        canned: bool,
    },
    /// `now` is at or past `DateLessThan`.
    Expired {
        /// `DateLessThan`.
        expires: u64,
        /// The time of the check.
        now: u64,
    },
    /// `now` is before `DateGreaterThan`.
    NotYetValid {
        /// `DateGreaterThan`.
        active: u64,
        /// The time of the check.
        now: u64,
    },
    /// The viewer's address is outside `IpAddress`, or unknown, or IPv6.
    IpNotAllowed {
        /// The policy's `IpAddress`.
        range: Ipv4Net,
        /// The viewer's address, if known.
        client: Option<IpAddr>,
    },
    /// The request URL does not match the policy's `Resource`.
    ResourceMismatch {
        /// The policy's `Resource`.
        resource: String,
        /// The request URL.
        url: String,
    },
}

/// A denial's reason without its details, for matching and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenialKind {
    /// [`Denial::NoCredentials`]
    NoCredentials,
    /// [`Denial::Missing`]
    Missing,
    /// [`Denial::UnknownKeyPairId`]
    UnknownKeyPairId,
    /// [`Denial::MalformedPolicy`]
    MalformedPolicy,
    /// [`Denial::MalformedSignature`]
    MalformedSignature,
    /// [`Denial::UnsupportedHashAlgorithm`]
    UnsupportedHashAlgorithm,
    /// [`Denial::BadSignature`]
    BadSignature,
    /// [`Denial::Expired`]
    Expired,
    /// [`Denial::NotYetValid`]
    NotYetValid,
    /// [`Denial::IpNotAllowed`]
    IpNotAllowed,
    /// [`Denial::ResourceMismatch`]
    ResourceMismatch,
}

impl DenialKind {
    /// A stable snake_case label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoCredentials => "no_credentials",
            Self::Missing => "missing_part",
            Self::UnknownKeyPairId => "unknown_key_pair_id",
            Self::MalformedPolicy => "malformed_policy",
            Self::MalformedSignature => "malformed_signature",
            Self::UnsupportedHashAlgorithm => "unsupported_hash_algorithm",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::IpNotAllowed => "ip_not_allowed",
            Self::ResourceMismatch => "resource_mismatch",
        }
    }
}

impl Denial {
    /// The reason without its details.
    pub fn kind(&self) -> DenialKind {
        match self {
            Self::NoCredentials => DenialKind::NoCredentials,
            Self::Missing { .. } => DenialKind::Missing,
            Self::UnknownKeyPairId(_) => DenialKind::UnknownKeyPairId,
            Self::MalformedPolicy(_) => DenialKind::MalformedPolicy,
            Self::MalformedSignature => DenialKind::MalformedSignature,
            Self::UnsupportedHashAlgorithm(_) => DenialKind::UnsupportedHashAlgorithm,
            Self::BadSignature { .. } => DenialKind::BadSignature,
            Self::Expired { .. } => DenialKind::Expired,
            Self::NotYetValid { .. } => DenialKind::NotYetValid,
            Self::IpNotAllowed { .. } => DenialKind::IpNotAllowed,
            Self::ResourceMismatch { .. } => DenialKind::ResourceMismatch,
        }
    }

    /// The `<Code>` CloudFront puts in its 403 XML body.
    pub fn cloudfront_code(&self) -> &'static str {
        match self {
            Self::NoCredentials | Self::Missing { .. } => "MissingKey",
            Self::UnknownKeyPairId(_) => "InvalidKey",
            Self::MalformedPolicy(_) => "MalformedPolicy",
            Self::MalformedSignature => "MalformedSignature",
            _ => "AccessDenied",
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoCredentials => f.write_str(
                "no signature: the URL has no signing parameters and no CloudFront cookies were sent",
            ),
            Self::Missing { name } => write!(f, "missing {name}"),
            Self::UnknownKeyPairId(id) => {
                write!(f, "unknown key pair id \"{}\": not in the key group", id.escape_debug())
            }
            Self::MalformedPolicy(why) => write!(f, "malformed policy: {why}"),
            Self::MalformedSignature => f.write_str("malformed signature: not CloudFront base64"),
            Self::UnsupportedHashAlgorithm(name) => write!(
                f,
                "unsupported hash algorithm \"{}\" (CloudFront takes SHA1 or SHA256)",
                name.escape_debug()
            ),
            Self::BadSignature { canned: false } => {
                f.write_str("bad signature: it does not match the policy under this key")
            }
            Self::BadSignature { canned: true } => f.write_str(
                "bad signature: a canned policy covers one exact URL, so either the URL differs \
                 from the one signed or the signature is wrong",
            ),
            Self::Expired { expires, now } => write!(
                f,
                "expired: DateLessThan {expires} is not after now ({now}), {}s ago",
                now - expires
            ),
            Self::NotYetValid { active, now } => write!(
                f,
                "not yet valid: DateGreaterThan {active} is {}s in the future",
                active - now
            ),
            Self::IpNotAllowed { range, client } => match client {
                Some(ip) => write!(f, "IP not allowed: viewer {ip} is not in {range}"),
                None => write!(f, "IP not allowed: the policy requires {range} and the viewer address is unknown"),
            },
            Self::ResourceMismatch { resource, url } => write!(
                f,
                "URL outside the resource: {} does not match {}",
                url.escape_debug(),
                resource.escape_debug()
            ),
        }
    }
}

impl std::error::Error for Denial {}

/// The signature parts, from one source.
struct Presented<'a> {
    policy: Option<&'a str>,
    expires: Option<&'a str>,
    signature: Option<&'a str>,
    key_pair_id: Option<&'a str>,
    hash: Option<&'a str>,
}

fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// The signature parts and the URL they apply to: without the signing
/// parameters for a signed URL, as requested for cookies.
fn presented<'a>(request: &ViewerRequest<'a>) -> Option<(CredentialSource, Presented<'a>, String)> {
    let split = query::split(request.url);
    if !split.params.is_empty() {
        let parts = Presented {
            policy: split.get("Policy"),
            expires: split.get("Expires"),
            signature: split.get("Signature"),
            key_pair_id: split.get("Key-Pair-Id"),
            hash: split.get("Hash-Algorithm"),
        };
        return Some((CredentialSource::SignedUrl, parts, split.unsigned));
    }
    let header = request.cookie_header?;
    let parts = Presented {
        policy: cookie(header, COOKIE_POLICY),
        expires: cookie(header, COOKIE_EXPIRES),
        signature: cookie(header, COOKIE_SIGNATURE),
        key_pair_id: cookie(header, COOKIE_KEY_PAIR_ID),
        hash: cookie(header, COOKIE_HASH_ALGORITHM),
    };
    let any = parts.policy.is_some()
        || parts.expires.is_some()
        || parts.signature.is_some()
        || parts.key_pair_id.is_some();
    any.then(|| (CredentialSource::Cookies, parts, request.url.to_owned()))
}

/// Decides a request the way CloudFront would.
pub fn verify(keys: &PublicKeys, request: &ViewerRequest<'_>) -> Verdict {
    let mut inspection = Inspection::default();
    let result = check(keys, request, &mut inspection);
    Verdict { inspection, result }
}

fn check(
    keys: &PublicKeys,
    request: &ViewerRequest<'_>,
    seen: &mut Inspection,
) -> Result<(), Denial> {
    let (source, parts, url) = presented(request).ok_or(Denial::NoCredentials)?;
    seen.source = Some(source);
    let names = match source {
        CredentialSource::SignedUrl => ["Key-Pair-Id", "Signature", "Policy or Expires"],
        CredentialSource::Cookies => [
            COOKIE_KEY_PAIR_ID,
            COOKIE_SIGNATURE,
            "CloudFront-Policy or CloudFront-Expires",
        ],
    };
    let key_pair_id = parts
        .key_pair_id
        .ok_or(Denial::Missing { name: names[0] })?;
    seen.key_pair_id = Some(key_pair_id.to_owned());
    let signature = parts.signature.ok_or(Denial::Missing { name: names[1] })?;
    seen.hash = match parts.hash {
        None => HashAlgorithm::Sha1,
        Some(name) => HashAlgorithm::from_cloudfront_name(name)
            .ok_or_else(|| Denial::UnsupportedHashAlgorithm(name.to_owned()))?,
    };
    let key = keys
        .get(key_pair_id)
        .ok_or_else(|| Denial::UnknownKeyPairId(key_pair_id.to_owned()))?;
    seen.key_algorithm = Some(key.algorithm());

    let (json, parsed) = match (parts.policy, parts.expires) {
        (Some(_), Some(_)) => {
            return Err(Denial::MalformedPolicy(
                "both a custom Policy and a canned Expires were sent".into(),
            ));
        }
        (None, None) => return Err(Denial::Missing { name: names[2] }),
        (Some(encoded), None) => {
            seen.custom_policy = Some(true);
            let bytes = encoding::decode(encoded)
                .map_err(|_| Denial::MalformedPolicy("not CloudFront base64".into()))?;
            let json = String::from_utf8(bytes)
                .map_err(|_| Denial::MalformedPolicy("not UTF-8".into()))?;
            seen.policy_json = Some(json.clone());
            let parsed = policy::parse(json.as_bytes()).map_err(Denial::MalformedPolicy)?;
            (json, parsed)
        }
        (None, Some(expires)) => {
            seen.custom_policy = Some(false);
            let expires = parse_epoch(expires).ok_or_else(|| {
                Denial::MalformedPolicy(format!(
                    "Expires \"{}\" is not epoch seconds",
                    expires.escape_debug()
                ))
            })?;
            let json = policy::canned_json(&url, expires);
            seen.policy_json = Some(json.clone());
            let parsed = ParsedPolicy {
                resource: url.clone(),
                expires,
                active: None,
                source_ip: None,
            };
            (json, parsed)
        }
    };
    seen.policy = Some(parsed.clone());

    let signature = encoding::decode(signature).map_err(|_| Denial::MalformedSignature)?;
    if !key.verify(seen.hash, json.as_bytes(), &signature) {
        return Err(Denial::BadSignature {
            canned: seen.custom_policy == Some(false),
        });
    }
    check_conditions(&parsed, request, &url)
}

fn parse_epoch(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

fn check_conditions(
    policy: &ParsedPolicy,
    request: &ViewerRequest<'_>,
    url: &str,
) -> Result<(), Denial> {
    let now = request.now;
    if now >= policy.expires {
        return Err(Denial::Expired {
            expires: policy.expires,
            now,
        });
    }
    if let Some(active) = policy.active.filter(|&active| now < active) {
        return Err(Denial::NotYetValid { active, now });
    }
    if let Some(range) = policy.source_ip {
        let client_v4 = request.client_ip.and_then(ipv4);
        if !client_v4.is_some_and(|ip| range.contains(&ip)) {
            return Err(Denial::IpNotAllowed {
                range,
                client: request.client_ip,
            });
        }
    }
    if !wildcard::matches(&policy.resource, url) {
        return Err(Denial::ResourceMismatch {
            resource: policy.resource.clone(),
            url: url.to_owned(),
        });
    }
    Ok(())
}

/// IPv4, or IPv4-mapped IPv6 read as IPv4. CloudFront never matches other IPv6.
fn ipv4(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    }
}
