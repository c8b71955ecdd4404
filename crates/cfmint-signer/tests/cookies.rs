//! `Set-Cookie` values read back the way browsers' cookie parsers read them
//! (the `cookie` crate), for every attribute the builder sets.

use cfmint_signer::{
    Backend, CookieAttributes, HashAlgorithm, KeyPairId, KeySource, KeySpec, Policy, PolicyForm,
    PrivateKey, Resource,
};
use cookie::{Cookie, SameSite};

fn signed(form: PolicyForm, resource: &str) -> cfmint_signer::SignedPolicy {
    let backend = Backend::default();
    let pem = backend.generate(KeySpec::EcdsaP256).unwrap().private_pem;
    let id = KeyPairId::new("KTEST").unwrap();
    let key = PrivateKey::from_pem(id, &pem, KeySource::Inline, backend).unwrap();
    let policy = Policy::builder(resource)
        .expires(2_000_000_000)
        .build()
        .unwrap();
    key.sign(&policy, form, HashAlgorithm::Sha1).unwrap()
}

#[test]
fn set_cookie_values_match_the_cookie_crate_byte_for_byte() {
    let attributes = CookieAttributes::new().domain(".example.com").unwrap();
    let resource = Resource::folder("https://cdn.example.com", "/a/").unwrap();
    let signed = signed(PolicyForm::Auto, resource.as_str());
    let values = attributes.set_cookies(&signed, Some(600));
    assert_eq!(values.len(), 5, "three cookies and two removals");
    for (value, (name, content)) in values.iter().zip(signed.cookies()) {
        let expected = Cookie::build((name, content))
            .path("/")
            .secure(true)
            .http_only(true)
            .same_site(SameSite::None)
            .domain("example.com")
            .max_age(cookie::time::Duration::seconds(600))
            .build()
            .to_string();
        assert_eq!(value, &expected);
    }
    for removal in &values[3..] {
        let removal = Cookie::parse(removal.as_str()).unwrap();
        assert_eq!(removal.value(), "");
        assert_eq!(removal.max_age(), Some(cookie::time::Duration::ZERO));
        assert_eq!(removal.domain(), Some("example.com"));
        assert_eq!(removal.secure(), Some(true));
        assert_eq!(removal.http_only(), Some(true));
    }
}

#[test]
fn a_canned_policy_removes_the_custom_policy_cookie_and_logout_removes_all() {
    let attributes = CookieAttributes::new().path("/media/").unwrap();
    let values = attributes.set_cookies(
        &signed(PolicyForm::Auto, "https://cdn.example.com/a.mp4"),
        None,
    );
    let parsed: Vec<Cookie> = values
        .iter()
        .map(|v| Cookie::parse(v.as_str()).unwrap())
        .collect();
    let names: Vec<&str> = parsed.iter().map(|c| c.name()).collect();
    assert_eq!(
        names,
        [
            "CloudFront-Expires",
            "CloudFront-Signature",
            "CloudFront-Key-Pair-Id",
            "CloudFront-Policy",
            "CloudFront-Hash-Algorithm"
        ]
    );
    assert_eq!(
        parsed[0].max_age(),
        None,
        "a session cookie without Max-Age"
    );
    assert_eq!(parsed[3].max_age(), Some(cookie::time::Duration::ZERO));
    assert!(
        parsed
            .iter()
            .all(|c| c.path() == Some("/media/") && c.same_site() == Some(SameSite::None))
    );
    assert_eq!(attributes.removals().len(), 5);
}

#[test]
fn attributes_that_would_inject_text_are_refused() {
    for domain in [
        "",
        ".",
        "example.com; Secure=0",
        "a..b",
        "exa mple.com",
        "é.com",
    ] {
        assert!(
            CookieAttributes::new().domain(domain).is_err(),
            "{domain:?}"
        );
    }
    for path in ["", "media", "/a;b", "/a b", "/\n"] {
        assert!(CookieAttributes::new().path(path).is_err(), "{path:?}");
    }
}
