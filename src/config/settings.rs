//! Validated, typed settings: what the service runs on once `validate.rs`
//! has interpreted every raw value.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use secrecy::SecretString;

use super::rate::Rate;
pub use crate::auth::authorize::{AuthorizeMode, AuthorizeSettings};
use crate::auth::grants::Grant;
pub use crate::auth::jwt::{JwtKeySource, JwtSettings};
use crate::signer::{Backend, CookieAttributes, HashAlgorithm, KeyPairId, PolicyForm};

#[derive(Debug, Clone)]
pub struct Settings {
    pub server: Server,
    pub cloudfront: CloudFront,
    pub keys: KeySettings,
    pub mint: MintSettings,
    pub session: SessionSettings,
    pub auth: Auth,
    pub grants: Vec<Grant>,
    pub cors: Cors,
    pub rate_limit: RateLimits,
    pub authorize: Option<AuthorizeSettings>,
    /// `GET /playlists/...` (`[playlists]`), when configured.
    pub playlists: Option<PlaylistSettings>,
    /// How subjects appear in the log (`log.subject`).
    pub log_subject: LogSubject,
}

/// Signed HLS playlists (`[playlists]`).
#[derive(Debug, Clone)]
pub struct PlaylistSettings {
    /// Where playlists are fetched: `scheme://host[/prefix]`, no `/` at the end.
    pub origin_url: String,
    /// The origin is the distribution itself: cfmint signs its own fetches.
    pub origin_signed: bool,
    /// The key of cfmint's playlist tokens, shared by every replica.
    pub token_secret: SecretString,
    pub token_ttl: Duration,
    /// For the whole fetch of one playlist.
    pub timeout: Duration,
    /// The largest playlist fetched.
    pub max_bytes: usize,
}

/// How a subject appears in the log.
#[derive(Clone)]
pub enum LogSubject {
    Plain,
    /// A keyed hash (HMAC-SHA256, first 16 hex digits): the same subject
    /// always gives the same value, which only the key's holder can link back.
    Hash(ring::hmac::Key),
    Omit,
}

impl std::fmt::Debug for LogSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Plain => "Plain",
            Self::Hash(_) => "Hash",
            Self::Omit => "Omit",
        })
    }
}

impl LogSubject {
    /// The subject as the log shows it; `None` when omitted.
    pub fn show(&self, sub: &str) -> Option<String> {
        match self {
            Self::Plain => Some(sub.to_owned()),
            Self::Hash(key) => {
                let tag = ring::hmac::sign(key, sub.as_bytes());
                Some(
                    tag.as_ref()[..8]
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect(),
                )
            }
            Self::Omit => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Server {
    pub listen: SocketAddr,
    /// The metrics listener; `None` when `admin_listen = ""`.
    pub admin_listen: Option<SocketAddr>,
    pub shutdown_timeout: Duration,
    /// After SIGTERM, how long `/readyz` fails while the listener still
    /// serves, so load balancers stop routing here first.
    pub drain_delay: Duration,
    pub body_limit: usize,
    pub log_format: LogFormat,
    pub trusted_proxies: Vec<IpNet>,
    /// Certificate chain and key (PEM files) to serve HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Origin lock: every request but health checks must carry this header
    /// with this secret (CloudFront adds it on the way to the origin).
    pub origin_lock: Option<(axum::http::HeaderName, SecretString)>,
    /// The bearer token the admin listener's actions (session revocation)
    /// require; without one they are served on a loopback admin listener only.
    pub admin_token: Option<SecretString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct CloudFront {
    /// `https://cdn.example.com`, no trailing slash.
    pub base_url: String,
    /// The CloudFront cookies' attributes, `Domain` from `cookie_domain`.
    pub cookies: CookieAttributes,
    pub policy: PolicyForm,
    pub hash_algorithm: HashAlgorithm,
    pub backend: Backend,
}

#[derive(Debug, Clone)]
pub struct KeySettings {
    /// Empty: a throwaway key is generated at start.
    pub keys: Vec<KeyEntry>,
    pub active: Option<KeyPairId>,
    /// Reload when the config or a key file changes (besides SIGHUP).
    pub watch: bool,
    /// How the PKCS#11 module is reached, when a key is in a token.
    pub pkcs11: Option<Pkcs11Settings>,
    /// At most this many signatures wait on key stores at once.
    pub remote_concurrency: usize,
    /// A signature from a key store (queueing included) gives up after this.
    pub remote_timeout: Duration,
    /// Where the whole key ring is kept, instead of `[[keys.key]]`.
    pub ring: Option<RingSource>,
    /// How often the ring's store is asked for a new version.
    pub ring_poll_interval: Duration,
}

/// `keys.secret_id` or `keys.ring_file`: a key ring document
/// (`keyring::document`) that `cfmint keys rotate` maintains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingSource {
    /// An AWS Secrets Manager secret: name or ARN.
    Secret(String),
    File(PathBuf),
}

impl std::fmt::Display for RingSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Secret(id) => write!(f, "secret {id}"),
            Self::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// `[keys.pkcs11]`: the module and the user PIN (never logged).
#[derive(Debug, Clone)]
pub struct Pkcs11Settings {
    pub module: Option<PathBuf>,
    pub pin: Option<SecretString>,
}

/// One configured signing key.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub id: KeyPairId,
    pub location: KeyLocation,
    /// `type = "rsa" | "ecdsa"`: a key of another type is refused.
    pub kind: Option<KeyKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    Ecdsa,
}

impl KeyKind {
    /// The kind as `type` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rsa => "rsa",
            Self::Ecdsa => "ecdsa",
        }
    }
}

#[derive(Debug, Clone)]
pub enum KeyLocation {
    File(PathBuf),
    Env(String),
    /// A key id, alias or ARN in AWS KMS.
    Kms(String),
    /// An RFC 7512 URI of a key in a PKCS#11 token.
    Pkcs11(String),
    /// PEM text from the key ring's store.
    Inline(secrecy::SecretString),
}

impl KeyLocation {
    /// True for a key held by a key store rather than read into memory.
    pub fn is_remote(&self) -> bool {
        matches!(self, Self::Kms(_) | Self::Pkcs11(_))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieLifetime {
    /// `Max-Age` = remaining policy lifetime.
    Policy,
    /// No `Max-Age`: the browser drops the cookies when it closes.
    Session,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv6Binding {
    Unbound,
    Refuse,
}

#[derive(Debug, Clone)]
pub struct MintSettings {
    pub ttl: Duration,
    /// The bounds of a lifetime a caller asks for (`"ttl"` in a request).
    pub min_ttl: Duration,
    pub max_ttl: Duration,
    pub expiry_rounding: Duration,
    pub refresh_at: f64,
    pub cookie_lifetime: CookieLifetime,
    pub default_path: Option<String>,
    pub ip_binding: bool,
    pub ipv6: Ipv6Binding,
    pub max_path_length: usize,
    pub max_sign_urls: usize,
    /// Signatures kept for reuse (0: off).
    pub signature_cache: u64,
    pub signing: SigningMode,
}

/// Where private-key operations run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningMode {
    /// On the runtime thread that handles the request.
    Inline,
    /// On tokio's blocking pool.
    Blocking,
    /// On this many dedicated signing threads.
    Pool(usize),
}

#[derive(Debug, Clone)]
pub enum StoreKind {
    Memory,
    Redis {
        url: SecretString,
        /// Extra trusted CA certificates (PEM) for `rediss://`, besides the
        /// system's.
        ca_file: Option<PathBuf>,
        topology: RedisTopology,
        /// How many replicas must confirm a revocation before it is
        /// reported done (`WAIT`); 0 does not wait.
        revoke_replicas: u8,
    },
}

/// How `session.redis_url` reaches Redis, named by its scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisTopology {
    /// `redis://`, `rediss://`: one server (or a managed primary endpoint).
    Single,
    /// `redis-sentinel://`, `rediss-sentinel://`: the master a Sentinel set
    /// names, followed across failovers.
    Sentinel,
    /// `redis-cluster://`, `rediss-cluster://`: a Redis Cluster from its
    /// seed nodes, following slot moves and failovers.
    Cluster,
}

impl RedisTopology {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Sentinel => "sentinel",
            Self::Cluster => "cluster",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub store: StoreKind,
    pub cookie_name: String,
    pub inactivity: Duration,
    /// No session outlives this, however active.
    pub max_lifetime: Duration,
    /// Prepended to every Redis key cfmint writes.
    pub redis_prefix: String,
    pub store_timeout: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct Auth {
    pub users: Option<UsersSettings>,
    pub jwt: Option<JwtSettings>,
    pub oidc: Option<crate::auth::oidc::OidcSettings>,
}

#[derive(Debug, Clone)]
pub struct UsersSettings {
    pub file: Option<PathBuf>,
    pub demo: bool,
}

#[derive(Debug, Clone)]
pub struct Cors {
    pub allowed_origins: Vec<String>,
    pub max_age: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct RateLimits {
    pub login_per_address: Option<Rate>,
    pub login_per_identity: Option<Rate>,
    pub mint_per_address: Option<Rate>,
    pub mint_per_identity: Option<Rate>,
}
