//! The authorization callback (`[authorize]`): cfmint asks the application
//! whether a caller may have some paths, so ownership stays where the data
//! is. One `POST` per cfmint request (a whole `/sign-urls` batch included);
//! answers are cached per subject and item. Anything but a well-formed answer
//! of the right length fails closed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::sync::Cache;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::Identity;
use super::path::Match;
use crate::metrics::Metrics;

/// The authorization callback (`[authorize]`).
#[derive(Debug, Clone)]
pub struct AuthorizeSettings {
    pub url: String,
    pub timeout: Duration,
    /// How long an allowed answer is reused (zero: no cache).
    pub cache_ttl: Duration,
    pub deny_cache_ttl: Duration,
    /// The caller's claims passed along.
    pub claims: Vec<String>,
    /// Sent with every call, so the application knows it is cfmint.
    pub secret: Option<(axum::http::HeaderName, SecretString)>,
    pub mode: AuthorizeMode,
}

/// How the callback combines with the configured grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizeMode {
    /// A grant and the callback must both allow.
    All,
    /// A grant or the callback may allow.
    Any,
}

/// The largest answer read from the application.
const MAX_ANSWER: usize = 1 << 20;

/// What the callback is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Purpose {
    #[serde(rename = "mint")]
    Mint,
    #[serde(rename = "sign-urls")]
    SignUrls,
}

/// One path the caller wants.
#[derive(Debug, Clone, Serialize)]
pub struct Item<'a> {
    pub path: &'a str,
    #[serde(rename = "match")]
    pub shape: Match,
}

/// The application's answer for one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Refused; `not_found` when the application says the item does not
    /// exist (for this caller), else another short word.
    Deny(String),
}

/// Why no answer could be had: every item it concerned is refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    #[error("the authorization callback did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the authorization callback could not be reached: {0}")]
    Unreachable(String),
    #[error("the authorization callback answered HTTP {0}")]
    Status(u16),
    #[error("the authorization callback's answer is malformed: {0}")]
    Malformed(String),
}

impl AuthorizeError {
    /// The metric label.
    fn label(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Unreachable(_) => "unreachable",
            Self::Status(_) => "status",
            Self::Malformed(_) => "malformed",
        }
    }
}

#[derive(Serialize)]
struct Question<'a> {
    sub: &'a str,
    claims: serde_json::Map<String, serde_json::Value>,
    purpose: Purpose,
    items: &'a [Item<'a>],
}

#[derive(Deserialize)]
struct Answer {
    results: Vec<AnswerItem>,
}

#[derive(Deserialize)]
struct AnswerItem {
    allow: bool,
    #[serde(default)]
    reason: Option<String>,
}

type CacheKey = (String, String, Match);

/// Allowed answers live `cache_ttl`, denials `deny_cache_ttl`.
struct ByDecision {
    allow: Duration,
    deny: Duration,
}

impl Expiry<CacheKey, Decision> for ByDecision {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        decision: &Decision,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(match decision {
            Decision::Allow => self.allow,
            Decision::Deny(_) => self.deny,
        })
    }
}

pub struct Authorizer {
    settings: AuthorizeSettings,
    http: reqwest::Client,
    cache: Option<Cache<CacheKey, Decision>>,
    metrics: Arc<Metrics>,
}

impl Authorizer {
    pub fn new(settings: AuthorizeSettings, metrics: Arc<Metrics>) -> Result<Self, String> {
        crate::tls::require_crypto_provider("authorization callback HTTP client")?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let cache = (!settings.cache_ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(100_000)
                .expire_after(ByDecision {
                    allow: settings.cache_ttl,
                    deny: settings.deny_cache_ttl,
                })
                .build()
        });
        Ok(Self {
            settings,
            http,
            cache,
            metrics,
        })
    }

    pub fn mode(&self) -> AuthorizeMode {
        self.settings.mode
    }

    /// Connects to the callback once, within `authorize.timeout` (`cfmint
    /// check --network`): any HTTP answer to a `HEAD` shows it is there; no
    /// decision is asked for.
    pub async fn reach(&self) -> Result<(), String> {
        let request = self.http.head(&self.settings.url).send();
        match tokio::time::timeout(self.settings.timeout, request).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!(
                "cannot reach the callback: {}",
                crate::auth::oidc::report(&e)
            )),
            Err(_) => Err(format!(
                "the callback did not answer within {:?}",
                self.settings.timeout
            )),
        }
    }

    /// The application's decision for each item, in order: from the cache,
    /// or from one call for all the items not cached.
    pub async fn decide(
        &self,
        identity: &Identity,
        purpose: Purpose,
        items: &[Item<'_>],
    ) -> Result<Vec<Decision>, AuthorizeError> {
        let key = |item: &Item<'_>| (identity.sub.clone(), item.path.to_owned(), item.shape);
        let mut decisions: Vec<Option<Decision>> = items
            .iter()
            .map(|item| self.cache.as_ref().and_then(|cache| cache.get(&key(item))))
            .collect();
        let hits = decisions.iter().filter(|d| d.is_some()).count();
        self.metrics.authorize_cache(hits, items.len() - hits);
        let asked: Vec<Item<'_>> = items
            .iter()
            .zip(&decisions)
            .filter(|(_, cached)| cached.is_none())
            .map(|(item, _)| item.clone())
            .collect();
        if !asked.is_empty() {
            let started = Instant::now();
            let answered = self.ask(identity, purpose, &asked).await;
            self.metrics.authorize_call(
                answered.as_ref().err().map_or("ok", AuthorizeError::label),
                started.elapsed(),
            );
            let mut answers = answered
                .inspect_err(|e| tracing::warn!(error = %e, "authorization callback failed"))?
                .into_iter();
            for (item, slot) in items.iter().zip(decisions.iter_mut()) {
                if slot.is_none() {
                    let decision = answers.next().expect("one answer per question");
                    if let Some(cache) = &self.cache {
                        cache.insert(key(item), decision.clone());
                    }
                    *slot = Some(decision);
                }
            }
        }
        Ok(decisions.into_iter().map(|d| d.expect("filled")).collect())
    }

    async fn ask(
        &self,
        identity: &Identity,
        purpose: Purpose,
        items: &[Item<'_>],
    ) -> Result<Vec<Decision>, AuthorizeError> {
        let claims = self
            .settings
            .claims
            .iter()
            .filter_map(|name| {
                let values = identity.claims.get(name)?;
                Some((name.clone(), serde_json::json!(values)))
            })
            .collect();
        let question = Question {
            sub: &identity.sub,
            claims,
            purpose,
            items,
        };
        let mut request = self
            .http
            .post(&self.settings.url)
            .timeout(self.settings.timeout)
            .json(&question);
        if let Some((header, secret)) = &self.settings.secret {
            request = request.header(header, secret.expose_secret());
        }
        let timeout = self.settings.timeout;
        let failed = |e: reqwest::Error| {
            if e.is_timeout() {
                AuthorizeError::Timeout(timeout)
            } else {
                AuthorizeError::Unreachable(crate::auth::oidc::report(&e))
            }
        };
        let mut response = request.send().await.map_err(failed)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(AuthorizeError::Status(response.status().as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(AuthorizeError::Malformed(format!(
                    "longer than {MAX_ANSWER} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        let answer: Answer = serde_json::from_slice(&body)
            .map_err(|e| AuthorizeError::Malformed(format!("not {{\"results\": [...]}}: {e}")))?;
        if answer.results.len() != items.len() {
            return Err(AuthorizeError::Malformed(format!(
                "{} results for {} items",
                answer.results.len(),
                items.len()
            )));
        }
        Ok(answer
            .results
            .into_iter()
            .map(|result| match result {
                AnswerItem { allow: true, .. } => Decision::Allow,
                AnswerItem { reason, .. } => Decision::Deny(reason_word(reason.as_deref())),
            })
            .collect())
    }
}

/// The application's reason, if it is a short word; else `not_granted`.
fn reason_word(reason: Option<&str>) -> String {
    match reason {
        Some(word)
            if (1..=64).contains(&word.len())
                && word
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') =>
        {
            word.to_owned()
        }
        _ => "not_granted".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::reason_word;

    #[test]
    fn only_short_words_pass_as_reasons() {
        assert_eq!(reason_word(Some("not_found")), "not_found");
        assert_eq!(reason_word(Some("unpaid2")), "unpaid2");
        for odd in ["", "Not Found", "<script>", "a\nb", &"x".repeat(65)] {
            assert_eq!(reason_word(Some(odd)), "not_granted", "{odd:?}");
        }
        assert_eq!(reason_word(None), "not_granted");
    }
}
