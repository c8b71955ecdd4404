//! A signature never opens more than was granted (SPEC §6), with the
//! shipped binaries: `cfmint serve` minting for bearer tokens whose paths
//! claim grants single files, and `cfmint edge` checking what its answers
//! open, as CloudFront would. A query string under a custom policy is
//! refused by name; a policy ends with the token that bought it; a
//! playlist token shows nobody who minted it or for what.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};

use crate::harness::kept_dir;
use crate::harness::{
    EdgeProcess, RATE_LIMITS_OFF, ServeProcess, bearer, jwt_hs256_table, now, process_setup,
    serve_config,
};

const TOKEN_SECRET: &str = "0123456789abcdef0123456789abcdef-proof";

/// Files on the edge: one granted file, its siblings, and a folder whose
/// name extends a granted file's.
fn proof_media() -> &'static Path {
    static MEDIA: OnceLock<PathBuf> = OnceLock::new();
    MEDIA.get_or_init(|| {
        let root = kept_dir();
        for (file, text) in [
            ("users/alice/a", "the granted file"),
            ("users/alice/a.txt", "a sibling never granted"),
            ("videos/10/seg.ts", "a segment of another video"),
            ("books/1/index.m3u8", "#EXTM3U\n#EXTINF:2,\nseg.ts\n"),
            ("books/1/seg.ts", "a segment"),
        ] {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        root
    })
}

/// `cfmint edge` over [`media`], and `cfmint serve` minting for it with
/// bearer tokens (HS256), IP binding as asked.
fn start_proof(ip_binding: bool) -> (EdgeProcess, ServeProcess) {
    process_setup();
    let dir = tempfile::tempdir().unwrap();
    let edge = EdgeProcess::serving(proof_media());
    let base = &edge.public_url;
    let jwt = jwt_hs256_table();
    let config = serve_config(
        dir.path(),
        base,
        &format!(
            r#"
[mint]
ttl = "30m"
min_ttl = "10s"
expiry_rounding = "1m"
ip_binding = {ip_binding}
{jwt}leeway = "0s"
paths_claim = "paths"
[playlists]
origin_url = "{base}"
token_secret = "{TOKEN_SECRET}"
{RATE_LIMITS_OFF}"#
        ),
    );
    (edge, ServeProcess::with_config(&config, &[]))
}

fn post_bearer(serve: &ServeProcess, route: &str, token: &str, body: Value) -> (StatusCode, Value) {
    let response = Client::new()
        .post(serve.url(route))
        .bearer_auth(token)
        .json(&body)
        .send()
        .unwrap();
    (response.status(), response.json().unwrap_or(Value::Null))
}

fn edge_status(edge: &EdgeProcess, path_and_query: &str) -> StatusCode {
    reqwest::blocking::get(edge.url(path_and_query))
        .unwrap()
        .status()
}

#[test]
fn a_query_string_on_an_exact_grant_never_opens_a_sibling_file() {
    // With IP binding every policy is custom, so CloudFront would read the
    // query's `?` as "any one character": refused by name, nothing signed.
    let (edge, serve) = start_proof(true);
    let alice = bearer(
        "alice",
        300,
        json!({ "paths": ["/users/alice/a", "/videos/1"] }),
    );
    let (status, body) = post_bearer(
        &serve,
        "/sign-urls",
        &alice,
        json!({"urls": ["/users/alice/a.txt", "/users/alice/a?txt", "/videos/1?/seg.ts", "/users/alice/a"]}),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["urls"].as_array().unwrap();
    assert_eq!(items[0]["error"], "not_granted", "{body}");
    for item in &items[1..3] {
        assert_eq!(item["error"], "widens_grant", "{body}");
        let message = item["message"].as_str().unwrap();
        assert!(message.contains("would also open"), "{message}");
        assert!(item.get("url").is_none(), "{body}");
    }
    // The file itself is signed, custom and bound, and opens only itself.
    let url = items[3]["url"].as_str().unwrap();
    let query = url.split_once('?').unwrap().1;
    assert!(query.starts_with("Policy="), "{url}");
    assert_eq!(
        edge_status(&edge, &format!("/users/alice/a?{query}")),
        StatusCode::OK
    );
    assert_eq!(
        edge_status(&edge, &format!("/users/alice/a.txt?{query}")),
        StatusCode::FORBIDDEN
    );

    // `deliver: query` for the exact file: the same proof, the same answer.
    let (status, minted) = post_bearer(
        &serve,
        "/mint",
        &alice,
        json!({"path": "/users/alice/a", "deliver": "query"}),
    );
    assert_eq!(status, StatusCode::OK, "{minted}");
    let query = minted["query"].as_str().unwrap();
    assert_eq!(
        edge_status(&edge, &format!("/users/alice/a?{query}")),
        StatusCode::OK
    );
    assert_eq!(
        edge_status(&edge, &format!("/users/alice/a.txt?{query}")),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        edge_status(&edge, &format!("/videos/10/seg.ts?{query}")),
        StatusCode::FORBIDDEN
    );
}

#[test]
fn without_ip_binding_a_query_string_is_signed_canned_and_opens_only_itself() {
    let (edge, serve) = start_proof(false);
    let alice = bearer("alice", 300, json!({ "paths": ["/users/alice/a"] }));
    let (_, body) = post_bearer(
        &serve,
        "/sign-urls",
        &alice,
        json!({"urls": ["/users/alice/a?txt"]}),
    );
    let url = body["urls"][0]["url"].as_str().expect("signed");
    let query = url.split_once("?txt&").unwrap().1;
    assert!(query.starts_with("Expires="), "canned: {url}");
    assert_eq!(
        edge_status(&edge, &format!("/users/alice/a?txt&{query}")),
        StatusCode::OK
    );
    assert_eq!(
        edge_status(&edge, &format!("/users/alice/a.txt?{query}")),
        StatusCode::FORBIDDEN
    );
}

#[test]
fn a_policy_ends_when_the_token_that_bought_it_does() {
    let (edge, serve) = start_proof(false);
    // The issue's case: a 20 s token gets no more than 20 s.
    let (status, minted) = post_bearer(
        &serve,
        "/mint",
        &bearer("carol", 20, json!({ "paths": ["/books/1/*"] })),
        json!({"path": "/books/1/", "deliver": "query"}),
    );
    assert_eq!(status, StatusCode::OK, "{minted}");
    assert!(minted["expires_in"].as_u64().unwrap() <= 20, "{minted}");

    // Less than mint.min_ttl left: refused, and it says what to do.
    let (status, refused) = post_bearer(
        &serve,
        "/mint",
        &bearer("carol", 5, json!({ "paths": ["/books/1/*"] })),
        json!({"path": "/books/1/"}),
    );
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    assert_eq!(refused["error"], "credential_expiring");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("mint.min_ttl"),
        "{refused}"
    );

    // A query minted with a 12 s token opens the book until the token ends,
    // then no more.
    let short = bearer("carol", 12, json!({ "paths": ["/books/1/*"] }));
    let ends = now() + 12;
    let (status, minted) = post_bearer(
        &serve,
        "/mint",
        &short,
        json!({"path": "/books/1/", "deliver": "query"}),
    );
    assert_eq!(status, StatusCode::OK, "{minted}");
    assert!(minted["expires_at"].as_u64().unwrap() <= ends, "{minted}");
    let query = minted["query"].as_str().unwrap().to_owned();
    assert_eq!(
        edge_status(&edge, &format!("/books/1/seg.ts?{query}")),
        StatusCode::OK
    );
    std::thread::sleep(Duration::from_secs((ends + 1).saturating_sub(now())));
    assert_eq!(
        edge_status(&edge, &format!("/books/1/seg.ts?{query}")),
        StatusCode::FORBIDDEN
    );

    // /sign-urls and the playlist token follow the same end.
    let short = bearer("carol", 15, json!({ "paths": ["/books/1/*"] }));
    let (_, signed) = post_bearer(
        &serve,
        "/sign-urls",
        &short,
        json!({"urls": ["/books/1/seg.ts"]}),
    );
    assert!(
        signed["urls"][0]["expires_in"].as_u64().unwrap() <= 15,
        "{signed}"
    );
}

#[test]
fn a_playlist_token_shows_neither_the_subject_nor_the_paths() {
    let (_edge, serve) = start_proof(false);
    let (status, minted) = post_bearer(
        &serve,
        "/mint",
        &bearer("learner42", 300, json!({ "paths": ["/books/1/*"] })),
        json!({"path": "/books/1/", "deliver": "query"}),
    );
    assert_eq!(status, StatusCode::OK, "{minted}");
    let playlist_token = minted["playlist_token"].as_str().unwrap();
    let mut readable = playlist_token.to_owned();
    for part in playlist_token.split(['.', '-', '_']) {
        if let Ok(bytes) = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')) {
            readable.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    let bytes = URL_SAFE_NO_PAD.decode(playlist_token).unwrap_or_default();
    readable.push_str(&String::from_utf8_lossy(&bytes));
    for secret in ["learner42", "books", "sub", "paths"] {
        assert!(
            !readable.contains(secret),
            "{secret} readable in {playlist_token}"
        );
    }
    // It still opens the playlist.
    let playlist = reqwest::blocking::get(serve.url(&format!(
        "/playlists/books/1/index.m3u8?token={playlist_token}"
    )))
    .unwrap();
    assert_eq!(playlist.status(), StatusCode::OK);
}
