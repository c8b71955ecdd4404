//! cfmint's own short-lived token for players that carry neither a cookie
//! nor a header: `?token=` on `/playlists/...` URLs. It names who minted it
//! (the identity, so grants and the authorization callback apply at every
//! fetch), what it covers (the path granted at `/mint`) and until when,
//! under an HMAC-SHA256 with `playlists.token_secret`, which every replica
//! shares.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde::{Deserialize, Serialize};

use crate::auth::Identity;
use crate::auth::path::Match;

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// The identity as a session keeps it.
    pub id: String,
    /// The path granted: the playlists and everything they sign must lie
    /// within it.
    pub path: String,
    #[serde(rename = "match")]
    pub shape: Match,
    /// Epoch seconds.
    pub exp: u64,
}

impl Claims {
    /// Whether `path` lies within the granted path.
    pub fn covers(&self, path: &str) -> bool {
        match self.shape {
            Match::Exact => path == self.path,
            Match::Folder | Match::Prefix => path.starts_with(&self.path),
        }
    }

    pub fn identity(&self) -> Option<Identity> {
        Identity::from_session(&self.id)
    }
}

/// Why a token was refused. The message never repeats the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the playlist token is malformed")]
    Malformed,
    #[error("the playlist token's signature does not match")]
    BadSignature,
    #[error("the playlist token has expired")]
    Expired,
}

/// Label separating these MACs from any other use of the key.
const CONTEXT: &[u8] = b"cfmint-playlist-token-v1.";

/// Issues and checks tokens with one key.
#[derive(Clone)]
pub struct Tokens {
    key: hmac::Key,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens")
    }
}

impl Tokens {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// `payload.mac`, both unpadded base64url: safe in a query string.
    pub fn issue(&self, claims: &Claims) -> String {
        let json = serde_json::to_vec(claims).expect("claims always serialize");
        let payload = URL_SAFE_NO_PAD.encode(json);
        let mac = hmac::sign(&self.key, &[CONTEXT, payload.as_bytes()].concat());
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()))
    }

    /// The claims of a token this key issued that has not expired at `now`.
    pub fn check(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        let (payload, mac) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| TokenError::Malformed)?;
        hmac::verify(&self.key, &[CONTEXT, payload.as_bytes()].concat(), &mac)
            .map_err(|_| TokenError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        if now >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Method;

    fn claims(exp: u64) -> Claims {
        Claims {
            id: Identity::new("alice".into(), Method::Users).to_session(),
            path: "/audiobooks/42/".into(),
            shape: Match::Folder,
            exp,
        }
    }

    #[test]
    fn a_token_round_trips_until_it_expires() {
        let tokens = Tokens::new(b"0123456789abcdef0123456789abcdef");
        let token = tokens.issue(&claims(1_000));
        assert!(!token.contains(['+', '/', '=', '&', '?', '#']));
        assert_eq!(tokens.check(&token, 999), Ok(claims(1_000)));
        assert_eq!(tokens.check(&token, 1_000), Err(TokenError::Expired));
        let identity = tokens.check(&token, 0).unwrap().identity().unwrap();
        assert_eq!(identity.sub, "alice");
    }

    #[test]
    fn another_key_a_changed_payload_or_garbage_is_refused() {
        let tokens = Tokens::new(b"0123456789abcdef0123456789abcdef");
        let token = tokens.issue(&claims(1_000));
        let other = Tokens::new(b"fedcba9876543210fedcba9876543210");
        assert_eq!(other.check(&token, 0), Err(TokenError::BadSignature));
        let (payload, mac) = token.split_once('.').unwrap();
        let mut widened = claims(1_000);
        widened.path = "/".into();
        let forged = tokens.issue(&widened);
        let (forged_payload, _) = forged.split_once('.').unwrap();
        assert_ne!(forged_payload, payload);
        assert_eq!(
            tokens.check(&format!("{forged_payload}.{mac}"), 0),
            Err(TokenError::BadSignature)
        );
        for garbage in ["", ".", "abc", "a.b.c", "!!.??", &format!("{payload}.")] {
            assert!(tokens.check(garbage, 0).is_err(), "{garbage:?}");
        }
    }

    #[test]
    fn the_granted_path_bounds_what_a_token_covers() {
        let folder = claims(1);
        assert!(folder.covers("/audiobooks/42/720p/index.m3u8"));
        assert!(!folder.covers("/audiobooks/420/index.m3u8"));
        assert!(!folder.covers("/audiobooks/4"));
        let exact = Claims {
            path: "/a/index.m3u8".into(),
            shape: Match::Exact,
            ..claims(1)
        };
        assert!(exact.covers("/a/index.m3u8"));
        assert!(!exact.covers("/a/index.m3u8x"));
    }
}
