//! The signing key ring: loaded from the configured keys at start, and
//! reloaded on SIGHUP (or when a watched file changes) without downtime. A
//! reload that fails in any way is refused and the previous ring keeps signing.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::{KeyKind, KeyLocation, Settings};
use crate::metrics::Metrics;
use crate::minter::Minter;
use crate::signer::{KeyAlgorithm, KeyPairId, KeyRing, KeySource, KeySpec, PrivateKey};

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
                KeyLocation::Env(_) => None,
            })
            .collect();
        Self {
            minter,
            metrics,
            key_files,
        }
    }
}

/// Reads the configuration again and swaps in its key ring. On any failure
/// the old ring stays, the failure is logged (never key material) and counted.
pub async fn reload(state: &KeyHolder, source: &ConfigSource) -> Result<KeyPairId, String> {
    let result = async {
        let settings = source.load()?;
        if settings.keys.keys.is_empty() {
            return Err("no [[keys.key]] configured; keeping the current keys".to_owned());
        }
        tokio::task::spawn_blocking(move || key_ring(&settings))
            .await
            .map_err(|e| format!("key loading failed: {e}"))?
    }
    .await;
    match result {
        Ok(ring) => {
            let active = ring.active().id().clone();
            let (algorithm, keys) = (ring.active().algorithm(), ring.keys().len());
            // Swap first: once the log says the new key signs, it does.
            state.minter.replace_ring(ring);
            state.metrics.key_reload("ok");
            tracing::info!(
                key_pair_id = %active,
                algorithm = %algorithm,
                keys,
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

/// Reloads on SIGHUP, and (with `keys.watch`) when the config file or a key
/// file changes, polled every two seconds.
pub async fn reload_on_signal(state: KeyHolder, source: ConfigSource, watch: bool) {
    let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        tracing::warn!("cannot listen for SIGHUP; key reload by signal is off");
        return;
    };
    let mut seen = fingerprint(&state, &source);
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: reloading keys");
                let _ = reload(&state, &source).await;
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
    for (index, entry) in settings.keys.keys.iter().enumerate() {
        let id = &entry.id;
        let key = match &entry.location {
            KeyLocation::File(path) => PrivateKey::from_file(id.clone(), path, backend),
            KeyLocation::Env(name) => PrivateKey::from_env(id.clone(), name, backend),
        };
        let key = match key {
            Ok(key) => key,
            Err(e) => {
                problems.push(format!("keys.key[{index}] ({id}): {e}"));
                continue;
            }
        };
        let matches = matches!(
            (entry.kind, key.algorithm()),
            (None, _)
                | (Some(KeyKind::Rsa), KeyAlgorithm::Rsa { .. })
                | (Some(KeyKind::Ecdsa), KeyAlgorithm::EcdsaP256)
        );
        if !matches {
            problems.push(format!(
                "keys.key[{index}] ({id}): the file holds an {} key, not the configured type",
                key.algorithm()
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
