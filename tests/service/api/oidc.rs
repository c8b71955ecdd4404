//! OpenID Connect against a real provider: `oidc-provider` from npm
//! (tests/oidc/provider.mjs), started on a free port for each test behind a
//! forwarding proxy that can play the attacker in the middle.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::LOCATION;

use crate::harness::oidc::{OidcProvider, Tamper, oidc_login, provider_login};
use crate::harness::{browser, free_port};

async fn cfmint_with_provider() -> (crate::harness::TestApp, OidcProvider, String) {
    cfmint_with_provider_at(0, &[]).await
}

/// The same with the provider's clock shifted by `clock_offset` seconds and
/// more `CFMINT__…` settings.
async fn cfmint_with_provider_at(
    clock_offset: i64,
    extra: &[(&str, &str)],
) -> (crate::harness::TestApp, OidcProvider, String) {
    use crate::harness::{Options, TestApp};
    let port = free_port();
    let origin = format!("http://127.0.0.1:{port}");
    let provider = OidcProvider::start(&format!("{origin}/callback"), clock_offset).await;
    let mut options = Options::default();
    for (key, value) in extra {
        options = options.env(key, &value.replace("{origin}", &origin));
    }
    let app = TestApp::spawn(
        options
            .env("CFMINT__SERVER__LISTEN", &format!("127.0.0.1:{port}"))
            .env("CFMINT__AUTH__OIDC__ISSUER", &provider.issuer)
            .env("CFMINT__AUTH__OIDC__CLIENT_ID", "cfmint")
            .env(
                "CFMINT__AUTH__OIDC__CLIENT_SECRET",
                "cfmint-secret-0123456789abcdef0123456789",
            )
            .env(
                "CFMINT__AUTH__OIDC__REDIRECT_URL",
                &format!("{origin}/callback"),
            )
            .env("CFMINT__AUTH__OIDC__SCOPES", "openid,groups")
            .env(
                "CFMINT__AUTH__OIDC__RETURN_URLS",
                &format!("{origin}/player/"),
            ),
    )
    .await;
    (app, provider, origin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_through_the_provider_then_mint() {
    // A default path is set, so only mint_on_login (off) keeps the callback
    // from minting.
    let (app, _provider, origin) =
        cfmint_with_provider_at(0, &[("CFMINT__MINT__DEFAULT_PATH", "/users/{sub}/")]).await;
    let browser = browser();
    let start = browser
        .get(app.url(&format!("/login/oidc?return_to={origin}/player/book")))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let authorize = start.headers()[LOCATION].to_str().unwrap().to_owned();
    for part in [
        "code_challenge_method=S256",
        "state=",
        "nonce=",
        "scope=openid",
    ] {
        assert!(authorize.contains(part), "{part} missing from {authorize}");
    }
    let callback = provider_login(&browser, &authorize, "alice").await;
    let back = browser.get(&callback).send().await.unwrap();
    assert_eq!(back.status(), StatusCode::SEE_OTHER, "{callback}");
    assert_eq!(back.headers()[LOCATION], format!("{origin}/player/book"));
    // mint_on_login is off here: the callback starts a session, nothing more.
    assert!(
        back.headers()
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("CloudFront-")),
        "the callback set CloudFront cookies without mint_on_login"
    );

    let minted = app.mint(&browser, "/users/alice/").await;
    assert_eq!(minted.status(), StatusCode::OK);
    let cookies = crate::harness::cloudfront_cookie_header(minted.headers());
    assert!(crate::harness::verify(&cookies, "/users/alice/ch1.m3u8", None).is_allowed());
    assert_eq!(
        app.mint(&browser, "/users/bob/").await.status(),
        StatusCode::FORBIDDEN
    );
}

/// Starts a login at cfmint; returns the provider URL it redirects to.
async fn start_login(app: &crate::harness::TestApp, browser: &reqwest::Client) -> String {
    let start = browser.get(app.url("/login/oidc")).send().await.unwrap();
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    start.headers()[LOCATION].to_str().unwrap().to_owned()
}

/// Replaces (or with `None` removes) one query parameter of `url`.
fn with_param(url: &str, name: &str, value: Option<&str>) -> String {
    let (base, query) = url.split_once('?').unwrap();
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|pair| !pair.starts_with(&format!("{name}=")))
        .map(str::to_owned)
        .collect();
    if let Some(value) = value {
        pairs.push(format!("{name}={value}"));
    }
    format!("{base}?{}", pairs.join("&"))
}

/// The callback's answer must be this error, and the browser must have no session.
async fn callback_refused(
    app: &crate::harness::TestApp,
    browser: &reqwest::Client,
    callback: &str,
    status: StatusCode,
    code: &str,
) {
    let answer = browser.get(callback).send().await.unwrap();
    assert_eq!(answer.status(), status, "{callback}");
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    assert!(!body["message"].as_str().unwrap().is_empty());
    assert_eq!(
        app.mint(browser, "/users/alice/").await.status(),
        StatusCode::UNAUTHORIZED,
        "a refused login must leave no session"
    );
}

/// Logs in at the provider from `authorize`; cfmint must refuse the ID token.
async fn id_token_refused(
    app: &crate::harness::TestApp,
    browser: &reqwest::Client,
    authorize: &str,
) {
    let callback = provider_login(browser, authorize, "alice").await;
    callback_refused(
        app,
        browser,
        &callback,
        StatusCode::UNAUTHORIZED,
        "id_token_refused",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_state_is_refused() {
    let (app, _provider, _) = cfmint_with_provider().await;
    let browser = browser();
    let authorize = start_login(&app, &browser).await;
    let callback = provider_login(&browser, &authorize, "alice").await;
    let forged = with_param(&callback, "state", Some("forged"));
    callback_refused(
        &app,
        &browser,
        &forged,
        StatusCode::BAD_REQUEST,
        "oidc_state_mismatch",
    )
    .await;
    // The genuine callback can't be used after the failed one: single use.
    callback_refused(
        &app,
        &browser,
        &callback,
        StatusCode::BAD_REQUEST,
        "oidc_state_mismatch",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_code_is_refused() {
    let (app, _provider, _) = cfmint_with_provider().await;
    let victim = browser();
    let authorize = start_login(&app, &victim).await;
    let callback = provider_login(&victim, &authorize, "alice").await;
    assert_eq!(
        victim.get(&callback).send().await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    // An attacker replays the victim's code under a login of their own.
    let attacker = browser();
    let own = start_login(&app, &attacker).await;
    let own_state = own
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let replay = with_param(&callback, "state", Some(own_state));
    callback_refused(
        &app,
        &attacker,
        &replay,
        StatusCode::UNAUTHORIZED,
        "oidc_code_refused",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_wrong_nonce_is_refused() {
    let (app, _provider, _) = cfmint_with_provider().await;
    for nonce in [None, Some("forged-nonce")] {
        let browser = browser();
        let authorize = with_param(&start_login(&app, &browser).await, "nonce", nonce);
        id_token_refused(&app, &browser, &authorize).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_token_for_another_audience_is_refused() {
    let (app, provider, _) = cfmint_with_provider().await;
    provider.tamper(Tamper::OtherClient);
    let browser = browser();
    let authorize = with_param(
        &start_login(&app, &browser).await,
        "client_id",
        Some("other-app"),
    );
    id_token_refused(&app, &browser, &authorize).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_id_token_is_refused() {
    // The provider's clock is 15 minutes behind: its 5-minute ID tokens
    // arrive expired.
    let (app, _provider, _) = cfmint_with_provider_at(-900, &[]).await;
    let browser = browser();
    let authorize = start_login(&app, &browser).await;
    id_token_refused(&app, &browser, &authorize).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_signature_is_refused() {
    let (app, provider, _) = cfmint_with_provider().await;
    provider.tamper(Tamper::Signature);
    let browser = browser();
    let authorize = start_login(&app, &browser).await;
    id_token_refused(&app, &browser, &authorize).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_url_off_the_list_is_refused() {
    let (app, _provider, origin) = cfmint_with_provider().await;
    let browser = browser();
    for return_to in [
        "https://evil.example/".to_owned(),
        format!("{origin}/elsewhere"),
        format!("{origin}/player/@evil.example"),
        format!("{origin}/player/%0d%0aSet-Cookie:%20x=1"),
        format!("{origin}/player/%5C%5Cevil.example"),
    ] {
        // The test URLs need no escaping beyond ':' and '/', which queries allow.
        let answer = browser
            .get(app.url(&format!("/login/oidc?return_to={return_to}")))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{return_to}");
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["error"], "return_url_not_allowed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_down_gives_a_502() {
    let (app, mut provider, _) = cfmint_with_provider().await;
    provider.stop();
    let browser = browser();
    let answer = browser.get(app.url("/login/oidc")).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_GATEWAY);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"], "identity_provider_unavailable");
}

/// Logs `login` in through the provider; the browser then holds a session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_use_the_id_token_claims() {
    let (app, _provider, _) = cfmint_with_provider().await;
    let teacher = browser();
    oidc_login(&app.url("/login/oidc"), &teacher, "teacher-tess").await;
    assert_eq!(
        app.mint(&teacher, "/materials/").await.status(),
        StatusCode::OK
    );
    let listener = browser();
    oidc_login(&app.url("/login/oidc"), &listener, "alice").await;
    assert_eq!(
        app.mint(&listener, "/materials/").await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callback_can_mint_the_cookies() {
    let (app, _provider, _) = cfmint_with_provider_at(
        0,
        &[
            ("CFMINT__AUTH__OIDC__MINT_ON_LOGIN", "true"),
            ("CFMINT__MINT__DEFAULT_PATH", "/users/{sub}/"),
        ],
    )
    .await;
    let browser = browser();
    let back = oidc_login(&app.url("/login/oidc"), &browser, "alice").await;
    let cookies = crate::harness::cloudfront_cookie_header(back.headers());
    assert!(crate::harness::verify(&cookies, "/users/alice/ch1.m3u8", None).is_allowed());
    assert!(!crate::harness::verify(&cookies, "/users/bob/ch1.m3u8", None).is_allowed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_whose_mint_is_refused_says_why_in_the_return_url() {
    let (app, _provider, origin) = cfmint_with_provider_at(
        0,
        &[
            ("CFMINT__AUTH__OIDC__MINT_ON_LOGIN", "true"),
            ("CFMINT__MINT__DEFAULT_PATH", "/users/{sub}/"),
            ("CFMINT__RATE_LIMIT__MINT_PER_IDENTITY", "1/min"),
        ],
    )
    .await;
    let location =
        |response: &reqwest::Response| response.headers()["location"].to_str().unwrap().to_owned();
    let first = oidc_login(&app.url("/login/oidc"), &browser(), "alice").await;
    assert_eq!(location(&first), format!("{origin}/player/"));
    assert!(!crate::harness::cloudfront_cookie_header(first.headers()).is_empty());
    // The identity's mint budget is spent: the login stands, without
    // cookies, and the app is told why.
    let second = oidc_login(&app.url("/login/oidc"), &browser(), "alice").await;
    assert_eq!(
        location(&second),
        format!("{origin}/player/?cfmint_mint_error=rate_limited")
    );
    assert!(crate::harness::cloudfront_cookie_header(second.headers()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_can_end_the_provider_session() {
    let (app, provider, origin) = cfmint_with_provider_at(
        0,
        &[
            ("CFMINT__AUTH__OIDC__END_SESSION", "true"),
            ("CFMINT__AUTH__OIDC__POST_LOGOUT_URL", "{origin}/player/"),
        ],
    )
    .await;
    let browser = browser();
    oidc_login(&app.url("/login/oidc"), &browser, "alice").await;
    let logout = browser.post(app.url("/logout")).send().await.unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    let body: serde_json::Value = logout.json().await.unwrap();
    let end = body["end_session_url"].as_str().unwrap().to_owned();
    assert!(end.starts_with(&provider.issuer), "{end}");
    assert!(end.contains("client_id=cfmint"), "{end}");
    assert_eq!(
        app.mint(&browser, "/users/alice/").await.status(),
        StatusCode::UNAUTHORIZED
    );

    // The provider asks to confirm, then sends the browser back.
    let page = browser
        .get(&end)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let action = page
        .split("action=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let xsrf = page
        .split("name=\"xsrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let confirmed = browser
        .post(action)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("xsrf={xsrf}&logout=yes"))
        .send()
        .await
        .unwrap();
    assert!(confirmed.status().is_redirection());
    let mut location = confirmed.headers()[LOCATION].to_str().unwrap().to_owned();
    if location.starts_with('/') {
        location = format!("{}{location}", provider.issuer);
        let next = browser.get(&location).send().await.unwrap();
        location = next.headers()[LOCATION].to_str().unwrap().to_owned();
    }
    assert!(
        location.starts_with(&format!("{origin}/player/")),
        "{location}"
    );

    // The provider's session is gone: a new login asks for the password again.
    let authorize = start_login(&app, &browser).await;
    let first = browser.get(&authorize).send().await.unwrap();
    let interaction = first.headers()[LOCATION].to_str().unwrap().to_owned();
    let page = browser
        .get(format!("{}{interaction}", provider.issuer))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("name=\"login\""), "no login form: {page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_provider_key_is_fetched_once_needed() {
    let (app, mut provider, _) = cfmint_with_provider().await;
    oidc_login(&app.url("/login/oidc"), &browser(), "alice").await;
    // cfmint has the provider's metadata and keys cached; the provider now
    // signs with a key they lack.
    provider.rotate_keys().await;
    let browser = browser();
    oidc_login(&app.url("/login/oidc"), &browser, "alice").await;
    assert_eq!(
        app.mint(&browser, "/users/alice/").await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_logins_count_against_the_login_rate_limit() {
    let (app, _provider, _) =
        cfmint_with_provider_at(0, &[("CFMINT__RATE_LIMIT__LOGIN_PER_ADDRESS", "2/min")]).await;
    let browser = browser();
    for _ in 0..2 {
        start_login(&app, &browser).await;
    }
    let limited = browser.get(app.url("/login/oidc")).send().await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_metadata_is_cached_for_metadata_ttl() {
    let (app, provider, _) =
        cfmint_with_provider_at(0, &[("CFMINT__AUTH__OIDC__METADATA_TTL", "2s")]).await;
    let browser = browser();
    start_login(&app, &browser).await;
    let first = provider.discoveries();
    for _ in 0..3 {
        start_login(&app, &browser).await;
    }
    assert_eq!(
        provider.discoveries(),
        first,
        "fetched again inside the TTL"
    );
    tokio::time::sleep(Duration::from_millis(2200)).await;
    start_login(&app, &browser).await;
    assert_eq!(
        provider.discoveries(),
        first + 1,
        "not fetched after the TTL"
    );
}
