//! Configuration: every problem reported at once, each naming its key.

use cfmint::Settings;

use crate::harness::*;

fn problems(toml: &str, env: &[(&str, &str)]) -> Vec<(String, String)> {
    let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
    match Settings::load(toml, env) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems.into_iter().map(|p| (p.key, p.message)).collect(),
    }
}

fn keys(problems: &[(String, String)]) -> Vec<&str> {
    problems.iter().map(|(key, _)| key.as_str()).collect()
}

#[test]
fn the_embedded_default_is_valid() {
    Settings::load(cfmint::config::DEFAULT_TOML, std::iter::empty()).unwrap();
}

#[test]
fn every_problem_is_reported_with_its_key() {
    let toml = r#"
[server]
listen = "nowhere"
shutdown_timeout = "soon"
colour = "blue"

[cloudfront]
base_url = "http://cdn.example.com"
hash_algorithm = "md5"

[mint]
ttl = "1s"
refresh_at = 2.0
signing = "gpu"
signing_threads = 1000

[session]
store = "redis"

[auth.jwt]
algorithms = ["HS256", "RS256"]
hmac_secret = "short"

[auth.oidc]
issuer = "ftp://idp.example.com"
redirect_url = "http://auth.example.com/callback"
post_logout_url = "nowhere"
mint_on_login = true
metadata_ttl = "often"

[[grants]]
paths = ["/users/../*"]

[cors]
allowed_origins = ["*"]

[rate_limit]
mint_per_identity = "lots"
"#;
    let found = problems(toml, &[]);
    let found = keys(&found);
    for key in [
        "server.colour",
        "server.listen",
        "server.shutdown_timeout",
        "cloudfront.base_url",
        "cloudfront.hash_algorithm",
        "mint.ttl",
        "mint.refresh_at",
        "mint.signing",
        "mint.signing_threads",
        "session.redis_url",
        "auth.jwt.algorithms",
        "auth.jwt.hmac_secret",
        "auth.oidc.issuer",
        "auth.oidc.client_id",
        "auth.oidc.client_secret",
        "auth.oidc.redirect_url",
        "auth.oidc.return_urls",
        "auth.oidc.post_logout_url",
        "auth.oidc.mint_on_login",
        "auth.oidc.metadata_ttl",
        "grants[0].paths",
        "cors.allowed_origins",
        "rate_limit.mint_per_identity",
    ] {
        assert!(found.contains(&key), "{key} missing from {found:?}");
    }
}

#[test]
fn environment_overrides_the_file_and_unknown_variables_are_errors() {
    let toml = config_toml(&Options::default());
    let settings =
        Settings::load(&toml, [("CFMINT__MINT__TTL".to_owned(), "5m".to_owned())]).unwrap();
    assert_eq!(settings.mint.ttl.as_secs(), 300);

    let found = problems(&toml, &[("CFMINT__MINT__TLL", "5m")]);
    assert_eq!(keys(&found), ["mint.tll"]);
}

#[test]
fn the_demo_user_is_refused_off_loopback() {
    let toml = cfmint::config::DEFAULT_TOML.replace("127.0.0.1:8080", "0.0.0.0:8080");
    let found = problems(&toml, &[]);
    assert_eq!(keys(&found), ["keys.key", "auth.users.demo"]);
}

#[test]
fn no_configured_key_is_refused_unless_every_listener_is_loopback() {
    let without_keys = |toml: &str| {
        let start = toml.find("[[keys.key]]").expect("a configured key");
        let end = toml[start..].find("\n\n").map_or(toml.len(), |n| start + n);
        format!("{}{}", &toml[..start], &toml[end..])
            .replace(&format!("active = \"{KEY_ID}\"\n"), "")
    };
    let loopback = without_keys(&config_toml(&Options::default()));
    assert!(
        Settings::load(&loopback, std::iter::empty()).is_ok(),
        "a throwaway key on loopback is fine"
    );
    for (from, to) in [
        ("listen = \"127.0.0.1:0\"", "listen = \"0.0.0.0:0\""),
        (
            "admin_listen = \"127.0.0.1:0\"",
            "admin_listen = \"[::]:0\"",
        ),
    ] {
        assert!(loopback.contains(from), "{loopback}");
        let exposed = loopback.replace(from, to);
        let found = problems(&exposed, &[]);
        assert_eq!(keys(&found), ["keys.key"], "{to}");
        assert!(
            found[0].1.contains("not a loopback address"),
            "{}",
            found[0].1
        );
    }
}

#[test]
fn secrets_are_not_printed_with_the_settings() {
    let toml = config_toml(&Options::default());
    let secret = "the-callback-secret-value";
    let env = [
        ("CFMINT__AUTHORIZE__URL", "http://127.0.0.1:1/authorize"),
        ("CFMINT__AUTHORIZE__SECRET", secret),
    ];
    let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
    let settings = Settings::load(&toml, env).unwrap();
    let debug = format!("{settings:?}");
    assert!(!debug.contains(HMAC_SECRET), "{debug}");
    assert!(!debug.contains(secret), "{debug}");
}

#[test]
fn authorize_and_lifetime_settings_are_checked_by_key() {
    let toml = config_toml(&Options::default());
    for (env, key, says) in [
        (
            vec![("CFMINT__AUTHORIZE__URL", "http://app.internal/authorize")],
            "authorize.url",
            "https",
        ),
        (
            vec![("CFMINT__AUTHORIZE__URL", "")],
            "authorize.url",
            "required",
        ),
        (
            vec![
                ("CFMINT__AUTHORIZE__URL", "https://app.example/authorize"),
                ("CFMINT__AUTHORIZE__TIMEOUT", "6s"),
            ],
            "authorize.timeout",
            "5s",
        ),
        (
            vec![
                ("CFMINT__AUTHORIZE__URL", "https://app.example/authorize"),
                ("CFMINT__AUTHORIZE__MODE", "either"),
            ],
            "authorize.mode",
            "all or any",
        ),
        (
            vec![
                ("CFMINT__AUTHORIZE__URL", "https://app.example/authorize"),
                ("CFMINT__AUTHORIZE__CACHE_TTL", "10s"),
                ("CFMINT__AUTHORIZE__DENY_CACHE_TTL", "20s"),
            ],
            "authorize.deny_cache_ttl",
            "cache_ttl",
        ),
        (
            vec![
                ("CFMINT__AUTHORIZE__URL", "https://app.example/authorize"),
                ("CFMINT__AUTHORIZE__SECRET", "s3cret"),
                ("CFMINT__AUTHORIZE__SECRET_HEADER", "bad header"),
            ],
            "authorize.secret_header",
            "header name",
        ),
        (vec![("CFMINT__MINT__MIN_TTL", "5s")], "mint.min_ttl", "10s"),
        (
            vec![("CFMINT__MINT__MIN_TTL", "11m")],
            "mint.min_ttl",
            "mint.ttl",
        ),
        (
            vec![("CFMINT__MINT__MAX_TTL", "5m")],
            "mint.max_ttl",
            "mint.ttl",
        ),
        (vec![("CFMINT__MINT__MAX_TTL", "8d")], "mint.max_ttl", "7d"),
    ] {
        let found = problems(&toml, &env);
        assert!(
            found.iter().any(|(k, m)| k == key && m.contains(says)),
            "{env:?}: {found:?}"
        );
    }
}

#[test]
fn the_production_example_is_valid() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/example.production.toml"
    ))
    .unwrap();
    // Valid but for what it names on the production machine: its key
    // file, key variable and users file, each reported with its key.
    let problems = problems(&text, &[]);
    let keys: Vec<&str> = problems.iter().map(|(key, _)| key.as_str()).collect();
    assert_eq!(
        keys,
        ["keys.key[0].file", "keys.key[1].env", "auth.users.file"],
        "{problems:?}"
    );
    let key = fixtures().signing_key.display().to_string();
    let made_up = text
        .replace("/etc/cfmint/keys/private.pem", &key)
        .replace(
            "env = \"CFMINT_KEY_K1OLDROTATEDOUT\"",
            &format!("file = \"{key}\""),
        )
        .replace(
            "/etc/cfmint/users.toml",
            &fixtures().users_file.display().to_string(),
        );
    let settings = Settings::load(&made_up, std::iter::empty()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(settings.keys.keys.len(), 2);
    assert_eq!(settings.grants.len(), 2);
}

#[test]
fn the_edge_example_is_valid() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/example.edge.toml"
    ))
    .unwrap();
    let settings = cfmint::edge::EdgeSettings::load(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(settings.keys.len(), 1);
}

#[test]
fn the_edge_section_may_share_the_serve_configuration_file() {
    let edge = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/example.edge.toml"
    ))
    .unwrap();
    let combined = format!("{}\n{edge}", config_toml(&Options::default()));
    Settings::load(&combined, std::iter::empty()).unwrap_or_else(|e| panic!("serve: {e}"));
    cfmint::edge::EdgeSettings::load(&combined).unwrap_or_else(|e| panic!("edge: {e}"));
}
