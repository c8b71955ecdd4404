//! The AWS SDKs' known-answer vectors, through the library, for every backend
//! compiled in: RSA byte for byte, ECDSA by verification.

mod common;

use cfmint_signer::{
    Backend, ErrorKind, HashAlgorithm, KeyAlgorithm, KeyPairId, KeySource, Policy, PolicyForm,
    PublicKey, decode_base64, encode_base64,
};
use common::{Case, cases, key, query_map};

fn policy_for(case: &Case) -> Result<Policy, cfmint_signer::Error> {
    let input = &case.input;
    let mut builder = Policy::builder(input.resource.clone());
    if let Some(expires) = input.expiration_date {
        builder = builder.expires(expires);
    }
    if let Some(active) = input.active_date {
        builder = builder.active(active);
    }
    if let Some(ip) = &input.ip_range {
        builder = builder.source_ip(ip.clone());
    }
    builder.build()
}

fn public_key(case: &Case, backend: Backend) -> PublicKey {
    let id = KeyPairId::new(&case.input.key_pair_id).unwrap();
    PublicKey::from_pem(id, case.public_pem(), KeySource::Inline, backend).unwrap()
}

fn run_case(case: &Case, backend: Backend) {
    let expected = &case.expected;
    if expected.error {
        let error = policy_for(case).expect_err(&case.id);
        assert_eq!(error.kind(), ErrorKind::InvalidPolicy);
        let message = error.to_string().to_lowercase();
        for word in &expected.error_contains {
            assert!(
                message.contains(word),
                "{}: {message:?} lacks {word:?}",
                case.id
            );
        }
        return;
    }
    if case.id == "json-injection-ip-range" {
        // cfmint validates CIDRs: the injected string is refused, by name.
        let error = policy_for(case).expect_err(&case.id);
        assert!(error.to_string().contains("192.168.0.0/24"), "{error}");
        assert!(error.to_string().contains("CIDR"), "{error}");
        return;
    }

    let policy = policy_for(case).unwrap();
    let policy_json = expected.policy_json.as_deref().unwrap();
    assert_eq!(policy.to_json(), policy_json, "{}: policy bytes", case.id);

    let signer = key(&case.input.key_pair_id, case.key_pem(), backend);
    let form = if expected.apply_to.is_some() {
        PolicyForm::Custom
    } else {
        PolicyForm::Auto
    };
    let signed = signer.sign(&policy, form, HashAlgorithm::Sha1).unwrap();

    if case.is_ecdsa() {
        let verifier = public_key(case, backend);
        let theirs = decode_base64(expected.signature.as_deref().unwrap()).unwrap();
        assert!(
            verifier.verify(HashAlgorithm::Sha1, policy_json.as_bytes(), &theirs),
            "{}: vector signature",
            case.id
        );
        let ours = decode_base64(signed.signature()).unwrap();
        assert!(
            verifier.verify(HashAlgorithm::Sha1, policy_json.as_bytes(), &ours),
            "{}: own signature",
            case.id
        );
    } else if let Some(signature) = &expected.signature {
        assert_eq!(signed.signature(), signature, "{}: signature", case.id);
    }

    if let Some(cookies) = &expected.cookies {
        let ours: std::collections::BTreeMap<String, String> = signed
            .cookies()
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v))
            .collect();
        assert_eq!(&ours, cookies, "{}: cookies", case.id);
    }
    if let Some(params) = &expected.query_params {
        let url = signed.apply_to_url(case.url()).unwrap();
        let ours = query_map(&url);
        for (name, value) in params {
            assert_eq!(
                ours.get(name),
                Some(value),
                "{}: query parameter {name}",
                case.id
            );
        }
        for name in ours.keys() {
            let allowed = params.contains_key(name) || name == "Signature" || name == "Policy";
            assert!(allowed, "{}: unexpected query parameter {name}", case.id);
        }
        if !case.is_ecdsa() {
            assert_eq!(
                Some(&ours["Signature"]),
                expected.signature.as_ref(),
                "{}",
                case.id
            );
        }
        if let Some(encoded) = ours.get("Policy") {
            assert_eq!(
                encoded,
                &encode_base64(policy_json.as_bytes()),
                "{}",
                case.id
            );
        }
    }
}

#[test]
fn every_vector_passes_on_every_backend() {
    let cases = cases();
    assert_eq!(cases.len(), 12, "all vectors are read");
    for &backend in Backend::ALL {
        for case in &cases {
            run_case(case, backend);
        }
    }
}

#[test]
fn the_vector_keys_load_as_what_they_are() {
    for &backend in Backend::ALL {
        let rsa = key("K1TESTKEY", common::RSA_KEY_PEM, backend);
        assert_eq!(rsa.algorithm(), Some(KeyAlgorithm::Rsa { bits: 1024 }));
        let ecdsa = key("K2ECDSATEST", common::ECDSA_KEY_PEM, backend);
        assert_eq!(ecdsa.algorithm(), Some(KeyAlgorithm::EcdsaP256));
    }
}

#[test]
fn the_injected_resource_is_escaped_and_cannot_widen_the_policy() {
    let case = cases()
        .into_iter()
        .find(|c| c.id == "json-injection-resource-url")
        .unwrap();
    let json = policy_for(&case).unwrap().to_json();
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    let statement = &parsed["Statement"][0];
    assert_eq!(statement["Resource"], case.input.resource.as_str());
    assert_eq!(
        statement.as_object().unwrap().len(),
        2,
        "only Resource and Condition"
    );
}
