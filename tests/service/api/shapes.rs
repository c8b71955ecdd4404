//! Resource shapes (`"match"`), per-request lifetimes and signed URLs with
//! query strings, checked by the verifier and by the local edge serving the
//! files.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::edge::edge_at;
use crate::harness::*;

async fn mint_body(app: &TestApp, client: &reqwest::Client, body: Value) -> reqwest::Response {
    client
        .post(app.url("/mint"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_covers_a_file_and_its_segments_and_nothing_beside_it() {
    let app = TestApp::spawn(Options::default()).await;
    let client = app.client();
    app.login(&client, "alice").await;
    let response = mint_body(
        &app,
        &client,
        json!({ "path": "/users/alice/chapter1_converted", "match": "prefix" }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookies = cloudfront_cookie_header(response.headers());
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["resource"],
        format!("{BASE_URL}/users/alice/chapter1_converted*")
    );
    assert_eq!(body["match"], "prefix");
    for allowed in [
        "/users/alice/chapter1_converted.m3u8",
        "/users/alice/chapter1_converted_00001.ts",
    ] {
        assert!(verify(&cookies, allowed, None).is_allowed(), "{allowed}");
    }
    for denied in [
        "/users/alice/chapter2.m3u8",
        "/users/alice/chapter1.m3u8",
        "/users/bob/chapter1_converted.m3u8",
    ] {
        assert!(!verify(&cookies, denied, None).is_allowed(), "{denied}");
    }

    // `/users/al*` would reach `/users/alice/…` and every other `al…` user.
    let response = mint_body(
        &app,
        &client,
        json!({ "path": "/users/al", "match": "prefix" }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().get("set-cookie").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shape_that_does_not_fit_the_path_is_refused_by_name() {
    let app = TestApp::spawn(Options::default()).await;
    let client = app.client();
    app.login(&client, "alice").await;
    for (body, says) in [
        (
            json!({ "path": "/users/alice/a.pdf", "match": "folder" }),
            "ending in /",
        ),
        (
            json!({ "path": "/users/alice/", "match": "exact" }),
            "folder",
        ),
        (json!({ "path": "/users/alice/", "match": "glob" }), "exact"),
        (json!({ "path": "/users/alice/", "match": 1 }), "match"),
    ] {
        let response = mint_body(&app, &client, body.clone()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let answer: Value = response.json().await.unwrap();
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
    }
    let exact = mint_body(
        &app,
        &client,
        json!({ "path": "/users/alice/a.pdf", "match": "exact" }),
    )
    .await;
    let body: Value = exact.json().await.unwrap();
    assert_eq!(body["resource"], format!("{BASE_URL}/users/alice/a.pdf"));
    assert_eq!(body["match"], "exact");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_picks_a_lifetime_within_the_bounds_and_is_told_it_in_seconds() {
    let app = TestApp::spawn(
        Options::default()
            .env("CFMINT__MINT__MIN_TTL", "30s")
            .env("CFMINT__MINT__MAX_TTL", "1h"),
    )
    .await;
    let client = app.client();
    app.login(&client, "alice").await;
    let response = mint_body(&app, &client, json!({ "path": "/users/alice/", "ttl": 60 })).await;
    assert_eq!(response.status(), StatusCode::OK);
    let max_age = set_cookies(response.headers())
        .iter()
        .find(|c| c.name() == "CloudFront-Policy")
        .and_then(|c| c.max_age())
        .unwrap()
        .whole_seconds();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], 60);
    assert_eq!(body["refresh_in"], 48);
    assert!((59..=60).contains(&max_age), "{max_age}");
    let default = mint_body(&app, &client, json!({ "path": "/users/alice/" })).await;
    let body: Value = default.json().await.unwrap();
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["refresh_in"], 480);

    for ttl in [json!(29), json!(3601), json!(-1), json!(60.5), json!("60")] {
        let response = mint_body(
            &app,
            &client,
            json!({ "path": "/users/alice/", "ttl": ttl }),
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{ttl}");
        let answer: Value = response.json().await.unwrap();
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains("ttl"), "{ttl}: {message}");
        if ttl.is_u64() {
            assert!(message.contains("30 and 3600"), "{message}");
        }
    }
    let response = client
        .post(app.url("/sign-urls"))
        .json(&json!({ "urls": ["/users/alice/a.pdf"], "ttl": 45 }))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["urls"][0]["expires_in"], 45);
}

/// Query strings that broke hand-made signers: spaces, `+`, `'`, `%`, UTF-8
/// in `response-content-disposition`, reserved characters, long values;
/// plus pseudo-random ones from a fixed seed.
fn query_strings() -> Vec<String> {
    let values = [
        "attachment; filename=\"résumé final.pdf\"",
        "inline; filename*=UTF-8''%E2%82%AC rates.pdf",
        "a b+c",
        "it's 100%",
        "Ünïcödé ✓ 漢字",
        "x=y&z",
        "~!$()*,;:@/",
        "",
    ];
    let mut queries = Vec::new();
    for (n, value) in values.iter().enumerate() {
        queries.push(format!(
            "response-content-disposition={}",
            percent_encode(value, "")
        ));
        // `+`, `!`, `$`, `(`, `)`, `,`, `;`, `:`, `@` and `/` may stay literal.
        queries.push(format!(
            "w={n}&v={}&fmt=avif",
            percent_encode(value, "+!$(),;:@/")
        ));
    }
    let alphabet: Vec<char> = "ab +'%é/?&=#*\"<>\\^`{|}~!$(),;:@".chars().collect();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..24 {
        let mut value = String::new();
        for _ in 0..12 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            value.push(alphabet[(state % alphabet.len() as u64) as usize]);
        }
        queries.push(format!("q={}&flag", percent_encode(&value, "+!$(),;:@/")));
    }
    queries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_urls_with_query_strings_are_allowed_by_the_verifier_and_the_edge() {
    let origin = tempfile::tempdir().unwrap();
    let folder = origin.path().join("users/alice");
    std::fs::create_dir_all(&folder).unwrap();
    let mut names: Vec<String> = ["photo.webp", "report+final.pdf", "a=b&c.txt", "x;y,z.bin"]
        .map(str::to_owned)
        .to_vec();
    // File names from every character a requested path may hold.
    let alphabet: Vec<char> = "abcXYZ019-._~!$&()+,;=:@".chars().collect();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..12 {
        let mut name = String::from("f");
        for _ in 0..10 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            name.push(alphabet[(state % alphabet.len() as u64) as usize]);
        }
        names.push(name);
    }
    for name in &names {
        std::fs::write(folder.join(name), name).unwrap();
    }
    let edge = edge_at(
        BASE_URL,
        &format!("origin_dir = \"{}\"", origin.path().display()),
        fixtures().public_keys.clone(),
        "",
    )
    .await;
    let app = TestApp::spawn(Options::default().env("CFMINT__MINT__MAX_SIGN_URLS", "50")).await;
    let client = app.client();
    app.login(&client, "alice").await;
    let queries = query_strings();
    let urls: Vec<String> = queries
        .iter()
        .enumerate()
        .map(|(n, query)| format!("/users/alice/{}?{query}", names[n % names.len()]))
        .collect();
    for batch in urls.chunks(50) {
        let response = client
            .post(app.url("/sign-urls"))
            .json(&json!({ "urls": batch }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        for (asked, item) in batch.iter().zip(body["urls"].as_array().unwrap()) {
            let signed = item["url"]
                .as_str()
                .unwrap_or_else(|| panic!("{asked}: {item}"));
            assert!(
                signed.starts_with(&format!("{BASE_URL}{asked}&Expires=")),
                "{signed}"
            );
            let verdict = cfmint::signer::verify(
                &fixtures().public_keys,
                &cfmint::signer::ViewerRequest {
                    url: signed,
                    cookie_header: None,
                    client_ip: None,
                    now: now(),
                },
            );
            assert!(verdict.is_allowed(), "{signed}: {:?}", verdict.result);
            let path_and_query = &signed[BASE_URL.len()..];
            let (status, body) = raw_get(edge.addr, path_and_query, &[]);
            assert_eq!(status, 200, "{path_and_query}: {body}");
            let name = asked.split('?').next().unwrap().rsplit('/').next().unwrap();
            assert!(body.ends_with(name), "{path_and_query}: {body}");
            // The query is signed too: another value is refused.
            let altered = path_and_query.replacen('=', "=x", 1);
            assert_eq!(raw_get(edge.addr, &altered, &[]).0, 403, "{altered}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_query_string_is_refused_by_name_and_nothing_is_signed_for_it() {
    let app = TestApp::spawn(Options::default().env("CFMINT__MINT__MAX_SIGN_URLS", "50")).await;
    let client = app.client();
    app.login(&client, "alice").await;
    let cases = [
        ("/users/alice/a.pdf?Expires=1", "Expires"),
        ("/users/alice/a.pdf?w=1&Signature=x", "Signature"),
        ("/users/alice/a.pdf?key-pair-id=K", "Key-Pair-Id"),
        ("/users/alice/a.pdf?w=*", "wildcard"),
        ("/users/alice/a.pdf?w=a b", "visible ASCII"),
        ("/users/alice/a.pdf?w=%zz", "escape"),
        ("/users/alice/a.pdf?", "empty"),
        ("/users/alice/a*.pdf?w=1", "wildcards"),
    ];
    // The bound on a path and query together (the harness allows 1024 bytes).
    let longest = format!("/users/alice/a.pdf?w={}", "x".repeat(1024 - 21));
    let too_long = format!("{longest}x");
    assert_eq!(longest.len(), 1024);
    let mut urls: Vec<&str> = cases.iter().map(|(url, _)| *url).collect();
    urls.push(&too_long);
    urls.push(&longest);
    let response = client
        .post(app.url("/sign-urls"))
        .json(&json!({ "urls": urls }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let items = body["urls"].as_array().unwrap();
    assert_eq!(items[cases.len()]["error"], "invalid_path");
    assert!(
        items[cases.len()]["message"]
            .as_str()
            .unwrap()
            .contains("longer than 1024")
    );
    assert!(
        items[cases.len() + 1]["url"].is_string(),
        "{}",
        items[cases.len() + 1]
    );
    for ((url, says), item) in cases.iter().zip(items) {
        assert_eq!(item["error"], "invalid_path", "{url}: {item}");
        assert!(item.get("url").is_none(), "{url}: {item}");
        let message = item["message"].as_str().unwrap();
        assert!(message.contains(says), "{url}: {message}");
    }
}
