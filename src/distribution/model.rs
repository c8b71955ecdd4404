//! The distribution as the check reads it: the parts of its configuration,
//! key groups, public keys and policies that decide whether cfmint's cookies
//! and URLs work and whether what they guard stays guarded. Filled from the
//! CloudFront API (`fetch`) or from documents saved with the AWS CLI
//! (`saved`), the same either way.

use std::collections::BTreeMap;

/// Everything the check looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The distribution id, when known.
    pub id: Option<String>,
    /// `d111111abcdef8.cloudfront.net`: known from `GetDistribution`, not
    /// from `GetDistributionConfig`.
    pub domain_name: Option<String>,
    pub config: DistributionConfig,
    /// Key group id → the ids of its public keys.
    pub key_groups: BTreeMap<String, Vec<String>>,
    /// Public key id → its PEM (`EncodedKey`).
    pub public_keys: BTreeMap<String, String>,
    pub cache_policies: BTreeMap<String, CachePolicy>,
    pub origin_request_policies: BTreeMap<String, OriginRequestPolicy>,
    pub response_headers_policies: BTreeMap<String, ResponseHeadersPolicy>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DistributionConfig {
    pub aliases: Vec<String>,
    pub origins: Vec<Origin>,
    /// The cache behaviors in order, then the default one (path `*`).
    pub behaviors: Vec<Behavior>,
    pub ipv6: bool,
    /// Standard logging with `IncludeCookies`.
    pub logs_cookies: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub id: String,
    /// The custom headers CloudFront adds on the way to this origin.
    pub custom_headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Behavior {
    /// `*` for the default behavior.
    pub path_pattern: String,
    pub target_origin_id: String,
    /// `allow-all`, `redirect-to-https` or `https-only`.
    pub viewer_protocol_policy: String,
    /// The trusted key groups when viewer access is restricted to them.
    pub trusted_key_groups: Vec<String>,
    /// Viewer access restricted to legacy trusted signers (AWS accounts).
    pub trusted_signers: bool,
    pub allowed_methods: Vec<String>,
    pub cache_policy_id: Option<String>,
    pub origin_request_policy_id: Option<String>,
    pub response_headers_policy_id: Option<String>,
    /// The legacy cache settings (`ForwardedValues`), used only without a
    /// cache policy.
    pub legacy: Option<LegacyForwarding>,
}

impl Behavior {
    pub fn is_default(&self) -> bool {
        self.path_pattern == "*"
    }

    /// Whether viewers need a signature here (key groups or trusted signers).
    pub fn is_restricted(&self) -> bool {
        !self.trusted_key_groups.is_empty() || self.trusted_signers
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegacyForwarding {
    pub cookies: Cookies,
    pub headers: Vec<String>,
}

/// Which cookies a policy names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Cookies {
    #[default]
    None,
    All,
    Only(Vec<String>),
    AllExcept(Vec<String>),
}

impl Cookies {
    /// Whether the cookie called `name` is among them.
    pub fn includes(&self, name: &str) -> bool {
        match self {
            Self::None => false,
            Self::All => true,
            Self::Only(names) => names.iter().any(|n| n == name),
            Self::AllExcept(names) => !names.iter().any(|n| n == name),
        }
    }
}

/// Which headers a policy sends to the origin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Headers {
    #[default]
    None,
    Only(Vec<String>),
    /// Every viewer header (no CloudFront header).
    AllViewer,
    /// Every viewer header and these CloudFront headers.
    AllViewerAnd(Vec<String>),
    AllViewerExcept(Vec<String>),
}

impl Headers {
    /// Whether the header called `name` reaches the origin (names compared
    /// without case). `CloudFront-*` headers are CloudFront's own: only a
    /// list names them.
    pub fn includes(&self, name: &str) -> bool {
        let listed = |names: &[String]| names.iter().any(|n| n.eq_ignore_ascii_case(name));
        let cloudfront = name.to_ascii_lowercase().starts_with("cloudfront-");
        match self {
            Self::None => false,
            Self::Only(names) | Self::AllViewerAnd(names) if listed(names) => true,
            Self::Only(_) => false,
            Self::AllViewer | Self::AllViewerAnd(_) => !cloudfront,
            Self::AllViewerExcept(names) => !cloudfront && !listed(names),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CachePolicy {
    /// In the cache key, and so also sent to the origin.
    pub cookies: Cookies,
    pub headers: Headers,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginRequestPolicy {
    pub cookies: Cookies,
    pub headers: Headers,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseHeadersPolicy {
    pub cors: Option<Cors>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cors {
    pub allow_origins: Vec<String>,
    pub allow_credentials: bool,
}

/// The API's names for cookie and header behaviors, as both sources spell them.
pub fn cookies(behavior: &str, names: Vec<String>) -> Cookies {
    match behavior {
        "all" => Cookies::All,
        "whitelist" => Cookies::Only(names),
        "allExcept" => Cookies::AllExcept(names),
        _ => Cookies::None,
    }
}

pub fn headers(behavior: &str, names: Vec<String>) -> Headers {
    match behavior {
        "whitelist" => Headers::Only(names),
        "allViewer" => Headers::AllViewer,
        "allViewerAndWhitelistCloudFront" => Headers::AllViewerAnd(names),
        "allExcept" => Headers::AllViewerExcept(names),
        _ => Headers::None,
    }
}

/// The legacy `ForwardedValues.Cookies.Forward`.
pub fn legacy_cookies(forward: &str, names: Vec<String>) -> Cookies {
    match forward {
        "all" => Cookies::All,
        "whitelist" => Cookies::Only(names),
        _ => Cookies::None,
    }
}

/// A document the distribution refers to, by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted<'a> {
    KeyGroup(&'a str),
    PublicKey(&'a str),
    CachePolicy(&'a str),
    OriginRequestPolicy(&'a str),
    ResponseHeadersPolicy(&'a str),
}

impl Wanted<'_> {
    /// The AWS CLI command that saves it.
    pub fn command(&self) -> String {
        let (kind, id) = match self {
            Self::KeyGroup(id) => ("key-group", id),
            Self::PublicKey(id) => ("public-key", id),
            Self::CachePolicy(id) => ("cache-policy", id),
            Self::OriginRequestPolicy(id) => ("origin-request-policy", id),
            Self::ResponseHeadersPolicy(id) => ("response-headers-policy", id),
        };
        format!("aws cloudfront get-{kind} --id {id}")
    }
}

impl Snapshot {
    /// What the check still needs and the snapshot lacks, each once: the
    /// key groups and policies the behaviors name, the public keys of the
    /// groups it holds.
    pub fn wanted(&self) -> Vec<Wanted<'_>> {
        let mut wanted = Vec::new();
        let mut want = |item, have: bool| {
            if !have && !wanted.contains(&item) {
                wanted.push(item);
            }
        };
        for behavior in &self.config.behaviors {
            for group in &behavior.trusted_key_groups {
                want(Wanted::KeyGroup(group), self.key_groups.contains_key(group));
            }
            if let Some(id) = &behavior.cache_policy_id {
                want(
                    Wanted::CachePolicy(id),
                    self.cache_policies.contains_key(id),
                );
            }
            if let Some(id) = &behavior.origin_request_policy_id {
                let have = self.origin_request_policies.contains_key(id);
                want(Wanted::OriginRequestPolicy(id), have);
            }
            if let Some(id) = &behavior.response_headers_policy_id {
                let have = self.response_headers_policies.contains_key(id);
                want(Wanted::ResponseHeadersPolicy(id), have);
            }
        }
        for keys in self.key_groups.values() {
            for key in keys {
                want(Wanted::PublicKey(key), self.public_keys.contains_key(key));
            }
        }
        wanted
    }
}
