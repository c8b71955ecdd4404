//! Hostile input: paths that could widen a grant, bad bodies, bad origins.
//! Every refusal is a JSON error and nothing is signed.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

async fn logged_in() -> (TestApp, reqwest::Client) {
    let app = TestApp::spawn(Options::default()).await;
    let client = app.client();
    assert_eq!(
        app.login(&client, "alice").await.status(),
        StatusCode::NO_CONTENT
    );
    (app, client)
}

/// A refusal's status and error code; it sets no cookie.
async fn cookieless_refusal(response: reqwest::Response) -> (StatusCode, String) {
    assert!(
        response.headers().get("set-cookie").is_none(),
        "no cookie for a refused request"
    );
    refusal(response).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_paths_are_refused_and_nothing_is_signed() {
    let (app, client) = logged_in().await;
    let long = format!("/users/alice/{}", "a".repeat(2000));
    let hostile = [
        "/users/alice/../bob/",
        "/users/alice/./x",
        "/users/alice/%2e%2e/bob/",
        "/users/alice/*",
        "/users/*/",
        "/users/alice/?",
        "/users/alice/a\\b",
        "/users/alice/\"x",
        "/users/alice/\u{7}bell",
        "/users/alice/\nx",
        "/users/alice/é",
        long.as_str(),
        "",
        "users/alice/",
        "//evil.example/users/alice/",
    ];
    for path in hostile {
        let response = app.mint(&client, path).await;
        let (status, code) = cookieless_refusal(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path:?}");
        assert_eq!(code, "invalid_path", "{path:?}");
    }
    // A path that is merely not granted is 403.
    let (status, code) = cookieless_refusal(app.mint(&client, "/users/bob/").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "not_granted")
    );
    assert_eq!(app.signatures().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_must_be_json_of_bounded_size() {
    let (app, client) = logged_in().await;
    let url = app.url("/mint");

    let text = client
        .post(&url)
        .header("content-type", "text/plain")
        .body("{\"path\":\"/users/alice/\"}");
    let (status, code) = cookieless_refusal(text.send().await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );

    let big = json!({ "path": "/users/alice/", "pad": "x".repeat(10_000) });
    let (status, code) =
        cookieless_refusal(client.post(&url).json(&big).send().await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );

    // A body without a Content-Type is not silently ignored.
    let untyped = client.post(&url).body("{\"path\":\"/users/alice/\"}");
    let (status, code) = cookieless_refusal(untyped.send().await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    // An empty body that says it is JSON is not a missing body.
    let empty = client.post(&url).header("content-type", "application/json");
    let (status, code) = cookieless_refusal(empty.send().await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "bad_request")
    );

    let broken = client
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"path\":");
    let (status, code) = cookieless_refusal(broken.send().await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "bad_request")
    );

    let unknown = client
        .post(&url)
        .json(&json!({ "path": "/users/alice/", "wildcard": true }));
    let (status, _) = cookieless_refusal(unknown.send().await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let wrong_type = client.post(&url).json(&json!({ "path": 42 }));
    let (status, _) = cookieless_refusal(wrong_type.send().await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let login = client
        .post(app.url("/login"))
        .json(&json!({ "username": "alice" }));
    let (status, _) = cookieless_refusal(login.send().await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(app.signatures().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_json_object_is_a_body() {
    let app = TestApp::spawn(Options::default()).await;
    let client = app.client();
    let send = |route: &str, body: &str| {
        client
            .post(app.url(route))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
    };
    // serde fills a struct from an array in field order: each would work.
    let array_login = format!(r#"["alice","{PASSWORD}"]"#);
    for body in [array_login.as_str(), " [\"alice\"]", "null", "42", r#""x""#] {
        let (status, code) = cookieless_refusal(send("/login", body).await.unwrap()).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "bad_request"),
            "{body}"
        );
    }
    assert_eq!(
        app.login(&client, "alice").await.status(),
        StatusCode::NO_CONTENT
    );
    for (route, body) in [
        ("/mint", r#"["/users/alice/"]"#),
        ("/mint", r#"["/users/alice/","folder"]"#),
        ("/mint", "true"),
        ("/sign-urls", r#"[["/users/alice/a.txt"]]"#),
        ("/sign-urls", "null"),
    ] {
        let (status, code) = cookieless_refusal(send(route, body).await.unwrap()).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "bad_request"),
            "{route} {body}"
        );
    }
    assert_eq!(app.signatures().await, 0);
    // The object forms still work, and a whole number written as a float
    // (JSON Schema's integer too) is that many seconds.
    let response = send("/mint", r#" {"path":"/users/alice/"}"#).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = send("/mint", r#"{"path":"/users/alice/","ttl":60.0}"#)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let minted: Value = response.json().await.unwrap();
    assert_eq!(minted["expires_in"], 60, "{minted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_body_is_refused_naming_the_field() {
    let (app, client) = logged_in().await;
    for (body, message) in [
        (
            json!({ "path": "/users/alice/", "ttl": 1.5 }),
            "the JSON body is invalid: ttl: invalid value: floating point `1.5`, expected a whole number of seconds",
        ),
        (
            json!({ "path": "/users/alice/", "ttl": -5 }),
            "the JSON body is invalid: ttl: invalid value: integer `-5`, expected a whole number of seconds",
        ),
        (
            json!({ "path": "/users/alice/", "ttl": "60" }),
            "the JSON body is invalid: ttl: invalid type: string \"60\", expected a whole number of seconds",
        ),
        (
            json!({ "path": ["/users/alice/"] }),
            "the JSON body is invalid: path: invalid type: sequence, expected a string",
        ),
    ] {
        let response = client
            .post(app.url("/mint"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let answer: Value = response.json().await.unwrap();
        let said = answer["message"].as_str().unwrap();
        assert!(said.starts_with(message), "{body}: {said}");
    }
    // A problem with the body as a whole has no field to name.
    let response = client
        .post(app.url("/sign-urls"))
        .json(&json!({ "ttl": 60 }))
        .send()
        .await
        .unwrap();
    let answer: Value = response.json().await.unwrap();
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.starts_with("the JSON body is invalid: missing field `urls`"),
        "{message}"
    );
    assert_eq!(app.signatures().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = TestApp::spawn(Options::default()).await;
    let (status, code) = cookieless_refusal(reqwest::get(app.url("/nope")).await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (status, code) = cookieless_refusal(reqwest::get(app.url("/mint")).await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disallowed_origin_is_403_and_allowed_origin_gets_credentialed_cors() {
    let (app, client) = logged_in().await;
    let evil = client
        .post(app.url("/mint"))
        .header("origin", "https://evil.example")
        .json(&json!({ "path": "/users/alice/" }))
        .send()
        .await
        .unwrap();
    let (status, code) = cookieless_refusal(evil).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "origin_not_allowed")
    );

    let preflight = client
        .request(reqwest::Method::OPTIONS, app.url("/mint"))
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert_eq!(preflight.headers()["access-control-allow-origin"], ORIGIN);
    assert_eq!(
        preflight.headers()["access-control-allow-credentials"],
        "true"
    );

    let allowed = client
        .post(app.url("/mint"))
        .header("origin", ORIGIN)
        .json(&json!({ "path": "/users/alice/" }))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(allowed.headers()["access-control-allow-origin"], ORIGIN);

    let preflight_evil = client
        .request(reqwest::Method::OPTIONS, app.url("/mint"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        preflight_evil
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_carry_an_id_and_bad_incoming_ids_are_replaced() {
    let app = TestApp::spawn(Options::default()).await;
    let kept = reqwest::Client::new()
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-123")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "trace-123");
    let replaced = reqwest::Client::new()
        .get(app.url("/healthz"))
        .header("x-request-id", "bad id\twith spaces")
        .send()
        .await
        .unwrap();
    assert_ne!(replaced.headers()["x-request-id"], "bad id\twith spaces");
}

/// Reads one HTTP/1.1 response (headers and a Content-Length body) from a
/// kept-alive connection: (status, lower-cased head).
fn read_response(stream: &mut std::net::TcpStream) -> Option<(u16, String)> {
    use std::io::Read;
    let mut buffer = Vec::new();
    let mut byte = [0u8; 1];
    while !buffer.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        buffer.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buffer).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |n| n.trim().parse().unwrap());
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).ok()?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, head))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_before_the_body_is_read_keep_the_connection_usable_or_say_close() {
    use std::io::Write;
    let app = TestApp::spawn(Options::default()).await;
    let addr = app.addr;
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let body = r#"{"path":"/users/alice/"}"#;
        for round in 0..20 {
            let refused = format!(
                "POST /mint HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            // Head and body in separate writes, as pooled clients send them:
            // the refusal may be ready before the body arrives.
            stream.write_all(refused.as_bytes()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(round % 3 * 5));
            stream.write_all(body.as_bytes()).unwrap();
            let (status, head) = read_response(&mut stream).expect("an answer to the refusal");
            assert_eq!(status, 403, "{head}");
            if head.contains("connection: close") {
                return;
            }
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let answer = read_response(&mut stream);
            assert!(
                matches!(answer, Some((200, _))),
                "round {round}: the connection was dropped without Connection: close"
            );
        }
    })
    .await
    .unwrap();
}
