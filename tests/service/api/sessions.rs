//! Session lifetime (absolute, and a bearer token's `exp`), revocation by
//! subject across replicas, the Redis key prefix, and rate limits shared by
//! replicas through Redis.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

async fn revoke(app: &TestApp, sub: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("http://{}/admin/sessions/revoke", app.admin))
        .json(&json!({ "sub": sub }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_at_its_max_lifetime_however_active() {
    let app = TestApp::spawn(
        Options::default()
            .env("CFMINT__SESSION__INACTIVITY", "2s")
            .env("CFMINT__SESSION__MAX_LIFETIME", "3s"),
    )
    .await;
    let client = app.client();
    app.login(&client, "alice").await;
    // Alive (the session is found), but ending sooner than mint.min_ttl:
    // no policy would outlive it, so none is signed.
    for _ in 0..4 {
        assert_eq!(
            refusal(app.mint(&client, "/users/alice/").await).await,
            (StatusCode::UNAUTHORIZED, "credential_expiring".into())
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        refusal(app.mint(&client, "/users/alice/").await).await,
        (StatusCode::UNAUTHORIZED, "unauthenticated".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_minted_in_a_session_ends_with_it() {
    let app = TestApp::spawn(
        Options::default()
            .env("CFMINT__SESSION__INACTIVITY", "20s")
            .env("CFMINT__SESSION__MAX_LIFETIME", "40s")
            .env("CFMINT__MINT__MIN_TTL", "10s"),
    )
    .await;
    let client = app.client();
    app.login(&client, "alice").await;
    let response = app.mint(&client, "/users/alice/").await;
    assert_eq!(response.status(), StatusCode::OK);
    let minted: Value = response.json().await.unwrap();
    // mint.ttl is 10 minutes; the session has 40 s.
    assert!(minted["expires_in"].as_u64().unwrap() <= 40, "{minted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_started_from_a_token_ends_when_the_token_expires() {
    let app = TestApp::spawn(Options::default()).await;
    let client = app.client();
    let login = client
        .post(app.url("/login"))
        .bearer_auth(bearer("carol", 2, json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        refusal(app.mint(&client, "/users/carol/").await).await,
        (StatusCode::UNAUTHORIZED, "credential_expiring".into())
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        refusal(app.mint(&client, "/users/carol/").await).await,
        (StatusCode::UNAUTHORIZED, "unauthenticated".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_subject_ends_its_sessions_on_every_replica() {
    let redis = Redis::start();
    let admin_token = "an-admin-token-0123456789";
    let options = Options::with_store(StoreChoice::Redis(redis.port))
        .env("CFMINT__SESSION__REDIS_PREFIX", "tenant-a:")
        .env("CFMINT__SERVER__ADMIN_TOKEN", admin_token);
    let one = TestApp::spawn(options.clone()).await;
    let two = TestApp::spawn(options).await;
    let (alice_1, alice_2, bob) = (client(), client(), client());
    one.login(&alice_1, "alice").await;
    two.login(&alice_2, "alice").await;
    one.login(&bob, "bob").await;

    // Every key cfmint wrote carries the prefix.
    let keys = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "--scan"])
        .output()
        .unwrap();
    let keys = String::from_utf8(keys.stdout).unwrap();
    assert!(keys.lines().count() >= 5, "{keys}");
    assert!(keys.lines().all(|k| k.starts_with("tenant-a:")), "{keys}");

    assert_eq!(
        revoke(&one, "alice", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        revoke(&one, "alice", Some("wrong-token-0123456789"))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let response = revoke(&two, "alice", Some(admin_token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "sub": "alice", "revoked": 2 }));
    for (client, app) in [
        (&alice_1, &one),
        (&alice_1, &two),
        (&alice_2, &one),
        (&alice_2, &two),
    ] {
        assert_eq!(
            app.mint(client, "/users/alice/").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(one.mint(&bob, "/users/bob/").await.status(), StatusCode::OK);
    assert_eq!(two.mint(&bob, "/users/bob/").await.status(), StatusCode::OK);
    // Once more, from the command line, configured by the same variable
    // names as `serve` (the token) and `CFMINT_ADMIN_URL`: nothing left.
    let admin_url = format!("http://{}", one.admin);
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_cfmint"))
            .args(["sessions", "revoke", "--sub", "alice"])
            .env("CFMINT_ADMIN_URL", admin_url)
            .env("CFMINT__SERVER__ADMIN_TOKEN", admin_token)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "revoked 0 session(s) of alice\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_with_the_memory_store_and_from_the_command_line() {
    let app = TestApp::spawn(Options::default()).await;
    let alice = client();
    app.login(&alice, "alice").await;
    let bob = client();
    app.login(&bob, "bob").await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cfmint"))
        .args(["sessions", "revoke", "--sub", "alice", "--admin-url"])
        .arg(format!("http://{}", app.admin))
        .env_remove("CFMINT__SERVER__ADMIN_TOKEN")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "revoked 1 session(s) of alice\n"
    );
    assert_eq!(
        app.mint(&alice, "/users/alice/").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.mint(&bob, "/users/bob/").await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_in_redis_keeps_what_later_requests_write() {
    let redis = Redis::start();
    let app = TestApp::spawn(Options::with_store(StoreChoice::Redis(redis.port))).await;
    let alice = client();
    app.login(&alice, "alice").await;
    // The second mint is known as a refresh only if the first one's expiry,
    // written after login, was saved.
    for _ in 0..2 {
        assert_eq!(
            app.mint(&alice, "/users/alice/").await.status(),
            StatusCode::OK
        );
    }
    let metrics = app.metrics().await;
    assert_eq!(metric(&metrics, r#"cfmint_mints_total{kind="refresh"}"#), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_hold_across_replicas_sharing_redis() {
    let mut redis = Redis::start();
    let options = Options::with_store(StoreChoice::Redis(redis.port))
        .env("CFMINT__RATE_LIMIT__MINT_PER_IDENTITY", "3/min");
    let one = TestApp::spawn(options.clone()).await;
    let two = TestApp::spawn(options).await;
    let bearer = bearer("carol", 300, json!({}));
    let mint = |app: &TestApp| {
        reqwest::Client::new()
            .post(app.url("/mint"))
            .bearer_auth(&bearer)
            .json(&json!({ "path": "/users/carol/" }))
            .send()
    };
    let mut statuses = Vec::new();
    for app in [&one, &two, &one, &two] {
        statuses.push(mint(app).await.unwrap().status());
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    let limited = mint(&one).await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&wait), "{wait}");

    // No Redis, no unlimited minting: a bearer-token caller needs no session,
    // and still gets 503.
    redis.stop();
    let response = mint(&two).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().get("set-cookie").is_none());
}

/// The admin listener of the shipped binary, attacked from a browser page
/// and through a proxy, with no `server.admin_token` (loopback only).
#[test]
fn a_page_or_a_proxied_caller_cannot_revoke_sessions_without_the_admin_token() {
    process_setup();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let config = dir.path().join("cfmint.toml");
    let text = config_toml(&Options::default()).replace(
        "[server]\n",
        "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n",
    );
    std::fs::write(&config, text).unwrap();
    let serve = ServeProcess::start(&["--config", config.to_str().unwrap()], &[]);
    let alice = serve.logged_in_blocking();
    let revoke = |headers: &[(&str, &str)], body: &str| {
        let mut request = reqwest::blocking::Client::new()
            .post(format!("http://{}/admin/sessions/revoke", serve.admin))
            .body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().unwrap();
        let status = response.status();
        (status, response.json::<Value>().unwrap_or(Value::Null))
    };
    let body = r#"{"sub":"alice"}"#;
    // A page's request that needs no preflight: text/plain, from elsewhere.
    let (status, answer) = revoke(
        &[
            ("content-type", "text/plain"),
            ("origin", "https://evil.test"),
        ],
        body,
    );
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{answer}");
    // JSON, but from a page (a preflight the listener never answers would
    // come first; refused all the same).
    for page in [
        ("origin", "https://evil.test"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let (status, answer) = revoke(&[("content-type", "application/json"), page], body);
        assert_eq!(status, StatusCode::FORBIDDEN, "{page:?}: {answer}");
        assert_eq!(answer["error"], "origin_not_allowed");
    }
    // Through a proxy on loopback: someone else's request.
    let (status, answer) = revoke(
        &[
            ("content-type", "application/json"),
            ("x-forwarded-for", "203.0.113.7"),
        ],
        body,
    );
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["error"], "admin_token_required");
    // Nothing was revoked; the operator's own call still works.
    let minted = alice
        .post(serve.url("/mint"))
        .json(&json!({"path": "/users/alice/"}))
        .send()
        .unwrap();
    assert_eq!(minted.status(), StatusCode::OK);
    let (status, answer) = revoke(&[("content-type", "application/json")], body);
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["revoked"], 1);
}
