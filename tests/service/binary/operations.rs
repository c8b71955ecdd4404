//! Operations: key rotation on SIGHUP, graceful shutdown on SIGTERM, the
//! origin lock, and the healthcheck command.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use cfmint::signer::{Backend, KeyPairId, KeySource, KeySpec, PrivateKey, PublicKeys};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

fn write_key(dir: &Path, name: &str, spec: KeySpec) -> (std::path::PathBuf, String) {
    let generated = Backend::default().generate(spec).unwrap();
    let path = dir.join(format!("{name}.pem"));
    std::fs::write(&path, &*generated.private_pem).unwrap();
    (path, generated.private_pem.to_string())
}

fn config_with_keys(keys: &str, active: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
shutdown_timeout = "5s"
[cloudfront]
base_url = "{BASE_URL}"
[keys]
active = "{active}"
{keys}
[mint]
default_path = "/users/{{sub}}/"
[auth.users]
demo = true
[[grants]]
paths = ["/users/{{sub}}/*"]
"#
    )
}

fn key_entry(id: &str, path: &Path, kind: Option<&str>) -> String {
    let kind = kind.map_or(String::new(), |k| format!("type = \"{k}\"\n"));
    format!(
        "[[keys.key]]\nid = \"{id}\"\nfile = \"{}\"\n{kind}",
        path.display()
    )
}

fn public(id: &str, pem: &str) -> cfmint::signer::PublicKey {
    PrivateKey::from_pem(
        KeyPairId::new(id).unwrap(),
        pem,
        KeySource::Inline,
        Backend::default(),
    )
    .unwrap()
    .public_key()
    .unwrap()
}

fn allowed(keys: &PublicKeys, cookies: &str) -> bool {
    let url = format!("{BASE_URL}/users/demo/chapter.m3u8");
    cfmint::signer::verify(
        keys,
        &cfmint::signer::ViewerRequest {
            url: &url,
            cookie_header: Some(cookies),
            client_ip: None,
            now: now(),
        },
    )
    .is_allowed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_rotates_keys_and_refuses_a_bad_new_key() {
    crate::harness::process_setup();
    let dir = tempfile::tempdir().unwrap();
    let (a_path, a_pem) = write_key(dir.path(), "a", KeySpec::Rsa { bits: 2048 });
    let (b_path, b_pem) = write_key(dir.path(), "b", KeySpec::EcdsaP256);
    let config_path = dir.path().join("cfmint.toml");
    std::fs::write(
        &config_path,
        config_with_keys(&key_entry("KKEYA", &a_path, None), "KKEYA"),
    )
    .unwrap();
    let mut process = ServeProcess::start(&["--config", config_path.to_str().unwrap()], &[]);
    let group = PublicKeys::new(vec![public("KKEYA", &a_pem), public("KKEYB", &b_pem)]).unwrap();

    let client = client();
    process.login_as(&client, "demo", "demo").await;
    let minted = process.mint(&client, Value::Null).await.ok();
    let (signer, a_cookies) = (minted.key_pair_id(), minted.cookies);
    assert_eq!(signer, "KKEYA");

    // B becomes active, A stays in the ring.
    let both = format!(
        "{}{}",
        key_entry("KKEYA", &a_path, Some("rsa")),
        key_entry("KKEYB", &b_path, Some("ecdsa"))
    );
    std::fs::write(&config_path, config_with_keys(&both, "KKEYB")).unwrap();
    process.signal("HUP");
    let reloaded = process.wait_for_log(
        "key ring reloaded; signing with the active key",
        Duration::from_secs(10),
    );
    assert_eq!(reloaded["key_pair_id"], "KKEYB");
    let minted = process.mint(&client, Value::Null).await.ok();
    let (signer, b_cookies) = (minted.key_pair_id(), minted.cookies);
    assert_eq!(signer, "KKEYB");
    assert!(allowed(&group, &b_cookies));
    assert!(
        allowed(&group, &a_cookies),
        "cookies signed by A still verify"
    );

    // B's file is corrupted: the reload is refused and B keeps signing.
    let garbage = "-----BEGIN PRIVATE KEY-----\nTk9UQUtFWVRIQVRBTllCT0RZQ09VTERQQVJTRQ==\n-----END PRIVATE KEY-----\n";
    std::fs::write(&b_path, garbage).unwrap();
    process.signal("HUP");
    let refused = process.wait_for_log(
        "key reload refused; the previous keys keep signing",
        Duration::from_secs(10),
    );
    assert!(
        refused["error"].as_str().unwrap().contains("keys.key[1]"),
        "{refused}"
    );
    assert_eq!(
        process.mint(&client, Value::Null).await.ok().key_pair_id(),
        "KKEYB"
    );

    // A key of the wrong type is refused too.
    write_key(dir.path(), "b", KeySpec::Rsa { bits: 2048 });
    process.signal("HUP");
    let refused = process.wait_for_log(
        "key reload refused; the previous keys keep signing",
        Duration::from_secs(10),
    );
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("not the configured type"),
        "{refused}"
    );
    assert_eq!(
        process.mint(&client, Value::Null).await.ok().key_pair_id(),
        "KKEYB"
    );

    let metrics = process.metrics().await;
    assert_eq!(
        metric(&metrics, "cfmint_key_reloads_total{result=\"ok\"}"),
        1
    );
    assert_eq!(
        metric(&metrics, "cfmint_key_reloads_total{result=\"failed\"}"),
        2
    );
    assert_eq!(
        reqwest::get(process.url("/readyz")).await.unwrap().status(),
        StatusCode::OK
    );

    let log = process.drain_log();
    for secret in [&a_pem, &b_pem, &garbage.to_owned()] {
        let body = secret.lines().nth(1).unwrap();
        assert!(!log.contains(body), "key material in the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_request_in_flight_and_refuses_new_connections() {
    let mut process = ServeProcess::start(
        &[],
        &[
            ("CFMINT__SERVER__LISTEN", "127.0.0.1:0"),
            ("CFMINT__SERVER__ADMIN_LISTEN", ""),
            ("CFMINT__SERVER__SHUTDOWN_TIMEOUT", "5s"),
        ],
    );
    // A login whose body is still on its way when SIGTERM arrives.
    let body = br#"{"username":"demo","password":"demo"}"#;
    let mut stream = TcpStream::connect(&process.listen).unwrap();
    write!(
        stream,
        "POST /login HTTP/1.1\r\nHost: cfmint\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(200));

    let started = Instant::now();
    process.signal("TERM");
    process.wait_for_log(
        "shutting down: listener closed, finishing requests",
        Duration::from_secs(5),
    );
    let deadline = Instant::now() + Duration::from_secs(3);
    while TcpStream::connect(&process.listen).is_ok() {
        assert!(Instant::now() < deadline, "still accepting connections");
        std::thread::sleep(Duration::from_millis(20));
    }

    stream.write_all(&body[10..]).unwrap();
    let mut answer = String::new();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");

    let status = process.child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "within the drain bound"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origin_lock_refuses_requests_without_the_secret() {
    let secret = "s3cret-from-cloudfront-0123456789";
    let app = TestApp::spawn(
        Options::default()
            .env("CFMINT__SERVER__ORIGIN_HEADER", "x-origin-verify")
            .env("CFMINT__SERVER__ORIGIN_SECRET", secret),
    )
    .await;
    let login = |header: Option<&str>| {
        let mut request = reqwest::Client::new()
            .post(app.url("/login"))
            .json(&json!({ "username": "alice", "password": PASSWORD }));
        if let Some(value) = header {
            request = request.header("x-origin-verify", value);
        }
        request.send()
    };
    for wrong in [
        None,
        Some("wrong"),
        Some("s3cret-from-cloudfront-012345678"),
    ] {
        let response = login(wrong).await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{wrong:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "origin_locked");
    }
    assert_eq!(
        login(Some(secret)).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        reqwest::get(app.url("/healthz")).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        reqwest::get(app.url("/readyz")).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        metric(&app.metrics().await, "cfmint_origin_rejected_total"),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exits_0_when_healthy_and_1_otherwise() {
    let app = TestApp::spawn(Options::default()).await;
    let run = |url: String| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cfmint"))
            .args(["healthcheck", "--url", &url, "--timeout", "2s"])
            .output()
            .unwrap()
    };
    let url = app.url("/healthz");
    let healthy = tokio::task::spawn_blocking(move || run(url)).await.unwrap();
    assert_eq!(healthy.status.code(), Some(0));
    let closed = format!("http://127.0.0.1:{}/healthz", free_port());
    let down = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_cfmint"))
            .args(["healthcheck", "--url", &closed])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(down.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_watch_reloads_when_a_key_file_changes_without_a_signal() {
    crate::harness::process_setup();
    let dir = tempfile::tempdir().unwrap();
    let (a_path, _) = write_key(dir.path(), "a", KeySpec::Rsa { bits: 2048 });
    let config_path = dir.path().join("cfmint.toml");
    let text = config_with_keys(&key_entry("KKEYA", &a_path, None), "KKEYA")
        .replace("[keys]\n", "[keys]\nwatch = true\n");
    std::fs::write(&config_path, &text).unwrap();
    let mut process = ServeProcess::start(&["--config", config_path.to_str().unwrap()], &[]);
    let client = client();
    process.login_as(&client, "demo", "demo").await;
    let minted = process.mint(&client, Value::Null).await.ok();
    let signer = minted.key_pair_id();
    assert_eq!(signer, "KKEYA");

    // The key file is replaced in place (same id): the new key signs.
    let (_, new_pem) = write_key(dir.path(), "a", KeySpec::EcdsaP256);
    let reloaded = process.wait_for_log(
        "key ring reloaded; signing with the active key",
        Duration::from_secs(15),
    );
    assert_eq!(reloaded["algorithm"], "ECDSA P-256", "{reloaded}");
    let minted = process.mint(&client, Value::Null).await.ok();
    let cookies = minted.cookies;
    let group = PublicKeys::new(vec![public("KKEYA", &new_pem)]).unwrap();
    assert!(allowed(&group, &cookies), "signed with the new key");

    // The config changes too: a second key becomes active.
    let (b_path, _) = write_key(dir.path(), "b", KeySpec::Rsa { bits: 2048 });
    let both = format!(
        "{}{}",
        key_entry("KKEYA", &a_path, None),
        key_entry("KKEYB", &b_path, None)
    );
    std::fs::write(
        &config_path,
        config_with_keys(&both, "KKEYB").replace("[keys]\n", "[keys]\nwatch = true\n"),
    )
    .unwrap();
    let reloaded = process.wait_for_log(
        "key ring reloaded; signing with the active key",
        Duration::from_secs(15),
    );
    assert_eq!(reloaded["key_pair_id"], "KKEYB");
    assert_eq!(
        process.mint(&client, Value::Null).await.ok().key_pair_id(),
        "KKEYB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exits_1_on_a_503_and_0_on_a_200() {
    let mut redis = crate::harness::Redis::start();
    let app = crate::harness::TestApp::spawn(crate::harness::Options::with_store(
        crate::harness::StoreChoice::Redis(redis.port),
    ))
    .await;
    let healthcheck = |path: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cfmint"))
            .args(["healthcheck", "--url", &app.url(path)])
            .output()
            .unwrap()
    };
    let ready = healthcheck("/readyz");
    assert_eq!(ready.status.code(), Some(0), "{ready:?}");
    redis.stop();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let unready = loop {
        let output = healthcheck("/readyz");
        if output.status.code() != Some(0) || std::time::Instant::now() > deadline {
            break output;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(unready.status.code(), Some(1), "{unready:?}");
    let stderr = String::from_utf8_lossy(&unready.stderr);
    assert!(stderr.contains("503"), "{stderr}");
    // Liveness stays up while the store is down.
    assert_eq!(healthcheck("/healthz").status.code(), Some(0));
    let closed = std::process::Command::new(env!("CARGO_BIN_EXE_cfmint"))
        .args(["healthcheck", "--url"])
        .arg(format!(
            "http://127.0.0.1:{}/healthz",
            crate::harness::free_port()
        ))
        .output()
        .unwrap();
    assert_eq!(closed.status.code(), Some(1));
}
