//! Request middleware: request ids and the one access-log line per request,
//! request metrics, the origin lock and the Origin check for state-changing
//! requests.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::error::{ApiError, ErrorDetail};
use super::state::AppState;

const REQUEST_ID: &str = "x-request-id";

/// Everything the API does around its handlers, in one layer (each layer
/// costs a clone per request): assigns a request id (keeping a well-formed
/// incoming one), applies the origin lock and the Origin check, then logs one
/// line and records the latency by route.
pub async fn front(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .filter(|id| is_safe_id(id.as_bytes()))
        .cloned()
        .unwrap_or_else(next_request_id);
    let method = method_label(request.method());
    let route = route_label(request.uri().path());
    let span = tracing::info_span!("request", request_id = request_id.to_str().unwrap_or(""));

    let mut response = match read_body(request, state.settings.server.body_limit).await {
        Err(error) => error,
        Ok(request) => match refusal(&state, &request) {
            Some(error) => error.into_response(),
            None => {
                crate::session::with_store_budget(next.run(request))
                    .instrument(span.clone())
                    .await
            }
        },
    };

    // tower-sessions answers a bare 500 when saving the session fails.
    if response.status() == StatusCode::INTERNAL_SERVER_ERROR
        && response.extensions().get::<ErrorDetail>().is_none()
    {
        response = ApiError::StoreUnavailable("saving the session failed".into()).into_response();
    }
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    state.metrics.request(route, method, status, elapsed);

    let detail = response.extensions().get::<ErrorDetail>();
    let outcome = detail.map_or("ok", |d| d.code);
    let cause = detail.and_then(|d| d.cause.as_deref()).unwrap_or("");
    span.in_scope(|| {
        tracing::info!(
            method,
            route,
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            outcome,
            cause,
            "request"
        );
    });
    response.headers_mut().insert(REQUEST_ID, request_id);
    response
}

/// Reads the whole body (bounded by `server.body_limit`) before anything
/// answers. A response sent while part of the body is still unread makes
/// the server close the connection without a word, and a client that reuses
/// it then sees its next request fail; with the body read, every refusal
/// leaves the connection usable. A body over the limit is refused with
/// `Connection: close`.
async fn read_body(request: Request, limit: usize) -> Result<Request, Response> {
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(Request::from_parts(parts, Body::from(bytes))),
        Err(error) => {
            let too_large = std::error::Error::source(&error)
                .is_some_and(|cause| cause.is::<http_body_util::LengthLimitError>());
            let mut response = if too_large {
                ApiError::PayloadTooLarge.into_response()
            } else {
                ApiError::BadRequest("the request body could not be read".into()).into_response()
            };
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            Err(response)
        }
    }
}

/// The origin lock (without the secret header CloudFront adds, 403; health
/// checks stay open), then the Origin check: a state-changing request whose
/// `Origin` is present and not allowed, 403.
fn refusal(state: &AppState, request: &Request) -> Option<ApiError> {
    if let Some((name, secret)) = &state.settings.server.origin_lock {
        let open = matches!(request.uri().path(), "/healthz" | "/readyz");
        let presented = request.headers().get(name).map(HeaderValue::as_bytes);
        if !open && !presented.is_some_and(|value| secret_matches(value, secret)) {
            state.metrics.origin_rejected();
            return Some(ApiError::OriginLocked);
        }
    }
    let changes_state = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    match request.headers().get(header::ORIGIN) {
        Some(origin) if changes_state && !state.origin_allowed(origin) => {
            Some(ApiError::OriginNotAllowed)
        }
        _ => None,
    }
}

/// The route label for metrics and logs: one of the API's fixed paths.
fn route_label(path: &str) -> &'static str {
    match path {
        "/login" => "/login",
        "/login/oidc" => "/login/oidc",
        "/callback" => "/callback",
        "/logout" => "/logout",
        "/mint" => "/mint",
        "/sign-urls" => "/sign-urls",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/cfmint.js" => "/cfmint.js",
        _ if path.starts_with("/playlists/") => "/playlists",
        _ => "unmatched",
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// A random per-process prefix and a counter: unique, and no system call per
/// request (a v4 UUID reads the kernel's random pool every time).
fn next_request_id() -> HeaderValue {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().simple().to_string()[..12].to_owned());
    let id = format!("{prefix}-{:x}", COUNTER.fetch_add(1, Ordering::Relaxed));
    HeaderValue::try_from(id).expect("hex digits and a dash make a header value")
}

fn is_safe_id(id: &[u8]) -> bool {
    (1..=64).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
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
