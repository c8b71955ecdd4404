//! The `cfmint` binary itself: `serve` on the embedded default with SIGTERM,
//! configuration errors (exit 2), and `user add`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::cfmint;
use crate::harness::process::stderr_lines;

/// `cfmint serve` with `config` written to `dir/cfmint.toml`, run in `dir`:
/// it must refuse to start (exit 2); its stderr.
fn refused_start(dir: &std::path::Path, config: &str) -> String {
    let path = dir.join("cfmint.toml");
    std::fs::write(&path, config).unwrap();
    let output = cfmint()
        .args(["serve", "--config"])
        .arg(&path)
        .current_dir(dir)
        .env_remove("CFMINT_TEST_KEY_THAT_IS_NOT_SET")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_the_default_logs_in_the_demo_user_and_stops_cleanly_on_sigterm() {
    crate::harness::process_setup();
    let mut child = cfmint()
        .arg("serve")
        .env("CFMINT__SERVER__LISTEN", "127.0.0.1:0")
        .env("CFMINT__SERVER__ADMIN_LISTEN", "127.0.0.1:0")
        .env("CFMINT__SERVER__LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut child);
    let mut log = Vec::new();
    let address = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("serve starts");
        let entry: serde_json::Value = serde_json::from_str(&line).expect("JSON log lines");
        log.push(line);
        if entry["message"] == "cfmint serving" {
            break entry["listen"].as_str().unwrap().to_owned();
        }
    };

    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let login = client
        .post(format!("http://{address}/login"))
        .json(&json!({ "username": "demo", "password": "demo" }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::NO_CONTENT);
    // A wrong password is logged as a failed login, never as itself.
    let canary = "canary-Pa55word-7f3e";
    let wrong = client
        .post(format!("http://{address}/login"))
        .json(&json!({ "username": "demo", "password": canary }))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let mint = client
        .post(format!("http://{address}/mint"))
        .send()
        .await
        .unwrap();
    assert_eq!(mint.status(), StatusCode::OK);
    let cookies: Vec<String> = mint
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| {
            v.to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .split('=')
                .nth(1)
                .unwrap()
                .to_owned()
        })
        .filter(|v| v.len() > 20)
        .collect();

    let started = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(started.elapsed() < Duration::from_secs(10));

    while let Ok(line) = lines.recv_timeout(Duration::from_millis(500)) {
        log.push(line);
    }
    let log = log.join("\n");
    assert!(
        log.contains("\"route\":\"/mint\""),
        "one line per request:\n{log}"
    );
    // The policy, the signature, and the session cookie (the session now
    // remembers this mint's expiry).
    assert_eq!(cookies.len(), 3, "{cookies:?}");
    for secret in cookies {
        assert!(!log.contains(&secret), "a cookie value leaked into the log");
    }
    assert!(
        log.contains("\"route\":\"/login\",\"status\":401"),
        "the failed login is logged:\n{log}"
    );
    assert!(!log.contains(canary), "a password leaked into the log");
}

#[test]
fn invalid_configuration_exits_2_naming_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = refused_start(
        dir.path(),
        "[server]\nlisten = \"nowhere\"\nbogus = 1\n[cloudfront]\nbase_url = \"ftp://x\"\n",
    );
    for key in [
        "server.listen",
        "server.bogus",
        "cloudfront.base_url",
        "auth",
    ] {
        assert!(stderr.contains(key), "{key} not named in:\n{stderr}");
    }
}

/// Missing files and variables are reported in the same run as the
/// configuration's own mistakes, each with its key.
#[test]
fn missing_files_and_variables_are_reported_with_the_configuration_errors() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = refused_start(
        dir.path(),
        r#"
[server]
listen = "127.0.0.1:0"
admin_listen = ""
tls_cert = "missing-cert.pem"
tls_key = "missing-key.pem"
[cloudfront]
base_url = "https://cdn.example.com"
[keys]
active = "KONE"
[[keys.key]]
id = "KONE"
file = "/nonexistent/private.pem"
[[keys.key]]
id = "KTWO"
env = "CFMINT_TEST_KEY_THAT_IS_NOT_SET"
[mint]
ttl = "forever"
[auth.users]
file = "missing-users.toml"
"#,
    );
    assert!(
        stderr.starts_with("error: invalid configuration (6 problems):"),
        "{stderr}"
    );
    for line in [
        "  server.tls_cert: cannot read missing-cert.pem: No such file or directory",
        "  server.tls_key: cannot read missing-key.pem: No such file or directory",
        "  keys.key[0].file: cannot read /nonexistent/private.pem: No such file or directory",
        "  keys.key[1].env: the environment variable CFMINT_TEST_KEY_THAT_IS_NOT_SET is not set",
        "  mint.ttl: \"forever\" is not a duration",
        "  auth.users.file: cannot read missing-users.toml: No such file or directory",
    ] {
        assert!(stderr.contains(line), "{line:?} not in:\n{stderr}");
    }
}

/// Files that are there but wrong, and a port taken, are all reported in
/// one run too.
#[test]
fn every_start_up_problem_is_reported_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    std::fs::write(dir.path().join("one.pem"), "not a key").unwrap();
    std::fs::write(
        dir.path().join("two.pem"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("users.toml"),
        "[users.alice]\npassword_hash = \"plain\"\n",
    )
    .unwrap();
    let stderr = refused_start(
        dir.path(),
        &format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
admin_listen = ""
[cloudfront]
base_url = "https://cdn.example.com"
[keys]
active = "KONE"
[[keys.key]]
id = "KONE"
file = "one.pem"
[[keys.key]]
id = "KTWO"
file = "two.pem"
[auth.users]
file = "users.toml"
"#
        ),
    );
    assert!(
        stderr.starts_with("error: cannot start (4 problems):"),
        "{stderr}"
    );
    for start in [
        "  keys.key[0] (KONE): ",
        "  keys.key[1] (KTWO): ",
        "  auth.users.file: ",
        &format!("  server.listen: cannot bind 127.0.0.1:{port}: "),
    ] {
        assert!(
            stderr.lines().any(|line| line.starts_with(start)),
            "{start:?} not in:\n{stderr}"
        );
    }
    drop(busy);
}

#[test]
fn user_add_reads_the_password_from_stdin_and_keeps_other_entries() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.toml");
    std::fs::write(&file, "# team accounts\n[users.zoe]\npassword_hash = \"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g\"\n").unwrap();
    let mut child = cfmint()
        .args(["user", "add", "--file"])
        .arg(&file)
        .args(["--username", "alice"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"s3cret pass\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("# team accounts") && text.contains("[users.zoe]"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the users file is private");
    let users = cfmint::auth::users::Users::load(Some(&file), false).unwrap();
    assert!(users.verify("alice", "s3cret pass").is_some());
    assert!(users.verify("alice", "s3cret pass\n").is_none());

    let bad = cfmint()
        .args(["user", "add", "--file"])
        .arg(&file)
        .args(["--username", "../root"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_speaks_https_with_the_configured_certificate() {
    use crate::harness::{Options, TestApp};
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = cfmint::tls::self_signed(&["localhost".to_owned()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let app = TestApp::spawn(
        Options::default()
            .env("CFMINT__SERVER__TLS_CERT", cert_path.to_str().unwrap())
            .env("CFMINT__SERVER__TLS_KEY", key_path.to_str().unwrap()),
    )
    .await;
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/healthz", app.addr.port());
    assert_eq!(
        client.get(&url).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert!(
        reqwest::get(app.url("/healthz")).await.is_err(),
        "plain HTTP is not served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_fails_readiness_at_once_and_serves_through_the_drain_delay() {
    use crate::harness::ServeProcess;
    crate::harness::process_setup();
    let mut serve = ServeProcess::start(
        &[],
        &[
            ("CFMINT__SERVER__LISTEN", "127.0.0.1:0"),
            ("CFMINT__SERVER__ADMIN_LISTEN", "127.0.0.1:0"),
            ("CFMINT__SERVER__DRAIN_DELAY", "2s"),
        ],
    );
    let client = reqwest::Client::new();
    let ready = client.get(serve.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);

    let signalled = Instant::now();
    serve.signal("TERM");
    serve.wait_for_log(
        "shutting down: readiness fails, still serving",
        Duration::from_secs(5),
    );
    let ready = client.get(serve.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("draining"),
        "{body}"
    );
    // Still serving: a new connection logs in.
    serve
        .login_as(&reqwest::Client::new(), "demo", "demo")
        .await;
    assert!(signalled.elapsed() < Duration::from_secs(2));

    let status = serve.child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(
        signalled.elapsed() >= Duration::from_secs(2),
        "left before the drain delay"
    );
    assert!(
        std::net::TcpStream::connect(serve.listen.as_str()).is_err(),
        "the listener is closed"
    );
}

#[test]
fn serve_without_a_key_refuses_a_non_loopback_listener() {
    for (key, address) in [
        ("CFMINT__SERVER__LISTEN", "0.0.0.0:0"),
        ("CFMINT__SERVER__ADMIN_LISTEN", "0.0.0.0:0"),
    ] {
        let output = cfmint()
            .arg("serve")
            .env("CFMINT__SERVER__LISTEN", "127.0.0.1:0")
            .env("CFMINT__SERVER__ADMIN_LISTEN", "127.0.0.1:0")
            .env("CFMINT__AUTH__USERS__DEMO", "false")
            .env("CFMINT__AUTH__USERS__FILE", "/nonexistent/users.toml")
            .env(key, address)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{key}: {stderr}");
        assert!(stderr.contains("keys.key"), "{stderr}");
        assert!(stderr.contains("not a loopback address"), "{stderr}");
        assert!(
            !stderr.contains("throwaway RSA-2048 key;"),
            "no key was generated"
        );
    }
}

/// A demo port in use stops the demo at once, naming the flag that moves it.
#[test]
fn a_busy_demo_port_names_the_flag_that_moves_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    for flag in ["--page-port", "--api-port", "--edge-port"] {
        let mut args = vec![
            "demo",
            "--page-port",
            "0",
            "--api-port",
            "0",
            "--edge-port",
            "0",
        ];
        let at = args.iter().position(|a| *a == flag).unwrap();
        args[at + 1] = &port;
        let output = cfmint()
            .args(&args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flag}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "on 127.0.0.1:{port}: Address already in use (os error 98); another program uses it: \
                 choose another port with {flag} PORT (0 picks a free one)"
            )),
            "{flag}: {stderr}"
        );
    }
}
