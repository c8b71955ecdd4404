//! `POST /mint` (CloudFront cookies for one granted path) and `POST /sign-urls`
//! (signed URLs for a bounded batch of granted files).

use std::net::{IpAddr, Ipv4Addr};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{Caller, ClientIp, JsonBody};
use super::state::AppState;
use crate::auth::Identity;
use crate::auth::path::RequestedPath;
use crate::config::Ipv6Binding;
use crate::minter::Minted;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MintRequest {
    path: Option<String>,
}

#[derive(Serialize)]
struct MintResponse<'a> {
    resource: &'a str,
    expires_at: u64,
    refresh_at: u64,
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
    let path = requested_path(state, identity, body.path)?;
    if !state.grants.allows(identity, &path) {
        return Err(ApiError::NotGranted);
    }
    let minted = sign(state, &path, bound_ip(state, ip)?).await?;
    let body = MintResponse {
        resource: &minted.resource,
        expires_at: minted.expires_at,
        refresh_at: minted.refresh_at,
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
}

#[derive(Serialize)]
#[serde(untagged)]
enum SignedItem {
    Signed {
        path: String,
        url: String,
        expires_at: u64,
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
    let bound = bound_ip(&state, ip)?;
    let mut items = Vec::with_capacity(body.urls.len());
    for raw in body.urls {
        let item = match sign_one(&state, &identity, &raw, bound).await {
            Ok(minted) => SignedItem::Signed {
                url: minted
                    .signed
                    .apply_to_url(&minted.url)
                    .map_err(|e| ApiError::SignerUnavailable(e.to_string()))?,
                path: raw,
                expires_at: minted.expires_at,
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

async fn sign_one(
    state: &AppState,
    identity: &Identity,
    raw: &str,
    bound: Option<Ipv4Addr>,
) -> Result<Minted, ApiError> {
    let path = RequestedPath::parse(raw, state.settings.mint.max_path_length)
        .map_err(|e| ApiError::InvalidPath(e.to_string()))?;
    if path.is_directory() {
        return Err(ApiError::InvalidPath(
            "a signed URL names one file, not a folder".into(),
        ));
    }
    if !state.grants.allows(identity, &path) {
        return Err(ApiError::NotGranted);
    }
    sign(state, &path, bound).await
}

fn check_limits(state: &AppState, ip: IpAddr, identity: &Identity) -> Result<(), ApiError> {
    state.limited(state.limits.mint_address(ip))?;
    state.limited(state.limits.mint_identity(&identity.sub))
}

/// The body's path, or the configured default with `{sub}` filled in.
fn requested_path(
    state: &AppState,
    identity: &Identity,
    path: Option<String>,
) -> Result<RequestedPath, ApiError> {
    let mint = &state.settings.mint;
    let path = match (path, &mint.default_path) {
        (Some(path), _) => path,
        (None, Some(default)) => default.replace("{sub}", &identity.sub),
        (None, None) => return Err(ApiError::BadRequest("path is required".into())),
    };
    RequestedPath::parse(&path, mint.max_path_length)
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

async fn sign(
    state: &AppState,
    path: &RequestedPath,
    ip: Option<Ipv4Addr>,
) -> Result<Minted, ApiError> {
    let minted = state
        .minter
        .mint(path, ip)
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
