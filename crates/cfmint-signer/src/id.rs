//! Key pair ids: the name CloudFront gives a public key in a key group.

use std::fmt;

use super::error::{Error, ErrorKind};

/// A CloudFront public key id such as `K2JCJMDEHXQW5F`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyPairId(String);

impl KeyPairId {
    /// Accepts 1–128 upper-case ASCII letters and digits, the form
    /// CloudFront gives every public key id (`K…`) and legacy key pair id
    /// (`APKA…`): CloudFront compares ids exactly, so any other id names no
    /// key it has, and signs nothing it would accept.
    pub fn new(id: &str) -> Result<Self, Error> {
        let valid = !id.is_empty()
            && id.len() <= 128
            && id
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if valid {
            Ok(Self(id.to_owned()))
        } else {
            let hint = if id.bytes().any(|b| b.is_ascii_lowercase()) {
                format!(": did you mean {}?", id.to_ascii_uppercase().escape_debug())
            } else {
                String::new()
            };
            Err(Error::new(
                ErrorKind::InvalidKeyRing,
                format!(
                    "key pair id \"{}\" is invalid: CloudFront's ids are 1-128 upper-case \
                     letters and digits, like K2JCJMDEHXQW5F{hint}",
                    id.escape_debug()
                ),
            ))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyPairId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
