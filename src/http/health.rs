//! `GET /healthz` (the process serves), `GET /readyz` (the active key can
//! sign, its key store reachable if it has one, and the session store answers) and `GET /metrics` (admin listener only).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::state::AppState;

pub async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    match readiness(&state).await {
        Ok(key) => Json(json!({
            "status": "ready",
            "key_pair_id": key,
            "session_store": state.store.kind(),
        }))
        .into_response(),
        Err(message) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": "not_ready", "message": message })),
        )
            .into_response(),
    }
}

/// Ready: not draining, and the session store answers (asked even while
/// draining, for `cfmint_session_store_up`). `Ok` carries the
/// active key pair id, `Err` why not.
async fn readiness(state: &AppState) -> Result<String, String> {
    let store = state.store.ping().await;
    state.metrics.set_store_up(store.is_ok());
    if state.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return Err("shutting down: draining requests".to_owned());
    }
    store.map_err(|reason| format!("the session store is unavailable: {reason}"))?;
    let ring = state.minter.ring();
    let active = ring.active();
    if let Some(remote) = active.remote_key()
        && !remote.is_connected()
    {
        return Err(format!(
            "the active key {} ({}) is not reachable in its key store",
            active.id(),
            active.source()
        ));
    }
    Ok(active.id().as_str().to_owned())
}

/// The metrics, with `cfmint_ready` evaluated as `/readyz` would answer now.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let ready = readiness(&state).await.is_ok();
    state.metrics.set_ready(ready);
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
