//! Crypto backends behind one small trait pair: [`SigningKey`] and
//! [`VerifyingKey`]. `openssl` is the production default; `rustcrypto` is
//! pure Rust for builds that cannot link OpenSSL (see docs/configuration.md on
//! RUSTSEC-2023-0071). Both may be compiled in at once and agree byte for byte.

#[cfg(feature = "openssl")]
mod openssl;
#[cfg(feature = "rustcrypto")]
mod rustcrypto;

#[cfg(not(any(feature = "openssl", feature = "rustcrypto")))]
compile_error!("enable a crypto backend: the `openssl` (default) or `rustcrypto` feature");

use std::fmt;
use std::str::FromStr;

use zeroize::Zeroizing;

use super::error::Error;
use super::pem::{PrivateDer, PublicDer};

/// The digest signed over the policy bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HashAlgorithm {
    /// CloudFront's default; no `Hash-Algorithm` parameter is sent.
    #[default]
    Sha1,
    /// Announced with `Hash-Algorithm=SHA256` / `CloudFront-Hash-Algorithm=SHA256`.
    Sha256,
}

impl HashAlgorithm {
    /// The value CloudFront uses in `Hash-Algorithm`.
    pub fn cloudfront_name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
        }
    }

    /// Reads a `Hash-Algorithm` value.
    pub fn from_cloudfront_name(name: &str) -> Option<Self> {
        match name {
            "SHA1" => Some(Self::Sha1),
            "SHA256" => Some(Self::Sha256),
            _ => None,
        }
    }
}

/// What a key is, as CloudFront sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// RSA, PKCS#1 v1.5 signatures.
    Rsa {
        /// The modulus size: 2048 for CloudFront key groups.
        bits: u32,
    },
    /// ECDSA on P-256, DER signatures.
    EcdsaP256,
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rsa { bits } => write!(f, "RSA-{bits}"),
            Self::EcdsaP256 => f.write_str("ECDSA P-256"),
        }
    }
}

/// A key to generate with [`Backend::generate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    /// RSA of this many bits (CloudFront key groups take 2048).
    Rsa {
        /// The modulus size.
        bits: u32,
    },
    /// ECDSA on P-256.
    EcdsaP256,
}

/// A freshly generated key pair in PEM: PKCS#8 private, SPKI public.
pub struct GeneratedKey {
    /// The private key as PKCS#8 PEM, wiped on drop.
    pub private_pem: Zeroizing<String>,
    /// The public key as SPKI PEM, the form CloudFront's console takes.
    pub public_pem: String,
}

/// A parsed private key, ready to sign. Parsed once, shared across threads.
pub trait SigningKey: Send + Sync {
    /// The key's type and size.
    fn algorithm(&self) -> KeyAlgorithm;
    /// Signs `message` (the policy bytes): PKCS#1 v1.5 for RSA, DER for ECDSA.
    fn sign(&self, hash: HashAlgorithm, message: &[u8]) -> Result<Vec<u8>, Error>;
    /// The matching public key.
    fn verifying_key(&self) -> Result<Box<dyn VerifyingKey>, Error>;
}

/// A public key that checks signatures the way CloudFront does.
pub trait VerifyingKey: Send + Sync {
    /// The key's type and size.
    fn algorithm(&self) -> KeyAlgorithm;
    /// True when `signature` is a valid signature of `message` with `hash`.
    fn verify(&self, hash: HashAlgorithm, message: &[u8], signature: &[u8]) -> bool;
    /// The key as SPKI PEM, the form CloudFront's console takes.
    fn to_pem(&self) -> Result<String, Error>;
}

/// Which crypto library does the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The system OpenSSL through the `openssl` crate.
    #[cfg(feature = "openssl")]
    OpenSsl,
    /// `rsa` (with blinding), `p256`, `sha1`, `sha2`.
    #[cfg(feature = "rustcrypto")]
    RustCrypto,
}

impl Backend {
    /// Every backend compiled into this build, the default first.
    pub const ALL: &'static [Backend] = &[
        #[cfg(feature = "openssl")]
        Backend::OpenSsl,
        #[cfg(feature = "rustcrypto")]
        Backend::RustCrypto,
    ];

    /// The name used on the command line and in logs.
    pub fn name(self) -> &'static str {
        match self {
            #[cfg(feature = "openssl")]
            Self::OpenSsl => "openssl",
            #[cfg(feature = "rustcrypto")]
            Self::RustCrypto => "rustcrypto",
        }
    }

    pub(crate) fn load_private(self, der: &PrivateDer) -> Result<Box<dyn SigningKey>, Error> {
        match self {
            #[cfg(feature = "openssl")]
            Self::OpenSsl => openssl::load_private(der),
            #[cfg(feature = "rustcrypto")]
            Self::RustCrypto => rustcrypto::load_private(der),
        }
    }

    pub(crate) fn load_public(self, der: &PublicDer) -> Result<Box<dyn VerifyingKey>, Error> {
        match self {
            #[cfg(feature = "openssl")]
            Self::OpenSsl => openssl::load_public(der),
            #[cfg(feature = "rustcrypto")]
            Self::RustCrypto => rustcrypto::load_public(der),
        }
    }

    /// Loads a public key from DER: SubjectPublicKeyInfo (`spki`) or a
    /// PKCS#1 `RSAPublicKey`. Key stores hand their public keys over so.
    #[cfg_attr(not(any(feature = "aws-kms", feature = "pkcs11")), allow(dead_code))]
    pub(crate) fn load_public_der(
        self,
        der: Vec<u8>,
        spki: bool,
    ) -> Result<Box<dyn VerifyingKey>, Error> {
        let der = if spki {
            PublicDer::Spki(der)
        } else {
            PublicDer::Pkcs1(der)
        };
        self.load_public(&der)
    }

    /// The digest of `message`, for key stores that sign a digest.
    #[cfg_attr(not(feature = "pkcs11"), allow(dead_code))]
    pub(crate) fn digest(self, hash: HashAlgorithm, message: &[u8]) -> Vec<u8> {
        match self {
            #[cfg(feature = "openssl")]
            Self::OpenSsl => openssl::digest_of(hash, message),
            #[cfg(feature = "rustcrypto")]
            Self::RustCrypto => rustcrypto::digest_of(hash, message),
        }
    }

    /// Generates a new key pair.
    pub fn generate(self, spec: KeySpec) -> Result<GeneratedKey, Error> {
        match self {
            #[cfg(feature = "openssl")]
            Self::OpenSsl => openssl::generate(spec),
            #[cfg(feature = "rustcrypto")]
            Self::RustCrypto => rustcrypto::generate(spec),
        }
    }
}

impl Default for Backend {
    fn default() -> Self {
        Self::ALL[0]
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|backend| backend.name() == name)
            .ok_or_else(|| {
                let known: Vec<_> = Self::ALL.iter().map(|b| b.name()).collect();
                format!(
                    "unknown or not compiled-in backend \"{name}\" (this build has: {})",
                    known.join(", ")
                )
            })
    }
}
