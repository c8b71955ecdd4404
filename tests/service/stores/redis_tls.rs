//! `rediss://` with the shipped binary against Debian's `redis-server`
//! speaking TLS: the certificate is verified, the sessions really live in
//! that server, and nothing ever goes over plain text.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::process::spawn_on_free_port;
use crate::harness::{ServeProcess, output_of, process_setup};

const PASSWORD: &str = "redis-pw-5c1e";

/// A CA and a server certificate for localhost/127.0.0.1 it signed, made
/// with the openssl command line tool.
fn certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl must be installed (scripts/test installs it)");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-subj",
        "/CN=cfmint test CA",
        "-days",
        "2",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}

/// `redis-server` with TLS only (no plain-text port) and a password.
struct TlsRedis {
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl TlsRedis {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        certificates(dir.path());
        let (port, child) = spawn_on_free_port("redis-server (TLS)", |port| {
            Command::new("redis-server")
                .args([
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--tls-port",
                    &port.to_string(),
                ])
                .args([
                    "--tls-cert-file",
                    "server.crt",
                    "--tls-key-file",
                    "server.key",
                ])
                .args(["--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no"])
                .args([
                    "--requirepass",
                    PASSWORD,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server must be installed (scripts/test installs it)")
        });
        Self { port, child, dir }
    }

    fn ca_file(&self) -> String {
        self.dir.path().join("ca.crt").display().to_string()
    }

    /// A command through `redis-cli` over TLS.
    fn cli(&self, command: &[&str]) -> String {
        output_of(
            Command::new("redis-cli")
                .args(["--tls", "--cacert", &self.ca_file(), "-h", "localhost"])
                .args([
                    "-p",
                    &self.port.to_string(),
                    "-a",
                    PASSWORD,
                    "--no-auth-warning",
                ])
                .args(command),
        )
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_with_redis(url: &str, ca_file: Option<&str>) -> ServeProcess {
    let mut env = vec![
        ("CFMINT__SERVER__LISTEN", "127.0.0.1:0"),
        ("CFMINT__SERVER__ADMIN_LISTEN", ""),
        ("CFMINT__SESSION__STORE", "redis"),
        ("CFMINT__SESSION__REDIS_URL", url),
    ];
    if let Some(ca_file) = ca_file {
        env.push(("CFMINT__SESSION__REDIS_CA_FILE", ca_file));
    }
    ServeProcess::start(&[], &env)
}

async fn status(client: &reqwest::Client, serve: &ServeProcess, path: &str) -> StatusCode {
    let request = if path == "/readyz" {
        client.get(serve.url(path))
    } else {
        client
            .post(serve.url(path))
            .json(&json!({ "username": "demo", "password": "demo" }))
    };
    request.send().await.unwrap().status()
}

/// Readiness settles once the pool has tried to connect.
async fn readiness(serve: &ServeProcess, expected: StatusCode) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = status(&client, serve, "/readyz").await;
        if now == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz stayed {now}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Once ready, the demo user logs in (204) and mints (200) through `serve`.
async fn logs_in_and_mints(serve: &ServeProcess, what: &str) {
    readiness(serve, StatusCode::OK).await;
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    assert_eq!(
        status(&client, serve, "/login").await,
        StatusCode::NO_CONTENT,
        "{what}"
    );
    let minted = client.post(serve.url("/mint")).send().await.unwrap();
    assert_eq!(minted.status(), StatusCode::OK, "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_verifies_the_certificate_and_keeps_sessions_in_the_tls_server() {
    process_setup();
    let redis = TlsRedis::start();
    let url = format!("rediss://:{PASSWORD}@localhost:{}", redis.port);
    let ca_file = redis.ca_file();
    let serve = serve_with_redis(&url, Some(&ca_file));
    logs_in_and_mints(&serve, "one server").await;
    let sessions = redis.cli(&["KEYS", "cfmint:session:*"]);
    assert_eq!(
        sessions.lines().count(),
        1,
        "the session lives in the TLS Redis: {sessions}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_an_untrusted_certificate_is_unavailable() {
    process_setup();
    let redis = TlsRedis::start();
    let url = format!("rediss://:{PASSWORD}@localhost:{}", redis.port);
    let serve = serve_with_redis(&url, None);
    readiness(&serve, StatusCode::SERVICE_UNAVAILABLE).await;
    let client = reqwest::Client::new();
    assert_eq!(
        status(&client, &serve, "/login").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(redis.cli(&["DBSIZE"]), "0");
}

/// One server, a Sentinel set or a Cluster: a TLS scheme is TLS from the
/// first byte, to the sentinels as to the servers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_never_falls_back_to_plain_text() {
    process_setup();
    for scheme in ["rediss", "rediss-sentinel", "rediss-cluster"] {
        // A server that does not speak TLS: whatever reaches it is recorded.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (seen_tx, seen) = std::sync::mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let seen_tx = seen_tx.clone();
                std::thread::spawn(move || {
                    stream
                        .set_read_timeout(Some(Duration::from_secs(2)))
                        .unwrap();
                    let mut bytes = vec![0u8; 4096];
                    let n = stream.read(&mut bytes).unwrap_or(0);
                    bytes.truncate(n);
                    let _ = seen_tx.send(bytes);
                });
            }
        });
        let query = if scheme == "rediss-sentinel" {
            "?sentinelServiceName=main&sentinelPassword=sentinel-pw-77"
        } else {
            ""
        };
        let url = format!("{scheme}://:{PASSWORD}@127.0.0.1:{port}{query}");
        let serve = serve_with_redis(&url, None);
        readiness(&serve, StatusCode::SERVICE_UNAVAILABLE).await;
        let first = seen
            .recv_timeout(Duration::from_secs(10))
            .expect("cfmint connected");
        assert_eq!(
            first.first(),
            Some(&0x16),
            "{scheme}: a TLS handshake record, not {first:?}"
        );
        let text = String::from_utf8_lossy(&first).to_ascii_uppercase();
        assert!(
            !text.contains("AUTH")
                && !text.contains(PASSWORD.to_ascii_uppercase().as_str())
                && !text.contains("SENTINEL-PW-77"),
            "{scheme}"
        );
        drop(serve);
        while let Ok(bytes) = seen.try_recv() {
            assert_eq!(bytes.first().copied().unwrap_or(0x16), 0x16, "{scheme}");
        }
    }
}

#[test]
fn redis_settings_that_cannot_be_honoured_are_refused_at_start() {
    let run = |env: &[(&str, &str)]| {
        let output = Command::new(env!("CARGO_BIN_EXE_cfmint"))
            .arg("serve")
            .env("CFMINT__SERVER__LISTEN", "127.0.0.1:0")
            .env("CFMINT__SERVER__ADMIN_LISTEN", "")
            .env("CFMINT__SESSION__STORE", "redis")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{env:?}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = run(&[
        ("CFMINT__SESSION__REDIS_URL", "redis://127.0.0.1:1"),
        (
            "CFMINT__SESSION__REDIS_CA_FILE",
            "/etc/ssl/certs/ca-certificates.crt",
        ),
    ]);
    assert!(stderr.contains("session.redis_ca_file"), "{stderr}");
    let stderr = run(&[(
        "CFMINT__SESSION__REDIS_URL",
        "rediss://127.0.0.1:1?sentinelServiceName=main",
    )]);
    assert!(
        stderr.contains("session.redis_url") && stderr.contains("Sentinel"),
        "{stderr}"
    );
    let stderr = run(&[
        ("CFMINT__SESSION__REDIS_URL", "rediss://127.0.0.1:1"),
        ("CFMINT__SESSION__REDIS_CA_FILE", "/nonexistent/ca.pem"),
    ]);
    assert!(stderr.contains("session.redis_ca_file"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A Sentinel set and a Cluster speaking only TLS, with passwords (the
/// sentinels' their own): cfmint finds the master through the sentinels and
/// the slots through the seed, verifies every certificate, and keeps its
/// sessions there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_and_cluster_over_tls_with_passwords() {
    use crate::harness::redis_ha::{Cluster, Security, SentinelSet};
    process_setup();
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let ca_file = dir.path().join("ca.crt").display().to_string();
    let security = Security {
        tls: Some(dir.path().to_owned()),
        password: Some(PASSWORD.into()),
        sentinel_password: Some("sentinel-pw-9a1".into()),
    };

    let set = SentinelSet::start_with(security.clone());
    let url = set.url();
    assert!(url.starts_with("rediss-sentinel://"), "{url}");
    let cluster = Cluster::start_with(security);
    let cluster_url = cluster.url();
    assert!(
        cluster_url.starts_with("rediss-cluster://"),
        "{cluster_url}"
    );

    for (topology, url) in [("sentinel", &url), ("cluster", &cluster_url)] {
        let serve = serve_with_redis(url, Some(&ca_file));
        logs_in_and_mints(&serve, topology).await;
        let log = {
            let mut serve = serve;
            serve.drain_log()
        };
        assert!(
            !log.contains(PASSWORD) && !log.contains("sentinel-pw-9a1"),
            "{topology}: a password in the log"
        );
    }
    // The sessions live in the master, and in the cluster.
    let sessions = set.master.cli(&["--scan", "--pattern", "cfmint:session:*"]);
    assert_eq!(sessions.lines().count(), 1, "{sessions}");
    let in_cluster: usize = cluster
        .masters()
        .iter()
        .map(|&i| {
            cluster.nodes[i]
                .cli(&["--scan", "--pattern", "cfmint:session:*"])
                .lines()
                .count()
        })
        .sum();
    assert_eq!(in_cluster, 1);
}
