//! The key ring as one JSON document, kept in an AWS Secrets Manager secret
//! or a file (`keys.secret_id`, `keys.ring_file`): which key signs, every
//! key CloudFront may still see (a private key in PEM or a KMS key id), and
//! the times `cfmint keys rotate` and `retire` go by.
//!
//! ```json
//! {
//!   "active": "K2JCJMDEHXQW5F",
//!   "keys": [
//!     { "id": "K2JCJMDEHXQW5F", "private_key": "-----BEGIN PRIVATE KEY-----\n…" },
//!     { "id": "K1T7DNE6BEXAMPLE", "kms_key_id": "arn:aws:kms:…", "type": "ecdsa",
//!       "inactive_since": "2026-12-01T10:00:00Z" }
//!   ]
//! }
//! ```

use std::fmt;
use std::time::SystemTime;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::config::{KeyEntry, KeyKind, KeyLocation};
use crate::signer::KeyPairId;

/// Every field name of the document, for messages.
const FIELDS: [&str; 10] = [
    "active",
    "keys",
    "next",
    "pending",
    "id",
    "private_key",
    "kms_key_id",
    "type",
    "inactive_since",
    "public_key",
];

// The document's values are not repeated in messages: a mangled document
// may have key material where an id or a time should be.
const NOT_AN_ID: &str = "not a key pair id (1-128 upper-case letters and digits)";
const EXAMPLE_TIME: &str = "2026-12-01T10:00:00Z";

/// Secrets Manager holds at most 64 KiB; a ring file is held to the same.
pub const MAX_DOCUMENT_BYTES: usize = 65_536;

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RingDocument {
    /// The key pair id that signs; one of `keys`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<String>,
    #[serde(default)]
    pub keys: Vec<RingKey>,
    /// The key a rotation under way makes active next: in the key group,
    /// not signing yet. Cleared when it becomes active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// A key made or taken by a rotation under way, not yet a CloudFront
    /// public key (so without a key pair id). `serve` ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingKey>,
}

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RingKey {
    /// The CloudFront key pair id (the public key's id).
    pub id: String,
    /// PKCS#8 or PKCS#1 PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<Zeroizing<String>>,
    /// A key id, alias or ARN in AWS KMS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// `rsa` or `ecdsa`: a key of another type is refused.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// When it stopped being the active key (RFC 3339). Its cookies stay
    /// valid for up to `mint.max_ttl` after this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inactive_since: Option<String>,
}

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingKey {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<Zeroizing<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// The SPKI PEM CloudFront is given; how an interrupted rotation finds
    /// the public key it already created.
    pub public_key: String,
}

// Never the key material.
impl fmt::Debug for RingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingKey")
            .field("id", &self.id)
            .field("kms_key_id", &self.kms_key_id)
            .field(
                "private_key",
                &self.private_key.as_ref().map(|_| "[redacted]"),
            )
            .field("inactive_since", &self.inactive_since)
            .finish()
    }
}

impl fmt::Debug for RingDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingDocument")
            .field("active", &self.active)
            .field("next", &self.next)
            .field("keys", &self.keys)
            .field("pending", &self.pending.as_ref().map(|p| &p.public_key))
            .finish()
    }
}

impl RingDocument {
    /// Parses and checks a document; the error names the field at fault.
    pub fn parse(text: &[u8]) -> Result<Self, String> {
        if text.len() > MAX_DOCUMENT_BYTES {
            return Err(format!(
                "the key ring is {} bytes, over the {MAX_DOCUMENT_BYTES} allowed",
                text.len()
            ));
        }
        // serde would take a struct's fields as an array too.
        if text.trim_ascii_start().first() != Some(&b'{') {
            return Err("the key ring must be a JSON object".to_owned());
        }
        let deserializer = &mut serde_json::Deserializer::from_slice(text);
        let document: Self = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            // A field name can be input too: the path is shown only when
            // every part of it is one of the document's own names.
            let path = e.path().to_string();
            let known = path.split(['.', '[', ']']).all(|part| {
                part.is_empty()
                    || part.bytes().all(|b| b.is_ascii_digit())
                    || FIELDS.contains(&part)
            });
            let path = if known { path } else { ".".to_owned() };
            let error = e.into_inner();
            // serde_json's message may quote the input: key material.
            let reason = match error.classify() {
                serde_json::error::Category::Data => unquoted(&error.to_string()),
                _ => format!(
                    "not JSON (line {}, column {})",
                    error.line(),
                    error.column()
                ),
            };
            if path == "." {
                reason
            } else {
                format!("{path}: {reason}")
            }
        })?;
        document.check()?;
        Ok(document)
    }

    /// Pretty JSON, as written to the store.
    pub fn to_json(&self) -> Zeroizing<String> {
        let mut text = serde_json::to_string_pretty(self).expect("a ring serialises");
        text.push('\n');
        Zeroizing::new(text)
    }

    fn check(&self) -> Result<(), String> {
        let mut ids = Vec::new();
        for (index, key) in self.keys.iter().enumerate() {
            let field = format!("keys[{index}]");
            let id = KeyPairId::new(&key.id).map_err(|_| format!("{field}.id: {NOT_AN_ID}"))?;
            if ids.contains(&id) {
                return Err(format!("{field}.id: {id} is listed twice"));
            }
            ids.push(id);
            match (&key.private_key, &key.kms_key_id) {
                (Some(_), None) | (None, Some(_)) => {}
                _ => {
                    return Err(format!(
                        "{field}: needs exactly one of private_key or kms_key_id"
                    ));
                }
            }
            if let Some(kind) = &key.kind
                && !matches!(kind.as_str(), "rsa" | "ecdsa")
            {
                return Err(format!("{field}.type: must be rsa or ecdsa"));
            }
            if let Some(since) = &key.inactive_since {
                parse_time(since).map_err(|_| {
                    format!(
                        "{field}.inactive_since: must be an RFC 3339 time such as {EXAMPLE_TIME}"
                    )
                })?;
            }
        }
        if let Some(active) = &self.active {
            KeyPairId::new(active).map_err(|_| format!("active: {NOT_AN_ID}"))?;
        }
        match &self.active {
            Some(active) if !self.keys.iter().any(|key| &key.id == active) => {
                Err(format!("active: {active} is not one of the keys"))
            }
            None if !self.keys.is_empty() => Err("active: no active key is named".to_owned()),
            _ => Ok(()),
        }?;
        if let Some(next) = &self.next {
            if !self.keys.iter().any(|key| &key.id == next) {
                return Err("next: not one of the keys".to_owned());
            }
            if self.active.as_ref() == Some(next) {
                return Err("next: is the active key already".to_owned());
            }
        }
        if let Some(pending) = &self.pending
            && pending.private_key.is_some() == pending.kms_key_id.is_some()
        {
            return Err("pending: needs exactly one of private_key or kms_key_id".to_owned());
        }
        Ok(())
    }

    /// The keys as configuration entries and the active key pair id, for
    /// the key ring `serve` signs with.
    pub fn entries(&self) -> Result<(Vec<KeyEntry>, KeyPairId), String> {
        let Some(active) = &self.active else {
            return Err("the key ring has no keys".to_owned());
        };
        let mut entries = Vec::new();
        for key in &self.keys {
            let id = KeyPairId::new(&key.id).map_err(|e| e.to_string())?;
            let location = match (&key.private_key, &key.kms_key_id) {
                (Some(pem), _) => KeyLocation::Inline(SecretString::from(pem.as_str())),
                (None, Some(key_id)) => {
                    if !cfg!(feature = "aws-kms") {
                        return Err(format!("key {id}: {}", crate::config::KMS_NOT_BUILT));
                    }
                    KeyLocation::Kms(key_id.clone())
                }
                (None, None) => unreachable!("checked when parsed"),
            };
            let kind = match key.kind.as_deref() {
                Some("rsa") => Some(KeyKind::Rsa),
                Some("ecdsa") => Some(KeyKind::Ecdsa),
                _ => None,
            };
            entries.push(KeyEntry { id, location, kind });
        }
        let active = KeyPairId::new(active).map_err(|e| e.to_string())?;
        Ok((entries, active))
    }

    pub fn key(&self, id: &str) -> Option<&RingKey> {
        self.keys.iter().find(|key| key.id == id)
    }
}

/// serde's message without the input it quotes (a field name or value
/// from the document, which may be key material): "unknown field `…`,
/// expected one of `active`, `keys`, `pending`" becomes "unknown field,
/// expected one of …". Names of missing fields are cfmint's own.
fn unquoted(message: &str) -> String {
    if message.starts_with("missing field") {
        return message.to_owned();
    }
    let (what, expected) = match message.split_once(", expected") {
        Some((what, expected)) => (what, Some(expected)),
        None => (message, None),
    };
    let what = what
        .split([':', '`', '"'])
        .next()
        .unwrap_or_default()
        .trim();
    match expected {
        Some(expected) => format!("{what}, expected{expected}"),
        None => what.to_owned(),
    }
}

/// An RFC 3339 time, as the document holds them.
pub fn parse_time(text: &str) -> Result<SystemTime, String> {
    humantime::parse_rfc3339(text).map_err(|e| format!("\"{text}\" is not an RFC 3339 time ({e})"))
}

pub fn format_time(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::RingDocument;

    const PEM: &str = "-----BEGIN PRIVATE KEY-----\\nMIIB\\n-----END PRIVATE KEY-----\\n";

    fn parse(text: &str) -> Result<RingDocument, String> {
        RingDocument::parse(text.as_bytes())
    }

    #[test]
    fn a_ring_round_trips_and_names_its_active_key() {
        let text = format!(
            r#"{{"active": "K2ABC", "keys": [
                {{"id": "K2ABC", "private_key": "{PEM}"}},
                {{"id": "K3DEF", "kms_key_id": "alias/cf", "type": "ecdsa",
                  "inactive_since": "2026-12-01T10:00:00Z"}}]}}"#
        );
        let ring = parse(&text).unwrap();
        let again = parse(&ring.to_json()).unwrap();
        assert_eq!(again.active.as_deref(), Some("K2ABC"));
        assert_eq!(again.keys.len(), 2);
        assert_eq!(again.keys[1].kind.as_deref(), Some("ecdsa"));
        assert!(
            !format!("{again:?}").contains("MIIB"),
            "Debug shows no key material"
        );
    }

    #[test]
    fn malformed_rings_are_refused_naming_the_field() {
        let cases = [
            ("[]", "must be a JSON object"),
            (r#"["K1", []]"#, "must be a JSON object"),
            (
                "{\"keys\": [], \"extra\": 1}",
                "unknown field, expected one of `active`",
            ),
            (
                r#"{"active": "K1", "keys": []}"#,
                "active: K1 is not one of the keys",
            ),
            (
                r#"{"keys": [{"id": "K1", "kms_key_id": "k"}]}"#,
                "active: no active key",
            ),
            (
                r#"{"active": "K1", "keys": [{"id": "K1"}]}"#,
                "keys[0]: needs exactly one",
            ),
            (
                r#"{"active": "K1", "keys": [{"id": "K1", "kms_key_id": "a", "private_key": "b"}]}"#,
                "keys[0]: needs exactly one",
            ),
            (
                r#"{"active": "K1", "keys": [{"id": "K 1", "kms_key_id": "a"}]}"#,
                "keys[0].id: not a key pair id",
            ),
            (
                r#"{"active": "K1", "keys": [{"id": "K1", "kms_key_id": "a"}, {"id": "K1", "kms_key_id": "b"}]}"#,
                "keys[1].id: K1 is listed twice",
            ),
            (
                r#"{"active": "K1", "keys": [{"id": "K1", "kms_key_id": "a", "type": "dsa"}]}"#,
                "keys[0].type",
            ),
            (
                r#"{"active": "K1", "keys": [{"id": "K1", "kms_key_id": "a", "inactive_since": "yesterday"}]}"#,
                "keys[0].inactive_since",
            ),
            (
                r#"{"keys": [], "pending": {"public_key": "x"}}"#,
                "pending: needs exactly one",
            ),
            (r#"{"keys": [{"id": 5}]}"#, "keys[0].id: invalid type"),
            (
                r#"{"active": "K1", "next": "K2", "keys": [{"id": "K1", "kms_key_id": "a"}]}"#,
                "next: not one of the keys",
            ),
            (
                r#"{"active": "K1", "next": "K1", "keys": [{"id": "K1", "kms_key_id": "a"}]}"#,
                "next: is the active key already",
            ),
            ("{\"keys\": [", "not JSON"),
        ];
        for (text, expected) in cases {
            let error = parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
        let huge = format!(
            "{{\"keys\": [], \"pending\": {{\"public_key\": \"{}\"}}}}",
            "x".repeat(70_000)
        );
        assert!(parse(&huge).unwrap_err().contains("over the 65536"));
    }

    #[test]
    fn parse_errors_never_echo_key_material() {
        let text =
            r#"{"active": "K1", "keys": [{"id": "K1", "private_key": -----BEGIN PRIVATE KEY-----"#;
        let error = parse(text).unwrap_err();
        assert!(!error.contains("PRIVATE"), "{error}");
        let text = r#"{"active": "K1", "keys": [{"id": "K1", "private_key": ["-----BEGIN PRIVATE KEY-----"]}]}"#;
        let error = parse(text).unwrap_err();
        assert!(!error.contains("PRIVATE"), "{error}");
    }
}
