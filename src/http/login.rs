//! `POST /login` (password or bearer token → new session, id rotated) and
//! `POST /logout` (session destroyed, CloudFront cookies cleared).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;
use zeroize::Zeroizing;

use super::error::ApiError;
use super::extract::{ClientIp, IDENTITY_KEY, JsonBody, bearer_token, start_session};
use super::state::AppState;
use crate::auth::Identity;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    username: String,
    password: Zeroizing<String>,
}

pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: Session,
    headers: HeaderMap,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    state.limited(state.limits.login_address(ip).await)?;
    let identity = match bearer_token(&headers)? {
        Some(token) => {
            let identity = state.verify_token(token).await?;
            state.limited(state.limits.login_identity(&identity.sub).await)?;
            identity
        }
        None => {
            let body = body.ok_or(ApiError::NoCredentials)?;
            state.limited(state.limits.login_identity(&body.username).await)?;
            check_password(&state, body).await?
        }
    };

    start_session(&session, &state, &identity).await?;
    tracing::info!(
        sub = state.settings.log_subject.show(&identity.sub),
        method = ?identity.method,
        "logged in"
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// argon2 runs on the blocking pool; unknown users cost the same as wrong passwords.
async fn check_password(state: &AppState, body: LoginRequest) -> Result<Identity, ApiError> {
    if state.users.is_none() {
        return Err(ApiError::InvalidCredentials);
    }
    let state = state.clone();
    let verified = tokio::task::spawn_blocking(move || {
        let users = state.users.as_ref()?;
        users.verify(&body.username, &body.password)
    })
    .await
    .map_err(|e| ApiError::SignerUnavailable(format!("password check failed: {e}")))?;
    verified.ok_or(ApiError::InvalidCredentials)
}

/// With `auth.oidc.end_session`, an OIDC session's logout also answers
/// `{"end_session_url"}`: where the app sends the browser to end the
/// provider's session too.
pub async fn logout(State(state): State<AppState>, session: Session) -> Result<Response, ApiError> {
    let identity = session
        .get::<String>(IDENTITY_KEY)
        .await?
        .and_then(|text| Identity::from_session(&text));
    session.flush().await?;
    let end_session = match (&state.oidc, identity) {
        (Some(oidc), Some(identity)) if identity.method == crate::auth::Method::Oidc => {
            oidc.end_session_url().await?
        }
        _ => None,
    };
    let mut response = match end_session {
        Some(url) => Json(serde_json::json!({ "end_session_url": url })).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    };
    for cookie in state.cookies.cleared() {
        response
            .headers_mut()
            .append(header::SET_COOKIE, cookie.clone());
    }
    Ok(response)
}
