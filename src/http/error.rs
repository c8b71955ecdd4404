//! The HTTP layer's one error type: each variant has its status and code, the
//! body is always `{"error", "message"}`, and internal causes stay in the log.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::jwt::JwtError;
use crate::auth::oidc::OidcError;
use crate::ratelimit::Limited;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body or a field is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 400: the requested path failed its checks; nothing was signed.
    #[error("invalid path: {0}")]
    InvalidPath(String),
    /// 401: no session and no bearer token.
    #[error("log in first, or send a bearer token")]
    Unauthenticated,
    #[error("send {{\"username\", \"password\"}} or a bearer token")]
    NoCredentials,
    /// 401: login failed, with no hint which part was wrong.
    #[error("the username or password is wrong")]
    InvalidCredentials,
    /// 401: the bearer token was refused.
    #[error("bearer token refused: {0}")]
    InvalidToken(JwtError),
    /// 401: bearer tokens are not configured.
    #[error("bearer tokens are not accepted here")]
    BearerNotAccepted,
    /// 403: the path is not covered by the caller's grants.
    #[error("the path is not granted to you")]
    NotGranted,
    /// 403 `widens_grant`: the resource that would be signed opens URLs
    /// outside the grant (a `?` in a custom policy's query, say); nothing
    /// was signed.
    #[error("the path cannot be signed without widening the grant: {0}")]
    WidensGrant(String),
    /// 401 `credential_expiring`: the session or token ends sooner than
    /// `mint.min_ttl`; nothing was signed.
    #[error("{0}")]
    CredentialExpiring(String),
    /// 403 `not_granted`: the authorization callback refused, for a reason.
    #[error("the application refused the path ({0})")]
    Refused(String),
    /// 404 `not_found` (a `/sign-urls` item): the application says there is
    /// no such file for the caller.
    #[error("the application has no such file for you")]
    NoSuchFile,
    /// 503: the authorization callback failed; nothing was signed.
    #[error("the authorization service is unavailable; retry shortly")]
    AuthorizerUnavailable(String),
    /// 401: an admin action without the right `server.admin_token`.
    #[error("send Authorization: Bearer <server.admin_token>")]
    AdminUnauthorized,
    /// 403: an admin action from off loopback with no `server.admin_token`.
    #[error("set server.admin_token to allow admin actions from other hosts")]
    AdminTokenRequired,
    /// 403: a state-changing request from an origin not on the list.
    #[error("requests from this origin are not allowed")]
    OriginNotAllowed,
    /// 403: the request did not come through CloudFront (origin lock).
    #[error("requests must come through the CDN")]
    OriginLocked,
    /// 403: IP binding is on and IPv6 clients are refused.
    #[error("IP-bound cookies need an IPv4 address; this request came over IPv6")]
    Ipv6Refused,
    /// 404
    #[error("no such route")]
    NotFound,
    /// 405
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// 413
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// 415
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    /// 429, with `Retry-After`.
    #[error("too many requests; retry later")]
    RateLimited(Limited),
    /// 503 with `Retry-After: 1`: the session store did not answer (cause
    /// logged).
    #[error("the session store is unavailable; retry shortly")]
    StoreUnavailable(String),
    /// 503 `session_store_unavailable` with `Retry-After: 1`, from
    /// `POST /admin/sessions/revoke`: the store, or the replicas that must
    /// confirm a revocation, did not answer in time (cause logged).
    #[error(
        "the revocation is not confirmed: the session store, or the replicas \
         session.redis_revoke_replicas requires, did not answer in time; ask again"
    )]
    RevocationUnconfirmed(String),
    /// 503: signing failed (cause logged).
    #[error("signing is unavailable; retry shortly")]
    SignerUnavailable(String),
    /// 503 with `Retry-After`: the key store is throttling, unreachable or
    /// slow (cause logged).
    #[error("the key store is not signing now; retry after the time given")]
    KeyStoreUnavailable { cause: String, retry_after: u64 },
    /// 401 `invalid_token`: a playlist token that is malformed, forged or
    /// expired.
    #[error("{0}; mint again")]
    PlaylistToken(crate::playlist::token::TokenError),
    /// 404 `not_found`: the playlist origin has no such playlist.
    #[error("the origin has no such playlist")]
    NoSuchPlaylist,
    /// 502 `bad_playlist`: the origin's playlist cannot be rewritten.
    #[error("{0}")]
    BadPlaylist(String),
    /// 502 `playlist_origin_unavailable`: the playlist origin failed (cause
    /// logged).
    #[error("the playlist origin is unavailable; retry shortly")]
    PlaylistOrigin(String),
    /// 400, 401 or 502: an OpenID Connect login failed.
    #[error(transparent)]
    Oidc(#[from] OidcError),
}

/// Put in the response's extensions so the access log can record the outcome
/// and the internal cause, which are never sent to the client.
#[derive(Debug, Clone)]
pub struct ErrorDetail {
    pub code: &'static str,
    pub cause: Option<String>,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::InvalidPath(_) => StatusCode::BAD_REQUEST,
            Self::Unauthenticated
            | Self::NoCredentials
            | Self::InvalidCredentials
            | Self::InvalidToken(_)
            | Self::BearerNotAccepted
            | Self::PlaylistToken(_)
            | Self::CredentialExpiring(_)
            | Self::AdminUnauthorized => StatusCode::UNAUTHORIZED,
            Self::NotGranted
            | Self::WidensGrant(_)
            | Self::Refused(_)
            | Self::OriginNotAllowed
            | Self::OriginLocked
            | Self::Ipv6Refused
            | Self::AdminTokenRequired => StatusCode::FORBIDDEN,
            Self::NotFound | Self::NoSuchFile | Self::NoSuchPlaylist => StatusCode::NOT_FOUND,
            Self::BadPlaylist(_) | Self::PlaylistOrigin(_) => StatusCode::BAD_GATEWAY,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::StoreUnavailable(_)
            | Self::RevocationUnconfirmed(_)
            | Self::SignerUnavailable(_)
            | Self::KeyStoreUnavailable { .. }
            | Self::AuthorizerUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Oidc(error) => match error {
                OidcError::State | OidcError::ReturnUrl(_) => StatusCode::BAD_REQUEST,
                OidcError::Code(_) | OidcError::IdToken(_) => StatusCode::UNAUTHORIZED,
                OidcError::Provider(_) => StatusCode::BAD_GATEWAY,
            },
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::InvalidPath(_) => "invalid_path",
            Self::Unauthenticated | Self::NoCredentials => "unauthenticated",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidToken(_) | Self::PlaylistToken(_) => "invalid_token",
            Self::NoSuchPlaylist => "not_found",
            Self::BadPlaylist(_) => "bad_playlist",
            Self::PlaylistOrigin(_) => "playlist_origin_unavailable",
            Self::BearerNotAccepted => "bearer_not_accepted",
            Self::NotGranted | Self::Refused(_) => "not_granted",
            Self::WidensGrant(_) => "widens_grant",
            Self::CredentialExpiring(_) => "credential_expiring",
            Self::NoSuchFile => "not_found",
            Self::AdminUnauthorized => "admin_unauthorized",
            Self::AdminTokenRequired => "admin_token_required",
            Self::AuthorizerUnavailable(_) => "authorizer_unavailable",
            Self::OriginNotAllowed => "origin_not_allowed",
            Self::Ipv6Refused => "ipv6_refused",
            Self::OriginLocked => "origin_locked",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RateLimited(_) => "rate_limited",
            Self::StoreUnavailable(_) | Self::RevocationUnconfirmed(_) => {
                "session_store_unavailable"
            }
            Self::SignerUnavailable(_) => "signer_unavailable",
            Self::KeyStoreUnavailable { .. } => "key_store_unavailable",
            Self::Oidc(error) => match error {
                OidcError::State => "oidc_state_mismatch",
                OidcError::ReturnUrl(_) => "return_url_not_allowed",
                OidcError::Code(_) => "oidc_code_refused",
                OidcError::IdToken(_) => "id_token_refused",
                OidcError::Provider(_) => "identity_provider_unavailable",
            },
        }
    }

    fn cause(&self) -> Option<String> {
        match self {
            Self::StoreUnavailable(cause)
            | Self::RevocationUnconfirmed(cause)
            | Self::SignerUnavailable(cause)
            | Self::AuthorizerUnavailable(cause)
            | Self::BadPlaylist(cause)
            | Self::PlaylistOrigin(cause)
            | Self::KeyStoreUnavailable { cause, .. } => Some(cause.clone()),
            Self::RateLimited(limited) => Some(limited.limit.as_str().to_owned()),
            Self::InvalidToken(error) => Some(error.to_string()),
            Self::PlaylistToken(error) => Some(error.to_string()),
            Self::WidensGrant(reason) | Self::CredentialExpiring(reason) => Some(reason.clone()),
            Self::Oidc(error) => error.detail(),
            _ => None,
        }
    }
}

impl From<tower_sessions::session::Error> for ApiError {
    fn from(error: tower_sessions::session::Error) -> Self {
        Self::StoreUnavailable(error.to_string())
    }
}

impl From<crate::minter::MintError> for ApiError {
    fn from(error: crate::minter::MintError) -> Self {
        use crate::minter::MintError;
        match (&error, error.retry_after()) {
            (MintError::Widens(widening), _) => Self::WidensGrant(widening.to_string()),
            (MintError::CredentialEnding { .. }, _) => Self::CredentialExpiring(error.to_string()),
            (MintError::Remote { .. }, Some(retry_after)) => Self::KeyStoreUnavailable {
                cause: error.to_string(),
                retry_after,
            },
            _ => Self::SignerUnavailable(error.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.code(), "message": self.to_string() });
        let mut response = (self.status(), Json(body)).into_response();
        let retry_after = match &self {
            Self::RateLimited(limited) => {
                Some(limited.retry_after.as_secs_f64().ceil().max(1.0) as u64)
            }
            Self::KeyStoreUnavailable { retry_after, .. } => Some(*retry_after),
            // The store reconnects every 250 ms and a failover takes
            // seconds: a second is a fair first wait.
            Self::StoreUnavailable(_) | Self::RevocationUnconfirmed(_) => Some(1),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response.extensions_mut().insert(ErrorDetail {
            code: self.code(),
            cause: self.cause(),
        });
        response
    }
}
