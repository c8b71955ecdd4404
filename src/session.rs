//! Session store selection (memory or Redis) behind one [`Store`] that bounds
//! every call by a timeout, so an unreachable Redis turns into a quick 503.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use secrecy::ExposeSecret;
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions_redis_store::RedisStore;
use tower_sessions_redis_store::fred::interfaces::ClientLike;
use tower_sessions_redis_store::fred::prelude::{
    Builder, Config, Pool, ReconnectPolicy, ServerConfig, TlsConnector,
};

use crate::config::{SessionSettings, StoreKind};
use crate::metrics::Metrics;

/// The store the session layer uses: memory or Redis, each call bounded.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    timeout: Duration,
    metrics: Arc<Metrics>,
}

#[derive(Debug, Clone)]
enum Backend {
    Memory(MemoryStore),
    Redis { store: RedisStore<Pool>, pool: Pool },
}

impl Store {
    /// Builds the configured store. Redis connects in the background and
    /// reconnects forever; until it answers, readiness says so.
    pub fn new(settings: &SessionSettings, metrics: Arc<Metrics>) -> Result<Self, String> {
        let backend = match &settings.store {
            StoreKind::Memory => Backend::Memory(MemoryStore::default()),
            StoreKind::Redis { url, ca_file } => {
                let mut config = Config::from_url(url.expose_secret())
                    .map_err(|e| format!("session.redis_url: {}", e.details()))?;
                if !matches!(config.server, ServerConfig::Centralized { .. }) {
                    return Err("session.redis_url: Redis Sentinel and Cluster are not \
                                supported; give the URL of one server"
                        .into());
                }
                // `rediss://` is TLS with certificate verification, or no
                // connection at all: never plain text.
                config.tls = if url.expose_secret().starts_with("rediss://") {
                    Some(tls_connector(ca_file.as_deref())?.into())
                } else {
                    None
                };
                let timeout = settings.store_timeout;
                let pool = Builder::from_config(config)
                    .with_connection_config(|c| {
                        c.connection_timeout = timeout;
                        c.internal_command_timeout = timeout;
                        c.max_command_attempts = 1;
                    })
                    .with_performance_config(|c| c.default_command_timeout = timeout)
                    .set_policy(ReconnectPolicy::new_constant(0, 250))
                    .build_pool(4)
                    .map_err(|e| format!("session.redis_url: {}", e.details()))?;
                pool.connect();
                Backend::Redis {
                    store: RedisStore::new(pool.clone()),
                    pool,
                }
            }
        };
        Ok(Self {
            backend,
            timeout: settings.store_timeout,
            metrics,
        })
    }

    pub fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Memory(_) => "memory",
            Backend::Redis { .. } => "redis",
        }
    }

    /// Whether the store answers now (for `/readyz`).
    pub async fn ping(&self) -> Result<(), String> {
        match &self.backend {
            Backend::Memory(_) => Ok(()),
            Backend::Redis { pool, .. } => {
                let ping = pool.next().ping::<String>(None);
                match tokio::time::timeout(self.timeout, ping).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(format!("redis: {}", e.details())),
                    Err(_) => Err(format!("redis did not answer within {:?}", self.timeout)),
                }
            }
        }
    }

    /// Drops expired in-memory sessions (Redis expires its own keys).
    pub fn purge_expired(&self) {
        if let Backend::Memory(memory) = &self.backend {
            memory.purge_expired();
        }
    }

    pub async fn close(&self) {
        if let Backend::Redis { pool, .. } = &self.backend {
            let _ = pool.quit().await;
        }
    }

    async fn bounded<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = session_store::Result<T>>,
    ) -> session_store::Result<T> {
        let result = match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(session_store::Error::Backend(format!(
                "session store did not answer within {:?}",
                self.timeout
            ))),
        };
        if let Err(e) = &result {
            self.metrics.store_error(operation);
            tracing::warn!(operation, error = %e, "session store error");
        }
        result
    }
}

#[async_trait]
impl SessionStore for Store {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match &self.backend {
            Backend::Memory(store) => store.create(record).await,
            Backend::Redis { store, .. } => self.bounded("create", store.create(record)).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match &self.backend {
            Backend::Memory(store) => store.save(record).await,
            Backend::Redis { store, .. } => self.bounded("save", store.save(record)).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match &self.backend {
            Backend::Memory(store) => store.load(id).await,
            Backend::Redis { store, .. } => self.bounded("load", store.load(id)).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match &self.backend {
            Backend::Memory(store) => store.delete(id).await,
            Backend::Redis { store, .. } => self.bounded("delete", store.delete(id)).await,
        }
    }
}

/// TLS for `rediss://`: the system's trusted CAs plus `session.redis_ca_file`,
/// the server's name checked against the URL's host.
fn tls_connector(ca_file: Option<&std::path::Path>) -> Result<TlsConnector, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    crate::tls::require_crypto_provider("session.redis_url")?;
    let mut roots = rustls::RootCertStore::empty();
    let system = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(system.certs);
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("session.redis_ca_file: cannot read {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "session.redis_ca_file: no certificate in {}",
                path.display()
            ));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("session.redis_ca_file: {}: {e}", path.display()))?;
        }
    }
    if roots.is_empty() {
        return Err(
            "session.redis_url: no trusted CA certificates for rediss:// \
                    (install the system's CA bundle or set session.redis_ca_file)"
                .into(),
        );
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(config))
}

/// In-process sessions for one replica; expired records are purged.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    records: Arc<Mutex<HashMap<Id, Record>>>,
}

impl MemoryStore {
    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<Id, Record>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn purge_expired(&self) {
        let now = OffsetDateTime::now_utc();
        self.records().retain(|_, record| record.expiry_date > now);
    }

    pub fn len(&self) -> usize {
        self.records().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let mut records = self.records();
        while records.contains_key(&record.id) {
            record.id = Id::default();
        }
        records.insert(record.id, record.clone());
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.records().insert(record.id, record.clone());
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let now = OffsetDateTime::now_utc();
        Ok(self
            .records()
            .get(id)
            .filter(|record| record.expiry_date > now)
            .cloned())
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.records().remove(id);
        Ok(())
    }
}
