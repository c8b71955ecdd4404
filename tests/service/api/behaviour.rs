//! The behaviour suite, run once per session store (memory and a real Redis).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

macro_rules! store_suite {
    ($store:ident, $choice:expr) => {
        mod $store {
            use crate::harness::*;

            async fn app() -> (TestApp, Option<Redis>) {
                let (choice, redis) = $choice;
                (TestApp::spawn(Options::with_store(choice)).await, redis)
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn login_mint_verify_logout_round_trip() {
                let (app, _redis) = app().await;
                super::login_mint_verify_logout_round_trip(&app).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn wrong_password_and_unknown_user_get_the_same_401() {
                let (app, _redis) = app().await;
                super::wrong_password_and_unknown_user_get_the_same_401(&app).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn session_id_is_rotated_at_login() {
                let (app, _redis) = app().await;
                super::session_id_is_rotated_at_login(&app).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sign_urls_answers_per_item() {
                let (app, _redis) = app().await;
                super::sign_urls_answers_per_item(&app).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn claim_condition_grants_extra_paths() {
                let (app, _redis) = app().await;
                super::claim_condition_grants_extra_paths(&app).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn readyz_is_200_with_key_and_store() {
                let (app, _redis) = app().await;
                super::readyz_is_200_with_key_and_store(&app).await;
            }
        }
    };
}

store_suite!(memory, (StoreChoice::Memory, None::<Redis>));
store_suite!(redis, {
    let redis = Redis::start();
    (StoreChoice::Redis(redis.port), Some(redis))
});

async fn login_mint_verify_logout_round_trip(app: &TestApp) {
    let client = app.client();
    assert_eq!(
        app.mint(&client, "/users/alice/").await.status(),
        StatusCode::UNAUTHORIZED
    );

    let login = app.login(&client, "alice").await;
    assert_eq!(login.status(), StatusCode::NO_CONTENT);
    let session = set_cookies(login.headers())
        .into_iter()
        .find(|c| c.name() == "cfmint_session")
        .expect("a session cookie");
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(session.secure(), Some(true));
    assert_eq!(session.same_site(), Some(cookie::SameSite::Lax));

    let minted = app.mint(&client, "/users/alice/").await;
    assert_eq!(minted.status(), StatusCode::OK);
    assert_eq!(minted.headers()["cache-control"], "no-store");
    let headers = minted.headers().clone();
    let body: Value = minted.json().await.unwrap();
    let expires_at = body["expires_at"].as_u64().unwrap();
    let refresh_at = body["refresh_at"].as_u64().unwrap();
    assert_eq!(body["resource"], format!("{BASE_URL}/users/alice/*"));
    assert_eq!(body["key_pair_id"], KEY_ID);
    assert_eq!(body["policy"], "custom");
    let lifetime = expires_at - now();
    assert!((595..=600).contains(&lifetime), "{lifetime}");
    assert!(refresh_at > now() && refresh_at < expires_at);

    let cookies = set_cookies(&headers);
    for name in [
        "CloudFront-Policy",
        "CloudFront-Signature",
        "CloudFront-Key-Pair-Id",
    ] {
        let cookie = cookies
            .iter()
            .find(|c| c.name() == name && !c.value().is_empty())
            .unwrap_or_else(|| panic!("{name} set"));
        assert_eq!(cookie.secure(), Some(true), "{name}");
        assert_eq!(cookie.http_only(), Some(true), "{name}");
        assert_eq!(cookie.same_site(), Some(cookie::SameSite::None), "{name}");
        assert_eq!(cookie.path(), Some("/"), "{name}");
        assert_eq!(cookie.domain(), Some(COOKIE_DOMAIN), "{name}");
        let max_age = cookie.max_age().unwrap().whole_seconds() as u64;
        assert!(max_age.abs_diff(lifetime) <= 1, "{name} Max-Age {max_age}");
    }

    let cloudfront = cloudfront_cookie_header(&headers);
    assert!(verify(&cloudfront, "/users/alice/book/ch1.m3u8", None).is_allowed());
    assert!(verify(&cloudfront, "/users/alice/seg-001.aac", None).is_allowed());
    assert!(!verify(&cloudfront, "/users/bob/seg-001.aac", None).is_allowed());
    assert!(!verify(&cloudfront, "/users/alice", None).is_allowed());

    let logout = client.post(app.url("/logout")).send().await.unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    for cookie in cleared_cloudfront_cookies(logout.headers()) {
        assert_eq!(cookie.domain(), Some(COOKIE_DOMAIN));
        assert_eq!(cookie.path(), Some("/"));
    }
    let cleared = set_cookies(logout.headers());
    assert!(cleared.iter().any(|c| c.name() == "cfmint_session"));
    assert_eq!(
        app.mint(&client, "/users/alice/").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn wrong_password_and_unknown_user_get_the_same_401(app: &TestApp) {
    let client = app.client();
    let mut bodies = Vec::new();
    for (username, password) in [("alice", "wrong"), ("nobody", PASSWORD)] {
        let response = client
            .post(app.url("/login"))
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().get("set-cookie").is_none());
        bodies.push(response.text().await.unwrap());
    }
    assert_eq!(bodies[0], bodies[1]);
    let body: Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(body["error"], "invalid_credentials");
}

async fn session_id_is_rotated_at_login(app: &TestApp) {
    let client = app.client();
    let first = session_cookie(&app.login(&client, "alice").await);
    let second = session_cookie(&app.login(&client, "alice").await);
    assert_ne!(first, second);

    // The old id no longer works.
    let stale = reqwest::Client::new()
        .post(app.url("/mint"))
        .header("cookie", format!("cfmint_session={first}"))
        .json(&json!({ "path": "/users/alice/" }))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.mint(&client, "/users/alice/").await.status(),
        StatusCode::OK
    );
}

fn session_cookie(response: &reqwest::Response) -> String {
    set_cookies(response.headers())
        .into_iter()
        .find(|c| c.name() == "cfmint_session")
        .expect("a session cookie")
        .value()
        .to_owned()
}

async fn sign_urls_answers_per_item(app: &TestApp) {
    let client = app.client();
    app.login(&client, "alice").await;
    let response = client
        .post(app.url("/sign-urls"))
        .json(&json!({ "urls": ["/users/alice/a.pdf", "/users/bob/b.pdf", "/users/alice/../bob/c.pdf", "/users/alice/"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let items = body["urls"].as_array().unwrap();
    let url = items[0]["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{BASE_URL}/users/alice/a.pdf?Expires=")));
    let verdict = cfmint::signer::verify(
        &fixtures().public_keys,
        &cfmint::signer::ViewerRequest {
            url,
            cookie_header: None,
            client_ip: None,
            now: now(),
        },
    );
    assert!(verdict.is_allowed(), "{:?}", verdict.result);
    assert_eq!(items[1]["error"], "not_granted");
    assert_eq!(items[2]["error"], "invalid_path");
    assert_eq!(items[3]["error"], "invalid_path");

    let too_many: Vec<String> = (0..6).map(|i| format!("/users/alice/{i}.pdf")).collect();
    let response = client
        .post(app.url("/sign-urls"))
        .json(&json!({ "urls": too_many }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

async fn claim_condition_grants_extra_paths(app: &TestApp) {
    let teacher = app.client();
    app.login(&teacher, "tess").await;
    assert_eq!(
        app.mint(&teacher, "/materials/").await.status(),
        StatusCode::OK
    );
    let student = app.client();
    app.login(&student, "bob").await;
    assert_eq!(
        app.mint(&student, "/materials/").await.status(),
        StatusCode::FORBIDDEN
    );
}

async fn readyz_is_200_with_key_and_store(app: &TestApp) {
    let response = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["key_pair_id"], KEY_ID);
    assert_eq!(
        reqwest::get(app.url("/healthz")).await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_drains_and_closes_the_listener() {
    let app = TestApp::spawn(Options::default()).await;
    let addr = app.addr;
    let client = app.client();
    let in_flight = tokio::spawn({
        let url = app.url("/login");
        async move {
            client
                .post(url)
                .json(&json!({ "username": "alice", "password": PASSWORD }))
                .send()
                .await
                .map(|r| r.status())
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    app.stop().await.unwrap();
    assert_eq!(in_flight.await.unwrap().unwrap(), StatusCode::NO_CONTENT);
    assert!(std::net::TcpStream::connect(addr).is_err());
}

/// A mint with the session cookie sent by hand: a cookie-keeping client
/// would drop it itself at Max-Age.
async fn mint_with_session(app: &TestApp, session: &str) -> reqwest::Result<reqwest::Response> {
    reqwest::Client::new()
        .post(app.url("/mint"))
        .header("cookie", format!("cfmint_session={session}"))
        .json(&json!({ "path": "/users/alice/" }))
        .send()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inactive_session_expires() {
    let app = TestApp::spawn(Options::default().env("CFMINT__SESSION__INACTIVITY", "1s")).await;
    let client = app.client();
    let session = session_cookie(&app.login(&client, "alice").await);
    let mint = || mint_with_session(&app, &session);
    assert_eq!(mint().await.unwrap().status(), StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(mint().await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_in_use_outlives_its_inactivity_timeout() {
    let app = TestApp::spawn(Options::default().env("CFMINT__SESSION__INACTIVITY", "3s")).await;
    let client = app.client();
    let session = session_cookie(&app.login(&client, "alice").await);
    let mint = || mint_with_session(&app, &session);
    // Used every 1.2 s for 6 s: twice the inactivity timeout, still valid.
    for round in 0..5 {
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        assert_eq!(
            mint().await.unwrap().status(),
            StatusCode::OK,
            "round {round}"
        );
    }
    tokio::time::sleep(std::time::Duration::from_millis(4200)).await;
    assert_eq!(mint().await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_measured_by_route_and_method() {
    let app = TestApp::spawn(Options::default()).await;
    let client = app.client();
    app.login(&client, "alice").await;
    for (method, path) in [
        ("POST", "/mint"),
        ("POST", "/sign-urls"),
        ("POST", "/logout"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/cfmint.js"),
        ("GET", "/login/oidc"),
        ("GET", "/callback"),
        ("GET", "/nowhere"),
        ("PUT", "/mint"),
        ("DELETE", "/mint"),
        ("PATCH", "/mint"),
        ("HEAD", "/healthz"),
        ("OPTIONS", "/mint"),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        client.request(method, app.url(path)).send().await.unwrap();
    }
    let metrics = app.metrics().await;
    for (route, method) in [
        ("/login", "POST"),
        ("/mint", "POST"),
        ("/sign-urls", "POST"),
        ("/logout", "POST"),
        ("/healthz", "GET"),
        ("/readyz", "GET"),
        ("/cfmint.js", "GET"),
        ("/login/oidc", "GET"),
        ("/callback", "GET"),
        ("unmatched", "GET"),
        ("/mint", "PUT"),
        ("/mint", "DELETE"),
        ("/mint", "PATCH"),
        ("/healthz", "HEAD"),
        ("/mint", "OPTIONS"),
    ] {
        let series = format!("route=\"{route}\",method=\"{method}\"");
        assert!(metrics.contains(&series), "no {series} in\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_signing_mode_mints_cookies_cloudfront_accepts() {
    for (mode, threads) in [
        ("pool", "0"),
        ("pool", "3"),
        ("blocking", "0"),
        ("inline", "0"),
    ] {
        let app = TestApp::spawn(
            Options::default()
                .env("CFMINT__MINT__SIGNING", mode)
                .env("CFMINT__MINT__SIGNING_THREADS", threads),
        )
        .await;
        let client = app.client();
        app.login(&client, "alice").await;
        // Concurrent mints, so the pool has a queue to work through.
        let mut mints = tokio::task::JoinSet::new();
        for i in 0..8 {
            let (client, url) = (client.clone(), app.url("/mint"));
            mints.spawn(async move {
                let body = json!({ "path": format!("/users/alice/{i}/") });
                (i, client.post(url).json(&body).send().await.unwrap())
            });
        }
        for (i, minted) in mints.join_all().await {
            assert_eq!(minted.status(), StatusCode::OK, "{mode}");
            let cookies = cloudfront_cookie_header(minted.headers());
            let allowed = verify(&cookies, &format!("/users/alice/{i}/a.aac"), None);
            assert!(allowed.is_allowed(), "{mode}/{threads}: {allowed:?}");
            assert!(!verify(&cookies, "/users/alice/x/a.aac", None).is_allowed());
        }
        assert_eq!(app.signatures().await, 8, "{mode}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounded_expiry_gives_everyone_the_same_policy() {
    let app = TestApp::spawn(Options::default().env("CFMINT__MINT__EXPIRY_ROUNDING", "5m")).await;
    let mut policies = Vec::new();
    for _listener in 0..2 {
        let client = app.client();
        app.login(&client, "tess").await;
        let response = app.mint(&client, "/materials/").await;
        let headers = response.headers().clone();
        let body: Value = response.json().await.unwrap();
        let expires_at = body["expires_at"].as_u64().unwrap();
        assert_eq!(expires_at % 300, 0);
        assert!(expires_at >= now() + 600 && expires_at < now() + 900);
        policies.push(cloudfront_cookie_header(&headers));
    }
    assert_eq!(policies[0], policies[1]);
    // The second listener's policy was already signed: one signature, one hit.
    let metrics = app.metrics().await;
    assert_eq!(metric(&metrics, "cfmint_signing_seconds_count"), 1);
    assert_eq!(
        metric(&metrics, "cfmint_signature_cache_total{result=\"hit\"}"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_cache_off_every_mint_signs() {
    let app = TestApp::spawn(
        Options::default()
            .env("CFMINT__MINT__EXPIRY_ROUNDING", "5m")
            .env("CFMINT__MINT__SIGNATURE_CACHE", "0"),
    )
    .await;
    let client = app.client();
    app.login(&client, "tess").await;
    for _ in 0..3 {
        assert_eq!(
            app.mint(&client, "/materials/").await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(app.signatures().await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exact_file_gets_a_canned_policy_and_the_custom_cookie_is_removed() {
    let app = TestApp::spawn(Options::default()).await;
    let client = app.client();
    app.login(&client, "alice").await;
    let response = app.mint(&client, "/users/alice/book.pdf").await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["policy"], "canned");
    let cookies = set_cookies(&headers);
    let expires = cookies
        .iter()
        .find(|c| c.name() == "CloudFront-Expires")
        .unwrap();
    assert_eq!(expires.value(), body["expires_at"].to_string());
    let policy = cookies
        .iter()
        .find(|c| c.name() == "CloudFront-Policy")
        .unwrap();
    assert_eq!(policy.max_age().unwrap().whole_seconds(), 0);
    let cloudfront = cloudfront_cookie_header(&headers);
    assert!(verify(&cloudfront, "/users/alice/book.pdf", None).is_allowed());
    assert!(!verify(&cloudfront, "/users/alice/other.pdf", None).is_allowed());
}
