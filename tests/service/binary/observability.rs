//! What operators see: one log event per mint and per signed URL (allowed or
//! refused) from the shipped binary, subjects shown as configured, never a
//! signature or cookie; and how early sessions re-mint.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

/// The log events with message "mint" so far.
fn mint_events(serve: &mut ServeProcess) -> Vec<Value> {
    serve
        .drain_log()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|entry| entry["message"] == "mint")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mint_and_signed_url_is_one_event_with_a_hashed_subject() {
    process_setup();
    let mut serve = ServeProcess::start(
        &[],
        &[
            ("CFMINT__SERVER__LISTEN", "127.0.0.1:0"),
            ("CFMINT__SERVER__ADMIN_LISTEN", "127.0.0.1:0"),
            ("CFMINT__LOG__SUBJECT", "hash"),
            ("CFMINT__LOG__SUBJECT_KEY", "a-key-for-log-subjects"),
        ],
    );
    let client = client();
    serve.login_as(&client, "demo", "demo").await;
    let minted = client
        .post(serve.url("/mint"))
        .json(&json!({ "path": "/users/demo/book", "match": "prefix" }))
        .send()
        .await
        .unwrap();
    assert_eq!(minted.status(), StatusCode::OK);
    let request_id = minted.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let signature = cloudfront_cookie_header(minted.headers());
    let refused = client
        .post(serve.url("/mint"))
        .json(&json!({ "path": "/users/other/" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let urls = client
        .post(serve.url("/sign-urls"))
        .json(&json!({ "urls": ["/users/demo/a.pdf?w=1", "/users/demo/b*.pdf"] }))
        .send()
        .await
        .unwrap();
    let urls: Value = urls.json().await.unwrap();
    let signed_url = urls["urls"][0]["url"].as_str().unwrap().to_owned();

    let events = mint_events(&mut serve);
    assert_eq!(events.len(), 4, "{events:#?}");
    let hashed = events[0]["sub"].as_str().unwrap();
    assert_eq!(hashed.len(), 16);
    assert_ne!(hashed, "demo");
    assert!(events.iter().all(|e| e["sub"] == hashed), "{events:#?}");
    let first = &events[0];
    assert_eq!(first["route"], "mint");
    assert_eq!(first["outcome"], "signed");
    assert_eq!(first["match"], "prefix");
    assert_eq!(first["policy"], "custom");
    assert!(
        first["resource"]
            .as_str()
            .unwrap()
            .ends_with("/users/demo/book*")
    );
    assert!(first["expires_at"].as_u64().unwrap() > now());
    assert!(first["key_pair_id"].as_str().unwrap().starts_with('K'));
    // The request's id comes with the event (from the request's span).
    assert_eq!(first["spans"][0]["request_id"], request_id, "{first}");
    assert_eq!(events[1]["outcome"], "not_granted");
    assert_eq!(events[1]["path"], "/users/other/");
    assert_eq!(events[2]["route"], "sign_urls");
    assert_eq!(events[2]["outcome"], "signed");
    assert_eq!(events[3]["outcome"], "invalid_path");
    assert!(events[3]["reason"].as_str().unwrap().contains("wildcards"));

    // Nothing that grants access is ever written down.
    let log = serve.drain_log();
    let url_signature = signed_url
        .split("Signature=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    for secret in signature.split("; ").map(|c| c.split_once('=').unwrap().1) {
        if secret.len() > 20 {
            assert!(!log.contains(secret), "a cookie value is in the log");
        }
    }
    assert!(
        !log.contains(url_signature),
        "a URL signature is in the log"
    );
    assert!(!log.contains("\"demo\""), "the plain subject is in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_are_counted_with_how_much_lifetime_was_left() {
    let app = TestApp::spawn(Options::default()).await;
    let client = app.client();
    app.login(&client, "alice").await;
    for _ in 0..3 {
        assert_eq!(
            app.mint(&client, "/users/alice/").await.status(),
            StatusCode::OK
        );
    }
    // Another session's first mint is a first too.
    let other = app.client();
    app.login(&other, "bob").await;
    app.mint(&other, "/users/bob/").await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let metrics = app.metrics().await;
    assert_eq!(metric(&metrics, r#"cfmint_mints_total{kind="first"}"#), 2);
    assert_eq!(metric(&metrics, r#"cfmint_mints_total{kind="refresh"}"#), 2);
    assert_eq!(
        metric(&metrics, "cfmint_refresh_remaining_seconds_count"),
        2
    );
    // Re-minted at once, with nearly all of the 10 minutes left.
    assert_eq!(
        metric(
            &metrics,
            r#"cfmint_refresh_remaining_seconds_bucket{le="300.0"}"#
        ),
        0
    );
    assert_eq!(
        metric(
            &metrics,
            r#"cfmint_refresh_remaining_seconds_bucket{le="600.0"}"#
        ),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_a_mint_event_with_its_cause_and_a_bearer_remint_is_a_refresh() {
    process_setup();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let config = dir.path().join("cfmint.toml");
    std::fs::write(&config, config_toml(&Options::default())).unwrap();
    let mut serve = ServeProcess::start(&["--config", config.to_str().unwrap()], &[]);
    let client = reqwest::Client::new();
    let url = serve.url("/mint");
    let mint = |token: String, cookies: Option<String>| {
        let mut request = client
            .post(&url)
            .bearer_auth(token)
            .json(&json!({ "path": "/users/carol/" }));
        if let Some(cookies) = cookies {
            request = request.header("cookie", cookies);
        }
        request.send()
    };
    let good = bearer("carol", 300, json!({}));
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "carol", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 300}),
        &jsonwebtoken::EncodingKey::from_secret(b"another secret, long enough for HS256"),
    )
    .unwrap();
    for (count, (token, cause)) in [
        (bearer("carol", -60, json!({})), "expired"),
        (
            bearer("carol", 300, json!({ "aud": "someone-else" })),
            "audience",
        ),
        (forged, "signature"),
    ]
    .into_iter()
    .enumerate()
    {
        let refused = mint(token, None).await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        let events = mint_events(&mut serve);
        assert_eq!(events.len(), count + 1, "{events:#?}");
        let event = events.last().unwrap();
        assert_eq!(event["outcome"], "invalid_token");
        assert!(
            event["reason"].as_str().unwrap().contains(cause),
            "{cause}: {event}"
        );
        let requests: Vec<Value> = serve
            .log
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|entry| entry["message"] == "request")
            .collect();
        let last = requests.last().unwrap();
        assert!(last["cause"].as_str().unwrap().contains(cause), "{last}");
    }

    // A bearer caller that re-mints with its cookies still live: a refresh.
    let first = mint(good.clone(), None).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let cookies = cloudfront_cookie_header(first.headers());
    let again = mint(good.clone(), Some(cookies)).await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let metrics = serve.metrics().await;
    assert_eq!(metric(&metrics, r#"cfmint_mints_total{kind="first"}"#), 1);
    assert_eq!(metric(&metrics, r#"cfmint_mints_total{kind="refresh"}"#), 1);
    assert_eq!(
        metric(
            &metrics,
            r#"cfmint_mint_outcomes_total{route="mint",outcome="invalid_token"}"#
        ),
        3
    );
}
