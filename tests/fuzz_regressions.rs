//! Every input under `fuzz/corpus/` (the committed seeds) and
//! `fuzz/regressions/` (inputs that once broke a fuzz target) replayed
//! through the same checks the fuzz targets make, on every `cargo test`.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

#[test]
fn every_corpus_and_regression_input_passes_its_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for target in checks::TARGETS {
        let mut seeds = 0;
        for folder in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(folder).join(target)) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                if path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                {
                    continue;
                }
                let data = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| checks::check(target, &data));
                assert!(outcome.is_ok(), "{} fails {target}", path.display());
                seeds += 1;
            }
        }
        assert!(seeds > 0, "no committed inputs for {target}");
        replayed += seeds;
    }
    assert!(replayed >= 20, "{replayed}");
}

#[test]
fn the_viewer_seeds_reach_the_allow_path() {
    // Seeds that verify steer the fuzzer past the signature check.
    let seed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/viewer/custom-cookies"),
    )
    .unwrap();
    let (url, cookies) = seed.split_once('\n').unwrap();
    let keys = common::public_keys_for_fixture();
    let verdict = cfmint::signer::verify(
        &keys,
        &cfmint::signer::ViewerRequest {
            url,
            cookie_header: Some(cookies),
            client_ip: None,
            now: 1_700_000_000,
        },
    );
    assert!(verdict.is_allowed(), "{:?}", verdict.result);
}

mod common {
    use cfmint::signer::{Backend, KeyPairId, KeySource, PublicKey, PublicKeys};

    pub fn public_keys_for_fixture() -> PublicKeys {
        let pem = include_str!(
            "../crates/cfmint-signer/tests/fixtures/cloudfront-sep/test-rsa-public-key.pem"
        );
        let id = KeyPairId::new("K2JCJMDEHXQW5F").unwrap();
        PublicKeys::new(vec![
            PublicKey::from_pem(id, pem, KeySource::Inline, Backend::default()).unwrap(),
        ])
        .unwrap()
    }
}
