//! The CloudFront policy model and its exact JSON bytes.
//!
//! CloudFront verifies the signature over the bytes it receives (custom
//! policy) or over a policy it rebuilds from the URL (canned policy), so the
//! writer here is byte-exact: compact, one statement, keys in the order
//! Resource, Condition{DateLessThan, DateGreaterThan, IpAddress}.

use std::fmt::Write;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Deserialize;

use super::error::Error;

/// Epoch values at or above this are almost certainly milliseconds (year 5138).
const MAX_EPOCH_SECONDS: u64 = 100_000_000_000;

/// A validated CloudFront policy statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    resource: String,
    expires: u64,
    active: Option<u64>,
    source_ip: Option<Ipv4Net>,
}

/// Which policy form a signature is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyForm {
    /// Canned when the policy allows it (exact resource, expiry only), else custom.
    Auto,
    /// Always custom, e.g. for a signed URL whose resource differs from the URL.
    Custom,
}

impl PolicyForm {
    /// Whether a signature in this form over `policy` is a canned one, which
    /// CloudFront compares with the requested URL as it is; a custom one is
    /// read with `*` and `?` as wildcards.
    ///
    /// ```
    /// use cfmint_signer::{Policy, PolicyForm};
    ///
    /// let exact = Policy::builder("https://d.example/a?b").expires(2_000_000_000).build()?;
    /// assert!(PolicyForm::Auto.is_canned(&exact));
    /// assert!(!PolicyForm::Custom.is_canned(&exact));
    /// # Ok::<(), cfmint_signer::Error>(())
    /// ```
    pub fn is_canned(self, policy: &Policy) -> bool {
        self == Self::Auto && policy.fits_canned()
    }
}

impl Policy {
    /// Starts a policy for a resource: an exact URL or a pattern with `*` / `?`.
    pub fn builder(resource: impl Into<String>) -> PolicyBuilder {
        PolicyBuilder {
            resource: resource.into(),
            expires: None,
            active: None,
            source_ip: None,
        }
    }

    /// The resource URL or pattern.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// `DateLessThan`: the first second at which the policy no longer allows access.
    pub fn expires(&self) -> u64 {
        self.expires
    }

    /// `DateGreaterThan`: the first second at which access is allowed, if set.
    pub fn active(&self) -> Option<u64> {
        self.active
    }

    /// `IpAddress`: the viewer range, if set.
    pub fn source_ip(&self) -> Option<Ipv4Net> {
        self.source_ip
    }

    /// A canned policy carries only an expiry for one exact URL; anything more
    /// (a wildcard, a start time, an IP range) needs a custom policy.
    pub fn fits_canned(&self) -> bool {
        self.active.is_none() && self.source_ip.is_none() && !self.resource.contains('*')
    }

    /// The exact policy bytes CloudFront signs and verifies.
    pub fn to_json(&self) -> String {
        let ip = self.source_ip.map(|net| net.to_string());
        write_json(&self.resource, self.expires, self.active, ip.as_deref())
    }
}

/// Collects policy inputs; [`PolicyBuilder::build`] validates them together.
#[derive(Debug, Clone)]
pub struct PolicyBuilder {
    resource: String,
    expires: Option<u64>,
    active: Option<u64>,
    source_ip: Option<String>,
}

impl PolicyBuilder {
    /// Sets `DateLessThan` (epoch seconds). Required.
    pub fn expires(mut self, epoch_seconds: u64) -> Self {
        self.expires = Some(epoch_seconds);
        self
    }

    /// Sets `DateGreaterThan` (epoch seconds).
    pub fn active(mut self, epoch_seconds: u64) -> Self {
        self.active = Some(epoch_seconds);
        self
    }

    /// Sets `IpAddress` to an IPv4 CIDR such as `192.0.2.0/24`.
    pub fn source_ip(mut self, cidr: impl Into<String>) -> Self {
        self.source_ip = Some(cidr.into());
        self
    }

    /// Validates the inputs into a [`Policy`].
    pub fn build(self) -> Result<Policy, Error> {
        if self.resource.is_empty() {
            return Err(Error::policy("the policy resource is empty"));
        }
        if self.resource.chars().any(char::is_control) {
            return Err(Error::policy(
                "the policy resource contains control characters",
            ));
        }
        let expires = self.expires.ok_or_else(|| {
            Error::policy("an expiration (DateLessThan) is required for every policy")
        })?;
        check_epoch("expiration (DateLessThan)", expires)?;
        if let Some(active) = self.active {
            check_epoch("active time (DateGreaterThan)", active)?;
            if active >= expires {
                return Err(Error::policy(format!(
                    "the active time (DateGreaterThan {active}) must be before the expiration (DateLessThan {expires})"
                )));
            }
        }
        let source_ip = self.source_ip.as_deref().map(parse_cidr).transpose()?;
        Ok(Policy {
            resource: self.resource,
            expires,
            active: self.active,
            source_ip,
        })
    }
}

fn check_epoch(what: &str, value: u64) -> Result<(), Error> {
    if value == 0 {
        return Err(Error::policy(format!("the {what} must be after 1970")));
    }
    if value >= MAX_EPOCH_SECONDS {
        return Err(Error::policy(format!(
            "the {what} {value} is too large: epoch values are seconds, not milliseconds"
        )));
    }
    Ok(())
}

/// Parses an IPv4 CIDR strictly: no IPv6, no missing prefix, no host bits.
pub fn parse_cidr(text: &str) -> Result<Ipv4Net, Error> {
    let shown = text.escape_debug();
    let Some((addr, prefix)) = text.split_once('/') else {
        return Err(Error::policy(format!(
            "IP range \"{shown}\" is not a CIDR: write it as a.b.c.d/n (a.b.c.d/32 for one address)"
        )));
    };
    if addr.contains(':') {
        return Err(Error::policy(format!(
            "IP range \"{shown}\" is IPv6: CloudFront accepts only IPv4 ranges in IpAddress"
        )));
    }
    // Digits only and no leading zero, so "/08" or "/+8" are refused rather than read as /8.
    let canonical_prefix =
        prefix.bytes().all(|b| b.is_ascii_digit()) && (prefix == "0" || !prefix.starts_with('0'));
    let net = match (addr.parse::<Ipv4Addr>(), prefix.parse::<u8>()) {
        (Ok(addr), Ok(prefix)) if canonical_prefix => Ipv4Net::new(addr, prefix).ok(),
        _ => None,
    }
    .ok_or_else(|| {
        Error::policy(format!(
            "IP range \"{shown}\" is not a valid IPv4 CIDR (expected a.b.c.d/n with n from 0 to 32)"
        ))
    })?;
    if net.trunc() != net {
        return Err(Error::policy(format!(
            "IP range \"{shown}\" has bits set beyond its /{} prefix: did you mean {}?",
            net.prefix_len(),
            net.trunc()
        )));
    }
    Ok(net)
}

/// The policy CloudFront rebuilds for a canned signature on `url`.
pub(crate) fn canned_json(url: &str, expires: u64) -> String {
    write_json(url, expires, None, None)
}

/// Writes the policy JSON. Every string goes through a JSON string encoder,
/// so no input can add or change a key.
fn write_json(
    resource: &str,
    expires: u64,
    active: Option<u64>,
    source_ip: Option<&str>,
) -> String {
    let mut out = String::with_capacity(96 + resource.len());
    out.push_str(r#"{"Statement":[{"Resource":"#);
    push_json_string(&mut out, resource);
    out.push_str(r#","Condition":{"DateLessThan":{"AWS:EpochTime":"#);
    let _ = write!(out, "{expires}");
    out.push('}');
    if let Some(active) = active {
        out.push_str(r#","DateGreaterThan":{"AWS:EpochTime":"#);
        let _ = write!(out, "{active}");
        out.push('}');
    }
    if let Some(ip) = source_ip {
        out.push_str(r#","IpAddress":{"AWS:SourceIp":"#);
        push_json_string(&mut out, ip);
        out.push('}');
    }
    out.push_str("}}]}");
    out
}

fn push_json_string(out: &mut String, value: &str) {
    // serde_json's string encoder: escapes quotes, backslashes and control characters.
    let encoded = serde_json::to_string(value).unwrap_or_default();
    out.push_str(&encoded);
}

/// A policy as found in a cookie or URL, before any check against a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPolicy {
    /// `Resource`: the URL or pattern.
    pub resource: String,
    /// `DateLessThan`, epoch seconds.
    pub expires: u64,
    /// `DateGreaterThan`, epoch seconds, if present.
    pub active: Option<u64>,
    /// `IpAddress`, if present.
    pub source_ip: Option<Ipv4Net>,
}

/// Parses custom-policy JSON strictly: one statement, known keys only, no
/// duplicates, integer epoch seconds, a valid IPv4 CIDR.
pub fn parse(json: &[u8]) -> Result<ParsedPolicy, String> {
    let document: PolicyDocument = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    let [statement] = <[StatementDocument; 1]>::try_from(document.statement).map_err(|list| {
        format!(
            "the policy has {} statements; CloudFront takes exactly one",
            list.len()
        )
    })?;
    let condition = statement.condition;
    let source_ip = condition
        .ip_address
        .map(|ip| parse_cidr(&ip.source_ip).map_err(|e| e.to_string()))
        .transpose()?;
    Ok(ParsedPolicy {
        resource: statement.resource,
        expires: condition.date_less_than.epoch,
        active: condition.date_greater_than.map(|d| d.epoch),
        source_ip,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyDocument {
    #[serde(rename = "Statement")]
    statement: Vec<StatementDocument>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatementDocument {
    #[serde(rename = "Resource")]
    resource: String,
    #[serde(rename = "Condition")]
    condition: ConditionDocument,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConditionDocument {
    #[serde(rename = "DateLessThan")]
    date_less_than: EpochDocument,
    #[serde(rename = "DateGreaterThan")]
    date_greater_than: Option<EpochDocument>,
    #[serde(rename = "IpAddress")]
    ip_address: Option<IpDocument>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EpochDocument {
    #[serde(rename = "AWS:EpochTime")]
    epoch: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IpDocument {
    #[serde(rename = "AWS:SourceIp")]
    source_ip: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://d111111abcdef8.cloudfront.net";

    #[test]
    fn writes_compact_json_in_cloudfront_key_order() {
        let policy = Policy::builder(format!("{BASE}/*"))
            .expires(1767290400)
            .active(1767200000)
            .source_ip("10.0.0.0/8")
            .build()
            .unwrap();
        assert_eq!(
            policy.to_json(),
            r#"{"Statement":[{"Resource":"https://d111111abcdef8.cloudfront.net/*","Condition":{"DateLessThan":{"AWS:EpochTime":1767290400},"DateGreaterThan":{"AWS:EpochTime":1767200000},"IpAddress":{"AWS:SourceIp":"10.0.0.0/8"}}}]}"#
        );
    }

    #[test]
    fn the_writer_escapes_an_injected_ip_string_as_the_sdk_vector_expects() {
        // cfmint refuses this CIDR before it gets here; the writer must still be safe.
        let cases: serde_json::Value = serde_json::from_str(include_str!(
            "../tests/fixtures/cloudfront-sep/test-cases.json"
        ))
        .unwrap();
        let case = cases
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "json-injection-ip-range")
            .unwrap();
        let input = &case["input"];
        let json = write_json(
            input["resource"].as_str().unwrap(),
            input["expirationDate"].as_u64().unwrap(),
            None,
            input["ipRange"].as_str(),
        );
        assert_eq!(json, case["expected"]["policyJson"].as_str().unwrap());
    }

    #[test]
    fn control_characters_are_refused_in_resources() {
        let error = Policy::builder(format!("{BASE}/a\nb"))
            .expires(1767290400)
            .build()
            .unwrap_err();
        assert!(error.to_string().contains("control"));
    }

    #[test]
    fn wildcards_start_times_and_ip_ranges_need_a_custom_policy() {
        let exact = Policy::builder(format!("{BASE}/a.jpg?size=large")).expires(2_000_000_000);
        assert!(exact.clone().build().unwrap().fits_canned());
        assert!(!exact.clone().active(1).build().unwrap().fits_canned());
        assert!(!exact.source_ip("1.2.3.4/32").build().unwrap().fits_canned());
        let wildcard = Policy::builder(format!("{BASE}/*")).expires(2_000_000_000);
        assert!(!wildcard.build().unwrap().fits_canned());
    }

    #[test]
    fn cidrs_with_host_bits_are_refused_not_rewritten() {
        let error = parse_cidr("10.1.2.3/8").unwrap_err();
        assert!(error.to_string().contains("10.1.2.3/8"), "{error}");
        assert!(error.to_string().contains("10.0.0.0/8"), "{error}");
    }

    #[test]
    fn malformed_and_ipv6_cidrs_are_refused_by_name() {
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0/8",
            "10.0.0.0/08",
            "::1/128",
            "x/8",
            "10.0.0.0/",
        ] {
            let error = parse_cidr(bad).unwrap_err();
            assert!(error.to_string().contains(bad), "{bad}: {error}");
        }
        assert!(
            parse_cidr("::1/128")
                .unwrap_err()
                .to_string()
                .contains("IPv6")
        );
        assert_eq!(parse_cidr("0.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
    }

    #[test]
    fn millisecond_epochs_are_refused() {
        let error = Policy::builder(BASE)
            .expires(1_767_290_400_000)
            .build()
            .unwrap_err();
        assert!(error.to_string().contains("milliseconds"));
    }

    #[test]
    fn parse_reads_back_what_the_writer_wrote() {
        let policy = Policy::builder(format!("{BASE}/\"quoted\"/*"))
            .expires(1767290400)
            .active(1767200000)
            .source_ip("192.168.0.0/24")
            .build()
            .unwrap();
        let parsed = parse(policy.to_json().as_bytes()).unwrap();
        assert_eq!(parsed.resource, policy.resource());
        assert_eq!(parsed.expires, 1767290400);
        assert_eq!(parsed.active, Some(1767200000));
        assert_eq!(parsed.source_ip, policy.source_ip());
    }

    #[test]
    fn parse_refuses_extra_keys_duplicates_quoted_and_fractional_times() {
        let bad = [
            r#"{"Statement":[{"Resource":"x","Condition":{"DateLessThan":{"AWS:EpochTime":"1"}}}]}"#,
            r#"{"Statement":[{"Resource":"x","Condition":{"DateLessThan":{"AWS:EpochTime":1.5}}}]}"#,
            r#"{"Statement":[{"Resource":"x","Resource":"y","Condition":{"DateLessThan":{"AWS:EpochTime":1}}}]}"#,
            r#"{"Statement":[{"Resource":"x","Condition":{"DateLessThan":{"AWS:EpochTime":1}},"Extra":1}]}"#,
            r#"{"Statement":[]}"#,
            r#"{"Statement":[{"Resource":"x","Condition":{}}]}"#,
        ];
        for json in bad {
            assert!(parse(json.as_bytes()).is_err(), "{json}");
        }
    }
}
