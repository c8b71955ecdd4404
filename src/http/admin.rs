//! The admin listener's actions: `POST /admin/sessions/revoke` ends every
//! session of a subject, on every replica sharing the store; `GET
//! /admin/keys` reports the key ring this replica signs with. A state
//! change takes a JSON body and no cross-site request: a page open in a
//! browser on the host must not be able to end anyone's sessions.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use secrecy::ExposeSecret;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::extract::bearer_token;
use super::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    sub: String,
}

pub async fn revoke_sessions(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    admit(state.settings.server.admin_token.as_ref(), peer, &headers)?;
    same_site_json(&headers)?;
    let request: RevokeRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("send {{\"sub\": \"...\"}}: {e}")))?;
    if request.sub.is_empty() {
        return Err(ApiError::BadRequest("sub is empty".into()));
    }
    let revoked = state
        .store
        .revoke(&request.sub)
        .await
        .map_err(|e| ApiError::RevocationUnconfirmed(e.to_string()))?;
    tracing::info!(
        sub = state.settings.log_subject.show(&request.sub),
        revoked,
        "sessions revoked"
    );
    Ok(Json(
        serde_json::json!({ "sub": request.sub, "revoked": revoked }),
    ))
}

/// The ring signing now: the active key pair id, every key with where it
/// is held, and the version of the ring document it came from. Key ids,
/// algorithms and locations only; never key material.
pub async fn keys(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    admit(state.settings.server.admin_token.as_ref(), peer, &headers)?;
    let ring = state.minter.ring();
    let keys: Vec<_> = ring
        .keys()
        .iter()
        .map(|key| {
            let remote = key.remote_key();
            serde_json::json!({
                "key_pair_id": key.id().as_str(),
                "active": key.id() == ring.active().id(),
                "algorithm": key.algorithm().map(|a| a.to_string()),
                "source": key.source().to_string(),
                "connected": remote.map(|remote| remote.is_connected()),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({
        "active": ring.active().id().as_str(),
        "ring_source": state.settings.keys.ring.as_ref().map(|s| s.to_string()),
        "ring_version": state.minter.ring_version().as_deref(),
        "keys": keys,
    })))
}

/// A state-changing admin request: `Content-Type: application/json` (which
/// a cross-site form or a simple `fetch` cannot send without a preflight,
/// and the admin listener answers no preflight), and nothing a browser adds
/// to a request from a page: no `Origin`, no `Sec-Fetch-Site` other than
/// `none`. `cfmint sessions revoke`, curl and scripts send neither.
fn same_site_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let from_a_page = headers.contains_key(header::ORIGIN)
        || headers
            .get("sec-fetch-site")
            .is_some_and(|site| site.as_bytes() != b"none");
    if from_a_page {
        return Err(ApiError::OriginNotAllowed);
    }
    Ok(())
}

/// Headers a proxy adds when it forwards a request: with one of them, a
/// loopback peer is a proxy in front of someone else.
const FORWARDED: [&str; 5] = [
    "forwarded",
    "x-forwarded-for",
    "x-real-ip",
    "cloudfront-viewer-address",
    "true-client-ip",
];

/// With `server.admin_token`, the caller must present it as a bearer token
/// (compared in constant time). Without one, only loopback peers may act,
/// and not through a proxy (a forwarded request may come from anywhere).
fn admit(
    token: Option<&secrecy::SecretString>,
    peer: std::net::SocketAddr,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    match token {
        Some(token) => {
            let presented = bearer_token(headers).ok().flatten().unwrap_or_default();
            if bool::from(presented.as_bytes().ct_eq(token.expose_secret().as_bytes())) {
                Ok(())
            } else {
                Err(ApiError::AdminUnauthorized)
            }
        }
        None if peer.ip().to_canonical().is_loopback()
            && !FORWARDED.iter().any(|name| headers.contains_key(*name)) =>
        {
            Ok(())
        }
        None => Err(ApiError::AdminTokenRequired),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;
    use secrecy::SecretString;

    use super::{ApiError, admit};

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
        headers
    }

    #[test]
    fn admin_actions_need_the_token_or_a_loopback_caller() {
        let loopback = "127.0.0.1:5000".parse().unwrap();
        let mapped = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        let remote = "10.1.2.3:5000".parse().unwrap();
        let none = HeaderMap::new();
        assert!(admit(None, loopback, &none).is_ok());
        assert!(admit(None, mapped, &none).is_ok());
        assert!(matches!(
            admit(None, remote, &bearer("anything-at-all-123")),
            Err(ApiError::AdminTokenRequired)
        ));
        let token = SecretString::from("the-admin-token-0123");
        assert!(admit(Some(&token), remote, &bearer("the-admin-token-0123")).is_ok());
        for headers in [
            none,
            bearer("the-admin-token-0124"),
            bearer("the-admin-token-012"),
        ] {
            // With a token set, even loopback callers must present it.
            assert!(matches!(
                admit(Some(&token), loopback, &headers),
                Err(ApiError::AdminUnauthorized)
            ));
        }
    }

    #[test]
    fn without_a_token_a_forwarded_request_is_not_local() {
        let loopback = "127.0.0.1:5000".parse().unwrap();
        for name in super::FORWARDED {
            let mut headers = HeaderMap::new();
            headers.insert(name, "203.0.113.7".parse().unwrap());
            assert!(
                matches!(
                    admit(None, loopback, &headers),
                    Err(ApiError::AdminTokenRequired)
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn a_state_change_takes_json_from_no_page() {
        fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.insert(*name, value.parse().unwrap());
            }
            headers
        }
        let json = ("content-type", "application/json");
        assert!(super::same_site_json(&headers(&[json])).is_ok());
        assert!(super::same_site_json(&headers(&[json, ("sec-fetch-site", "none")])).is_ok());
        for (pairs, expected) in [
            (
                &[("content-type", "text/plain")][..],
                "unsupported_media_type",
            ),
            (&[][..], "unsupported_media_type"),
            (
                &[json, ("origin", "https://evil.test")][..],
                "origin_not_allowed",
            ),
            (&[json, ("origin", "null")][..], "origin_not_allowed"),
            (
                &[json, ("sec-fetch-site", "cross-site")][..],
                "origin_not_allowed",
            ),
            (
                &[json, ("sec-fetch-site", "same-origin")][..],
                "origin_not_allowed",
            ),
        ] {
            let error = super::same_site_json(&headers(pairs)).unwrap_err();
            assert_eq!(error.code(), expected, "{pairs:?}");
        }
    }
}
