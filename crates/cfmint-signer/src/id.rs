//! Key pair ids: the name CloudFront gives a public key in a key group.

use std::fmt;

use super::error::{Error, ErrorKind};

/// A CloudFront public key id such as `K2JCJMDEHXQW5F`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyPairId(String);

impl KeyPairId {
    /// Accepts 1–128 ASCII letters, digits, `-` or `_`: the id travels
    /// unescaped in cookies and query strings.
    pub fn new(id: &str) -> Result<Self, Error> {
        let valid = !id.is_empty()
            && id.len() <= 128
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(id.to_owned()))
        } else {
            Err(Error::new(
                ErrorKind::InvalidKeyRing,
                format!(
                    "key pair id \"{}\" is invalid: use 1-128 letters, digits, '-' or '_' (e.g. K2JCJMDEHXQW5F)",
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
