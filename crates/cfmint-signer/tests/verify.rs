//! The verifier decides like CloudFront: every denial reason, the exact
//! second of expiry, IP rules, and signed URLs taking precedence over cookies.

mod common;

use std::net::IpAddr;

use cfmint_signer::{
    Denial, DenialKind, HashAlgorithm, Policy, PolicyForm, PublicKeys, SignedPolicy, Verdict,
    ViewerRequest, verify,
};
use common::{Fixture, fixtures};

const BASE: &str = "https://d.example";
const EXPIRES: u64 = 1_900_000_000;
const NOW: u64 = EXPIRES - 100;

fn policy(resource: &str) -> cfmint_signer::PolicyBuilder {
    Policy::builder(resource).expires(EXPIRES)
}

fn sign(fixture: &Fixture, policy: cfmint_signer::PolicyBuilder) -> SignedPolicy {
    fixture
        .signer
        .sign(
            &policy.build().unwrap(),
            PolicyForm::Auto,
            HashAlgorithm::Sha1,
        )
        .unwrap()
}

fn header(signed: &SignedPolicy) -> String {
    signed.cookie_header()
}

fn check(
    keys: &PublicKeys,
    url: &str,
    cookies: Option<&str>,
    ip: Option<&str>,
    now: u64,
) -> Verdict {
    let client_ip = ip.map(|ip| ip.parse::<IpAddr>().unwrap());
    verify(
        keys,
        &ViewerRequest {
            url,
            cookie_header: cookies,
            client_ip,
            now,
        },
    )
}

fn denial(verdict: &Verdict) -> DenialKind {
    assert!(!verdict.is_allowed(), "is_allowed agrees with the result");
    verdict.result.as_ref().expect_err("denied").kind()
}

#[test]
fn custom_policy_cookies_allow_urls_under_the_wildcard_only() {
    for f in fixtures() {
        let cookies = header(&sign(f, policy(&format!("{BASE}/books/42/*"))));
        let inside = check(
            &f.keys,
            &format!("{BASE}/books/42/ch1/seg-001.aac"),
            Some(&cookies),
            None,
            NOW,
        );
        assert!(inside.is_allowed(), "{:?}", inside.result);
        let outside = check(
            &f.keys,
            &format!("{BASE}/books/43/x.aac"),
            Some(&cookies),
            None,
            NOW,
        );
        assert_eq!(denial(&outside), DenialKind::ResourceMismatch);
        assert_eq!(
            outside.result.unwrap_err().cloudfront_code(),
            "AccessDenied"
        );
    }
}

#[test]
fn question_mark_in_a_resource_matches_one_character() {
    for f in fixtures() {
        let cookies = header(&sign(f, policy(&format!("{BASE}/seg-00?.aac")).active(1)));
        assert!(
            check(
                &f.keys,
                &format!("{BASE}/seg-007.aac"),
                Some(&cookies),
                None,
                NOW
            )
            .is_allowed()
        );
        let two = check(
            &f.keys,
            &format!("{BASE}/seg-0077.aac"),
            Some(&cookies),
            None,
            NOW,
        );
        assert_eq!(denial(&two), DenialKind::ResourceMismatch);
    }
}

#[test]
fn canned_cookies_cover_one_exact_url() {
    for f in fixtures() {
        let url = format!("{BASE}/book.pdf");
        let signed = sign(f, policy(&url));
        assert!(!signed.is_custom());
        let cookies = header(&signed);
        assert!(check(&f.keys, &url, Some(&cookies), None, NOW).is_allowed());
        let other = check(
            &f.keys,
            &format!("{BASE}/other.pdf"),
            Some(&cookies),
            None,
            NOW,
        );
        assert_eq!(
            other.result.unwrap_err(),
            Denial::BadSignature { canned: true }
        );
    }
}

#[test]
fn expiry_is_exclusive_at_the_exact_second() {
    for f in fixtures() {
        let cookies = header(&sign(f, policy(&format!("{BASE}/*"))));
        let url = format!("{BASE}/a");
        assert!(check(&f.keys, &url, Some(&cookies), None, EXPIRES - 1).is_allowed());
        let at = check(&f.keys, &url, Some(&cookies), None, EXPIRES);
        assert_eq!(
            at.result.unwrap_err(),
            Denial::Expired {
                expires: EXPIRES,
                now: EXPIRES
            }
        );
    }
}

#[test]
fn a_start_time_is_inclusive() {
    for f in fixtures() {
        let active = NOW - 10;
        let cookies = header(&sign(f, policy(&format!("{BASE}/*")).active(active)));
        let url = format!("{BASE}/a");
        assert!(check(&f.keys, &url, Some(&cookies), None, active).is_allowed());
        let early = check(&f.keys, &url, Some(&cookies), None, active - 1);
        assert_eq!(
            early.result.unwrap_err(),
            Denial::NotYetValid {
                active,
                now: active - 1
            }
        );
    }
}

#[test]
fn ip_ranges_admit_ipv4_inside_and_nothing_else() {
    for f in fixtures() {
        let cookies = header(&sign(
            f,
            policy(&format!("{BASE}/*")).source_ip("192.0.2.0/24"),
        ));
        let url = format!("{BASE}/a");
        for allowed in ["192.0.2.7", "::ffff:192.0.2.200"] {
            assert!(
                check(&f.keys, &url, Some(&cookies), Some(allowed), NOW).is_allowed(),
                "{allowed}"
            );
        }
        for denied in [Some("192.0.3.1"), Some("2001:db8::1"), None] {
            let verdict = check(&f.keys, &url, Some(&cookies), denied, NOW);
            assert_eq!(denial(&verdict), DenialKind::IpNotAllowed, "{denied:?}");
        }
    }
}

#[test]
fn every_malformed_or_missing_part_is_named() {
    for f in fixtures() {
        let signed = sign(f, policy(&format!("{BASE}/*")));
        let good = header(&signed);
        let url = format!("{BASE}/a");
        let policy_cookie = format!(
            "CloudFront-Policy={}",
            match signed.policy() {
                cfmint_signer::PolicyParam::Custom { encoded } => encoded.clone(),
                cfmint_signer::PolicyParam::Canned { .. } => unreachable!(),
            }
        );
        let signature_cookie = format!("CloudFront-Signature={}", signed.signature());
        let cases: Vec<(Option<String>, DenialKind, &str)> = vec![
            (None, DenialKind::NoCredentials, "MissingKey"),
            (
                Some("session=abc".into()),
                DenialKind::NoCredentials,
                "MissingKey",
            ),
            (
                Some(format!("{policy_cookie}; {signature_cookie}")),
                DenialKind::Missing,
                "MissingKey",
            ),
            (
                Some(format!("{policy_cookie}; CloudFront-Key-Pair-Id=KV")),
                DenialKind::Missing,
                "MissingKey",
            ),
            (
                Some(format!("{signature_cookie}; CloudFront-Key-Pair-Id=KV")),
                DenialKind::Missing,
                "MissingKey",
            ),
            // Any one CloudFront cookie alone is a signing attempt, not nothing.
            (
                Some(policy_cookie.clone()),
                DenialKind::Missing,
                "MissingKey",
            ),
            (
                Some("CloudFront-Expires=1900000000".into()),
                DenialKind::Missing,
                "MissingKey",
            ),
            (
                Some(signature_cookie.clone()),
                DenialKind::Missing,
                "MissingKey",
            ),
            (
                Some("CloudFront-Key-Pair-Id=KV".into()),
                DenialKind::Missing,
                "MissingKey",
            ),
            (
                Some(good.replace("Key-Pair-Id=KV", "Key-Pair-Id=KOTHER")),
                DenialKind::UnknownKeyPairId,
                "InvalidKey",
            ),
            (
                Some(format!(
                    "CloudFront-Policy=!!!; {signature_cookie}; CloudFront-Key-Pair-Id=KV"
                )),
                DenialKind::MalformedPolicy,
                "MalformedPolicy",
            ),
            (
                Some(format!(
                    "CloudFront-Policy=bm90IGpzb24_; {signature_cookie}; CloudFront-Key-Pair-Id=KV"
                )),
                DenialKind::MalformedPolicy,
                "MalformedPolicy",
            ),
            (
                Some(format!(
                    "{policy_cookie}; CloudFront-Expires=1; {signature_cookie}; CloudFront-Key-Pair-Id=KV"
                )),
                DenialKind::MalformedPolicy,
                "MalformedPolicy",
            ),
            (
                Some(format!(
                    "{policy_cookie}; CloudFront-Signature=a+b/; CloudFront-Key-Pair-Id=KV"
                )),
                DenialKind::MalformedSignature,
                "MalformedSignature",
            ),
            (
                Some(format!("{good}; CloudFront-Hash-Algorithm=MD5")),
                DenialKind::UnsupportedHashAlgorithm,
                "AccessDenied",
            ),
            (
                Some(format!("{good}; CloudFront-Hash-Algorithm=SHA256")),
                DenialKind::BadSignature,
                "AccessDenied",
            ),
        ];
        for (cookies, kind, code) in cases {
            let verdict = check(&f.keys, &url, cookies.as_deref(), None, NOW);
            assert!(!verdict.is_allowed());
            let reason = verdict.result.as_ref().expect_err("denied");
            assert_eq!(reason.kind(), kind, "{cookies:?}: {reason}");
            assert_eq!(reason.cloudfront_code(), code, "{cookies:?}");
            // The reason a person reads, and the label logs and the edge's
            // x-cfmint-denial header carry.
            let (label, words) = match kind {
                DenialKind::NoCredentials => ("no_credentials", "no signature"),
                DenialKind::Missing => ("missing_part", "missing CloudFront-"),
                DenialKind::UnknownKeyPairId => ("unknown_key_pair_id", "KOTHER"),
                DenialKind::MalformedPolicy => ("malformed_policy", "malformed policy"),
                DenialKind::MalformedSignature => ("malformed_signature", "malformed signature"),
                DenialKind::UnsupportedHashAlgorithm => ("unsupported_hash_algorithm", "MD5"),
                DenialKind::BadSignature => ("bad_signature", "signature"),
                other => panic!("{other:?}"),
            };
            assert_eq!(kind.as_str(), label);
            assert!(reason.to_string().contains(words), "{reason}");
        }
    }
}

#[test]
fn a_canned_expiry_must_be_plain_epoch_digits() {
    // CloudFront rebuilds the canned policy from the Expires text: a
    // leading zero, a sign or an empty value is not the epoch that was signed.
    for f in fixtures() {
        let url = format!("{BASE}/book.pdf");
        let canned = sign(f, policy(&url)).apply_to_url(&url).unwrap();
        let plain = format!("Expires={EXPIRES}");
        assert!(canned.contains(&plain), "{canned}");
        assert!(check(&f.keys, &canned, None, None, NOW).is_allowed());
        for bad in [
            format!("Expires=0{EXPIRES}"),
            format!("Expires=+{EXPIRES}"),
            "Expires=".into(),
        ] {
            let changed = canned.replace(&plain, &bad);
            let verdict = check(&f.keys, &changed, None, None, NOW);
            assert_eq!(denial(&verdict), DenialKind::MalformedPolicy, "{bad}");
        }
    }
}

#[test]
fn a_signature_from_another_key_is_bad() {
    let fixtures = fixtures();
    let (a, b) = (&fixtures[0], &fixtures[1]);
    let cookies = header(&sign(a, policy(&format!("{BASE}/*"))));
    let verdict = check(&b.keys, &format!("{BASE}/a"), Some(&cookies), None, NOW);
    assert_eq!(
        verdict.result.unwrap_err(),
        Denial::BadSignature { canned: false }
    );
}

#[test]
fn signed_urls_keep_their_own_query_and_verify() {
    for f in fixtures() {
        let url = format!("{BASE}/book.pdf?page=3&lang=en");
        let canned = sign(f, policy(&url)).apply_to_url(&url).unwrap();
        assert!(canned.contains("?page=3&lang=en&Expires="));
        assert!(check(&f.keys, &canned, None, None, NOW).is_allowed());

        let custom = f
            .signer
            .sign(
                &policy(&format!("{BASE}/book.pdf?*")).build().unwrap(),
                PolicyForm::Custom,
                HashAlgorithm::Sha256,
            )
            .unwrap()
            .apply_to_url(&url)
            .unwrap();
        assert!(custom.ends_with("&Hash-Algorithm=SHA256"));
        assert!(check(&f.keys, &custom, None, None, NOW).is_allowed());
        let moved = custom.replace("page=3", "page=4");
        assert!(
            check(&f.keys, &moved, None, None, NOW).is_allowed(),
            "wildcard query"
        );
        let other_file = custom.replace("book.pdf", "other.pdf");
        assert_eq!(
            denial(&check(&f.keys, &other_file, None, None, NOW)),
            DenialKind::ResourceMismatch
        );
    }
}

#[test]
fn signed_url_parameters_take_precedence_over_cookies() {
    for f in fixtures() {
        let cookies = header(&sign(f, policy(&format!("{BASE}/*"))));
        let url = format!("{BASE}/a");
        // Expired URL signature, valid cookies: the URL decides.
        let expired = f
            .signer
            .sign(
                &Policy::builder(format!("{BASE}/*"))
                    .expires(NOW - 1)
                    .build()
                    .unwrap(),
                PolicyForm::Custom,
                HashAlgorithm::Sha1,
            )
            .unwrap()
            .apply_to_url(&url)
            .unwrap();
        assert_eq!(
            denial(&check(&f.keys, &expired, Some(&cookies), None, NOW)),
            DenialKind::Expired
        );
        // Any signing parameter makes it a signed URL, even an incomplete one.
        let partial = format!("{url}?Expires={EXPIRES}");
        assert_eq!(
            denial(&check(&f.keys, &partial, Some(&cookies), None, NOW)),
            DenialKind::Missing
        );
        // A plain URL falls back to the cookies.
        assert!(check(&f.keys, &url, Some(&cookies), None, NOW).is_allowed());
    }
}

#[test]
fn a_key_removed_from_the_group_no_longer_verifies() {
    for f in fixtures() {
        let cookies = header(&sign(f, policy(&format!("{BASE}/*"))));
        let empty = PublicKeys::new(vec![]).unwrap();
        let verdict = check(&empty, &format!("{BASE}/a"), Some(&cookies), None, NOW);
        assert_eq!(denial(&verdict), DenialKind::UnknownKeyPairId);
    }
}
