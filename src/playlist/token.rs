//! cfmint's own short-lived token for players that carry neither a cookie
//! nor a header: `?token=` on `/playlists/...` URLs. It carries who minted
//! it (the identity, so grants and the authorization callback apply at
//! every fetch), what it covers (the path granted at `/mint`) and until
//! when, sealed with ChaCha20-Poly1305 under a key derived from
//! `playlists.token_secret`, which every replica shares. It travels in
//! URLs (CDN and proxy logs, `Referer`), so it is opaque: neither the
//! subject nor the paths can be read from it, and any change is refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
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

    /// What the token covers as a grant pattern, for the grant proof.
    pub fn pattern(&self) -> String {
        match self.shape {
            Match::Exact => self.path.clone(),
            Match::Folder | Match::Prefix => format!("{}*", self.path),
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

/// Label separating this key and these tokens from any other use of the
/// secret; authenticated with every token.
const CONTEXT: &[u8] = b"cfmint-playlist-token-v2";

/// Issues and checks tokens with one key.
pub struct Tokens {
    key: LessSafeKey,
    random: SystemRandom,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens")
    }
}

impl Tokens {
    /// The sealing key: HMAC-SHA256 of the label under the secret.
    pub fn new(secret: &[u8]) -> Self {
        let derived = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), CONTEXT);
        let key = UnboundKey::new(&CHACHA20_POLY1305, derived.as_ref())
            .expect("HMAC-SHA256 gives a 32-byte key");
        Self {
            key: LessSafeKey::new(key),
            random: SystemRandom::new(),
        }
    }

    /// A random nonce and the sealed claims, unpadded base64url: safe in a
    /// query string, and different every time.
    pub fn issue(&self, claims: &Claims) -> String {
        let mut sealed = serde_json::to_vec(claims).expect("claims always serialize");
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .expect("the system's random source works");
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(CONTEXT),
                &mut sealed,
            )
            .expect("a playlist token is far below the cipher's limit");
        URL_SAFE_NO_PAD.encode([&nonce[..], &sealed].concat())
    }

    /// The claims of a token this key issued that has not expired at `now`.
    pub fn check(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        let mut bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| TokenError::Malformed)?;
        if bytes.len() < NONCE_LEN + CHACHA20_POLY1305.tag_len() {
            return Err(TokenError::Malformed);
        }
        let (nonce, sealed) = bytes.split_at_mut(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| TokenError::Malformed)?;
        let json = self
            .key
            .open_in_place(nonce, Aad::from(CONTEXT), sealed)
            .map_err(|_| TokenError::BadSignature)?;
        let claims: Claims = serde_json::from_slice(json).map_err(|_| TokenError::Malformed)?;

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
    fn another_key_a_changed_byte_or_garbage_is_refused() {
        let tokens = Tokens::new(b"0123456789abcdef0123456789abcdef");
        let token = tokens.issue(&claims(1_000));
        let other = Tokens::new(b"fedcba9876543210fedcba9876543210");
        assert_eq!(other.check(&token, 0), Err(TokenError::BadSignature));
        let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for at in [0, NONCE_LEN, bytes.len() / 2, bytes.len() - 1] {
            let mut changed = bytes.clone();
            changed[at] ^= 1;
            assert_eq!(
                tokens.check(&URL_SAFE_NO_PAD.encode(&changed), 0),
                Err(TokenError::BadSignature),
                "byte {at}"
            );
        }
        let short = URL_SAFE_NO_PAD.encode(&bytes[..NONCE_LEN + 15]);
        for garbage in ["", ".", "abc", "a.b.c", "!!.??", &short] {
            assert!(tokens.check(garbage, 0).is_err(), "{garbage:?}");
        }
    }

    #[test]
    fn a_token_shows_neither_the_subject_nor_the_path() {
        let tokens = Tokens::new(b"0123456789abcdef0123456789abcdef");
        let token = tokens.issue(&claims(1_000));
        assert_ne!(
            token,
            tokens.issue(&claims(1_000)),
            "a fresh nonce each time"
        );
        let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for readable in ["alice", "audiobooks", "sub", "match"] {
            let needle = readable.as_bytes();
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{readable} readable in the token"
            );
            assert!(!token.contains(readable));
        }
    }

    #[test]
    fn a_token_is_a_grant_pattern_for_the_proof_and_hides_its_key() {
        assert_eq!(claims(1).pattern(), "/audiobooks/42/*");
        let prefix = Claims {
            path: "/a/chapter1".into(),
            shape: Match::Prefix,
            ..claims(1)
        };
        assert_eq!(prefix.pattern(), "/a/chapter1*");
        let exact = Claims {
            path: "/a/index.m3u8".into(),
            shape: Match::Exact,
            ..claims(1)
        };
        assert_eq!(exact.pattern(), "/a/index.m3u8");
        let tokens = Tokens::new(b"0123456789abcdef0123456789abcdef");
        assert_eq!(format!("{tokens:?}"), "Tokens");
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
