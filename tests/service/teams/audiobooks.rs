//! An audiobook service: password login, one `prefix` mint per chapter
//! (`<s3_key>*` covers the playlist and its segments) with 1-minute cookies
//! bound to the listener's address, playback through the edge, a refresh,
//! logout, and the 403 after it.

use reqwest::StatusCode;
use serde_json::json;

use super::*;
use crate::harness::origin_with;
use crate::harness::{
    KEY_ID, cleared_cloudfront_cookies, cloudfront_cookie_header, fixtures, metric,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_plays_a_chapter_by_prefix_refreshes_and_is_locked_out_after_logout() {
    crate::harness::process_setup();
    let playlist = b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nchapter1_converted_000.ts\n#EXT-X-ENDLIST\n";
    let origin = origin_with(&[
        ("audiobooks/42/chapter1_converted.m3u8", playlist),
        ("audiobooks/42/chapter1_converted_000.ts", &[0x47; 188]),
        ("audiobooks/42/chapter2_converted.m3u8", playlist),
    ]);
    let edge = EdgeProcess::start(
        &format!("origin_dir = \"{}\"", origin.path().display()),
        &[(KEY_ID, &fixtures().signing_key)],
    );
    let dir = tempfile::tempdir().unwrap();
    let config = serve_config(
        dir.path(),
        &edge.public_url,
        r#"
[mint]
ttl = "1m"
ip_binding = true

[[grants]]
paths = ["/audiobooks/*"]
"#,
    );
    let serve = ServeProcess::with_config(&config, &[]);
    let app = browser();
    serve.login_as(&app, "alice", PASSWORD).await;

    let mint = || {
        post_json(
            &app,
            serve.url("/mint"),
            json!({ "path": "/audiobooks/42/chapter1_converted", "match": "prefix", "ttl": 60 }),
        )
    };
    let (status, headers, minted) = mint().await;
    assert_eq!(status, StatusCode::OK, "{minted}");
    assert_eq!(minted["match"], "prefix");
    assert_eq!(minted["expires_in"], 60);
    assert_eq!(minted["refresh_in"], 48);
    let cookies = cloudfront_cookie_header(&headers);

    // The playlist and its segments play through the edge; the next chapter
    // does not.
    for path in [
        "/audiobooks/42/chapter1_converted.m3u8",
        "/audiobooks/42/chapter1_converted_000.ts",
    ] {
        let response = edge.get(path, &cookies).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let next = edge
        .get("/audiobooks/42/chapter2_converted.m3u8", &cookies)
        .await;
    assert_eq!(next.status(), StatusCode::FORBIDDEN);
    // Bound to the listener's address: the same cookies from elsewhere fail.
    let elsewhere = cfmint::signer::verify(
        &fixtures().public_keys,
        &cfmint::signer::ViewerRequest {
            url: &format!("{}/audiobooks/42/chapter1_converted.m3u8", edge.public_url),
            cookie_header: Some(&cookies),
            client_ip: Some("203.0.113.9".parse().unwrap()),
            now: crate::harness::now(),
        },
    );
    assert!(!elsewhere.is_allowed());

    // The player refreshes: new cookies, counted as a refresh.
    let (status, headers, _) = mint().await;
    assert_eq!(status, StatusCode::OK);
    let refreshed = cloudfront_cookie_header(&headers);
    let segment = edge
        .get("/audiobooks/42/chapter1_converted_000.ts", &refreshed)
        .await;
    assert_eq!(segment.status(), StatusCode::OK);
    let metrics = serve.metrics().await;
    assert_eq!(metric(&metrics, r#"cfmint_mints_total{kind="refresh"}"#), 1);

    // Logout clears the cookies (what a browser would keep: nothing), and
    // the next segment is refused.
    let logout = app.post(serve.url("/logout")).send().await.unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    cleared_cloudfront_cookies(logout.headers());
    let after = edge
        .get("/audiobooks/42/chapter1_converted_000.ts", "")
        .await;
    assert_eq!(after.status(), StatusCode::FORBIDDEN);
    let (status, _, _) = mint().await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
