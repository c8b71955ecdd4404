//! The snapshot through the CloudFront API: `GetDistribution`, then
//! `GetKeyGroup`, `GetPublicKey`, `GetCachePolicy`, `GetOriginRequestPolicy`
//! and `GetResponseHeadersPolicy` for what its behaviors name. Read-only.

use std::time::Duration;

use aws_sdk_cloudfront::types as cf;

use aws_sdk_cloudfront::Client;

use super::model::{self, Snapshot, Wanted};
use crate::aws::describe;

fn names(list: Option<&[String]>) -> Vec<String> {
    list.unwrap_or_default().to_vec()
}

/// A cache behavior (or the default one, which has no path pattern) in the
/// model: both SDK types have the same getters.
macro_rules! behavior {
    ($b:expr, $path_pattern:expr) => {{
        let b = $b;
        let policy = |id: Option<&str>| id.filter(|id| !id.is_empty()).map(str::to_owned);
        model::Behavior {
            path_pattern: $path_pattern.to_owned(),
            target_origin_id: b.target_origin_id().to_owned(),
            viewer_protocol_policy: b.viewer_protocol_policy().as_str().to_owned(),
            trusted_key_groups: b
                .trusted_key_groups()
                .filter(|g| g.enabled())
                .map(|g| g.items().to_vec())
                .unwrap_or_default(),
            trusted_signers: b.trusted_signers().is_some_and(cf::TrustedSigners::enabled),
            allowed_methods: b
                .allowed_methods()
                .map(|m| m.items().iter().map(|m| m.as_str().to_owned()).collect())
                .unwrap_or_default(),
            cache_policy_id: policy(b.cache_policy_id()),
            origin_request_policy_id: policy(b.origin_request_policy_id()),
            response_headers_policy_id: policy(b.response_headers_policy_id()),
            // The legacy cache settings: deprecated, still what older
            // distributions use.
            #[allow(deprecated)]
            legacy: b.forwarded_values().map(legacy),
        }
    }};
}

fn legacy(values: &cf::ForwardedValues) -> model::LegacyForwarding {
    model::LegacyForwarding {
        cookies: values.cookies().map_or(model::Cookies::None, |c| {
            model::legacy_cookies(
                c.forward().as_str(),
                names(c.whitelisted_names().map(cf::CookieNames::items)),
            )
        }),
        headers: names(values.headers().map(cf::Headers::items)),
    }
}

fn config(config: &cf::DistributionConfig) -> model::DistributionConfig {
    let mut behaviors: Vec<model::Behavior> = config
        .cache_behaviors()
        .map(cf::CacheBehaviors::items)
        .unwrap_or_default()
        .iter()
        .map(|b| behavior!(b, b.path_pattern()))
        .collect();
    if let Some(b) = config.default_cache_behavior() {
        behaviors.push(behavior!(b, "*"));
    }
    model::DistributionConfig {
        aliases: names(config.aliases().map(cf::Aliases::items)),
        origins: config
            .origins()
            .map(cf::Origins::items)
            .unwrap_or_default()
            .iter()
            .map(|o| model::Origin {
                id: o.id().to_owned(),
                custom_headers: o
                    .custom_headers()
                    .map(cf::CustomHeaders::items)
                    .unwrap_or_default()
                    .iter()
                    .map(|h| (h.header_name().to_owned(), h.header_value().to_owned()))
                    .collect(),
            })
            .collect(),
        behaviors,
        ipv6: config.is_ipv6_enabled().unwrap_or(false),
        logs_cookies: config
            .logging()
            .is_some_and(|l| l.enabled() && l.include_cookies()),
    }
}

/// Reads the distribution and everything its behaviors name.
pub async fn snapshot(id: &str, timeout: Duration) -> Result<Snapshot, String> {
    let client = crate::aws::cloudfront(timeout).await;
    let output = client
        .get_distribution()
        .id(id)
        .send()
        .await
        .map_err(|e| describe("GetDistribution", &e))?;
    let distribution = output
        .distribution()
        .ok_or("GetDistribution: no distribution in the answer")?;
    let mut snapshot = Snapshot {
        id: Some(distribution.id().to_owned()),
        domain_name: Some(distribution.domain_name().to_owned()),
        config: config(
            distribution
                .distribution_config()
                .ok_or("GetDistribution: no configuration in the answer")?,
        ),
        ..Snapshot::default()
    };
    // What the behaviors name, then the public keys of the groups read.
    loop {
        let wanted: Vec<Wanted<'_>> = snapshot.wanted();
        if wanted.is_empty() {
            break;
        }
        let mut read = Snapshot::default();
        for item in wanted {
            read_one(&client, item, &mut read).await?;
        }
        snapshot.key_groups.extend(read.key_groups);
        snapshot.public_keys.extend(read.public_keys);
        snapshot.cache_policies.extend(read.cache_policies);
        snapshot
            .origin_request_policies
            .extend(read.origin_request_policies);
        snapshot
            .response_headers_policies
            .extend(read.response_headers_policies);
    }
    Ok(snapshot)
}

/// The cookie and header settings of a cache or origin request policy:
/// the two SDK types have the same getters.
macro_rules! cookies_and_headers {
    ($cookies:expr, $headers:expr) => {
        (
            $cookies.map_or(model::Cookies::None, |c| {
                model::cookies(
                    c.cookie_behavior().as_str(),
                    names(c.cookies().map(cf::CookieNames::items)),
                )
            }),
            $headers.map_or(model::Headers::None, |h| {
                model::headers(
                    h.header_behavior().as_str(),
                    names(h.headers().map(cf::Headers::items)),
                )
            }),
        )
    };
}

/// Reads one document into `into`.
async fn read_one(client: &Client, item: Wanted<'_>, into: &mut Snapshot) -> Result<(), String> {
    match item {
        Wanted::KeyGroup(id) => {
            let output = client
                .get_key_group()
                .id(id)
                .send()
                .await
                .map_err(|e| describe("GetKeyGroup", &e))?;
            let items = output
                .key_group()
                .and_then(cf::KeyGroup::key_group_config)
                .map(|c| c.items().to_vec())
                .unwrap_or_default();
            into.key_groups.insert(id.to_owned(), items);
        }
        Wanted::PublicKey(id) => {
            let output = client
                .get_public_key()
                .id(id)
                .send()
                .await
                .map_err(|e| describe("GetPublicKey", &e))?;
            let pem = output
                .public_key()
                .and_then(cf::PublicKey::public_key_config)
                .map(|c| c.encoded_key().to_owned())
                .unwrap_or_default();
            into.public_keys.insert(id.to_owned(), pem);
        }
        Wanted::CachePolicy(id) => {
            let output = client
                .get_cache_policy()
                .id(id)
                .send()
                .await
                .map_err(|e| describe("GetCachePolicy", &e))?;
            let key = output
                .cache_policy()
                .and_then(cf::CachePolicy::cache_policy_config)
                .ok_or("GetCachePolicy: no policy in the answer")?
                .parameters_in_cache_key_and_forwarded_to_origin();
            let (cookies, headers) = cookies_and_headers!(
                key.and_then(|k| k.cookies_config()),
                key.and_then(|k| k.headers_config())
            );
            let policy = model::CachePolicy { cookies, headers };
            into.cache_policies.insert(id.to_owned(), policy);
        }
        Wanted::OriginRequestPolicy(id) => {
            let output = client
                .get_origin_request_policy()
                .id(id)
                .send()
                .await
                .map_err(|e| describe("GetOriginRequestPolicy", &e))?;
            let config = output
                .origin_request_policy()
                .and_then(cf::OriginRequestPolicy::origin_request_policy_config)
                .ok_or("GetOriginRequestPolicy: no policy in the answer")?;
            let (cookies, headers) =
                cookies_and_headers!(config.cookies_config(), config.headers_config());
            let policy = model::OriginRequestPolicy { cookies, headers };
            into.origin_request_policies.insert(id.to_owned(), policy);
        }
        Wanted::ResponseHeadersPolicy(id) => {
            let output = client
                .get_response_headers_policy()
                .id(id)
                .send()
                .await
                .map_err(|e| describe("GetResponseHeadersPolicy", &e))?;
            let config = output
                .response_headers_policy()
                .and_then(cf::ResponseHeadersPolicy::response_headers_policy_config)
                .ok_or("GetResponseHeadersPolicy: no policy in the answer")?;
            let policy = model::ResponseHeadersPolicy {
                cors: config.cors_config().map(|c| model::Cors {
                    allow_origins: names(
                        c.access_control_allow_origins()
                            .map(cf::ResponseHeadersPolicyAccessControlAllowOrigins::items),
                    ),
                    allow_credentials: c.access_control_allow_credentials(),
                }),
            };
            into.response_headers_policies.insert(id.to_owned(), policy);
        }
    }
    Ok(())
}
