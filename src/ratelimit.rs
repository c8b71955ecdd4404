//! Rate limits for `/login` and `/mint`, per client address and per identity:
//! GCRA, in process through `governor` with the memory session store, or in
//! Redis (one Lua script per check, on Redis's clock) with the Redis store,
//! so replicas sharing it share each allowance rather than multiply it.

use std::fmt::Display;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::Duration;

#[cfg(feature = "redis")]
use fred::interfaces::LuaInterface;
#[cfg(feature = "redis")]
use fred::prelude::Pool;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub use crate::config::Rate;

/// A keyed limiter: each key gets `rate`, with a burst of the whole count.
pub struct Limiter<K: Hash + Eq + Clone> {
    inner: DefaultKeyedRateLimiter<K>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub fn new(rate: Rate) -> Self {
        let period = rate.per / rate.count.get();
        let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
            .expect("period is positive")
            .allow_burst(rate.count);
        Self {
            inner: RateLimiter::keyed(quota),
        }
    }

    /// `Err(wait)` when `key` is over its rate.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        self.inner
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets keys whose buckets are full again, bounding memory.
    pub fn prune(&self) {
        self.inner.retain_recent();
        self.inner.shrink_to_fit();
    }
}

/// Which limit refused a request, for the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitName {
    LoginPerAddress,
    LoginPerIdentity,
    MintPerAddress,
    MintPerIdentity,
}

impl LimitName {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginPerAddress => "login_per_address",
            Self::LoginPerIdentity => "login_per_identity",
            Self::MintPerAddress => "mint_per_address",
            Self::MintPerIdentity => "mint_per_identity",
        }
    }

    /// This limit's configured rate; `None` when `off`.
    #[cfg(feature = "redis")]
    fn rate(self, rates: &crate::config::RateLimits) -> Option<Rate> {
        match self {
            Self::LoginPerAddress => rates.login_per_address,
            Self::LoginPerIdentity => rates.login_per_identity,
            Self::MintPerAddress => rates.mint_per_address,
            Self::MintPerIdentity => rates.mint_per_identity,
        }
    }
}

/// A refusal: which limit, and how long until a retry can pass.
#[derive(Debug, Clone, Copy)]
pub struct Limited {
    pub limit: LimitName,
    pub retry_after: Duration,
}

/// Why a request may not go on: over a limit, or the shared limiter did
/// not answer (never a reason to let it through).
#[derive(Debug)]
pub enum Refusal {
    Limited(Limited),
    Unavailable(String),
}

/// All four limits; `None` where configured `off`.
#[derive(Default)]
pub struct RateLimits {
    login_per_address: Option<Limiter<IpAddr>>,
    login_per_identity: Option<Limiter<String>>,
    mint_per_address: Option<Limiter<IpAddr>>,
    mint_per_identity: Option<Limiter<String>>,
    #[cfg(feature = "redis")]
    shared: Option<Shared>,
}

/// The limits kept in Redis.
#[cfg(feature = "redis")]
struct Shared {
    pool: Pool,
    prefix: String,
    timeout: Duration,
    rates: crate::config::RateLimits,
}

#[cfg(feature = "redis")]
/// GCRA on Redis's clock: the key holds the theoretical arrival time in
/// microseconds. Returns 0 (and records the request) or the wait in µs.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
local new_tat = tat + interval
local wait = new_tat - burst - now
if wait > 0 then return wait end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return 0
";

impl RateLimits {
    pub fn new(settings: &crate::config::RateLimits) -> Self {
        Self {
            login_per_address: settings.login_per_address.map(Limiter::new),
            login_per_identity: settings.login_per_identity.map(Limiter::new),
            mint_per_address: settings.mint_per_address.map(Limiter::new),
            mint_per_identity: settings.mint_per_identity.map(Limiter::new),
            #[cfg(feature = "redis")]
            shared: None,
        }
    }

    /// The limits kept in Redis under `prefix`, each check bounded by `timeout`.
    #[cfg(feature = "redis")]
    pub fn shared(
        settings: &crate::config::RateLimits,
        pool: Pool,
        prefix: String,
        timeout: Duration,
    ) -> Self {
        Self {
            shared: Some(Shared {
                pool,
                prefix,
                timeout,
                rates: settings.clone(),
            }),
            ..Self::default()
        }
    }

    pub async fn login_address(&self, ip: IpAddr) -> Result<(), Refusal> {
        self.limit(&self.login_per_address, LimitName::LoginPerAddress, ip)
            .await
    }

    pub async fn login_identity(&self, name: &str) -> Result<(), Refusal> {
        self.limit(
            &self.login_per_identity,
            LimitName::LoginPerIdentity,
            name.to_owned(),
        )
        .await
    }

    pub async fn mint_address(&self, ip: IpAddr) -> Result<(), Refusal> {
        self.limit(&self.mint_per_address, LimitName::MintPerAddress, ip)
            .await
    }

    pub async fn mint_identity(&self, sub: &str) -> Result<(), Refusal> {
        self.limit(
            &self.mint_per_identity,
            LimitName::MintPerIdentity,
            sub.to_owned(),
        )
        .await
    }

    /// One check of `limit` for `key`: in Redis when shared, else in process.
    async fn limit<K: Hash + Eq + Clone + Display>(
        &self,
        local: &Option<Limiter<K>>,
        limit: LimitName,
        key: K,
    ) -> Result<(), Refusal> {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            return shared.check(limit, &key.to_string()).await;
        }
        match local {
            Some(limiter) => limiter
                .check(&key)
                .map_err(|retry_after| Refusal::Limited(Limited { limit, retry_after })),
            None => Ok(()),
        }
    }

    pub fn prune(&self) {
        self.login_per_address.iter().for_each(Limiter::prune);
        self.login_per_identity.iter().for_each(Limiter::prune);
        self.mint_per_address.iter().for_each(Limiter::prune);
        self.mint_per_identity.iter().for_each(Limiter::prune);
    }
}

#[cfg(feature = "redis")]
impl Shared {
    async fn check(&self, limit: LimitName, key: &str) -> Result<(), Refusal> {
        let Some(rate) = limit.rate(&self.rates) else {
            return Ok(());
        };
        let per = rate.per.as_micros() as u64;
        let interval = (per / u64::from(rate.count.get())).max(1);
        let key = format!("{}ratelimit:{}:{key}", self.prefix, limit.as_str());
        let call = self.pool.next().eval::<i64, _, _, _>(
            GCRA,
            vec![key],
            vec![interval.to_string(), per.to_string()],
        );
        let wait = match crate::session::within_budget(self.timeout, call).await {
            Some(Ok(wait)) => wait,
            Some(Err(e)) => {
                return Err(Refusal::Unavailable(format!("rate limit: {}", e.details())));
            }
            None => {
                return Err(Refusal::Unavailable(format!(
                    "rate limit: redis did not answer within {:?}",
                    self.timeout
                )));
            }
        };
        if wait > 0 {
            return Err(Refusal::Limited(Limited {
                limit,
                retry_after: Duration::from_micros(wait as u64),
            }));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        let rate: Rate = "20/min".parse().unwrap();
        assert_eq!(rate.count.get(), 20);
        assert_eq!(rate.per, Duration::from_secs(60));
        for (text, seconds) in [
            ("5/s", 1),
            ("5/sec", 1),
            ("5/second", 1),
            ("5/m", 60),
            ("5/minute", 60),
            (" 5 / h ", 3600),
            ("5/hour", 3600),
        ] {
            let rate: Rate = text.parse().unwrap();
            assert_eq!(rate.per, Duration::from_secs(seconds), "{text}");
        }
        for bad in ["", "20", "0/min", "x/min", "20/fortnight", "-1/s"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn pruning_forgets_keys_whose_allowance_is_whole_again() {
        let limiter = Limiter::new("1000/s".parse().unwrap());
        for key in ["a", "b", "c"] {
            assert!(limiter.check(&key).is_ok());
        }
        assert_eq!(limiter.inner.len(), 3);
        std::thread::sleep(Duration::from_millis(20));
        limiter.prune();
        assert_eq!(limiter.inner.len(), 0);
    }

    #[test]
    fn pruning_covers_every_limit() {
        let rate = Some("1000/s".parse().unwrap());
        let limits = RateLimits::new(&crate::config::RateLimits {
            login_per_address: rate,
            login_per_identity: rate,
            mint_per_address: rate,
            mint_per_identity: rate,
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for limiter in [&limits.login_per_address, &limits.mint_per_address] {
            assert!(limiter.as_ref().unwrap().check(&ip).is_ok());
        }
        for limiter in [&limits.login_per_identity, &limits.mint_per_identity] {
            assert!(limiter.as_ref().unwrap().check(&"alice".to_owned()).is_ok());
        }
        std::thread::sleep(Duration::from_millis(20));
        limits.prune();
        let left = [&limits.login_per_address, &limits.mint_per_address]
            .iter()
            .map(|l| l.as_ref().unwrap().inner.len())
            .chain(
                [&limits.login_per_identity, &limits.mint_per_identity]
                    .iter()
                    .map(|l| l.as_ref().unwrap().inner.len()),
            )
            .sum::<usize>();
        assert_eq!(left, 0);
    }

    #[test]
    fn burst_is_the_count_then_refused_with_a_wait() {
        let limiter = Limiter::new("3/min".parse().unwrap());
        for _ in 0..3 {
            assert!(limiter.check(&"a").is_ok());
        }
        let wait = limiter.check(&"a").unwrap_err();
        assert!(wait > Duration::from_secs(1) && wait <= Duration::from_secs(20));
        assert!(limiter.check(&"b").is_ok());
    }
}
