//! Keys that never enter the process, for real: AWS KMS is moto[server] on
//! loopback (behind a proxy the tests can black-hole, slow down or make
//! throttle), PKCS#11 is SoftHSM with a token made in a temporary directory.
//! `cfmint serve` runs as a process; what it mints is checked with cfmint's
//! verifier and with the `openssl` command line against the public key the
//! store reports through `cfmint keys public`.
// With one of the two features, the other store's helpers go unused.
#![cfg_attr(
    not(all(feature = "aws-kms", feature = "pkcs11")),
    allow(dead_code, unused_imports)
)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::aws::Moto;
use crate::harness::cookie_value;
use crate::harness::process::{Minted, env_refs};
use crate::harness::signer_common::openssl_verifies;
use crate::harness::{
    BASE_URL, KEY_ID, RATE_LIMITS_OFF, ServeProcess, fixtures, metric_if_present, now,
    process_setup, serve_config_with,
};
use cfmint::signer::{self, Backend, KeyPairId, PublicKey, PublicKeys, ViewerRequest};

const PIN: &str = "cfmint-test-pin-4321";
const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// What the proxy in front of KMS does with each request.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Fault {
    Pass = 0,
    /// Reads requests and never answers: a store that went away.
    BlackHole = 1,
    /// Answers every request with KMS's `ThrottlingException`.
    Throttle = 2,
    /// Forwards each request after 300 ms.
    Slow = 3,
}

/// An HTTP/1.1 proxy in front of moto, request by request.
struct FaultProxy {
    port: u16,
    mode: Arc<AtomicU8>,
}

impl FaultProxy {
    fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(Fault::Pass as u8));
        let shared = mode.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let mode = shared.clone();
                std::thread::spawn(move || relay(client, upstream, &mode));
            }
        });
        Self { port, mode }
    }

    fn set(&self, fault: Fault) {
        self.mode.store(fault as u8, Ordering::SeqCst);
    }
}

/// One HTTP message: headers, then a `Content-Length` body.
fn read_message(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut message = Vec::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().ok()?;
        }
        message.extend_from_slice(line.as_bytes());
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    message.extend(body);
    Some(message)
}

fn relay(client: TcpStream, upstream_port: u16, mode: &AtomicU8) {
    let mut requests = BufReader::new(client.try_clone().unwrap());
    let mut client = client;
    let mut upstream: Option<(TcpStream, BufReader<TcpStream>)> = None;
    while let Some(request) = read_message(&mut requests) {
        match mode.load(Ordering::SeqCst) {
            1 => {
                while mode.load(Ordering::SeqCst) == Fault::BlackHole as u8 {
                    std::thread::sleep(Duration::from_millis(20));
                }
                return;
            }
            2 => {
                let body = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
                let response = format!(
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\n\
                     x-amzn-ErrorType: ThrottlingException\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                if client.write_all(response.as_bytes()).is_err() {
                    return;
                }
                continue;
            }
            3 => std::thread::sleep(Duration::from_millis(300)),
            _ => {}
        }
        let (stream, responses) = upstream.get_or_insert_with(|| {
            let stream = TcpStream::connect(("127.0.0.1", upstream_port)).unwrap();
            let reader = BufReader::new(stream.try_clone().unwrap());
            (stream, reader)
        });
        if stream.write_all(&request).is_err() {
            return;
        }
        let Some(response) = read_message(responses) else {
            return;
        };
        if client.write_all(&response).is_err() {
            return;
        }
    }
}

/// The AWS environment `cfmint` runs with: test credentials, and KMS at
/// `port` through the standard endpoint override.
fn aws_env(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("AWS_CONFIG_FILE", "/nonexistent".to_owned()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent".to_owned()),
        ("AWS_ENDPOINT_URL_KMS", format!("http://127.0.0.1:{port}")),
    ]
}

/// A `cfmint serve` configuration signing with `keys` (TOML) over `hash`.
fn write_config(dir: &Path, hash: &str, keys: &str) -> PathBuf {
    serve_config_with(
        dir,
        &format!("base_url = \"{BASE_URL}\"\nhash_algorithm = \"{hash}\""),
        keys,
        &format!(
            "[mint]\nttl = \"10m\"\nexpiry_rounding = \"1m\"\n[[grants]]\npaths = [\"/users/{{sub}}/*\"]\n{RATE_LIMITS_OFF}"
        ),
    )
}

async fn ready(serve: &ServeProcess) -> StatusCode {
    reqwest::get(format!("http://{}/readyz", serve.admin))
        .await
        .unwrap()
        .status()
}

async fn wait_until_ready(serve: &ServeProcess, want: StatusCode, within: Duration) {
    let deadline = Instant::now() + within;
    while ready(serve).await != want {
        assert!(Instant::now() < deadline, "/readyz did not become {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The key's public half as the store reports it, through the CLI.
fn store_public_key(dir: &Path, args: &[&str], env: &[(&'static str, String)]) -> PathBuf {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cfmint"));
    command.args(["keys", "public"]).args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pem = String::from_utf8(out.stdout).unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    let path = dir.join(format!(
        "public-{}.pem",
        args[1].replace(['/', ':', ';', '='], "_")
    ));
    std::fs::write(&path, pem).unwrap();
    path
}

fn public_keys(id: &str, pem: &Path) -> PublicKeys {
    let key = PublicKey::from_file(KeyPairId::new(id).unwrap(), pem, Backend::default()).unwrap();
    PublicKeys::new(vec![key]).unwrap()
}

/// Checks cookies signed by `id` as CloudFront would (cfmint's verifier)
/// and as `openssl dgst -verify` does with the store's public key.
fn check_cookies(cookies: &str, id: &str, pem: &Path, hash: &str, path: &str) {
    assert_eq!(
        cookie_value(cookies, "CloudFront-Key-Pair-Id"),
        id,
        "{cookies}"
    );
    let url = format!("{BASE_URL}{path}file.m3u8");
    let verdict = signer::verify(
        &public_keys(id, pem),
        &ViewerRequest {
            url: &url,
            cookie_header: Some(cookies),
            client_ip: None,
            now: now(),
        },
    );
    assert!(verdict.is_allowed(), "{:?}", verdict.result);
    let policy = signer::decode_base64(&cookie_value(cookies, "CloudFront-Policy")).unwrap();
    let signature = signer::decode_base64(&cookie_value(cookies, "CloudFront-Signature")).unwrap();
    assert!(openssl_verifies(
        &std::fs::read_to_string(pem).unwrap(),
        hash,
        &policy,
        &signature
    ));
}

/// A signed URL from `/sign-urls` (a canned policy), verified with the
/// store's public key by cfmint's verifier and by `openssl` over the canned
/// policy CloudFront rebuilds from the URL and its expiry.
async fn check_signed_url(
    serve: &ServeProcess,
    client: &reqwest::Client,
    id: &str,
    pem: &Path,
    hash: &str,
) {
    let answer: Value = client
        .post(serve.url("/sign-urls"))
        .json(&json!({ "urls": ["/users/alice/book.m4b"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = answer["urls"][0]["url"].as_str().unwrap();
    assert!(url.contains(&format!("Key-Pair-Id={id}")), "{url}");
    let verdict = signer::verify(
        &public_keys(id, pem),
        &ViewerRequest {
            url,
            cookie_header: None,
            client_ip: None,
            now: now(),
        },
    );
    assert!(verdict.is_allowed(), "{:?}", verdict.result);
    let (resource, query) = url.split_once('?').unwrap();
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {url}"))
    };
    let expires: u64 = param("Expires").parse().unwrap();
    let canned = signer::Policy::builder(resource)
        .expires(expires)
        .build()
        .unwrap()
        .to_json();
    let signature = signer::decode_base64(param("Signature")).unwrap();
    assert!(openssl_verifies(
        &std::fs::read_to_string(pem).unwrap(),
        hash,
        canned.as_bytes(),
        &signature
    ));
}

/// Points `keys.active` at `id` and reloads with SIGHUP.
fn activate(serve: &mut ServeProcess, config: &Path, id: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    let start = text.find("active = \"").unwrap() + "active = \"".len();
    let end = start + text[start..].find('"').unwrap();
    std::fs::write(config, format!("{}{id}{}", &text[..start], &text[end..])).unwrap();
    serve.signal("HUP");
    let entry = serve.wait_for_log(
        "key ring reloaded; signing with the active key",
        Duration::from_secs(20),
    );
    assert_eq!(entry["key_pair_id"], id);
}

#[cfg(feature = "aws-kms")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_keys_sign_cookies_and_urls_that_verify_and_rotate_with_a_local_key_on_sighup() {
    process_setup();
    let moto = Moto::start(0.0);
    let (rsa, ecdsa) = (
        moto.create_kms_key("RSA_2048"),
        moto.create_kms_key("ECC_NIST_P256"),
    );
    let env = aws_env(moto.port);
    let dir = tempfile::tempdir().unwrap();
    let keys = format!(
        r#"[keys]
active = "{KEY_ID}"
[[keys.key]]
id = "{KEY_ID}"
file = "{local}"
[[keys.key]]
id = "KKMSRSA"
kms_key_id = "{rsa}"
type = "rsa"
[[keys.key]]
id = "KKMSECDSA"
kms_key_id = "{ecdsa}"
type = "ecdsa""#,
        local = fixtures().signing_key.display()
    );
    let config = write_config(dir.path(), "sha256", &keys);
    let mut serve = ServeProcess::with_config(&config, &env_refs(&env));
    let client = serve.logged_in("alice").await;
    let cookies = serve
        .mint(&client, json!({ "path": "/users/alice/" }))
        .await
        .ok()
        .cookies;
    assert_eq!(cookie_value(&cookies, "CloudFront-Key-Pair-Id"), KEY_ID);
    assert_eq!(
        cookie_value(&cookies, "CloudFront-Hash-Algorithm"),
        "SHA256"
    );

    for (id, arn) in [("KKMSRSA", &rsa), ("KKMSECDSA", &ecdsa)] {
        let pem = store_public_key(dir.path(), &["--kms-key-id", arn], &env);
        activate(&mut serve, &config, id);
        let Minted {
            status, cookies, ..
        } = serve
            .mint(&client, json!({ "path": "/users/alice/" }))
            .await;
        assert_eq!(status, StatusCode::OK, "{id}");
        check_cookies(&cookies, id, &pem, "sha256", "/users/alice/");
        check_signed_url(&serve, &client, id, &pem, "sha256").await;
    }
    activate(&mut serve, &config, KEY_ID);
    let cookies = serve
        .mint(&client, json!({ "path": "/users/alice/" }))
        .await
        .cookies;
    assert_eq!(cookie_value(&cookies, "CloudFront-Key-Pair-Id"), KEY_ID);
    let text = serve.metrics().await;
    assert!(
        metric_if_present(
            &text,
            r#"cfmint_remote_signatures_total{store="aws-kms",result="ok"}"#
        )
        .is_some_and(|ok| ok >= 4),
        "{text}"
    );
}

#[cfg(feature = "aws-kms")]
#[test]
fn a_kms_key_with_sha1_signatures_is_refused_at_start_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let keys = "[keys]\n[[keys.key]]\nid = \"KKMS\"\nkms_key_id = \"alias/cloudfront\"";
    let config = write_config(dir.path(), "sha1", keys);
    let out = Command::new(env!("CARGO_BIN_EXE_cfmint"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cloudfront.hash_algorithm"), "{stderr}");
    assert!(stderr.contains("SHA-256 only"), "{stderr}");
}

#[cfg(feature = "aws-kms")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_or_throttling_kms_gets_503_with_retry_after_and_cfmint_recovers() {
    process_setup();
    let moto = Moto::start(0.0);
    let arn = moto.create_kms_key("RSA_2048");
    let proxy = FaultProxy::start(moto.port);
    let env = aws_env(proxy.port);
    let dir = tempfile::tempdir().unwrap();
    let keys = format!(
        "[keys]\nremote_timeout = \"1s\"\n[[keys.key]]\nid = \"KKMS\"\nkms_key_id = \"{arn}\""
    );
    let config = write_config(dir.path(), "sha256", &keys);

    // Unreachable at start: serving, not ready, and mints refused at once.
    proxy.set(Fault::BlackHole);
    let mut serve = ServeProcess::with_config(&config, &env_refs(&env));
    assert_eq!(ready(&serve).await, StatusCode::SERVICE_UNAVAILABLE);
    let client = serve.logged_in("alice").await;
    let minted = serve
        .mint(&client, json!({ "path": "/users/alice/a/" }))
        .await;
    let (status, retry_after) = (minted.status, minted.retry_after());
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(retry_after.is_some());

    // Reachable: ready, and the public key is the one KMS reports.
    proxy.set(Fault::Pass);
    wait_until_ready(&serve, StatusCode::OK, Duration::from_secs(15)).await;
    let pem = store_public_key(dir.path(), &["--kms-key-id", &arn], &aws_env(moto.port));
    let cookies = serve
        .mint(&client, json!({ "path": "/users/alice/a/" }))
        .await
        .ok()
        .cookies;
    check_cookies(&cookies, "KKMS", &pem, "sha256", "/users/alice/a/");

    // Throttled: 503 with Retry-After, counted.
    proxy.set(Fault::Throttle);
    let minted = serve
        .mint(&client, json!({ "path": "/users/alice/b/" }))
        .await;
    let (status, retry_after) = (minted.status, minted.retry_after());
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry_after.as_deref(), Some("1"));
    proxy.set(Fault::Pass);
    assert_eq!(
        serve
            .mint(&client, json!({ "path": "/users/alice/b/" }))
            .await
            .status,
        StatusCode::OK
    );

    // Gone mid-run: 503 within the timeout, never a hang.
    proxy.set(Fault::BlackHole);
    let started = Instant::now();
    let minted = serve
        .mint(&client, json!({ "path": "/users/alice/c/" }))
        .await;
    let (status, retry_after) = (minted.status, minted.retry_after());
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(retry_after.is_some());
    assert!(
        started.elapsed() < Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );

    let text = serve.metrics().await;
    let count = |result: &str| {
        let series =
            format!(r#"cfmint_remote_signatures_total{{store="aws-kms",result="{result}"}}"#);
        metric_if_present(&text, &series).unwrap_or(0)
    };
    assert!(count("throttled") >= 1, "{text}");
    // Whichever gave up first, cfmint's deadline or the SDK's.
    assert!(count("timeout") + count("unavailable") >= 1, "{text}");

    // Back: signing again.
    proxy.set(Fault::Pass);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let Minted {
            status, cookies, ..
        } = serve
            .mint(&client, json!({ "path": "/users/alice/d/" }))
            .await;
        if status == StatusCode::OK {
            check_cookies(&cookies, "KKMS", &pem, "sha256", "/users/alice/d/");
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_until_ready(&serve, StatusCode::OK, Duration::from_secs(15)).await;
    let log = serve.drain_log();
    assert!(!log.contains("testing\""), "credentials in the log:\n{log}");
}

#[cfg(feature = "aws-kms")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_concurrent_mints_share_one_kms_signature() {
    process_setup();
    let moto = Moto::start(0.0);
    let arn = moto.create_kms_key("ECC_NIST_P256");
    let proxy = FaultProxy::start(moto.port);
    let env = aws_env(proxy.port);
    let dir = tempfile::tempdir().unwrap();
    let keys = format!("[keys]\n[[keys.key]]\nid = \"KKMS\"\nkms_key_id = \"{arn}\"");
    let config = write_config(dir.path(), "sha256", &keys);
    let serve = ServeProcess::with_config(&config, &env_refs(&env));
    wait_until_ready(&serve, StatusCode::OK, Duration::from_secs(15)).await;
    let client = serve.logged_in("alice").await;
    // Each KMS call takes 300 ms more: all sixteen mints overlap the first.
    proxy.set(Fault::Slow);
    let url = serve.url("/mint");
    let mints: Vec<_> = (0..16)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .json(&json!({ "path": "/users/alice/book/" }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                crate::harness::cloudfront_cookie_header(response.headers())
            })
        })
        .collect();
    let mut signatures = std::collections::HashSet::new();
    for mint in mints {
        signatures.insert(cookie_value(&mint.await.unwrap(), "CloudFront-Signature"));
    }
    assert_eq!(signatures.len(), 1);
    let text = serve.metrics().await;
    let count = |result: &str| {
        metric_if_present(
            &text,
            &format!(r#"cfmint_remote_signatures_total{{store="aws-kms",result="{result}"}}"#),
        )
        .unwrap_or(0)
    };
    assert_eq!((count("ok"), count("joined")), (1, 15), "{text}");
}

/// A SoftHSM token in a temporary directory, with an RSA-2048 and a P-256
/// key pair generated inside it.
#[cfg(feature = "pkcs11")]
struct SoftHsm {
    dir: tempfile::TempDir,
    conf: PathBuf,
}

#[cfg(feature = "pkcs11")]
impl SoftHsm {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        let hsm = Self { dir, conf };
        hsm.run(
            "softhsm2-util",
            &[
                "--init-token",
                "--free",
                "--label",
                "cfmint",
                "--pin",
                PIN,
                "--so-pin",
                "so-pin-8765",
            ],
        );
        for (kind, label, id) in [
            ("rsa:2048", "cf-rsa", "01"),
            ("EC:prime256v1", "cf-ec", "02"),
        ] {
            hsm.run(
                "pkcs11-tool",
                &[
                    "--module",
                    SOFTHSM_MODULE,
                    "--token-label",
                    "cfmint",
                    "--login",
                    "--pin",
                    PIN,
                    "--keypairgen",
                    "--key-type",
                    kind,
                    "--label",
                    label,
                    "--id",
                    id,
                ],
            );
        }
        hsm
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = Command::new(program)
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf)
            .output()
            .unwrap_or_else(|e| {
                panic!("{program} (softhsm2, opensc; scripts/test installs them): {e}")
            });
        assert!(
            out.status.success(),
            "{program}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SOFTHSM2_CONF", self.conf.display().to_string()),
            ("CFMINT__KEYS__PKCS11__PIN", PIN.to_owned()),
        ]
    }

    /// Takes the token away (as a removed device), or puts it back.
    fn remove_token(&self, removed: bool) {
        let (tokens, away) = (self.dir.path().join("tokens"), self.dir.path().join("away"));
        let (from, to) = if removed {
            (tokens, away)
        } else {
            (away, tokens)
        };
        std::fs::rename(from, to).unwrap();
    }
}

#[cfg(feature = "pkcs11")]
fn hsm_keys(active: &str) -> String {
    format!(
        r#"[keys]
active = "{active}"
[keys.pkcs11]
module = "{SOFTHSM_MODULE}"
[[keys.key]]
id = "{KEY_ID}"
file = "{local}"
[[keys.key]]
id = "KHSMRSA"
pkcs11_uri = "pkcs11:token=cfmint;object=cf-rsa"
[[keys.key]]
id = "KHSMECDSA"
pkcs11_uri = "pkcs11:token=cfmint;object=cf-ec;id=%02""#,
        local = fixtures().signing_key.display()
    )
}

#[cfg(feature = "pkcs11")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkcs11_keys_sign_with_sha1_and_sha256_and_rotate_with_a_local_key_on_sighup() {
    process_setup();
    let hsm = SoftHsm::new();
    let env = hsm.env();
    let dir = tempfile::tempdir().unwrap();
    let module = ["--pkcs11-module", SOFTHSM_MODULE];
    let rsa = store_public_key(
        dir.path(),
        &[
            "--pkcs11-uri",
            "pkcs11:token=cfmint;object=cf-rsa",
            module[0],
            module[1],
        ],
        &env,
    );
    let ecdsa = store_public_key(
        dir.path(),
        &[
            "--pkcs11-uri",
            "pkcs11:token=cfmint;object=cf-ec",
            module[0],
            module[1],
        ],
        &env,
    );
    for hash in ["sha1", "sha256"] {
        let config = write_config(dir.path(), hash, &hsm_keys("KHSMRSA"));
        let mut serve = ServeProcess::with_config(&config, &env_refs(&env));
        wait_until_ready(&serve, StatusCode::OK, Duration::from_secs(10)).await;
        let client = serve.logged_in("alice").await;
        let cookies = serve
            .mint(&client, json!({ "path": "/users/alice/" }))
            .await
            .ok()
            .cookies;
        check_cookies(&cookies, "KHSMRSA", &rsa, hash, "/users/alice/");
        check_signed_url(&serve, &client, "KHSMRSA", &rsa, hash).await;
        activate(&mut serve, &config, "KHSMECDSA");
        let cookies = serve
            .mint(&client, json!({ "path": "/users/alice/" }))
            .await
            .ok()
            .cookies;
        check_cookies(&cookies, "KHSMECDSA", &ecdsa, hash, "/users/alice/");
        check_signed_url(&serve, &client, "KHSMECDSA", &ecdsa, hash).await;
        activate(&mut serve, &config, KEY_ID);
        let cookies = serve
            .mint(&client, json!({ "path": "/users/alice/" }))
            .await
            .cookies;
        assert_eq!(cookie_value(&cookies, "CloudFront-Key-Pair-Id"), KEY_ID);
        let log = serve.drain_log();
        assert!(!log.contains(PIN), "the PIN is in the log:\n{log}");
    }
}

#[cfg(feature = "pkcs11")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_token_fails_readiness_and_mints_until_it_is_back() {
    process_setup();
    let hsm = SoftHsm::new();
    let env = hsm.env();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "sha256", &hsm_keys("KHSMRSA"));
    let mut serve = ServeProcess::with_config(&config, &env_refs(&env));
    wait_until_ready(&serve, StatusCode::OK, Duration::from_secs(10)).await;
    let client = serve.logged_in("alice").await;
    assert_eq!(
        serve
            .mint(&client, json!({ "path": "/users/alice/a/" }))
            .await
            .status,
        StatusCode::OK
    );

    hsm.remove_token(true);
    wait_until_ready(
        &serve,
        StatusCode::SERVICE_UNAVAILABLE,
        Duration::from_secs(10),
    )
    .await;
    let minted = serve
        .mint(&client, json!({ "path": "/users/alice/b/" }))
        .await;
    let (status, retry_after) = (minted.status, minted.retry_after());
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(retry_after.is_some());
    serve.wait_for_log(
        "key store unavailable: this key cannot sign until it is back",
        Duration::from_secs(5),
    );

    hsm.remove_token(false);
    wait_until_ready(&serve, StatusCode::OK, Duration::from_secs(15)).await;
    let cookies = serve
        .mint(&client, json!({ "path": "/users/alice/c/" }))
        .await
        .ok()
        .cookies;
    let rsa = store_public_key(
        dir.path(),
        &[
            "--pkcs11-uri",
            "pkcs11:token=cfmint;object=cf-rsa",
            "--pkcs11-module",
            SOFTHSM_MODULE,
        ],
        &env,
    );
    check_cookies(&cookies, "KHSMRSA", &rsa, "sha256", "/users/alice/c/");
    let text = serve.metrics().await;
    assert!(
        text.contains(r#"cfmint_remote_key_up{key_pair_id="KHSMRSA",store="pkcs11"} 1"#),
        "{text}"
    );
}
