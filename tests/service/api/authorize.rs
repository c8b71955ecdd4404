//! The authorization callback against a real HTTP server in the test: what
//! it is sent, how its answers combine with the grants, the cache, and every
//! way it can fail (each fails closed: nothing signed).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::harness::*;

const SECRET: &str = "callback-secret-0123456789";

/// How the application answers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Behaviour {
    /// Allows paths containing `/own/`, says `not_found` for `/missing/`,
    /// `unpaid` for `/unpaid/`, refuses the rest.
    Owner,
    AllowEverything,
    Slow,
    Status500,
    NotJson,
    OneResultShort,
    /// Allows everything in an answer padded with spaces to this many bytes.
    Padded(usize),
}

/// A question received, with the secret header it came with.
type Question = (Value, Option<String>);

struct Application {
    url: String,
    behaviour: Arc<Mutex<Behaviour>>,
    /// Every question received, with its secret header.
    questions: Arc<Mutex<Vec<Question>>>,
}

impl Application {
    async fn start(behaviour: Behaviour) -> Self {
        let behaviour = Arc::new(Mutex::new(behaviour));
        let questions = Arc::new(Mutex::new(Vec::new()));
        let (mode, seen) = (behaviour.clone(), questions.clone());
        let app = axum::Router::new().route(
            "/authorize",
            axum::routing::post(move |headers: HeaderMap, Json(question): Json<Value>| {
                let (mode, seen) = (mode.clone(), seen.clone());
                async move {
                    let secret = headers
                        .get("x-cfmint-secret")
                        .map(|v| v.to_str().unwrap().to_owned());
                    seen.lock().unwrap().push((question.clone(), secret));
                    let behaviour = *mode.lock().unwrap();
                    answer(behaviour, &question).await
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/authorize", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            behaviour,
            questions,
        }
    }

    fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    fn calls(&self) -> usize {
        self.questions.lock().unwrap().len()
    }

    fn last(&self) -> Question {
        self.questions.lock().unwrap().last().cloned().unwrap()
    }
}

async fn answer(behaviour: Behaviour, question: &Value) -> axum::response::Response {
    use axum::response::IntoResponse;
    let items = question["items"].as_array().cloned().unwrap_or_default();
    let results: Vec<Value> = items
        .iter()
        .map(|item| {
            let path = item["path"].as_str().unwrap_or_default();
            match behaviour {
                Behaviour::AllowEverything => json!({ "allow": true }),
                _ if path.contains("/own/") => json!({ "allow": true }),
                _ if path.contains("/missing/") => json!({ "allow": false, "reason": "not_found" }),
                _ if path.contains("/unpaid/") => json!({ "allow": false, "reason": "unpaid" }),
                _ => json!({ "allow": false }),
            }
        })
        .collect();
    match behaviour {
        Behaviour::Slow => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            Json(json!({ "results": results })).into_response()
        }
        Behaviour::Status500 => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Behaviour::NotJson => "<html>oops</html>".into_response(),
        Behaviour::OneResultShort => {
            Json(json!({ "results": results[1..].to_vec() })).into_response()
        }
        Behaviour::Padded(size) => {
            let allowed: Vec<Value> = results.iter().map(|_| json!({ "allow": true })).collect();
            let mut text = json!({ "results": allowed }).to_string();
            text.push_str(&" ".repeat(size - text.len()));
            ([("content-type", "application/json")], text).into_response()
        }
        _ => Json(json!({ "results": results })).into_response(),
    }
}

/// cfmint asking `application` before each mint, with `extra` settings.
async fn app_asking(application: &Application, extra: &[(&str, &str)]) -> TestApp {
    let mut options = Options::default()
        .env("CFMINT__AUTHORIZE__URL", &application.url)
        .env("CFMINT__AUTHORIZE__SECRET", SECRET)
        .env("CFMINT__AUTHORIZE__CLAIMS", "groups")
        .env("CFMINT__AUTHORIZE__TIMEOUT", "300ms")
        .env("CFMINT__MINT__MAX_SIGN_URLS", "50");
    for (key, value) in extra {
        options = options.env(key, value);
    }
    TestApp::spawn(options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_application_decides_ownership_inside_the_grants() {
    let application = Application::start(Behaviour::Owner).await;
    let app = app_asking(&application, &[("CFMINT__AUTHORIZE__CACHE_TTL", "0s")]).await;
    let client = app.client();
    app.login(&client, "alice").await;

    let (status, headers, body) = post_json(
        &client,
        app.url("/mint"),
        json!({ "path": "/users/alice/own/", "match": "folder" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        verify(
            &cloudfront_cookie_header(&headers),
            "/users/alice/own/a.m3u8",
            None
        )
        .is_allowed()
    );
    let (question, secret) = application.last();
    assert_eq!(secret.as_deref(), Some(SECRET));
    assert_eq!(
        question,
        json!({
            "sub": "alice",
            "claims": { "groups": [] },
            "purpose": "mint",
            "items": [{ "path": "/users/alice/own/", "match": "folder" }],
        })
    );

    for (path, error) in [
        ("/users/alice/other/", "not_granted"),
        ("/users/alice/missing/", "not_granted"),
        ("/users/alice/unpaid/", "not_granted"),
    ] {
        let (status, headers, body) =
            post_json(&client, app.url("/mint"), json!({ "path": path })).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(body["error"], error, "{path}");
        assert!(headers.get("set-cookie").is_none(), "{path}");
    }

    // The callback can never approve outside the grants (mode "all"): it is
    // not even asked.
    application.set(Behaviour::AllowEverything);
    let calls = application.calls();
    let (status, _, _) = post_json(
        &client,
        app.url("/mint"),
        json!({ "path": "/users/bob/own/" }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(application.calls(), calls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_urls_batch_is_one_call_with_an_answer_per_item() {
    let application = Application::start(Behaviour::Owner).await;
    let app = app_asking(&application, &[]).await;
    let client = app.client();
    app.login(&client, "alice").await;
    let urls = json!([
        "/users/alice/own/a.pdf?w=200",
        "/users/alice/missing/b.pdf",
        "/users/alice/unpaid/c.pdf",
        "/users/alice/other/d.pdf",
        "/users/bob/own/e.pdf",
        "/users/alice/own/../f.pdf",
    ]);
    let (status, _, body) =
        post_json(&client, app.url("/sign-urls"), json!({ "urls": urls })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(application.calls(), 1);
    let (question, _) = application.last();
    assert_eq!(question["purpose"], "sign-urls");
    // Only what the grants allow is asked about, by path alone.
    assert_eq!(
        question["items"],
        json!([
            { "path": "/users/alice/own/a.pdf", "match": "exact" },
            { "path": "/users/alice/missing/b.pdf", "match": "exact" },
            { "path": "/users/alice/unpaid/c.pdf", "match": "exact" },
            { "path": "/users/alice/other/d.pdf", "match": "exact" },
        ])
    );
    let items = body["urls"].as_array().unwrap();
    assert!(
        items[0]["url"]
            .as_str()
            .unwrap()
            .contains("/users/alice/own/a.pdf?w=200&")
    );
    let errors: Vec<&str> = items[1..]
        .iter()
        .map(|i| i["error"].as_str().unwrap())
        .collect();
    assert_eq!(
        errors,
        [
            "not_found",
            "not_granted",
            "not_granted",
            "not_granted",
            "invalid_path"
        ]
    );
    assert!(items[2]["message"].as_str().unwrap().contains("unpaid"));
    // A refusal without a reason reads like any other refusal.
    assert_eq!(items[3]["message"], "the path is not granted to you");
    for item in &items[1..] {
        assert!(item.get("url").is_none(), "{item}");
    }

    // Answers are cached per subject and item: the same batch asks nothing.
    let (_, _, again) = post_json(&client, app.url("/sign-urls"), json!({ "urls": urls })).await;
    assert_eq!(application.calls(), 1);
    assert_eq!(again["urls"][1]["error"], "not_found");
    let metrics = app.metrics().await;
    assert_eq!(
        metric(&metrics, r#"cfmint_authorize_calls_total{result="ok"}"#),
        1
    );
    assert_eq!(
        metric(&metrics, r#"cfmint_authorize_cache_total{result="hit"}"#),
        4
    );
    assert_eq!(
        metric(&metrics, r#"cfmint_authorize_cache_total{result="miss"}"#),
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denials_are_cached_for_less_time_than_permissions() {
    let application = Application::start(Behaviour::Owner).await;
    let app = app_asking(
        &application,
        &[
            ("CFMINT__AUTHORIZE__CACHE_TTL", "1h"),
            ("CFMINT__AUTHORIZE__DENY_CACHE_TTL", "1s"),
        ],
    )
    .await;
    let client = app.client();
    app.login(&client, "alice").await;
    let mint = |path: &'static str| {
        let (client, url) = (client.clone(), app.url("/mint"));
        async move { post_json(&client, url, json!({ "path": path })).await.0 }
    };
    assert_eq!(mint("/users/alice/own/").await, StatusCode::OK);
    assert_eq!(mint("/users/alice/other/").await, StatusCode::FORBIDDEN);
    assert_eq!(application.calls(), 2);
    // The application changes its mind; a denial is asked again once it
    // expires, a permission is not.
    application.set(Behaviour::AllowEverything);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(mint("/users/alice/own/").await, StatusCode::OK);
    assert_eq!(mint("/users/alice/other/").await, StatusCode::OK);
    assert_eq!(application.calls(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_mode_any_the_callback_may_allow_beyond_the_grants() {
    let application = Application::start(Behaviour::Owner).await;
    let app = app_asking(&application, &[("CFMINT__AUTHORIZE__MODE", "any")]).await;
    let client = app.client();
    app.login(&client, "alice").await;
    let calls = application.calls();
    // Granted statically: no call.
    let (status, _, _) = post_json(
        &client,
        app.url("/mint"),
        json!({ "path": "/users/alice/" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(application.calls(), calls);
    let (status, _, _) =
        post_json(&client, app.url("/mint"), json!({ "path": "/shared/own/" })).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = post_json(
        &client,
        app.url("/mint"),
        json!({ "path": "/shared/other/" }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(application.calls(), calls + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_callback_failure_fails_closed() {
    let application = Application::start(Behaviour::Owner).await;
    let app = app_asking(&application, &[("CFMINT__AUTHORIZE__CACHE_TTL", "0s")]).await;
    let client = app.client();
    app.login(&client, "alice").await;
    for behaviour in [
        Behaviour::Slow,
        Behaviour::Status500,
        Behaviour::NotJson,
        Behaviour::OneResultShort,
    ] {
        application.set(behaviour);
        let (status, headers, body) = post_json(
            &client,
            app.url("/mint"),
            json!({ "path": "/users/alice/own/" }),
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{behaviour:?}");
        assert_eq!(body["error"], "authorizer_unavailable", "{behaviour:?}");
        assert!(headers.get("set-cookie").is_none(), "{behaviour:?}");
        let (status, _, body) = post_json(
            &client,
            app.url("/sign-urls"),
            json!({ "urls": ["/users/alice/own/a.pdf", "/users/alice/own/b.pdf"] }),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{behaviour:?}");
        for item in body["urls"].as_array().unwrap() {
            assert_eq!(
                item["error"], "authorizer_unavailable",
                "{behaviour:?}: {item}"
            );
            assert!(item.get("url").is_none());
        }
    }
    let metrics = app.metrics().await;
    for (result, count) in [("timeout", 2), ("status", 2), ("malformed", 4)] {
        let series = format!(r#"cfmint_authorize_calls_total{{result="{result}"}}"#);
        assert_eq!(metric(&metrics, &series), count, "{series}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_that_is_down_signs_nothing() {
    // A port nothing listens on.
    let closed = format!("http://127.0.0.1:{}/authorize", free_port());
    let app = TestApp::spawn(
        Options::default()
            .env("CFMINT__AUTHORIZE__URL", &closed)
            .env("CFMINT__MINT__MAX_SIGN_URLS", "50"),
    )
    .await;
    let client = app.client();
    app.login(&client, "alice").await;
    let (status, headers, body) = post_json(
        &client,
        app.url("/mint"),
        json!({ "path": "/users/alice/" }),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"], "authorizer_unavailable");
    assert!(headers.get("set-cookie").is_none());
    let metrics = app.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            r#"cfmint_authorize_calls_total{result="unreachable"}"#
        ),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_is_read_up_to_one_mebibyte_and_no_further() {
    let application = Application::start(Behaviour::Padded(1 << 20)).await;
    let app = app_asking(&application, &[("CFMINT__AUTHORIZE__CACHE_TTL", "0s")]).await;
    let client = app.client();
    app.login(&client, "alice").await;
    let (status, _, body) = post_json(
        &client,
        app.url("/mint"),
        json!({ "path": "/users/alice/any/" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "exactly 1 MiB is read: {body}");
    application.set(Behaviour::Padded((1 << 20) + 1));
    let (status, _, body) = post_json(
        &client,
        app.url("/mint"),
        json!({ "path": "/users/alice/any/" }),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "authorizer_unavailable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_file_is_never_signed_wider_than_the_approval() {
    // No grant covers /shop/; the application approves single files. Under
    // IP binding (custom policies) a query string's `?` would be a
    // wildcard: the approval of `/shop/own/a` does not stretch to
    // `/shop/own/a.txt`, so it is refused by name.
    let application = Application::start(Behaviour::Owner).await;
    let app = app_asking(
        &application,
        &[
            ("CFMINT__AUTHORIZE__MODE", "any"),
            ("CFMINT__MINT__IP_BINDING", "true"),
        ],
    )
    .await;
    let client = app.client();
    app.login(&client, "alice").await;
    let (status, _, body) = post_json(
        &client,
        app.url("/sign-urls"),
        json!({ "urls": ["/shop/own/a?txt", "/shop/own/a", "/shop/own/b?w=1"] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["urls"].as_array().unwrap();
    assert_eq!(items[0]["error"], "widens_grant", "{body}");
    assert!(items[1]["url"].is_string(), "{body}");
    assert_eq!(items[2]["error"], "widens_grant", "{body}");
}
