//! Request paths an attacker shapes, sent raw over TCP (no client library
//! normalising them first): `/auth` and the edge's own file serving decide
//! on the path nginx actually serves, and a file outside the grant or
//! outside `origin_dir` is never served, directly or through nginx.

use std::net::SocketAddr;
use std::path::PathBuf;

use cfmint::signer::PolicyForm;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::harness::edge::{edge, sign, start_nginx};
use crate::harness::{now, raw_get};

const ALICE: &str = "alice-notes";
const SECRET: &str = "bob-secret";

/// `users/alice/notes.txt`, `users/bob/secret.txt`, and symlinks inside the
/// tree that point out of it.
fn tree() -> PathBuf {
    let base = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
        .keep();
    let root = base.join("root");
    for user in ["alice", "bob"] {
        std::fs::create_dir_all(root.join("users").join(user)).unwrap();
    }
    std::fs::write(root.join("users/alice/notes.txt"), ALICE).unwrap();
    std::fs::write(root.join("users/bob/secret.txt"), SECRET).unwrap();
    std::fs::write(base.join("outside.txt"), SECRET).unwrap();
    std::os::unix::fs::symlink(base.join("outside.txt"), root.join("users/alice/link.txt"))
        .unwrap();
    std::os::unix::fs::symlink(&base, root.join("users/alice/up")).unwrap();
    root
}

/// An independent reading of what nginx serves for a raw path: decode
/// `%XX` once, merge slashes, resolve dot segments; `None` if it climbs
/// above the root.
fn served_path(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&raw[i + 1..i + 3], 16)
        {
            decoded.push(byte);
            i += 3;
            continue;
        }
        decoded.push(bytes[i]);
        i += 1;
    }
    let decoded = String::from_utf8_lossy(&decoded).into_owned();
    let mut stack: Vec<&str> = Vec::new();
    let directory = decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                stack.pop()?;
            }
            other => stack.push(other),
        }
    }
    let slash = if directory && !stack.is_empty() {
        "/"
    } else {
        ""
    };
    Some(format!("/{}{slash}", stack.join("/")))
}

fn alice_cookie() -> String {
    sign("/users/alice/*", now() + 600, None, PolicyForm::Custom).cookie_header()
}

const ATTACKS: [&str; 8] = [
    "/users/alice/../bob/secret.txt",
    "/users/alice/%2e%2e/bob/secret.txt",
    "/users/alice/%2E%2E%2Fbob%2Fsecret.txt",
    "/users/alice//../bob/secret.txt",
    "/users/alice/./../bob/secret.txt",
    "/users/alice/..\\bob\\secret.txt",
    "/users/alice/%2e%2e%5cbob%5csecret.txt",
    "/users/alice/.%2e/bob/secret.txt",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traversal_out_of_a_grant_is_refused_by_auth_the_edge_and_nginx() {
    let root = tree();
    let edge = edge(&root).await;
    let nginx = start_nginx(&root, edge.addr);
    let nginx_addr: SocketAddr = ([127, 0, 0, 1], nginx.port).into();
    let cookie = alice_cookie();
    let with_cookie = [("Cookie", cookie.as_str())];

    // The grant itself works everywhere.
    let auth = |uri: &str| {
        raw_get(
            edge.addr,
            "/auth",
            &[("Cookie", cookie.as_str()), ("X-Original-URI", uri)],
        )
    };
    assert_eq!(auth("/users/alice/notes.txt").0, 200);
    assert_eq!(auth("/users/alice/x/../notes.txt").0, 200);
    assert_eq!(
        raw_get(nginx_addr, "/users/alice/notes.txt", &with_cookie),
        (200, ALICE.into())
    );
    assert_eq!(
        raw_get(edge.addr, "/users/alice/notes.txt", &with_cookie),
        (200, ALICE.into())
    );
    assert_eq!(
        raw_get(edge.addr, "/users/alice//notes.txt", &with_cookie),
        (200, ALICE.into())
    );

    // Encoded once more, it is a directory named `%2e%2e` inside the grant.
    assert_eq!(auth("/users/alice/%252e%252e/bob/secret.txt").0, 200);
    let (status, body) = raw_get(
        nginx_addr,
        "/users/alice/%252e%252e/bob/secret.txt",
        &with_cookie,
    );
    assert_eq!(status, 404, "{body}");

    for attack in ATTACKS {
        let (status, _) = auth(attack);
        assert_eq!(status, 403, "/auth on {attack}");
        let (status, body) = raw_get(nginx_addr, attack, &with_cookie);
        assert_ne!(status, 200, "nginx served {attack}");
        assert!(
            !body.contains(SECRET),
            "nginx leaked bob's file for {attack}"
        );
        let (status, body) = raw_get(edge.addr, attack, &with_cookie);
        assert!(
            matches!(status, 400 | 403 | 404),
            "edge answered {status} for {attack}"
        );
        assert!(
            !body.contains(SECRET),
            "the edge leaked bob's file for {attack}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_out_of_origin_dir_are_not_served() {
    let root = tree();
    let edge = edge(&root).await;
    let cookie = alice_cookie();
    let with_cookie = [("Cookie", cookie.as_str())];
    for path in ["/users/alice/link.txt", "/users/alice/up/outside.txt"] {
        let (status, body) = raw_get(edge.addr, path, &with_cookie);
        assert_eq!(status, 404, "{path}");
        assert!(!body.contains(SECRET), "{path}");
    }
}

/// Path pieces an attacker combines.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("users".to_owned()),
        Just("alice".to_owned()),
        Just("bob".to_owned()),
        Just("secret.txt".to_owned()),
        Just("notes.txt".to_owned()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just(String::new()),
        Just("%2e%2e".to_owned()),
        Just("%2E.".to_owned()),
        Just(".%2e".to_owned()),
        Just("%2e".to_owned()),
        Just("%2f".to_owned()),
        Just("%2F..%2F".to_owned()),
        Just("%5c".to_owned()),
        Just("..\\bob".to_owned()),
        Just("%00".to_owned()),
        Just("%0a".to_owned()),
        Just("%61lice".to_owned()),
        Just("b%6Fb".to_owned()),
        Just("%252e%252e".to_owned()),
        Just("%".to_owned()),
        Just("%e9".to_owned()),
        Just("a".repeat(300)),
    ]
}

fn request_path() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(segment(), 0..4),
        prop::collection::vec(segment(), 0..6),
    )
        .prop_map(|(head, tail)| {
            let mut parts = vec!["users".to_owned(), "alice".to_owned()];
            parts.extend(head);
            parts.extend(tail);
            format!("/{}", parts.join("/"))
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_never_allows_a_path_that_nginx_serves_outside_the_grant() {
    let root = tree();
    let edge = edge(&root).await;
    let nginx = start_nginx(&root, edge.addr);
    let nginx_addr: SocketAddr = ([127, 0, 0, 1], nginx.port).into();
    let edge_addr = edge.addr;
    let cookie = alice_cookie();
    let cases = std::env::var("CFMINT_TRAVERSAL_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(400);
    let allowed = std::cell::Cell::new(0);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    tokio::task::block_in_place(|| {
        runner
            .run(&request_path(), |path| {
                let (auth, _) = raw_get(
                    edge_addr,
                    "/auth",
                    &[("Cookie", cookie.as_str()), ("X-Original-URI", &path)],
                );
                prop_assert!(
                    auth == 200 || auth == 403,
                    "/auth answered {} for {}",
                    auth,
                    path
                );
                if auth == 200 {
                    allowed.set(allowed.get() + 1);
                    let served = served_path(&path);
                    prop_assert!(
                        served
                            .as_deref()
                            .is_some_and(|p| p.starts_with("/users/alice/")),
                        "/auth allowed {} which is served as {:?}",
                        path,
                        served
                    );
                }
                let (status, body) = raw_get(nginx_addr, &path, &[("Cookie", cookie.as_str())]);
                prop_assert!(
                    !body.contains(SECRET),
                    "nginx served bob's file for {} ({})",
                    path,
                    status
                );
                Ok(())
            })
            .unwrap();
    });
    assert!(allowed.get() > 0, "no generated path was inside the grant");
}
