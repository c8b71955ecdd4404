//! `GET /login/oidc` (redirect to the identity provider) and `GET /callback`
//! (code → verified ID token → new session, id rotated → back to an allowed
//! return URL).

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::error::ApiError;
use super::extract::{ClientIp, start_session};
use super::state::AppState;
use crate::auth::oidc::{OidcError, Pending};

/// The login under way, between the redirect and the callback.
const PENDING_KEY: &str = "oidc";

#[derive(Deserialize)]
pub struct Begin {
    return_to: Option<String>,
}

pub async fn begin(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: Session,
    Query(query): Query<Begin>,
) -> Result<Response, ApiError> {
    let oidc = state.oidc.as_ref().ok_or(ApiError::NotFound)?;
    // Each login costs the provider a discovery and a code exchange.
    state.limited(state.limits.login_address(ip).await)?;
    let return_to = oidc.return_url(query.return_to.as_deref())?;
    let (url, pending) = oidc.begin(return_to).await?;
    session.insert(PENDING_KEY, pending).await?;
    session.save().await?;
    Ok(Redirect::to(&url).into_response())
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

pub async fn callback(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: Session,
    Query(query): Query<Callback>,
) -> Result<Response, ApiError> {
    let oidc = state.oidc.as_ref().ok_or(ApiError::NotFound)?;
    // Single use: gone before anything is checked.
    let pending: Option<Pending> = session.remove(PENDING_KEY).await?;
    session.save().await?;
    let pending = pending.ok_or(OidcError::State)?;
    if let Some(error) = query.error {
        return Err(OidcError::Code(format!("the provider answered {error}")).into());
    }
    let (Some(code), Some(returned_state)) = (query.code, query.state) else {
        return Err(ApiError::BadRequest(
            "the callback needs code and state".into(),
        ));
    };
    let identity = oidc.finish(&pending, &code, &returned_state).await?;

    let ends = start_session(&session, &state, &identity).await?;
    tracing::info!(
        sub = state.settings.log_subject.show(&identity.sub),
        method = ?identity.method,
        "logged in"
    );
    if !oidc.mint_on_login() {
        return Ok(Redirect::to(&pending.return_to).into_response());
    }
    // The login stands even if this mint doesn't; the app, told why in the
    // return URL, can mint later.
    let minted =
        super::mint::mint_cookies(&state, ip, &identity, Some(ends), Default::default()).await;
    match minted {
        Ok((minted, _)) => {
            let mut response = Redirect::to(&pending.return_to).into_response();
            for cookie in minted.headers().get_all(header::SET_COOKIE) {
                response
                    .headers_mut()
                    .append(header::SET_COOKIE, cookie.clone());
            }
            Ok(response)
        }
        Err(error) => {
            tracing::warn!(outcome = error.code(), %error, "mint at login refused");
            let to = with_mint_error(&pending.return_to, error.code());
            Ok(Redirect::to(&to).into_response())
        }
    }
}

/// The return URL with `cfmint_mint_error=<code>` added to its query (before
/// any fragment), so the app knows it came back without CloudFront cookies.
fn with_mint_error(return_to: &str, code: &str) -> String {
    let (url, fragment) = match return_to.split_once('#') {
        Some((url, fragment)) => (url, Some(fragment)),
        None => (return_to, None),
    };
    let separator = if url.contains('?') { '&' } else { '?' };
    let mut to = format!("{url}{separator}cfmint_mint_error={code}");
    if let Some(fragment) = fragment {
        to.push('#');
        to.push_str(fragment);
    }
    to
}
