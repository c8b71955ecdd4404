//! Rate limits on /login and /mint: 429 with Retry-After, counted in metrics.

use reqwest::StatusCode;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_is_limited_per_identity_with_retry_after() {
    let app =
        TestApp::spawn(Options::default().env("CFMINT__RATE_LIMIT__LOGIN_PER_IDENTITY", "2/min"))
            .await;
    let client = app.client();
    for _ in 0..2 {
        assert_eq!(
            app.login(&client, "alice").await.status(),
            StatusCode::NO_CONTENT
        );
    }
    let limited = app.login(&client, "alice").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    // Another identity from the same address is not affected.
    assert_eq!(
        app.login(&client, "bob").await.status(),
        StatusCode::NO_CONTENT
    );
    let metrics = app.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "cfmint_rate_limited_total{limit=\"login_per_identity\"}"
        ),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_is_limited_per_address() {
    let app =
        TestApp::spawn(Options::default().env("CFMINT__RATE_LIMIT__LOGIN_PER_ADDRESS", "3/min"))
            .await;
    let client = app.client();
    for name in ["alice", "bob", "tess"] {
        assert_eq!(
            app.login(&client, name).await.status(),
            StatusCode::NO_CONTENT
        );
    }
    assert_eq!(
        app.login(&client, "carol").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mint_is_limited_per_identity_and_nothing_is_signed_past_it() {
    let app =
        TestApp::spawn(Options::default().env("CFMINT__RATE_LIMIT__MINT_PER_IDENTITY", "2/min"))
            .await;
    let client = app.client();
    app.login(&client, "alice").await;
    for _ in 0..2 {
        assert_eq!(
            app.mint(&client, "/users/alice/").await.status(),
            StatusCode::OK
        );
    }
    let signed = app.signatures().await;
    let limited = app.mint(&client, "/users/alice/").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
    assert!(limited.headers().get("set-cookie").is_none());
    assert_eq!(app.signatures().await, signed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mint_is_limited_per_address_across_identities() {
    let app =
        TestApp::spawn(Options::default().env("CFMINT__RATE_LIMIT__MINT_PER_ADDRESS", "2/min"))
            .await;
    for (name, expected) in [
        ("alice", StatusCode::OK),
        ("bob", StatusCode::OK),
        ("tess", StatusCode::TOO_MANY_REQUESTS),
    ] {
        let client = app.client();
        app.login(&client, name).await;
        let path = format!("/users/{name}/");
        assert_eq!(app.mint(&client, &path).await.status(), expected, "{name}");
    }
}
