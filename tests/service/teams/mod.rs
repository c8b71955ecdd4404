//! One end-to-end test per kind of team that adopts cfmint, each over real
//! HTTP with the built `cfmint` binary (`serve` and `edge` as child
//! processes), the local edge serving or proxying what the cookies and URLs
//! unlock, and cfmint's verifier. Compiled into the service test binary, so
//! they share its harness (Redis, the OpenID provider, key fixtures).

mod app_api;
mod audiobooks;
mod school;
mod uploads;
mod video_course;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{KEY_ID, ServeProcess, fixtures, free_port};

/// The users file's password for every user (`alice`, `bob`, `tess`).
pub use crate::harness::PASSWORD;

/// `cfmint edge --config <file>` on a free port; killed when dropped.
pub struct EdgeProcess {
    child: Child,
    /// `http://localhost:<port>`: the edge's `public_url`, cfmint's `base_url`.
    pub public_url: String,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl EdgeProcess {
    /// `origin` is the `origin_dir = …` or `origin_url = …` line (and any
    /// forwarding lines); `keys` the key group as (id, PEM file).
    pub fn start(origin: &str, keys: &[(&str, &Path)]) -> Self {
        let port = free_port();
        let public_url = format!("http://localhost:{port}");
        let dir = tempfile::tempdir().unwrap();
        let mut config = format!(
            "[edge]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"{public_url}\"\n{origin}\n"
        );
        for (id, file) in keys {
            config.push_str(&format!(
                "[[edge.key]]\nid = \"{id}\"\nfile = \"{}\"\n",
                file.display()
            ));
        }
        let path = dir.path().join("edge.toml");
        std::fs::write(&path, config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_cfmint"))
            .arg("edge")
            .arg("--config")
            .arg(&path)
            .env("CFMINT_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let line = lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("cfmint edge did not start");
            if line.contains("cfmint edge serving") {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            public_url,
            port,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// A GET through the edge with these cookies.
    pub async fn get(&self, path: &str, cookies: &str) -> reqwest::Response {
        let mut request = reqwest::Client::new().get(self.url(path));
        if !cookies.is_empty() {
            request = request.header("cookie", cookies);
        }
        request.send().await.unwrap()
    }
}

impl Drop for EdgeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A configuration for `cfmint serve` signing for `base_url` with the test
/// key, the test users file, loopback listeners; `more` adds sections.
pub fn serve_config(dir: &Path, base_url: &str, more: &str) -> PathBuf {
    let f = fixtures();
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
drain_delay = "0s"

[cloudfront]
base_url = "{base_url}"

[keys]
active = "{KEY_ID}"
[[keys.key]]
id = "{KEY_ID}"
file = "{key}"

[auth.users]
file = "{users}"
{more}
"#,
        key = f.signing_key.display(),
        users = f.users_file.display(),
    );
    let path = dir.join("cfmint.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `cfmint serve --config <path>` with more `CFMINT__…` settings.
pub fn serve(config: &Path, env: &[(&str, &str)]) -> ServeProcess {
    ServeProcess::start(&["--config", config.to_str().unwrap()], env)
}

/// A client that keeps the session cookie, like a browser.
pub fn browser() -> reqwest::Client {
    crate::harness::process_setup();
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Logs in with the users file's password.
pub async fn login(serve: &ServeProcess, client: &reqwest::Client, username: &str) {
    let response = client
        .post(serve.url("/login"))
        .json(&serde_json::json!({ "username": username, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        reqwest::StatusCode::NO_CONTENT,
        "login {username}"
    );
}

/// POSTs JSON and answers the status, the headers and the JSON body.
pub async fn post(
    client: &reqwest::Client,
    url: String,
    body: serde_json::Value,
) -> (
    reqwest::StatusCode,
    reqwest::header::HeaderMap,
    serde_json::Value,
) {
    let response = client.post(url).json(&body).send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let json = response.json().await.unwrap_or_default();
    (status, headers, json)
}

/// Writes `files` (path, bytes) under a new origin directory.
pub fn origin_dir(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, bytes) in files {
        let file = dir.path().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, bytes).unwrap();
    }
    dir
}
