//! `cfmint demo`: the whole flow on loopback. A throwaway key, the minting
//! service, the local edge in front of a small embedded audiobook, and a page
//! that logs in, mints, plays and renews. Three ports on `localhost`, so the
//! host-only cookies cfmint sets reach the edge (cookies are not port-scoped).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::Application;
use crate::config::Settings;
use crate::edge::{Edge, EdgeSettings};
use crate::tls::{self, Tls};
use crate::web::{DEMO_HTML, DEMO_JS, HLS_JS, asset};

/// The demo audiobook and page, embedded so the binary runs anywhere.
const AUDIOBOOK: &[(&str, &[u8])] = &[
    (
        "chapter-1/index.m3u8",
        include_bytes!("../demo/audiobook/chapter-1/index.m3u8"),
    ),
    (
        "chapter-1/seg-000.ts",
        include_bytes!("../demo/audiobook/chapter-1/seg-000.ts"),
    ),
    (
        "chapter-1/seg-001.ts",
        include_bytes!("../demo/audiobook/chapter-1/seg-001.ts"),
    ),
    (
        "chapter-1/seg-002.ts",
        include_bytes!("../demo/audiobook/chapter-1/seg-002.ts"),
    ),
    (
        "chapter-1/seg-003.ts",
        include_bytes!("../demo/audiobook/chapter-1/seg-003.ts"),
    ),
    (
        "chapter-1/seg-004.ts",
        include_bytes!("../demo/audiobook/chapter-1/seg-004.ts"),
    ),
    (
        "chapter-1/seg-005.ts",
        include_bytes!("../demo/audiobook/chapter-1/seg-005.ts"),
    ),
    (
        "chapter-1/seg-006.ts",
        include_bytes!("../demo/audiobook/chapter-1/seg-006.ts"),
    ),
    (
        "chapter-1/seg-007.ts",
        include_bytes!("../demo/audiobook/chapter-1/seg-007.ts"),
    ),
    (
        "chapter-1/seg-008.ts",
        include_bytes!("../demo/audiobook/chapter-1/seg-008.ts"),
    ),
    (
        "chapter-1/seg-009.ts",
        include_bytes!("../demo/audiobook/chapter-1/seg-009.ts"),
    ),
];

/// Where the audiobook lives under the edge.
const BOOK_PATH: &str = "/audiobooks/demo/";

/// Ports and lifetimes for one demo run; port 0 picks a free one.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub page_port: u16,
    pub api_port: u16,
    pub edge_port: u16,
    pub ttl: Duration,
    /// HTTPS on three names of one site (`app.`, `auth.`, `cdn.` + this
    /// domain) with a self-signed certificate and cookies for the domain.
    pub tls_domain: Option<String>,
}

/// The URLs a running demo answers on.
#[derive(Debug, Clone)]
pub struct DemoUrls {
    pub page: String,
    pub api: String,
    pub edge: String,
}

/// Starts everything, reports the URLs, and serves until `stop` completes.
pub async fn run(
    options: DemoOptions,
    ready: impl FnOnce(&DemoUrls),
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let files =
        tempfile::tempdir().map_err(|e| format!("cannot create a temporary folder: {e}"))?;
    let origin = write_audiobook(files.path())?;

    // Bind first so that port 0 turns into real ports before anything refers to them.
    let page_listener = bind(options.page_port, "demo page", "--page-port").await?;
    let page_port = page_listener
        .local_addr()
        .map_err(|e| e.to_string())?
        .port();
    let edge_port = free_or(options.edge_port, "local edge", "--edge-port").await?;
    let api_port = free_or(options.api_port, "mint API", "--api-port").await?;
    let (urls, tls) = match &options.tls_domain {
        None => (
            DemoUrls {
                page: format!("http://localhost:{page_port}"),
                api: format!("http://localhost:{api_port}"),
                edge: format!("http://localhost:{edge_port}"),
            },
            None,
        ),
        Some(domain) => {
            let names = ["app", "auth", "cdn"].map(|name| format!("{name}.{domain}"));
            let (cert, key) = tls::self_signed(&names)?;
            let tls = Tls::from_pem(cert.into_bytes(), key.into_bytes()).await?;
            let urls = DemoUrls {
                page: format!("https://{}:{page_port}", names[0]),
                api: format!("https://{}:{api_port}", names[1]),
                edge: format!("https://{}:{edge_port}", names[2]),
            };
            (urls, Some(tls))
        }
    };

    let toml = service_toml(&urls, api_port, options.ttl, options.tls_domain.as_deref());
    let settings = Settings::load(&toml, std::iter::empty()).map_err(|e| e.to_string())?;
    let mut app = Application::build(settings).await?;
    let keys = app
        .state()
        .minter
        .ring()
        .public_keys()
        .map_err(|e| e.to_string())?;
    let edge_settings =
        EdgeSettings::load(&edge_toml(&urls, edge_port, &origin)).map_err(|e| e.to_string())?;
    let mut edge = Edge::build(edge_settings, keys).await?;
    if let Some(tls) = &tls {
        app = app.with_tls(tls.clone());
        edge = edge.with_tls(tls.clone());
    }

    let (stopping_tx, stopping) = watch::channel(false);
    let until = |mut stopping: watch::Receiver<bool>| async move {
        let _ = stopping.wait_for(|s| *s).await;
    };
    let page = tls::serve(
        page_listener,
        page_router(&urls),
        tls,
        until(stopping.clone()),
    );
    let tasks = [
        tokio::spawn(async move {
            app.run_until(until(stopping.clone()))
                .await
                .map_err(|e| e.to_string())
        }),
        tokio::spawn({
            let stopping = stopping_tx.subscribe();
            async move {
                edge.run_until(until(stopping))
                    .await
                    .map_err(|e| e.to_string())
            }
        }),
        tokio::spawn(async move { page.await.map_err(|e| e.to_string()) }),
    ];
    ready(&urls);
    stop.await;
    let _ = stopping_tx.send(true);
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    drop(files);
    Ok(())
}

/// Binds 127.0.0.1:`port`; a port in use names the flag that moves it.
async fn bind(port: u16, what: &str, flag: &str) -> Result<TcpListener, String> {
    TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .map_err(|e| {
            let advice = if e.kind() == std::io::ErrorKind::AddrInUse {
                format!(
                    "; another program uses it: choose another port with {flag} PORT \
                     (0 picks a free one)"
                )
            } else {
                format!(" (move it with {flag} PORT)")
            };
            format!("cannot listen for the {what} on 127.0.0.1:{port}: {e}{advice}")
        })
}

/// The port to use: the one asked for once it is seen to be free, or a free
/// one for 0.
async fn free_or(port: u16, what: &str, flag: &str) -> Result<u16, String> {
    let listener = bind(port, what, flag).await?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn write_audiobook(root: &Path) -> Result<PathBuf, String> {
    let book = root.join(BOOK_PATH.trim_matches('/'));
    for (name, bytes) in AUDIOBOOK {
        let path = book.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(&path, bytes)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(root.to_owned())
}

fn service_toml(urls: &DemoUrls, api_port: u16, ttl: Duration, domain: Option<&str>) -> String {
    let cookie_domain = domain.map_or(String::new(), |d| format!("cookie_domain = \"{d}\""));
    // Signed playlists fetch from the edge itself, which only answers on
    // plain loopback HTTP; the token key lives as long as the demo.
    let playlists = if domain.is_none() {
        let secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        format!(
            "[playlists]\norigin_url = \"{}\"\ntoken_secret = \"{secret}\"",
            urls.edge
        )
    } else {
        String::new()
    };
    format!(
        r#"
[server]
listen = "127.0.0.1:{api_port}"
admin_listen = ""
shutdown_timeout = "2s"
drain_delay = "0s"
[cloudfront]
base_url = "{edge}"
{cookie_domain}
[mint]
ttl = "{ttl}s"
default_path = "{BOOK_PATH}"
[auth.users]
demo = true
[[grants]]
paths = ["/audiobooks/*"]
[cors]
allowed_origins = ["{page}"]
{playlists}
"#,
        edge = urls.edge,
        page = urls.page,
        ttl = ttl.as_secs(),
    )
}

fn edge_toml(urls: &DemoUrls, edge_port: u16, origin: &Path) -> String {
    format!(
        r#"
[edge]
listen = "127.0.0.1:{edge_port}"
public_url = "{edge}"
origin_dir = "{origin}"
allowed_origins = ["{page}"]
[[edge.key]]
id = "KDEMO"
file = "generated"
"#,
        edge = urls.edge,
        page = urls.page,
        origin = origin.display(),
    )
}

fn page_router(urls: &DemoUrls) -> Router {
    let config = serde_json::json!({
        "api": urls.api,
        "edge": urls.edge,
        "path": BOOK_PATH,
        "playlist": format!("{BOOK_PATH}chapter-1/index.m3u8"),
        "username": crate::auth::users::DEMO_USERNAME,
        "password": crate::auth::users::DEMO_PASSWORD,
    })
    .to_string();
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", DEMO_HTML) }))
        .route("/demo.js", get(|| async { asset("text/javascript", DEMO_JS) }))
        .route("/vendor/hls.light.min.js", get(|| async { asset("text/javascript", HLS_JS) }))
        .route(
            "/demo.json",
            get(move || {
                let config = config.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], config).into_response() }
            }),
        )
}
