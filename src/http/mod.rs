//! The HTTP API (SPEC section 4): `router()` builds it from an [`AppState`];
//! `admin_router()` serves `/metrics` on the separate admin listener.

mod admin;
pub mod cookies;
mod error;
mod extract;
mod health;
mod login;
mod middleware;
mod mint;
mod oidc;
mod openapi;
mod playlists;
mod state;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Method, header};
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

pub use crate::client_ip::client_ip;
pub use error::ApiError;
pub use state::{AppState, Shared};

/// The public API: login, mint, sign-urls, logout, health.
pub fn router(state: AppState) -> Router {
    let settings = &state.settings;
    let inactivity = time::Duration::seconds(settings.session.inactivity.as_secs() as i64);
    let sessions = SessionManagerLayer::new(state.store.clone())
        .with_name(settings.session.cookie_name.clone())
        .with_secure(true)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(inactivity));

    let api = Router::new()
        .route("/login", post(login::login))
        .route("/login/oidc", get(oidc::begin))
        .route("/callback", get(oidc::callback))
        .route("/logout", post(login::logout))
        .route("/mint", post(mint::mint))
        .route("/sign-urls", post(mint::sign_urls))
        .route("/playlists/{*path}", get(playlists::playlist))
        .layer(sessions);
    let health = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route(
            "/cfmint.js",
            get(|| async { crate::web::asset("text/javascript", crate::web::CFMINT_JS) }),
        );

    let routes = Router::new()
        .merge(api)
        .merge(health)
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state.clone());
    // Layers around the whole router rather than `Router::layer`, which wraps
    // every route in its own boxed copy and clones each box per request.
    let service = ServiceBuilder::new()
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::front,
        ))
        .layer(cors(&state))
        .layer(DefaultBodyLimit::max(settings.server.body_limit))
        .service(routes);
    Router::new().fallback_service(service)
}

/// The admin listener: metrics, health, session revocation, the key ring and the API's
/// description, never exposed with the API.
pub fn admin_router(state: AppState) -> Router {
    let description = axum::body::Bytes::from(openapi::description(&state.settings));
    Router::new()
        .route("/metrics", get(health::metrics))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/admin/sessions/revoke", post(admin::revoke_sessions))
        .route("/admin/keys", get(admin::keys))
        .route(
            "/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], description) }),
        )
        .fallback(|| async { ApiError::NotFound })
        .layer(DefaultBodyLimit::max(4096))
        .with_state(state)
}

/// Credentialed CORS for the configured origins only (never `*`).
fn cors(state: &AppState) -> CorsLayer {
    let origins = state.allowed_origins.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
        .expose_headers([HeaderName::from_static("x-request-id")])
        .max_age(state.settings.cors.max_age)
}
