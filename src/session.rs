//! Session store selection (memory, or Redis: one server, a Sentinel set or
//! a Cluster) behind one [`Store`]. A request's store calls share one
//! timeout, so an unreachable Redis, or one failing over, turns into a quick
//! 503. Both can end every session of one subject (revocation): Redis keeps
//! a set of session ids per subject, so any replica can, and with replicas
//! behind it a revocation counts only once a replica has it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
#[cfg(feature = "redis")]
use fred::interfaces::{ClientLike, KeysInterface, SetsInterface};
#[cfg(feature = "redis")]
use fred::prelude::{Builder, Client, Config, Pool, ReconnectPolicy, TlsConnector};
#[cfg(feature = "redis")]
use fred::types::{ClusterHash, CustomCommand, Expiration, SetOptions};
#[cfg(feature = "redis")]
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

use crate::auth::Identity;
use crate::config::{SessionSettings, StoreKind};
use crate::metrics::Metrics;

tokio::task_local! {
    /// How long the request being answered has waited on the store so far.
    static WAITED: std::cell::Cell<Duration>;
}

/// Answers `request` with one store budget: its store calls (the session's
/// load and save, the shared rate limits) wait at most
/// `session.store_timeout` together, not each.
pub async fn with_store_budget<F: Future>(request: F) -> F::Output {
    WAITED
        .scope(std::cell::Cell::new(Duration::ZERO), request)
        .await
}

/// `call`, given what is left of the request's store budget (all of
/// `timeout` outside a request); `None` when that ran out first.
pub async fn within_budget<T>(timeout: Duration, call: impl Future<Output = T>) -> Option<T> {
    let left = timeout.saturating_sub(WAITED.try_with(|w| w.get()).unwrap_or_default());
    let started = tokio::time::Instant::now();
    let result = tokio::time::timeout(left, call).await.ok();
    let _ = WAITED.try_with(|w| w.set(w.get() + started.elapsed()));
    result
}

/// Session key holding the [`Identity`] (as [`Identity::to_session`] text).
pub const IDENTITY_KEY: &str = "identity";

/// The subject of the identity a session record holds, if any.
fn subject(record: &Record) -> Option<String> {
    let text = record.data.get(IDENTITY_KEY)?.as_str()?;
    Identity::from_session(text).map(|identity| identity.sub)
}

/// The store the session layer uses: memory or Redis, each call bounded.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    /// The bound on each Redis call, and where its failures are counted.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    timeout: Duration,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    metrics: Arc<Metrics>,
}

#[derive(Debug, Clone)]
enum Backend {
    Memory(MemoryStore),
    #[cfg(feature = "redis")]
    Redis(RedisSessions),
}

impl Store {
    /// Builds the configured store. Redis connects in the background and
    /// reconnects forever; until it answers, readiness says so.
    pub fn new(settings: &SessionSettings, metrics: Arc<Metrics>) -> Result<Self, String> {
        let backend = match &settings.store {
            StoreKind::Memory => Backend::Memory(MemoryStore::default()),
            #[cfg(not(feature = "redis"))]
            StoreKind::Redis { .. } => {
                return Err(format!("session.store: {}", crate::config::REDIS_NOT_BUILT));
            }
            #[cfg(feature = "redis")]
            StoreKind::Redis {
                url,
                ca_file,
                topology,
                revoke_replicas,
            } => {
                let config = redis_config(url, ca_file.as_deref())?;
                let timeout = settings.store_timeout;
                let builder = || {
                    let mut builder = Builder::from_config(config.clone());
                    builder
                        .with_connection_config(|c| {
                            c.connection_timeout = timeout;
                            c.internal_command_timeout = timeout;
                            c.max_command_attempts = 1;
                        })
                        .with_performance_config(|c| c.default_command_timeout = timeout)
                        .set_policy(ReconnectPolicy::new_constant(0, 250));
                    builder
                };
                let pool = builder()
                    .build_pool(4)
                    .map_err(|e| format!("session.redis_url: {}", e.details()))?;
                pool.connect();
                // Revocations wait for replicas (a blocking WAIT) on a
                // connection of their own, never stalling session traffic.
                let revoker = if *revoke_replicas > 0 {
                    let client = builder()
                        .build()
                        .map_err(|e| format!("session.redis_url: {}", e.details()))?;
                    client.connect();
                    Some(client)
                } else {
                    None
                };
                Backend::Redis(RedisSessions {
                    pool,
                    revoker,
                    revoke_replicas: i64::from(*revoke_replicas),
                    topology: *topology,
                    prefix: settings.redis_prefix.clone(),
                    index_lifetime: settings.max_lifetime,
                    timeout,
                })
            }
        };
        Ok(Self {
            backend,
            timeout: settings.store_timeout,
            metrics,
        })
    }

    /// Everything [`Store::new`] checks, without connecting (`cfmint check`).
    pub fn check(settings: &SessionSettings) -> Result<(), String> {
        match &settings.store {
            StoreKind::Memory => Ok(()),
            #[cfg(not(feature = "redis"))]
            StoreKind::Redis { .. } => {
                Err(format!("session.store: {}", crate::config::REDIS_NOT_BUILT))
            }
            #[cfg(feature = "redis")]
            StoreKind::Redis { url, ca_file, .. } => {
                redis_config(url, ca_file.as_deref()).map(|_| ())
            }
        }
    }

    pub fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Memory(_) => "memory",
            #[cfg(feature = "redis")]
            Backend::Redis(_) => "redis",
        }
    }

    /// Whether the store answers now (for `/readyz`).
    pub async fn ping(&self) -> Result<(), String> {
        match &self.backend {
            Backend::Memory(_) => Ok(()),
            #[cfg(feature = "redis")]
            Backend::Redis(redis) => {
                let ping = redis.pool.next().ping::<String>(None);
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
        match &self.backend {
            Backend::Memory(memory) => memory.purge_expired(),
            #[cfg(feature = "redis")]
            Backend::Redis(_) => {}
        }
    }

    pub async fn close(&self) {
        #[cfg(feature = "redis")]
        if let Backend::Redis(redis) = &self.backend {
            let _ = redis.pool.quit().await;
            if let Some(revoker) = &redis.revoker {
                let _ = revoker.quit().await;
            }
        }
    }

    /// The Redis connection pool, when sessions live in Redis (rate limits
    /// share it).
    #[cfg(feature = "redis")]
    pub fn redis(&self) -> Option<(Pool, String)> {
        match &self.backend {
            #[cfg(feature = "redis")]
            Backend::Redis(redis) => Some((redis.pool.clone(), redis.prefix.clone())),
            Backend::Memory(_) => None,
        }
    }

    /// Ends every session of `sub`; answers how many there were.
    pub async fn revoke(&self, sub: &str) -> session_store::Result<usize> {
        match &self.backend {
            Backend::Memory(memory) => Ok(memory.revoke(sub)),
            #[cfg(feature = "redis")]
            Backend::Redis(redis) => self.bounded("revoke", redis.revoke(sub)).await,
        }
    }

    #[cfg(feature = "redis")]
    async fn bounded<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = session_store::Result<T>>,
    ) -> session_store::Result<T> {
        let result = match within_budget(self.timeout, call).await {
            Some(result) => result,
            None => Err(session_store::Error::Backend(format!(
                "session store did not answer within {:?} (session.store_timeout, \
                 for all of a request's store calls together)",
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
            #[cfg(feature = "redis")]
            Backend::Redis(redis) => self.bounded("create", redis.create(record)).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match &self.backend {
            Backend::Memory(store) => store.save(record).await,
            #[cfg(feature = "redis")]
            Backend::Redis(redis) => self.bounded("save", redis.save(record)).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match &self.backend {
            Backend::Memory(store) => store.load(id).await,
            #[cfg(feature = "redis")]
            Backend::Redis(redis) => self.bounded("load", redis.load(id)).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match &self.backend {
            Backend::Memory(store) => store.delete(id).await,
            #[cfg(feature = "redis")]
            Backend::Redis(redis) => self.bounded("delete", redis.delete(id)).await,
        }
    }
}

/// Sessions in Redis: `<prefix>session:<id>` holds the record as JSON and
/// expires with it; `<prefix>subject:<sub>` is the set of that subject's
/// session ids, kept for `session.max_lifetime` after its last change.
///
/// Every command names one key, so each works on a Cluster, where one
/// subject's sessions lie in different slots. The index entry is written
/// before the session: replicas apply a master's writes in order, so a
/// failover that loses the last writes can lose a new session, never leave
/// one its subject's index does not list.
#[cfg(feature = "redis")]
#[derive(Debug, Clone)]
struct RedisSessions {
    pool: Pool,
    /// The connection revocations use, when they wait for replicas.
    revoker: Option<Client>,
    revoke_replicas: i64,
    topology: crate::config::RedisTopology,
    prefix: String,
    index_lifetime: Duration,
    timeout: Duration,
}

#[cfg(feature = "redis")]
fn backend(error: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(error.to_string())
}

/// A key in the same Cluster slot as `key`, named after it: `key`'s hash
/// tag when it has one (then from the prefix, which validation allows only
/// as one whole tag), else `key` itself as the tag.
#[cfg(feature = "redis")]
fn beside(key: &str, suffix: &str) -> String {
    match key
        .split_once('{')
        .and_then(|(_, rest)| rest.split_once('}'))
    {
        Some((tag, _)) if !tag.is_empty() => format!("{{{tag}}}{suffix}"),
        _ => format!("{{{key}}}{suffix}"),
    }
}

#[cfg(feature = "redis")]
impl RedisSessions {
    fn session_key(&self, id: &str) -> String {
        format!("{}session:{id}", self.prefix)
    }

    fn subject_key(&self, sub: &str) -> String {
        format!("{}subject:{sub}", self.prefix)
    }

    /// Lists `id` under `sub`, for revocation.
    async fn index(&self, sub: &str, id: &str) -> session_store::Result<()> {
        let index = self.subject_key(sub);
        let _: i64 = self.pool.sadd(&index, id).await.map_err(backend)?;
        let lifetime = self.index_lifetime.as_secs().max(1) as i64;
        let _: bool = self
            .pool
            .expire(&index, lifetime, None)
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Writes the record (`NX`: only if new; `XX`: only if it still exists,
    /// so a revoked session is never written back); false if not written.
    async fn write(&self, record: &Record, options: SetOptions) -> session_store::Result<bool> {
        let value =
            serde_json::to_vec(record).map_err(|e| session_store::Error::Encode(e.to_string()))?;
        let expires = Expiration::EXAT(record.expiry_date.unix_timestamp());
        let id = record.id.to_string();
        let sub = subject(record);
        if let Some(sub) = &sub {
            self.index(sub, &id).await?;
        }
        let written: bool = self
            .pool
            .set(
                self.session_key(&id),
                value.as_slice(),
                Some(expires),
                Some(options),
                false,
            )
            .await
            .map_err(backend)?;
        if let (false, Some(sub)) = (written, &sub) {
            let _: i64 = self
                .pool
                .srem(self.subject_key(sub), id)
                .await
                .map_err(backend)?;
        }
        Ok(written)
    }

    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        while !self.write(record, SetOptions::NX).await? {
            record.id = Id::default();
        }
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.write(record, SetOptions::XX).await.map(drop)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let data: Option<Vec<u8>> = self
            .pool
            .get(self.session_key(&id.to_string()))
            .await
            .map_err(backend)?;
        data.map(|bytes| {
            serde_json::from_slice(&bytes).map_err(|e| session_store::Error::Decode(e.to_string()))
        })
        .transpose()
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let _: i64 = self
            .pool
            .del(self.session_key(&id.to_string()))
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Ends every session `sub`'s index lists. With
    /// `session.redis_revoke_replicas` above 0, the deletions must reach
    /// that many replicas (`WAIT`) before the revocation is reported done,
    /// so a failover right after cannot bring a session back; the index goes
    /// last, so a revocation that failed part way is simply asked again.
    async fn revoke(&self, sub: &str) -> session_store::Result<usize> {
        let index = self.subject_key(sub);
        let ids: Vec<String> = self.pool.smembers(&index).await.map_err(backend)?;
        let keys: Vec<String> = ids.iter().map(|id| self.session_key(id)).collect();
        let ended = match &self.revoker {
            Some(revoker) => self.confirmed_delete(revoker, &keys).await?,
            None => {
                let mut ended = 0;
                for key in &keys {
                    ended += self.pool.del::<i64, _>(key).await.map_err(backend)?;
                }
                ended
            }
        };
        let _: i64 = self.pool.del(&index).await.map_err(backend)?;
        Ok(ended.max(0) as usize)
    }

    /// Deletes `keys` and waits until `revoke_replicas` replicas of their
    /// masters have the deletions. `WAIT` counts this connection's writes,
    /// so a write that always replicates (a receipt in each key's slot, kept
    /// a minute) follows each delete: asked again after a deletion that was
    /// made but not confirmed, it waits for that one too.
    async fn confirmed_delete(
        &self,
        revoker: &Client,
        keys: &[String],
    ) -> session_store::Result<i64> {
        let mut deleted = 0;
        let mut slots = Vec::new();
        for key in keys {
            deleted += revoker.del::<i64, _>(key).await.map_err(backend)?;
            let receipt = beside(key, ":revoked");
            let _: () = revoker
                .set(&receipt, 1, Some(Expiration::EX(60)), None, false)
                .await
                .map_err(backend)?;
            slots.push(fred::util::redis_keyslot(key.as_bytes()));
        }
        // One master, one stream: a single WAIT covers every write. On a
        // Cluster, one WAIT for each slot, on the master that holds it.
        if self.topology == crate::config::RedisTopology::Cluster {
            slots.sort_unstable();
            slots.dedup();
        } else {
            slots.truncate(1);
        }
        // Within the store timeout, so the refusal says why.
        let millis = (self.timeout.as_millis() * 3 / 4).max(1) as i64;
        for slot in slots {
            let wait = CustomCommand::new_static("WAIT", ClusterHash::Custom(slot), true);
            let acknowledged: i64 = revoker
                .custom(wait, vec![self.revoke_replicas, millis])
                .await
                .map_err(backend)?;
            if acknowledged < self.revoke_replicas {
                return Err(backend(format!(
                    "the revocation is not confirmed: {acknowledged} of the {} replica(s) \
                     session.redis_revoke_replicas requires acknowledged it within {millis} ms; \
                     ask again",
                    self.revoke_replicas
                )));
            }
        }
        Ok(deleted)
    }
}

/// The client configuration for `session.redis_url`. Sentinel and Cluster
/// URLs are told apart by their scheme, which validation has checked against
/// the topology.
#[cfg(feature = "redis")]
fn redis_config(url: &SecretString, ca_file: Option<&std::path::Path>) -> Result<Config, String> {
    let mut config = Config::from_url(url.expose_secret())
        .map_err(|e| format!("session.redis_url: {}", e.details()))?;
    // A TLS scheme is TLS with certificate verification, or no connection at
    // all: never plain text. Sentinels and servers alike.
    config.tls = if url.expose_secret().starts_with("rediss") {
        Some(tls_connector(ca_file)?.into())
    } else {
        None
    };
    Ok(config)
}

/// TLS for `rediss://`: the system's trusted CAs plus `session.redis_ca_file`,
/// the server's name checked against the URL's host.
#[cfg(feature = "redis")]
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

    /// Drops every session of `sub`; answers how many there were.
    fn revoke(&self, sub: &str) -> usize {
        let mut records = self.records();
        let before = records.len();
        records.retain(|_, record| subject(record).as_deref() != Some(sub));
        before - records.len()
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

    /// Only a session that still exists is written: one ended meanwhile
    /// (revoked, logged out) stays ended.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        if let Some(stored) = self.records().get_mut(&record.id) {
            *stored = record.clone();
        }
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use time::{Duration, OffsetDateTime};
    use tower_sessions::session::{Id, Record};
    use tower_sessions::session_store::SessionStore;

    use super::{IDENTITY_KEY, MemoryStore};
    use crate::auth::{Identity, Method};

    fn record(sub: &str) -> Record {
        let identity = Identity::new(sub.into(), Method::Users).to_session();
        Record {
            id: Id::default(),
            data: HashMap::from([(IDENTITY_KEY.to_owned(), identity.into())]),
            expiry_date: OffsetDateTime::now_utc() + Duration::hours(1),
        }
    }

    /// A request's store calls share one timeout: a slow first call leaves
    /// the second only the rest.
    #[tokio::test(start_paused = true)]
    async fn a_request_waits_on_the_store_for_one_timeout_in_all() {
        use super::{with_store_budget, within_budget};
        let timeout = std::time::Duration::from_millis(500);
        let slow = || tokio::time::sleep(std::time::Duration::from_millis(300));
        let (first, second) = with_store_budget(async {
            let first = within_budget(timeout, slow()).await;
            let started = tokio::time::Instant::now();
            let second = within_budget(timeout, slow()).await;
            (first, (second, started.elapsed()))
        })
        .await;
        assert_eq!(first, Some(()));
        assert_eq!(second.0, None);
        assert_eq!(second.1, std::time::Duration::from_millis(200));
        // Outside a request each call has the whole timeout.
        assert_eq!(within_budget(timeout, slow()).await, Some(()));
        assert_eq!(within_budget(timeout, slow()).await, Some(()));
    }

    #[tokio::test]
    async fn a_session_ended_during_a_request_is_not_written_back() {
        let store = MemoryStore::default();
        let (mut carol, mut dave) = (record("carol"), record("dave"));
        store.create(&mut carol).await.unwrap();
        store.create(&mut dave).await.unwrap();
        // A request holding carol's session is under way when she is
        // revoked; its save at the end must not bring her back.
        assert_eq!(store.revoke("carol"), 1);
        store.save(&carol).await.unwrap();
        assert_eq!(store.load(&carol.id).await.unwrap(), None);
        // The same for a logout.
        store.delete(&dave.id).await.unwrap();
        store.save(&dave).await.unwrap();
        assert_eq!(store.load(&dave.id).await.unwrap(), None);
        assert!(store.is_empty());
    }
}

#[cfg(all(test, feature = "redis"))]
mod cluster_keys {
    use fred::util::redis_keyslot;

    use super::beside;

    #[test]
    fn a_receipt_lies_in_its_session_keys_slot() {
        for key in [
            "cfmint:session:AbC-123_xyz",
            "{cfmint}:session:AbC-123_xyz",
            "app.{tenant-7}:session:x",
            "s",
        ] {
            let receipt = beside(key, ":revoked");
            assert_eq!(
                redis_keyslot(key.as_bytes()),
                redis_keyslot(receipt.as_bytes()),
                "{key} -> {receipt}"
            );
            assert_ne!(receipt, key);
        }
    }
}
