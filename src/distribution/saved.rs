//! Documents saved with the AWS CLI, read into a [`Snapshot`]: the output of
//! `aws cloudfront get-distribution` or `get-distribution-config`, and of
//! `get-key-group`, `get-public-key`, `get-cache-policy`,
//! `get-origin-request-policy` and `get-response-headers-policy`, each told
//! apart by its top-level member. Members the check does not read are
//! ignored.

use serde::Deserialize;

use super::model::{self, Snapshot};

/// `{"Quantity": n, "Items": [...]}`, as the API wraps its lists.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct List<T> {
    #[serde(default = "Vec::new")]
    items: Vec<T>,
}

impl<T> Default for List<T> {
    fn default() -> Self {
        Self { items: Vec::new() }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Document {
    distribution: Option<Distribution>,
    distribution_config: Option<DistributionConfig>,
    key_group: Option<KeyGroup>,
    public_key: Option<PublicKey>,
    cache_policy: Option<CachePolicy>,
    origin_request_policy: Option<OriginRequestPolicy>,
    response_headers_policy: Option<ResponseHeadersPolicy>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Distribution {
    id: String,
    domain_name: String,
    distribution_config: DistributionConfig,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DistributionConfig {
    #[serde(default)]
    aliases: List<String>,
    origins: List<Origin>,
    default_cache_behavior: Behavior,
    #[serde(default)]
    cache_behaviors: List<Behavior>,
    #[serde(rename = "IsIPV6Enabled", default)]
    ipv6: bool,
    logging: Option<Logging>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Origin {
    id: String,
    #[serde(default)]
    custom_headers: List<CustomHeader>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CustomHeader {
    header_name: String,
    header_value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Enabled<T> {
    #[serde(default)]
    enabled: bool,
    #[serde(default = "Vec::new")]
    items: Vec<T>,
}

impl<T> Default for Enabled<T> {
    fn default() -> Self {
        Self {
            enabled: false,
            items: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Behavior {
    path_pattern: Option<String>,
    target_origin_id: String,
    viewer_protocol_policy: String,
    #[serde(default)]
    trusted_key_groups: Enabled<String>,
    #[serde(default)]
    trusted_signers: Enabled<String>,
    #[serde(default)]
    allowed_methods: List<String>,
    cache_policy_id: Option<String>,
    origin_request_policy_id: Option<String>,
    response_headers_policy_id: Option<String>,
    forwarded_values: Option<ForwardedValues>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ForwardedValues {
    cookies: Option<CookiePreference>,
    #[serde(default)]
    headers: List<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CookiePreference {
    forward: String,
    #[serde(default)]
    whitelisted_names: List<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Logging {
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    include_cookies: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyGroup {
    id: String,
    key_group_config: KeyGroupConfig,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyGroupConfig {
    #[serde(default)]
    items: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PublicKey {
    id: String,
    public_key_config: PublicKeyConfig,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PublicKeyConfig {
    encoded_key: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CachePolicy {
    id: String,
    cache_policy_config: CachePolicyConfig,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CachePolicyConfig {
    parameters_in_cache_key_and_forwarded_to_origin: Option<CacheKey>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CacheKey {
    cookies_config: Option<CookiesConfig>,
    headers_config: Option<HeadersConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CookiesConfig {
    cookie_behavior: String,
    #[serde(default)]
    cookies: List<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HeadersConfig {
    header_behavior: String,
    #[serde(default)]
    headers: List<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OriginRequestPolicy {
    id: String,
    origin_request_policy_config: OriginRequestPolicyConfig,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OriginRequestPolicyConfig {
    cookies_config: Option<CookiesConfig>,
    headers_config: Option<HeadersConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ResponseHeadersPolicy {
    id: String,
    response_headers_policy_config: ResponseHeadersPolicyConfig,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ResponseHeadersPolicyConfig {
    cors_config: Option<CorsConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CorsConfig {
    access_control_allow_origins: List<String>,
    access_control_allow_credentials: bool,
}

impl From<DistributionConfig> for model::DistributionConfig {
    fn from(config: DistributionConfig) -> Self {
        let behaviors = config
            .cache_behaviors
            .items
            .into_iter()
            .chain([config.default_cache_behavior])
            .map(model::Behavior::from)
            .collect();
        Self {
            aliases: config.aliases.items,
            origins: config
                .origins
                .items
                .into_iter()
                .map(|origin| model::Origin {
                    id: origin.id,
                    custom_headers: origin
                        .custom_headers
                        .items
                        .into_iter()
                        .map(|h| (h.header_name, h.header_value))
                        .collect(),
                })
                .collect(),
            behaviors,
            ipv6: config.ipv6,
            logs_cookies: config
                .logging
                .is_some_and(|l| l.enabled && l.include_cookies),
        }
    }
}

impl From<Behavior> for model::Behavior {
    fn from(b: Behavior) -> Self {
        let key_groups = if b.trusted_key_groups.enabled {
            b.trusted_key_groups.items
        } else {
            Vec::new()
        };
        Self {
            path_pattern: b.path_pattern.unwrap_or_else(|| "*".to_owned()),
            target_origin_id: b.target_origin_id,
            viewer_protocol_policy: b.viewer_protocol_policy,
            trusted_key_groups: key_groups,
            trusted_signers: b.trusted_signers.enabled,
            allowed_methods: b.allowed_methods.items,
            cache_policy_id: b.cache_policy_id.filter(|id| !id.is_empty()),
            origin_request_policy_id: b.origin_request_policy_id.filter(|id| !id.is_empty()),
            response_headers_policy_id: b.response_headers_policy_id.filter(|id| !id.is_empty()),
            legacy: b.forwarded_values.map(|values| model::LegacyForwarding {
                cookies: values.cookies.map_or(model::Cookies::None, |c| {
                    model::legacy_cookies(&c.forward, c.whitelisted_names.items)
                }),
                headers: values.headers.items,
            }),
        }
    }
}

fn cookies(config: Option<CookiesConfig>) -> model::Cookies {
    config.map_or(model::Cookies::None, |c| {
        model::cookies(&c.cookie_behavior, c.cookies.items)
    })
}

fn headers(config: Option<HeadersConfig>) -> model::Headers {
    config.map_or(model::Headers::None, |h| {
        model::headers(&h.header_behavior, h.headers.items)
    })
}

/// Adds one saved document (`name` for messages) to the snapshot; whether
/// it was the distribution.
fn add(snapshot: &mut Snapshot, name: &str, text: &[u8]) -> Result<bool, String> {
    let document: Document = serde_json::from_slice(text).map_err(|e| {
        format!("{name}: not a document saved from the CloudFront API (aws cloudfront get-…): {e}")
    })?;
    let distribution = document.distribution.is_some() || document.distribution_config.is_some();
    let mut read = 0;
    if let Some(distribution) = document.distribution {
        snapshot.id = Some(distribution.id);
        snapshot.domain_name = Some(distribution.domain_name);
        snapshot.config = distribution.distribution_config.into();
        read += 1;
    }
    if let Some(config) = document.distribution_config {
        snapshot.config = config.into();
        read += 1;
    }
    if let Some(group) = document.key_group {
        snapshot
            .key_groups
            .insert(group.id, group.key_group_config.items);
        read += 1;
    }
    if let Some(key) = document.public_key {
        snapshot
            .public_keys
            .insert(key.id, key.public_key_config.encoded_key);
        read += 1;
    }
    if let Some(policy) = document.cache_policy {
        let config = policy.cache_policy_config;
        let key = config.parameters_in_cache_key_and_forwarded_to_origin;
        let (cookies_config, headers_config) =
            key.map_or((None, None), |k| (k.cookies_config, k.headers_config));
        snapshot.cache_policies.insert(
            policy.id,
            model::CachePolicy {
                cookies: cookies(cookies_config),
                headers: headers(headers_config),
            },
        );
        read += 1;
    }
    if let Some(policy) = document.origin_request_policy {
        let config = policy.origin_request_policy_config;
        snapshot.origin_request_policies.insert(
            policy.id,
            model::OriginRequestPolicy {
                cookies: cookies(config.cookies_config),
                headers: headers(config.headers_config),
            },
        );
        read += 1;
    }
    if let Some(policy) = document.response_headers_policy {
        let config = policy.response_headers_policy_config;
        snapshot.response_headers_policies.insert(
            policy.id,
            model::ResponseHeadersPolicy {
                cors: config.cors_config.map(|cors| model::Cors {
                    allow_origins: cors.access_control_allow_origins.items,
                    allow_credentials: cors.access_control_allow_credentials,
                }),
            },
        );
        read += 1;
    }
    match read {
        1 => Ok(distribution),
        0 => Err(format!(
            "{name}: none of Distribution, DistributionConfig, KeyGroup, PublicKey, \
             CachePolicy, OriginRequestPolicy or ResponseHeadersPolicy at the top"
        )),
        _ => Err(format!(
            "{name}: holds more than one document; save one per file"
        )),
    }
}

/// A snapshot from saved documents, one of them the distribution.
pub fn snapshot(files: &[(String, Vec<u8>)]) -> Result<Snapshot, String> {
    let mut snapshot = Snapshot::default();
    let mut distributions = 0;
    for (name, text) in files {
        if add(&mut snapshot, name, text)? {
            distributions += 1;
        }
    }
    match distributions {
        0 => Err("no distribution among the documents: save one with \
                  aws cloudfront get-distribution --id ID > distribution.json"
            .to_owned()),
        1 => Ok(snapshot),
        _ => Err("more than one distribution among the documents: check one at a time".to_owned()),
    }
}
