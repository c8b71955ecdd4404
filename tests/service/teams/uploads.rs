//! A multi-tenant upload service: the application's database says which
//! files a user owns (the authorization callback, a real HTTP server here);
//! 50 signed URLs with query strings in one batch, each opened through the
//! edge; a missing file is `not_found`; with the callback down, every item is
//! `authorizer_unavailable` and nothing is signed.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;
use crate::harness::origin_with;
use crate::harness::post_json;
use crate::harness::{KEY_ID, fixtures, free_port, raw_get};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ownership_comes_from_the_application_for_a_batch_of_fifty() {
    crate::harness::process_setup();
    // Tenant t1: alice owns files 0-39; 40-44 belong to bob; 45-49 do not exist.
    let files: Vec<(String, Vec<u8>)> = (0..45)
        .map(|n| {
            (
                format!("uploads/t1/file-{n}.jpg"),
                format!("image {n}").into_bytes(),
            )
        })
        .collect();
    let listed: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_slice()))
        .collect();
    let origin = origin_with(&listed);
    let edge = EdgeProcess::start(
        &format!("origin_dir = \"{}\"", origin.path().display()),
        &[(KEY_ID, &fixtures().signing_key)],
    );

    let port = free_port();
    let owner = axum::Router::new().route(
        "/cfmint/authorize",
        axum::routing::post(|axum::Json(question): axum::Json<Value>| async move {
            let results: Vec<Value> = question["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|item| {
                    let path = item["path"].as_str().unwrap();
                    let n: u32 = path
                        .trim_start_matches("/uploads/t1/file-")
                        .trim_end_matches(".jpg")
                        .parse()
                        .unwrap_or(u32::MAX);
                    match (question["sub"].as_str(), n) {
                        (Some("alice"), 0..=39) => json!({ "allow": true }),
                        (_, 45..=49) => json!({ "allow": false, "reason": "not_found" }),
                        _ => json!({ "allow": false }),
                    }
                })
                .collect();
            axum::Json(json!({ "results": results }))
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let callback = tokio::spawn(async move {
        axum::serve(listener, owner)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });

    let dir = tempfile::tempdir().unwrap();
    let config = serve_config(
        dir.path(),
        &edge.public_url,
        &format!(
            r#"
[mint]
max_sign_urls = 50

[[grants]]
paths = ["/uploads/t1/*"]

[authorize]
url = "http://127.0.0.1:{port}/cfmint/authorize"
cache_ttl = "0s"
"#
        ),
    );
    let serve = ServeProcess::with_config(
        &config,
        &[("CFMINT__AUTHORIZE__SECRET", "tenant-callback-secret")],
    );
    let app = browser();
    serve.login_as(&app, "alice", PASSWORD).await;
    let urls: Vec<String> = (0..50)
        .map(|n| format!("/uploads/t1/file-{n}.jpg?w={}&fmt=avif", 100 + n))
        .collect();
    let (status, _, body) = post_json(
        &app,
        serve.url("/sign-urls"),
        json!({ "urls": urls, "ttl": 300 }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["urls"].as_array().unwrap();
    assert_eq!(items.len(), 50);
    for (n, item) in items.iter().enumerate() {
        match n {
            0..=39 => {
                let url = item["url"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{n}: {item}"));
                assert_eq!(item["expires_in"], 300);
                let path_and_query = url.strip_prefix(&edge.public_url).unwrap();
                let addr = format!("127.0.0.1:{}", edge.port).parse().unwrap();
                let (status, body) = raw_get(addr, path_and_query, &[]);
                assert_eq!(status, 200, "{path_and_query}");
                assert_eq!(
                    body.rsplit("\r\n\r\n").next().unwrap(),
                    format!("image {n}")
                );
            }
            40..=44 => assert_eq!(item["error"], "not_granted", "{n}: {item}"),
            _ => assert_eq!(item["error"], "not_found", "{n}: {item}"),
        }
    }

    // The callback goes down: every item fails closed.
    stop.send(()).unwrap();
    callback.await.unwrap().unwrap();
    let (status, _, body) = post_json(&app, serve.url("/sign-urls"), json!({ "urls": urls })).await;
    assert_eq!(status, StatusCode::OK);
    let items = body["urls"].as_array().unwrap();
    assert_eq!(items.len(), 50);
    for item in items {
        assert_eq!(item["error"], "authorizer_unavailable", "{item}");
        assert!(item.get("url").is_none());
    }
}
