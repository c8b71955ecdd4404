//! OpenID Connect against a real provider: `oidc-provider` from npm
//! (tests/oidc/provider.mjs), started on a free port for each test.
//!
//! Work in progress on this branch: the provider and its login pages are
//! driven end to end; cfmint's `/login/oidc` and `/callback` come next.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::LOCATION;

use super::harness::free_port;

/// `node tests/oidc/provider.mjs` on a free port; killed when dropped.
pub struct OidcProvider {
    pub issuer: String,
    child: Child,
}

impl OidcProvider {
    /// Starts the provider with cfmint's callback as the registered redirect
    /// URI; `clock_offset` shifts its clock (negative: expired ID tokens).
    pub async fn start(redirect_uri: &str, clock_offset: i64) -> Self {
        cfmint::tls::install_crypto_provider();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "run `npm ci` in tests/oidc (scripts/test does)"
        );
        let port = free_port();
        let child = Command::new("node")
            .arg("provider.mjs")
            .arg(port.to_string())
            .arg(redirect_uri)
            .current_dir(&dir)
            .env("CLOCK_OFFSET_SECONDS", clock_offset.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs");
        let provider = Self {
            issuer: format!("http://127.0.0.1:{port}"),
            child,
        };
        let discovery = format!("{}/.well-known/openid-configuration", provider.issuer);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(response) = reqwest::get(&discovery).await {
                if response.status() == StatusCode::OK {
                    return provider;
                }
            }
            assert!(Instant::now() < deadline, "oidc-provider did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Logs `login` in on the provider's development pages, starting from an
/// authorization URL, and returns the redirect back to the client (the
/// callback URL with `code` and `state`). `client` must keep cookies and
/// not follow redirects.
pub async fn provider_login(client: &reqwest::Client, authorize: &str, login: &str) -> String {
    let mut url = authorize.to_owned();
    let mut form: Option<String> = None;
    for _ in 0..10 {
        let request = match form.take() {
            Some(fields) => client
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(fields),
            None => client.get(&url),
        };
        let response = request.send().await.unwrap();
        if response.status().is_redirection() {
            let next = response.headers()[LOCATION].to_str().unwrap().to_owned();
            url = if next.starts_with('/') {
                let origin: String = url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
                format!("{origin}{next}")
            } else {
                next
            };
            if !url.contains("/interaction/") && !url.contains("/auth") {
                return url;
            }
            continue;
        }
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        let page = response.text().await.unwrap();
        let action = page
            .split("action=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("an interaction form")
            .to_owned();
        // Login names in these tests are plain words: no form encoding needed.
        form = Some(if page.contains("name=\"login\"") {
            format!("prompt=login&login={login}&password=any")
        } else {
            "prompt=consent".to_owned()
        });
        url = action;
    }
    panic!("the provider never redirected back: {url}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_logs_in_and_redirects_back_with_a_code() {
    let callback = "http://127.0.0.1:9/callback";
    let provider = OidcProvider::start(callback, 0).await;
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let authorize = format!(
        "{}/auth?client_id=cfmint&response_type=code&scope=openid%20groups&redirect_uri={}\
         &state=st&nonce=n&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\
         &code_challenge_method=S256",
        provider.issuer, callback
    );
    let back = provider_login(&client, &authorize, "alice").await;
    assert!(back.starts_with(callback), "{back}");
    assert!(
        back.contains("code=") && back.contains("state=st"),
        "{back}"
    );
}

/// cfmint and the provider, each knowing the other's address.
async fn cfmint_with_provider() -> (super::harness::TestApp, OidcProvider, String) {
    use super::harness::{Options, TestApp};
    let port = free_port();
    let origin = format!("http://127.0.0.1:{port}");
    let provider = OidcProvider::start(&format!("{origin}/callback"), 0).await;
    let app = TestApp::spawn(
        Options::default()
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

fn browser() -> reqwest::Client {
    cfmint::tls::install_crypto_provider();
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_through_the_provider_then_mint() {
    let (app, _provider, origin) = cfmint_with_provider().await;
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

    let minted = app.mint(&browser, "/users/alice/").await;
    assert_eq!(minted.status(), StatusCode::OK);
    let cookies = super::harness::cloudfront_cookie_header(minted.headers());
    assert!(super::harness::verify(&cookies, "/users/alice/ch1.m3u8", None).is_allowed());
    assert_eq!(
        app.mint(&browser, "/users/bob/").await.status(),
        StatusCode::FORBIDDEN
    );
}
