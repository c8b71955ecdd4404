//! The `cfmint` binary, run as a user would: every vector through `cfmint
//! sign`, every denial through `cfmint verify`, `keygen`, exit codes, and
//! signatures checked by the `openssl` command line tool.

#[path = "../crates/cfmint-signer/tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use cfmint::signer::{Backend, decode_base64};
use common::{Case, cases, fixture_path, openssl, query_map};

fn cfmint_on<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(backend: Backend, args: &[S]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_cfmint"))
        .args(args)
        .arg("--backend")
        .arg(backend.name())
        .env_remove("CFMINT_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("panicked"),
        "cfmint {args:?} panicked: {stderr}"
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn key_file(case: &Case) -> String {
    fixture_path(&case.input.private_key_file)
        .display()
        .to_string()
}

/// The policy flags for a vector case.
fn policy_args(case: &Case) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(expires) = case.input.expiration_date {
        args.extend(["--expires".to_owned(), expires.to_string()]);
    }
    if let Some(active) = case.input.active_date {
        args.extend(["--active".to_owned(), active.to_string()]);
    }
    if let Some(ip) = &case.input.ip_range {
        args.extend(["--ip".to_owned(), ip.clone()]);
    }
    args
}

/// `sign <target> --key FILE --key-pair-id ID` for a vector case.
fn sign_args(case: &Case, target: &str) -> Vec<String> {
    let mut args = vec![
        "sign".to_owned(),
        target.to_owned(),
        "--key".to_owned(),
        key_file(case),
    ];
    args.extend(["--key-pair-id".to_owned(), case.input.key_pair_id.clone()]);
    args
}

fn sign_url_args(case: &Case) -> Vec<String> {
    let mut args = sign_args(case, "url");
    args.extend(["--url".to_owned(), case.url().to_owned()]);
    if case.expected.apply_to.is_some() {
        args.extend(["--resource".to_owned(), case.input.resource.clone()]);
    }
    args.extend(policy_args(case));
    args
}

fn sign_cookie_args(case: &Case, json: bool) -> Vec<String> {
    let mut args = sign_args(case, "cookies");
    args.extend(["--resource".to_owned(), case.input.resource.clone()]);
    args.extend(policy_args(case));
    if json {
        args.push("--json".to_owned());
    }
    args
}

#[test]
fn every_vector_passes_through_cfmint_sign() {
    for &backend in Backend::ALL {
        for case in cases() {
            let expected = &case.expected;
            if expected.error || case.id == "json-injection-ip-range" {
                let output = cfmint_on(backend, &sign_url_args(&case));
                assert_eq!(output.status.code(), Some(2), "{}", case.id);
                let message = stderr(&output).to_lowercase();
                let words = if expected.error {
                    expected.error_contains.clone()
                } else {
                    vec!["192.168.0.0/24".into(), "cidr".into()]
                };
                for word in words {
                    assert!(
                        message.contains(&word),
                        "{}: {message:?} lacks {word}",
                        case.id
                    );
                }
                continue;
            }
            let policy_json = expected.policy_json.as_deref().unwrap();
            if let Some(cookies) = &expected.cookies {
                for json in [false, true] {
                    let output = cfmint_on(backend, &sign_cookie_args(&case, json));
                    assert!(output.status.success(), "{}: {}", case.id, stderr(&output));
                    let ours: BTreeMap<String, String> = if json {
                        serde_json::from_str(&stdout(&output)).unwrap()
                    } else {
                        stdout(&output)
                            .lines()
                            .map(|line| {
                                let (n, v) = line.split_once('=').unwrap();
                                (n.to_owned(), v.to_owned())
                            })
                            .collect()
                    };
                    assert_eq!(&ours, cookies, "{}", case.id);
                }
            }
            if let Some(params) = &expected.query_params {
                let output = cfmint_on(backend, &sign_url_args(&case));
                assert!(output.status.success(), "{}: {}", case.id, stderr(&output));
                let url = stdout(&output).trim_end().to_owned();
                assert!(url.starts_with(case.url()), "{}: {url}", case.id);
                let ours = query_map(&url);
                for (name, value) in params {
                    assert_eq!(ours.get(name), Some(value), "{}: {name}", case.id);
                }
                if case.is_ecdsa() {
                    let signature = decode_base64(&ours["Signature"]).unwrap();
                    assert!(common::openssl_verifies(
                        case.public_pem(),
                        "sha1",
                        policy_json.as_bytes(),
                        &signature
                    ));
                } else {
                    assert_eq!(
                        Some(&ours["Signature"]),
                        expected.signature.as_ref(),
                        "{}",
                        case.id
                    );
                }
                if let Some(policy) = ours.get("Policy") {
                    assert_eq!(
                        decode_base64(policy).unwrap(),
                        policy_json.as_bytes(),
                        "{}",
                        case.id
                    );
                }
            }
        }
    }
}

fn keygen_on(backend: Backend, dir: &Path, key_type: &str) -> Output {
    cfmint_on(
        backend,
        &["keygen", "--type", key_type, "--out", dir.to_str().unwrap()],
    )
}

#[test]
fn cfmint_signatures_verify_with_openssl_for_every_key_type_and_hash() {
    for &backend in Backend::ALL {
        for key_type in ["ecdsa", "rsa"] {
            let dir = tempfile::tempdir().unwrap();
            assert!(keygen_on(backend, dir.path(), key_type).status.success());
            let private = dir.path().join("private.pem");
            let public = fs::read_to_string(dir.path().join("public.pem")).unwrap();
            for hash in ["sha1", "sha256"] {
                let output = cfmint_on(
                    backend,
                    &[
                        "sign",
                        "cookies",
                        "--key",
                        private.to_str().unwrap(),
                        "--key-pair-id",
                        "KGEN",
                        "--resource",
                        "https://d.example/books/*",
                        "--ttl",
                        "10m",
                        "--hash",
                        hash,
                        "--json",
                    ],
                );
                assert!(output.status.success(), "{}", stderr(&output));
                let cookies: BTreeMap<String, String> =
                    serde_json::from_str(&stdout(&output)).unwrap();
                let policy = decode_base64(&cookies["CloudFront-Policy"]).unwrap();
                let signature = decode_base64(&cookies["CloudFront-Signature"]).unwrap();
                assert!(
                    common::openssl_verifies(&public, hash, &policy, &signature),
                    "{backend} {key_type} {hash}"
                );
                assert_eq!(
                    cookies.get("CloudFront-Hash-Algorithm").map(String::as_str),
                    (hash == "sha256").then_some("SHA256")
                );
            }
        }
    }
}

#[test]
fn keygen_writes_a_private_key_only_its_owner_can_read_and_refuses_to_overwrite() {
    for &backend in Backend::ALL {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("keys");
        let output = keygen_on(backend, &out, "ecdsa");
        assert!(output.status.success(), "{}", stderr(&output));
        let private = out.join("private.pem");
        let public = out.join("public.pem");
        assert_eq!(
            fs::metadata(&private).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let public_pem = fs::read_to_string(&public).unwrap();
        assert!(public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert!(
            fs::read_to_string(&private)
                .unwrap()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        openssl(&out, &["pkey", "-pubin", "-in", "public.pem", "-noout"]);

        let before = fs::read(&private).unwrap();
        let again = keygen_on(backend, &out, "rsa");
        assert_eq!(again.status.code(), Some(2));
        assert!(
            stderr(&again).contains("already exists"),
            "{}",
            stderr(&again)
        );
        assert_eq!(
            fs::read(&private).unwrap(),
            before,
            "the old key is untouched"
        );

        let bits = cfmint_on(
            backend,
            &[
                "keygen",
                "--type",
                "ecdsa",
                "--bits",
                "2048",
                "--out",
                "/tmp/unused",
            ],
        );
        assert_eq!(bits.status.code(), Some(2));
        let small = cfmint_on(
            backend,
            &[
                "keygen",
                "--type",
                "rsa",
                "--bits",
                "1024",
                "--out",
                "/tmp/unused",
            ],
        );
        assert_eq!(small.status.code(), Some(2));
        assert!(!Path::new("/tmp/unused").exists());
    }
}

/// Signs cookies with the vector RSA key and returns them as a Cookie header.
fn vector_cookies(backend: Backend, extra: &[&str]) -> String {
    let key = fixture_path("test-rsa-key.pem");
    let mut args = vec![
        "sign",
        "cookies",
        "--key",
        key.to_str().unwrap(),
        "--key-pair-id",
        "K1TESTKEY",
        "--resource",
        "https://d.example/books/42/*",
        "--expires",
        "1767290400",
    ];
    args.extend_from_slice(extra);
    let output = cfmint_on(backend, &args);
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output).lines().collect::<Vec<_>>().join("; ")
}

fn verify_args<'a>(
    public_key: &'a str,
    url: &'a str,
    cookies: &'a str,
    now: &'a str,
) -> Vec<&'a str> {
    vec![
        "verify",
        "--public-key",
        public_key,
        "--url",
        url,
        "--cookie",
        cookies,
        "--now",
        now,
        "--ip",
        "192.0.2.10",
    ]
}

#[test]
fn verify_allows_a_good_cookie_and_denies_each_failure_with_its_reason() {
    let public = format!(
        "K1TESTKEY={}",
        fixture_path("test-rsa-public-key.pem").display()
    );
    let wrong_id = format!(
        "KOTHER={}",
        fixture_path("test-rsa-public-key.pem").display()
    );
    let wrong_key = format!(
        "K1TESTKEY={}",
        fixture_path("test-ecdsa-public-key.pem").display()
    );
    let inside = "https://d.example/books/42/ch1.m3u8";
    for &backend in Backend::ALL {
        let good = vector_cookies(backend, &[]);
        let with_ip = vector_cookies(backend, &["--ip", "198.51.100.0/24"]);
        let later = vector_cookies(backend, &["--active", "1767280000"]);
        let no_id = good
            .split("; ")
            .filter(|c| !c.starts_with("CloudFront-Key-Pair-Id"))
            .collect::<Vec<_>>()
            .join("; ");
        let bad_policy = good.replace("CloudFront-Policy=eyJ", "CloudFront-Policy=xyJ");
        let bad_signature_encoding =
            good.replace("CloudFront-Signature=", "CloudFront-Signature=+/");
        let now = "1767200000";

        let allow = cfmint_on(backend, &verify_args(&public, inside, &good, now));
        assert_eq!(allow.status.code(), Some(0), "{}", stdout(&allow));
        assert!(stdout(&allow).ends_with("ALLOW\n"));
        assert!(stdout(&allow).contains("policy:      custom"));

        let cases: Vec<(Vec<&str>, &str)> = vec![
            (
                vec!["verify", "--public-key", &public, "--url", inside],
                "DENY: no signature",
            ),
            (
                verify_args(&public, inside, &no_id, now),
                "DENY: missing CloudFront-Key-Pair-Id",
            ),
            (
                verify_args(&wrong_id, inside, &good, now),
                "DENY: unknown key pair id \"K1TESTKEY\"",
            ),
            (
                verify_args(&public, inside, &bad_policy, now),
                "DENY: malformed policy",
            ),
            (
                verify_args(&public, inside, &bad_signature_encoding, now),
                "DENY: malformed signature",
            ),
            (
                verify_args(&wrong_key, inside, &good, now),
                "DENY: bad signature",
            ),
            (
                verify_args(&public, inside, &good, "1767290400"),
                "DENY: expired",
            ),
            (
                verify_args(&public, inside, &later, now),
                "DENY: not yet valid",
            ),
            (
                verify_args(&public, inside, &with_ip, now),
                "DENY: IP not allowed: viewer 192.0.2.10 is not in 198.51.100.0/24",
            ),
            (
                verify_args(&public, "https://d.example/books/43/ch1.m3u8", &good, now),
                "DENY: URL outside the resource",
            ),
        ];
        for (args, reason) in cases {
            let output = cfmint_on(backend, &args);
            assert_eq!(
                output.status.code(),
                Some(1),
                "{reason}: {}{}",
                stdout(&output),
                stderr(&output)
            );
            let last = stdout(&output)
                .lines()
                .last()
                .unwrap_or_default()
                .to_owned();
            assert!(
                last.starts_with(reason),
                "expected {reason:?}, got {last:?}"
            );
        }
    }
}

#[test]
fn verify_reads_a_signed_url_and_reports_json() {
    let public = format!(
        "K1TESTKEY={}",
        fixture_path("test-rsa-public-key.pem").display()
    );
    let url = "https://d111111abcdef8.cloudfront.net/image.jpg?Expires=1767290400&Signature=iONoMLnhiCy9q1~WB9GkR2DiHz18I85i3o6kZ64REf-fCSOg-AyXEZiq7fJuS~DT-kbZXjVpgIQqI4sCTcBW9XpO6dyJ5sh8Igk3V~OVncS9acGVnI~ZhHBWiGhU8GmkEMAhn6R2RGO-wKGClrXdJGEUE26XoALdHUzHbmU6AGI_&Key-Pair-Id=K1TESTKEY";
    for &backend in Backend::ALL {
        let report = |url: &str| {
            let args = [
                "verify",
                "--public-key",
                &public,
                "--url",
                url,
                "--now",
                "1767290399",
                "--json",
            ];
            let output = cfmint_on(backend, &args);
            let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
            (output.status.code(), report)
        };
        let (code, allowed) = report(url);
        assert_eq!(code, Some(0));
        assert_eq!(allowed["decision"], "ALLOW");
        assert_eq!(allowed["source"], "signed URL");
        assert_eq!(allowed["policy_type"], "canned");
        assert_eq!(allowed["key_algorithm"], "RSA-1024");

        let (code, denied) = report(&url.replace("image.jpg", "other.jpg"));
        assert_eq!(code, Some(1));
        assert_eq!(denied["denial"], "bad_signature");
        assert_eq!(denied["cloudfront_code"], "AccessDenied");
    }
}

#[test]
fn input_errors_exit_2_and_name_the_problem() {
    let backend = Backend::default();
    let key = fixture_path("test-rsa-key.pem");
    let key = key.to_str().unwrap();
    let sign = |extra: &[&str]| {
        let mut args = vec!["sign", "url", "--key", key, "--key-pair-id", "K1TESTKEY"];
        args.extend_from_slice(extra);
        cfmint_on(backend, &args)
    };
    let cases: Vec<(Output, &str)> = vec![
        (
            sign(&["--url", "https://d.example/a", "--ttl", "ten minutes"]),
            "ten minutes",
        ),
        (sign(&["--url", "/relative", "--ttl", "10m"]), "/relative"),
        (
            sign(&["--url", "https://d.example/a?Signature=x", "--ttl", "10m"]),
            "Signature",
        ),
        (
            sign(&["--url", "https://d.example/a", "--expires", "1767290400000"]),
            "milliseconds",
        ),
        (
            sign(&[
                "--url",
                "https://d.example/a",
                "--ttl",
                "10m",
                "--ip",
                "2001:db8::/32",
            ]),
            "IPv6",
        ),
        (
            sign(&[
                "--url",
                "https://d.example/a",
                "--ttl",
                "10m",
                "--ip",
                "10.1.2.3/8",
            ]),
            "10.0.0.0/8",
        ),
        (
            cfmint_on(
                backend,
                &[
                    "sign",
                    "url",
                    "--key",
                    "/missing.pem",
                    "--key-pair-id",
                    "KX",
                    "--url",
                    "https://d/a",
                    "--ttl",
                    "1m",
                ],
            ),
            "/missing.pem",
        ),
        (
            cfmint_on(
                backend,
                &[
                    "sign",
                    "url",
                    "--key",
                    key,
                    "--key-pair-id",
                    "K;X",
                    "--url",
                    "https://d/a",
                    "--ttl",
                    "1m",
                ],
            ),
            "key pair id",
        ),
        (
            cfmint_on(
                backend,
                &["verify", "--public-key", "nonsense", "--url", "https://d/a"],
            ),
            "ID=FILE",
        ),
        (
            cfmint_on(
                backend,
                &[
                    "verify",
                    "--public-key",
                    "K1=/missing.pem",
                    "--url",
                    "https://d/a",
                ],
            ),
            "/missing.pem",
        ),
        (
            cfmint_on(
                backend,
                &[
                    "verify",
                    "--public-key",
                    &format!("K1={key}"),
                    "--url",
                    "https://d/a",
                    "--ip",
                    "nope",
                ],
            ),
            "nope",
        ),
        (cfmint_on(backend, &["frobnicate"]), "frobnicate"),
        // Without a key, both ways of giving one are named.
        (
            cfmint_on(
                backend,
                &[
                    "sign",
                    "cookies",
                    "--key-pair-id",
                    "K1",
                    "--resource",
                    "https://d/a",
                    "--ttl",
                    "1m",
                ],
            ),
            "<--key <FILE>|--key-env <VAR>>",
        ),
        // --backend belongs to the commands that load keys.
        (
            Command::new(env!("CARGO_BIN_EXE_cfmint"))
                .args(["healthcheck", "--backend", "openssl"])
                .output()
                .unwrap(),
            "--backend",
        ),
    ];
    for (output, named) in cases {
        assert_eq!(
            output.status.code(),
            Some(2),
            "{named}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(named),
            "{named} not in {}",
            stderr(&output)
        );
    }
}

#[test]
fn a_key_can_come_from_an_environment_variable_with_escaped_newlines() {
    let pem = fs::read_to_string(fixture_path("test-rsa-key.pem"))
        .unwrap()
        .replace('\n', "\\n");
    for &backend in Backend::ALL {
        let output = Command::new(env!("CARGO_BIN_EXE_cfmint"))
            .args([
                "sign",
                "url",
                "--backend",
                backend.name(),
                "--key-env",
                "CF_KEY",
                "--key-pair-id",
                "K1TESTKEY",
            ])
            .args([
                "--url",
                "https://d111111abcdef8.cloudfront.net/image.jpg",
                "--expires",
                "1767290400",
            ])
            .env("CF_KEY", &pem)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        assert!(stdout(&output).contains("Signature=iONoMLnhiCy9q1~WB9G"));
        assert!(
            stderr(&output).contains("RSA-1024"),
            "legacy key size warned about"
        );
        assert!(!stderr(&output).contains("MII"), "no key material in logs");
    }
}

#[test]
fn hostile_inputs_never_panic() {
    let public = format!(
        "K1TESTKEY={}",
        fixture_path("test-rsa-public-key.pem").display()
    );
    let long = "a".repeat(30_000);
    let long_url = format!("https://d/{long}?Policy={long}&Signature={long}&Key-Pair-Id=K1TESTKEY");
    let urls = [
        "https://d/a?Policy=&Signature=&Key-Pair-Id=",
        "https://d/a?Expires=-1&Signature=x&Key-Pair-Id=K1TESTKEY",
        "https://d/a?Expires=99999999999999999999999&Signature=x&Key-Pair-Id=K1TESTKEY",
        "https://d/a?Policy=____&Signature=____&Key-Pair-Id=K1TESTKEY",
        "https://d/\u{1b}[31m?Key-Pair-Id=\u{7}",
        long_url.as_str(),
    ];
    for &backend in Backend::ALL {
        for url in urls {
            let output = cfmint_on(
                backend,
                &[
                    "verify",
                    "--public-key",
                    &public,
                    "--url",
                    url,
                    "--cookie",
                    "=;;;=; CloudFront-Policy",
                ],
            );
            assert_eq!(output.status.code(), Some(1), "{url:.80}");
            assert!(
                !stdout(&output).contains('\u{1b}'),
                "terminal escapes are not echoed"
            );
        }
    }
}

#[test]
fn users_add_creates_and_updates_a_file_named_relative_to_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let add = |password: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cfmint"))
            .args(["user", "add", "--file", "users.toml", "--username", "alice"])
            .current_dir(dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        child.wait_with_output().unwrap()
    };
    let added = add("first password");
    assert!(added.status.success(), "{}", stderr(&added));
    assert!(stderr(&added).contains("added user alice in users.toml"));
    let updated = add("second password");
    assert!(updated.status.success(), "{}", stderr(&updated));
    assert!(stderr(&updated).contains("updated user alice"));
    let file = dir.path().join("users.toml");
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("[users.alice]") && text.contains("$argon2id$"),
        "{text}"
    );
    // Nothing else is left beside it (the temporary file was renamed).
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

    // The temporary file is made beside the target, not in the working
    // directory (here one where nothing can be created).
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("users.toml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cfmint"))
        .args(["user", "add", "--username", "bob", "--file"])
        .arg(&target)
        .current_dir("/proc")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "a password").unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(fs::read_to_string(&target).unwrap().contains("[users.bob]"));
}

#[test]
fn sign_url_warns_when_the_url_is_outside_the_resource() {
    let key = fixture_path("test-rsa-key.pem");
    let sign = |url: &str| {
        cfmint_on(
            Backend::default(),
            &[
                "sign",
                "url",
                "--key",
                key.to_str().unwrap(),
                "--key-pair-id",
                "K1TESTKEY",
                "--resource",
                "https://d.example/books/42/*",
                "--url",
                url,
                "--ttl",
                "10m",
            ],
        )
    };
    let outside = sign("https://d.example/books/43/a.m3u8");
    assert!(outside.status.success(), "{}", stderr(&outside));
    assert!(
        stderr(&outside)
            .contains("warning: --url is outside --resource https://d.example/books/42/*"),
        "{}",
        stderr(&outside)
    );
    let inside = sign("https://d.example/books/42/a.m3u8?x=1");
    assert!(inside.status.success(), "{}", stderr(&inside));
    assert!(!stderr(&inside).contains("warning"), "{}", stderr(&inside));
}

#[test]
fn completions_and_the_manual_page_cover_every_command() {
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_cfmint"))
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        stdout(&output)
    };
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = run(&["completions", shell]);
        for command in ["sign", "verify", "keygen", "serve", "edge", "key-env"] {
            assert!(script.contains(command), "{shell} lacks {command}");
        }
    }
    // bash accepts the script, and it completes subcommands.
    let script = run(&["completions", "bash"]);
    let completed = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "{script}\nCOMP_WORDS=(cfmint ke); COMP_CWORD=1; _cfmint cfmint ke cfmint; echo \"${{COMPREPLY[@]}}\""
        ))
        .output()
        .unwrap();
    assert_eq!(
        stdout(&completed).trim(),
        "keygen keys",
        "{}",
        stderr(&completed)
    );

    // One page per command, each with its environment, exit status and
    // examples, and man renders each without a warning.
    let dir = tempfile::tempdir().unwrap();
    run(&["man", "--dir", dir.path().to_str().unwrap()]);
    let mut pages = Vec::new();
    every_command(
        &cfmint::cli::command(),
        &mut vec!["cfmint".to_owned()],
        &mut pages,
    );
    assert!(pages.len() >= 25, "{pages:?}");
    for words in &pages {
        let file = dir.path().join(format!("{}.1", words.join("-")));
        let page = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for section in [
            ".SH ENVIRONMENT",
            ".SH \"EXIT STATUS\"",
            ".SH EXAMPLES",
            ".SH SYNOPSIS",
        ] {
            assert!(page.contains(section), "{} lacks {section}", file.display());
        }
        if Command::new("man").arg("--version").output().is_ok() {
            let rendered = Command::new("man")
                .arg("-l")
                .arg(&file)
                .env("MANPAGER", "cat")
                .env("MANWIDTH", "100")
                .env("MAN_KEEP_STDERR", "1")
                .output()
                .unwrap();
            assert!(rendered.status.success(), "{}", stderr(&rendered));
            assert_eq!(stderr(&rendered), "", "{}", file.display());
            assert!(
                stdout(&rendered).contains("EXIT STATUS"),
                "{}",
                file.display()
            );
        }
    }
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        pages.len(),
        "a page for each command, no more"
    );

    let man = run(&["man"]);
    assert!(
        man.starts_with(".ie") || man.contains(".TH cfmint 1"),
        "{man:.200}"
    );
    for command in ["sign", "verify", "keygen", "serve", "edge", "completions"] {
        assert!(man.contains(command), "the manual lacks {command}");
    }
    // man itself renders it.
    if Command::new("man").arg("--version").output().is_ok() {
        let dir = tempfile::tempdir().unwrap();
        let page = dir.path().join("cfmint.1");
        fs::write(&page, &man).unwrap();
        let rendered = Command::new("man")
            .arg("-l")
            .arg(&page)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        assert!(
            stdout(&rendered).contains("Mint and check Amazon CloudFront"),
            "{}",
            stderr(&rendered)
        );
    }
}

#[test]
fn user_add_refuses_a_password_under_eight_characters() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.toml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cfmint"))
        .args(["user", "add", "--username", "alice", "--file"])
        .arg(&file)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "1234567").unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("at least 8 characters"),
        "{}",
        stderr(&output)
    );
    assert!(!file.exists(), "nothing written");
}

/// `cfmint keys status | rotate | retire` need the `aws-cloudfront` feature,
/// and a configuration whose key ring is in one place they can change.
#[test]
fn key_rotation_needs_its_feature_and_the_ring_in_a_secret_or_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cfmint.toml");
    let key = fixture_path("test-rsa-key.pem");
    std::fs::write(
        &config,
        format!(
            "[cloudfront]\nbase_url = \"https://d.example\"\n[keys]\nactive = \"K1\"\n\
             [[keys.key]]\nid = \"K1\"\nfile = \"{}\"\n[auth.users]\ndemo = true\n",
            key.display()
        ),
    )
    .unwrap();
    for command in ["status", "rotate", "retire"] {
        let mut args = vec!["keys", command, "--config", config.to_str().unwrap()];
        args.extend(["--key-group-id", "G1"]);
        if command == "retire" {
            args.extend(["--key-pair-id", "K1"]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_cfmint"))
            .args(&args)
            .env_remove("CFMINT_LOG")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{command}");
        let says = if cfg!(feature = "aws-cloudfront") {
            "rotation needs the key ring in keys.secret_id or keys.ring_file"
        } else {
            "built without the `aws-cloudfront` cargo feature"
        };
        assert!(stderr(&out).contains(says), "{command}: {}", stderr(&out));
    }
}

/// Every command's words (`cfmint`, `cfmint sign`, `cfmint sign url`, ...),
/// without clap's own `help`.
fn every_command(command: &clap::Command, words: &mut Vec<String>, found: &mut Vec<Vec<String>>) {
    found.push(words.clone());
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        words.push(sub.get_name().to_owned());
        every_command(sub, words, found);
        words.pop();
    }
}

/// docs/cli.md's command table names every command the parser has, and
/// only those.
#[test]
fn the_command_line_document_covers_every_command() {
    let mut commands = Vec::new();
    every_command(
        &cfmint::cli::command(),
        &mut vec!["cfmint".to_owned()],
        &mut commands,
    );
    let leaves: std::collections::BTreeSet<String> = commands
        .iter()
        .filter(|words| {
            !commands
                .iter()
                .any(|other| other.len() > words.len() && other.starts_with(words))
        })
        .map(|words| words.join(" "))
        .collect();
    let document = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/cli.md")).unwrap();
    let documented: std::collections::BTreeSet<String> = document
        .lines()
        .filter_map(|line| line.strip_prefix("| `cfmint "))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(command, _)| format!("cfmint {}", command.split(" --").next().unwrap().trim()))
        .collect();
    assert_eq!(documented, leaves, "docs/cli.md's table against the parser");
}

/// A resource CloudFront can never match (no scheme) and a key pair id in
/// a form CloudFront never gives (lower case) are refused, not signed.
#[test]
fn sign_refuses_what_cloudfront_could_never_match() {
    let key = fixture_path("test-rsa-key.pem");
    let key = key.to_str().unwrap();
    let sign = |target: &str, id: &str, extra: &[&str]| {
        let mut args = vec![
            "sign",
            target,
            "--key",
            key,
            "--key-pair-id",
            id,
            "--ttl",
            "1h",
        ];
        args.extend_from_slice(extra);
        cfmint_on(Backend::default(), &args)
    };
    let cases = [
        (
            sign(
                "cookies",
                "K1TESTKEY",
                &["--resource", "cdn.example.com/a/*"],
            ),
            "--resource \"cdn.example.com/a/*\" can never match",
        ),
        (
            sign(
                "url",
                "K1TESTKEY",
                &[
                    "--url",
                    "https://cdn.example.com/a/b",
                    "--resource",
                    "cdn.example.com/a/*",
                ],
            ),
            "start it with https://, http:// or http*:// (like https://cdn.example.com/a/*)",
        ),
        (
            sign(
                "cookies",
                "k1testkey",
                &["--resource", "https://cdn.example.com/a/*"],
            ),
            "upper-case letters and digits, like K2JCJMDEHXQW5F: did you mean K1TESTKEY?",
        ),
        (
            sign(
                "cookies",
                "K1-TEST",
                &["--resource", "https://cdn.example.com/a/*"],
            ),
            "key pair id \"K1-TEST\" is invalid",
        ),
    ];
    for (output, says) in cases {
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert!(stderr(&output).contains(says), "{}", stderr(&output));
        assert_eq!(stdout(&output), "", "nothing signed");
    }
    for resource in [
        "https://cdn.example.com/a/*",
        "http*://cdn.example.com/a/*",
        "*",
    ] {
        let output = sign("cookies", "K1TESTKEY", &["--resource", resource]);
        assert!(output.status.success(), "{resource}: {}", stderr(&output));
    }
}

/// `user list`, `remove` and `groups` edit the file `serve` reads, keeping
/// its comments; unknown users are errors.
#[test]
fn users_are_listed_removed_and_grouped_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.toml");
    let file_arg = file.to_str().unwrap();
    let user = |args: &[&str], stdin: Option<&str>| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cfmint"))
            .arg("user")
            .args(args)
            .args(["--file", file_arg])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut input = child.stdin.take().unwrap();
            if let Some(text) = stdin {
                writeln!(input, "{text}").unwrap();
            }
        }
        child.wait_with_output().unwrap()
    };
    let out = user(
        &["add", "--username", "tess", "--group", "teachers"],
        Some("a long password"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = fs::read_to_string(&file).unwrap();
    fs::write(&file, format!("# staff accounts\n{text}")).unwrap();
    let out = user(&["add", "--username", "bob"], Some("another password"));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = user(
        &[
            "groups",
            "--username",
            "bob",
            "--add",
            "staff",
            "--add",
            "teachers",
        ],
        None,
    );
    assert_eq!(stdout(&out), "bob\tstaff,teachers\n", "{}", stderr(&out));
    let out = user(
        &[
            "groups",
            "--username",
            "tess",
            "--remove",
            "teachers",
            "--add",
            "staff",
        ],
        None,
    );
    assert_eq!(stdout(&out), "tess\tstaff\n", "{}", stderr(&out));
    assert_eq!(
        stdout(&user(&["list"], None)),
        "bob\tstaff,teachers\ntess\tstaff\n"
    );
    let out = user(&["remove", "--username", "tess"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&user(&["list"], None)), "bob\tstaff,teachers\n");
    assert!(
        fs::read_to_string(&file)
            .unwrap()
            .starts_with("# staff accounts\n")
    );
    // bob still logs in: his hash was kept through the edits.
    let users = cfmint::auth::users::Users::load(Some(&file), false).unwrap();
    assert!(users.verify("bob", "another password").is_some());
    // The last user gone, the heading stays.
    let out = user(&["remove", "--username", "bob"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(&file).unwrap().trim(),
        "# staff accounts"
    );
    assert_eq!(stdout(&user(&["list"], None)), "");
    let out = user(&["add", "--username", "bob"], Some("another password"));
    assert!(out.status.success(), "{}", stderr(&out));

    for (args, says) in [
        (vec!["remove", "--username", "tess"], "no user tess"),
        (
            vec!["groups", "--username", "tess", "--add", "x"],
            "no user tess",
        ),
        (
            vec!["groups", "--username", "bob", "--add", " padded"],
            "is not a group name",
        ),
        (vec!["groups", "--username", "bob"], "--add"),
    ] {
        let out = user(&args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_cfmint"))
        .args(["user", "list", "--file", "/nonexistent/users.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// What this build leaves out says so in --help, naming the cargo feature.
#[test]
fn help_marks_the_commands_this_build_cannot_run() {
    let help = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_cfmint"))
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        stdout(&output)
    };
    let top = help(&[]);
    assert_eq!(
        top.lines().any(|line| line.trim_start().starts_with("keys")
            && line.contains("[status, rotate, retire: not in this build, they need the `aws-cloudfront` cargo feature]")),
        !cfg!(feature = "aws-cloudfront"),
        "{top}"
    );
    let keys = help(&["keys"]);
    let marked = keys
        .lines()
        .filter(|line| {
            line.contains("[not in this build: needs the `aws-cloudfront` cargo feature]")
        })
        .count();
    assert_eq!(
        marked,
        if cfg!(feature = "aws-cloudfront") {
            0
        } else {
            3
        },
        "{keys}"
    );
    assert!(
        !keys
            .lines()
            .any(|l| l.trim_start().starts_with("public") && l.contains("not in this build"))
    );
    let public = help(&["keys", "public"]);
    assert_eq!(
        public.contains("needs the `aws-kms` cargo feature"),
        !cfg!(feature = "aws-kms"),
        "{public}"
    );
    assert_eq!(
        public.contains("needs the `pkcs11` cargo feature"),
        !cfg!(feature = "pkcs11"),
        "{public}"
    );
}
