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

pub use crate::harness::{EdgeProcess, PASSWORD, ServeProcess, bearer, browser, serve_config};

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
