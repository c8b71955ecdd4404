//! `cfmint check`: what `serve` would refuse, found without serving: no port
//! bound and, without `--network`, nothing called; with it, each network
//! dependency called once and named when it does not answer.

use std::net::TcpListener;
use std::process::Output;
use std::time::Duration;

use crate::harness::*;

fn check(args: &[&str]) -> Output {
    cfmint().arg("check").args(args).output().unwrap()
}

fn printed(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The same file through `serve`, which must refuse it: (exit code, stderr).
fn serve_refusal(config: &std::path::Path) -> (Option<i32>, String) {
    let output = cfmint()
        .args(["serve", "--config"])
        .arg(config)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn check_finds_what_serve_refuses_without_binding_a_port() {
    process_setup();
    let dir = tempfile::tempdir().unwrap();
    // The port the configuration names is taken: serve cannot start on this
    // host, check still can.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap();
    let config = serve_config(dir.path(), "https://cdn.example.com", "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"{address}\""),
    );
    std::fs::write(&config, text).unwrap();
    let output = check(&["--config", config.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", printed(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("{}: valid\n", config.display())
    );
    let (code, stderr) = serve_refusal(&config);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("server.listen: cannot bind"), "{stderr}");

    // An ECDSA key configured as RSA: the key, its type and the fix are
    // named, the same way by check and by serve.
    let key = cfmint::signer::Backend::default()
        .generate(cfmint::signer::KeySpec::EcdsaP256)
        .unwrap();
    let key_file = dir.path().join("ecdsa.pem");
    std::fs::write(&key_file, key.private_pem.as_bytes()).unwrap();
    let config = serve_config_with(
        dir.path(),
        "base_url = \"https://cdn.example.com\"",
        &format!(
            "[keys]\nactive = \"KECDSA\"\n[[keys.key]]\nid = \"KECDSA\"\nfile = \"{}\"\ntype = \"rsa\"\n",
            key_file.display()
        ),
        "",
    );
    let output = check(&["--config", config.to_str().unwrap()]);
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let line = format!(
        "  keys.key[0].type (KECDSA): is \"rsa\", but the file {} holds an ECDSA P-256 key, \
         not the configured type: set type = \"ecdsa\" or give an RSA key",
        key_file.display()
    );
    assert_eq!(
        text,
        format!("{}: cannot start (1 problem):\n{line}\n", config.display())
    );
    let (code, stderr) = serve_refusal(&config);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        stderr,
        format!("error: cannot start (1 problem):\n{line}\n")
    );

    // A missing users file and an unknown key: both reported, by key.
    let broken = dir.path().join("broken.toml");
    std::fs::write(
        &broken,
        std::fs::read_to_string(&config).unwrap().replace(
            &fixtures().users_file.display().to_string(),
            "/nonexistent/users.toml",
        ) + "\n[mint]\nttl_seconds = 5\n",
    )
    .unwrap();
    let output = check(&["--config", broken.to_str().unwrap()]);
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "invalid configuration (2 problems):\n  mint.ttl_seconds: unknown key\n  \
             auth.users.file: cannot read /nonexistent/users.toml"
        ),
        "{text}"
    );

    // What cannot be checked at all is a usage error.
    let output = check(&["--config", "/nonexistent/cfmint.toml"]);
    assert_eq!(output.status.code(), Some(2), "{}", printed(&output));
    assert!(printed(&output).starts_with("error: cannot read /nonexistent/cfmint.toml"));
}

#[test]
fn check_calls_the_network_only_when_asked_and_names_what_does_not_answer() {
    process_setup();
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start();
    // Listeners that count connections stand in for a JWKS URL and the
    // authorization callback: offline, nothing may connect to them.
    let jwks = TcpListener::bind("127.0.0.1:0").unwrap();
    let callback = TcpListener::bind("127.0.0.1:0").unwrap();
    jwks.set_nonblocking(true).unwrap();
    callback.set_nonblocking(true).unwrap();
    let more = format!(
        r#"
[session]
store = "redis"
redis_url = "redis://127.0.0.1:{redis}/0"
store_timeout = "500ms"

[auth.jwt]
algorithms = ["RS256"]
jwks_url = "http://{jwks}/jwks.json"

[authorize]
url = "http://{callback}/authorize"
timeout = "300ms"
"#,
        redis = redis.port,
        jwks = jwks.local_addr().unwrap(),
        callback = callback.local_addr().unwrap(),
    );
    let config = serve_config(dir.path(), "https://cdn.example.com", &more);
    let config = config.to_str().unwrap();

    let output = check(&["--config", config]);
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.ends_with(
            "not reached (add --network): authorize.url, auth.jwt.jwks_url, session.redis_url\n"
        ),
        "{text}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(jwks.accept().is_err(), "the JWKS URL was called offline");
    assert!(
        callback.accept().is_err(),
        "the callback was called offline"
    );

    // Called: Redis answers; the stand-ins are closed now, so each is named.
    // Redis stopped: named too.
    drop((jwks, callback));
    let output = check(&["--config", config, "--network"]);
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let problems: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("  "))
        .map(|line| line.split(':').next().unwrap())
        .collect();
    assert_eq!(problems, ["authorize.url", "auth.jwt.jwks_url"], "{text}");
    assert!(
        text.ends_with("called: authorize.url, auth.jwt.jwks_url, session.redis_url\n"),
        "{text}"
    );
    drop(redis);
    let output = check(&["--config", config, "--network"]);
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("\n  session.redis_url: "), "{text}");
}

/// The commands in `config/example.minimal.toml`'s header, run as written
/// with `/etc/cfmint/` in a fresh directory: the keygen and users file the
/// README's steps make, a clean `check`, then `serve` signs with that key.
/// The production reference takes the same key (its `type` matches the
/// README's `keygen --type ecdsa`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_minimal_example_starts_as_written_after_the_readme_steps() {
    process_setup();
    let dir = tempfile::tempdir().unwrap();
    let etc = format!("{}/", dir.path().display());
    let root = env!("CARGO_MANIFEST_DIR");
    let example = std::fs::read_to_string(format!("{root}/config/example.minimal.toml")).unwrap();
    let config = dir.path().join("cfmint.toml");
    std::fs::write(&config, example.replace("/etc/cfmint/", &etc)).unwrap();
    let commands: Vec<String> = example
        .lines()
        .filter_map(|line| line.strip_prefix("#   "))
        .filter(|line| line.starts_with("cfmint ") && !line.starts_with("cfmint serve"))
        .map(|line| line.replace("/etc/cfmint/", &etc))
        .collect();
    assert_eq!(commands.len(), 3, "{commands:?}");
    for command in &commands {
        let mut words = command.split_whitespace().skip(1);
        let mut child = cfmint()
            .args(words.by_ref())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{command}: {}", printed(&output));
    }
    let serving = ServeProcess::with_config(
        &config,
        &[
            ("CFMINT__SERVER__LISTEN", "127.0.0.1:0"),
            ("CFMINT__SERVER__ADMIN_LISTEN", "127.0.0.1:0"),
            ("CFMINT__SERVER__ADMIN_TOKEN", "an-admin-token-0123456789"),
            ("CFMINT__CLOUDFRONT__BASE_URL", "http://localhost:8081"),
            ("CFMINT__CLOUDFRONT__COOKIE_DOMAIN", ""),
        ],
    );
    let alice = serving.logged_in("alice").await;
    let minted = serving
        .mint(&alice, serde_json::json!({ "path": "/users/alice/" }))
        .await;
    assert_eq!(minted.ok().key_pair_id(), "K2JCJMDEHXQW5F");

    let production =
        std::fs::read_to_string(format!("{root}/config/example.production.toml")).unwrap();
    let production_file = dir.path().join("production.toml");
    std::fs::write(&production_file, production.replace("/etc/cfmint/", &etc)).unwrap();
    let old_key = cfmint::signer::Backend::default()
        .generate(cfmint::signer::KeySpec::Rsa { bits: 2048 })
        .unwrap();
    let output = cfmint()
        .args(["check", "--config"])
        .arg(&production_file)
        .env("CFMINT_KEY_K1OLDROTATEDOUT", old_key.private_pem.as_str())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", printed(&output));
}
