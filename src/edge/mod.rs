//! The local edge: a static file server or reverse proxy that enforces
//! CloudFront signed cookies and URLs with the signer's verifier, answers
//! denials with CloudFront's 403 XML, and offers `GET /auth` for proxies
//! such as nginx `auth_request`.

mod config;
mod origin;
pub mod path;
mod stats;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use config::{EdgeSettings, Forward, Origin};
pub use stats::EdgeStats;

use self::path::{CanonicalPath, PathRefusal};
use crate::client_ip::client_ip;
use crate::signer::{self, Denial, PublicKeys, ViewerRequest};
use crate::tls::{self, Tls};

/// Header carrying the original request URI on `GET /auth`.
pub const ORIGINAL_URI: &str = "x-original-uri";

#[derive(Clone)]
pub struct EdgeState {
    settings: Arc<EdgeSettings>,
    keys: Arc<PublicKeys>,
    origin: Arc<origin::OriginClient>,
    pub stats: Arc<EdgeStats>,
}

/// A bound edge, ready to serve.
pub struct Edge {
    listener: TcpListener,
    state: EdgeState,
    tls: Option<Tls>,
}

impl Edge {
    /// Binds the listener with the given key group.
    pub async fn build(settings: EdgeSettings, keys: PublicKeys) -> Result<Self, String> {
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|e| format!("edge.listen: cannot bind {}: {e}", settings.listen))?;
        let origin = origin::OriginClient::new(&settings.origin)?;
        let tls = match &settings.tls {
            Some((cert, key)) => Some(
                Tls::from_files(cert, key)
                    .await
                    .map_err(|e| format!("edge.tls_cert: {e}"))?,
            ),
            None => None,
        };
        Ok(Self {
            tls,
            listener,
            state: EdgeState {
                settings: Arc::new(settings),
                keys: Arc::new(keys),
                origin: Arc::new(origin),
                stats: Arc::new(EdgeStats::default()),
            },
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves HTTPS with this certificate (instead of the configured one).
    pub fn with_tls(mut self, tls: Tls) -> Self {
        self.tls = Some(tls);
        self
    }

    pub fn state(&self) -> &EdgeState {
        &self.state
    }

    /// Serves until `stop` completes.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tls::serve(self.listener, router(self.state), self.tls, stop).await
    }
}

/// Every path is protected except `/auth` and `/_cfmint/stats`.
pub fn router(state: EdgeState) -> Router {
    // An upstream origin may be an API: browsers may send it any method and
    // a JSON body.
    let (methods, headers) = if state.origin.is_directory() {
        (vec![Method::GET, Method::HEAD], vec![header::RANGE])
    } else {
        (
            vec![
                Method::GET,
                Method::HEAD,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ],
            vec![header::RANGE, header::CONTENT_TYPE, header::AUTHORIZATION],
        )
    };
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(
            state
                .settings
                .allowed_origins
                .iter()
                .filter_map(|origin| origin.parse().ok()),
        ))
        .allow_credentials(true)
        .allow_methods(methods)
        .allow_headers(headers)
        .expose_headers([
            header::CONTENT_LENGTH,
            header::CONTENT_RANGE,
            HeaderName::from_static("x-cfmint-denial"),
        ]);
    Router::new()
        .route("/auth", get(auth))
        .route("/_cfmint/stats", get(stats::show))
        .fallback(protected)
        .layer(cors)
        .with_state(state)
}

/// What the request's viewer looks like to CloudFront.
fn viewer(
    state: &EdgeState,
    peer: SocketAddr,
    headers: &HeaderMap,
    path_and_query: &str,
) -> signer::Verdict {
    let url = format!("{}{}", state.settings.public_url, path_and_query);
    let cookie_header = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect::<Vec<_>>()
        .join("; ");
    signer::verify(
        &state.keys,
        &ViewerRequest {
            url: &url,
            cookie_header: (!cookie_header.is_empty()).then_some(cookie_header.as_str()),
            client_ip: Some(client_ip(
                peer.ip(),
                headers,
                &state.settings.trusted_proxies,
            )),
            now: crate::minter::now(),
        },
    )
}

/// A request target with its path canonicalised and its query kept as sent.
pub struct Target {
    pub path: CanonicalPath,
    query: Option<String>,
}

impl Target {
    /// Splits `path?query` and canonicalises the path.
    pub fn parse(path_and_query: &str) -> Result<Self, PathRefusal> {
        let (path, query) = match path_and_query.split_once('?') {
            Some((path, query)) => (path, Some(query.to_owned())),
            None => (path_and_query, None),
        };
        Ok(Self {
            path: path::canonicalize(path)?,
            query,
        })
    }

    /// The canonical path with the query, as matched against policies.
    pub fn path_and_query(&self) -> String {
        match &self.query {
            Some(query) => format!("{}?{query}", self.path.as_str()),
            None => self.path.as_str().to_owned(),
        }
    }
}

/// Protected content: verified like CloudFront, then served from the origin.
async fn protected(
    State(state): State<EdgeState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    if state.origin.is_directory() && !matches!(*request.method(), Method::GET | Method::HEAD) {
        return (StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD\n").into_response();
    }
    let raw = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let target = match Target::parse(raw) {
        Ok(target) => target,
        Err(refusal) => return refused_path(&state, StatusCode::BAD_REQUEST, refusal),
    };
    let path_and_query = target.path_and_query();
    let verdict = viewer(&state, peer, request.headers(), &path_and_query);
    let mut response = match verdict.result {
        Ok(()) => state.origin.fetch(request, &target, &path_and_query).await,
        Err(denial) => {
            tracing::info!(path = target.path.as_str(), reason = %denial.kind().as_str(), "edge denied");
            denied(&denial)
        }
    };
    state.stats.record(target.path.as_str(), &response);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /auth` with the original URI in `X-Original-URI`: 200 or 403, for
/// nginx `auth_request` and similar. The decision is on the canonical path,
/// the one the proxy serves; a path it could read differently is a 403.
async fn auth(
    State(state): State<EdgeState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let Some(original) = headers
        .get(ORIGINAL_URI)
        .and_then(|value| value.to_str().ok())
        .filter(|uri| uri.starts_with('/'))
    else {
        return (
            StatusCode::BAD_REQUEST,
            "X-Original-URI with the request path is required\n",
        )
            .into_response();
    };
    let target = match Target::parse(original) {
        Ok(target) => target,
        Err(refusal) => return refused_path(&state, StatusCode::FORBIDDEN, refusal),
    };
    let verdict = viewer(&state, peer, &headers, &target.path_and_query());
    let response = match verdict.result {
        Ok(()) => StatusCode::OK.into_response(),
        Err(denial) => denied(&denial),
    };
    state.stats.record(target.path.as_str(), &response);
    response
}

/// A path the edge will not decide on: 400 from the edge itself, 403 from
/// `/auth` (which nginx passes on; any other status there becomes a 500).
fn refused_path(state: &EdgeState, status: StatusCode, refusal: PathRefusal) -> Response {
    tracing::info!(reason = %refusal, "edge refused a request path");
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InvalidURI</Code><Message>{refusal}</Message></Error>"
    );
    let mut response = (status, Body::from(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    response
        .headers_mut()
        .insert("x-cfmint-denial", HeaderValue::from_static("invalid_path"));
    state.stats.record("(refused path)", &response);
    response
}

/// CloudFront's 403: an XML `Error` with its code and message.
fn denied(denial: &Denial) -> Response {
    let code = denial.cloudfront_code();
    let message = match code {
        "MissingKey" => "Missing Key-Pair-Id query parameter or cookie value",
        "InvalidKey" => "Unknown Key",
        "MalformedPolicy" => "Malformed Policy",
        "MalformedSignature" => "Malformed Signature",
        _ => "Access denied",
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    let mut response = (StatusCode::FORBIDDEN, Body::from(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    response.headers_mut().insert(
        "x-cfmint-denial",
        HeaderValue::from_static(denial.kind().as_str()),
    );
    response
}
