//! Shared test helpers: the AWS known-answer vectors and generated keys.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use cfmint_signer::{Backend, KeyPairId, KeySource, KeySpec, PrivateKey, PublicKeys};
use serde::Deserialize;

pub const VECTORS_JSON: &str = include_str!("../fixtures/cloudfront-sep/test-cases.json");
pub const RSA_KEY_PEM: &str = include_str!("../fixtures/cloudfront-sep/test-rsa-key.pem");
pub const ECDSA_KEY_PEM: &str = include_str!("../fixtures/cloudfront-sep/test-ecdsa-key.pem");
pub const RSA_PUBLIC_PEM: &str = include_str!("../fixtures/cloudfront-sep/test-rsa-public-key.pem");
pub const ECDSA_PUBLIC_PEM: &str =
    include_str!("../fixtures/cloudfront-sep/test-ecdsa-public-key.pem");

/// A fixture file, from this crate's tests or from the cfmint service's
/// (which include this module from the workspace root).
pub fn fixture_path(name: &str) -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        "tests/fixtures/cloudfront-sep",
        "crates/cfmint-signer/tests/fixtures/cloudfront-sep",
    ]
    .iter()
    .map(|dir| root.join(dir))
    .find(|dir| dir.is_dir())
    .expect("the cloudfront-sep fixtures")
    .join(name)
}

#[derive(Debug, Deserialize)]
pub struct Case {
    pub id: String,
    pub input: Input,
    pub expected: Expected,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Input {
    pub resource: String,
    pub key_pair_id: String,
    pub private_key_file: String,
    pub expiration_date: Option<u64>,
    pub active_date: Option<u64>,
    pub ip_range: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Expected {
    pub policy_json: Option<String>,
    pub query_params: Option<BTreeMap<String, String>>,
    pub cookies: Option<BTreeMap<String, String>>,
    pub signature: Option<String>,
    pub signature_algorithm: Option<String>,
    pub apply_to: Option<String>,
    #[serde(default)]
    pub error: bool,
    #[serde(default)]
    pub error_contains: Vec<String>,
}

impl Case {
    pub fn key_pem(&self) -> &'static str {
        match self.input.private_key_file.as_str() {
            "test-rsa-key.pem" => RSA_KEY_PEM,
            "test-ecdsa-key.pem" => ECDSA_KEY_PEM,
            other => panic!("unknown key file {other}"),
        }
    }

    pub fn public_pem(&self) -> &'static str {
        match self.input.private_key_file.as_str() {
            "test-rsa-key.pem" => RSA_PUBLIC_PEM,
            _ => ECDSA_PUBLIC_PEM,
        }
    }

    pub fn is_ecdsa(&self) -> bool {
        self.expected.signature_algorithm.as_deref() == Some("ECDSA-SHA1")
    }

    /// The URL a signed-URL case is applied to.
    pub fn url(&self) -> &str {
        self.expected
            .apply_to
            .as_deref()
            .unwrap_or(&self.input.resource)
    }
}

pub fn cases() -> Vec<Case> {
    serde_json::from_str(VECTORS_JSON).expect("test-cases.json parses")
}

pub fn key(id: &str, pem: &str, backend: Backend) -> PrivateKey {
    PrivateKey::from_pem(KeyPairId::new(id).unwrap(), pem, KeySource::Inline, backend).unwrap()
}

/// A generated RSA-2048 key (PKCS#8 PEM), made once per test binary.
pub fn generated_rsa_pem() -> &'static str {
    static PEM: OnceLock<String> = OnceLock::new();
    PEM.get_or_init(|| generate(KeySpec::Rsa { bits: 2048 }))
}

/// A generated P-256 key (PKCS#8 PEM), made once per test binary.
pub fn generated_ecdsa_pem() -> &'static str {
    static PEM: OnceLock<String> = OnceLock::new();
    PEM.get_or_init(|| generate(KeySpec::EcdsaP256))
}

/// A signing key and the key group that verifies it.
pub struct Fixture {
    pub signer: PrivateKey,
    pub keys: PublicKeys,
}

/// Every backend with a generated RSA and ECDSA key, all with key pair id
/// `KV`, loaded once: loading checks the key (OpenSSL runs primality tests).
pub fn fixtures() -> &'static [Fixture] {
    static FIXTURES: OnceLock<Vec<Fixture>> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        Backend::ALL
            .iter()
            .flat_map(|&backend| {
                [generated_rsa_pem(), generated_ecdsa_pem()].map(|pem| {
                    let signer = key("KV", pem, backend);
                    let keys = PublicKeys::new(vec![signer.public_key().unwrap()]).unwrap();
                    Fixture { signer, keys }
                })
            })
            .collect()
    })
}

fn generate(spec: KeySpec) -> String {
    Backend::default()
        .generate(spec)
        .unwrap()
        .private_pem
        .to_string()
}

/// The query parameters of a URL as a map (first value wins).
pub fn query_map(url: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    if let Some((_, query)) = url.split_once('?') {
        for part in query.split('&') {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            map.entry(name.to_owned())
                .or_insert_with(|| value.to_owned());
        }
    }
    map
}

/// Runs the `openssl` command line tool in `dir` and returns its stdout.
/// Used to make keys in other formats and to check signatures independently.
pub fn openssl(dir: &std::path::Path, args: &[&str]) -> Vec<u8> {
    let output = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command line tool is installed");
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Whether `openssl dgst -DIGEST -verify` (DIGEST: sha1, sha256) finds
/// `signature` over `message` good under `public_pem`: a check by a
/// verifier that is not ours.
pub fn openssl_verifies(public_pem: &str, digest: &str, message: &[u8], signature: &[u8]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("public.pem"), public_pem).unwrap();
    std::fs::write(dir.path().join("message"), message).unwrap();
    std::fs::write(dir.path().join("signature"), signature).unwrap();
    let output = std::process::Command::new("openssl")
        .args(["dgst", &format!("-{digest}"), "-verify", "public.pem"])
        .args(["-signature", "signature", "message"])
        .current_dir(dir.path())
        .output()
        .expect("the openssl command line tool is installed");
    output.status.success() && String::from_utf8_lossy(&output.stdout).trim() == "Verified OK"
}
