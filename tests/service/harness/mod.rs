//! What every group of the suite shares, defined once: the fixtures (a
//! signing key, a users file, JWT keys), `cfmint serve` in-process
//! (`TestApp`) or as the shipped binary (`ServeProcess`, `serve_config`),
//! the edge (`harness::edge`), Redis, bearer tokens, metrics, cookies and
//! CloudFront's verdict on them.

// Some helpers serve only the groups a feature set compiles (key stores,
// rotation).
#![allow(dead_code)]

pub mod aws;
pub mod docs;
pub mod edge;
pub mod oidc;
pub mod process;
pub mod redis_ha;
/// The signer's own test helpers (AWS vectors, keys, `openssl`), shared
/// with its tests and the CLI's.
#[path = "../../../crates/cfmint-signer/tests/common/mod.rs"]
pub mod signer_common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cfmint::signer::{
    Backend, KeyPairId, KeySource, KeySpec, PrivateKey, PublicKeys, Verdict, ViewerRequest,
};
use cfmint::{Application, Settings};
use reqwest::header::{HeaderMap, SET_COOKIE};
use tokio::sync::oneshot;

pub const KEY_ID: &str = "KTESTACTIVE";
pub const BASE_URL: &str = "https://cdn.cfmint.test";
pub const COOKIE_DOMAIN: &str = "cfmint.test";
pub const ORIGIN: &str = "https://app.cfmint.test";
pub const HMAC_SECRET: &str = "a test secret that is long enough for HS256";
pub const ISSUER: &str = "https://issuer.cfmint.test";
pub const AUDIENCE: &str = "cfmint";
pub const PASSWORD: &str = "correct horse battery staple";

pub use edge::EdgeProcess;
pub use process::{Redis, ServeProcess, cfmint, free_port, output_of};

/// No rate limit: tests that are not about limits make many requests.
pub const RATE_LIMITS_OFF: &str = r#"
[rate_limit]
login_per_address = "off"
login_per_identity = "off"
mint_per_address = "off"
mint_per_identity = "off"
"#;

/// The `[keys]` section for the fixtures' signing key.
pub fn fixture_keys() -> String {
    format!(
        "[keys]\nactive = \"{KEY_ID}\"\n[[keys.key]]\nid = \"{KEY_ID}\"\nfile = \"{}\"\n",
        fixtures().signing_key.display()
    )
}

/// `dir/cfmint.toml` for `cfmint serve` signing for `base_url` with the
/// fixtures' key and users file, on loopback listeners (port 0); `more`
/// adds sections.
pub fn serve_config(dir: &Path, base_url: &str, more: &str) -> PathBuf {
    serve_config_with(
        dir,
        &format!("base_url = \"{base_url}\""),
        &fixture_keys(),
        more,
    )
}

/// `serve_config` with its own `[cloudfront]` lines and `[keys]` section.
pub fn serve_config_with(dir: &Path, cloudfront: &str, keys: &str, more: &str) -> PathBuf {
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
shutdown_timeout = "1s"
drain_delay = "0s"

[cloudfront]
{cloudfront}

{keys}
[auth.users]
file = "{users}"
{more}
"#,
        users = fixtures().users_file.display(),
    );
    let path = dir.join("cfmint.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// An HS256 token signed with the test secret, carrying `claims` as given.
pub fn hs256(claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(HMAC_SECRET.as_bytes()),
    )
    .unwrap()
}

/// A bearer token from the test issuer for the test audience: `sub`,
/// issued now, expiring `lifetime` seconds from now (negative: already
/// expired), with `extra` claims added or replacing these.
pub fn bearer(sub: &str, lifetime: i64, extra: serde_json::Value) -> String {
    let mut claims = serde_json::json!({
        "sub": sub, "iss": ISSUER, "aud": AUDIENCE,
        "iat": now(), "exp": now() as i64 + lifetime,
    });
    for (key, value) in extra.as_object().unwrap() {
        claims[key] = value.clone();
    }
    hs256(&claims)
}

/// Keys and files made once per test process.
pub struct Fixtures {
    pub signing_key: PathBuf,
    pub public_keys: PublicKeys,
    pub users_file: PathBuf,
    pub jwt_private_pem: String,
    pub jwt_public_pem: PathBuf,
}

pub fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap()
            .keep();
        let backend = Backend::default();
        let generated = backend.generate(KeySpec::Rsa { bits: 2048 }).unwrap();
        let signing_key = dir.join("signing.pem");
        std::fs::write(&signing_key, &generated.private_pem).unwrap();
        let private = PrivateKey::from_pem(
            KeyPairId::new(KEY_ID).unwrap(),
            &generated.private_pem,
            KeySource::Inline,
            backend,
        )
        .unwrap();
        let public_keys = PublicKeys::new(vec![private.public_key().unwrap()]).unwrap();

        let users_file = dir.join("users.toml");
        for name in ["alice", "bob", "tess"] {
            cfmint::auth::users::add_user(&users_file, name, PASSWORD, None).unwrap();
        }
        let text = std::fs::read_to_string(&users_file).unwrap();
        let text = text.replace("[users.tess]", "[users.tess]\ngroups = [\"teachers\"]");
        std::fs::write(&users_file, text).unwrap();

        let jwt = backend.generate(KeySpec::Rsa { bits: 2048 }).unwrap();
        let jwt_public_pem = dir.join("jwt-public.pem");
        std::fs::write(&jwt_public_pem, &jwt.public_pem).unwrap();
        Fixtures {
            signing_key,
            public_keys,
            users_file,
            jwt_private_pem: jwt.private_pem.to_string(),
            jwt_public_pem,
        }
    })
}

/// Which session store the app uses.
#[derive(Debug, Clone)]
pub enum StoreChoice {
    Memory,
    Redis(u16),
}

/// How bearer tokens are verified.
#[derive(Debug, Clone)]
pub enum JwtChoice {
    Hmac,
    RsaPem,
    JwksFile(PathBuf),
    JwksUrl(String),
    /// A public key file for another algorithm family (ES256, EdDSA).
    PublicKey(&'static str, PathBuf),
}

/// Options for one app; `env` holds `CFMINT__…` overrides.
#[derive(Debug, Clone)]
pub struct Options {
    pub store: StoreChoice,
    pub jwt: JwtChoice,
    pub env: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            store: StoreChoice::Memory,
            jwt: JwtChoice::Hmac,
            env: Vec::new(),
        }
    }
}

impl Options {
    pub fn with_store(store: StoreChoice) -> Self {
        Self {
            store,
            ..Self::default()
        }
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }
}

pub fn config_toml(options: &Options) -> String {
    let f = fixtures();
    let store = match &options.store {
        StoreChoice::Memory => "store = \"memory\"".to_owned(),
        StoreChoice::Redis(port) => {
            format!("store = \"redis\"\nredis_url = \"redis://127.0.0.1:{port}\"")
        }
    };
    let jwt_key = match &options.jwt {
        JwtChoice::Hmac => format!("algorithms = [\"HS256\"]\nhmac_secret = \"{HMAC_SECRET}\""),
        JwtChoice::RsaPem => format!(
            "algorithms = [\"RS256\"]\npublic_key_file = \"{}\"",
            f.jwt_public_pem.display()
        ),
        JwtChoice::JwksFile(path) => format!(
            "algorithms = [\"RS256\"]\njwks_file = \"{}\"\njwks_min_refresh_interval = \"0s\"",
            path.display()
        ),
        JwtChoice::PublicKey(algorithm, path) => format!(
            "algorithms = [\"{algorithm}\"]\npublic_key_file = \"{}\"",
            path.display()
        ),
        JwtChoice::JwksUrl(url) => format!(
            "algorithms = [\"RS256\"]\njwks_url = \"{url}\"\njwks_min_refresh_interval = \"0s\""
        ),
    };
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
shutdown_timeout = "2s"
drain_delay = "0s"
body_limit = 4096

[cloudfront]
base_url = "{BASE_URL}"
cookie_domain = "{COOKIE_DOMAIN}"

[keys]
active = "{KEY_ID}"
[[keys.key]]
id = "{KEY_ID}"
file = "{signing_key}"

[mint]
ttl = "10m"
max_sign_urls = 5

[session]
{store}
store_timeout = "500ms"

[auth.users]
file = "{users_file}"

[auth.jwt]
{jwt_key}
issuer = "{ISSUER}"
audience = "{AUDIENCE}"
leeway = "5s"
paths_claim = "cfmint_paths"

[[grants]]
paths = ["/users/{{sub}}/*"]

[[grants]]
when = {{ claim = "groups", contains = "teachers" }}
paths = ["/materials/*"]

[cors]
allowed_origins = ["{ORIGIN}"]

{RATE_LIMITS_OFF}"#,
        signing_key = f.signing_key.display(),
        users_file = f.users_file.display(),
    )
}

/// A running app; dropped, it stops.
pub struct TestApp {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    pub async fn spawn(options: Options) -> Self {
        process_setup();
        let settings = Settings::load(&config_toml(&options), options.env.clone())
            .unwrap_or_else(|e| panic!("{e}"));
        let app = Application::build(settings).await.unwrap();
        let addr = app.local_addr();
        let admin = app.admin_addr().unwrap();
        let (stop, stopped) = oneshot::channel();
        let done = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            admin,
            stop: Some(stop),
            done: Some(done),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A client that keeps cookies, like a browser.
    pub fn client(&self) -> reqwest::Client {
        client()
    }

    pub async fn login(&self, client: &reqwest::Client, username: &str) -> reqwest::Response {
        client
            .post(self.url("/login"))
            .json(&serde_json::json!({ "username": username, "password": PASSWORD }))
            .send()
            .await
            .unwrap()
    }

    pub async fn mint(&self, client: &reqwest::Client, path: &str) -> reqwest::Response {
        client
            .post(self.url("/mint"))
            .json(&serde_json::json!({ "path": path }))
            .send()
            .await
            .unwrap()
    }

    /// How many signatures the app has made (from its metrics).
    pub async fn signatures(&self) -> u64 {
        let text = self.metrics().await;
        metric(&text, "cfmint_signing_seconds_count")
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn stop(mut self) -> std::io::Result<()> {
        let _ = self.stop.take().unwrap().send(());
        self.done.take().unwrap().await.unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An `[auth.jwt]` table taking the tokens `hs256` and `bearer` make; the
/// caller's TOML may follow with more of its keys.
pub fn jwt_hs256_table() -> String {
    format!(
        r#"
[auth.jwt]
algorithms = ["HS256"]
hmac_secret = "{HMAC_SECRET}"
issuer = "{ISSUER}"
audience = "{AUDIENCE}"
"#
    )
}

/// A client that keeps cookies and does not follow redirects, like a
/// browser whose redirects the test follows itself.
pub fn browser() -> reqwest::Client {
    process_setup();
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn client() -> reqwest::Client {
    process_setup();
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

/// A metric's value (the first series with that exact name and labels); a
/// series that is not there fails the test, so a renamed metric can't pass
/// for zero.
pub fn metric(text: &str, series: &str) -> u64 {
    metric_if_present(text, series)
        .unwrap_or_else(|| panic!("no series {series} in the metrics:\n{text}"))
}

/// A labelled series appears only once it has been counted.
pub fn metric_if_present(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.trim().parse::<f64>().unwrap() as u64)
}

/// The `Set-Cookie` headers of a response, parsed.
pub fn set_cookies(headers: &HeaderMap) -> Vec<cookie::Cookie<'static>> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|value| cookie::Cookie::parse(value.to_str().unwrap().to_owned()).unwrap())
        .collect()
}

/// The three CloudFront cookies a logout response removes (empty, `Max-Age=0`),
/// for checks of their attributes.
pub fn cleared_cloudfront_cookies(headers: &HeaderMap) -> Vec<cookie::Cookie<'static>> {
    let set = set_cookies(headers);
    [
        "CloudFront-Policy",
        "CloudFront-Signature",
        "CloudFront-Key-Pair-Id",
    ]
    .map(|name| {
        let cookie = set.iter().find(|c| c.name() == name).expect(name).clone();
        assert_eq!(cookie.value(), "", "{name}");
        assert_eq!(
            cookie.max_age(),
            Some(cookie::time::Duration::ZERO),
            "{name}"
        );
        cookie
    })
    .into()
}

/// The CloudFront cookies a response set (not the removals), as a `Cookie` header.
pub fn cloudfront_cookie_header(headers: &HeaderMap) -> String {
    set_cookies(headers)
        .iter()
        .filter(|c| c.name().starts_with("CloudFront-") && !c.value().is_empty())
        .map(|c| format!("{}={}", c.name(), c.value()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What CloudFront would answer for `path` with these cookies.
pub fn verify(cookie_header: &str, path: &str, client_ip: Option<std::net::IpAddr>) -> Verdict {
    let url = format!("{BASE_URL}{path}");
    cfmint::signer::verify(
        &fixtures().public_keys,
        &ViewerRequest {
            url: &url,
            cookie_header: Some(cookie_header),
            client_ip,
            now: now(),
        },
    )
}

pub use cfmint::minter::now;

/// What `main` does for the binary, done once for this test process (which
/// is its own program): the TLS crypto provider, and logs when `TEST_LOG` is
/// set. Tests of the shipped binary rely on its `main` alone.
pub fn process_setup() {
    cfmint::tls::install_crypto_provider();
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_test_writer()
            .try_init();
    }
}

/// One GET with the path exactly as given: (status, body).
pub fn raw_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

/// POSTs JSON; the status, the headers and the JSON body.
pub async fn post_json(
    client: &reqwest::Client,
    url: String,
    body: serde_json::Value,
) -> (reqwest::StatusCode, HeaderMap, serde_json::Value) {
    let response = client.post(url).json(&body).send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.json().await.unwrap())
}

/// A refusal's status and error code, from its JSON body (which must carry
/// a message).
pub async fn refusal(response: reqwest::Response) -> (reqwest::StatusCode, String) {
    let status = response.status();
    let body: serde_json::Value = response.json().await.expect("a JSON error body");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    (status, body["error"].as_str().unwrap().to_owned())
}

/// Percent-encodes everything but RFC 3986's unreserved characters and
/// those in `keep`.
pub fn percent_encode(text: &str, keep: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.as_bytes().contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value(header: &str, name: &str) -> String {
    header
        .split("; ")
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {header}"))
        .to_owned()
}

/// A directory under the build's temporary directory that outlives the
/// test, for files made once and shared by a module's tests.
pub fn kept_dir() -> PathBuf {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
        .keep()
}

/// Writes `files` (path, bytes) under a new origin directory.
pub fn origin_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, bytes) in files {
        let file = dir.path().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, bytes).unwrap();
    }
    dir
}
