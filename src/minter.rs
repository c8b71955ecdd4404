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
use crate::config::{CloudFront, MintSettings};
use crate::signer::{self, KeyRing, Policy, SignedPolicy};

/// The active key ring (swapped whole on reload) and the settings every
/// policy is built from.
pub struct Minter {
    ring: ArcSwap<KeyRing>,
    cloudfront: CloudFront,
    mint: MintSettings,
    cache: Option<Cache<(String, String), Arc<SignedPolicy>>>,
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

/// A signed policy and the times the caller is told about.
pub struct Minted {
    pub signed: Arc<SignedPolicy>,
    /// Whether the signature came from the cache.
    pub cached: bool,
    pub resource: String,
    pub url: String,
    pub issued_at: u64,
    pub expires_at: u64,
    pub refresh_at: u64,
    /// Time spent in the signature itself.
    pub signing: std::time::Duration,
}

impl Minter {
    pub fn new(ring: KeyRing, cloudfront: CloudFront, mint: MintSettings) -> Self {
        // Without rounding, two policies match only within the same second:
        // the lookups would cost more than the rare hit saves.
        let rounded = mint.expiry_rounding.as_secs() > 1;
        let cache = (mint.signature_cache > 0 && rounded).then(|| {
            Cache::builder()
                .max_capacity(mint.signature_cache)
                .expire_after(UntilExpiry)
                .build()
        });
        Self {
            ring: ArcSwap::from_pointee(ring),
            cloudfront,
            mint,
            cache,
        }
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

    /// Signs `path` (a directory path covers everything below it), optionally
    /// bound to one IPv4 address.
    pub fn mint(
        &self,
        path: &RequestedPath,
        ip: Option<Ipv4Addr>,
    ) -> Result<Minted, signer::Error> {
        let url = format!("{}{}", self.cloudfront.base_url, path.as_str());
        let resource = if path.is_directory() {
            format!("{url}*")
        } else {
            url.clone()
        };
        let issued_at = now();
        let expires_at = self.expiry(issued_at);
        let mut builder = Policy::builder(resource.clone()).expires(expires_at);
        if let Some(ip) = ip {
            builder = builder.source_ip(format!("{ip}/32"));
        }
        let policy = builder.build()?;
        let started = Instant::now();
        let ring = self.ring.load();
        let sign = || {
            ring.sign(
                &policy,
                self.cloudfront.policy,
                self.cloudfront.hash_algorithm,
            )
            .map(Arc::new)
        };
        let (signed, cached) = match &self.cache {
            None => (sign()?, false),
            Some(cache) => {
                let key = (ring.active().id().as_str().to_owned(), policy.to_json());
                match cache.get(&key) {
                    Some(signed) => (signed, true),
                    None => {
                        let signed = sign()?;
                        cache.insert(key, signed.clone());
                        (signed, false)
                    }
                }
            }
        };
        let lifetime = expires_at - issued_at;
        Ok(Minted {
            signed,
            cached,
            resource,
            url,
            issued_at,
            expires_at,
            refresh_at: issued_at + (lifetime as f64 * self.mint.refresh_at) as u64,
            signing: started.elapsed(),
        })
    }

    /// `now + ttl`, rounded up to the configured granularity so that callers
    /// within one window get identical policies.
    fn expiry(&self, now: u64) -> u64 {
        let expires = now + self.mint.ttl.as_secs();
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
