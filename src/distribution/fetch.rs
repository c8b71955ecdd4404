//! The snapshot through the CloudFront API: `GetDistribution`, then
//! `GetKeyGroup`, `GetPublicKey`, `GetCachePolicy`, `GetOriginRequestPolicy`
//! and `GetResponseHeadersPolicy` for what its behaviors name. Read-only.

use std::time::Duration;

use aws_sdk_cloudfront::types as cf;

use super::model::{self, Snapshot};
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
                domain_name: o.domain_name().to_owned(),
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
    let behaviors = snapshot.config.behaviors.clone();
    for b in &behaviors {
        for group in &b.trusted_key_groups {
            if snapshot.key_groups.contains_key(group) {
                continue;
            }
            let output = client
                .get_key_group()
                .id(group)
                .send()
                .await
                .map_err(|e| describe("GetKeyGroup", &e))?;
            let items = output
                .key_group()
                .and_then(cf::KeyGroup::key_group_config)
                .map(|c| c.items().to_vec())
                .unwrap_or_default();
            for key in &items {
                if snapshot.public_keys.contains_key(key) {
                    continue;
                }
                let output = client
                    .get_public_key()
                    .id(key)
                    .send()
                    .await
                    .map_err(|e| describe("GetPublicKey", &e))?;
                let pem = output
                    .public_key()
                    .and_then(cf::PublicKey::public_key_config)
                    .map(|c| c.encoded_key().to_owned())
                    .unwrap_or_default();
                snapshot.public_keys.insert(key.clone(), pem);
            }
            snapshot.key_groups.insert(group.clone(), items);
        }
        if let Some(id) = &b.cache_policy_id
            && !snapshot.cache_policies.contains_key(id)
        {
            let output = client
                .get_cache_policy()
                .id(id)
                .send()
                .await
                .map_err(|e| describe("GetCachePolicy", &e))?;
            let config = output
                .cache_policy()
                .and_then(cf::CachePolicy::cache_policy_config)
                .ok_or("GetCachePolicy: no policy in the answer")?;
            let key = config.parameters_in_cache_key_and_forwarded_to_origin();
            let cookies = key
                .and_then(|k| k.cookies_config())
                .map_or(model::Cookies::None, |c| {
                    model::cookies(
                        c.cookie_behavior().as_str(),
                        names(c.cookies().map(cf::CookieNames::items)),
                    )
                });
            let headers = key
                .and_then(|k| k.headers_config())
                .map_or(model::Headers::None, |h| {
                    model::headers(
                        h.header_behavior().as_str(),
                        names(h.headers().map(cf::Headers::items)),
                    )
                });
            let policy = model::CachePolicy {
                name: config.name().to_owned(),
                cookies,
                headers,
            };
            snapshot.cache_policies.insert(id.clone(), policy);
        }
        if let Some(id) = &b.origin_request_policy_id
            && !snapshot.origin_request_policies.contains_key(id)
        {
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
            let policy = model::OriginRequestPolicy {
                name: config.name().to_owned(),
                cookies: config.cookies_config().map_or(model::Cookies::None, |c| {
                    model::cookies(
                        c.cookie_behavior().as_str(),
                        names(c.cookies().map(cf::CookieNames::items)),
                    )
                }),
                headers: config.headers_config().map_or(model::Headers::None, |h| {
                    model::headers(
                        h.header_behavior().as_str(),
                        names(h.headers().map(cf::Headers::items)),
                    )
                }),
            };
            snapshot.origin_request_policies.insert(id.clone(), policy);
        }
        if let Some(id) = &b.response_headers_policy_id
            && !snapshot.response_headers_policies.contains_key(id)
        {
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
                name: config.name().to_owned(),
                cors: config.cors_config().map(|c| model::Cors {
                    allow_origins: names(
                        c.access_control_allow_origins()
                            .map(cf::ResponseHeadersPolicyAccessControlAllowOrigins::items),
                    ),
                    allow_credentials: c.access_control_allow_credentials(),
                }),
            };
            snapshot
                .response_headers_policies
                .insert(id.clone(), policy);
        }
    }
    Ok(snapshot)
}
