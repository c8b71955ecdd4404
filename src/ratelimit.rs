//! Rate limits for `/login` and `/mint`, per client address and per identity
//! (GCRA through `governor`).

use std::fmt;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// `count` requests per `per`, as written in config: `20/min`, `5/s`, `100/hour`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub per: Duration,
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let malformed = || format!("\"{text}\" is not a rate like 20/min, 5/s or 100/hour");
        let (count, unit) = text.trim().split_once('/').ok_or_else(malformed)?;
        let count: NonZeroU32 = count.trim().parse().map_err(|_| malformed())?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(malformed()),
        };
        Ok(Self { count, per })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}s", self.count, self.per.as_secs())
    }
}

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
}

/// A refusal: which limit, and how long until a retry can pass.
#[derive(Debug, Clone, Copy)]
pub struct Limited {
    pub limit: LimitName,
    pub retry_after: Duration,
}

/// All four limits; `None` where configured `off`.
#[derive(Default)]
pub struct RateLimits {
    login_per_address: Option<Limiter<IpAddr>>,
    login_per_identity: Option<Limiter<String>>,
    mint_per_address: Option<Limiter<IpAddr>>,
    mint_per_identity: Option<Limiter<String>>,
}

impl RateLimits {
    pub fn new(settings: &crate::config::RateLimits) -> Self {
        Self {
            login_per_address: settings.login_per_address.map(Limiter::new),
            login_per_identity: settings.login_per_identity.map(Limiter::new),
            mint_per_address: settings.mint_per_address.map(Limiter::new),
            mint_per_identity: settings.mint_per_identity.map(Limiter::new),
        }
    }

    pub fn login_address(&self, ip: IpAddr) -> Result<(), Limited> {
        check(&self.login_per_address, &ip, LimitName::LoginPerAddress)
    }

    pub fn login_identity(&self, name: &str) -> Result<(), Limited> {
        check(
            &self.login_per_identity,
            &name.to_owned(),
            LimitName::LoginPerIdentity,
        )
    }

    pub fn mint_address(&self, ip: IpAddr) -> Result<(), Limited> {
        check(&self.mint_per_address, &ip, LimitName::MintPerAddress)
    }

    pub fn mint_identity(&self, sub: &str) -> Result<(), Limited> {
        check(
            &self.mint_per_identity,
            &sub.to_owned(),
            LimitName::MintPerIdentity,
        )
    }

    pub fn prune(&self) {
        self.login_per_address.iter().for_each(Limiter::prune);
        self.login_per_identity.iter().for_each(Limiter::prune);
        self.mint_per_address.iter().for_each(Limiter::prune);
        self.mint_per_identity.iter().for_each(Limiter::prune);
    }
}

fn check<K: Hash + Eq + Clone>(
    limiter: &Option<Limiter<K>>,
    key: &K,
    limit: LimitName,
) -> Result<(), Limited> {
    match limiter {
        Some(limiter) => limiter
            .check(key)
            .map_err(|retry_after| Limited { limit, retry_after }),
        None => Ok(()),
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
        for bad in ["", "20", "0/min", "x/min", "20/fortnight", "-1/s"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
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
