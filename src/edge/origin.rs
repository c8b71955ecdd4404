//! Where allowed requests go: a directory (content types for HLS and media,
//! byte ranges) or an upstream HTTP server. Signing parameters never reach it.

use std::path::PathBuf;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::ServeDir;

use super::{Forward, Origin, Target};
use crate::signer::split_signing_params;

pub enum OriginClient {
    Directory {
        /// The served directory, symlinks resolved: no file outside it is served.
        root: PathBuf,
        files: ServeDir,
    },
    Upstream {
        base: String,
        client: reqwest::Client,
        cookies: Forward,
        headers: Forward,
    },
}

/// Headers that belong to one connection, or that the edge sets itself:
/// never passed on in either direction.
fn hop_by_hop(name: &header::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

/// Viewer headers that reach the origin: those a body and a range request
/// need, and those `edge.forward_headers` names (never `Cookie`, which
/// `edge.forward_cookies` decides on).
fn forwards_header(name: &header::HeaderName, forward: &Forward) -> bool {
    if hop_by_hop(name) || name == header::COOKIE {
        return false;
    }
    name == header::RANGE
        || name == header::CONTENT_TYPE
        || name == header::CONTENT_ENCODING
        || forward.allows(name.as_str())
}

/// The viewer's cookies `edge.forward_cookies` lets through, as one header.
fn forwarded_cookies(headers: &axum::http::HeaderMap, forward: &Forward) -> Option<String> {
    let kept: Vec<&str> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .map(str::trim)
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(name, _)| name);
            !pair.is_empty() && forward.allows(name)
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

impl OriginClient {
    /// Whether requests are answered from files (GET and HEAD only).
    pub fn is_directory(&self) -> bool {
        matches!(self, Self::Directory { .. })
    }

    pub fn new(origin: &Origin) -> Result<Self, String> {
        Ok(match origin {
            Origin::Directory(dir) => {
                if !dir.is_dir() {
                    return Err(format!(
                        "edge.origin_dir: {} is not a directory",
                        dir.display()
                    ));
                }
                let root = dir.canonicalize().map_err(|e| {
                    format!("edge.origin_dir: cannot resolve {}: {e}", dir.display())
                })?;
                Self::Directory {
                    files: ServeDir::new(&root).append_index_html_on_directories(false),
                    root,
                }
            }
            Origin::Upstream {
                base,
                cookies,
                headers,
            } => {
                crate::tls::require_crypto_provider("edge.origin_url")?;
                let client = reqwest::Client::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .timeout(Duration::from_secs(60))
                    .build()
                    .map_err(|e| format!("edge.origin_url: {e}"))?;
                Self::Upstream {
                    base: base.clone(),
                    client,
                    cookies: cookies.clone(),
                    headers: headers.clone(),
                }
            }
        })
    }

    /// Answers an allowed request from the origin, for its canonical path
    /// (`path_and_query` is `target`'s, as verified).
    pub async fn fetch(&self, request: Request, target: &Target, path_and_query: &str) -> Response {
        let forwarded = split_signing_params(path_and_query).unsigned;
        match self {
            Self::Directory { root, files } => {
                if !inside(root, target.path.decoded()).await {
                    return (StatusCode::NOT_FOUND, "Not Found\n").into_response();
                }
                let (mut parts, body) = request.into_parts();
                parts.uri = match target.path.as_str().parse() {
                    Ok(uri) => uri,
                    Err(_) => return StatusCode::BAD_REQUEST.into_response(),
                };
                let path = target.path.decoded();
                let response = files
                    .clone()
                    .oneshot(Request::from_parts(parts, body))
                    .await;
                let mut response = match response {
                    Ok(response) => response.map(Body::new),
                    Err(never) => match never {},
                };
                if let Some(content_type) = media_type(path)
                    && response.status().is_success()
                {
                    response
                        .headers_mut()
                        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                }
                response
            }
            Self::Upstream {
                base,
                client,
                cookies,
                headers,
            } => {
                let (parts, body) = request.into_parts();
                let mut upstream =
                    client.request(parts.method.clone(), format!("{base}{forwarded}"));
                for (name, value) in &parts.headers {
                    if forwards_header(name, headers) {
                        upstream = upstream.header(name, value);
                    }
                }
                if let Some(cookie) = forwarded_cookies(&parts.headers, cookies) {
                    upstream = upstream.header(header::COOKIE, cookie);
                }
                if !matches!(parts.method, Method::GET | Method::HEAD) {
                    upstream = upstream.body(reqwest::Body::wrap_stream(body.into_data_stream()));
                }
                match upstream.send().await {
                    Ok(answer) => {
                        let mut response = Response::builder().status(answer.status());
                        for (name, value) in answer.headers() {
                            if !hop_by_hop(name) {
                                response = response.header(name, value);
                            }
                        }
                        response
                            .body(Body::from_stream(answer.bytes_stream()))
                            .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "edge: upstream request failed");
                        (StatusCode::BAD_GATEWAY, "the origin did not answer\n").into_response()
                    }
                }
            }
        }
    }
}

/// Whether the file for `decoded_path` exists and, symlinks resolved, lies
/// inside `root`.
async fn inside(root: &std::path::Path, decoded_path: &str) -> bool {
    let candidate = root.join(decoded_path.trim_start_matches('/'));
    match tokio::fs::canonicalize(&candidate).await {
        Ok(real) if real.starts_with(root) => true,
        Ok(real) => {
            tracing::warn!(
                path = decoded_path,
                target = %real.display(),
                "edge: refused a path that resolves outside origin_dir"
            );
            false
        }
        Err(_) => false,
    }
}

/// Content types players expect, whatever the system's MIME table says.
fn media_type(path: &str) -> Option<&'static str> {
    let extension = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match extension.as_str() {
        "m3u8" => "application/vnd.apple.mpegurl",
        "aac" => "audio/aac",
        "ts" => "video/mp2t",
        "m4s" => "video/iso.segment",
        "mp4" => "video/mp4",
        "m4a" => "audio/mp4",
        "pdf" => "application/pdf",
        _ => return None,
    })
}
