//! Static web assets compiled into the binary: `cfmint.js`, served by
//! `cfmint serve` at `/cfmint.js` and by the demo page, the demo's own page,
//! script and player, and the API's description.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The player helper: login, mint, scheduled refreshes, recovery after a 403.
pub const CFMINT_JS: &str = include_str!("../demo/web/cfmint.js");
/// The demo page.
pub const DEMO_HTML: &str = include_str!("../demo/web/index.html");
/// The demo page's script.
pub const DEMO_JS: &str = include_str!("../demo/web/demo.js");
/// hls.js (light build), the demo's player.
pub const HLS_JS: &str = include_str!("../demo/web/vendor/hls.light.min.js");

/// The HTTP API's description (docs/openapi.yaml, as JSON), served by the
/// admin listener at `/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

/// A response with the asset, its content type, and `Cache-Control: no-store`
/// (the binary may be replaced by a newer one at the same address).
pub fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
