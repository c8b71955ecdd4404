//! The `jwt` authenticator: `Authorization: Bearer <JWT>` verified against a
//! PEM public key, an HMAC secret, or a JWKS document (file or URL, refreshed
//! on an unknown `kid` at most once per configured interval).

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use super::{Identity, Method};

/// Bearer-token validation (`[auth.jwt]`).
#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub algorithms: Vec<Algorithm>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub leeway: Duration,
    pub key: JwtKeySource,
    pub min_refresh: Duration,
    pub paths_claim: Option<String>,
}

/// Where the keys that verify bearer tokens come from.
#[derive(Debug, Clone)]
pub enum JwtKeySource {
    PublicKeyFile(PathBuf),
    Hmac(SecretString),
    JwksFile(PathBuf),
    JwksUrl(String),
}

/// Why a token was refused; the text is safe to show the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's algorithm is not accepted")]
    Algorithm,
    #[error("the token's key id is unknown")]
    UnknownKey,
    #[error("the token's signature is invalid")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's issuer is not accepted")]
    Issuer,
    #[error("the token's audience is not accepted")]
    Audience,
    #[error("the token lacks the required claim {0}")]
    MissingClaim(String),
}

impl From<jsonwebtoken::errors::Error> for JwtError {
    fn from(error: jsonwebtoken::errors::Error) -> Self {
        match error.kind() {
            ErrorKind::InvalidSignature => Self::Signature,
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidIssuer => Self::Issuer,
            ErrorKind::InvalidAudience => Self::Audience,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => Self::Algorithm,
            ErrorKind::MissingRequiredClaim(claim) => Self::MissingClaim(claim.clone()),
            _ => Self::Malformed,
        }
    }
}

enum Keys {
    Static(DecodingKey),
    Jwks(Jwks),
}

/// A JWKS document's keys by `kid`, and where to fetch it again.
struct Jwks {
    source: JwtKeySource,
    keys: RwLock<HashMap<String, (DecodingKey, Option<Algorithm>)>>,
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    min_refresh: Duration,
    client: Option<reqwest::Client>,
}

/// Verifies bearer tokens and turns their claims into an [`Identity`].
pub struct JwtVerifier {
    validation: Validation,
    keys: Keys,
    claims_needed: BTreeSet<String>,
    paths_claim: Option<String>,
}

impl JwtVerifier {
    /// Loads keys: files always; a JWKS URL once when `fetch_url` (a
    /// failure there is retried on use), else on first use or [`Self::reach`].
    pub async fn new(
        settings: &JwtSettings,
        claims_needed: BTreeSet<String>,
        fetch_url: bool,
    ) -> Result<Self, String> {
        let mut validation = Validation::new(settings.algorithms[0]);
        validation.algorithms = settings.algorithms.clone();
        validation.leeway = settings.leeway.as_secs();
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = &settings.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &settings.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);

        let keys = match &settings.key {
            JwtKeySource::Hmac(secret) => {
                Keys::Static(DecodingKey::from_secret(secret.expose_secret().as_bytes()))
            }
            JwtKeySource::PublicKeyFile(path) => {
                Keys::Static(load_pem(path, settings.algorithms[0])?)
            }
            source @ (JwtKeySource::JwksFile(_) | JwtKeySource::JwksUrl(_)) => {
                let client = matches!(source, JwtKeySource::JwksUrl(_))
                    .then(http_client)
                    .transpose()?;
                let jwks = Jwks {
                    source: source.clone(),
                    keys: RwLock::new(HashMap::new()),
                    last_fetch: tokio::sync::Mutex::new(None),
                    min_refresh: settings.min_refresh,
                    client,
                };
                match source {
                    JwtKeySource::JwksUrl(_) if !fetch_url => {}
                    JwtKeySource::JwksUrl(_) => {
                        if let Err(e) = jwks.load().await {
                            tracing::warn!(error = %e, "JWKS not fetched at start; retrying on use");
                        }
                    }
                    _ => jwks.load().await?,
                }
                Keys::Jwks(jwks)
            }
        };
        Ok(Self {
            validation,
            keys,
            claims_needed,
            paths_claim: settings.paths_claim.clone(),
        })
    }

    /// Fetches a JWKS URL once and keeps its keys (`cfmint check
    /// --network`); nothing to reach for other key sources.
    pub async fn reach(&self) -> Result<(), String> {
        match &self.keys {
            Keys::Jwks(jwks) if jwks.client.is_some() => jwks.load().await,
            _ => Ok(()),
        }
    }

    /// Verifies signature, algorithm, `exp`, `nbf`, `iss`, `aud`.
    pub async fn verify(&self, token: &str) -> Result<Identity, JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            // `alg: none` and unknown algorithms fail to parse; say which it was.
            if declared_algorithm(token).is_some() {
                JwtError::Algorithm
            } else {
                JwtError::Malformed
            }
        })?;
        if !self.validation.algorithms.contains(&header.alg) {
            return Err(JwtError::Algorithm);
        }
        let claims = match &self.keys {
            Keys::Static(key) => self.decode(token, key)?,
            Keys::Jwks(jwks) => {
                let kid = header.kid.as_deref().ok_or(JwtError::UnknownKey)?;
                let key = match jwks.get(kid) {
                    Some(key) => key,
                    None => {
                        jwks.refresh().await;
                        jwks.get(kid).ok_or(JwtError::UnknownKey)?
                    }
                };
                if key.1.is_some_and(|alg| alg != header.alg) {
                    return Err(JwtError::Algorithm);
                }
                self.decode(token, &key.0)?
            }
        };
        self.identity(claims)
    }

    fn decode(&self, token: &str, key: &DecodingKey) -> Result<Map<String, Value>, JwtError> {
        Ok(jsonwebtoken::decode::<Map<String, Value>>(token, key, &self.validation)?.claims)
    }

    fn identity(&self, claims: Map<String, Value>) -> Result<Identity, JwtError> {
        Identity::from_claims(
            &claims,
            Method::Jwt,
            &self.claims_needed,
            self.paths_claim.as_deref(),
        )
        .ok_or_else(|| JwtError::MissingClaim("sub".into()))
    }
}

impl Jwks {
    fn get(&self, kid: &str) -> Option<(DecodingKey, Option<Algorithm>)> {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        keys.get(kid).cloned()
    }

    /// Fetches again unless the last fetch was under `min_refresh` ago.
    async fn refresh(&self) {
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.min_refresh) {
            return;
        }
        *last = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys,
            Err(e) => tracing::warn!(error = %e, "JWKS refresh failed; keeping the previous keys"),
        }
    }

    /// Fetches the set and keeps it.
    async fn load(&self) -> Result<(), String> {
        let keys = self.fetch().await?;
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
        Ok(())
    }

    async fn fetch(&self) -> Result<HashMap<String, (DecodingKey, Option<Algorithm>)>, String> {
        let text = match (&self.source, &self.client) {
            (JwtKeySource::JwksFile(path), _) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read JWKS file {}: {e}", path.display()))?,
            (JwtKeySource::JwksUrl(url), Some(client)) => fetch_url(client, url).await?,
            _ => return Err("no JWKS source".into()),
        };
        let set: JwkSet =
            serde_json::from_str(&text).map_err(|e| format!("JWKS is not a key set: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = &jwk.common.key_id else {
                continue;
            };
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                tracing::warn!(kid, "JWKS key skipped: unsupported or malformed");
                continue;
            };
            let alg = jwk
                .common
                .key_algorithm
                .and_then(|a| a.to_string().parse::<Algorithm>().ok());
            keys.insert(kid.clone(), (key, alg));
        }
        Ok(keys)
    }
}

async fn fetch_url(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("cannot fetch JWKS from {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("JWKS {url} answered {}", response.status()));
    }
    response
        .text()
        .await
        .map_err(|e| format!("cannot read JWKS from {url}: {e}"))
}

fn http_client() -> Result<reqwest::Client, String> {
    crate::tls::require_crypto_provider("JWKS HTTP client")?;
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| format!("cannot build the JWKS HTTP client: {e}"))
}

fn load_pem(path: &PathBuf, algorithm: Algorithm) -> Result<DecodingKey, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read JWT public key {}: {e}", path.display()))?;
    let key = match algorithm {
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&pem),
        Algorithm::EdDSA => DecodingKey::from_ed_pem(&pem),
        _ => DecodingKey::from_rsa_pem(&pem),
    };
    key.map_err(|e| format!("JWT public key {}: {e}", path.display()))
}

/// The `alg` a token's header declares, read without trusting anything else.
fn declared_algorithm(token: &str) -> Option<String> {
    use base64::Engine;
    let header = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value.get("alg")?.as_str().map(str::to_owned)
}
