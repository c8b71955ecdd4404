//! The pure-Rust backend: `rsa` (signing with blinding), `p256`, `sha1`, `sha2`.
//! `rsa` carries the unpatched timing advisory RUSTSEC-2023-0071, which is why
//! this backend is opt-in.

use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use pkcs8::der::asn1::ObjectIdentifier;
use rand_core::OsRng;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha1::{Digest, Sha1};
use sha2::Sha256;

use super::{GeneratedKey, HashAlgorithm, KeyAlgorithm, KeySpec, SigningKey, VerifyingKey};
use crate::error::Error;
use crate::pem::{PrivateDer, PublicDer};

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

#[allow(clippy::large_enum_variant, reason = "always boxed as dyn SigningKey")]
enum PrivateKey {
    Rsa(RsaPrivateKey),
    P256(p256::ecdsa::SigningKey),
}

enum PublicKey {
    Rsa(RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
}

/// The policy digest and the matching PKCS#1 v1.5 padding scheme.
pub(super) fn digest_of(hash: HashAlgorithm, message: &[u8]) -> Vec<u8> {
    digest(hash, message).0
}

fn digest(hash: HashAlgorithm, message: &[u8]) -> (Vec<u8>, Pkcs1v15Sign) {
    match hash {
        HashAlgorithm::Sha1 => (Sha1::digest(message).to_vec(), Pkcs1v15Sign::new::<Sha1>()),
        HashAlgorithm::Sha256 => (
            Sha256::digest(message).to_vec(),
            Pkcs1v15Sign::new::<Sha256>(),
        ),
    }
}

fn rsa_bits(key: &impl PublicKeyParts) -> KeyAlgorithm {
    KeyAlgorithm::Rsa {
        bits: u32::try_from(key.n().bits()).unwrap_or(u32::MAX),
    }
}

fn curve_error(curve: Option<ObjectIdentifier>) -> Error {
    match curve {
        Some(oid) => Error::key(format!(
            "ECDSA key on curve {oid}; CloudFront takes P-256 (prime256v1) only"
        )),
        None => Error::key("ECDSA key without a named curve; use a named P-256 key"),
    }
}

fn unsupported(oid: ObjectIdentifier) -> Error {
    Error::key(format!(
        "unsupported key type (algorithm {oid}); CloudFront takes RSA or ECDSA P-256 keys"
    ))
}

fn checked_rsa(key: RsaPrivateKey) -> Result<PrivateKey, Error> {
    key.validate()
        .map_err(|_| Error::key("the private key fails its consistency check (corrupted?)"))?;
    Ok(PrivateKey::Rsa(key))
}

pub(super) fn load_private(der: &PrivateDer) -> Result<Box<dyn SigningKey>, Error> {
    let key = match der {
        PrivateDer::Pkcs1(der) => checked_rsa(
            RsaPrivateKey::from_pkcs1_der(der)
                .map_err(|_| Error::key("not a valid PKCS#1 RSA private key"))?,
        )?,
        PrivateDer::Pkcs8(der) => {
            let info = pkcs8::PrivateKeyInfo::try_from(der.as_slice())
                .map_err(|_| Error::key("not a valid PKCS#8 private key"))?;
            match info.algorithm.oid {
                RSA_ENCRYPTION => checked_rsa(
                    RsaPrivateKey::from_pkcs8_der(der)
                        .map_err(|_| Error::key("not a valid PKCS#8 RSA private key"))?,
                )?,
                EC_PUBLIC_KEY => {
                    let curve = info.algorithm.parameters_oid().ok();
                    if curve != Some(PRIME256V1) {
                        return Err(curve_error(curve));
                    }
                    PrivateKey::P256(
                        p256::ecdsa::SigningKey::from_pkcs8_der(der)
                            .map_err(|_| Error::key("not a valid PKCS#8 P-256 private key"))?,
                    )
                }
                other => return Err(unsupported(other)),
            }
        }
        PrivateDer::Sec1(der) => {
            let parsed = sec1::EcPrivateKey::try_from(der.as_slice())
                .map_err(|_| Error::key("not a valid SEC1 EC private key"))?;
            let curve = parsed.parameters.and_then(|p| p.named_curve());
            if curve.is_some_and(|oid| oid != PRIME256V1) {
                return Err(curve_error(curve));
            }
            let secret = p256::SecretKey::from_sec1_der(der)
                .map_err(|_| Error::key("not a valid SEC1 P-256 private key"))?;
            PrivateKey::P256(secret.into())
        }
    };
    Ok(Box::new(key))
}

pub(super) fn load_public(der: &PublicDer) -> Result<Box<dyn VerifyingKey>, Error> {
    let key = match der {
        PublicDer::Pkcs1(der) => PublicKey::Rsa(
            RsaPublicKey::from_pkcs1_der(der)
                .map_err(|_| Error::key("not a valid PKCS#1 RSA public key"))?,
        ),
        PublicDer::Spki(der) => {
            let info = pkcs8::spki::SubjectPublicKeyInfoRef::try_from(der.as_slice())
                .map_err(|_| Error::key("not a valid SubjectPublicKeyInfo public key"))?;
            match info.algorithm.oid {
                RSA_ENCRYPTION => PublicKey::Rsa(
                    RsaPublicKey::from_public_key_der(der)
                        .map_err(|_| Error::key("not a valid RSA public key"))?,
                ),
                EC_PUBLIC_KEY => {
                    let curve = info.algorithm.parameters_oid().ok();
                    if curve != Some(PRIME256V1) {
                        return Err(curve_error(curve));
                    }
                    PublicKey::P256(
                        p256::ecdsa::VerifyingKey::from_public_key_der(der)
                            .map_err(|_| Error::key("not a valid P-256 public key"))?,
                    )
                }
                other => return Err(unsupported(other)),
            }
        }
    };
    Ok(Box::new(key))
}

pub(super) fn generate(spec: KeySpec) -> Result<GeneratedKey, Error> {
    let encode = |e: pkcs8::Error| Error::crypto(format!("could not encode the key: {e}"));
    let encode_spki =
        |e: pkcs8::spki::Error| Error::crypto(format!("could not encode the key: {e}"));
    match spec {
        KeySpec::Rsa { bits } => {
            let bits = usize::try_from(bits).unwrap_or(usize::MAX);
            let key = RsaPrivateKey::new(&mut OsRng, bits)
                .map_err(|e| Error::crypto(format!("could not generate an RSA key: {e}")))?;
            Ok(GeneratedKey {
                private_pem: key.to_pkcs8_pem(LineEnding::LF).map_err(encode)?,
                public_pem: key
                    .to_public_key()
                    .to_public_key_pem(LineEnding::LF)
                    .map_err(encode_spki)?,
            })
        }
        KeySpec::EcdsaP256 => {
            let key = p256::SecretKey::random(&mut OsRng);
            Ok(GeneratedKey {
                private_pem: key.to_pkcs8_pem(LineEnding::LF).map_err(encode)?,
                public_pem: key
                    .public_key()
                    .to_public_key_pem(LineEnding::LF)
                    .map_err(encode_spki)?,
            })
        }
    }
}

impl SigningKey for PrivateKey {
    fn algorithm(&self) -> KeyAlgorithm {
        match self {
            Self::Rsa(key) => rsa_bits(key),
            Self::P256(_) => KeyAlgorithm::EcdsaP256,
        }
    }

    fn sign(&self, hash: HashAlgorithm, message: &[u8]) -> Result<Vec<u8>, Error> {
        let (hashed, padding) = digest(hash, message);
        match self {
            // The RNG turns on blinding; PKCS#1 v1.5 output stays deterministic.
            Self::Rsa(key) => key
                .sign_with_rng(&mut OsRng, padding, &hashed)
                .map_err(|e| Error::crypto(format!("RSA signing failed: {e}"))),
            Self::P256(key) => {
                let signature: p256::ecdsa::Signature = key
                    .sign_prehash(&hashed)
                    .map_err(|e| Error::crypto(format!("ECDSA signing failed: {e}")))?;
                Ok(signature.to_der().as_bytes().to_vec())
            }
        }
    }

    fn verifying_key(&self) -> Result<Box<dyn VerifyingKey>, Error> {
        Ok(Box::new(match self {
            Self::Rsa(key) => PublicKey::Rsa(key.to_public_key()),
            Self::P256(key) => PublicKey::P256(*key.verifying_key()),
        }))
    }
}

impl VerifyingKey for PublicKey {
    fn algorithm(&self) -> KeyAlgorithm {
        match self {
            Self::Rsa(key) => rsa_bits(key),
            Self::P256(_) => KeyAlgorithm::EcdsaP256,
        }
    }

    fn verify(&self, hash: HashAlgorithm, message: &[u8], signature: &[u8]) -> bool {
        let (hashed, padding) = digest(hash, message);
        match self {
            Self::Rsa(key) => key.verify(padding, &hashed, signature).is_ok(),
            Self::P256(key) => p256::ecdsa::Signature::from_der(signature)
                .is_ok_and(|signature| key.verify_prehash(&hashed, &signature).is_ok()),
        }
    }

    fn to_pem(&self) -> Result<String, Error> {
        match self {
            Self::Rsa(key) => key.to_public_key_pem(LineEnding::LF),
            Self::P256(key) => key.to_public_key_pem(LineEnding::LF),
        }
        .map_err(|e| Error::crypto(format!("could not encode the public key: {e}")))
    }
}
