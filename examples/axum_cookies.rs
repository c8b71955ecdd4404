//! An existing axum application that signs CloudFront cookies in its own
//! handler with the `cfmint-signer` crate alone (no cfmint service).
//!
//! `GET /watch/{video}` checks the caller with the application's own login
//! (here a fixed bearer token stands in for it), then sets the CloudFront
//! cookies for everything under `/videos/{video}/` on the distribution, for
//! one hour, and answers with the player page's data.
//!
//! ```text
//! CLOUDFRONT_KEY_PAIR_ID=K2JCJMDEHXQW5F CLOUDFRONT_PRIVATE_KEY_FILE=private.pem \
//! CDN_BASE_URL=https://cdn.example.com COOKIE_DOMAIN=example.com \
//!     cargo run --example axum_cookies
//! curl -i -H 'Authorization: Bearer let-me-watch' http://127.0.0.1:3000/watch/42
//! ```

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use cfmint_signer::{
    CookieAttributes, HashAlgorithm, KeyPairId, Policy, PolicyForm, PrivateKey, Resource,
};

const LIFETIME_SECONDS: u64 = 3600;

struct Cdn {
    key: PrivateKey,
    base_url: String,
    cookies: CookieAttributes,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |name: &str| std::env::var(name).map_err(|e| format!("{name}: {e}"));
    let id = KeyPairId::new(&env("CLOUDFRONT_KEY_PAIR_ID")?)?;
    // Parsed once at start; signing never reads the file again.
    let key = PrivateKey::from_file(id, env("CLOUDFRONT_PRIVATE_KEY_FILE")?, Default::default())?;
    let mut cookies = CookieAttributes::new();
    if let Ok(domain) = env("COOKIE_DOMAIN") {
        cookies = cookies.domain(&domain)?;
    }
    let cdn = Arc::new(Cdn {
        key,
        base_url: env("CDN_BASE_URL")?,
        cookies,
    });

    let app = Router::new()
        .route("/watch/{video}", get(watch))
        .with_state(cdn);
    let listen = env("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn watch(
    State(cdn): State<Arc<Cdn>>,
    Path(video): Path<String>,
    headers: HeaderMap,
) -> Response {
    // The application's own login check.
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some("Bearer let-me-watch")
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    // `video` came from the URL: `Resource::folder` refuses anything that
    // would widen the grant (`..`, `*`, escapes), so check rather than trust.
    let resource = match Resource::folder(&cdn.base_url, &format!("/videos/{video}/")) {
        Ok(resource) => resource,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let signed = Policy::builder(resource.clone())
        .expires(now + LIFETIME_SECONDS)
        .build()
        .and_then(|policy| {
            cdn.key
                .sign(&policy, PolicyForm::Auto, HashAlgorithm::Sha256)
        });
    let signed = match signed {
        Ok(signed) => signed,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let mut response = Json(serde_json::json!({
        "playlist": format!("{}/videos/{video}/master.m3u8", cdn.base_url.trim_end_matches('/')),
        "resource": resource.as_str(),
        "expires_at": signed.expires(),
    }))
    .into_response();
    for value in cdn.cookies.set_cookies(&signed, Some(LIFETIME_SECONDS)) {
        if let Ok(value) = value.parse() {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}
