//! The OpenID provider the tests log in through: `oidc-provider` from npm
//! (tests/oidc/provider.mjs) on a free port, behind a forwarding proxy that
//! can play the attacker in the middle.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::response::IntoResponse;
use reqwest::StatusCode;
use reqwest::header::LOCATION;

use super::free_port;

/// How the test proxy in front of the provider alters the token endpoint's
/// exchange: an attacker in the middle, with the provider's real answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tamper {
    /// Pass everything through.
    None,
    /// Exchange the code as `other-app`, so the ID token is for that audience.
    OtherClient,
    /// Flip a character of the ID token's signature.
    Signature,
}

/// `node tests/oidc/provider.mjs` behind a small forwarding proxy, both on
/// free ports; the issuer is the proxy's URL. Killed when dropped.
pub struct OidcProvider {
    pub issuer: String,
    child: Child,
    command: Command,
    proxy: tokio::task::JoinHandle<()>,
    tamper: Arc<Mutex<Tamper>>,
    discoveries: Arc<AtomicUsize>,
}

impl OidcProvider {
    /// Starts the provider with cfmint's callback as the registered redirect
    /// URI; `clock_offset` shifts its clock (negative: expired ID tokens).
    pub async fn start(redirect_uri: &str, clock_offset: i64) -> Self {
        crate::harness::process_setup();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "run `npm ci` in tests/oidc (scripts/test does)"
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let inner = free_port();
        let post_logout = redirect_uri.replace("/callback", "/player/");
        let mut command = Command::new("node");
        command
            .arg("provider.mjs")
            .arg(inner.to_string())
            .arg(redirect_uri)
            .arg(post_logout)
            .current_dir(&dir)
            .env("CLOCK_OFFSET_SECONDS", clock_offset.to_string())
            .env("ISSUER", &issuer)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command.spawn().expect("node runs");
        let tamper = Arc::new(Mutex::new(Tamper::None));
        let discoveries = Arc::new(AtomicUsize::new(0));
        let forward = Forward {
            discoveries: discoveries.clone(),
            to: format!("http://127.0.0.1:{inner}"),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            tamper: tamper.clone(),
        };
        let app = axum::Router::new().fallback(move |request| forward.clone().pass(request));
        let proxy = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let provider = Self {
            issuer,
            child,
            command,
            proxy,
            tamper,
            discoveries,
        };
        provider.wait_ready().await;
        provider
    }

    async fn wait_ready(&self) {
        let discovery = format!("{}/.well-known/openid-configuration", self.issuer);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(response) = reqwest::get(&discovery).await
                && response.status() == StatusCode::OK
            {
                return;
            }
            assert!(Instant::now() < deadline, "oidc-provider did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Restarts the provider (same address) signing with a new key.
    pub async fn rotate_keys(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = self
            .command
            .env("FRESH_KEYS", "1")
            .spawn()
            .expect("node runs");
        self.wait_ready().await;
    }

    /// How many times the discovery document has been fetched.
    pub fn discoveries(&self) -> usize {
        self.discoveries.load(Ordering::SeqCst)
    }

    pub fn tamper(&self, tamper: Tamper) {
        *self.tamper.lock().unwrap() = tamper;
    }

    /// Stops the provider (and its proxy): it is down from now on.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.proxy.abort();
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.stop();
    }
}

#[derive(Clone)]
struct Forward {
    to: String,
    http: reqwest::Client,
    tamper: Arc<Mutex<Tamper>>,
    discoveries: Arc<AtomicUsize>,
}

impl Forward {
    async fn pass(self, request: axum::extract::Request) -> axum::response::Response {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let tamper = *self.tamper.lock().unwrap();
        let token = parts.uri.path() == "/token";
        if parts.uri.path() == "/.well-known/openid-configuration" {
            self.discoveries.fetch_add(1, Ordering::SeqCst);
        }
        let mut outgoing = self
            .http
            .request(parts.method.clone(), format!("{}{path}", self.to))
            .body(body.to_vec());
        for (name, value) in &parts.headers {
            // The Host header goes along: the provider builds its URLs from it.
            if token && tamper == Tamper::OtherClient && name == "authorization" {
                continue;
            }
            outgoing = outgoing.header(name, value);
        }
        if token && tamper == Tamper::OtherClient {
            outgoing = outgoing.basic_auth(
                "other-app",
                Some("other-app-secret-0123456789abcdef0123456789"),
            );
        }
        let Ok(answer) = outgoing.send().await else {
            return axum::http::StatusCode::BAD_GATEWAY.into_response();
        };
        let mut response = axum::response::Response::builder().status(answer.status());
        for (name, value) in answer.headers() {
            if name != "content-length" && name != "transfer-encoding" {
                response = response.header(name, value);
            }
        }
        let mut bytes = answer.bytes().await.unwrap().to_vec();
        if token && tamper == Tamper::Signature {
            let mut json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            if let Some(id_token) = json["id_token"].as_str() {
                // Well inside the signature: the last character carries
                // padding bits that decoding ignores.
                let mut text = id_token.as_bytes().to_vec();
                let at = text.len() - 10;
                text[at] = if text[at] == b'A' { b'B' } else { b'A' };
                json["id_token"] = String::from_utf8(text).unwrap().into();
            }
            bytes = serde_json::to_vec(&json).unwrap();
        }
        response.body(axum::body::Body::from(bytes)).unwrap()
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

/// A whole login through the provider: `login_url` (cfmint's `/login/oidc`)
/// redirects to the provider, `login` signs in there, and cfmint's callback
/// answers 303; that answer.
pub async fn oidc_login(
    login_url: &str,
    browser: &reqwest::Client,
    login: &str,
) -> reqwest::Response {
    let start = browser.get(login_url).send().await.unwrap();
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let authorize = start.headers()[LOCATION].to_str().unwrap().to_owned();
    let callback = provider_login(browser, &authorize, login).await;
    let back = browser.get(&callback).send().await.unwrap();
    assert_eq!(back.status(), StatusCode::SEE_OTHER, "{login}");
    back
}
