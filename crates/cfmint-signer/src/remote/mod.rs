//! Keys that never enter the process: a key store (AWS KMS, a PKCS#11 token)
//! holds the private key and signs on request. [`RemoteKey`] is what a store
//! offers; a [`PrivateKey`](crate::PrivateKey) made with
//! [`PrivateKey::remote`](crate::PrivateKey::remote) signs through it, so a
//! key ring may mix local and remote keys.
//!
//! A store is reached over a network or through a device, so signing may
//! fail for a while: [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable)
//! when it cannot be reached, [`ErrorKind::Throttled`](crate::ErrorKind::Throttled)
//! when it refuses for rate. Neither is retried here; the caller decides.

#[cfg(feature = "aws-kms")]
pub mod kms;
#[cfg(feature = "pkcs11")]
pub mod pkcs11;

use std::future::Future;
use std::pin::Pin;

use crate::backend::{HashAlgorithm, VerifyingKey};
use crate::error::Error;

/// A boxed future that may be sent between threads.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A private key held by a key store.
pub trait RemoteKey: Send + Sync {
    /// The store's short name, for metrics and logs: `aws-kms`, `pkcs11`.
    fn store(&self) -> &'static str;

    /// Where the key is, for messages: a key ARN or a PKCS#11 URI. Never a
    /// secret.
    fn location(&self) -> &str;

    /// True when [`connect`](Self::connect) and [`sign`](Self::sign) block
    /// the thread that polls them (a PKCS#11 module call): poll them where
    /// blocking is allowed. False for stores reached asynchronously.
    fn blocks(&self) -> bool;

    /// Reaches the store and returns the public key: at start, and again
    /// after the store was unavailable.
    fn connect(&self) -> BoxFuture<'_, Result<Box<dyn VerifyingKey>, Error>>;

    /// Signs `message` (the policy bytes) over `hash`: PKCS#1 v1.5 for RSA,
    /// DER for ECDSA, as CloudFront takes them.
    fn sign<'a>(
        &'a self,
        hash: HashAlgorithm,
        message: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, Error>>;

    /// Asks a connected store whether the key still works, cheaply (a
    /// device's status; nothing that counts against a request quota).
    fn check(&self) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async { Ok(()) })
    }
}

/// DER `INTEGER` of an unsigned big-endian number.
fn der_integer(out: &mut Vec<u8>, bytes: &[u8]) {
    let start = bytes
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bytes.len() - 1);
    let bytes = &bytes[start..];
    let pad = bytes[0] & 0x80 != 0;
    out.push(0x02);
    der_length(out, bytes.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(bytes);
}

fn der_length(out: &mut Vec<u8>, len: usize) {
    match len {
        0..0x80 => out.push(len as u8),
        0x80..0x100 => out.extend_from_slice(&[0x81, len as u8]),
        _ => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
    }
}

fn der_sequence(body: &[u8]) -> Vec<u8> {
    let mut out = vec![0x30];
    der_length(&mut out, body.len());
    out.extend_from_slice(body);
    out
}

/// An ECDSA signature as `r‖s` (what PKCS#11's `CKM_ECDSA` returns) in the
/// DER `Ecdsa-Sig-Value` CloudFront takes.
#[cfg_attr(not(feature = "pkcs11"), allow(dead_code))]
pub(crate) fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, Error> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return Err(Error::crypto(format!(
            "an ECDSA signature of {} bytes is not r‖s",
            raw.len()
        )));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut body = Vec::with_capacity(raw.len() + 6);
    der_integer(&mut body, r);
    der_integer(&mut body, s);
    Ok(der_sequence(&body))
}

/// A PKCS#1 `RSAPublicKey` from its modulus and public exponent.
#[cfg_attr(not(feature = "pkcs11"), allow(dead_code))]
pub(crate) fn rsa_public_der(modulus: &[u8], exponent: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(modulus.len() + exponent.len() + 8);
    der_integer(&mut body, modulus);
    der_integer(&mut body, exponent);
    der_sequence(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_ecdsa_signatures_become_der_with_sign_padding_and_no_leading_zeros() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x80; // r needs a 0x00 pad: it would read as negative
        raw[31] = 1;
        raw[33] = 0x7f; // s starts with a zero byte, which DER drops
        raw[63] = 2;
        let der = ecdsa_raw_to_der(&raw).unwrap();
        assert_eq!(&der[..4], &[0x30, 33 + 2 + 31 + 2, 0x02, 33]);
        assert_eq!(der[4], 0);
        assert_eq!(der[5], 0x80);
        let s = &der[4 + 33..];
        assert_eq!(&s[..3], &[0x02, 31, 0x7f]);
        assert!(ecdsa_raw_to_der(&raw[..63]).is_err());
    }

    #[cfg(feature = "openssl")]
    #[test]
    fn raw_ecdsa_converted_to_der_verifies() {
        use openssl::ec::{EcGroup, EcKey};
        use openssl::ecdsa::EcdsaSig;
        use openssl::nid::Nid;
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = EcKey::generate(&group).unwrap();
        for _ in 0..32 {
            let digest = openssl::sha::sha256(b"policy");
            let sig = EcdsaSig::sign(&digest, &key).unwrap();
            let mut raw = sig.r().to_vec_padded(32).unwrap();
            raw.extend(sig.s().to_vec_padded(32).unwrap());
            let der = ecdsa_raw_to_der(&raw).unwrap();
            assert_eq!(der, sig.to_der().unwrap());
        }
    }

    #[cfg(feature = "openssl")]
    #[test]
    fn rsa_public_key_from_its_parts_matches_openssl() {
        let rsa = openssl::rsa::Rsa::generate(1024).unwrap();
        let der = rsa_public_der(&rsa.n().to_vec(), &rsa.e().to_vec());
        assert_eq!(der, rsa.public_key_to_der_pkcs1().unwrap());
    }
}
