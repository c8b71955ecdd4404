//! A signed policy and the two ways it travels: as cookies and as query
//! parameters of a signed URL.

use super::backend::HashAlgorithm;
use super::encoding;
use super::error::{Error, ErrorKind};
use super::id::KeyPairId;
use super::query;

/// The custom policy, in CloudFront base64.
pub const COOKIE_POLICY: &str = "CloudFront-Policy";
/// The canned policy's expiry, in epoch seconds.
pub const COOKIE_EXPIRES: &str = "CloudFront-Expires";
/// The signature, in CloudFront base64.
pub const COOKIE_SIGNATURE: &str = "CloudFront-Signature";
/// The id of the public key that verifies the signature.
pub const COOKIE_KEY_PAIR_ID: &str = "CloudFront-Key-Pair-Id";
/// `SHA256` when the signature is over SHA-256; absent for SHA-1.
pub const COOKIE_HASH_ALGORITHM: &str = "CloudFront-Hash-Algorithm";

/// Every cookie cfmint may set, e.g. for clearing them all at logout.
pub const ALL_COOKIES: [&str; 5] = [
    COOKIE_POLICY,
    COOKIE_EXPIRES,
    COOKIE_SIGNATURE,
    COOKIE_KEY_PAIR_ID,
    COOKIE_HASH_ALGORITHM,
];

/// How the policy is carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyParam {
    /// Canned: CloudFront rebuilds the policy from the URL and this expiry.
    Canned {
        /// `DateLessThan`, epoch seconds.
        expires: u64,
    },
    /// Custom: the policy JSON in CloudFront base64.
    Custom {
        /// The policy JSON, encoded.
        encoded: String,
    },
}

/// The outcome of signing: everything CloudFront needs, already encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPolicy {
    key_pair_id: KeyPairId,
    hash: HashAlgorithm,
    policy: PolicyParam,
    expires: u64,
    signature: String,
}

impl SignedPolicy {
    pub(crate) fn new(
        key_pair_id: KeyPairId,
        hash: HashAlgorithm,
        custom_json: Option<&str>,
        expires: u64,
        signature: &[u8],
    ) -> Self {
        let policy = match custom_json {
            Some(json) => PolicyParam::Custom {
                encoded: encoding::encode(json.as_bytes()),
            },
            None => PolicyParam::Canned { expires },
        };
        Self {
            key_pair_id,
            hash,
            policy,
            expires,
            signature: encoding::encode(signature),
        }
    }

    /// The id of the key that signed.
    pub fn key_pair_id(&self) -> &KeyPairId {
        &self.key_pair_id
    }

    /// The digest the signature is over.
    pub fn hash(&self) -> HashAlgorithm {
        self.hash
    }

    /// The policy as it travels: canned expiry or encoded custom policy.
    pub fn policy(&self) -> &PolicyParam {
        &self.policy
    }

    /// The policy's `DateLessThan`.
    pub fn expires(&self) -> u64 {
        self.expires
    }

    /// The signature in CloudFront base64.
    pub fn signature(&self) -> &str {
        &self.signature
    }

    /// True for a custom policy.
    pub fn is_custom(&self) -> bool {
        matches!(self.policy, PolicyParam::Custom { .. })
    }

    /// The cookies to set, in order: Policy or Expires, Signature,
    /// Key-Pair-Id, and Hash-Algorithm for SHA-256.
    pub fn cookies(&self) -> Vec<(&'static str, String)> {
        self.pairs(
            [
                COOKIE_POLICY,
                COOKIE_EXPIRES,
                COOKIE_SIGNATURE,
                COOKIE_KEY_PAIR_ID,
            ],
            COOKIE_HASH_ALGORITHM,
        )
    }

    /// The cookies as a browser sends them back: `A=b; C=d`.
    pub fn cookie_header(&self) -> String {
        let cookies: Vec<String> = self
            .cookies()
            .into_iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        cookies.join("; ")
    }

    /// The query parameters of a signed URL, in the order AWS's signers use.
    pub fn query_params(&self) -> Vec<(&'static str, String)> {
        self.pairs(
            ["Policy", "Expires", "Signature", "Key-Pair-Id"],
            "Hash-Algorithm",
        )
    }

    fn pairs(
        &self,
        names: [&'static str; 4],
        hash_name: &'static str,
    ) -> Vec<(&'static str, String)> {
        let [policy_name, expires_name, signature_name, id_name] = names;
        let mut pairs = Vec::with_capacity(4);
        pairs.push(match &self.policy {
            PolicyParam::Custom { encoded } => (policy_name, encoded.clone()),
            PolicyParam::Canned { expires } => (expires_name, expires.to_string()),
        });
        pairs.push((signature_name, self.signature.clone()));
        pairs.push((id_name, self.key_pair_id.to_string()));
        if self.hash != HashAlgorithm::Sha1 {
            pairs.push((hash_name, self.hash.cloudfront_name().to_owned()));
        }
        pairs
    }

    /// Appends the signing parameters to `url`, keeping its own query
    /// parameters. The URL must be absolute http(s), without a fragment or
    /// signing parameters of its own.
    pub fn apply_to_url(&self, url: &str) -> Result<String, Error> {
        check_url(url)?;
        let mut signed = String::with_capacity(url.len() + 400);
        signed.push_str(url);
        let mut separator = if url.contains('?') { '&' } else { '?' };
        for (name, value) in self.query_params() {
            signed.push(separator);
            signed.push_str(name);
            signed.push('=');
            signed.push_str(&value);
            separator = '&';
        }
        Ok(signed)
    }
}

/// Refuses URLs that CloudFront could not match against a signature.
pub fn check_url(url: &str) -> Result<(), Error> {
    let invalid = |why: &str| {
        Err(Error::new(
            ErrorKind::InvalidUrl,
            format!("URL \"{}\" {why}", url.escape_debug()),
        ))
    };
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return invalid("is not an absolute http:// or https:// URL");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return invalid("contains spaces or control characters; percent-encode them");
    }
    if url.contains('#') {
        return invalid("has a #fragment, which browsers never send");
    }
    if let Some((name, _)) = query::split(url).params.first() {
        return invalid(&format!("already carries the signing parameter {name}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(hash: HashAlgorithm, custom: Option<&str>) -> SignedPolicy {
        SignedPolicy::new(
            KeyPairId::new("K1").unwrap(),
            hash,
            custom,
            1767290400,
            &[0xfb, 0xff],
        )
    }

    #[test]
    fn canned_cookies_carry_expires_and_no_policy() {
        let names: Vec<_> = signed(HashAlgorithm::Sha1, None)
            .cookies()
            .into_iter()
            .collect();
        assert_eq!(
            names,
            [
                (COOKIE_EXPIRES, "1767290400".to_owned()),
                (COOKIE_SIGNATURE, "-~8_".to_owned()),
                (COOKIE_KEY_PAIR_ID, "K1".to_owned()),
            ]
        );
    }

    #[test]
    fn sha256_adds_the_hash_algorithm_cookie_and_parameter() {
        let signed = signed(HashAlgorithm::Sha256, Some("{}"));
        assert!(
            signed
                .cookies()
                .contains(&(COOKIE_HASH_ALGORITHM, "SHA256".to_owned()))
        );
        let url = signed.apply_to_url("https://d.example/a").unwrap();
        assert_eq!(
            url,
            "https://d.example/a?Policy=e30_&Signature=-~8_&Key-Pair-Id=K1&Hash-Algorithm=SHA256"
        );
    }

    #[test]
    fn urls_that_cannot_be_signed_are_refused_by_name() {
        let signed = signed(HashAlgorithm::Sha1, None);
        for url in [
            "/relative",
            "ftp://d.example/a",
            "https://d.example/a b",
            "https://d.example/a#frag",
            "https://d.example/a?Signature=x",
        ] {
            let error = signed.apply_to_url(url).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidUrl);
            assert!(error.to_string().contains(url), "{error}");
        }
    }
}
