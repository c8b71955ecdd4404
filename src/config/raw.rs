//! The configuration file's shape, exactly as written: strings and numbers,
//! before any of it is interpreted. `Settings` turns it into typed values.

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawConfig {
    pub server: RawServer,
    pub cloudfront: RawCloudFront,
    pub keys: RawKeys,
    pub mint: RawMint,
    pub session: RawSession,
    pub auth: RawAuth,
    pub grants: Vec<RawGrant>,
    pub cors: RawCors,
    pub rate_limit: RawRateLimit,
    pub authorize: Option<RawAuthorize>,
    pub playlists: Option<RawPlaylists>,
    pub log: RawLog,
    /// Read by `cfmint edge`, not by `serve`.
    pub edge: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawServer {
    pub listen: String,
    pub admin_listen: String,
    pub shutdown_timeout: String,
    pub drain_delay: String,
    pub body_limit: u64,
    pub log_format: String,
    pub trusted_proxies: Vec<String>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub origin_header: Option<String>,
    pub origin_secret: Option<SecretString>,
    pub admin_token: Option<SecretString>,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            admin_listen: "127.0.0.1:9090".into(),
            shutdown_timeout: "10s".into(),
            drain_delay: "5s".into(),
            body_limit: 16 * 1024,
            log_format: "text".into(),
            trusted_proxies: Vec::new(),
            tls_cert: None,
            tls_key: None,
            origin_header: None,
            origin_secret: None,
            admin_token: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawCloudFront {
    pub base_url: String,
    pub cookie_domain: Option<String>,
    pub policy: String,
    pub hash_algorithm: String,
    pub backend: Option<String>,
}

impl Default for RawCloudFront {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            cookie_domain: None,
            policy: "auto".into(),
            hash_algorithm: "sha1".into(),
            backend: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawKeys {
    pub active: Option<String>,
    pub watch: bool,
    pub key: Vec<RawKey>,
    pub pkcs11: Option<RawPkcs11>,
    pub remote_concurrency: usize,
    pub remote_timeout: String,
    pub secret_id: Option<String>,
    pub ring_file: Option<String>,
    pub secret_poll_interval: String,
}

impl Default for RawKeys {
    fn default() -> Self {
        Self {
            active: None,
            watch: false,
            key: Vec::new(),
            pkcs11: None,
            remote_concurrency: 64,
            remote_timeout: "2s".to_owned(),
            secret_id: None,
            ring_file: None,
            secret_poll_interval: "60s".to_owned(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPkcs11 {
    pub module: Option<String>,
    pub pin: Option<SecretString>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKey {
    pub id: String,
    pub file: Option<String>,
    pub env: Option<String>,
    pub kms_key_id: Option<String>,
    pub pkcs11_uri: Option<String>,
    #[serde(rename = "type")]
    pub key_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawMint {
    pub ttl: String,
    pub min_ttl: String,
    /// Empty: `ttl`.
    pub max_ttl: String,
    pub expiry_rounding: String,
    pub refresh_at: f64,
    pub cookie_lifetime: String,
    pub default_path: Option<String>,
    pub ip_binding: bool,
    pub ipv6: String,
    pub max_path_length: usize,
    pub max_sign_urls: usize,
    pub signature_cache: u64,
    pub signing: String,
    pub signing_threads: usize,
}

impl Default for RawMint {
    fn default() -> Self {
        Self {
            ttl: "10m".into(),
            min_ttl: "10s".into(),
            max_ttl: String::new(),
            expiry_rounding: "0s".into(),
            refresh_at: 0.8,
            cookie_lifetime: "policy".into(),
            default_path: None,
            ip_binding: false,
            ipv6: "unbound".into(),
            max_path_length: 1024,
            max_sign_urls: 50,
            signature_cache: 10_000,
            signing: "pool".into(),
            signing_threads: 0,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawSession {
    pub store: String,
    pub cookie_name: String,
    pub inactivity: String,
    pub max_lifetime: String,
    pub redis_url: Option<SecretString>,
    pub redis_ca_file: Option<String>,
    pub redis_prefix: String,
    pub redis_revoke_replicas: Option<u8>,
    pub store_timeout: String,
}

impl Default for RawSession {
    fn default() -> Self {
        Self {
            store: "memory".into(),
            cookie_name: "cfmint_session".into(),
            inactivity: "30m".into(),
            max_lifetime: "12h".into(),
            redis_url: None,
            redis_ca_file: None,
            redis_prefix: "cfmint:".into(),
            redis_revoke_replicas: None,
            store_timeout: "1s".into(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawAuth {
    pub users: Option<RawUsers>,
    pub jwt: Option<RawJwt>,
    pub oidc: Option<RawOidc>,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawPlaylists {
    pub origin_url: String,
    pub token_secret: Option<SecretString>,
    pub token_ttl: String,
    pub timeout: String,
    pub max_bytes: u64,
}

impl Default for RawPlaylists {
    fn default() -> Self {
        Self {
            origin_url: String::new(),
            token_secret: None,
            token_ttl: "1h".into(),
            timeout: "5s".into(),
            max_bytes: 1024 * 1024,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawLog {
    pub subject: String,
    pub subject_key: Option<SecretString>,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            subject: "plain".into(),
            subject_key: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawAuthorize {
    pub url: String,
    pub timeout: String,
    pub cache_ttl: String,
    /// Unset: the shorter of 5s and `cache_ttl`.
    pub deny_cache_ttl: Option<String>,
    pub claims: Vec<String>,
    pub secret: Option<SecretString>,
    pub secret_header: String,
    pub mode: String,
}

impl Default for RawAuthorize {
    fn default() -> Self {
        Self {
            url: String::new(),
            timeout: "500ms".into(),
            cache_ttl: "30s".into(),
            deny_cache_ttl: None,
            claims: Vec::new(),
            secret: None,
            secret_header: "x-cfmint-secret".into(),
            mode: "all".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawOidc {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub redirect_url: String,
    pub scopes: Vec<String>,
    pub return_urls: Vec<String>,
    pub metadata_ttl: String,
    pub end_session: bool,
    pub post_logout_url: Option<String>,
    pub mint_on_login: bool,
}

impl Default for RawOidc {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            client_id: String::new(),
            client_secret: None,
            redirect_url: String::new(),
            scopes: vec!["openid".into()],
            return_urls: Vec::new(),
            metadata_ttl: "1h".into(),
            end_session: false,
            post_logout_url: None,
            mint_on_login: false,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawUsers {
    pub file: Option<String>,
    pub demo: bool,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawJwt {
    pub algorithms: Vec<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub leeway: String,
    pub public_key_file: Option<String>,
    pub hmac_secret: Option<SecretString>,
    pub jwks_file: Option<String>,
    pub jwks_url: Option<String>,
    pub jwks_min_refresh_interval: String,
    pub paths_claim: Option<String>,
}

impl Default for RawJwt {
    fn default() -> Self {
        Self {
            algorithms: Vec::new(),
            issuer: None,
            audience: None,
            leeway: "30s".into(),
            public_key_file: None,
            hmac_secret: None,
            jwks_file: None,
            jwks_url: None,
            jwks_min_refresh_interval: "30s".into(),
            paths_claim: None,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct RawGrant {
    #[serde(default)]
    pub when: Option<RawCondition>,
    pub paths: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct RawCondition {
    pub claim: String,
    pub contains: Option<String>,
    pub equals: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawCors {
    pub allowed_origins: Vec<String>,
    pub max_age: String,
}

impl Default for RawCors {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            max_age: "10m".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawRateLimit {
    pub login_per_address: String,
    pub login_per_identity: String,
    pub mint_per_address: String,
    pub mint_per_identity: String,
}

impl Default for RawRateLimit {
    fn default() -> Self {
        Self {
            login_per_address: "20/min".into(),
            login_per_identity: "10/min".into(),
            mint_per_address: "600/min".into(),
            mint_per_identity: "120/min".into(),
        }
    }
}
