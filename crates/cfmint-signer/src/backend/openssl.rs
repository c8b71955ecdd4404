//! The OpenSSL backend: the system library through the `openssl` crate.

use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private, Public};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::Verifier;
use zeroize::Zeroizing;

use super::{GeneratedKey, HashAlgorithm, KeyAlgorithm, KeySpec, SigningKey, VerifyingKey};
use crate::error::Error;
use crate::pem::{PrivateDer, PublicDer};

struct PrivateKey {
    key: PKey<Private>,
    raw: RawKey,
    algorithm: KeyAlgorithm,
}

/// The key for OpenSSL's direct RSA and ECDSA calls, which skip the EVP
/// context OpenSSL 3 would set up for every signature (a fifth of an ECDSA
/// signature's cost, a few percent of an RSA one). The arithmetic, and the
/// RSA blinding, are the same.
enum RawKey {
    Rsa(Rsa<Private>),
    Ec(EcKey<Private>),
}

/// The DER `DigestInfo` prefix EMSA-PKCS1-v1_5 puts before the digest
/// (RFC 8017, section 9.2, note 1).
fn digest_info(hash: HashAlgorithm) -> &'static [u8] {
    match hash {
        HashAlgorithm::Sha1 => &[
            0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
            0x14,
        ],
        HashAlgorithm::Sha256 => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
    }
}

struct PublicKey {
    key: PKey<Public>,
    algorithm: KeyAlgorithm,
}

fn digest(hash: HashAlgorithm) -> MessageDigest {
    match hash {
        HashAlgorithm::Sha1 => MessageDigest::sha1(),
        HashAlgorithm::Sha256 => MessageDigest::sha256(),
    }
}

pub(super) fn digest_of(hash: HashAlgorithm, message: &[u8]) -> Vec<u8> {
    match hash {
        HashAlgorithm::Sha1 => openssl::sha::sha1(message).to_vec(),
        HashAlgorithm::Sha256 => openssl::sha::sha256(message).to_vec(),
    }
}

fn crypto(what: &str) -> impl FnOnce(openssl::error::ErrorStack) -> Error + '_ {
    move |stack| Error::crypto(format!("OpenSSL failed to {what}: {stack}"))
}

/// Names the key's type and refuses anything CloudFront cannot use.
fn algorithm_of<T: openssl::pkey::HasPublic>(key: &PKey<T>) -> Result<KeyAlgorithm, Error> {
    match key.id() {
        Id::RSA => Ok(KeyAlgorithm::Rsa { bits: key.bits() }),
        Id::EC => {
            let ec = key.ec_key().map_err(crypto("read the EC key"))?;
            match ec.group().curve_name() {
                Some(Nid::X9_62_PRIME256V1) => Ok(KeyAlgorithm::EcdsaP256),
                Some(nid) => Err(Error::key(format!(
                    "ECDSA key on curve {}; CloudFront takes P-256 (prime256v1) only",
                    nid.short_name().unwrap_or("unknown")
                ))),
                None => Err(Error::key(
                    "ECDSA key with explicit curve parameters; use a named P-256 key",
                )),
            }
        }
        Id::RSA_PSS => Err(Error::key(
            "RSA-PSS keys are not supported; CloudFront signs with PKCS#1 v1.5 RSA keys",
        )),
        other => Err(Error::key(format!(
            "unsupported key type (OpenSSL id {}); CloudFront takes RSA or ECDSA P-256 keys",
            other.as_raw()
        ))),
    }
}

pub(super) fn load_private(der: &PrivateDer) -> Result<Box<dyn SigningKey>, Error> {
    let key = match der {
        PrivateDer::Pkcs1(der) => Rsa::private_key_from_der(der)
            .and_then(PKey::from_rsa)
            .map_err(|_| Error::key("not a valid PKCS#1 RSA private key"))?,
        PrivateDer::Pkcs8(der) => PKey::private_key_from_pkcs8(der)
            .map_err(|_| Error::key("not a valid PKCS#8 private key"))?,
        PrivateDer::Sec1(der) => EcKey::private_key_from_der(der)
            .and_then(PKey::from_ec_key)
            .map_err(|_| Error::key("not a valid SEC1 EC private key"))?,
    };
    let algorithm = algorithm_of(&key)?;
    let consistent = match algorithm {
        KeyAlgorithm::Rsa { .. } => key.rsa().and_then(|rsa| rsa.check_key()),
        KeyAlgorithm::EcdsaP256 => key.ec_key().and_then(|ec| ec.check_key().map(|()| true)),
    };
    if !matches!(consistent, Ok(true)) {
        return Err(Error::key(
            "the private key fails its consistency check (corrupted?)",
        ));
    }
    let raw = match algorithm {
        KeyAlgorithm::EcdsaP256 => RawKey::Ec(key.ec_key().map_err(crypto("read the EC key"))?),
        KeyAlgorithm::Rsa { .. } => RawKey::Rsa(key.rsa().map_err(crypto("read the RSA key"))?),
    };
    Ok(Box::new(PrivateKey {
        key,
        raw,
        algorithm,
    }))
}

pub(super) fn load_public(der: &PublicDer) -> Result<Box<dyn VerifyingKey>, Error> {
    let key = match der {
        PublicDer::Spki(der) => PKey::public_key_from_der(der)
            .map_err(|_| Error::key("not a valid SubjectPublicKeyInfo public key"))?,
        PublicDer::Pkcs1(der) => Rsa::public_key_from_der_pkcs1(der)
            .and_then(PKey::from_rsa)
            .map_err(|_| Error::key("not a valid PKCS#1 RSA public key"))?,
    };
    let algorithm = algorithm_of(&key)?;
    Ok(Box::new(PublicKey { key, algorithm }))
}

pub(super) fn generate(spec: KeySpec) -> Result<GeneratedKey, Error> {
    let key = match spec {
        KeySpec::Rsa { bits } => Rsa::generate(bits).and_then(PKey::from_rsa),
        KeySpec::EcdsaP256 => EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)
            .and_then(|group| EcKey::generate(&group))
            .and_then(PKey::from_ec_key),
    }
    .map_err(crypto("generate a key"))?;
    let private = Zeroizing::new(
        key.private_key_to_pem_pkcs8()
            .map_err(crypto("encode the private key"))?,
    );
    let public = key
        .public_key_to_pem()
        .map_err(crypto("encode the public key"))?;
    Ok(GeneratedKey {
        private_pem: Zeroizing::new(String::from_utf8_lossy(&private).into_owned()),
        public_pem: String::from_utf8_lossy(&public).into_owned(),
    })
}

impl SigningKey for PrivateKey {
    fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    fn sign(&self, hash: HashAlgorithm, message: &[u8]) -> Result<Vec<u8>, Error> {
        let sha1;
        let sha256;
        let digest: &[u8] = match hash {
            HashAlgorithm::Sha1 => {
                sha1 = openssl::sha::sha1(message);
                &sha1
            }
            HashAlgorithm::Sha256 => {
                sha256 = openssl::sha::sha256(message);
                &sha256
            }
        };
        match &self.raw {
            RawKey::Ec(ec) => EcdsaSig::sign(digest, ec)
                .and_then(|signature| signature.to_der())
                .map_err(crypto("sign")),
            RawKey::Rsa(rsa) => {
                let info = [digest_info(hash), digest].concat();
                let mut signature = vec![0; rsa.size() as usize];
                let length = rsa
                    .private_encrypt(&info, &mut signature, Padding::PKCS1)
                    .map_err(crypto("sign"))?;
                signature.truncate(length);
                Ok(signature)
            }
        }
    }

    fn verifying_key(&self) -> Result<Box<dyn VerifyingKey>, Error> {
        let der = self
            .key
            .public_key_to_der()
            .map_err(crypto("derive the public key"))?;
        let key = PKey::public_key_from_der(&der).map_err(crypto("derive the public key"))?;
        Ok(Box::new(PublicKey {
            key,
            algorithm: self.algorithm,
        }))
    }
}

impl VerifyingKey for PublicKey {
    fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    fn verify(&self, hash: HashAlgorithm, message: &[u8], signature: &[u8]) -> bool {
        Verifier::new(digest(hash), &self.key)
            .and_then(|mut verifier| verifier.verify_oneshot(signature, message))
            .unwrap_or(false)
    }

    fn to_pem(&self) -> Result<String, Error> {
        let pem = self
            .key
            .public_key_to_pem()
            .map_err(crypto("encode the public key"))?;
        Ok(String::from_utf8_lossy(&pem).into_owned())
    }
}
