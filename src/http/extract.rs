//! Extractors: JSON bodies with JSON errors (400/413/415), the client address
//! (SPEC section 7), and the caller (bearer token or session).

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;
use tower_sessions::Session;

use super::error::ApiError;
use super::state::AppState;
use crate::auth::Identity;
use crate::client_ip::client_ip;

pub use crate::session::IDENTITY_KEY;
/// Session key holding when (epoch seconds) the session ends, however active:
/// `session.max_lifetime` after login, or a bearer token's `exp` if sooner.
pub const ENDS_KEY: &str = "ends";
/// Session key holding the last time (epoch seconds) the session was touched.
pub const SEEN_KEY: &str = "seen";

/// A JSON body; absent or empty is `None` (for routes whose body is optional).
pub struct JsonBody<T>(pub Option<T>);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let content_type = request.headers().get(header::CONTENT_TYPE).cloned();
        // The front middleware has already read the body within
        // `server.body_limit` (413 past it), so this only takes the bytes.
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|_| ApiError::BadRequest("the request body could not be read".into()))?;
        if bytes.is_empty() && content_type.is_none() {
            return Ok(Self(None));
        }
        let is_json = content_type
            .as_ref()
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        // serde also fills a struct from a JSON array (`["alice","pw"]`);
        // only an object is a body here.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::BadRequest(
                "the JSON body must be an object".into(),
            ));
        }
        // The error names the field (`ttl: invalid type: …`).
        let mut json = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut json).map_err(|e| {
            let field = e.path().to_string();
            let what = if field == "." {
                e.inner().to_string()
            } else {
                format!("{field}: {}", e.inner())
            };
            ApiError::BadRequest(format!("the JSON body is invalid: {what}"))
        })?;
        json.end()
            .map_err(|e| ApiError::BadRequest(format!("the JSON body is invalid: {e}")))?;
        Ok(Self(Some(value)))
    }
}

/// The client's address: the socket peer, or, when the peer is a trusted
/// proxy, what `CloudFront-Viewer-Address` or `X-Forwarded-For` say.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |info| info.0.ip());
        Ok(Self(client_ip(
            peer,
            &parts.headers,
            &state.settings.server.trusted_proxies,
        )))
    }
}

/// Who is calling: a valid bearer token, or else the session's identity
/// (with the session); and when that credential ends (the token's `exp`,
/// the session's end), which nothing minted for it may outlive.
pub struct Caller {
    pub identity: Identity,
    pub session: Option<Session>,
    pub ends: Option<u64>,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(token) = bearer_token(&parts.headers)? {
            let identity = state.verify_token(token).await?;
            return Ok(Self {
                ends: identity.expires,
                identity,
                session: None,
            });
        }
        let session = parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or(ApiError::Unauthenticated)?;
        let identity = session
            .get::<String>(IDENTITY_KEY)
            .await?
            .and_then(|text| Identity::from_session(&text))
            .ok_or(ApiError::Unauthenticated)?;
        let ends: u64 = session.get(ENDS_KEY).await?.unwrap_or(0);
        if crate::minter::now() >= ends {
            session.flush().await?;
            return Err(ApiError::Unauthenticated);
        }
        touch(&session, state).await?;
        Ok(Self {
            identity,
            session: Some(session),
            ends: Some(ends),
        })
    }
}

/// Starts a session for `identity` under a fresh id (never the one the
/// browser came with), ending after `session.max_lifetime` at the latest and,
/// for a bearer token, when the token expires. Answers when it ends.
pub async fn start_session(
    session: &Session,
    state: &AppState,
    identity: &Identity,
) -> Result<u64, ApiError> {
    let now = crate::minter::now();
    let mut ends = now + state.settings.session.max_lifetime.as_secs();
    if identity.method == crate::auth::Method::Jwt {
        ends = ends.min(identity.expires.unwrap_or(now));
    }
    session.cycle_id().await?;
    session.insert(IDENTITY_KEY, identity.to_session()).await?;
    session.insert(SEEN_KEY, now).await?;
    session.insert(ENDS_KEY, ends).await?;
    session.save().await?;
    Ok(ends)
}

/// Marks the session active at most once a minute, so inactivity expiry
/// follows use without a store write per request.
async fn touch(session: &Session, state: &AppState) -> Result<(), ApiError> {
    let now = crate::minter::now();
    let seen: u64 = session.get(SEEN_KEY).await?.unwrap_or(0);
    let interval = (state.settings.session.inactivity.as_secs() / 10).clamp(1, 60);
    if now.saturating_sub(seen) >= interval {
        session.insert(SEEN_KEY, now).await?;
    }
    Ok(())
}

/// `Authorization: Bearer <token>`; any other Authorization is a 401.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::InvalidToken(crate::auth::jwt::JwtError::Malformed))?;
    match text.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(ApiError::InvalidToken(
            crate::auth::jwt::JwtError::Malformed,
        )),
    }
}
