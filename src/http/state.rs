//! Shared state handed to every handler with `State`: one `Arc`, so the
//! per-request clones axum makes cost one reference count.

use std::ops::Deref;
use std::sync::Arc;

use axum::http::HeaderValue;

use super::cookies::CloudFrontCookies;
use super::error::ApiError;
use crate::auth::Identity;
use crate::auth::authorize::Authorizer;
use crate::auth::grants::Grants;
use crate::auth::jwt::JwtVerifier;
use crate::auth::oidc::OidcClient;
use crate::auth::users::Users;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::minter::Minter;
use crate::playlist::Playlists;
use crate::ratelimit::RateLimits;
use crate::session::Store;

#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub settings: Settings,
    pub minter: Arc<Minter>,
    pub users: Option<Users>,
    pub jwt: Option<JwtVerifier>,
    pub oidc: Option<OidcClient>,
    pub grants: Grants,
    pub authorizer: Option<Authorizer>,
    /// `GET /playlists/...`, when `[playlists]` is configured.
    pub playlists: Option<Playlists>,
    pub store: Store,
    pub limits: RateLimits,
    pub metrics: Arc<Metrics>,
    /// `cors.allowed_origins` as header values, compared byte for byte.
    pub allowed_origins: Vec<HeaderValue>,
    pub cookies: CloudFrontCookies,
    /// Set on SIGTERM: `/readyz` fails while the listener drains.
    pub draining: std::sync::atomic::AtomicBool,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl Shared {
    /// Counts a rate-limit refusal and turns it into a 429; a limiter that
    /// did not answer is a 503, never a pass.
    pub fn limited(&self, result: Result<(), crate::ratelimit::Refusal>) -> Result<(), ApiError> {
        result.map_err(|refusal| match refusal {
            crate::ratelimit::Refusal::Limited(limited) => {
                self.metrics.rate_limited(limited.limit.as_str());
                ApiError::RateLimited(limited)
            }
            crate::ratelimit::Refusal::Unavailable(cause) => {
                self.metrics.store_error("rate_limit");
                ApiError::StoreUnavailable(cause)
            }
        })
    }

    /// Verifies a bearer token, or refuses it when JWT is not configured.
    pub async fn verify_token(&self, token: &str) -> Result<Identity, ApiError> {
        let verifier = self.jwt.as_ref().ok_or(ApiError::BearerNotAccepted)?;
        verifier.verify(token).await.map_err(ApiError::InvalidToken)
    }

    /// Whether `origin` is one of `cors.allowed_origins`.
    pub fn origin_allowed(&self, origin: &HeaderValue) -> bool {
        self.allowed_origins.iter().any(|allowed| allowed == origin)
    }
}
