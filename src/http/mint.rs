//! `POST /mint` (CloudFront cookies for one granted path) and `POST /sign-urls`
//! (signed URLs for a bounded batch of granted files).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{Caller, ClientIp, JsonBody};
use super::state::AppState;
use crate::auth::Identity;
use crate::auth::path::{self, Match, RequestedPath};
use crate::config::Ipv6Binding;
use crate::minter::{self, Minted};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MintRequest {
    path: Option<String>,
    #[serde(rename = "match")]
    shape: Option<Match>,
    /// Seconds, within `mint.min_ttl` and `mint.max_ttl`.
    ttl: Option<u64>,
}

#[derive(Serialize)]
struct MintResponse<'a> {
    resource: &'a str,
    #[serde(rename = "match")]
    shape: &'static str,
    expires_at: u64,
    refresh_at: u64,
    /// Seconds from now, so a client never compares its clock with ours.
    expires_in: u64,
    refresh_in: u64,
    key_pair_id: &'a str,
    policy: &'static str,
}

pub async fn mint(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Caller { identity }: Caller,
    JsonBody(body): JsonBody<MintRequest>,
) -> Result<Response, ApiError> {
    let outcome = mint_cookies(&state, ip, &identity, body.unwrap_or_default()).await;
    match &outcome {
        Ok(_) => state.metrics.minted(),
        Err(error) => state.metrics.mint_outcome("mint", error.code()),
    }
    outcome
}

pub(super) async fn mint_cookies(
    state: &AppState,
    ip: IpAddr,
    identity: &Identity,
    body: MintRequest,
) -> Result<Response, ApiError> {
    check_limits(state, ip, identity)?;
    let ttl = lifetime(state, body.ttl)?;
    let path = requested_path(state, identity, body.path, body.shape)?;
    if !state.grants.allows(identity, &path) {
        return Err(ApiError::NotGranted);
    }
    let request = minter::MintRequest {
        ip: bound_ip(state, ip)?,
        ttl,
        ..minter::MintRequest::new(&path)
    };
    let minted = sign(state, request).await?;
    let body = MintResponse {
        resource: &minted.resource,
        shape: path.shape().as_str(),
        expires_at: minted.expires_at,
        refresh_at: minted.refresh_at,
        expires_in: minted.expires_at.saturating_sub(minted.issued_at),
        refresh_in: minted.refresh_at.saturating_sub(minted.issued_at),
        key_pair_id: minted.signed.key_pair_id().as_str(),
        policy: if minted.signed.is_custom() {
            "custom"
        } else {
            "canned"
        },
    };
    let mut response = Json(&body).into_response();
    let max_age = minted.expires_at.saturating_sub(crate::minter::now());
    let headers = response.headers_mut();
    for cookie in state.cookies.minted(&minted.signed, max_age) {
        headers.append(header::SET_COOKIE, cookie);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignUrlsRequest {
    urls: Vec<String>,
    /// Seconds, within `mint.min_ttl` and `mint.max_ttl`.
    ttl: Option<u64>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum SignedItem {
    Signed {
        path: String,
        url: String,
        expires_at: u64,
        expires_in: u64,
    },
    Refused {
        path: String,
        error: &'static str,
        message: String,
    },
}

pub async fn sign_urls(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Caller { identity }: Caller,
    JsonBody(body): JsonBody<SignUrlsRequest>,
) -> Result<Response, ApiError> {
    let body =
        body.ok_or_else(|| ApiError::BadRequest("send {\"urls\": [\"/a.pdf\", ...]}".into()))?;
    let max = state.settings.mint.max_sign_urls;
    if body.urls.is_empty() || body.urls.len() > max {
        return Err(ApiError::BadRequest(format!(
            "urls must list 1 to {max} paths"
        )));
    }
    check_limits(&state, ip, &identity)?;
    let ttl = lifetime(&state, body.ttl)?;
    let bound = bound_ip(&state, ip)?;
    let mut items = Vec::with_capacity(body.urls.len());
    for raw in body.urls {
        let item = match sign_one(&state, &identity, &raw, bound, ttl).await {
            Ok(minted) => SignedItem::Signed {
                url: minted
                    .signed
                    .apply_to_url(&minted.url)
                    .map_err(|e| ApiError::SignerUnavailable(e.to_string()))?,
                path: raw,
                expires_at: minted.expires_at,
                expires_in: minted.expires_at.saturating_sub(minted.issued_at),
            },
            Err(error @ (ApiError::InvalidPath(_) | ApiError::NotGranted)) => SignedItem::Refused {
                path: raw,
                error: error.code(),
                message: error.to_string(),
            },
            Err(error) => return Err(error),
        };
        let label = match &item {
            SignedItem::Signed { .. } => "signed",
            SignedItem::Refused { error, .. } => error,
        };
        state.metrics.mint_outcome("sign_urls", label);
        items.push(item);
    }
    let mut response = Json(serde_json::json!({ "urls": items })).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// One `/sign-urls` item: a file path with an optional query string, which is
/// signed as part of the URL; grants look at the path alone.
async fn sign_one(
    state: &AppState,
    identity: &Identity,
    raw: &str,
    ip: Option<Ipv4Addr>,
    ttl: Option<Duration>,
) -> Result<Minted, ApiError> {
    let max_len = state.settings.mint.max_path_length;
    if raw.len() > max_len {
        return Err(ApiError::InvalidPath(format!(
            "the URL path and query are longer than {max_len} bytes"
        )));
    }
    let (path, query) = match raw.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (raw, None),
    };
    let path =
        RequestedPath::parse(path, max_len).map_err(|e| ApiError::InvalidPath(e.to_string()))?;
    if path.signs_below() {
        return Err(ApiError::InvalidPath(
            "a signed URL names one file, not a folder".into(),
        ));
    }
    if let Some(query) = query {
        path::check_query(query).map_err(ApiError::InvalidPath)?;
    }
    if !state.grants.allows(identity, &path) {
        return Err(ApiError::NotGranted);
    }
    let request = minter::MintRequest {
        query,
        ip,
        ttl,
        ..minter::MintRequest::new(&path)
    };
    sign(state, request).await
}

/// The lifetime a caller asked for, within `mint.min_ttl` and `mint.max_ttl`.
fn lifetime(state: &AppState, ttl: Option<u64>) -> Result<Option<Duration>, ApiError> {
    let Some(seconds) = ttl else {
        return Ok(None);
    };
    let mint = &state.settings.mint;
    let (min, max) = (mint.min_ttl.as_secs(), mint.max_ttl.as_secs());
    if !(min..=max).contains(&seconds) {
        return Err(ApiError::BadRequest(format!(
            "ttl must be between {min} and {max} seconds"
        )));
    }
    Ok(Some(Duration::from_secs(seconds)))
}

fn check_limits(state: &AppState, ip: IpAddr, identity: &Identity) -> Result<(), ApiError> {
    state.limited(state.limits.mint_address(ip))?;
    state.limited(state.limits.mint_identity(&identity.sub))
}

/// The body's path, or the configured default with `{sub}` filled in, in the
/// shape asked for.
fn requested_path(
    state: &AppState,
    identity: &Identity,
    path: Option<String>,
    shape: Option<Match>,
) -> Result<RequestedPath, ApiError> {
    let mint = &state.settings.mint;
    let path = match (path, &mint.default_path) {
        (Some(path), _) => path,
        (None, Some(default)) => default.replace("{sub}", &identity.sub),
        (None, None) => return Err(ApiError::BadRequest("path is required".into())),
    };
    RequestedPath::with_match(&path, mint.max_path_length, shape)
        .map_err(|e| ApiError::InvalidPath(e.to_string()))
}

/// The address to bind the policy to, when IP binding is on.
fn bound_ip(state: &AppState, ip: IpAddr) -> Result<Option<Ipv4Addr>, ApiError> {
    let mint = &state.settings.mint;
    if !mint.ip_binding {
        return Ok(None);
    }
    match (ip.to_canonical(), mint.ipv6) {
        (IpAddr::V4(v4), _) => Ok(Some(v4)),
        (IpAddr::V6(_), Ipv6Binding::Unbound) => Ok(None),
        (IpAddr::V6(_), Ipv6Binding::Refuse) => Err(ApiError::Ipv6Refused),
    }
}

async fn sign(state: &AppState, request: minter::MintRequest<'_>) -> Result<Minted, ApiError> {
    let minted = state
        .minter
        .mint(request)
        .await
        .map_err(|e| ApiError::SignerUnavailable(e.to_string()))?;
    match minted.signing {
        None => state.metrics.signature_cache(true),
        Some(elapsed) => {
            state.metrics.signature_cache(false);
            state.metrics.signing(elapsed);
        }
    }
    Ok(minted)
}
