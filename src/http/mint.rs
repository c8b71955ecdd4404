//! `POST /mint` (CloudFront cookies for one granted path) and `POST /sign-urls`
//! (signed URLs for a bounded batch of granted files).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer, Serialize};

use super::error::ApiError;
use super::extract::{Caller, ClientIp, JsonBody};
use super::state::AppState;
use crate::auth::Identity;
use crate::auth::authorize::{Decision, Item, Purpose};
use crate::auth::path::{self, Match, RequestedPath};
use crate::auth::proof::Scope;
use crate::config::{AuthorizeMode, Ipv6Binding};
use crate::minter::{self, Minted};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MintRequest {
    path: Option<String>,
    #[serde(rename = "match")]
    shape: Option<Match>,
    /// Seconds, within `mint.min_ttl` and `mint.max_ttl`.
    #[serde(default, deserialize_with = "whole_seconds")]
    ttl: Option<u64>,
    /// How the signature reaches the player.
    deliver: Option<Deliver>,
}

/// `"deliver"` in `/mint`: the `CloudFront-*` cookies, the signed query
/// string a player appends to every request under the path, or both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Deliver {
    #[default]
    Cookies,
    Query,
    Both,
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
    /// `Policy=…&Signature=…&Key-Pair-Id=…`, for `"deliver": "query"|"both"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    query: Option<String>,
    /// For `/playlists/...?token=` (`[playlists]` configured, query delivery).
    #[serde(skip_serializing_if = "Option::is_none")]
    playlist_token: Option<String>,
}

/// Session key holding when the cookies last minted in this session expire,
/// so the next mint is known to be a refresh and how early it came.
const MINTED_UNTIL_KEY: &str = "minted_until";

pub async fn mint(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    caller: Result<Caller, ApiError>,
    JsonBody(body): JsonBody<MintRequest>,
) -> Result<Response, ApiError> {
    let Caller {
        identity,
        session,
        ends,
    } = caller.inspect_err(|error| unauthenticated(&state, "mint", error))?;
    let outcome = mint_cookies(&state, ip, &identity, ends, body.unwrap_or_default()).await;
    match outcome {
        Ok((response, expires_at)) => {
            state.metrics.minted();
            match session {
                Some(session) => record_refresh(&state, &session, expires_at).await?,
                // A bearer caller's previous cookies, if it carries them.
                None => state.metrics.mint_kind(
                    previous_cookies(&headers)
                        .map(|until| Duration::from_secs(until.saturating_sub(minter::now()))),
                ),
            }
            Ok(response)
        }
        Err(error) => {
            state.metrics.mint_outcome("mint", error.code());
            Err(error)
        }
    }
}

/// The mint event for a caller who could not be authenticated (a missing,
/// expired or forged token, no session): why, with no subject.
fn unauthenticated(state: &AppState, route: &'static str, error: &ApiError) {
    state.metrics.mint_outcome(route, error.code());
    tracing::info!(
        route,
        outcome = error.code(),
        reason = %error,
        "mint"
    );
}

/// When the CloudFront cookies the request carries expire: from
/// `CloudFront-Expires` (canned) or the `DateLessThan` of
/// `CloudFront-Policy` (custom). Not verified: it only tells a refresh from
/// a first mint in the metrics.
fn previous_cookies(headers: &HeaderMap) -> Option<u64> {
    let pairs = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='));
    for (name, value) in pairs {
        match name {
            "CloudFront-Expires" => return value.parse().ok(),
            "CloudFront-Policy" => {
                let json = crate::signer::decode_base64(value).ok()?;
                return crate::signer::parse_policy(&json).ok().map(|p| p.expires);
            }
            _ => {}
        }
    }
    None
}

/// Counts a session's mint as its first or a refresh, with how long its
/// previous cookies still had (0: they had expired), and remembers this one.
async fn record_refresh(
    state: &AppState,
    session: &tower_sessions::Session,
    expires_at: u64,
) -> Result<(), ApiError> {
    let previous: Option<u64> = session.get(MINTED_UNTIL_KEY).await?;
    state
        .metrics
        .mint_kind(previous.map(|until| Duration::from_secs(until.saturating_sub(minter::now()))));
    if previous != Some(expires_at) {
        session.insert(MINTED_UNTIL_KEY, expires_at).await?;
    }
    Ok(())
}

/// Mints the cookies for one request by a credential ending at `ends`; also
/// answers when they expire. Logs one event, minted or refused.
pub(super) async fn mint_cookies(
    state: &AppState,
    ip: IpAddr,
    identity: &Identity,
    ends: Option<u64>,
    body: MintRequest,
) -> Result<(Response, u64), ApiError> {
    let requested = body.path.clone();
    let outcome = mint_checked(state, ip, identity, ends, body).await;
    match &outcome {
        Ok((_, minted, shape)) => log_signed(state, identity, "mint", minted, *shape),
        Err(error) => {
            let requested = requested.or_else(|| state.settings.mint.default_path.clone());
            log_refused(
                state,
                identity,
                "mint",
                requested.as_deref().unwrap_or(""),
                error,
            );
        }
    }
    outcome.map(|(response, minted, _)| (response, minted.expires_at))
}

async fn mint_checked(
    state: &AppState,
    ip: IpAddr,
    identity: &Identity,
    ends: Option<u64>,
    body: MintRequest,
) -> Result<(Response, Minted, Match), ApiError> {
    check_limits(state, ip, identity).await?;
    let ttl = lifetime(state, body.ttl)?;
    let path = requested_path(state, identity, body.path, body.shape)?;
    let access = check_access(state, identity, Purpose::Mint, &[&path]).await;
    let scope = match access.into_iter().next().expect("one verdict per path") {
        Ok(scope) => scope,
        // For cookies, "no such file" is a refusal like any other.
        Err(ApiError::NoSuchFile) => return Err(ApiError::Refused("not_found".into())),
        Err(error) => return Err(error),
    };
    let request = minter::MintRequest {
        ip: bound_ip(state, ip)?,
        ttl,
        not_after: ends,
        ..minter::MintRequest::new(&path, &scope)
    };
    let minted = sign(state, request).await?;
    let deliver = body.deliver.unwrap_or_default();
    let query = (deliver != Deliver::Cookies).then(|| signed_query(&minted.signed));
    let playlist_token = match state.playlists.as_ref().filter(|_| query.is_some()) {
        Some(playlists) => Some(
            playlists
                .issue_token(
                    &state.settings.cloudfront.base_url,
                    identity,
                    &path,
                    &scope,
                    ends,
                )
                .map_err(|widening| ApiError::WidensGrant(widening.to_string()))?,
        ),
        None => None,
    };
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
        query,
        playlist_token,
    };
    let mut response = Json(&body).into_response();
    let max_age = minted.expires_at.saturating_sub(crate::minter::now());
    let headers = response.headers_mut();
    if deliver != Deliver::Query {
        for cookie in state.cookies.minted(&minted.signed, max_age) {
            headers.append(header::SET_COOKIE, cookie);
        }
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok((response, minted, path.shape()))
}

/// The signing parameters as a query string, in the order AWS's signers
/// write them: `Policy=…&Signature=…&Key-Pair-Id=…[&Hash-Algorithm=SHA256]`.
pub(super) fn signed_query(signed: &crate::signer::SignedPolicy) -> String {
    let mut query = String::with_capacity(512);
    for (name, value) in signed.query_params() {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(name);
        query.push('=');
        query.push_str(&value);
    }
    query
}

/// The event for a signature made: what was signed, until when, with which
/// key. Never the signature or the cookies.
pub(super) fn log_signed(
    state: &AppState,
    identity: &Identity,
    route: &'static str,
    minted: &Minted,
    shape: Match,
) {
    tracing::info!(
        route,
        sub = state.settings.log_subject.show(&identity.sub),
        resource = %minted.resource,
        r#match = shape.as_str(),
        policy = if minted.signed.is_custom() { "custom" } else { "canned" },
        expires_at = minted.expires_at,
        key_pair_id = minted.signed.key_pair_id().as_str(),
        outcome = "signed",
        "mint"
    );
}

/// The event for a refusal: what was asked for, and why not.
pub(super) fn log_refused(
    state: &AppState,
    identity: &Identity,
    route: &'static str,
    requested: &str,
    error: &ApiError,
) {
    tracing::info!(
        route,
        sub = state.settings.log_subject.show(&identity.sub),
        path = %requested.escape_debug(),
        outcome = error.code(),
        reason = %error,
        "mint"
    );
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignUrlsRequest {
    urls: Vec<String>,
    /// Seconds, within `mint.min_ttl` and `mint.max_ttl`.
    #[serde(default, deserialize_with = "whole_seconds")]
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
    caller: Result<Caller, ApiError>,
    JsonBody(body): JsonBody<SignUrlsRequest>,
) -> Result<Response, ApiError> {
    let Caller { identity, ends, .. } =
        caller.inspect_err(|error| unauthenticated(&state, "sign_urls", error))?;
    let body =
        body.ok_or_else(|| ApiError::BadRequest("send {\"urls\": [\"/a.pdf\", ...]}".into()))?;
    let max = state.settings.mint.max_sign_urls;
    if body.urls.is_empty() || body.urls.len() > max {
        return Err(ApiError::BadRequest(format!(
            "urls must list 1 to {max} paths"
        )));
    }
    check_limits(&state, ip, &identity).await?;
    let ttl = lifetime(&state, body.ttl)?;
    let ip = bound_ip(&state, ip)?;
    let max_len = state.settings.mint.max_path_length;
    let parsed: Vec<Result<(RequestedPath, Option<&str>), ApiError>> =
        body.urls.iter().map(|raw| url_item(raw, max_len)).collect();
    let paths: Vec<&RequestedPath> = parsed.iter().flatten().map(|(path, _)| path).collect();
    let mut access = check_access(&state, &identity, Purpose::SignUrls, &paths)
        .await
        .into_iter();
    let mut items = Vec::with_capacity(body.urls.len());
    for (raw, parsed) in body.urls.iter().zip(parsed) {
        let checked = parsed.and_then(|(path, query)| {
            let scope = access.next().expect("one verdict per path")?;
            Ok((path, query, scope))
        });
        let signed = match checked {
            Ok((path, query, scope)) => {
                let request = minter::MintRequest {
                    query,
                    ip,
                    ttl,
                    not_after: ends,
                    ..minter::MintRequest::new(&path, &scope)
                };
                match sign(&state, request).await {
                    Ok(minted) => Ok(minted),
                    // A refusal of this item alone; the others are signed.
                    Err(error @ (ApiError::WidensGrant(_) | ApiError::CredentialExpiring(_))) => {
                        Err(error)
                    }
                    Err(error) => return Err(error),
                }
            }
            Err(error) => Err(error),
        };
        let item = match signed {
            Ok(minted) => {
                log_signed(&state, &identity, "sign_urls", &minted, Match::Exact);
                SignedItem::Signed {
                    url: minted
                        .signed
                        .apply_to_url(&minted.url)
                        .map_err(|e| ApiError::SignerUnavailable(e.to_string()))?,
                    path: raw.clone(),
                    expires_at: minted.expires_at,
                    expires_in: minted.expires_at.saturating_sub(minted.issued_at),
                }
            }
            Err(error) => {
                log_refused(&state, &identity, "sign_urls", raw, &error);
                SignedItem::Refused {
                    path: raw.clone(),
                    error: error.code(),
                    message: error.to_string(),
                }
            }
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

/// One `/sign-urls` item, checked as [`path::url_item`] says.
fn url_item(raw: &str, max_len: usize) -> Result<(RequestedPath, Option<&str>), ApiError> {
    path::url_item(raw, max_len).map_err(ApiError::InvalidPath)
}

/// Whether each path may be signed, in order, and within what (the scope
/// the grant proof holds its signature to): the configured grants, and the
/// authorization callback as `authorize.mode` says (`all`: only what a grant
/// allows is asked about, and the callback must allow it too, so the scope
/// is both; `any`: what no grant allows is asked about, and an answer
/// grants that item alone). One callback call covers every path.
pub(super) async fn check_access(
    state: &AppState,
    identity: &Identity,
    purpose: Purpose,
    paths: &[&RequestedPath],
) -> Vec<Result<Scope, ApiError>> {
    let granted: Vec<bool> = paths
        .iter()
        .map(|path| state.grants.allows(identity, path))
        .collect();
    let mut verdicts: Vec<Result<Scope, ApiError>> = granted
        .iter()
        .map(|&granted| {
            granted
                .then(|| state.grants.scope_for(identity))
                .ok_or(ApiError::NotGranted)
        })
        .collect();
    let Some(authorizer) = &state.authorizer else {
        return verdicts;
    };
    let asked: Vec<usize> = (0..paths.len())
        .filter(|&i| granted[i] == (authorizer.mode() == AuthorizeMode::All))
        .collect();
    if asked.is_empty() {
        return verdicts;
    }
    let items: Vec<Item<'_>> = asked
        .iter()
        .map(|&i| Item {
            path: paths[i].as_str(),
            shape: paths[i].shape(),
        })
        .collect();
    match authorizer.decide(identity, purpose, &items).await {
        Ok(decisions) => {
            for (i, decision) in asked.into_iter().zip(decisions) {
                let answered = vec![paths[i].as_pattern()];
                verdicts[i] = match decision {
                    Decision::Allow => Ok(match authorizer.mode() {
                        AuthorizeMode::All => state.grants.scope_for(identity).and(answered),
                        AuthorizeMode::Any => Scope::any_of(answered),
                    }),
                    Decision::Deny(reason) => Err(match reason.as_str() {
                        "not_found" => ApiError::NoSuchFile,
                        "not_granted" => ApiError::NotGranted,
                        _ => ApiError::Refused(reason),
                    }),
                };
            }
        }
        Err(error) => {
            for i in asked {
                verdicts[i] = Err(ApiError::AuthorizerUnavailable(error.to_string()));
            }
        }
    }
    verdicts
}

/// The lifetime a caller asked for, within `mint.min_ttl` and `mint.max_ttl`.
/// Seconds as any JSON writer may put them: `600`, or `600.0` (an integer
/// to JSON Schema too); a fraction, a negative number or a string is refused.
fn whole_seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    use serde::de::{Error, Unexpected, Visitor};

    struct WholeSeconds;

    impl<'de> Visitor<'de> for WholeSeconds {
        type Value = Option<u64>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a whole number of seconds")
        }

        fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<Self::Value, D::Error> {
            inner.deserialize_any(self)
        }

        fn visit_u64<E: Error>(self, seconds: u64) -> Result<Self::Value, E> {
            Ok(Some(seconds))
        }

        fn visit_i64<E: Error>(self, seconds: i64) -> Result<Self::Value, E> {
            u64::try_from(seconds)
                .map(Some)
                .map_err(|_| E::invalid_value(Unexpected::Signed(seconds), &self))
        }

        fn visit_f64<E: Error>(self, seconds: f64) -> Result<Self::Value, E> {
            if seconds.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(&seconds) {
                Ok(Some(seconds as u64))
            } else {
                Err(E::invalid_value(Unexpected::Float(seconds), &self))
            }
        }
    }

    deserializer.deserialize_option(WholeSeconds)
}

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

pub(super) async fn check_limits(
    state: &AppState,
    ip: IpAddr,
    identity: &Identity,
) -> Result<(), ApiError> {
    state.limited(state.limits.mint_address(ip).await)?;
    state.limited(state.limits.mint_identity(&identity.sub).await)
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
pub(super) fn bound_ip(state: &AppState, ip: IpAddr) -> Result<Option<Ipv4Addr>, ApiError> {
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

pub(super) async fn sign(
    state: &AppState,
    request: minter::MintRequest<'_>,
) -> Result<Minted, ApiError> {
    let minted = state.minter.mint(request).await.map_err(ApiError::from)?;
    match minted.signing {
        None => state.metrics.signature_cache(true),
        Some(elapsed) => {
            state.metrics.signature_cache(false);
            state.metrics.signing(elapsed);
        }
    }
    Ok(minted)
}
