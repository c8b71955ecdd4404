//! What one mint produces: the policy for a granted path (expiry, rounding,
//! IP binding), signed with the active key. Identical policies signed by the
//! same key reuse one signature from a bounded cache while they are valid, so
//! with rounded expiry a refresh storm costs one signature per path and window.
//! No HTTP types here.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use moka::Expiry;
use moka::sync::Cache;

use crate::auth::path::RequestedPath;
use crate::config::{CloudFront, MintSettings, SigningMode};
use crate::pool::{PoolError, SigningPool};
use crate::signer::{self, KeyRing, Policy, SignedPolicy};

/// The active key ring (swapped whole on reload) and the settings every
/// policy is built from.
pub struct Minter {
    ring: ArcSwap<KeyRing>,
    cloudfront: CloudFront,
    mint: MintSettings,
    cache: Option<Cache<(String, String), Arc<SignedPolicy>>>,
    signing: Signing,
}

/// Where private-key operations run (`mint.signing`).
enum Signing {
    Inline,
    Blocking,
    Pool(SigningPool),
}

#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error(transparent)]
    Signer(#[from] signer::Error),
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error("the signing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Cached signatures live until their policy expires.
struct UntilExpiry;

impl Expiry<(String, String), Arc<SignedPolicy>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &(String, String),
        signed: &Arc<SignedPolicy>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(Duration::from_secs(signed.expires().saturating_sub(now())))
    }
}

/// What to sign: a checked path, and for one file an optional query string
/// (already checked) that becomes part of the signed URL.
#[derive(Clone, Copy)]
pub struct MintRequest<'a> {
    pub path: &'a RequestedPath,
    pub query: Option<&'a str>,
    pub ip: Option<Ipv4Addr>,
    /// The lifetime asked for (already within bounds); `None`: `mint.ttl`.
    pub ttl: Option<Duration>,
}

impl<'a> MintRequest<'a> {
    /// `path` with the configured lifetime, no query, unbound.
    pub fn new(path: &'a RequestedPath) -> Self {
        Self {
            path,
            query: None,
            ip: None,
            ttl: None,
        }
    }
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
            cloudfront,
            mint,
            cache,
            signing,
        })
    }

    /// The ring signing now.
    pub fn ring(&self) -> Arc<KeyRing> {
        self.ring.load_full()
    }

    /// Replaces the ring; mints already under way finish with the old one.
    pub fn replace_ring(&self, ring: KeyRing) {
        self.ring.store(Arc::new(ring));
        if let Some(cache) = &self.cache {
            cache.invalidate_all();
        }
    }

    /// Signs `path` (a folder or prefix covers every URL starting with it),
    /// with `query` (one file only) as part of the URL, valid for `ttl`,
    /// optionally bound to one IPv4 address.
    pub async fn mint(&self, request: MintRequest<'_>) -> Result<Minted, MintError> {
        let MintRequest {
            path,
            query,
            ip,
            ttl,
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
        let expires_at = self.expiry(issued_at, ttl.unwrap_or(self.mint.ttl));
        let mut builder = Policy::builder(resource.clone()).expires(expires_at);
        if let Some(ip) = ip {
            builder = builder.source_ip(format!("{ip}/32"));
        }
        let policy = builder.build()?;
        let ring = self.ring.load_full();
        let (signed, signing) = match &self.cache {
            None => self.sign(ring, policy).await?,
            Some(cache) => {
                let key = (ring.active().id().as_str().to_owned(), policy.to_json());
                match cache.get(&key) {
                    Some(signed) => (signed, None),
                    None => {
                        let (signed, signing) = self.sign(ring, policy).await?;
                        cache.insert(key, signed.clone());
                        (signed, signing)
                    }
                }
            }
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
