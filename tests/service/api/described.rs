//! The HTTP API's description (docs/openapi.yaml) against what ships: the
//! release binary serves it at `/openapi.json` on the admin listener, every
//! route the service and the edge register is in it, and every operation it
//! describes is a registered route. (schemathesis then checks every answer
//! against it: scripts/api-test.)

use std::collections::BTreeSet;

use crate::harness::{ServeProcess, process_setup, raw_get};

/// `(path, method)` for every `.route("/path", get(…))` in a router source;
/// a wildcard segment (axum's `{*path}`) as OpenAPI writes it (`{path}`).
fn registered_routes(source: &str) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let path_start = rest.find('"').expect("a route path literal") + 1;
        let path_end = path_start + rest[path_start..].find('"').unwrap();
        let path = &rest[path_start..path_end];
        let after = rest[path_end + 1..].trim_start_matches([',', ' ', '\n']);
        let method = after.split('(').next().unwrap().trim();
        assert!(
            ["get", "post", "put", "delete", "patch"].contains(&method),
            "route {path}: unrecognised method router {method:?}"
        );
        routes.insert((path.replace("{*", "{"), method.to_owned()));
    }
    routes
}

#[test]
fn every_route_is_described_and_every_described_operation_is_a_route() {
    process_setup();
    let root = env!("CARGO_MANIFEST_DIR");
    let mut routes = BTreeSet::new();
    for file in ["src/http/mod.rs", "src/edge/mod.rs"] {
        let source = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        let found = registered_routes(&source);
        assert!(!found.is_empty(), "{file}: no routes found");
        routes.extend(found);
    }

    // Every optional route configured: the description leaves out those
    // that are not.
    let serve = ServeProcess::start(
        &[],
        &[
            ("CFMINT__SERVER__LISTEN", "127.0.0.1:0"),
            ("CFMINT__SERVER__ADMIN_LISTEN", "127.0.0.1:0"),
            ("CFMINT__PLAYLISTS__ORIGIN_URL", "http://127.0.0.1:9"),
            (
                "CFMINT__PLAYLISTS__TOKEN_SECRET",
                "0123456789abcdef0123456789abcdef",
            ),
        ],
    );
    let (status, body) = raw_get(serve.admin.parse().unwrap(), "/openapi.json", &[]);
    drop(serve);
    assert_eq!(status, 200, "{body}");
    let description: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(description["openapi"], "3.1.0");
    let mut described = BTreeSet::new();
    for (path, operations) in description["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            described.insert((path.clone(), method.clone()));
        }
    }

    let undescribed: Vec<_> = routes.difference(&described).collect();
    assert!(
        undescribed.is_empty(),
        "routes missing from docs/openapi.yaml: {undescribed:?}"
    );
    let phantom: Vec<_> = described.difference(&routes).collect();
    assert!(
        phantom.is_empty(),
        "docs/openapi.yaml describes operations no router registers: {phantom:?}"
    );
}

#[test]
fn the_route_reader_finds_every_form_of_route() {
    let source = r#"
        .route("/login", post(login::login))
        .route(
            "/cfmint.js",
            get(|| async { asset() }),
        )
    "#;
    let found = registered_routes(source);
    let expected: BTreeSet<(String, String)> = [("/cfmint.js", "get"), ("/login", "post")]
        .into_iter()
        .map(|(p, m)| (p.to_owned(), m.to_owned()))
        .collect();
    assert_eq!(found, expected);
}
