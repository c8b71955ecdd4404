//! Request middleware: request ids and the one access-log line per request,
//! request metrics, and the Origin check for state-changing requests.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::error::{ApiError, ErrorDetail};
use super::state::AppState;

const REQUEST_ID: &str = "x-request-id";

/// Assigns a request id (keeping a well-formed incoming one), logs one line
/// per request and records its latency by matched route.
pub async fn access_log(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_safe_id(id))
        .map_or_else(next_request_id, str::to_owned);
    let method = request.method().clone();
    let span = tracing::info_span!("request", request_id = %request_id);

    let mut response = next.run(request).instrument(span.clone()).await;

    // tower-sessions answers a bare 500 when saving the session fails.
    if response.status() == StatusCode::INTERNAL_SERVER_ERROR
        && response.extensions().get::<ErrorDetail>().is_none()
    {
        response = ApiError::StoreUnavailable("saving the session failed".into()).into_response();
    }
    let route = response
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |path| path.as_str())
        .to_owned();
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    state
        .metrics
        .request(&route, method.as_str(), status, elapsed);

    let detail = response.extensions().get::<ErrorDetail>();
    let outcome = detail.map_or("ok", |d| d.code);
    let cause = detail.and_then(|d| d.cause.as_deref()).unwrap_or("");
    span.in_scope(|| {
        tracing::info!(
            method = %method,
            route,
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            outcome,
            cause,
            "request"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// A random per-process prefix and a counter: unique, and no system call per
/// request (a v4 UUID reads the kernel's random pool every time).
fn next_request_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().simple().to_string()[..12].to_owned());
    format!("{prefix}-{:x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

fn is_safe_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Copies the matched route into the response, where `access_log` reads it.
pub async fn matched_route(request: Request, next: Next) -> Response {
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    if let Some(matched) = matched {
        response.extensions_mut().insert(matched);
    }
    response
}

/// A state-changing request whose `Origin` is present and not allowed: 403.
pub async fn check_origin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let changes_state = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if changes_state {
        if let Some(origin) = request.headers().get(header::ORIGIN) {
            let allowed = state
                .settings
                .cors
                .allowed_origins
                .iter()
                .any(|allowed| allowed.as_bytes() == origin.as_bytes());
            if !allowed {
                return ApiError::OriginNotAllowed.into_response();
            }
        }
    }
    next.run(request).await
}

/// Origin lock: without the secret header CloudFront adds, 403. Health
/// checks stay open. The secret is compared in constant time.
pub async fn origin_lock(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some((name, secret)) = &state.settings.server.origin_lock {
        let open = matches!(request.uri().path(), "/healthz" | "/readyz");
        let presented = request.headers().get(name).map(|value| value.as_bytes());
        if !open && !presented.is_some_and(|value| secret_matches(value, secret)) {
            state.metrics.origin_rejected();
            return ApiError::OriginLocked.into_response();
        }
    }
    next.run(request).await
}

fn secret_matches(presented: &[u8], secret: &secrecy::SecretString) -> bool {
    use secrecy::ExposeSecret;
    use subtle::ConstantTimeEq;
    presented.ct_eq(secret.expose_secret().as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::secret_matches;

    #[test]
    fn the_origin_secret_must_match_exactly() {
        let secret = secrecy::SecretString::from("0123456789abcdef");
        assert!(secret_matches(b"0123456789abcdef", &secret));
        for wrong in [
            &b""[..],
            b"0123456789abcde",
            b"0123456789abcdeF",
            b"0123456789abcdef0",
        ] {
            assert!(!secret_matches(wrong, &secret));
        }
    }
}
