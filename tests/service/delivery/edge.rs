//! The local edge over real TCP: every denial and its CloudFront code, signed
//! URLs over cookies, wildcards, IP conditions, expiry, key group changes,
//! content types, ranges, `/auth`, an upstream origin, and nginx in front.

use std::net::SocketAddr;
use std::time::Duration;

use cfmint::edge::EdgeSettings;
use cfmint::signer::{
    Backend, HashAlgorithm, KeyPairId, KeySpec, Policy, PolicyForm, PrivateKey, PublicKeys,
    SignedPolicy,
};
use reqwest::StatusCode;

use crate::harness::edge::*;
use crate::harness::{KEY_ID, fixtures, now};

async fn get(edge: &TestEdge, path: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(format!("http://{}{path}", edge.addr));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.unwrap()
}

/// The 403's CloudFront code and cfmint's reason.
async fn denial(response: reqwest::Response) -> (String, String) {
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(response.headers()["content-type"], "text/xml");
    let reason = response.headers()["x-cfmint-denial"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.text().await.unwrap();
    let code = body
        .split("<Code>")
        .nth(1)
        .and_then(|rest| rest.split("</Code>").next())
        .unwrap()
        .to_owned();
    assert!(
        body.starts_with("<?xml") && body.contains("<Message>"),
        "{body}"
    );
    let message = match code.as_str() {
        "MissingKey" => "Missing Key-Pair-Id query parameter or cookie value",
        "InvalidKey" => "Unknown Key",
        "MalformedPolicy" => "Malformed Policy",
        "MalformedSignature" => "Malformed Signature",
        _ => "Access denied",
    };
    assert!(
        body.contains(&format!("<Message>{message}</Message>")),
        "{body}"
    );
    (code, reason)
}

fn cookie_with(signed: &SignedPolicy, replace: &str, value: &str) -> String {
    signed
        .cookies()
        .into_iter()
        .filter(|(name, _)| *name != replace)
        .map(|(name, v)| format!("{name}={v}"))
        .chain((!value.is_empty()).then(|| format!("{replace}={value}")))
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_denial_has_its_cloudfront_code() {
    let edge = edge(&sample_origin()).await;
    let path = "/audiobooks/42/chapter-1.m3u8";
    let good = sign("/audiobooks/42/*", now() + 600, None, PolicyForm::Custom);
    assert_eq!(
        get(&edge, path, Some(&good.cookie_header())).await.status(),
        StatusCode::OK
    );

    let cases: Vec<(String, &str, &str)> = vec![
        (String::new(), "MissingKey", "no_credentials"),
        (
            cookie_with(&good, "CloudFront-Signature", ""),
            "MissingKey",
            "missing_part",
        ),
        (
            cookie_with(&good, "CloudFront-Key-Pair-Id", "KUNKNOWN"),
            "InvalidKey",
            "unknown_key_pair_id",
        ),
        (
            cookie_with(&good, "CloudFront-Policy", "bm90IGpzb24_"),
            "MalformedPolicy",
            "malformed_policy",
        ),
        (
            cookie_with(&good, "CloudFront-Signature", "%%%"),
            "MalformedSignature",
            "malformed_signature",
        ),
        (
            cookie_with(
                &good,
                "CloudFront-Signature",
                sign("/other/*", now() + 600, None, PolicyForm::Custom).signature(),
            ),
            "AccessDenied",
            "bad_signature",
        ),
        (
            format!("{}; CloudFront-Hash-Algorithm=MD5", good.cookie_header()),
            "AccessDenied",
            "unsupported_hash_algorithm",
        ),
        (
            sign("/audiobooks/42/*", now() - 1, None, PolicyForm::Custom).cookie_header(),
            "AccessDenied",
            "expired",
        ),
        (
            sign("/audiobooks/43/*", now() + 600, None, PolicyForm::Custom).cookie_header(),
            "AccessDenied",
            "resource_mismatch",
        ),
        (
            sign(
                "/audiobooks/42/*",
                now() + 600,
                Some("10.0.0.0/8"),
                PolicyForm::Custom,
            )
            .cookie_header(),
            "AccessDenied",
            "ip_not_allowed",
        ),
    ];
    for (cookie, code, reason) in cases {
        let response = get(&edge, path, (!cookie.is_empty()).then_some(cookie.as_str())).await;
        assert_eq!(
            denial(response).await,
            (code.to_owned(), reason.to_owned()),
            "{cookie}"
        );
    }

    let active = Policy::builder(format!("{PUBLIC}/audiobooks/42/*"))
        .expires(now() + 600)
        .active(now() + 300)
        .build()
        .unwrap();
    let later = signing_key()
        .sign(&active, PolicyForm::Custom, HashAlgorithm::Sha1)
        .unwrap();
    let (code, reason) = denial(get(&edge, path, Some(&later.cookie_header())).await).await;
    assert_eq!(
        (code.as_str(), reason.as_str()),
        ("AccessDenied", "not_yet_valid")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_url_parameters_take_precedence_over_cookies() {
    let edge = edge(&sample_origin()).await;
    let path = "/audiobooks/42/booklet.pdf";
    let cookies = sign("/audiobooks/42/*", now() + 600, None, PolicyForm::Custom).cookie_header();
    let url = sign(path, now() + 600, None, PolicyForm::Auto)
        .apply_to_url(&format!("{PUBLIC}{path}"))
        .unwrap();
    let signed_path = url.strip_prefix(PUBLIC).unwrap();

    // A valid signed URL with no cookies: allowed, signing parameters not passed on.
    let response = get(&edge, signed_path, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "%PDF-1.4 booklet");

    // A broken signed URL with valid cookies: the URL decides, so 403.
    let broken = signed_path.replace("Signature=", "Signature=AAAA");
    let (_, reason) = denial(get(&edge, &broken, Some(&cookies)).await).await;
    assert_eq!(reason, "bad_signature");

    // Any signing parameter makes the URL a signed one, even with good cookies.
    let half = format!("{path}?Expires={}", now() + 600);
    let (code, reason) = denial(get(&edge, &half, Some(&cookies)).await).await;
    assert_eq!(
        (code.as_str(), reason.as_str()),
        ("MissingKey", "missing_part")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_and_single_character_resources() {
    let edge = edge(&sample_origin()).await;
    let star = sign(
        "/audiobooks/*/seg-*.ts",
        now() + 600,
        None,
        PolicyForm::Custom,
    )
    .cookie_header();
    assert_eq!(
        get(&edge, "/audiobooks/42/seg-001.ts", Some(&star))
            .await
            .status(),
        StatusCode::OK
    );
    denial(get(&edge, "/audiobooks/42/seg-001.aac", Some(&star)).await).await;

    let one = sign("/a?c.txt", now() + 600, None, PolicyForm::Custom).cookie_header();
    assert_eq!(
        get(&edge, "/abc.txt", Some(&one)).await.status(),
        StatusCode::OK
    );
    let (_, reason) = denial(get(&edge, "/abbc.txt", Some(&one)).await).await;
    assert_eq!(reason, "resource_mismatch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_conditions_use_the_client_address() {
    let dir = sample_origin();
    let direct = edge(&dir).await;
    let mine = sign(
        "/audiobooks/42/*",
        now() + 600,
        Some("127.0.0.1/32"),
        PolicyForm::Custom,
    )
    .cookie_header();
    let theirs = sign(
        "/audiobooks/42/*",
        now() + 600,
        Some("203.0.113.0/24"),
        PolicyForm::Custom,
    )
    .cookie_header();
    let path = "/audiobooks/42/chapter-1.m3u8";
    assert_eq!(
        get(&direct, path, Some(&mine)).await.status(),
        StatusCode::OK
    );
    denial(get(&direct, path, Some(&theirs)).await).await;

    // Behind a trusted proxy, the forwarded address counts.
    let proxied = edge_with(
        &format!("origin_dir = \"{}\"", dir.display()),
        fixtures().public_keys.clone(),
        "\"127.0.0.1\"",
    )
    .await;
    let response = reqwest::Client::new()
        .get(format!("http://{}{path}", proxied.addr))
        .header("cookie", &theirs)
        .header("x-forwarded-for", "203.0.113.50")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // From a peer that is not a trusted proxy, forwarding headers are
    // ignored: a spoofed address does not satisfy the IP condition, and
    // the real address still does, on /auth as on the edge's own files.
    let spoof = |edge_addr: SocketAddr, target: &'static str, cookie: String| {
        let mut request = reqwest::Client::new().get(format!("http://{edge_addr}{target}"));
        if target == "/auth" {
            request = request.header("x-original-uri", path);
        }
        request
            .header("cookie", cookie)
            .header("x-forwarded-for", "203.0.113.50")
            .header("cloudfront-viewer-address", "203.0.113.50:443")
            .send()
    };
    for target in [path, "/auth"] {
        let response = spoof(direct.addr, target, theirs.clone()).await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{target}");
        assert_eq!(
            response.headers()["x-cfmint-denial"],
            "ip_not_allowed",
            "{target}"
        );
        let response = spoof(direct.addr, target, mine.clone()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{target}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_takes_effect_at_the_exact_second() {
    let edge = edge(&sample_origin()).await;
    let path = "/audiobooks/42/chapter-1.m3u8";
    // Start just after a second boundary so "now + 1" is a full second away.
    let start = now();
    while now() == start {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let expires = now() + 1;
    let cookie = sign("/audiobooks/42/*", expires, None, PolicyForm::Custom).cookie_header();
    assert_eq!(
        get(&edge, path, Some(&cookie)).await.status(),
        StatusCode::OK
    );
    while now() < expires {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (_, reason) = denial(get(&edge, path, Some(&cookie)).await).await;
    assert_eq!(reason, "expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_removed_from_the_key_group_no_longer_verifies() {
    let backend = Backend::default();
    let generated = backend.generate(KeySpec::EcdsaP256).unwrap();
    let old = PrivateKey::from_pem(
        KeyPairId::new("KOLDKEY").unwrap(),
        &generated.private_pem,
        cfmint::signer::KeySource::Inline,
        backend,
    )
    .unwrap();
    let policy = Policy::builder(format!("{PUBLIC}/audiobooks/42/*"))
        .expires(now() + 600)
        .build()
        .unwrap();
    let cookie = old
        .sign(&policy, PolicyForm::Custom, HashAlgorithm::Sha1)
        .unwrap()
        .cookie_header();
    let dir = sample_origin();
    let origin = format!("origin_dir = \"{}\"", dir.display());
    let path = "/audiobooks/42/chapter-1.m3u8";

    let mut both = vec![old.public_key().unwrap()];
    both.push(signing_key().public_key().unwrap());
    let with_old = edge_with(&origin, PublicKeys::new(both).unwrap(), "").await;
    assert_eq!(
        get(&with_old, path, Some(&cookie)).await.status(),
        StatusCode::OK
    );

    let without_old = edge_with(&origin, fixtures().public_keys.clone(), "").await;
    let (code, reason) = denial(get(&without_old, path, Some(&cookie)).await).await;
    assert_eq!(
        (code.as_str(), reason.as_str()),
        ("InvalidKey", "unknown_key_pair_id")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_types_ranges_no_store_and_cors_on_denials() {
    let edge = edge(&sample_origin()).await;
    let cookie = sign("/audiobooks/42/*", now() + 600, None, PolicyForm::Custom).cookie_header();
    for (file, content_type) in [
        ("chapter-1.m3u8", "application/vnd.apple.mpegurl"),
        ("seg-001.ts", "video/mp2t"),
        ("seg-001.aac", "audio/aac"),
        ("UPPER.AAC", "audio/aac"),
        ("seg-001.m4s", "video/iso.segment"),
        ("video.mp4", "video/mp4"),
        ("chapter.m4a", "audio/mp4"),
        ("booklet.pdf", "application/pdf"),
    ] {
        let response = get(&edge, &format!("/audiobooks/42/{file}"), Some(&cookie)).await;
        assert_eq!(response.status(), StatusCode::OK, "{file}");
        assert_eq!(response.headers()["content-type"], content_type, "{file}");
        assert_eq!(response.headers()["cache-control"], "no-store", "{file}");
    }
    let range = reqwest::Client::new()
        .get(format!("http://{}/audiobooks/42/seg-001.ts", edge.addr))
        .header("cookie", &cookie)
        .header("range", "bytes=0-187")
        .send()
        .await
        .unwrap();
    assert_eq!(range.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(range.bytes().await.unwrap().len(), 188);

    let denied = reqwest::Client::new()
        .get(format!("http://{}/audiobooks/42/seg-001.ts", edge.addr))
        .header("origin", "http://app.cfmint.test")
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        denied.headers()["access-control-allow-origin"],
        "http://app.cfmint.test"
    );
    assert_eq!(denied.headers()["access-control-allow-credentials"], "true");

    let stats: serde_json::Value = reqwest::get(format!("http://{}/_cfmint/stats", edge.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stats["paths"]["/audiobooks/42/seg-001.ts"]["statuses"]["206"],
        1
    );
    assert_eq!(stats["paths"]["/audiobooks/42/seg-001.ts"]["denied"], 1);
    // The last 403, with cfmint's reason for it.
    let last = &stats["last_denial"];
    assert_eq!(last["path"], "/audiobooks/42/seg-001.ts", "{stats}");
    assert_eq!(last["reason"], "no_credentials", "{stats}");
    assert!(last["at"].as_u64().unwrap().abs_diff(now()) < 60, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_answers_for_other_proxies() {
    let edge = edge(&sample_origin()).await;
    let cookie = sign("/audiobooks/42/*", now() + 600, None, PolicyForm::Custom).cookie_header();
    let auth = |uri: Option<&'static str>, cookie: Option<String>| {
        let mut request = reqwest::Client::new().get(format!("http://{}/auth", edge.addr));
        if let Some(uri) = uri {
            request = request.header("x-original-uri", uri);
        }
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send()
    };
    let allowed = auth(Some("/audiobooks/42/chapter-1.m3u8"), Some(cookie.clone()))
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    let other = auth(Some("/audiobooks/43/chapter-1.m3u8"), Some(cookie))
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        auth(Some("/audiobooks/42/x"), None).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        auth(None, None).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_origin_gets_the_request_without_signing_parameters() {
    let upstream =
        axum::Router::new().fallback(|uri: axum::http::Uri| async move { uri.to_string() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, upstream).await });
    let edge = edge_with(
        &format!("origin_url = \"{base}\""),
        fixtures().public_keys.clone(),
        "",
    )
    .await;

    let path = "/audiobooks/42/booklet.pdf?lang=en";
    let url = sign(path, now() + 600, None, PolicyForm::Auto)
        .apply_to_url(&format!("{PUBLIC}{path}"))
        .unwrap();
    let response = get(&edge, url.strip_prefix(PUBLIC).unwrap(), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.text().await.unwrap(),
        "/audiobooks/42/booklet.pdf?lang=en"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_allows_valid_cookies_and_refuses_the_rest() {
    let root = sample_origin();
    let edge = edge(&root).await;
    let nginx = start_nginx(&root, edge.addr);
    let url = format!(
        "http://127.0.0.1:{}/audiobooks/42/chapter-1.m3u8",
        nginx.port
    );
    let cookie = sign("/audiobooks/42/*", now() + 600, None, PolicyForm::Custom).cookie_header();

    let allowed = reqwest::Client::new()
        .get(&url)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(allowed.text().await.unwrap(), "#EXTM3U\n#EXT-X-ENDLIST\n");
    assert_eq!(
        reqwest::get(&url).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let elsewhere = sign("/audiobooks/43/*", now() + 600, None, PolicyForm::Custom).cookie_header();
    let refused = reqwest::Client::new()
        .get(&url)
        .header("cookie", &elsewhere)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_api_behind_the_edge_gets_every_method_body_and_chosen_headers() {
    use axum::http::{HeaderMap, Method};
    // A small JSON API that echoes what reached it.
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = calls.clone();
    let api = axum::Router::new().fallback(
        move |method: Method, uri: axum::http::Uri, headers: HeaderMap, body: String| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
                (
                    [("set-cookie", "api_seen=1; Path=/")],
                    axum::Json(serde_json::json!({
                        "method": method.as_str(),
                        "uri": uri.to_string(),
                        "body": body,
                        "content_type": header("content-type"),
                        "authorization": header("authorization"),
                        "x_tenant": header("x-tenant"),
                        "x_other": header("x-other"),
                        "cookie": header("cookie"),
                    })),
                )
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, api).await });
    let edge = edge_with(
        &format!(
            "origin_url = \"{base}\"\nforward_cookies = [\"app_session\"]\nforward_headers = [\"Authorization\", \"x-tenant\"]"
        ),
        fixtures().public_keys.clone(),
        "",
    )
    .await;
    let signed = sign("/api/*", now() + 600, None, PolicyForm::Custom);
    let cookies = format!("{}; app_session=s1; tracking=t1", signed.cookie_header());
    let client = reqwest::Client::new();
    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        let response = client
            .request(
                method.clone(),
                format!("http://{}/api/notes?draft=1", edge.addr),
            )
            .header("cookie", &cookies)
            .header("authorization", "Bearer app-token")
            .header("x-tenant", "t42")
            .header("x-other", "not forwarded")
            .json(&serde_json::json!({ "text": "hello" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{method}");
        assert_eq!(response.headers()["set-cookie"], "api_seen=1; Path=/");
        let seen: serde_json::Value = response.json().await.unwrap();
        assert_eq!(seen["method"], method.as_str());
        assert_eq!(seen["uri"], "/api/notes?draft=1");
        assert_eq!(seen["body"], r#"{"text":"hello"}"#);
        assert_eq!(seen["content_type"], "application/json");
        assert_eq!(seen["authorization"], "Bearer app-token");
        assert_eq!(seen["x_tenant"], "t42");
        assert_eq!(seen["x_other"], serde_json::Value::Null);
        assert_eq!(seen["cookie"], "app_session=s1");
    }
    let reached = calls.load(std::sync::atomic::Ordering::SeqCst);

    // Without valid cookies the API is never reached, whatever the method.
    for cookie in [None, Some("app_session=s1")] {
        let mut request = client
            .post(format!("http://{}/api/notes", edge.addr))
            .json(&serde_json::json!({ "text": "sneaky" }));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(response.headers().contains_key("x-cfmint-denial"));
    }
    // Outside the signed path, likewise.
    let outside = client
        .post(format!("http://{}/admin/users", edge.addr))
        .header("cookie", &cookies)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(outside.status(), StatusCode::FORBIDDEN);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), reached);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_origin_answers_only_get_and_head_and_forwarding_needs_an_upstream() {
    let dir = sample_origin();
    let edge = edge(&dir).await;
    let signed = sign("/audiobooks/*", now() + 600, None, PolicyForm::Custom);
    let response = reqwest::Client::new()
        .post(format!("http://{}/audiobooks/42/chapter-1.m3u8", edge.addr))
        .header("cookie", signed.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let problems = EdgeSettings::load(&format!(
        "[edge]\npublic_url = \"{PUBLIC}\"\norigin_dir = \"{}\"\nforward_cookies = \"all\"\n[[edge.key]]\nid = \"{KEY_ID}\"\nfile = \"k.pem\"\n",
        dir.display()
    ))
    .unwrap_err()
    .problems;
    assert_eq!(problems[0].key, "edge.forward_cookies", "{problems:?}");
    let problems = EdgeSettings::load(&format!(
        "[edge]\npublic_url = \"{PUBLIC}\"\norigin_url = \"http://127.0.0.1:1\"\nforward_headers = \"some\"\n[[edge.key]]\nid = \"{KEY_ID}\"\nfile = \"k.pem\"\n"
    ))
    .unwrap_err()
    .problems;
    assert_eq!(problems[0].key, "edge.forward_headers", "{problems:?}");
}
