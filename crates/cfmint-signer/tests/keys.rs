//! Key loading in every PEM form, refusal of unusable keys with a message
//! naming the key, key ring rules, and backends agreeing byte for byte.

mod common;

use std::fs;

use cfmint_signer::{
    Backend, ErrorKind, HashAlgorithm, KeyAlgorithm, KeyPairId, KeyRing, KeySource, Policy,
    PolicyForm, PrivateKey, PublicKey, PublicKeys,
};
use common::{generated_ecdsa_pem, generated_rsa_pem, key, openssl};

fn load(pem: &str, backend: Backend) -> Result<PrivateKey, cfmint_signer::Error> {
    PrivateKey::from_pem(
        KeyPairId::new("KTEST").unwrap(),
        pem,
        KeySource::Inline,
        backend,
    )
}

fn sample_policy() -> Policy {
    Policy::builder("https://d.example/audiobooks/42/*")
        .expires(1_900_000_000)
        .build()
        .unwrap()
}

/// Writes `pem` and converts it with `openssl pkey` extra arguments.
fn convert(pem: &str, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("in.pem"), pem).unwrap();
    let mut full = vec!["pkey", "-in", "in.pem"];
    full.extend_from_slice(args);
    String::from_utf8(openssl(dir.path(), &full)).unwrap()
}

fn openssl_key(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    String::from_utf8(openssl(dir.path(), args)).unwrap()
}

#[test]
fn rsa_loads_from_pkcs1_and_pkcs8_and_signs_identically() {
    let pkcs8 = generated_rsa_pem();
    let pkcs1 = convert(pkcs8, &["-traditional"]);
    assert!(pkcs1.contains("BEGIN RSA PRIVATE KEY"));
    for &backend in Backend::ALL {
        let a = load(pkcs8, backend).unwrap();
        let b = load(&pkcs1, backend).unwrap();
        assert_eq!(a.algorithm(), Some(KeyAlgorithm::Rsa { bits: 2048 }));
        let policy = sample_policy();
        assert_eq!(
            a.sign(&policy, PolicyForm::Auto, HashAlgorithm::Sha1)
                .unwrap(),
            b.sign(&policy, PolicyForm::Auto, HashAlgorithm::Sha1)
                .unwrap()
        );
    }
}

#[test]
fn ecdsa_loads_from_sec1_and_pkcs8() {
    let pkcs8 = generated_ecdsa_pem();
    let sec1 = convert(pkcs8, &["-traditional"]);
    assert!(sec1.contains("BEGIN EC PRIVATE KEY"));
    let with_params = openssl_key(&["ecparam", "-name", "prime256v1", "-genkey"]);
    assert!(with_params.contains("EC PARAMETERS"));
    for &backend in Backend::ALL {
        for pem in [pkcs8, sec1.as_str(), with_params.as_str()] {
            assert_eq!(
                load(pem, backend).unwrap().algorithm(),
                Some(KeyAlgorithm::EcdsaP256)
            );
        }
    }
}

#[test]
fn a_key_from_an_environment_variable_may_have_escaped_newlines() {
    let escaped = generated_ecdsa_pem().trim().replace('\n', "\\n");
    // The variable name is unique to this test; nothing else reads it.
    unsafe { std::env::set_var("CFMINT_TEST_ESCAPED_KEY", &escaped) };
    for &backend in Backend::ALL {
        let key = PrivateKey::from_env(
            KeyPairId::new("KENV").unwrap(),
            "CFMINT_TEST_ESCAPED_KEY",
            backend,
        )
        .unwrap();
        assert_eq!(key.algorithm(), Some(KeyAlgorithm::EcdsaP256));
    }
}

#[test]
fn unusable_keys_are_refused_with_the_key_and_the_problem_named() {
    let rsa512 = openssl_key(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:512",
    ]);
    let p384 = openssl_key(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:secp384r1",
    ]);
    let ed25519 = openssl_key(&["genpkey", "-algorithm", "ed25519"]);
    let encrypted = convert(
        generated_ecdsa_pem(),
        &["-aes256", "-passout", "pass:secret"],
    );
    let public = convert(generated_ecdsa_pem(), &["-pubout"]);
    // A whole base64 line dropped: still valid base64, no longer a valid key.
    let truncated: String = generated_rsa_pem()
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .map(|(_, line)| format!("{line}\n"))
        .collect();
    let cases = [
        (rsa512.as_str(), "512 bits"),
        (p384.as_str(), "P-256"),
        (ed25519.as_str(), "unsupported key type"),
        (encrypted.as_str(), "encrypted"),
        (public.as_str(), "public key"),
        (truncated.as_str(), "not a valid"),
        ("not a key at all", "no PEM block"),
    ];
    for &backend in Backend::ALL {
        for (pem, problem) in cases {
            let error = load(pem, backend).expect_err(problem);
            let message = error.to_string();
            assert_eq!(error.kind(), ErrorKind::InvalidKey, "{message}");
            assert!(message.starts_with("key KTEST (inline PEM): "), "{message}");
            assert!(
                message.contains(problem),
                "{backend}: {message} lacks {problem}"
            );
            assert!(
                !message.contains("MII"),
                "no key material in messages: {message}"
            );
        }
    }
}

#[test]
fn a_missing_file_is_named() {
    let error = PrivateKey::from_file(
        KeyPairId::new("KFILE").unwrap(),
        std::path::Path::new("/nonexistent/key.pem"),
        Backend::default(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("KFILE"), "{error}");
    assert!(
        error.to_string().contains("/nonexistent/key.pem"),
        "{error}"
    );
}

#[test]
fn debug_output_never_shows_key_material() {
    let pem = generated_rsa_pem();
    for &backend in Backend::ALL {
        let key = load(pem, backend).unwrap();
        let shown = format!("{key:?} {:?}", key.public_key().unwrap());
        assert!(shown.contains("KTEST") && shown.contains("Rsa"), "{shown}");
        let body_line = pem.lines().nth(1).unwrap();
        assert!(!shown.contains(&body_line[..16]), "{shown}");
    }
}

#[test]
fn invalid_key_pair_ids_are_refused() {
    for id in ["", "K 1", "K;1", "K=1", "ключ", &"K".repeat(129)] {
        assert_eq!(
            KeyPairId::new(id).unwrap_err().kind(),
            ErrorKind::InvalidKeyRing,
            "{id}"
        );
    }
}

#[test]
fn a_key_ring_needs_unique_ids_and_a_loaded_active_key() {
    let backend = Backend::default();
    let a = key("KA", generated_rsa_pem(), backend);
    let b = key("KB", generated_ecdsa_pem(), backend);
    let ring = KeyRing::new(vec![a.clone(), b.clone()], &KeyPairId::new("KB").unwrap()).unwrap();
    assert_eq!(ring.active().id().as_str(), "KB");
    assert_eq!(ring.public_keys().unwrap().len(), 2);
    let missing = KeyRing::new(vec![a.clone()], &KeyPairId::new("KZ").unwrap()).unwrap_err();
    assert!(missing.to_string().contains("KZ"), "{missing}");
    let twice = KeyRing::new(vec![a.clone(), a.clone()], a.id()).unwrap_err();
    assert!(twice.to_string().contains("twice"), "{twice}");
}

#[test]
fn a_key_group_holds_at_most_five_keys() {
    let backend = Backend::default();
    let public = |id: &str| {
        key(id, generated_ecdsa_pem(), backend)
            .public_key()
            .unwrap()
    };
    let five: Vec<PublicKey> = (1..=5).map(|i| public(&format!("K{i}"))).collect();
    assert_eq!(PublicKeys::new(five.clone()).unwrap().len(), 5);
    let mut six = five;
    six.push(public("K6"));
    assert!(
        PublicKeys::new(six)
            .unwrap_err()
            .to_string()
            .contains("at most 5")
    );
}

#[test]
fn sha256_signatures_verify_and_differ_from_sha1() {
    for &backend in Backend::ALL {
        for pem in [generated_rsa_pem(), generated_ecdsa_pem()] {
            let signer = key("K", pem, backend);
            let verifier = signer.public_key().unwrap();
            let policy = sample_policy();
            let json = policy.to_json();
            let signed = signer
                .sign(&policy, PolicyForm::Auto, HashAlgorithm::Sha256)
                .unwrap();
            let signature = cfmint_signer::decode_base64(signed.signature()).unwrap();
            assert!(verifier.verify(HashAlgorithm::Sha256, json.as_bytes(), &signature));
            assert!(!verifier.verify(HashAlgorithm::Sha1, json.as_bytes(), &signature));
        }
    }
}

/// Both backends in one build: identical RSA bytes, and each verifies the
/// other's ECDSA signatures.
#[cfg(all(feature = "openssl", feature = "rustcrypto"))]
mod cross_backend {
    use super::*;

    #[test]
    fn both_backends_produce_identical_rsa_signatures() {
        let policy = sample_policy();
        for pem in [generated_rsa_pem(), common::RSA_KEY_PEM] {
            for hash in [HashAlgorithm::Sha1, HashAlgorithm::Sha256] {
                let openssl = key("K", pem, Backend::OpenSsl)
                    .sign(&policy, PolicyForm::Auto, hash)
                    .unwrap();
                let rustcrypto = key("K", pem, Backend::RustCrypto)
                    .sign(&policy, PolicyForm::Auto, hash)
                    .unwrap();
                assert_eq!(openssl, rustcrypto);
            }
        }
    }

    #[test]
    fn each_backend_verifies_the_others_ecdsa_signatures() {
        let policy = sample_policy();
        let json = policy.to_json();
        for (signer, verifier) in [
            (Backend::OpenSsl, Backend::RustCrypto),
            (Backend::RustCrypto, Backend::OpenSsl),
        ] {
            for hash in [HashAlgorithm::Sha1, HashAlgorithm::Sha256] {
                let signed = key("K", generated_ecdsa_pem(), signer)
                    .sign(&policy, PolicyForm::Auto, hash)
                    .unwrap();
                let signature = cfmint_signer::decode_base64(signed.signature()).unwrap();
                let public = key("K", generated_ecdsa_pem(), verifier)
                    .public_key()
                    .unwrap();
                assert!(
                    public.verify(hash, json.as_bytes(), &signature),
                    "{signer} → {verifier}"
                );
            }
        }
    }

    #[test]
    fn public_keys_export_the_same_pem() {
        for pem in [generated_rsa_pem(), generated_ecdsa_pem()] {
            let a = key("K", pem, Backend::OpenSsl)
                .public_key()
                .unwrap()
                .to_pem()
                .unwrap();
            let b = key("K", pem, Backend::RustCrypto)
                .public_key()
                .unwrap()
                .to_pem()
                .unwrap();
            assert_eq!(a, b);
        }
    }
}

#[test]
fn the_tests_run_on_both_backends() {
    // The crate's dev-dependency on itself turns both backends on, so every
    // test that loops over `Backend::ALL` compares OpenSSL with pure Rust.
    assert_eq!(
        Backend::ALL,
        [Backend::OpenSsl, Backend::RustCrypto].as_slice()
    );
}
