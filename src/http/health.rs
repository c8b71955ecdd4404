//! `GET /healthz` (the process serves), `GET /readyz` (a key is loaded and the
//! session store answers) and `GET /metrics` (admin listener only).

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
    if state.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "error": "not_ready",
                "message": "shutting down: draining requests",
            })),
        )
            .into_response();
    }
    let key = state.minter.ring().active().id().as_str().to_owned();
    match state.store.ping().await {
        Ok(()) => Json(json!({
            "status": "ready",
            "key_pair_id": key,
            "session_store": state.store.kind(),
        }))
        .into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "error": "not_ready",
                "message": format!("the session store is unavailable: {reason}"),
            })),
        )
            .into_response(),
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
