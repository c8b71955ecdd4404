//! What one mint produces: the policy for a granted path (expiry, rounding,
//! IP binding), signed with the active key. Identical policies signed by the
//! same key reuse one signature from a bounded cache while they are valid,
//! and identical policies under way are signed once for all who ask (single
//! flight), so with rounded expiry a refresh storm or a live audience costs
//! one signature per path and window. Keys in a key store (KMS, PKCS#11)
//! sign through [`RemoteSigning`]: a bounded number at once, each within a
//! timeout. No HTTP types here.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::{ArcSwap, ArcSwapOption};
use moka::Expiry;
use moka::sync::Cache;

use tokio::sync::{Semaphore, watch};
use tokio::time::timeout_at;

use crate::auth::path::RequestedPath;
use crate::auth::proof::{Scope, Widening};
use crate::config::{CloudFront, MintSettings, SigningMode};
use crate::metrics::Metrics;
use crate::pool::{PoolError, SigningPool};
use crate::signer::{self, ErrorKind, KeyRing, Policy, PrivateKey, SignedPolicy};

type CacheKey = (String, String);

/// The active key ring (swapped whole on reload) and the settings every
/// policy is built from.
pub struct Minter {
    ring: ArcSwap<KeyRing>,
    ring_version: ArcSwapOption<String>,
    cloudfront: CloudFront,
    mint: MintSettings,
    cache: Option<Cache<CacheKey, Arc<SignedPolicy>>>,
    signing: Signing,
    remote: RemoteSigning,
}

/// How signatures from key stores are bounded and shared.
pub struct RemoteSigning {
    permits: Arc<Semaphore>,
    timeout: Duration,
    /// Seconds a client is told to wait when the store is unreachable.
    retry_unavailable: u64,
    flights: Mutex<HashMap<CacheKey, Flight>>,
    metrics: Option<Arc<Metrics>>,
}

/// A signature under way; followers wait for what the leader sends.
type Flight = watch::Receiver<Option<Result<Arc<SignedPolicy>, MintError>>>;

impl RemoteSigning {
    /// At most `concurrency` signatures at once, each given up after
    /// `timeout` (waiting for a slot included); `retry_unavailable` is the
    /// `Retry-After` when the store cannot be reached.
    pub fn new(
        concurrency: usize,
        timeout: Duration,
        retry_unavailable: Duration,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency)),
            timeout,
            retry_unavailable: retry_unavailable.as_secs().max(1),
            flights: Mutex::default(),
            metrics,
        }
    }

    fn count(&self, store: &'static str, result: &'static str) {
        if let Some(metrics) = &self.metrics {
            metrics.remote_signature(store, result);
        }
    }

    fn failure(&self, error: signer::Error) -> MintError {
        let (failure, retry_after) = match error.kind() {
            ErrorKind::Throttled => (RemoteFailure::Throttled, 1),
            ErrorKind::Unavailable => (RemoteFailure::Unavailable, self.retry_unavailable),
            _ => return MintError::Signer(error),
        };
        MintError::Remote {
            failure,
            retry_after,
            message: error.to_string(),
        }
    }

    fn timed_out(&self, waiting_for: &str) -> MintError {
        MintError::Remote {
            failure: RemoteFailure::Timeout,
            retry_after: 1,
            message: format!(
                "the key store did not sign within keys.remote_timeout ({:?}): {waiting_for}",
                self.timeout
            ),
        }
    }
}

/// Removes a flight when its leader finishes or is cancelled; followers of a
/// cancelled leader see the channel close and try again.
struct FlightGuard<'a> {
    flights: &'a Mutex<HashMap<CacheKey, Flight>>,
    key: &'a CacheKey,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut flights) = self.flights.lock() {
            flights.remove(self.key);
        }
    }
}

/// How a caller of [`Minter::single_flight`] got its signature.
enum Flown {
    /// It signed, for itself and everyone who joined.
    Led(Result<(Arc<SignedPolicy>, Option<Duration>), MintError>),
    /// Another caller signed the same policy.
    Joined(Result<Arc<SignedPolicy>, MintError>),
    /// The deadline passed while waiting for another caller.
    TimedOut,
}

/// Why a key store did not sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteFailure {
    Throttled,
    Unavailable,
    Timeout,
}

impl RemoteFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Throttled => "throttled",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
        }
    }
}

/// Where private-key operations run (`mint.signing`).
enum Signing {
    Inline,
    Blocking,
    Pool(SigningPool),
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum MintError {
    #[error(transparent)]
    Signer(#[from] signer::Error),
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error("the signing task failed: {0}")]
    Task(String),
    /// The key store did not sign now; the caller may retry after
    /// `retry_after` seconds.
    #[error("{message}")]
    Remote {
        failure: RemoteFailure,
        retry_after: u64,
        message: String,
    },
    /// The grant proof failed: the resource would open more than granted.
    #[error("{0}")]
    Widens(Widening),
    /// The credential that asked ends sooner than `mint.min_ttl` from now.
    #[error(
        "the credential that authorised this ends in {left} s, less than mint.min_ttl ({min} s); renew it (log in again, or send a fresh token) and mint again"
    )]
    CredentialEnding { left: u64, min: u64 },
}

impl From<tokio::task::JoinError> for MintError {
    fn from(error: tokio::task::JoinError) -> Self {
        Self::Task(error.to_string())
    }
}

impl MintError {
    /// Seconds to tell the client to wait, for a failure that passes.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Remote { retry_after, .. } => Some(*retry_after),
            Self::Pool(PoolError::Overloaded(_)) => Some(1),
            _ => None,
        }
    }
}

/// Cached signatures live until their policy expires.
struct UntilExpiry;

impl Expiry<CacheKey, Arc<SignedPolicy>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        signed: &Arc<SignedPolicy>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(Duration::from_secs(signed.expires().saturating_sub(now())))
    }
}

/// What to sign: a checked path, and for one file an optional query string
/// (already checked) that becomes part of the signed URL; what the caller
/// was granted, which the resource must not exceed (the grant proof); and
/// when the credential that asked ends, which the policy must not outlive.
#[derive(Clone, Copy)]
pub struct MintRequest<'a> {
    pub path: &'a RequestedPath,
    pub scope: &'a Scope,
    pub query: Option<&'a str>,
    pub ip: Option<Ipv4Addr>,
    /// The lifetime asked for (already within bounds); `None`: `mint.ttl`.
    pub ttl: Option<Duration>,
    /// Epoch seconds when the session or token behind the request ends.
    pub not_after: Option<u64>,
}

impl<'a> MintRequest<'a> {
    /// `path` within `scope`, with the configured lifetime, no query,
    /// unbound, for a credential without an end.
    pub fn new(path: &'a RequestedPath, scope: &'a Scope) -> Self {
        Self {
            path,
            scope,
            query: None,
            ip: None,
            ttl: None,
            not_after: None,
        }
    }
}

/// A policy ready to sign, and what it was built from.
pub struct Prepared {
    pub policy: Policy,
    /// Whether CloudFront reads the resource with wildcards (custom policy).
    pub wildcards: bool,
    pub resource: String,
    pub url: String,
    pub issued_at: u64,
}

/// A signed policy and the times the caller is told about.
pub struct Minted {
    pub signed: Arc<SignedPolicy>,
    pub resource: String,
    pub url: String,
    pub issued_at: u64,
    pub expires_at: u64,
    pub refresh_at: u64,
    /// Time spent in the private-key operation; `None` when the signature
    /// came from the cache.
    pub signing: Option<Duration>,
}

impl Minter {
    pub fn new(ring: KeyRing, cloudfront: CloudFront, mint: MintSettings) -> std::io::Result<Self> {
        // Without rounding, two policies match only within the same second:
        // the lookups would cost more than the rare hit saves.
        let rounded = mint.expiry_rounding.as_secs() > 1;
        let cache = (mint.signature_cache > 0 && rounded).then(|| {
            Cache::builder()
                .max_capacity(mint.signature_cache)
                .expire_after(UntilExpiry)
                .build()
        });
        let signing = match mint.signing {
            SigningMode::Inline => Signing::Inline,
            SigningMode::Blocking => Signing::Blocking,
            SigningMode::Pool(threads) => Signing::Pool(SigningPool::new(threads)?),
        };
        Ok(Self {
            ring: ArcSwap::from_pointee(ring),
            ring_version: ArcSwapOption::empty(),
            cloudfront,
            mint,
            cache,
            signing,
            remote: RemoteSigning::new(64, Duration::from_secs(2), Duration::from_secs(5), None),
        })
    }

    /// The version of the key ring document `ring` came from.
    pub fn with_ring_version(self, version: Option<String>) -> Self {
        self.ring_version.store(version.map(Arc::new));
        self
    }

    /// How keys in key stores are bounded, timed out and counted.
    pub fn with_remote(mut self, remote: RemoteSigning) -> Self {
        self.remote = remote;
        self
    }

    /// The ring signing now.
    pub fn ring(&self) -> Arc<KeyRing> {
        self.ring.load_full()
    }

    /// The version of the key ring document the ring came from, if any.
    pub fn ring_version(&self) -> Option<Arc<String>> {
        self.ring_version.load_full()
    }

    /// Replaces the ring; mints already under way finish with the old one.
    pub fn replace_ring(&self, ring: KeyRing, version: Option<String>) {
        self.ring.store(Arc::new(ring));
        self.ring_version.store(version.map(Arc::new));
        if let Some(cache) = &self.cache {
            cache.invalidate_all();
        }
    }

    /// The policy a request would be signed under, once the grant proof
    /// holds: what [`Minter::mint`] signs, without a signature.
    pub fn prepare(&self, request: MintRequest<'_>) -> Result<Prepared, MintError> {
        let MintRequest {
            path,
            scope,
            query,
            ip,
            ttl,
            not_after,
        } = request;
        let mut url = format!("{}{}", self.cloudfront.base_url, path.as_str());
        if let Some(query) = query.filter(|_| !path.signs_below()) {
            url.push('?');
            url.push_str(query);
        }
        let resource = if path.signs_below() {
            format!("{url}*")
        } else {
            url.clone()
        };
        let issued_at = now();
        let mut expires_at = self.expiry(issued_at, ttl.unwrap_or(self.mint.ttl));
        if let Some(end) = not_after {
            let (left, min) = (end.saturating_sub(issued_at), self.mint.min_ttl.as_secs());
            if left < min.max(1) {
                return Err(MintError::CredentialEnding { left, min });
            }
            expires_at = expires_at.min(end);
        }
        let mut builder = Policy::builder(resource.clone()).expires(expires_at);
        if let Some(ip) = ip {
            builder = builder.source_ip(format!("{ip}/32"));
        }
        let policy = builder.build()?;
        let wildcards = !self.cloudfront.policy.is_canned(&policy);
        scope
            .prove(&self.cloudfront.base_url, &resource, wildcards)
            .map_err(MintError::Widens)?;
        Ok(Prepared {
            policy,
            wildcards,
            resource,
            url,
            issued_at,
        })
    }

    /// Signs `path` (a folder or prefix covers every URL starting with it),
    /// with `query` (one file only) as part of the URL, valid for `ttl`
    /// but never past `not_after`, optionally bound to one IPv4 address;
    /// refused unless the grant proof shows it opens nothing outside
    /// `scope`.
    pub async fn mint(&self, request: MintRequest<'_>) -> Result<Minted, MintError> {
        let Prepared {
            policy,
            resource,
            url,
            issued_at,
            ..
        } = self.prepare(request)?;
        let expires_at = policy.expires();
        let ring = self.ring.load_full();
        let key = (ring.active().id().as_str().to_owned(), policy.to_json());
        let cached = self.cache.as_ref().and_then(|cache| cache.get(&key));
        let (signed, signing) = match cached {
            Some(signed) => (signed, None),
            None if ring.active().remote_key().is_some() => {
                self.sign_remote(ring.active().clone(), policy, key).await?
            }
            // With a cache, a refresh storm's identical policies are signed
            // once: the first caller signs, the others wait for it.
            None if self.cache.is_some() => {
                let lead = || self.sign(ring, policy);
                match self.single_flight(&key, None, lead).await {
                    Flown::Led(result) => result?,
                    Flown::Joined(result) => (result?, None),
                    Flown::TimedOut => unreachable!("no deadline to pass"),
                }
            }
            None => self.sign(ring, policy).await?,
        };
        let lifetime = expires_at - issued_at;
        Ok(Minted {
            signed,
            resource,
            url,
            issued_at,
            expires_at,
            refresh_at: issued_at + (lifetime as f64 * self.mint.refresh_at) as u64,
            signing,
        })
    }

    /// Signs with the active key, where `mint.signing` says; also returns
    /// the time the signature itself took.
    async fn sign(
        &self,
        ring: Arc<KeyRing>,
        policy: Policy,
    ) -> Result<(Arc<SignedPolicy>, Option<Duration>), MintError> {
        let (form, hash) = (self.cloudfront.policy, self.cloudfront.hash_algorithm);
        let sign = move || {
            let started = Instant::now();
            let signed = ring.sign(&policy, form, hash)?;
            Ok::<_, signer::Error>((Arc::new(signed), Some(started.elapsed())))
        };
        Ok(match &self.signing {
            Signing::Inline => sign()?,
            Signing::Blocking => tokio::task::spawn_blocking(sign).await??,
            Signing::Pool(pool) => pool.run(sign).await??,
        })
    }

    /// Signs with a key in a key store, once for all who ask for the same
    /// policy at the same time, each waiting no longer than
    /// `keys.remote_timeout`.
    async fn sign_remote(
        &self,
        key: PrivateKey,
        policy: Policy,
        cache_key: CacheKey,
    ) -> Result<(Arc<SignedPolicy>, Option<Duration>), MintError> {
        let deadline = tokio::time::Instant::now() + self.remote.timeout;
        let store = key
            .remote_key()
            .map_or("local", |remote| remote.key().store());
        let lead = || self.sign_remote_now(&key, policy, deadline);
        match self.single_flight(&cache_key, Some(deadline), lead).await {
            Flown::Led(result) => {
                self.remote.count(
                    store,
                    match &result {
                        Ok(_) => "ok",
                        Err(MintError::Remote { failure, .. }) => failure.as_str(),
                        Err(_) => "error",
                    },
                );
                result
            }
            Flown::Joined(result) => {
                self.remote.count(store, "joined");
                result.map(|signed| (signed, None))
            }
            Flown::TimedOut => {
                self.remote.count(store, "timeout");
                Err(self.remote.timed_out("waiting for the same signature"))
            }
        }
    }

    /// Runs `lead` once for every caller asking for the same policy at the
    /// same time: the first leads, later ones wait for its result (until
    /// `deadline`, if any). The signature is cached before the flight ends,
    /// so no caller after it signs again.
    async fn single_flight<Fut>(
        &self,
        cache_key: &CacheKey,
        deadline: Option<tokio::time::Instant>,
        lead: impl FnOnce() -> Fut,
    ) -> Flown
    where
        Fut: Future<Output = Result<(Arc<SignedPolicy>, Option<Duration>), MintError>>,
    {
        let mut lead = Some(lead);
        loop {
            let (leader, mut flight) = {
                let mut flights = self
                    .remote
                    .flights
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                match flights.get(cache_key) {
                    Some(flight) => (None, flight.clone()),
                    None => {
                        let (sender, flight) = watch::channel(None);
                        flights.insert(cache_key.clone(), flight.clone());
                        (Some(sender), flight)
                    }
                }
            };
            let Some(sender) = leader else {
                let waited = flight.wait_for(Option::is_some);
                let outcome = match deadline {
                    Some(deadline) => timeout_at(deadline, waited).await.ok(),
                    None => Some(waited.await),
                };
                match outcome {
                    Some(Ok(result)) => {
                        return Flown::Joined(result.clone().expect("waited for a result"));
                    }
                    // The leader was cancelled (its client went away): lead now.
                    Some(Err(_)) => continue,
                    None => return Flown::TimedOut,
                }
            };
            let _flight = FlightGuard {
                flights: &self.remote.flights,
                key: cache_key,
            };
            let lead = lead.take().expect("a caller leads at most once");
            let result = lead().await;
            if let (Ok((signed, _)), Some(cache)) = (&result, &self.cache) {
                cache.insert(cache_key.clone(), signed.clone());
            }
            let _ = sender.send(Some(result.clone().map(|(signed, _)| signed)));
            return Flown::Led(result);
        }
    }

    /// One call to the key store, within the concurrency bound and the
    /// deadline. A store whose calls block (PKCS#11) is called on a blocking
    /// thread, which keeps its slot until the call returns.
    async fn sign_remote_now(
        &self,
        key: &PrivateKey,
        policy: Policy,
        deadline: tokio::time::Instant,
    ) -> Result<(Arc<SignedPolicy>, Option<Duration>), MintError> {
        let permit = timeout_at(deadline, self.remote.permits.clone().acquire_owned())
            .await
            .map_err(|_| self.remote.timed_out("every key-store slot stayed busy"))?
            .expect("the semaphore is never closed");
        let (form, hash) = (self.cloudfront.policy, self.cloudfront.hash_algorithm);
        let started = Instant::now();
        let blocks = key.remote_key().is_some_and(|remote| remote.key().blocks());
        let signed = if blocks {
            let (key, handle) = (key.clone(), tokio::runtime::Handle::current());
            let call = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                handle.block_on(key.sign_async(&policy, form, hash))
            });
            timeout_at(deadline, call)
                .await
                .map_err(|_| self.remote.timed_out("the device did not answer"))??
        } else {
            let signed = timeout_at(deadline, key.sign_async(&policy, form, hash))
                .await
                .map_err(|_| self.remote.timed_out("the store did not answer"));
            drop(permit);
            signed?
        };
        let signed = signed.map_err(|e| self.remote.failure(e))?;
        Ok((Arc::new(signed), Some(started.elapsed())))
    }

    /// `now + ttl`, rounded up to the configured granularity so that callers
    /// within one window get identical policies.
    fn expiry(&self, now: u64, ttl: Duration) -> u64 {
        let expires = now + ttl.as_secs();
        let rounding = self.mint.expiry_rounding.as_secs();
        if rounding > 1 {
            expires.div_ceil(rounding) * rounding
        } else {
            expires
        }
    }
}

/// Current time in epoch seconds.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
