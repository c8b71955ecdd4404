//! A video course whose JWT lists the courses bought (`courses` claim): the
//! token mints exactly those, an expired token mints nothing, and a session
//! started with a token ends when the token does.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::*;
use crate::harness::origin_with;
use crate::harness::{KEY_ID, cloudfront_cookie_header, fixtures, jwt_hs256_table};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_carries_the_courses_and_bounds_the_session() {
    crate::harness::process_setup();
    let origin = origin_with(&[
        ("courses/rust-101/lesson-1/index.m3u8", b"#EXTM3U\n"),
        ("courses/go-201/lesson-1/index.m3u8", b"#EXTM3U\n"),
    ]);
    let edge = EdgeProcess::start(
        &format!("origin_dir = \"{}\"", origin.path().display()),
        &[(KEY_ID, &fixtures().signing_key)],
    );
    let dir = tempfile::tempdir().unwrap();
    let jwt = jwt_hs256_table();
    let config = serve_config(
        dir.path(),
        &edge.public_url,
        &format!(
            r#"
{jwt}leeway = "0s"
paths_claim = "courses"
"#
        ),
    );
    let serve = ServeProcess::with_config(&config, &[]);
    let client = reqwest::Client::new();
    let bought = bearer(
        "student-7",
        300,
        json!({ "courses": ["/courses/rust-101/*"] }),
    );
    let mint = |token: String, path: &'static str| {
        client
            .post(serve.url("/mint"))
            .bearer_auth(token)
            .json(&json!({ "path": path }))
            .send()
    };
    let minted = mint(bought.clone(), "/courses/rust-101/").await.unwrap();
    assert_eq!(minted.status(), StatusCode::OK);
    let cookies = cloudfront_cookie_header(minted.headers());
    let lesson = edge
        .get("/courses/rust-101/lesson-1/index.m3u8", &cookies)
        .await;
    assert_eq!(lesson.status(), StatusCode::OK);
    let other = edge
        .get("/courses/go-201/lesson-1/index.m3u8", &cookies)
        .await;
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
    let not_bought = mint(bought, "/courses/go-201/").await.unwrap();
    assert_eq!(not_bought.status(), StatusCode::FORBIDDEN);

    // An expired token mints nothing.
    let expired = mint(
        bearer(
            "student-7",
            -10,
            json!({ "courses": ["/courses/rust-101/*"] }),
        ),
        "/courses/rust-101/",
    )
    .await
    .unwrap();
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    assert!(expired.headers().get("set-cookie").is_none());

    // A session started with a token that has 2 s left ends with it, and
    // mints nothing that would outlive it.
    let browser = browser();
    let login = browser
        .post(serve.url("/login"))
        .bearer_auth(bearer(
            "student-7",
            2,
            json!({ "courses": ["/courses/rust-101/*"] }),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::NO_CONTENT);
    // Signed now, the policy would outlive the token: refused, and the
    // player is told to renew it.
    let (status, _, body) = post_json(
        &browser,
        serve.url("/mint"),
        json!({ "path": "/courses/rust-101/" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "credential_expiring", "{body}");
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let (status, headers, _) = post_json(
        &browser,
        serve.url("/mint"),
        json!({ "path": "/courses/rust-101/" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        headers
            .get("set-cookie")
            .is_none_or(|c| !c.to_str().unwrap().starts_with("CloudFront-"))
    );
}
