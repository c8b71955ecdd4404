//! Amazon CloudFront signed cookies and signed URLs: policies written byte
//! for byte as CloudFront reads them, RSA and ECDSA P-256 signatures over
//! SHA-1 or SHA-256, and a verifier that says why a request would be denied.
//!
//! Sign cookies for a folder:
//!
//! ```
//! use cfmint_signer::{CookieAttributes, HashAlgorithm, KeyPairId, Policy, PolicyForm, PrivateKey, Resource};
//!
//! let id = KeyPairId::new("K2JCJMDEHXQW5F")?;
//! let key = PrivateKey::from_file(id, "tests/fixtures/cloudfront-sep/test-rsa-key.pem", Default::default())?;
//! let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
//! let resource = Resource::folder("https://cdn.example.com", "/videos/42/")?;
//! let policy = Policy::builder(resource).expires(now + 3600).build()?;
//! let signed = key.sign(&policy, PolicyForm::Auto, HashAlgorithm::Sha256)?;
//! for header in CookieAttributes::new().domain("example.com")?.set_cookies(&signed, Some(3600)) {
//!     println!("Set-Cookie: {header}");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What is here
//!
//! - **Keys** ([`PrivateKey`], [`PublicKey`]) from PEM files, environment
//!   variables or bytes: PKCS#1, PKCS#8 and SEC1, with `\n` escapes accepted;
//!   encrypted keys are refused by name. A [`KeyRing`] signs with one active
//!   key among several; [`PublicKeys`] is a CloudFront key group.
//! - **Policies** ([`Policy`]): canned or custom, for an exact URL, a folder,
//!   a prefix ([`Resource`]) or any wildcard pattern, with an optional start
//!   time and IPv4 range.
//! - **Signing** to cookies ([`SignedPolicy::cookies`], and `Set-Cookie`
//!   values through [`CookieAttributes`]) and to signed URLs
//!   ([`SignedPolicy::apply_to_url`]).
//! - **Verification** ([`verify`]) the way CloudFront does it, with a
//!   [`Denial`] naming the reason when a request would get a 403.
//! - CloudFront's base64 ([`encode_base64`], [`decode_base64`]).
//!
//! # Backends
//!
//! The `openssl` feature (default) signs with the system OpenSSL. The
//! `rustcrypto` feature signs in pure Rust (`rsa`, `p256`); the `rsa` crate
//! carries RUSTSEC-2023-0071, a timing side channel in private-key
//! operations, so prefer OpenSSL where it can be linked. Both may be enabled
//! at once; [`Backend`] chooses, and they agree byte for byte.
//!
//! Private key material is decoded with constant-time base64
//! (`pem-rfc7468`), kept in buffers wiped on drop, and never printed: the
//! `Debug` forms show the key pair id, the algorithm and where the key came
//! from.

#![deny(missing_docs)]

mod backend;
mod cookies;
mod encoding;
mod error;
mod id;
mod keys;
mod pem;
mod policy;
mod query;
pub mod remote;
mod resource;
mod sign;
mod verify;
mod wildcard;

pub use backend::{
    Backend, GeneratedKey, HashAlgorithm, KeyAlgorithm, KeySpec, SigningKey, VerifyingKey,
};
pub use cookies::CookieAttributes;
pub use encoding::{decode as decode_base64, encode as encode_base64};
pub use error::{Error, ErrorKind};
pub use id::KeyPairId;
pub use keys::{
    KeyRing, KeySource, MAX_KEY_GROUP_SIZE, PrivateKey, PublicKey, PublicKeys, RSA_BITS, Remote,
};
pub use policy::{
    ParsedPolicy, Policy, PolicyBuilder, PolicyForm, parse as parse_policy, parse_cidr,
};
pub use query::{SIGNING_PARAMS, SplitUrl, split as split_signing_params};
pub use resource::{Resource, check_path};
pub use sign::{
    ALL_COOKIES, COOKIE_EXPIRES, COOKIE_HASH_ALGORITHM, COOKIE_KEY_PAIR_ID, COOKIE_POLICY,
    COOKIE_SIGNATURE, PolicyParam, SignedPolicy, check_url,
};
pub use verify::{
    CredentialSource, Denial, DenialKind, Inspection, Verdict, ViewerRequest, verify,
};
pub use wildcard::matches as wildcard_matches;
