//! Shared state handed to every handler with `State`.

use std::sync::Arc;

use super::error::ApiError;
use crate::auth::Identity;
use crate::auth::grants::Grants;
use crate::auth::jwt::JwtVerifier;
use crate::auth::users::Users;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::minter::Minter;
use crate::ratelimit::RateLimits;
use crate::session::Store;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub minter: Arc<Minter>,
    pub users: Option<Arc<Users>>,
    pub jwt: Option<Arc<JwtVerifier>>,
    pub grants: Arc<Grants>,
    pub store: Store,
    pub limits: Arc<RateLimits>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// Counts a rate-limit refusal and turns it into a 429.
    pub fn limited(&self, result: Result<(), crate::ratelimit::Limited>) -> Result<(), ApiError> {
        result.map_err(|limited| {
            self.metrics.rate_limited(limited.limit.as_str());
            ApiError::RateLimited(limited)
        })
    }

    /// Verifies a bearer token, or refuses it when JWT is not configured.
    pub async fn verify_token(&self, token: &str) -> Result<Identity, ApiError> {
        let verifier = self.jwt.as_ref().ok_or(ApiError::BearerNotAccepted)?;
        verifier.verify(token).await.map_err(ApiError::InvalidToken)
    }
}
