//! Prometheus metrics, owned by the application state (no global registry):
//! mint outcomes, signing latency, request latency by route, store errors,
//! rate-limit rejections.

use std::fmt;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    route: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: &'static str,
}

#[derive(Clone)]
struct LatencyBuckets;

impl MetricConstructor<Histogram> for LatencyBuckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
    }
}

pub struct Metrics {
    registry: Registry,
    mint_outcomes: Family<OutcomeLabels, Counter>,
    signing_seconds: Histogram,
    request_seconds: Family<RouteLabels, Histogram, LatencyBuckets>,
    store_errors: Family<OperationLabels, Counter>,
    rate_limited: Family<LimitLabels, Counter>,
    key_reloads: Family<ResultLabels, Counter>,
    origin_rejected: Counter,
    /// The series every mint touches, looked up once.
    minted: Counter,
    cache_hit: Counter,
    cache_miss: Counter,
    authorize_calls: Family<ResultLabels, Counter>,
    authorize_seconds: Histogram,
    authorize_cache: Family<ResultLabels, Counter>,
    mint_first: Counter,
    mint_refresh: Counter,
    refresh_remaining: Histogram,
    ready: Gauge,
    store_up: Gauge,
    remote_signatures: Family<RemoteLabels, Counter>,
    remote_keys_up: Family<RemoteKeyLabels, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RemoteLabels {
    store: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RemoteKeyLabels {
    key_pair_id: String,
    store: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("cfmint");
        let mint_outcomes = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "mint_outcomes",
            "Mint and sign-urls outcomes by reason",
            mint_outcomes.clone(),
        );
        let signing_seconds = Histogram::new(exponential_buckets(0.000_01, 2.0, 16));
        registry.register(
            "signing_seconds",
            "Time spent in one CloudFront signature",
            signing_seconds.clone(),
        );
        let request_seconds = Family::new_with_constructor(LatencyBuckets);
        registry.register(
            "http_request_seconds",
            "HTTP request latency by matched route",
            request_seconds.clone(),
        );
        let store_errors = Family::<OperationLabels, Counter>::default();
        registry.register(
            "session_store_errors",
            "Session store calls that failed or timed out",
            store_errors.clone(),
        );
        let rate_limited = Family::<LimitLabels, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests refused by a rate limit",
            rate_limited.clone(),
        );
        let key_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "key_reloads",
            "Key ring reloads by result (ok; failed: refused, the old keys sign; \
             unreachable: the ring's secret or file could not be read)",
            key_reloads.clone(),
        );
        // Every result from the start, so that rates and alerts see a zero
        // rather than nothing.
        for result in ["ok", "failed", "unreachable"] {
            drop(key_reloads.get_or_create(&ResultLabels { result }));
        }
        let origin_rejected = Counter::default();
        registry.register(
            "origin_rejected",
            "Requests refused for lacking the origin secret header",
            origin_rejected.clone(),
        );
        let signature_cache = Family::<ResultLabels, Counter>::default();
        registry.register(
            "signature_cache",
            "Signature cache lookups by result (hit, miss)",
            signature_cache.clone(),
        );
        let authorize_calls = Family::<ResultLabels, Counter>::default();
        registry.register(
            "authorize_calls",
            "Authorization callback calls by result (ok, timeout, unreachable, status, malformed)",
            authorize_calls.clone(),
        );
        let authorize_seconds = Histogram::new(exponential_buckets(0.000_5, 2.0, 14));
        registry.register(
            "authorize_seconds",
            "Authorization callback latency",
            authorize_seconds.clone(),
        );
        let authorize_cache = Family::<ResultLabels, Counter>::default();
        registry.register(
            "authorize_cache",
            "Authorization decisions by source (hit: cached, miss: asked)",
            authorize_cache.clone(),
        );
        let mints = Family::<KindLabels, Counter>::default();
        registry.register(
            "mints",
            "Successful mints by kind (first in a session, or a refresh; bearer tokens count as first)",
            mints.clone(),
        );
        let refresh_remaining = Histogram::new([
            0.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 14_400.0,
        ]);
        registry.register(
            "refresh_remaining_seconds",
            "At a refresh, how long the session's previous cookies still had (0: expired)",
            refresh_remaining.clone(),
        );
        let ready = Gauge::default();
        registry.register(
            "ready",
            "1 when /readyz would answer 200 at this scrape (not draining, session store answering), else 0",
            ready.clone(),
        );
        let store_up = Gauge::default();
        registry.register(
            "session_store_up",
            "1 when the session store answered a ping at this scrape (always 1 in memory), else 0",
            store_up.clone(),
        );
        let remote_signatures = Family::<RemoteLabels, Counter>::default();
        registry.register(
            "remote_signatures",
            "Signatures asked of key stores by result (ok; joined: shared another request's \
             identical signature; throttled, unavailable, timeout: answered 503; error)",
            remote_signatures.clone(),
        );
        let remote_keys_up = Family::<RemoteKeyLabels, Gauge>::default();
        registry.register(
            "remote_key_up",
            "1 while a key in a key store (KMS, PKCS#11) is reachable and usable, else 0",
            remote_keys_up.clone(),
        );
        let mint_first = mints.get_or_create(&KindLabels { kind: "first" }).clone();
        let mint_refresh = mints.get_or_create(&KindLabels { kind: "refresh" }).clone();
        let minted = mint_outcomes
            .get_or_create(&OutcomeLabels {
                route: "mint",
                outcome: "minted",
            })
            .clone();
        let cache_hit = signature_cache
            .get_or_create(&ResultLabels { result: "hit" })
            .clone();
        let cache_miss = signature_cache
            .get_or_create(&ResultLabels { result: "miss" })
            .clone();
        Self {
            remote_signatures,
            remote_keys_up,
            minted,
            cache_hit,
            cache_miss,
            authorize_calls,
            authorize_seconds,
            authorize_cache,
            mint_first,
            mint_refresh,
            refresh_remaining,
            ready,
            store_up,
            key_reloads,
            origin_rejected,
            registry,
            mint_outcomes,
            signing_seconds,
            request_seconds,
            store_errors,
            rate_limited,
        }
    }

    /// A successful `POST /mint` (the hot series, looked up once).
    pub fn minted(&self) {
        self.minted.inc();
    }

    pub fn mint_outcome(&self, route: &'static str, outcome: &'static str) {
        self.mint_outcomes
            .get_or_create(&OutcomeLabels { route, outcome })
            .inc();
    }

    pub fn signing(&self, elapsed: Duration) {
        self.signing_seconds.observe(elapsed.as_secs_f64());
    }

    pub fn request(
        &self,
        route: &'static str,
        method: &'static str,
        status: u16,
        elapsed: Duration,
    ) {
        self.request_seconds
            .get_or_create(&RouteLabels {
                route,
                method,
                status,
            })
            .observe(elapsed.as_secs_f64());
    }

    pub fn store_error(&self, operation: &'static str) {
        self.store_errors
            .get_or_create(&OperationLabels { operation })
            .inc();
    }

    pub fn rate_limited(&self, limit: &'static str) {
        self.rate_limited
            .get_or_create(&LimitLabels { limit })
            .inc();
    }

    pub fn key_reload(&self, result: &'static str) {
        self.key_reloads
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    pub fn remote_signature(&self, store: &'static str, result: &'static str) {
        self.remote_signatures
            .get_or_create(&RemoteLabels { store, result })
            .inc();
    }

    pub fn remote_key_up(&self, key_pair_id: &str, store: &'static str, up: bool) {
        self.remote_keys_up
            .get_or_create(&RemoteKeyLabels {
                key_pair_id: key_pair_id.to_owned(),
                store,
            })
            .set(i64::from(up));
    }

    pub fn signature_cache(&self, hit: bool) {
        if hit {
            self.cache_hit.inc();
        } else {
            self.cache_miss.inc();
        }
    }

    /// A successful mint: a refresh (with how long the previous cookies still
    /// had) or a first mint (`None`).
    pub fn mint_kind(&self, previous_remaining: Option<Duration>) {
        match previous_remaining {
            Some(remaining) => {
                self.mint_refresh.inc();
                self.refresh_remaining.observe(remaining.as_secs_f64());
            }
            None => {
                self.mint_first.inc();
            }
        }
    }

    /// One call to the authorization callback and how it ended.
    pub fn authorize_call(&self, result: &'static str, elapsed: Duration) {
        self.authorize_calls
            .get_or_create(&ResultLabels { result })
            .inc();
        self.authorize_seconds.observe(elapsed.as_secs_f64());
    }

    /// Item decisions taken from the cache and asked for.
    pub fn authorize_cache(&self, hits: usize, misses: usize) {
        for (result, count) in [("hit", hits), ("miss", misses)] {
            if count > 0 {
                self.authorize_cache
                    .get_or_create(&ResultLabels { result })
                    .inc_by(count as u64);
            }
        }
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    pub fn set_store_up(&self, up: bool) {
        self.store_up.set(i64::from(up));
    }

    pub fn origin_rejected(&self) {
        self.origin_rejected.inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}
