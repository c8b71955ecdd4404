//! IP binding: the bound address comes from the socket, or from forwarding
//! headers only when the peer is a trusted proxy.

use std::net::IpAddr;

use cfmint::signer::decode_base64;
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::*;

fn bound_policy(headers: &reqwest::header::HeaderMap) -> String {
    let policy = set_cookies(headers)
        .into_iter()
        .find(|c| c.name() == "CloudFront-Policy" && !c.value().is_empty())
        .expect("a custom policy");
    String::from_utf8(decode_base64(policy.value()).unwrap()).unwrap()
}

async fn mint_with_headers(app: &TestApp, headers: &[(&str, &str)]) -> reqwest::Response {
    let client = app.client();
    app.login(&client, "alice").await;
    let mut request = client
        .post(app.url("/mint"))
        .json(&json!({ "path": "/users/alice/" }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

const SPOOFED: &[(&str, &str)] = &[
    ("x-forwarded-for", "203.0.113.9"),
    ("cloudfront-viewer-address", "198.51.100.7:443"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_headers_from_an_untrusted_peer_do_not_change_the_bound_ip() {
    let app = TestApp::spawn(Options::default().env("CFMINT__MINT__IP_BINDING", "true")).await;
    let response = mint_with_headers(&app, SPOOFED).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let policy = bound_policy(&headers);
    assert!(
        policy.contains(r#""AWS:SourceIp":"127.0.0.1/32""#),
        "{policy}"
    );

    let cookies = cloudfront_cookie_header(&headers);
    let me: IpAddr = "127.0.0.1".parse().unwrap();
    let spoofed: IpAddr = "203.0.113.9".parse().unwrap();
    assert!(verify(&cookies, "/users/alice/a.aac", Some(me)).is_allowed());
    assert!(!verify(&cookies, "/users/alice/a.aac", Some(spoofed)).is_allowed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_sets_the_bound_ip() {
    let app = TestApp::spawn(
        Options::default()
            .env("CFMINT__MINT__IP_BINDING", "true")
            .env("CFMINT__SERVER__TRUSTED_PROXIES", "127.0.0.0/8"),
    )
    .await;
    let viewer = mint_with_headers(&app, SPOOFED).await;
    let policy = bound_policy(viewer.headers());
    assert!(
        policy.contains(r#""AWS:SourceIp":"198.51.100.7/32""#),
        "{policy}"
    );

    let forwarded = mint_with_headers(
        &app,
        &[("x-forwarded-for", "192.0.2.1, 203.0.113.9, 127.0.0.5")],
    )
    .await;
    let policy = bound_policy(forwarded.headers());
    assert!(
        policy.contains(r#""AWS:SourceIp":"203.0.113.9/32""#),
        "{policy}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_clients_are_refused_or_unbound_as_configured() {
    let options = Options::default()
        .env("CFMINT__MINT__IP_BINDING", "true")
        .env("CFMINT__SERVER__TRUSTED_PROXIES", "127.0.0.1");
    let v6 = [("cloudfront-viewer-address", "2001:db8::7:443")];

    let refuse = TestApp::spawn(options.clone().env("CFMINT__MINT__IPV6", "refuse")).await;
    let response = mint_with_headers(&refuse, &v6).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().get("set-cookie").is_none());

    let unbound = TestApp::spawn(options.env("CFMINT__MINT__IPV6", "unbound")).await;
    let response = mint_with_headers(&unbound, &v6).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!bound_policy(response.headers()).contains("SourceIp"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_urls_are_bound_to_the_client_too() {
    let app = TestApp::spawn(Options::default().env("CFMINT__MINT__IP_BINDING", "true")).await;
    let client = app.client();
    app.login(&client, "alice").await;
    let response = client
        .post(app.url("/sign-urls"))
        .json(&json!({ "urls": ["/users/alice/a.pdf?w=1"] }))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    let url = body["urls"][0]["url"].as_str().unwrap();
    assert!(
        url.contains("&Policy="),
        "an IP-bound URL needs a custom policy: {url}"
    );
    let verdict = |ip: &str| {
        cfmint::signer::verify(
            &fixtures().public_keys,
            &cfmint::signer::ViewerRequest {
                url,
                cookie_header: None,
                client_ip: Some(ip.parse().unwrap()),
                now: now(),
            },
        )
        .is_allowed()
    };
    assert!(verdict("127.0.0.1"));
    assert!(!verdict("203.0.113.9"));
}
