//! Bearer-token minting without a session, and every kind of rejected token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

fn claims(sub: &str) -> Value {
    json!({
        "sub": sub,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": now() + 300,
        "iat": now(),
    })
}

fn rs256(claims: &Value, kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    let key = EncodingKey::from_rsa_pem(fixtures().jwt_private_pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

async fn mint_with(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/mint"))
        .bearer_auth(token)
        .json(&json!({ "path": path }))
        .send()
        .await
        .unwrap()
}

async fn token_refused(app: &TestApp, token: &str) -> String {
    let response = mint_with(app, token, "/users/carol/").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get("set-cookie").is_none());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    body["message"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_mints_without_a_session() {
    let app = TestApp::spawn(Options::default()).await;
    let response = mint_with(&app, &hs256(&claims("carol")), "/users/carol/").await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookies = cloudfront_cookie_header(response.headers());
    assert!(verify(&cookies, "/users/carol/x.aac", None).is_allowed());
    assert!(
        set_cookies(response.headers())
            .iter()
            .all(|c| c.name() != "cfmint_session")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_paths_claim_extends_grants() {
    let app = TestApp::spawn(Options::default()).await;
    let mut claims = claims("carol");
    claims["cfmint_paths"] = json!(["/audiobooks/42/*", "/audiobooks/../*"]);
    let token = hs256(&claims);
    assert_eq!(
        mint_with(&app, &token, "/audiobooks/42/").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        mint_with(&app, &token, "/audiobooks/43/").await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_on_login_starts_a_session() {
    let app = TestApp::spawn(Options::default()).await;
    let client = app.client();
    let login = client
        .post(app.url("/login"))
        .bearer_auth(hs256(&claims("carol")))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.mint(&client, "/users/carol/").await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_wrong_audience_wrong_issuer_and_tampered_tokens_are_refused() {
    let app = TestApp::spawn(Options::default()).await;

    let mut expired = claims("carol");
    expired["exp"] = json!(now() - 60);
    assert!(
        token_refused(&app, &hs256(&expired))
            .await
            .contains("expired")
    );

    let mut audience = claims("carol");
    audience["aud"] = json!("someone-else");
    assert!(
        token_refused(&app, &hs256(&audience))
            .await
            .contains("audience")
    );

    let mut issuer = claims("carol");
    issuer["iss"] = json!("https://evil.example");
    assert!(
        token_refused(&app, &hs256(&issuer))
            .await
            .contains("issuer")
    );

    let mut not_yet = claims("carol");
    not_yet["nbf"] = json!(now() + 600);
    assert!(
        token_refused(&app, &hs256(&not_yet))
            .await
            .contains("not valid yet")
    );

    let wrong_key = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims("carol"),
        &EncodingKey::from_secret(b"another secret that is long enough too"),
    )
    .unwrap();
    assert!(token_refused(&app, &wrong_key).await.contains("signature"));

    // Claims swapped under a valid signature.
    let token = hs256(&claims("carol"));
    let parts: Vec<&str> = token.split('.').collect();
    let forged = URL_SAFE_NO_PAD.encode(claims("alice").to_string());
    let tampered = format!("{}.{}.{}", parts[0], forged, parts[2]);
    assert!(token_refused(&app, &tampered).await.contains("signature"));

    assert!(token_refused(&app, "not-a-jwt").await.contains("malformed"));
    let basic = reqwest::Client::new()
        .post(app.url("/mint"))
        .header("authorization", "Basic YWxpY2U6cGFzcw==")
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_missing_a_required_claim_is_refused() {
    // jsonwebtoken checks iss and aud only when present: cfmint requires
    // them (issuer and audience are configured), and exp and sub always.
    let app = TestApp::spawn(Options::default()).await;
    for claim in ["iss", "aud", "exp", "sub"] {
        let mut without = claims("carol");
        without.as_object_mut().unwrap().remove(claim);
        let message = token_refused(&app, &hs256(&without)).await;
        assert!(message.contains(claim), "{claim}: {message}");
    }
    assert_eq!(app.signatures().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alg_none_is_refused() {
    let app = TestApp::spawn(Options::default()).await;
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims("carol").to_string());
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}"),
    ] {
        let message = token_refused(&app, &token).await;
        assert!(message.contains("algorithm"), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hs256_signed_with_the_rsa_public_key_is_refused() {
    let app = TestApp::spawn(Options {
        jwt: JwtChoice::RsaPem,
        ..Options::default()
    })
    .await;
    let good = rs256(&claims("carol"), None);
    assert_eq!(
        mint_with(&app, &good, "/users/carol/").await.status(),
        StatusCode::OK
    );

    let public_pem = std::fs::read(&fixtures().jwt_public_pem).unwrap();
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims("carol"),
        &EncodingKey::from_secret(&public_pem),
    )
    .unwrap();
    assert!(token_refused(&app, &confused).await.contains("algorithm"));
}

fn jwks(kid: &str) -> String {
    let key = EncodingKey::from_rsa_pem(fixtures().jwt_private_pem.as_bytes()).unwrap();
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_is_refused_and_a_refreshed_jwks_is_used() {
    let path = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
        .keep()
        .join("jwks.json");
    std::fs::write(&path, jwks("k1")).unwrap();
    let app = TestApp::spawn(Options {
        jwt: JwtChoice::JwksFile(path.clone()),
        ..Options::default()
    })
    .await;
    let k1 = rs256(&claims("carol"), Some("k1"));
    assert_eq!(
        mint_with(&app, &k1, "/users/carol/").await.status(),
        StatusCode::OK
    );

    let k2 = rs256(&claims("carol"), Some("k2"));
    assert!(token_refused(&app, &k2).await.contains("key id"));
    assert!(
        token_refused(&app, &rs256(&claims("carol"), None))
            .await
            .contains("key id")
    );

    // The issuer rotates: the document now names k2, fetched on the unknown kid.
    std::fs::write(&path, jwks("k2")).unwrap();
    assert_eq!(
        mint_with(&app, &k2, "/users/carol/").await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_is_fetched_from_a_url() {
    let document = jwks("url-key");
    let jwks_server = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let document = document.clone();
            async move { document }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://127.0.0.1:{}/jwks.json",
        listener.local_addr().unwrap().port()
    );
    tokio::spawn(async move { axum::serve(listener, jwks_server).await });

    let app = TestApp::spawn(Options {
        jwt: JwtChoice::JwksUrl(url),
        ..Options::default()
    })
    .await;
    let token = rs256(&claims("carol"), Some("url-key"));
    assert_eq!(
        mint_with(&app, &token, "/users/carol/").await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwks_server_that_never_answers_does_not_hold_up_the_start() {
    // Accepts connections and says nothing: the JWKS client's timeout, not
    // the server, decides how long start-up waits.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks.json", silent.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().take(8) {
            held.push(stream);
        }
    });
    let started = std::time::Instant::now();
    let spawn = TestApp::spawn(Options {
        jwt: JwtChoice::JwksUrl(url),
        ..Options::default()
    });
    let app = tokio::time::timeout(std::time::Duration::from_secs(20), spawn)
        .await
        .expect("start-up gives up on the silent JWKS server");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let status = reqwest::get(app.url("/healthz")).await.unwrap().status();
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_es256_public_key_file_verifies_es256_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let key = cfmint::signer::Backend::default()
        .generate(cfmint::signer::KeySpec::EcdsaP256)
        .unwrap();
    let public = dir.path().join("jwt-es256.pem");
    std::fs::write(&public, &key.public_pem).unwrap();
    let app = TestApp::spawn(Options {
        jwt: JwtChoice::PublicKey("ES256", public),
        ..Options::default()
    })
    .await;
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::ES256),
        &claims("carol"),
        &EncodingKey::from_ec_pem(key.private_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    let response = mint_with(&app, &token, "/users/carol/").await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kids_refetch_the_jwks_at_most_once_per_interval() {
    let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let document = jwks("known");
    let counter = fetches.clone();
    let jwks_server = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let document = document.clone();
            async move { document }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, jwks_server).await });

    let app = TestApp::spawn(
        Options {
            jwt: JwtChoice::JwksUrl(url),
            ..Options::default()
        }
        .env("CFMINT__AUTH__JWT__JWKS_MIN_REFRESH_INTERVAL", "1h"),
    )
    .await;
    let at_start = fetches.load(std::sync::atomic::Ordering::SeqCst);
    // A flood of tokens naming keys nobody published must not turn into a
    // flood of requests to the issuer.
    for n in 0..5 {
        let token = rs256(&claims("carol"), Some(&format!("unknown-{n}")));
        assert!(token_refused(&app, &token).await.contains("key id"));
    }
    let after = fetches.load(std::sync::atomic::Ordering::SeqCst);
    assert!(after - at_start <= 1, "{at_start} then {after} fetches");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ed25519_public_key_file_verifies_eddsa_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("jwt-ed25519.pem");
    let public = dir.path().join("jwt-ed25519.pub.pem");
    let openssl = |args: &[&str]| {
        let status = std::process::Command::new("openssl")
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "openssl {args:?}");
    };
    openssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        private.to_str().unwrap(),
    ]);
    openssl(&[
        "pkey",
        "-in",
        private.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    let app = TestApp::spawn(Options {
        jwt: JwtChoice::PublicKey("EdDSA", public),
        ..Options::default()
    })
    .await;
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::EdDSA),
        &claims("carol"),
        &EncodingKey::from_ed_pem(&std::fs::read(&private).unwrap()).unwrap(),
    )
    .unwrap();
    let response = mint_with(&app, &token, "/users/carol/").await;
    assert_eq!(response.status(), StatusCode::OK);
}
