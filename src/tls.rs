//! Optional TLS (rustls) for the service, the edge and the demo, and
//! self-signed certificates for local HTTPS setups.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;

use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use tokio::net::TcpListener;

/// A server certificate and key, ready to serve.
#[derive(Clone)]
pub struct Tls(RustlsConfig);

/// Makes ring rustls's crypto provider this process's default. `main` calls
/// it once, before anything else; a program that embeds cfmint's library
/// calls it (or installs a provider of its own) the same way.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Fails, instead of panicking later inside a TLS library, when no rustls
/// crypto provider has been installed for the process.
pub fn require_crypto_provider(what: &str) -> Result<(), String> {
    match rustls::crypto::CryptoProvider::get_default() {
        Some(_) => Ok(()),
        None => Err(format!(
            "{what}: no TLS crypto provider is installed in this process \
             (call cfmint::tls::install_crypto_provider() at start-up)"
        )),
    }
}

impl Tls {
    pub async fn from_files(cert: &Path, key: &Path) -> Result<Self, String> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
        };
        Self::from_pem(read(cert)?, read(key)?).await
    }

    pub async fn from_pem(cert: Vec<u8>, key: Vec<u8>) -> Result<Self, String> {
        require_crypto_provider("TLS server")?;
        RustlsConfig::from_pem(cert, key)
            .await
            .map(Self)
            .map_err(|e| format!("invalid TLS certificate or key: {e}"))
    }
}

/// Serves `app` on `listener` (with TLS when given) until `stop` completes,
/// then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Tls>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        None => {
            axum::serve(listener, service)
                .with_graceful_shutdown(stop)
                .await
        }
        Some(Tls(config)) => {
            let handle = axum_server::Handle::new();
            let server =
                axum_server::from_tcp_rustls(listener.into_std()?, config)?.handle(handle.clone());
            tokio::spawn(async move {
                stop.await;
                handle.graceful_shutdown(None);
            });
            server.serve(service).await
        }
    }
}

/// A self-signed certificate (PEM) and its key for `names`.
pub fn self_signed(names: &[String]) -> Result<(String, String), String> {
    let certified = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| format!("cannot make a certificate: {e}"))?;
    Ok((certified.cert.pem(), certified.signing_key.serialize_pem()))
}
