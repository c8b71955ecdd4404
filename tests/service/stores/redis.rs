//! Several replicas sharing one Redis, and Redis going away and coming back.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_on_one_instance_mints_on_another() {
    let redis = Redis::start();
    let one = TestApp::spawn(Options::with_store(StoreChoice::Redis(redis.port))).await;
    let two = TestApp::spawn(Options::with_store(StoreChoice::Redis(redis.port))).await;
    let client = client();
    assert_eq!(
        one.login(&client, "alice").await.status(),
        StatusCode::NO_CONTENT
    );

    // The cookie jar is per host:port-less domain, so the session cookie goes to both.
    let minted = two.mint(&client, "/users/alice/").await;
    assert_eq!(minted.status(), StatusCode::OK);
    let cookies = cloudfront_cookie_header(minted.headers());
    assert!(verify(&cookies, "/users/alice/a.aac", None).is_allowed());

    let logout = client.post(two.url("/logout")).send().await.unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        one.mint(&client, "/users/alice/").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_is_a_quick_503_and_recovery_needs_no_restart() {
    let mut redis = Redis::start();
    let app = TestApp::spawn(Options::with_store(StoreChoice::Redis(redis.port))).await;
    let client = client();
    assert_eq!(
        app.login(&client, "alice").await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.mint(&client, "/users/alice/").await.status(),
        StatusCode::OK
    );

    redis.stop();
    for attempt in ["mint", "login", "readyz"] {
        let started = Instant::now();
        let response = match attempt {
            "mint" => app.mint(&client, "/users/alice/").await,
            "login" => app.login(&client, "bob").await,
            _ => reqwest::get(app.url("/readyz")).await.unwrap(),
        };
        let elapsed = started.elapsed();
        assert_eq!(
            response.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{attempt}"
        );
        assert!(
            elapsed < Duration::from_secs(2),
            "{attempt} took {elapsed:?}"
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(
            body["error"].is_string() && body["message"].is_string(),
            "{body}"
        );
    }
    assert!(
        metric(
            &app.metrics().await,
            "cfmint_session_store_errors_total{operation=\"load\"}"
        ) >= 1
    );

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = reqwest::get(app.url("/readyz")).await.unwrap().status() == StatusCode::OK;
        if ready {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "cfmint did not reconnect to Redis"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The restarted Redis is empty: log in again, then mint.
    let client = crate::harness::client();
    assert_eq!(
        app.login(&client, "alice").await.status(),
        StatusCode::NO_CONTENT
    );
    let minted = client
        .post(app.url("/mint"))
        .json(&json!({ "path": "/users/alice/" }))
        .send()
        .await
        .unwrap();
    assert_eq!(minted.status(), StatusCode::OK);
}
