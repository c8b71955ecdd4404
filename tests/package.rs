//! Package metadata that must follow the dependency tree.

use std::process::Command;

fn version(text: &str) -> Vec<u64> {
    text.split('.').map(|part| part.parse().unwrap()).collect()
}

/// `rust-version` is exactly the highest any locked dependency declares: a
/// dependency update that raises it fails here until Cargo.toml says so.
#[test]
fn rust_version_is_what_the_dependencies_need() {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let ours = env!("CARGO_PKG_RUST_VERSION");
    let (needed, by) = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|package| package["name"] != env!("CARGO_PKG_NAME"))
        .filter_map(|package| {
            let declared = package["rust_version"].as_str()?;
            Some((
                version(declared),
                package["name"].as_str().unwrap().to_owned(),
            ))
        })
        .max()
        .unwrap();
    let mut ours = version(ours);
    ours.resize(needed.len().max(ours.len()), 0);
    let mut needed_padded = needed.clone();
    needed_padded.resize(ours.len(), 0);
    assert_eq!(
        ours, needed_padded,
        "rust-version in Cargo.toml should be {needed:?}, what {by} declares"
    );
}

/// `examples/axum_cookies.rs`, an application using only `cfmint-signer`,
/// run as built: its cookies open the video's folder on the CDN (checked
/// with the verifier as CloudFront would) and nothing else, and a video id
/// that tries to climb out of its folder is refused.
#[test]
fn the_axum_example_sets_cookies_cloudfront_accepts() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    use cfmint_signer::{Backend, KeyPairId, KeySource, PublicKey, PublicKeys, ViewerRequest};

    let fixtures = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/cfmint-signer/tests/fixtures/cloudfront-sep"
    );
    // Integration tests live in target/<profile>/deps; examples beside them.
    let deps = std::env::current_exe().unwrap();
    let example = deps
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/axum_cookies");
    let mut child = Command::new(&example)
        .env("CLOUDFRONT_KEY_PAIR_ID", "K2JCJMDEHXQW5F")
        .env(
            "CLOUDFRONT_PRIVATE_KEY_FILE",
            format!("{fixtures}/test-rsa-key.pem"),
        )
        .env("CDN_BASE_URL", "https://cdn.example.com")
        .env("COOKIE_DOMAIN", "example.com")
        .env("LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .map(Running)
        .unwrap_or_else(|e| panic!("{}: {e} (built by cargo test)", example.display()));
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();

    let address = base.strip_prefix("http://").unwrap().to_owned();
    // One HTTP/1.1 exchange over TCP: (status, Set-Cookie values).
    let get = |path: &str, token: Option<&str>| -> (u16, Vec<String>) {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {address}\r\n{auth}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let head = response.split("\r\n\r\n").next().unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let cookies = head
            .lines()
            .filter_map(|line| {
                let (name, value) = line.split_once(": ")?;
                name.eq_ignore_ascii_case("set-cookie")
                    .then(|| value.to_owned())
            })
            .collect();
        (status, cookies)
    };
    let refused_login = get("/watch/42", None);
    let climbing = get("/watch/..", Some("let-me-watch"));
    let (status, set_cookies) = get("/watch/42", Some("let-me-watch"));
    drop(child);

    assert_eq!(refused_login.0, 401);
    assert_eq!(climbing, (400, Vec::new()));
    assert_eq!(status, 200);
    assert_eq!(set_cookies.len(), 5, "{set_cookies:?}");
    let cookie_header: Vec<&str> = set_cookies
        .iter()
        .filter(|value| !value.contains("Max-Age=0"))
        .map(|value| value.split(';').next().unwrap())
        .collect();
    let cookie_header = cookie_header.join("; ");
    let pem = std::fs::read_to_string(format!("{fixtures}/test-rsa-public-key.pem")).unwrap();
    let id = KeyPairId::new("K2JCJMDEHXQW5F").unwrap();
    let keys = PublicKeys::new(vec![
        PublicKey::from_pem(id, &pem, KeySource::Inline, Backend::default()).unwrap(),
    ])
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let viewer = |url: &str| {
        cfmint_signer::verify(
            &keys,
            &ViewerRequest {
                url,
                cookie_header: Some(&cookie_header),
                client_ip: None,
                now,
            },
        )
    };
    let allowed = viewer("https://cdn.example.com/videos/42/1080p/seg-001.ts");
    assert!(allowed.is_allowed(), "{:?}", allowed.result);
    let other = viewer("https://cdn.example.com/videos/43/master.m3u8");
    assert_eq!(
        other.result.unwrap_err().kind(),
        cfmint_signer::DenialKind::ResourceMismatch
    );
}

/// A child process killed when the test ends, passing or not.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
