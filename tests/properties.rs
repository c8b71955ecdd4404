//! Properties over generated inputs: signing then verifying allows; tampering
//! with any byte of policy, signature or key id denies for the right reason;
//! wildcard matching agrees with a plain reference matcher.

#[path = "../crates/cfmint-signer/tests/common/mod.rs"]
mod common;

use std::net::{IpAddr, Ipv4Addr};

use cfmint::signer::{
    DenialKind, HashAlgorithm, Policy, PolicyForm, PolicyParam, PrivateKey, PublicKeys,
    SignedPolicy, ViewerRequest, decode_base64, encode_base64, verify, wildcard_matches,
};
use common::{Fixture, fixtures};
use proptest::prelude::*;

const BASE: &str = "https://d.example";

fn cookie_header(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Debug, Clone)]
struct Scenario {
    path: String,
    wildcard: bool,
    lifetime: u64,
    active_before: Option<u64>,
    range: Option<(u32, u8)>,
    host_bits: u32,
    sha256: bool,
    signer: usize,
    as_url: bool,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        "[a-z0-9_.-]{1,12}(/[a-z0-9_.-]{1,12}){0,3}",
        any::<bool>(),
        1..1_000_000u64,
        proptest::option::of(0..1_000_000u64),
        proptest::option::of((any::<u32>(), 0..=32u8)),
        any::<u32>(),
        any::<bool>(),
        0..8usize,
        any::<bool>(),
    )
        .prop_map(
            |(
                path,
                wildcard,
                lifetime,
                active_before,
                range,
                host_bits,
                sha256,
                signer,
                as_url,
            )| Scenario {
                path,
                wildcard,
                lifetime,
                active_before,
                range,
                host_bits,
                sha256,
                signer,
                as_url,
            },
        )
}

const NOW: u64 = 1_800_000_000;

impl Scenario {
    fn request_url(&self) -> String {
        format!("{BASE}/{}", self.path)
    }

    /// The network and a client address inside it.
    fn network(&self) -> Option<(String, IpAddr)> {
        self.range.map(|(addr, prefix)| {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            let network = addr & mask;
            let client = network | (self.host_bits & !mask);
            (
                format!("{}/{prefix}", Ipv4Addr::from(network)),
                IpAddr::V4(Ipv4Addr::from(client)),
            )
        })
    }

    fn sign(&self, signer: &PrivateKey) -> SignedPolicy {
        let resource = if self.wildcard {
            format!("{BASE}/*")
        } else {
            self.request_url()
        };
        let mut builder = Policy::builder(resource).expires(NOW + self.lifetime);
        if let Some(before) = self.active_before {
            builder = builder.active(NOW - before);
        }
        if let Some((cidr, _)) = self.network() {
            builder = builder.source_ip(cidr);
        }
        let hash = if self.sha256 {
            HashAlgorithm::Sha256
        } else {
            HashAlgorithm::Sha1
        };
        signer
            .sign(&builder.build().unwrap(), PolicyForm::Auto, hash)
            .unwrap()
    }
}

/// Verifies cookies built from `pairs` for the scenario's URL and client.
fn verdict_for(
    s: &Scenario,
    keys: &PublicKeys,
    pairs: &[(&str, String)],
) -> Result<(), DenialKind> {
    let header = cookie_header(pairs);
    let url = s.request_url();
    let request = ViewerRequest {
        url: &url,
        cookie_header: Some(&header),
        client_ip: s.network().map(|(_, client)| client),
        now: NOW,
    };
    verify(keys, &request).result.map_err(|d| d.kind())
}

fn replace_value(pairs: &mut [(&str, String)], name: &str, value: String) {
    pairs.iter_mut().find(|(n, _)| *n == name).unwrap().1 = value;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn sign_then_verify_allows(s in scenario()) {
        let signers = fixtures();
        let Fixture { signer, keys } = &signers[s.signer % signers.len()];
        let signed = s.sign(signer);
        let url = s.request_url();
        let client_ip = s.network().map(|(_, client)| client);
        let (request_url, cookies) = if s.as_url {
            (signed.apply_to_url(&url).unwrap(), None)
        } else {
            (url, Some(signed.cookie_header()))
        };
        let request = ViewerRequest { url: &request_url, cookie_header: cookies.as_deref(), client_ip, now: NOW };
        let verdict = verify(keys, &request);
        prop_assert!(verdict.is_allowed(), "{:?}", verdict.result);
    }

    #[test]
    fn flipping_a_policy_byte_denies_as_malformed_or_bad_signature(
        s in scenario(), index in any::<prop::sample::Index>(), mask in 1..=255u8,
    ) {
        let signers = fixtures();
        let Fixture { signer, keys } = &signers[s.signer % signers.len()];
        let s = Scenario { wildcard: true, ..s };
        let signed = s.sign(signer);
        let PolicyParam::Custom { encoded } = signed.policy() else { unreachable!("wildcards are custom") };
        let mut bytes = decode_base64(encoded).unwrap();
        let i = index.index(bytes.len());
        bytes[i] ^= mask;
        let mut pairs = signed.cookies();
        replace_value(&mut pairs, "CloudFront-Policy", encode_base64(&bytes));
        let result = verdict_for(&s, keys, &pairs);
        if serde_json::from_slice::<serde_json::Value>(&bytes).is_err() {
            prop_assert_eq!(result, Err(DenialKind::MalformedPolicy));
        } else {
            prop_assert!(
                matches!(result, Err(DenialKind::MalformedPolicy | DenialKind::BadSignature)),
                "{:?}", result
            );
        }
    }

    #[test]
    fn flipping_a_signature_byte_denies_as_bad_signature(
        s in scenario(), index in any::<prop::sample::Index>(), mask in 1..=255u8,
    ) {
        let signers = fixtures();
        let Fixture { signer, keys } = &signers[s.signer % signers.len()];
        let signed = s.sign(signer);
        let mut bytes = decode_base64(signed.signature()).unwrap();
        let i = index.index(bytes.len());
        bytes[i] ^= mask;
        let mut pairs = signed.cookies();
        replace_value(&mut pairs, "CloudFront-Signature", encode_base64(&bytes));
        prop_assert_eq!(verdict_for(&s, keys, &pairs), Err(DenialKind::BadSignature));
    }

    #[test]
    fn changing_a_key_id_character_denies_as_unknown_key(
        s in scenario(), index in any::<prop::sample::Index>(), replacement in "[A-Za-z0-9]",
    ) {
        let signers = fixtures();
        let Fixture { signer, keys } = &signers[s.signer % signers.len()];
        let signed = s.sign(signer);
        let mut id: Vec<char> = signed.key_pair_id().as_str().chars().collect();
        let i = index.index(id.len());
        let replacement = replacement.chars().next().unwrap();
        prop_assume!(id[i] != replacement);
        id[i] = replacement;
        let mut pairs = signed.cookies();
        replace_value(&mut pairs, "CloudFront-Key-Pair-Id", id.into_iter().collect());
        prop_assert_eq!(verdict_for(&s, keys, &pairs), Err(DenialKind::UnknownKeyPairId));
    }

    #[test]
    fn no_edit_to_an_encoded_cookie_value_is_ever_allowed(
        s in scenario(), which in 0..2usize, index in any::<prop::sample::Index>(), replacement in "[ -:<-~]",
    ) {
        let signers = fixtures();
        let Fixture { signer, keys } = &signers[s.signer % signers.len()];
        let signed = s.sign(signer);
        let mut pairs = signed.cookies();
        let value = &mut pairs[which].1;
        let mut chars: Vec<char> = value.chars().collect();
        let i = index.index(chars.len());
        let replacement = replacement.chars().next().unwrap();
        prop_assume!(chars[i] != replacement);
        chars[i] = replacement;
        *value = chars.into_iter().collect();
        prop_assert!(verdict_for(&s, keys, &pairs).is_err());
    }

    #[test]
    fn wildcard_matching_agrees_with_the_reference(pattern in "[ab*?é/]{0,8}", text in "[abé/]{0,12}") {
        let p: Vec<char> = pattern.chars().collect();
        let t: Vec<char> = text.chars().collect();
        prop_assert_eq!(wildcard_matches(&pattern, &text), reference(&p, &t));
    }
}

/// The definition, written as directly as possible.
fn reference(pattern: &[char], text: &[char]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some('*'), _) => {
            reference(&pattern[1..], text) || (!text.is_empty() && reference(pattern, &text[1..]))
        }
        (Some('?'), Some(_)) => reference(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => reference(&pattern[1..], &text[1..]),
        _ => false,
    }
}

/// A grant pattern over a small alphabet, so requests often meet it.
fn grant_pattern() -> impl Strategy<Value = String> {
    "/[ab*?]{0,3}(/[ab*?]{0,3}){0,2}"
}

/// A requested path and shape (None: implied by a trailing `/`).
fn shaped_request() -> impl Strategy<Value = (String, Option<cfmint::auth::path::Match>)> {
    use cfmint::auth::path::Match;
    (
        "/[ab]{0,3}(/[ab]{1,3}){0,2}/?",
        proptest::option::of(prop_oneof![
            Just(Match::Exact),
            Just(Match::Folder),
            Just(Match::Prefix)
        ]),
    )
}

/// The minter that `cfmint serve` builds, signing inline with a throwaway key.
fn minter() -> &'static (cfmint::minter::Minter, PublicKeys, tokio::runtime::Runtime) {
    static MINTER: std::sync::OnceLock<(
        cfmint::minter::Minter,
        PublicKeys,
        tokio::runtime::Runtime,
    )> = std::sync::OnceLock::new();
    MINTER.get_or_init(|| {
        let toml = format!(
            "[cloudfront]\nbase_url = \"{BASE}\"\n[mint]\nsigning = \"inline\"\nexpiry_rounding = \"1m\"\n[auth.jwt]\nalgorithms = [\"HS256\"]\nhmac_secret = \"{}\"\n", "k".repeat(32)
        );
        let settings = cfmint::Settings::load(&toml, std::iter::empty()).unwrap();
        let ring = cfmint::keyring::key_ring(&settings).unwrap();
        let keys = ring.public_keys().unwrap();
        let minter =
            cfmint::minter::Minter::new(ring, settings.cloudfront, settings.mint).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        (minter, keys, runtime)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Whatever shape is asked for, a mint the grants allow signs nothing
    /// outside them: every URL the policy lets through (per the verifier)
    /// matches some grant.
    #[test]
    fn a_minted_policy_allows_nothing_outside_the_grants(
        patterns in proptest::collection::vec(grant_pattern(), 1..4),
        (path, shape) in shaped_request(),
        suffixes in proptest::collection::vec("[ab/.]{0,4}", 8),
    ) {
        use cfmint::auth::grants::{Grant, Grants};
        use cfmint::auth::path::RequestedPath;
        use cfmint::auth::{Identity, Method};

        let Ok(requested) = RequestedPath::with_match(&path, 1024, shape) else {
            return Ok(());
        };
        let grants = Grants {
            grants: vec![Grant { when: None, patterns: patterns.clone() }],
            paths_claim: None,
        };
        let identity = Identity::new("alice".into(), Method::Users);
        if !grants.allows(&identity, &requested) {
            return Ok(());
        }
        let (minter, keys, runtime) = minter();
        let scope = grants.scope_for(&identity);
        let minted = runtime
            .block_on(minter.mint(cfmint::minter::MintRequest::new(&requested, &scope)))
            .unwrap();
        let cookies = minted.signed.cookie_header();
        let mut urls = vec![path.clone()];
        urls.extend(suffixes.iter().map(|suffix| format!("{path}{suffix}")));
        for url_path in urls {
            let url = format!("{BASE}{url_path}");
            let request = ViewerRequest {
                url: &url,
                cookie_header: Some(&cookies),
                client_ip: None,
                now: minted.issued_at,
            };
            if verify(keys, &request).is_allowed() {
                prop_assert!(
                    patterns.iter().any(|p| wildcard_matches(p, &url_path)),
                    "{url_path} allowed by a mint of {path} ({shape:?}) outside {patterns:?}"
                );
            }
        }
    }
}

#[path = "../fuzz/checks.rs"]
mod checks;

/// Grant patterns with CloudFront's wildcards, over a small alphabet so
/// that requests often meet them.
fn proof_pattern() -> impl Strategy<Value = String> {
    "/[ab*?]{0,3}(/[ab.*?]{0,3}){0,2}"
}

/// Requests an attacker would send: wildcards, escapes, dot segments,
/// non-ASCII and query strings, most of which the checks refuse.
fn proof_request() -> impl Strategy<Value = String> {
    prop_oneof![
        "/[ab]{0,3}(/[ab.]{1,3}){0,2}/?",
        "/[ab]{0,3}(/[ab.]{1,3}){0,2}\\?[ab=&.]{1,4}",
        "/[ab?*%2eé/.]{0,8}(\\?[ab?*%=&é]{0,4})?",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// The grant proof (SPEC §6): whatever is granted and asked for, with
    /// or without IP binding and an authorization answer, every URL the
    /// resource that would be signed opens under CloudFront's rules lies
    /// inside the grant; a refusal names a URL it would have opened outside.
    #[test]
    fn a_signed_resource_never_opens_a_url_outside_the_grant(
        patterns in proptest::collection::vec(proof_pattern(), 1..4),
        request in proof_request(),
        mode in 0u8..16,
    ) {
        let data = [&[mode][..], patterns.join(" ").as_bytes(), b"\n", request.as_bytes()].concat();
        checks::check("grant_proof", &data);
    }
}

#[test]
fn the_grant_proof_refuses_a_query_that_would_open_a_sibling_file() {
    use cfmint::auth::path::url_item;
    use cfmint::auth::proof::Scope;
    use cfmint::minter::MintError;

    // `/users/alice/a?txt` bound to an address (so custom) would open
    // `/users/alice/a.txt`; canned it opens only itself.
    let scope = Scope::any_of(vec!["/users/alice/a".into()]);
    let (path, query) = url_item("/users/alice/a?txt", 1024).unwrap();
    let (minter, _, _) = minter();
    let bound = cfmint::minter::MintRequest {
        query,
        ip: Some("192.0.2.7".parse().unwrap()),
        ..cfmint::minter::MintRequest::new(&path, &scope)
    };
    let Err(MintError::Widens(widening)) = minter.prepare(bound) else {
        panic!("signed a resource wider than the grant");
    };
    let outside = widening.outside.unwrap();
    assert!(wildcard_matches(
        &format!("{BASE}/users/alice/a?txt"),
        &outside
    ));
    let unbound = cfmint::minter::MintRequest {
        query,
        ..cfmint::minter::MintRequest::new(&path, &scope)
    };
    let prepared = minter.prepare(unbound).unwrap();
    assert!(!prepared.wildcards);
    for seed in [
        "\u{4}/users/alice/a\n/users/alice/a?txt",
        "\u{0}/users/alice/a\n/users/alice/a?txt",
    ] {
        checks::check("grant_proof", seed.as_bytes());
    }
}
