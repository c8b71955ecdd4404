//! Turns the raw file into [`Settings`]: every value interpreted once, every
//! problem collected with the key it belongs to.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use secrecy::ExposeSecret;

use super::Problem;
use super::rate::Rate;
use super::raw::{RawAuthorize, RawConfig, RawGrant, RawJwt, RawOidc, RawPlaylists};
use super::settings::*;
use crate::auth::grants::{self, Condition, Grant};
use crate::signer::{Backend, CookieAttributes, HashAlgorithm, KeyPairId, PolicyForm};

/// Collects problems while values are interpreted.
#[derive(Default)]
struct Check(Vec<Problem>);

impl Check {
    fn fail(&mut self, key: &str, message: impl Into<String>) {
        self.0.push(Problem::new(key, message));
    }

    fn ok<T, E: Into<String>>(&mut self, key: &str, result: Result<T, E>) -> Option<T> {
        result.map_err(|e| self.fail(key, e)).ok()
    }

    fn duration(&mut self, key: &str, text: &str) -> Duration {
        self.ok(key, parse_duration(text)).unwrap_or_default()
    }

    /// A file the configuration names must be there and readable now, so
    /// that a missing mount is reported with every other problem.
    fn readable(&mut self, key: &str, path: &str) {
        if let Err(e) = std::fs::File::open(path) {
            self.fail(key, format!("cannot read {path}: {e}"));
        }
    }

    fn rate(&mut self, key: &str, text: &str) -> Option<Rate> {
        if text == "off" {
            return None;
        }
        self.ok(key, text.parse::<Rate>())
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("\"{text}\" is not a duration like 30s, 10m or 12h ({e})"))
}

impl Settings {
    pub(super) fn from_raw(raw: RawConfig) -> Result<Self, Vec<Problem>> {
        let mut check = Check::default();
        let server = server(&mut check, &raw);
        let cloudfront = cloudfront(&mut check, &raw);
        let keys = keys(&mut check, &raw);
        refuse_throwaway_key_off_loopback(&mut check, &keys, &server);
        if let Some(cloudfront) = &cloudfront {
            refuse_kms_with_sha1(&mut check, &keys, cloudfront);
        }
        let mint = mint(&mut check, &raw);
        let session = session(&mut check, &raw);
        let auth = auth(&mut check, &raw, &server);
        let grants = raw
            .grants
            .iter()
            .enumerate()
            .filter_map(|(index, grant)| grant_from(&mut check, index, grant))
            .collect();
        let cors = cors(&mut check, &raw);
        let rate_limit = RateLimits {
            login_per_address: check.rate(
                "rate_limit.login_per_address",
                &raw.rate_limit.login_per_address,
            ),
            login_per_identity: check.rate(
                "rate_limit.login_per_identity",
                &raw.rate_limit.login_per_identity,
            ),
            mint_per_address: check.rate(
                "rate_limit.mint_per_address",
                &raw.rate_limit.mint_per_address,
            ),
            mint_per_identity: check.rate(
                "rate_limit.mint_per_identity",
                &raw.rate_limit.mint_per_identity,
            ),
        };
        let authorize = raw.authorize.as_ref().map(|a| authorize(&mut check, a));
        let playlists = raw.playlists.as_ref().map(|p| {
            let base_url = cloudfront.as_ref().map(|c| c.base_url.as_str());
            playlists(&mut check, p, base_url, mint.min_ttl)
        });
        let log_subject = log_subject(&mut check, &raw);
        if !check.0.is_empty() {
            return Err(check.0);
        }
        Ok(Self {
            server,
            cloudfront: cloudfront.expect("checked"),
            keys,
            mint,
            session,
            auth,
            grants,
            cors,
            rate_limit,
            authorize,
            playlists,
            log_subject,
        })
    }
}

fn log_subject(check: &mut Check, raw: &RawConfig) -> LogSubject {
    let key = raw
        .log
        .subject_key
        .as_ref()
        .map(|k| k.expose_secret().to_owned())
        .filter(|k| !k.is_empty());
    match (raw.log.subject.as_str(), key) {
        ("plain", _) => LogSubject::Plain,
        ("omit", _) => LogSubject::Omit,
        ("hash", Some(key)) if key.len() >= 16 => LogSubject::Hash(ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            key.as_bytes(),
        )),
        ("hash", _) => {
            check.fail(
                "log.subject_key",
                "log.subject = \"hash\" needs a key of at least 16 characters",
            );
            LogSubject::Omit
        }
        (other, _) => {
            check.fail(
                "log.subject",
                format!("\"{other}\" is not plain, hash or omit"),
            );
            LogSubject::Omit
        }
    }
}

fn playlists(
    check: &mut Check,
    p: &RawPlaylists,
    base_url: Option<&str>,
    min_ttl: Duration,
) -> PlaylistSettings {
    if let Err(e) = check_base_url(&p.origin_url) {
        check.fail("playlists.origin_url", e);
    }
    let origin_url = p.origin_url.trim_end_matches('/').to_owned();
    let token_secret = match &p.token_secret {
        Some(secret) if secret.expose_secret().len() >= 32 => secret.clone(),
        _ => {
            check.fail(
                "playlists.token_secret",
                "is required: at least 32 random characters, the same on every replica \
                 (e.g. from `openssl rand -hex 32`)",
            );
            secrecy::SecretString::from("")
        }
    };
    let token_ttl = check.duration("playlists.token_ttl", &p.token_ttl);
    if token_ttl < Duration::from_secs(60) || token_ttl > Duration::from_secs(24 * 3600) {
        check.fail("playlists.token_ttl", "must be between 1m and 24h");
    } else if token_ttl < min_ttl * 2 {
        // A playlist's policies end with its token, and nothing is signed
        // with less than mint.min_ttl left: a token must be usable for a
        // while after that.
        check.fail(
            "playlists.token_ttl",
            format!(
                "must be at least twice mint.min_ttl ({}s): the policies a playlist signs end with its token",
                min_ttl.as_secs()
            ),
        );
    }
    let timeout = check.duration("playlists.timeout", &p.timeout);
    if timeout.is_zero() || timeout > Duration::from_secs(30) {
        check.fail("playlists.timeout", "must be more than 0s and at most 30s");
    }
    if !(1024..=16 * 1024 * 1024).contains(&p.max_bytes) {
        check.fail("playlists.max_bytes", "must be between 1024 and 16777216");
    }
    PlaylistSettings {
        origin_signed: base_url == Some(origin_url.as_str()),
        origin_url,
        token_secret,
        token_ttl,
        timeout,
        max_bytes: p.max_bytes as usize,
    }
}

fn authorize(check: &mut Check, a: &RawAuthorize) -> AuthorizeSettings {
    if let Err(e) = check_url(&a.url) {
        check.fail("authorize.url", e);
    }
    let timeout = check.duration("authorize.timeout", &a.timeout);
    if timeout.is_zero() || timeout > Duration::from_secs(5) {
        check.fail("authorize.timeout", "must be more than 0s and at most 5s");
    }
    let cache_ttl = check.duration("authorize.cache_ttl", &a.cache_ttl);
    if cache_ttl > Duration::from_secs(3600) {
        check.fail(
            "authorize.cache_ttl",
            "must be at most 1h (\"0s\": no cache)",
        );
    }
    let deny_cache_ttl = match &a.deny_cache_ttl {
        Some(text) => check.duration("authorize.deny_cache_ttl", text),
        None => cache_ttl.min(Duration::from_secs(5)),
    };
    if deny_cache_ttl > cache_ttl {
        check.fail(
            "authorize.deny_cache_ttl",
            "must not exceed authorize.cache_ttl",
        );
    }
    if let Some(claim) = a
        .claims
        .iter()
        .find(|c| c.is_empty() || c.as_str() == "sub")
    {
        check.fail(
            "authorize.claims",
            format!("\"{claim}\" is not a claim to pass (sub is always sent)"),
        );
    }
    let secret = match &a.secret {
        Some(secret) if secret.expose_secret().is_empty() => {
            check.fail("authorize.secret", "is empty; leave it out or set one");
            None
        }
        Some(secret) => match a.secret_header.parse::<axum::http::HeaderName>() {
            Ok(header) => Some((header, secret.clone())),
            Err(_) => {
                check.fail(
                    "authorize.secret_header",
                    format!("\"{}\" is not a header name", a.secret_header),
                );
                None
            }
        },
        None => None,
    };
    let mode = match a.mode.as_str() {
        "all" => AuthorizeMode::All,
        "any" => AuthorizeMode::Any,
        other => {
            check.fail("authorize.mode", format!("\"{other}\" is not all or any"));
            AuthorizeMode::All
        }
    };
    AuthorizeSettings {
        url: a.url.clone(),
        timeout,
        cache_ttl,
        deny_cache_ttl,
        claims: a.claims.clone(),
        secret,
        mode,
    }
}

fn server(check: &mut Check, raw: &RawConfig) -> Server {
    let s = &raw.server;
    let listen = check
        .ok(
            "server.listen",
            s.listen
                .parse::<SocketAddr>()
                .map_err(|_| format!("\"{}\" is not an address like 127.0.0.1:8080", s.listen)),
        )
        .unwrap_or_else(|| ([127, 0, 0, 1], 0).into());
    let admin_listen = if s.admin_listen.is_empty() {
        None
    } else {
        check.ok(
            "server.admin_listen",
            s.admin_listen.parse::<SocketAddr>().map_err(|_| {
                format!(
                    "\"{}\" is not an address like 127.0.0.1:9090",
                    s.admin_listen
                )
            }),
        )
    };
    let log_format = match s.log_format.as_str() {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            check.fail(
                "server.log_format",
                format!("\"{other}\" is not text or json"),
            );
            LogFormat::Text
        }
    };
    if s.body_limit < 256 || s.body_limit > 1 << 20 {
        check.fail("server.body_limit", "must be between 256 and 1048576 bytes");
    }
    let trusted_proxies = s
        .trusted_proxies
        .iter()
        .filter_map(|cidr| check.ok("server.trusted_proxies", super::parse_proxy(cidr)))
        .collect();
    let tls = match (&s.tls_cert, &s.tls_key) {
        (Some(cert), Some(key)) => {
            check.readable("server.tls_cert", cert);
            check.readable("server.tls_key", key);
            Some((PathBuf::from(cert), PathBuf::from(key)))
        }
        (None, None) => None,
        _ => {
            check.fail("server.tls_cert", "tls_cert and tls_key go together");
            None
        }
    };
    let origin_lock = match (&s.origin_header, &s.origin_secret) {
        (Some(name), Some(secret)) => {
            let header = check.ok(
                "server.origin_header",
                axum::http::HeaderName::try_from(name.as_str())
                    .map_err(|_| format!("\"{name}\" is not a header name")),
            );
            if secret.expose_secret().len() < 16 {
                check.fail("server.origin_secret", "must be at least 16 characters");
            }
            header.map(|header| (header, secret.clone()))
        }
        (None, None) => None,
        _ => {
            check.fail(
                "server.origin_header",
                "origin_header and origin_secret go together",
            );
            None
        }
    };
    let admin_token = s
        .admin_token
        .clone()
        .filter(|t| !t.expose_secret().is_empty());
    if admin_token
        .as_ref()
        .is_some_and(|t| t.expose_secret().len() < 16)
    {
        check.fail("server.admin_token", "must be at least 16 characters");
    }
    Server {
        origin_lock,
        admin_token,
        tls,
        listen,
        admin_listen,
        shutdown_timeout: check.duration("server.shutdown_timeout", &s.shutdown_timeout),
        drain_delay: check.duration("server.drain_delay", &s.drain_delay),
        body_limit: s.body_limit as usize,
        log_format,
        trusted_proxies,
    }
}

fn cloudfront(check: &mut Check, raw: &RawConfig) -> Option<CloudFront> {
    let c = &raw.cloudfront;
    if let Err(e) = check_base_url(&c.base_url) {
        check.fail("cloudfront.base_url", e);
    }
    let cookies = match c.cookie_domain.as_deref().filter(|d| !d.is_empty()) {
        None => CookieAttributes::new(),
        Some(domain) => CookieAttributes::new().domain(domain).unwrap_or_else(|e| {
            check.fail("cloudfront.cookie_domain", e.to_string());
            CookieAttributes::new()
        }),
    };
    let policy = match c.policy.as_str() {
        "auto" => Some(PolicyForm::Auto),
        "custom" => Some(PolicyForm::Custom),
        other => {
            check.fail(
                "cloudfront.policy",
                format!("\"{other}\" is not auto or custom"),
            );
            None
        }
    };
    let hash_algorithm = match c.hash_algorithm.as_str() {
        "sha1" => Some(HashAlgorithm::Sha1),
        "sha256" => Some(HashAlgorithm::Sha256),
        other => {
            check.fail(
                "cloudfront.hash_algorithm",
                format!("\"{other}\" is not sha1 or sha256"),
            );
            None
        }
    };
    let backend = match &c.backend {
        None => Some(Backend::default()),
        Some(name) => check.ok("cloudfront.backend", name.parse::<Backend>()),
    };
    Some(CloudFront {
        base_url: c.base_url.trim_end_matches('/').to_owned(),
        cookies,
        policy: policy?,
        hash_algorithm: hash_algorithm?,
        backend: backend?,
    })
}

/// `https://host[:port][/prefix]`; plain `http` only for loopback hosts.
fn check_base_url(url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Err("is required: the distribution's URL, like https://cdn.example.com".into());
    }
    check_url(url)?;
    if url.contains(['*', '?', '#', '"', '\\', ' ']) {
        return Err(format!(
            "\"{url}\" must be scheme://host[/prefix], no wildcard or query"
        ));
    }
    Ok(())
}

fn keys(check: &mut Check, raw: &RawConfig) -> KeySettings {
    let mut keys = Vec::new();
    for (index, key) in raw.keys.key.iter().enumerate() {
        let prefix = format!("keys.key[{index}]");
        let id = check.ok(
            &format!("{prefix}.id"),
            KeyPairId::new(&key.id).map_err(|e| e.to_string()),
        );
        let location = match (&key.file, &key.env, &key.kms_key_id, &key.pkcs11_uri) {
            (Some(file), None, None, None) => {
                check.readable(&format!("{prefix}.file"), file);
                Some(KeyLocation::File(file.into()))
            }
            (None, Some(env), None, None) => {
                if std::env::var_os(env).is_none_or(|value| value.is_empty()) {
                    check.fail(
                        &format!("{prefix}.env"),
                        format!("the environment variable {env} is not set"),
                    );
                }
                Some(KeyLocation::Env(env.clone()))
            }
            (None, None, Some(key_id), None) => {
                let field = format!("{prefix}.kms_key_id");
                if !cfg!(feature = "aws-kms") {
                    check.fail(&field, super::KMS_NOT_BUILT);
                } else if key_id.trim().is_empty() || key_id.chars().any(char::is_whitespace) {
                    check.fail(&field, "must be a KMS key id, alias or ARN");
                }
                Some(KeyLocation::Kms(key_id.clone()))
            }
            (None, None, None, Some(uri)) => {
                let field = format!("{prefix}.pkcs11_uri");
                if !cfg!(feature = "pkcs11") {
                    check.fail(&field, super::PKCS11_NOT_BUILT);
                }
                #[cfg(feature = "pkcs11")]
                match uri.parse::<crate::signer::remote::pkcs11::Pkcs11Uri>() {
                    Err(e) => check.fail(&field, e),
                    Ok(parsed) => {
                        let module = raw.keys.pkcs11.as_ref().and_then(|p| p.module.as_ref());
                        if parsed.module_path.is_none() && module.is_none() {
                            check.fail(
                                &field,
                                "no PKCS#11 module: set keys.pkcs11.module \
                                 (or module-path in the URI)",
                            );
                        }
                    }
                }
                Some(KeyLocation::Pkcs11(uri.clone()))
            }
            _ => {
                check.fail(
                    &prefix,
                    "needs exactly one of file, env, kms_key_id or pkcs11_uri",
                );
                None
            }
        };
        let kind = match key.key_type.as_deref() {
            None => None,
            Some("rsa") => Some(KeyKind::Rsa),
            Some("ecdsa") => Some(KeyKind::Ecdsa),
            Some(other) => {
                check.fail(
                    &format!("{prefix}.type"),
                    format!("\"{other}\" is not rsa or ecdsa"),
                );
                None
            }
        };
        if let (Some(id), Some(location)) = (id, location) {
            if keys.iter().any(|existing: &KeyEntry| existing.id == id) {
                check.fail(&format!("{prefix}.id"), format!("{id} is listed twice"));
            }
            keys.push(KeyEntry { id, location, kind });
        }
    }
    let active = raw.keys.active.as_deref().filter(|a| !a.is_empty());
    let active = match active {
        Some(active) => check.ok(
            "keys.active",
            KeyPairId::new(active).map_err(|e| e.to_string()),
        ),
        None => None,
    };
    match (&active, keys.len()) {
        (Some(id), _) if !keys.iter().any(|k| k.id == *id) => {
            check.fail(
                "keys.active",
                format!("{id} is not one of the configured keys"),
            );
        }
        (None, n) if n > 1 => check.fail(
            "keys.active",
            "is required when several keys are configured",
        ),
        _ => {}
    }
    let active = active.or_else(|| keys.first().map(|key| key.id.clone()));
    let pkcs11 = raw.keys.pkcs11.as_ref().map(|p| {
        if let Some(module) = &p.module {
            check.readable("keys.pkcs11.module", module);
        }
        Pkcs11Settings {
            module: p.module.as_ref().map(PathBuf::from),
            pin: p.pin.clone().filter(|pin| !pin.expose_secret().is_empty()),
        }
    });
    if !(1..=4096).contains(&raw.keys.remote_concurrency) {
        check.fail("keys.remote_concurrency", "must be from 1 to 4096");
    }
    let remote_timeout = check.duration("keys.remote_timeout", &raw.keys.remote_timeout);
    if remote_timeout < Duration::from_millis(10) || remote_timeout > Duration::from_secs(60) {
        check.fail("keys.remote_timeout", "must be from 10ms to 60s");
    }
    let ring = ring_source(check, raw, !keys.is_empty());
    let ring_poll_interval =
        check.duration("keys.secret_poll_interval", &raw.keys.secret_poll_interval);
    if ring_poll_interval < Duration::from_secs(1)
        || ring_poll_interval > Duration::from_secs(86_400)
    {
        check.fail("keys.secret_poll_interval", "must be from 1s to 1d");
    }
    KeySettings {
        keys,
        active,
        watch: raw.keys.watch,
        pkcs11,
        remote_concurrency: raw.keys.remote_concurrency,
        remote_timeout,
        ring,
        ring_poll_interval,
    }
}

/// `keys.secret_id` or `keys.ring_file`: the whole ring from one document,
/// so neither goes with `[[keys.key]]` or `keys.active`.
fn ring_source(check: &mut Check, raw: &RawConfig, listed: bool) -> Option<RingSource> {
    let secret = raw.keys.secret_id.as_deref().filter(|id| !id.is_empty());
    let file = raw
        .keys
        .ring_file
        .as_deref()
        .filter(|path| !path.is_empty());
    let (field, source) = match (secret, file) {
        (None, None) => return None,
        (Some(_), Some(_)) => {
            check.fail("keys.ring_file", "cannot be combined with keys.secret_id");
            return None;
        }
        (Some(id), None) => {
            if !cfg!(feature = "aws-secrets") {
                check.fail("keys.secret_id", super::SECRETS_NOT_BUILT);
            } else if id.chars().any(char::is_whitespace) {
                check.fail("keys.secret_id", "must be a secret name or ARN");
            }
            ("keys.secret_id", RingSource::Secret(id.to_owned()))
        }
        (None, Some(path)) => ("keys.ring_file", RingSource::File(path.into())),
    };
    if listed {
        check.fail(
            field,
            "holds the whole key ring, so [[keys.key]] must not be configured as well",
        );
    }
    if raw.keys.active.as_deref().is_some_and(|a| !a.is_empty()) {
        check.fail(
            field,
            "names the active key itself, so keys.active must not be set as well",
        );
    }
    Some(source)
}

/// KMS signs over SHA-256 only; a SHA-1 deployment would mint cookies that
/// CloudFront refuses.
fn refuse_kms_with_sha1(check: &mut Check, keys: &KeySettings, cloudfront: &CloudFront) {
    let kms = keys
        .keys
        .iter()
        .any(|key| matches!(key.location, KeyLocation::Kms(_)));
    // Without the feature, the key is refused for that alone.
    if kms && cfg!(feature = "aws-kms") && cloudfront.hash_algorithm == HashAlgorithm::Sha1 {
        check.fail(
            "cloudfront.hash_algorithm",
            "is sha1, but a key is in AWS KMS, which signs over SHA-256 only: set \
             hash_algorithm = \"sha256\" (CloudFront takes SHA-256 signatures since April 2026)",
        );
    }
}

fn mint(check: &mut Check, raw: &RawConfig) -> MintSettings {
    let m = &raw.mint;
    // Bounds are checked only between durations that parsed, so a
    // malformed one is reported once.
    let week = Duration::from_secs(7 * 24 * 3600);
    let parsed = |check: &mut Check, key: &str, text: &str| check.ok(key, parse_duration(text));
    let ttl = parsed(check, "mint.ttl", &m.ttl);
    if ttl.is_some_and(|ttl| ttl < Duration::from_secs(10) || ttl > week) {
        check.fail("mint.ttl", "must be between 10s and 7d");
    }
    let min_ttl = parsed(check, "mint.min_ttl", &m.min_ttl);
    if let (Some(min_ttl), Some(ttl)) = (min_ttl, ttl)
        && (min_ttl < Duration::from_secs(10) || min_ttl > ttl)
    {
        check.fail("mint.min_ttl", "must be between 10s and mint.ttl");
    }
    let max_ttl = if m.max_ttl.is_empty() {
        ttl
    } else {
        parsed(check, "mint.max_ttl", &m.max_ttl)
    };
    if let (Some(max_ttl), Some(ttl)) = (max_ttl, ttl)
        && (max_ttl < ttl || max_ttl > week)
    {
        check.fail("mint.max_ttl", "must be between mint.ttl and 7d");
    }
    let expiry_rounding = parsed(check, "mint.expiry_rounding", &m.expiry_rounding);
    if let (Some(expiry_rounding), Some(ttl)) = (expiry_rounding, ttl)
        && expiry_rounding > ttl
    {
        check.fail("mint.expiry_rounding", "must not exceed mint.ttl");
    }
    let (ttl, min_ttl, max_ttl, expiry_rounding) = (
        ttl.unwrap_or_default(),
        min_ttl.unwrap_or_default(),
        max_ttl.unwrap_or_default(),
        expiry_rounding.unwrap_or_default(),
    );
    if !(m.refresh_at > 0.0 && m.refresh_at < 1.0) {
        check.fail(
            "mint.refresh_at",
            "must be a fraction of the lifetime, between 0 and 1",
        );
    }
    let cookie_lifetime = match m.cookie_lifetime.as_str() {
        "policy" => CookieLifetime::Policy,
        "session" => CookieLifetime::Session,
        other => {
            check.fail(
                "mint.cookie_lifetime",
                format!("\"{other}\" is not policy or session"),
            );
            CookieLifetime::Policy
        }
    };
    let ipv6 = match m.ipv6.as_str() {
        "unbound" => Ipv6Binding::Unbound,
        "refuse" => Ipv6Binding::Refuse,
        other => {
            check.fail("mint.ipv6", format!("\"{other}\" is not unbound or refuse"));
            Ipv6Binding::Unbound
        }
    };
    let default_path = m.default_path.clone().filter(|p| !p.is_empty());
    if let Some(path) = &default_path
        && let Err(e) = grants::check_pattern(path, true).and_then(|()| {
            if path.replace("{sub}", "").contains(['*', '?']) {
                Err("must not contain wildcards")
            } else {
                Ok(())
            }
        })
    {
        check.fail("mint.default_path", e);
    }
    if !(16..=8192).contains(&m.max_path_length) {
        check.fail("mint.max_path_length", "must be between 16 and 8192");
    }
    if m.signature_cache > 10_000_000 {
        check.fail("mint.signature_cache", "must be at most 10000000 entries");
    }
    if !(1..=1000).contains(&m.max_sign_urls) {
        check.fail("mint.max_sign_urls", "must be between 1 and 1000");
    }
    if m.signing_threads > 256 {
        check.fail(
            "mint.signing_threads",
            "must be at most 256 (0: one per core)",
        );
    }
    let signing = match m.signing.as_str() {
        "inline" => SigningMode::Inline,
        "blocking" => SigningMode::Blocking,
        "pool" => SigningMode::Pool(match m.signing_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            threads => threads,
        }),
        other => {
            check.fail(
                "mint.signing",
                format!("\"{other}\" is not pool, inline or blocking"),
            );
            SigningMode::Inline
        }
    };
    MintSettings {
        ttl,
        min_ttl,
        max_ttl,
        expiry_rounding,
        refresh_at: m.refresh_at,
        cookie_lifetime,
        default_path,
        ip_binding: m.ip_binding,
        ipv6,
        max_path_length: m.max_path_length,
        max_sign_urls: m.max_sign_urls,
        signature_cache: m.signature_cache,
        signing,
    }
}

fn session(check: &mut Check, raw: &RawConfig) -> SessionSettings {
    let s = &raw.session;
    if s.store == "redis" && !cfg!(feature = "redis") {
        check.fail("session.store", super::REDIS_NOT_BUILT);
    }
    let store = match (s.store.as_str(), &s.redis_url) {
        ("memory", _) => StoreKind::Memory,
        ("redis", Some(url)) if !url.expose_secret().is_empty() => {
            let (topology, tls) =
                redis_url(check, url.expose_secret()).unwrap_or((RedisTopology::Single, false));
            let ca_file = s.redis_ca_file.as_deref().filter(|f| !f.is_empty());
            if let Some(ca_file) = ca_file {
                check.readable("session.redis_ca_file", ca_file);
            }
            if ca_file.is_some() && !tls {
                check.fail(
                    "session.redis_ca_file",
                    "only applies to a TLS session.redis_url (rediss://, rediss-sentinel://, \
                     rediss-cluster://)",
                );
            }
            // A failover promotes a replica that may not have the latest
            // writes: with replicas behind cfmint, a revocation is reported
            // done only once one of them has it.
            let revoke_replicas = s.redis_revoke_replicas.unwrap_or(match topology {
                RedisTopology::Single => 0,
                RedisTopology::Sentinel | RedisTopology::Cluster => 1,
            });
            if revoke_replicas > 5 {
                check.fail("session.redis_revoke_replicas", "must be between 0 and 5");
            }
            StoreKind::Redis {
                url: url.clone(),
                ca_file: ca_file.map(PathBuf::from),
                topology,
                revoke_replicas,
            }
        }
        ("redis", _) => {
            check.fail(
                "session.redis_url",
                "is required when session.store = \"redis\"",
            );
            StoreKind::Memory
        }
        (other, _) => {
            check.fail(
                "session.store",
                format!("\"{other}\" is not memory or redis"),
            );
            StoreKind::Memory
        }
    };
    let name_ok = !s.cookie_name.is_empty()
        && s.cookie_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
        && !s.cookie_name.starts_with("CloudFront-");
    if !name_ok {
        check.fail(
            "session.cookie_name",
            "must be letters, digits, - and _, not CloudFront-*",
        );
    }
    let store_timeout = check.duration("session.store_timeout", &s.store_timeout);
    if store_timeout.is_zero() || store_timeout > Duration::from_secs(2) {
        check.fail("session.store_timeout", "must be between 1ms and 2s");
    }
    let inactivity = check.duration("session.inactivity", &s.inactivity);
    let max_lifetime = check.duration("session.max_lifetime", &s.max_lifetime);
    if max_lifetime < inactivity || max_lifetime > Duration::from_secs(30 * 24 * 3600) {
        check.fail(
            "session.max_lifetime",
            "must be at least session.inactivity and at most 30d",
        );
    }
    let prefix_ok = s.redis_prefix.len() <= 64
        && s.redis_prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:{}".contains(&b));
    if !prefix_ok {
        check.fail(
            "session.redis_prefix",
            "must be at most 64 letters, digits and - _ . : { }",
        );
    } else if s.redis_prefix.contains(['{', '}']) && !whole_hash_tag(&s.redis_prefix) {
        check.fail(
            "session.redis_prefix",
            "braces must make one Redis Cluster hash tag, {name}, and no other brace",
        );
    }
    SessionSettings {
        store,
        cookie_name: s.cookie_name.clone(),
        inactivity,
        max_lifetime,
        redis_prefix: s.redis_prefix.clone(),
        store_timeout,
    }
}

/// The topology `session.redis_url` names and whether it is TLS; `None`
/// (the problem noted) when it is not a URL cfmint can use. The URL may
/// carry passwords, so no message quotes it.
fn redis_url(check: &mut Check, text: &str) -> Option<(RedisTopology, bool)> {
    const KEY: &str = "session.redis_url";
    let Ok(url) = url::Url::parse(text) else {
        check.fail(
            KEY,
            "is not a URL (redis://host:port, see docs/deploy.md §7)",
        );
        return None;
    };
    let (topology, tls) = match url.scheme() {
        "redis" => (RedisTopology::Single, false),
        "rediss" => (RedisTopology::Single, true),
        "redis-sentinel" => (RedisTopology::Sentinel, false),
        "rediss-sentinel" => (RedisTopology::Sentinel, true),
        "redis-cluster" => (RedisTopology::Cluster, false),
        "rediss-cluster" => (RedisTopology::Cluster, true),
        _ => {
            check.fail(
                KEY,
                "must start with redis://, rediss:// (one server), redis-sentinel://, \
                 rediss-sentinel:// (a Sentinel set) or redis-cluster://, rediss-cluster:// \
                 (a Cluster)",
            );
            return None;
        }
    };
    if !cfg!(feature = "redis") && topology != RedisTopology::Single {
        let named = match topology {
            RedisTopology::Sentinel => "a Redis Sentinel set",
            _ => "a Redis Cluster",
        };
        check.fail(KEY, format!("names {named}; {}", super::REDIS_NOT_BUILT));
        return None;
    }
    if url.host_str().is_none_or(str::is_empty) {
        check.fail(KEY, "has no host");
    }
    if topology == RedisTopology::Cluster && !matches!(url.path(), "" | "/" | "/0") {
        check.fail(
            KEY,
            "a Redis Cluster has only database 0: remove the /N path",
        );
    }
    let mut service = 0;
    for (name, value) in url.query_pairs() {
        match (topology, name.as_ref()) {
            (RedisTopology::Sentinel | RedisTopology::Cluster, "node") => {
                let port = value.rsplit_once(':').and_then(|(host, port)| {
                    (!host.is_empty())
                        .then(|| port.parse::<u16>().ok())
                        .flatten()
                });
                if port.is_none() {
                    check.fail(
                        KEY,
                        format!("node={value}: each further node must be host:port"),
                    );
                }
            }
            (RedisTopology::Sentinel, "sentinelServiceName") => service += 1,
            (RedisTopology::Sentinel, "sentinelUsername" | "sentinelPassword") => {}
            (RedisTopology::Single, _) => {
                check.fail(
                    KEY,
                    "query parameters are only for a Sentinel set (redis-sentinel://) or a \
                     Cluster (redis-cluster://)",
                );
                break;
            }
            (_, other) => {
                let known = match topology {
                    RedisTopology::Sentinel => {
                        "node, sentinelServiceName, sentinelUsername, sentinelPassword"
                    }
                    _ => "node",
                };
                check.fail(
                    KEY,
                    format!("unknown query parameter \"{other}\" (known: {known})"),
                );
            }
        }
    }
    if topology == RedisTopology::Sentinel && service != 1 {
        check.fail(
            KEY,
            "a Sentinel URL needs the master's name once: ?sentinelServiceName=NAME",
        );
    }
    Some((topology, tls))
}

/// Whether `prefix`'s braces are exactly one non-empty `{tag}`, so every
/// key cfmint writes hashes by that tag alone.
fn whole_hash_tag(prefix: &str) -> bool {
    match (prefix.find('{'), prefix.find('}')) {
        (Some(open), Some(close)) => close > open + 1 && prefix.matches(['{', '}']).count() == 2,
        _ => false,
    }
}

/// With no configured key cfmint signs with a throwaway one, which no
/// CloudFront key group knows: fine on a laptop, never for a real listener.
fn refuse_throwaway_key_off_loopback(check: &mut Check, keys: &KeySettings, server: &Server) {
    if !keys.keys.is_empty() || keys.ring.is_some() {
        return;
    }
    let exposed = std::iter::once(server.listen)
        .chain(server.admin_listen)
        .find(|address| !address.ip().is_loopback());
    if let Some(address) = exposed {
        check.fail(
            "keys.key",
            format!(
                "no [[keys.key]] is configured and {address} is not a loopback address: \
                 a throwaway key is only used on loopback (mount the signing key and \
                 configure it, or listen on 127.0.0.1)"
            ),
        );
    }
}

fn auth(check: &mut Check, raw: &RawConfig, server: &Server) -> Auth {
    let users = raw.auth.users.as_ref().map(|u| {
        if u.demo && !server.listen.ip().is_loopback() {
            check.fail(
                "auth.users.demo",
                format!(
                    "the demo user is only allowed on loopback, not {}",
                    server.listen
                ),
            );
        }
        if let Some(file) = &u.file {
            check.readable("auth.users.file", file);
        }
        if u.file.is_none() && !u.demo {
            check.fail(
                "auth.users.file",
                "is required (or demo = true on loopback)",
            );
        }
        UsersSettings {
            file: u.file.as_ref().map(PathBuf::from),
            demo: u.demo,
        }
    });
    let jwt = raw.auth.jwt.as_ref().and_then(|j| jwt(check, j));
    let oidc = raw.auth.oidc.as_ref().map(|o| oidc(check, o));
    if oidc.is_some() && !cfg!(feature = "oidc") {
        check.fail("auth.oidc", crate::auth::oidc::NOT_BUILT);
    }
    if oidc.as_ref().is_some_and(|o| o.mint_on_login) && raw.mint.default_path.is_none() {
        check.fail(
            "auth.oidc.mint_on_login",
            "needs mint.default_path: the path to mint at login",
        );
    }
    if users.is_none() && jwt.is_none() && oidc.is_none() {
        check.fail(
            "auth",
            "no authenticator: configure [auth.users], [auth.jwt] and/or [auth.oidc]",
        );
    }
    Auth { users, jwt, oidc }
}

fn oidc(check: &mut Check, o: &RawOidc) -> crate::auth::oidc::OidcSettings {
    for (key, url) in [
        ("auth.oidc.issuer", &o.issuer),
        ("auth.oidc.redirect_url", &o.redirect_url),
    ] {
        check.ok(key, check_url(url));
    }
    if o.client_id.is_empty() {
        check.fail("auth.oidc.client_id", "is required");
    }
    let client_secret = o.client_secret.clone().unwrap_or_default();
    if client_secret.expose_secret().is_empty() {
        check.fail(
            "auth.oidc.client_secret",
            "is required (or CFMINT__AUTH__OIDC__CLIENT_SECRET)",
        );
    }
    if o.return_urls.is_empty() {
        check.fail(
            "auth.oidc.return_urls",
            "list where a login may return to, like https://app.example.com/",
        );
    }
    for url in &o.return_urls {
        check.ok("auth.oidc.return_urls", check_url(url));
    }
    let mut scopes = o.scopes.clone();
    scopes.retain(|scope| scope != "openid");
    let metadata_ttl = check.duration("auth.oidc.metadata_ttl", &o.metadata_ttl);
    let post_logout_url = o.post_logout_url.clone().filter(|url| !url.is_empty());
    if let Some(url) = &post_logout_url {
        check.ok("auth.oidc.post_logout_url", check_url(url));
    }
    crate::auth::oidc::OidcSettings {
        issuer: o.issuer.clone(),
        client_id: o.client_id.clone(),
        client_secret,
        redirect_url: o.redirect_url.clone(),
        scopes,
        return_urls: o.return_urls.clone(),
        metadata_ttl,
        end_session: o.end_session,
        post_logout_url,
        mint_on_login: o.mint_on_login,
    }
}

/// An absolute `https` URL (plain `http` only for loopback hosts).
fn check_url(url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Err("is required: an absolute https URL".into());
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("\"{url}\" is not a URL like https://host/path"))?;
    let host = rest.split(['/', ':']).next().unwrap_or_default();
    let loopback = host == "localhost" || host == "127.0.0.1" || host == "[";
    if scheme != "https" && !(scheme == "http" && loopback) {
        return Err(format!(
            "\"{url}\" must use https (http only for localhost)"
        ));
    }
    if host.is_empty() {
        return Err(format!("\"{url}\" has no host"));
    }
    Ok(())
}

fn jwt(check: &mut Check, j: &RawJwt) -> Option<JwtSettings> {
    let algorithms: Vec<Algorithm> = j
        .algorithms
        .iter()
        .filter_map(|name| {
            check.ok(
                "auth.jwt.algorithms",
                name.parse::<Algorithm>()
                    .map_err(|_| format!("\"{name}\" is not a JWT algorithm")),
            )
        })
        .collect();
    if j.algorithms.is_empty() {
        check.fail("auth.jwt.algorithms", "is required, e.g. [\"RS256\"]");
    }
    let hmac = algorithms
        .iter()
        .any(|a| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512));
    let families: std::collections::BTreeSet<_> = algorithms.iter().map(|a| family(*a)).collect();
    if families.len() > 1 {
        check.fail(
            "auth.jwt.algorithms",
            "must all be of one family (HMAC, RSA, EC or Ed)",
        );
    }
    if let Some(file) = &j.public_key_file {
        check.readable("auth.jwt.public_key_file", file);
    }
    if let Some(file) = &j.jwks_file {
        check.readable("auth.jwt.jwks_file", file);
    }
    let sources = [
        j.public_key_file
            .as_ref()
            .map(|f| JwtKeySource::PublicKeyFile(f.into())),
        j.hmac_secret
            .as_ref()
            .map(|s| JwtKeySource::Hmac(s.clone())),
        j.jwks_file
            .as_ref()
            .map(|f| JwtKeySource::JwksFile(f.into())),
        j.jwks_url
            .as_ref()
            .map(|u| JwtKeySource::JwksUrl(u.clone())),
    ];
    let mut sources: Vec<JwtKeySource> = sources.into_iter().flatten().collect();
    if sources.len() != 1 {
        check.fail(
            "auth.jwt",
            "needs exactly one of public_key_file, hmac_secret, jwks_file, jwks_url",
        );
        return None;
    }
    let key = sources.remove(0);
    match (&key, hmac) {
        (JwtKeySource::Hmac(secret), true) if secret.expose_secret().len() < 32 => {
            check.fail("auth.jwt.hmac_secret", "must be at least 32 bytes");
        }
        (JwtKeySource::Hmac(_), false) => {
            check.fail(
                "auth.jwt.algorithms",
                "hmac_secret needs HS256, HS384 or HS512",
            );
        }
        (JwtKeySource::JwksUrl(url), _) => {
            if let Err(e) = check_base_url(url) {
                check.fail("auth.jwt.jwks_url", e);
            }
        }
        (_, true) if !matches!(key, JwtKeySource::Hmac(_)) => {
            check.fail(
                "auth.jwt.algorithms",
                "HS* needs hmac_secret; keys and JWKS take RS*, PS*, ES* or EdDSA",
            );
        }
        _ => {}
    }
    let leeway = check.duration("auth.jwt.leeway", &j.leeway);
    if leeway > Duration::from_secs(300) {
        check.fail("auth.jwt.leeway", "must be at most 5m");
    }
    if algorithms.is_empty() {
        return None;
    }
    Some(JwtSettings {
        algorithms,
        issuer: j.issuer.clone(),
        audience: j.audience.clone(),
        leeway,
        key,
        min_refresh: check.duration(
            "auth.jwt.jwks_min_refresh_interval",
            &j.jwks_min_refresh_interval,
        ),
        paths_claim: j.paths_claim.clone(),
    })
}

/// HMAC, RSA (RS*/PS*), EC or Ed: keys of one family serve all its algorithms.
fn family(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => "hmac",
        Algorithm::ES256 | Algorithm::ES384 => "ec",
        Algorithm::EdDSA => "ed",
        _ => "rsa",
    }
}

fn grant_from(check: &mut Check, index: usize, raw: &RawGrant) -> Option<Grant> {
    let key = format!("grants[{index}]");
    let when = match &raw.when {
        None => None,
        Some(c) => match (&c.contains, &c.equals) {
            (Some(value), None) => Some(Condition::Contains {
                claim: c.claim.clone(),
                value: value.clone(),
            }),
            (None, Some(value)) => Some(Condition::Equals {
                claim: c.claim.clone(),
                value: value.clone(),
            }),
            _ => {
                check.fail(
                    &format!("{key}.when"),
                    "needs exactly one of contains or equals",
                );
                return None;
            }
        },
    };
    if raw.paths.is_empty() {
        check.fail(&format!("{key}.paths"), "is empty");
    }
    for pattern in &raw.paths {
        if let Err(e) = grants::check_pattern(pattern, true) {
            check.fail(&format!("{key}.paths"), format!("\"{pattern}\": {e}"));
        }
    }
    Some(Grant {
        when,
        patterns: raw.paths.clone(),
    })
}

fn cors(check: &mut Check, raw: &RawConfig) -> Cors {
    for origin in &raw.cors.allowed_origins {
        let valid = origin.starts_with("https://") || origin.starts_with("http://");
        let (_, host) = origin.split_once("://").unwrap_or_default();
        if origin == "*" || !valid || host.is_empty() || host.contains(['/', '*', ' ']) {
            check.fail(
                "cors.allowed_origins",
                format!("\"{origin}\" is not an origin like https://app.example.com (never *)"),
            );
        }
    }
    Cors {
        allowed_origins: raw.cors.allowed_origins.clone(),
        max_age: check.duration("cors.max_age", &raw.cors.max_age),
    }
}
