//! An app with its own authentication that mints with bearer tokens: rate
//! limited per user, reachable only through the CDN (origin lock), and with
//! protected API routes behind the edge that take POSTs with a body.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;
use crate::harness::{KEY_ID, cloudfront_cookie_header, fixtures, jwt_hs256_table};

const LOCK: &str = "a-secret-only-cloudfront-knows";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_mints_with_its_tokens_behind_the_cdn_and_guards_its_api() {
    crate::harness::process_setup();
    // The app's API, behind the edge as behind CloudFront.
    let reached = Arc::new(AtomicUsize::new(0));
    let counter = reached.clone();
    let api = axum::Router::new().route(
        "/api/notes",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            counter.fetch_add(1, Ordering::SeqCst);
            let user = headers
                .get("x-app-user")
                .map(|v| v.to_str().unwrap().to_owned());
            async move { axum::Json(json!({ "stored": body, "user": user })) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, api).await });
    let edge = EdgeProcess::start(
        &format!("origin_url = \"{api_url}\"\nforward_headers = [\"x-app-user\"]"),
        &[(KEY_ID, &fixtures().signing_key)],
    );

    let dir = tempfile::tempdir().unwrap();
    let jwt = jwt_hs256_table();
    let config = serve_config(
        dir.path(),
        &edge.public_url,
        &format!(
            r#"
{jwt}
[[grants]]
paths = ["/api/*"]

[rate_limit]
mint_per_identity = "3/min"
"#
        ),
    );
    let serve = ServeProcess::with_config(
        &config,
        &[
            ("CFMINT__SERVER__ORIGIN_HEADER", "x-origin-verify"),
            ("CFMINT__SERVER__ORIGIN_SECRET", LOCK),
        ],
    );
    let client = reqwest::Client::new();
    let mint = |sub: &str, locked: bool| {
        let mut request = client
            .post(serve.url("/mint"))
            .bearer_auth(bearer(sub, 300, json!({})))
            .json(&json!({ "path": "/api/", "match": "folder" }));
        if locked {
            request = request.header("x-origin-verify", LOCK);
        }
        request.send()
    };

    // Not through the CDN: refused before anything else.
    let direct = mint("alice", false).await.unwrap();
    assert_eq!(direct.status(), StatusCode::FORBIDDEN);
    let body: Value = direct.json().await.unwrap();
    assert_eq!(body["error"], "origin_locked");

    let minted = mint("alice", true).await.unwrap();
    assert_eq!(minted.status(), StatusCode::OK);
    let cookies = cloudfront_cookie_header(minted.headers());

    // The API route takes a POST with a body only with the cookies.
    let post = |cookies: Option<String>| {
        let mut request = client
            .post(edge.url("/api/notes"))
            .header("x-app-user", "alice")
            .body("{\"note\":\"buy milk\"}");
        if let Some(cookies) = cookies {
            request = request.header("cookie", cookies);
        }
        request.send()
    };
    let stored = post(Some(cookies.clone())).await.unwrap();
    assert_eq!(stored.status(), StatusCode::OK);
    let body: Value = stored.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "stored": "{\"note\":\"buy milk\"}", "user": "alice" })
    );
    let refused = post(None).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(reached.load(Ordering::SeqCst), 1);

    // Three mints a minute per user: the fourth waits; another user does not.
    for _ in 0..2 {
        assert_eq!(mint("alice", true).await.unwrap().status(), StatusCode::OK);
    }
    let limited = mint("alice", true).await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(mint("bob", true).await.unwrap().status(), StatusCode::OK);
}
