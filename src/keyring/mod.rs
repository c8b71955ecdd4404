//! The signing key ring: loaded from the configured keys at start, and
//! reloaded on SIGHUP (or when a watched file changes) without downtime. A
//! reload that fails in any way is refused and the previous ring keeps signing.
//! With `keys.secret_id` or `keys.ring_file` the ring is one document
//! ([`document`]) in a store ([`store`]), polled for new versions.

pub mod document;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::{KeyKind, KeyLocation, RingSource, Settings};
use crate::metrics::Metrics;
use crate::minter::Minter;
use crate::signer::remote::{BoxFuture, RemoteKey};
use crate::signer::{
    ErrorKind, HashAlgorithm, KeyAlgorithm, KeyPairId, KeyRing, KeySource, KeySpec, PrivateKey,
    Remote,
};
use secrecy::ExposeSecret;
use store::{RingStore, StoreError};

/// Where the configuration is read again from on reload.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    /// The embedded `config/default.toml`.
    Embedded,
    File(PathBuf),
}

impl ConfigSource {
    pub fn load(&self) -> Result<Settings, String> {
        match self {
            Self::Embedded => Settings::load_default(),
            Self::File(path) => Settings::load_file(path),
        }
        .map_err(|e| e.to_string())
    }

    fn path(&self) -> Option<&PathBuf> {
        match self {
            Self::Embedded => None,
            Self::File(path) => Some(path),
        }
    }
}

/// The part of the running service a reload touches: the ring the minter
/// signs with, the reload counter, and the key files to watch.
#[derive(Clone)]
pub struct KeyHolder {
    minter: Arc<Minter>,
    metrics: Arc<Metrics>,
    key_files: Vec<PathBuf>,
    /// The ring's store, polled every interval.
    ring: Option<(RingSource, Duration)>,
    remote_timeout: Duration,
}

impl KeyHolder {
    /// Watches the key files of `settings`, the configuration serving now.
    pub fn new(minter: Arc<Minter>, metrics: Arc<Metrics>, settings: &Settings) -> Self {
        let key_files = settings
            .keys
            .keys
            .iter()
            .filter_map(|key| match &key.location {
                KeyLocation::File(path) => Some(path.clone()),
                _ => None,
            })
            .collect();
        let ring = settings
            .keys
            .ring
            .clone()
            .map(|source| (source, settings.keys.ring_poll_interval));
        Self {
            minter,
            metrics,
            key_files,
            ring,
            remote_timeout: settings.keys.remote_timeout,
        }
    }
}

/// With `keys.secret_id` or `keys.ring_file`, reads the ring document and
/// puts its keys into `settings` as if configured there. The document's
/// version, or `None` when the keys are configured directly.
pub async fn resolve_ring(settings: &mut Settings) -> Result<Option<String>, String> {
    let Some(source) = settings.keys.ring.clone() else {
        return Ok(None);
    };
    let store = RingStore::new(&source, settings.keys.remote_timeout)?;
    let stored = store.read().await.map_err(|e| e.to_string())?;
    let (entries, active) = stored
        .document
        .entries()
        .map_err(|e| format!("{source}: {e}"))?;
    let kms = entries
        .iter()
        .any(|entry| matches!(entry.location, KeyLocation::Kms(_)));
    if kms && settings.cloudfront.hash_algorithm == HashAlgorithm::Sha1 {
        return Err(format!(
            "cloudfront.hash_algorithm: is sha1, but a key of {source} is in AWS KMS, \
             which signs over SHA-256 only: set hash_algorithm = \"sha256\""
        ));
    }
    settings.keys.keys = entries;
    settings.keys.active = Some(active);
    Ok(Some(stored.version))
}

/// Reads the configuration again and swaps in its key ring. On any failure
/// the old ring stays, the failure is logged (never key material) and counted.
pub async fn reload(state: &KeyHolder, source: &ConfigSource) -> Result<KeyPairId, String> {
    let result = async {
        let mut settings = source.load()?;
        // The poller reads the store named at start.
        if settings.keys.ring.as_ref() != state.ring.as_ref().map(|(ring, _)| ring) {
            return Err(
                "keys.secret_id or keys.ring_file changed: restart cfmint to read \
                        the key ring from another place"
                    .to_owned(),
            );
        }
        let version = resolve_ring(&mut settings).await?;
        if settings.keys.keys.is_empty() {
            return Err("no [[keys.key]] configured; keeping the current keys".to_owned());
        }
        let timeout = settings.keys.remote_timeout;
        let (ring, settings) =
            tokio::task::spawn_blocking(move || key_ring(&settings).map(|ring| (ring, settings)))
                .await
                .map_err(|e| format!("key loading failed: {e}"))??;
        // Keys in stores must be reachable before they replace working ones:
        // the active key without fail, the others unless merely unreachable.
        let mut refused = Vec::new();
        for (entry, result) in connect_remote_keys(&ring, &settings, timeout).await {
            match result {
                Err(e) if *ring.active().id() == entry || e.kind() != ErrorKind::Unavailable => {
                    refused.push(format!("{entry}: {e}"));
                }
                Err(e) => tracing::warn!(
                    key_pair_id = %entry,
                    error = %e,
                    "a key's store is unreachable; it will be retried"
                ),
                Ok(_) => {}
            }
        }
        if !refused.is_empty() {
            return Err(refused.join("\n"));
        }
        Ok((ring, version))
    }
    .await;
    match result {
        Ok((ring, version)) => {
            let active = ring.active().id().clone();
            let (algorithm, keys) = (ring.active().algorithm(), ring.keys().len());
            let algorithm = algorithm.map_or("unknown".to_owned(), |a| a.to_string());
            // Swap first: once the log says the new key signs, it does.
            state.minter.replace_ring(ring, version.clone());
            state.metrics.key_reload("ok");
            tracing::info!(
                key_pair_id = %active,
                algorithm = %algorithm,
                keys,
                ring_version = version.as_deref(),
                "key ring reloaded; signing with the active key"
            );
            Ok(active)
        }
        Err(error) => {
            state.metrics.key_reload("failed");
            tracing::error!(
                error = %error,
                key_pair_id = %state.minter.ring().active().id(),
                "key reload refused; the previous keys keep signing"
            );
            Err(error)
        }
    }
}

/// Reloads on SIGHUP, (with `keys.watch`) when the config file or a key
/// file changes, polled every two seconds, and when the ring's store holds a
/// new version, polled every `keys.secret_poll_interval`.
pub async fn reload_on_signal(state: KeyHolder, source: ConfigSource, watch: bool) {
    let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        tracing::warn!("cannot listen for SIGHUP; key reload by signal is off");
        return;
    };
    let mut seen = fingerprint(&state, &source);
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let ring = state.ring.clone();
    let poll_interval = ring
        .as_ref()
        .map_or(Duration::from_secs(3600), |(_, every)| *every);
    let store = ring.and_then(|(ring, _)| {
        RingStore::new(&ring, state.remote_timeout)
            .map(|store| (ring, store))
            .ok()
    });
    let mut poll =
        tokio::time::interval_at(tokio::time::Instant::now() + poll_interval, poll_interval);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A version that was refused is not tried again until it changes.
    let mut refused: Option<String> = None;
    loop {
        tokio::select! {
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: reloading keys");
                let _ = reload(&state, &source).await;
            }
            _ = poll.tick(), if store.is_some() => {
                let (ring, store) = store.as_ref().expect("polled only with a store");
                let version = match store.read().await {
                    Ok(stored) => stored.version,
                    Err(StoreError::Invalid { version, .. }) => version,
                    Err(error) => {
                        state.metrics.key_reload("unreachable");
                        tracing::warn!(
                            source = %ring,
                            error = %error,
                            "cannot read the key ring; the current keys keep signing"
                        );
                        continue;
                    }
                };
                let current = state.minter.ring_version();
                if current.as_deref().map(String::as_str) != Some(version.as_str())
                    && refused.as_deref() != Some(version.as_str())
                {
                    tracing::info!(
                        source = %ring,
                        ring_version = %version,
                        "the key ring has a new version: reloading keys"
                    );
                    refused = reload(&state, &source).await.err().map(|_| version);
                }
            }
            _ = tick.tick(), if watch => {
                let now = fingerprint(&state, &source);
                if now != seen {
                    seen = now;
                    tracing::info!("a key or config file changed: reloading keys");
                    let _ = reload(&state, &source).await;
                }
            }
        }
    }
}

/// Modification times of the config file and every configured key file.
fn fingerprint(state: &KeyHolder, source: &ConfigSource) -> Vec<Option<SystemTime>> {
    source
        .path()
        .into_iter()
        .chain(&state.key_files)
        .map(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok())
        .collect()
}

/// The configured keys, or a throwaway RSA-2048 key when none is configured.
pub fn key_ring(settings: &Settings) -> Result<KeyRing, String> {
    let backend = settings.cloudfront.backend;
    if settings.keys.keys.is_empty() {
        let id = KeyPairId::new(&format!(
            "KTHROWAWAY{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8].to_uppercase()
        ))
        .map_err(|e| e.to_string())?;
        let generated = backend
            .generate(KeySpec::Rsa { bits: 2048 })
            .map_err(|e| format!("keys: cannot generate a throwaway key: {e}"))?;
        let key = PrivateKey::from_pem(
            id.clone(),
            &generated.private_pem,
            KeySource::Inline,
            backend,
        )
        .map_err(|e| format!("keys: {e}"))?;
        let public_key = key
            .public_key()
            .and_then(|public| public.to_pem())
            .map_err(|e| format!("keys: {e}"))?;
        tracing::warn!(
            key_pair_id = %id,
            public_key = %public_key.trim_end(),
            "no signing key configured: generated a throwaway RSA-2048 key; \
             CloudFront will not accept its signatures (configure [[keys.key]])"
        );
        return KeyRing::new(vec![key], &id).map_err(|e| format!("keys: {e}"));
    }
    let mut keys = Vec::new();
    let mut problems = Vec::new();
    let stores = RemoteStores::new(settings);
    for (index, entry) in settings.keys.keys.iter().enumerate() {
        let id = &entry.id;
        let key = match &entry.location {
            KeyLocation::File(path) => PrivateKey::from_file(id.clone(), path, backend),
            KeyLocation::Env(name) => PrivateKey::from_env(id.clone(), name, backend),
            KeyLocation::Inline(pem) => {
                PrivateKey::from_pem(id.clone(), pem.expose_secret(), KeySource::Inline, backend)
            }
            KeyLocation::Kms(_) | KeyLocation::Pkcs11(_) => stores
                .key(&entry.location)
                .map(|remote| PrivateKey::remote(id.clone(), remote)),
        };
        let key = match key {
            Ok(key) => key,
            Err(e) => {
                problems.push(format!("{} ({id}): {e}", field(settings, index)));
                continue;
            }
        };
        // A key in a store is checked once the store reports it.
        if let (Some(kind), Some(algorithm)) = (entry.kind, key.algorithm())
            && kind != kind_of(algorithm)
        {
            problems.push(format!(
                "{}.type ({id}): is \"{}\", but the {} holds an {algorithm} key, not the \
                 configured type: set type = \"{}\" or give an {} key",
                field(settings, index),
                kind.name(),
                key.source(),
                kind_of(algorithm).name(),
                kind.name().to_uppercase(),
            ));
            continue;
        }
        keys.push(key);
    }
    if !problems.is_empty() {
        // Every key's problem, one per line.
        return Err(problems.join("\n"));
    }
    let active = settings
        .keys
        .active
        .as_ref()
        .expect("validated: an active key");
    KeyRing::new(keys, active).map_err(|e| format!("keys.active: {e}"))
}

/// Where a key is configured, for messages.
fn field(settings: &Settings, index: usize) -> String {
    match &settings.keys.ring {
        Some(source) => format!("{source}: keys[{index}]"),
        None => format!("keys.key[{index}]"),
    }
}

/// The `type` that names an algorithm's keys.
fn kind_of(algorithm: KeyAlgorithm) -> KeyKind {
    match algorithm {
        KeyAlgorithm::Rsa { .. } => KeyKind::Rsa,
        KeyAlgorithm::EcdsaP256 => KeyKind::Ecdsa,
    }
}

fn kind_matches(kind: Option<KeyKind>, algorithm: KeyAlgorithm) -> bool {
    kind.is_none_or(|kind| kind == kind_of(algorithm))
}

/// The key stores the configuration names, set up once per key ring.
struct RemoteStores<'a> {
    #[cfg_attr(not(feature = "pkcs11"), allow(dead_code))]
    settings: &'a Settings,
    #[cfg(feature = "aws-kms")]
    kms: Arc<crate::signer::remote::kms::KmsStore>,
}

impl<'a> RemoteStores<'a> {
    fn new(settings: &'a Settings) -> Self {
        Self {
            settings,
            #[cfg(feature = "aws-kms")]
            kms: crate::signer::remote::kms::KmsStore::new(
                settings.cloudfront.backend,
                settings.keys.remote_timeout,
            ),
        }
    }

    fn key(&self, location: &KeyLocation) -> Result<Arc<dyn RemoteKey>, crate::signer::Error> {
        match location {
            #[cfg(feature = "aws-kms")]
            KeyLocation::Kms(key_id) => Ok(Arc::new(self.kms.key(key_id.clone()))),
            #[cfg(feature = "pkcs11")]
            KeyLocation::Pkcs11(uri) => {
                use crate::signer::remote::pkcs11::{Pkcs11Key, Pkcs11Options};
                use secrecy::ExposeSecret;
                let pkcs11 = self.settings.keys.pkcs11.as_ref();
                let options = Pkcs11Options {
                    module: pkcs11.and_then(|p| p.module.clone()),
                    pin: pkcs11
                        .and_then(|p| p.pin.as_ref())
                        .map(|pin| zeroize::Zeroizing::new(pin.expose_secret().to_owned())),
                    backend: self.settings.cloudfront.backend,
                };
                Ok(Arc::new(Pkcs11Key::new(uri, options)?))
            }
            other => Err(crate::signer::Error::new(
                ErrorKind::InvalidKey,
                format!("{other:?}: not a key store this build supports"),
            )),
        }
    }
}

/// Runs `call` on a key's store within `timeout`. A store whose calls
/// block is called from a blocking thread.
async fn on_store<T: Send + 'static>(
    remote: &Remote,
    timeout: Duration,
    call: for<'a> fn(&'a Remote) -> BoxFuture<'a, Result<T, crate::signer::Error>>,
) -> Result<T, crate::signer::Error> {
    let run = async {
        if remote.key().blocks() {
            let (remote, handle) = (remote.clone(), tokio::runtime::Handle::current());
            tokio::task::spawn_blocking(move || handle.block_on(call(&remote)))
                .await
                .unwrap_or_else(|e| Err(unavailable(format!("the key-store task failed: {e}"))))
        } else {
            call(remote).await
        }
    };
    tokio::time::timeout(timeout, run)
        .await
        .unwrap_or_else(|_| Err(unavailable(format!("no answer within {timeout:?}"))))
}

/// Reaches one key's store, within `timeout`.
pub async fn connect_key(
    remote: &Remote,
    timeout: Duration,
) -> Result<KeyAlgorithm, crate::signer::Error> {
    on_store(remote, timeout, |remote| Box::pin(remote.connect())).await
}

/// Asks one connected key's store whether it still works, within `timeout`.
async fn check_key(remote: &Remote, timeout: Duration) -> Result<(), crate::signer::Error> {
    let result = on_store(remote, timeout, |remote| Box::pin(remote.check())).await;
    if result.is_err() {
        remote.disconnect();
    }
    result
}

fn unavailable(message: String) -> crate::signer::Error {
    crate::signer::Error::new(ErrorKind::Unavailable, message)
}

/// Connects every key of `ring` held by a store, checking each against its
/// configured `type`. One result per remote key, by key pair id.
pub async fn connect_remote_keys(
    ring: &KeyRing,
    settings: &Settings,
    timeout: Duration,
) -> Vec<(KeyPairId, Result<KeyAlgorithm, crate::signer::Error>)> {
    let mut results = Vec::new();
    for key in ring.keys() {
        let Some(remote) = key.remote_key() else {
            continue;
        };
        let kind = settings
            .keys
            .keys
            .iter()
            .find(|entry| &entry.id == key.id())
            .and_then(|entry| entry.kind);
        let result = connect_key(remote, timeout).await.and_then(|algorithm| {
            if kind_matches(kind, algorithm) {
                Ok(algorithm)
            } else {
                remote.disconnect();
                Err(crate::signer::Error::new(
                    ErrorKind::InvalidKey,
                    format!("the store holds an {algorithm} key, not the configured type"),
                ))
            }
        });
        results.push((key.id().clone(), result));
    }
    results
}

/// Keeps the keys in stores usable: every `interval`, a key whose store was
/// unreachable is connected again, and a connected one is asked whether it
/// still works (a PKCS#11 token removed or logged out). `/readyz` follows.
pub async fn watch_remote_keys(state: KeyHolder, timeout: Duration, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let ring = state.minter.ring();
        for key in ring.keys() {
            let Some(remote) = key.remote_key() else {
                continue;
            };
            let store = remote.key().store();
            let was_up = remote.is_connected();
            let result = if was_up {
                check_key(remote, timeout).await.map(|()| None)
            } else {
                connect_key(remote, timeout).await.map(Some)
            };
            match (&result, was_up) {
                (Ok(Some(algorithm)), _) => tracing::info!(
                    key_pair_id = %key.id(),
                    store,
                    algorithm = %algorithm,
                    "key store reachable: the key signs"
                ),
                (Err(e), true) => tracing::error!(
                    key_pair_id = %key.id(),
                    store,
                    error = %e,
                    "key store unavailable: this key cannot sign until it is back"
                ),
                (Err(e), false) => tracing::debug!(
                    key_pair_id = %key.id(),
                    store,
                    error = %e,
                    "key store still unavailable"
                ),
                (Ok(None), _) => {}
            }
            state
                .metrics
                .remote_key_up(key.id().as_str(), store, remote.is_connected());
        }
    }
}
