//! Typed settings for `cfmint serve`: one TOML file, then `CFMINT__SECTION__KEY`
//! environment overrides. Unknown keys and every invalid value are reported
//! together, each naming its key.

mod rate;
mod raw;
mod settings;
mod validate;

use std::fmt;

use config::{Config, Environment, File, FileFormat};

pub use rate::Rate;
pub use settings::{
    Auth, AuthorizeMode, AuthorizeSettings, CloudFront, CookieLifetime, Cors, Ipv6Binding,
    JwtKeySource, JwtSettings, KeyEntry, KeyKind, KeyLocation, KeySettings, LogFormat,
    MintSettings, Pkcs11Settings, PlaylistSettings, RateLimits, RedisTopology, RingSource, Server,
    SessionSettings, Settings, SigningMode, StoreKind, UsersSettings,
};

/// The embedded local default: loopback, in-memory sessions, a throwaway key.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// Why `session.store = "redis"` is refused by a build without the `redis` feature.
pub const REDIS_NOT_BUILT: &str = "this build of cfmint has no Redis support \
                                   (built without the `redis` cargo feature)";

/// Why `keys.key[].kms_key_id` is refused by a build without `aws-kms`.
pub const KMS_NOT_BUILT: &str = "this build of cfmint has no AWS KMS support \
                                 (built without the `aws-kms` cargo feature)";

/// Why `keys.key[].pkcs11_uri` is refused by a build without `pkcs11`.
pub const PKCS11_NOT_BUILT: &str = "this build of cfmint has no PKCS#11 support \
                                    (built without the `pkcs11` cargo feature)";

/// Why `keys.secret_id` is refused by a build without `aws-secrets`.
pub const SECRETS_NOT_BUILT: &str = "this build of cfmint has no AWS Secrets Manager support \
                                     (built without the `aws-secrets` cargo feature)";

/// Keys whose environment value is a comma-separated list.
const LIST_KEYS: &[&str] = &[
    "server.trusted_proxies",
    "cors.allowed_origins",
    "auth.jwt.algorithms",
    "auth.oidc.scopes",
    "auth.oidc.return_urls",
    "authorize.claims",
];

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Everything wrong with a configuration, reported in one go.
#[derive(Debug)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration ({} problem", self.problems.len())?;
        if self.problems.len() != 1 {
            f.write_str("s")?;
        }
        f.write_str("):")?;
        for problem in &self.problems {
            write!(f, "\n  {}: {}", problem.key, problem.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Settings {
    /// Reads TOML text, applies the `CFMINT__…` variables from `env`, validates.
    pub fn load<I>(toml: &str, env: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let overrides = env
            .into_iter()
            .filter(|(name, _)| name.starts_with("CFMINT__"))
            .collect();
        let mut environment = Environment::with_prefix("CFMINT")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .source(Some(overrides));
        for key in LIST_KEYS {
            environment = environment.with_list_parse_key(key);
        }
        let merged = Config::builder()
            .add_source(File::from_str(toml, FileFormat::Toml))
            .add_source(environment)
            .build()
            .map_err(|e| ConfigError {
                problems: vec![Problem::new("(file)", e.to_string())],
            })?;

        let mut unknown = Vec::new();
        let raw: raw::RawConfig = serde_ignored::deserialize(merged, |path| {
            // An optional section shows as `authorize.?.key`.
            let path = path.to_string().replace(".?", "");
            // `[edge]` belongs to `cfmint edge`, which checks it.
            if path != "edge" && !path.starts_with("edge.") {
                unknown.push(Problem::new(path, "unknown key"));
            }
        })
        .map_err(|e| {
            let mut problems = unknown.clone();
            problems.push(type_problem(&e));
            ConfigError { problems }
        })?;

        match Settings::from_raw(raw) {
            Ok(settings) if unknown.is_empty() => Ok(settings),
            Ok(_) => Err(ConfigError { problems: unknown }),
            Err(mut problems) => {
                unknown.append(&mut problems);
                Err(ConfigError { problems: unknown })
            }
        }
    }

    /// The embedded default plus the process environment.
    pub fn load_default() -> Result<Self, ConfigError> {
        Self::load(DEFAULT_TOML, std::env::vars())
    }

    /// A file plus the process environment.
    pub fn load_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            problems: vec![Problem::new(
                "(file)",
                format!("cannot read {}: {e}", path.display()),
            )],
        })?;
        Self::load(&text, std::env::vars())
    }
}

/// A trusted proxy: a CIDR (`10.0.0.0/8`) or a single address.
pub fn parse_proxy(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("\"{text}\" is not an IP address or CIDR"))
}

/// A type error from serde, split into the key and the reason when config named it.
fn type_problem(error: &config::ConfigError) -> Problem {
    let text = error.to_string();
    match text.rsplit_once(" for key `") {
        Some((message, key)) => Problem::new(key.trim_end_matches(['`', ' ']), message),
        None => Problem::new("(file)", text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OIDC and Redis are cargo features (on by default): a build without
    /// one refuses its configuration by key rather than starting without it.
    #[test]
    fn a_feature_this_build_lacks_is_refused_by_key() {
        let toml = r#"
            [cloudfront]
            base_url = "https://cdn.example.com"
            [session]
            store = "redis"
            redis_url = "redis://127.0.0.1:6379"
            [auth.oidc]
            issuer = "https://login.example.com/"
            client_id = "cfmint"
            client_secret = "from the provider's client registration"
            redirect_url = "https://auth.example.com/callback"
            return_urls = ["https://app.example.com/"]
        "#;
        let problems = match Settings::load(toml, std::iter::empty()) {
            Ok(_) => Vec::new(),
            Err(error) => error.problems,
        };
        let refused = |key: &str| {
            problems
                .iter()
                .any(|p| p.key == key && p.message.contains("cargo feature"))
        };
        assert_eq!(
            refused("session.store"),
            !cfg!(feature = "redis"),
            "{problems:?}"
        );
        assert_eq!(
            refused("auth.oidc"),
            !cfg!(feature = "oidc"),
            "{problems:?}"
        );
        if cfg!(all(feature = "redis", feature = "oidc")) {
            assert!(problems.is_empty(), "{problems:?}");
        }
    }

    /// Sentinel and Cluster URLs: accepted with the `redis` feature,
    /// refused by name without it; their parameters checked, the URL (which
    /// may hold passwords) never quoted.
    #[test]
    fn sentinel_and_cluster_urls_are_checked_and_need_the_redis_feature() {
        let with = |url: &str, extra: &str| {
            problems(&format!(
                "[cloudfront]\nbase_url = \"https://cdn.example.com\"\n\
                 [auth.users]\ndemo = true\n[session]\nstore = \"redis\"\nredis_url = \"{url}\"\n{extra}"
            ))
        };
        let sentinel = "rediss-sentinel://:s3cret@10.0.0.1:26379/0?sentinelServiceName=main\
                        &node=10.0.0.2:26379&sentinelPassword=s3cret2";
        let cluster = "redis-cluster://:s3cret@10.0.0.1:6379?node=10.0.0.2:6379";
        for (url, named) in [(sentinel, "Sentinel"), (cluster, "Cluster")] {
            let found = with(url, "");
            if cfg!(feature = "redis") {
                assert!(found.is_empty(), "{found:?}");
            } else {
                assert!(
                    found.iter().any(|p| p.key == "session.redis_url"
                        && p.message.contains(named)
                        && p.message.contains("cargo feature")),
                    "{found:?}"
                );
            }
        }
        if !cfg!(feature = "redis") {
            return;
        }
        let bad = [
            (
                "redis-sentinel://10.0.0.1:26379?node=10.0.0.2:26379",
                "",
                "session.redis_url",
                "sentinelServiceName",
            ),
            (
                "redis-sentinel://10.0.0.1?sentinelServiceName=a&sentinelservicename=b",
                "",
                "session.redis_url",
                "unknown query parameter \"sentinelservicename\"",
            ),
            (
                "redis-cluster://10.0.0.1:6379/2",
                "",
                "session.redis_url",
                "only database 0",
            ),
            (
                "redis-cluster://10.0.0.1:6379?node=10.0.0.2",
                "",
                "session.redis_url",
                "host:port",
            ),
            (
                "redis://10.0.0.1:6379?node=10.0.0.2:6379",
                "",
                "session.redis_url",
                "only for a Sentinel set",
            ),
            (
                "valkey://10.0.0.1:6379",
                "",
                "session.redis_url",
                "must start with",
            ),
            (
                cluster,
                "redis_prefix = \"{a}{b}\"",
                "session.redis_prefix",
                "one Redis Cluster hash tag",
            ),
            (
                cluster,
                "redis_revoke_replicas = 9",
                "session.redis_revoke_replicas",
                "between 0 and 5",
            ),
            (
                cluster,
                "redis_ca_file = \"/etc/ssl/certs/ca-certificates.crt\"",
                "session.redis_ca_file",
                "only applies to a TLS",
            ),
        ];
        for (url, extra, key, says) in bad {
            let found = with(url, extra);
            assert!(
                found
                    .iter()
                    .any(|p| p.key == key && p.message.contains(says)),
                "{url} {extra}: {found:?}"
            );
            assert!(
                found.iter().all(|p| !p.message.contains("s3cret")),
                "{found:?}"
            );
        }
        assert!(with(cluster, "redis_prefix = \"{cfmint}:\"").is_empty());
    }

    fn problems(toml: &str) -> Vec<Problem> {
        match Settings::load(toml, std::iter::empty()) {
            Ok(_) => Vec::new(),
            Err(error) => error.problems,
        }
    }

    /// Keys in stores are cargo features too; their settings are checked
    /// (by key) before anything is reached.
    #[test]
    fn keys_in_stores_are_refused_without_their_feature_and_checked_with_it() {
        let toml = r#"
            [cloudfront]
            base_url = "https://cdn.example.com"
            hash_algorithm = "sha256"
            [keys]
            active = "KKMS"
            [[keys.key]]
            id = "KKMS"
            kms_key_id = "arn:aws:kms:us-east-1:111122223333:key/1234abcd"
            [[keys.key]]
            id = "KHSM"
            pkcs11_uri = "pkcs11:token=cfmint;object=cf?module-path=/usr/lib/softhsm/libsofthsm2.so"
            [auth.users]
            demo = true
        "#;
        let found = problems(toml);
        let refused = |key: &str| {
            found
                .iter()
                .any(|p| p.key == key && p.message.contains("cargo feature"))
        };
        assert_eq!(
            refused("keys.key[0].kms_key_id"),
            !cfg!(feature = "aws-kms"),
            "{found:?}"
        );
        assert_eq!(
            refused("keys.key[1].pkcs11_uri"),
            !cfg!(feature = "pkcs11"),
            "{found:?}"
        );
        if cfg!(all(feature = "aws-kms", feature = "pkcs11")) {
            assert!(found.is_empty(), "{found:?}");
        }

        let bad = [
            (
                "hash_algorithm = \"sha256\"",
                "hash_algorithm = \"sha1\"",
                "cloudfront.hash_algorithm",
                "SHA-256 only",
            ),
            (
                "[keys]",
                "[keys]\nremote_timeout = \"5ms\"",
                "keys.remote_timeout",
                "10ms to 60s",
            ),
            (
                "[keys]",
                "[keys]\nremote_concurrency = 0",
                "keys.remote_concurrency",
                "1 to 4096",
            ),
            (
                "kms_key_id = \"arn",
                "file = \"/k.pem\"\nkms_key_id = \"arn",
                "keys.key[0]",
                "exactly one of",
            ),
        ];
        for (from, to, key, says) in bad {
            let found = problems(&toml.replace(from, to));
            if key == "cloudfront.hash_algorithm" && !cfg!(feature = "aws-kms") {
                continue;
            }
            assert!(
                found
                    .iter()
                    .any(|p| p.key == key && p.message.contains(says)),
                "{key}: {found:?}"
            );
        }
        if cfg!(feature = "pkcs11") {
            for (uri, says) in [
                (
                    "pkcs11:token=cfmint;object=cf?pin-value=1234",
                    "does not belong in the URI",
                ),
                ("pkcs11:token=cfmint;object=cf", "keys.pkcs11.module"),
            ] {
                let text = toml.replace(
                    "pkcs11:token=cfmint;object=cf?module-path=/usr/lib/softhsm/libsofthsm2.so",
                    uri,
                );
                let found = problems(&text);
                assert!(
                    found
                        .iter()
                        .any(|p| p.key == "keys.key[1].pkcs11_uri" && p.message.contains(says)),
                    "{uri}: {found:?}"
                );
            }
        }
    }

    /// The whole ring from a secret or a file: one place only, and the
    /// secret needs its cargo feature.
    #[test]
    fn a_ring_in_a_secret_or_file_stands_alone() {
        let base = r#"
            [server]
            listen = "0.0.0.0:8080"
            [cloudfront]
            base_url = "https://cdn.example.com"
            [keys]
            secret_id = "cfmint/keys"
            [auth.users]
            file = "/dev/null"
        "#;
        let found = problems(base);
        let secret_refused = found
            .iter()
            .any(|p| p.key == "keys.secret_id" && p.message.contains("cargo feature"));
        assert_eq!(secret_refused, !cfg!(feature = "aws-secrets"), "{found:?}");
        assert!(
            !found.iter().any(|p| p.key == "keys.key"),
            "a ring is no throwaway key: {found:?}"
        );
        let file = base.replace(
            "secret_id = \"cfmint/keys\"",
            "ring_file = \"/etc/ring.json\"",
        );
        assert!(problems(&file).is_empty(), "{:?}", problems(&file));
        let bad = [
            (
                "secret_id = \"cfmint/keys\"\nring_file = \"/r.json\"",
                "keys.ring_file",
                "cannot be combined",
            ),
            (
                "ring_file = \"/r.json\"\nactive = \"KA\"\n[[keys.key]]\nid = \"KA\"\nfile = \"/dev/null\"",
                "keys.ring_file",
                "[[keys.key]] must not",
            ),
            (
                "ring_file = \"/r.json\"\nactive = \"KA\"",
                "keys.ring_file",
                "keys.active must not",
            ),
            (
                "ring_file = \"/r.json\"\nsecret_poll_interval = \"500ms\"",
                "keys.secret_poll_interval",
                "1s to 1d",
            ),
        ];
        for (keys, key, says) in bad {
            let found = problems(&base.replace("secret_id = \"cfmint/keys\"", keys));
            assert!(
                found
                    .iter()
                    .any(|p| p.key == key && p.message.contains(says)),
                "{key}: {found:?}"
            );
        }
    }

    #[test]
    fn signed_playlists_need_an_origin_and_a_shared_token_key() {
        let base = r#"
            [cloudfront]
            base_url = "https://cdn.example.com"
            [auth.users]
            demo = true
            [playlists]
            origin_url = "https://cdn.example.com/"
            token_secret = "0123456789abcdef0123456789abcdef"
        "#;
        let settings = Settings::load(base, std::iter::empty()).unwrap();
        let playlists = settings.playlists.unwrap();
        assert_eq!(playlists.origin_url, "https://cdn.example.com");
        assert!(
            playlists.origin_signed,
            "the distribution itself: signed fetches"
        );
        let other = base.replace(
            "origin_url = \"https://cdn.example.com/\"",
            "origin_url = \"https://origin.example.com\"",
        );
        let settings = Settings::load(&other, std::iter::empty()).unwrap();
        assert!(!settings.playlists.unwrap().origin_signed);
        let from_env = Settings::load(
            &base.replace("token_secret = \"0123456789abcdef0123456789abcdef\"", ""),
            [(
                "CFMINT__PLAYLISTS__TOKEN_SECRET".to_owned(),
                "fedcba9876543210fedcba9876543210".to_owned(),
            )],
        );
        assert!(from_env.is_ok(), "{from_env:?}");
        let bad = [
            (
                "origin_url = \"https://cdn.example.com/\"",
                "origin_url = \"http://origin.internal\"",
                "playlists.origin_url",
                "must use https",
            ),
            (
                "origin_url = \"https://cdn.example.com/\"",
                "",
                "playlists.origin_url",
                "is required",
            ),
            (
                "token_secret = \"0123456789abcdef0123456789abcdef\"",
                "",
                "playlists.token_secret",
                "is required",
            ),
            (
                "token_secret = \"0123456789abcdef0123456789abcdef\"",
                "token_secret = \"short\"",
                "playlists.token_secret",
                "32 random",
            ),
            (
                "[playlists]",
                "[playlists]\ntoken_ttl = \"30s\"",
                "playlists.token_ttl",
                "between 1m and 24h",
            ),
            (
                "[playlists]",
                "[mint]\nmin_ttl = \"5m\"\n[playlists]\ntoken_ttl = \"8m\"",
                "playlists.token_ttl",
                "twice mint.min_ttl (300s)",
            ),
            (
                "[playlists]",
                "[playlists]\ntimeout = \"1m\"",
                "playlists.timeout",
                "at most 30s",
            ),
            (
                "[playlists]",
                "[playlists]\nmax_bytes = 10",
                "playlists.max_bytes",
                "between 1024",
            ),
            (
                "[playlists]",
                "[playlists]\nbogus = 1",
                "playlists.bogus",
                "unknown key",
            ),
        ];
        for (from, to, key, says) in bad {
            let found = problems(&base.replace(from, to));
            assert!(
                found
                    .iter()
                    .any(|p| p.key == key && p.message.contains(says)),
                "{key}: {found:?}"
            );
            assert!(
                !found.iter().any(|p| p.message.contains("0123456789abcdef")),
                "no secret in a message: {found:?}"
            );
        }
    }
}
