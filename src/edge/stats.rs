//! Counts of what the edge answered, by path and status, served as JSON at
//! `GET /_cfmint/stats` so tests and people can see what reached the edge.

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::EdgeState;

/// Paths tracked at most; past it only the totals grow.
const MAX_PATHS: usize = 10_000;

#[derive(Debug, Default, Clone, Serialize)]
pub struct Counts {
    pub allowed: u64,
    pub denied: u64,
    /// Responses by status code, as text ("200", "206", "403", ...).
    pub statuses: BTreeMap<String, u64>,
}

impl Counts {
    fn add(&mut self, status: StatusCode) {
        if status == StatusCode::FORBIDDEN {
            self.denied += 1;
        } else {
            self.allowed += 1;
        }
        *self
            .statuses
            .entry(status.as_u16().to_string())
            .or_default() += 1;
    }
}

#[derive(Debug, Default)]
pub struct EdgeStats {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    total: Counts,
    paths: BTreeMap<String, Counts>,
    last_denial: Option<LastDenial>,
}

/// The most recent 403: where, and cfmint's reason (`x-cfmint-denial`).
#[derive(Debug, Clone, Serialize)]
pub struct LastDenial {
    pub path: String,
    pub reason: String,
    /// When, in epoch seconds.
    pub at: u64,
}

#[derive(Serialize)]
pub struct Snapshot {
    pub total: Counts,
    pub paths: BTreeMap<String, Counts>,
    pub last_denial: Option<LastDenial>,
}

impl EdgeStats {
    /// Counts an answer; a 403 also becomes the last denial.
    pub fn record(&self, path: &str, response: &Response) {
        let status = response.status();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.total.add(status);
        if inner.paths.len() < MAX_PATHS || inner.paths.contains_key(path) {
            inner.paths.entry(path.to_owned()).or_default().add(status);
        }
        if status == StatusCode::FORBIDDEN {
            let reason = response
                .headers()
                .get("x-cfmint-denial")
                .and_then(|value| value.to_str().ok())
                .unwrap_or("forbidden");
            inner.last_denial = Some(LastDenial {
                path: path.to_owned(),
                reason: reason.to_owned(),
                at: crate::minter::now(),
            });
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        Snapshot {
            total: inner.total.clone(),
            paths: inner.paths.clone(),
            last_denial: inner.last_denial.clone(),
        }
    }
}

pub async fn show(State(state): State<EdgeState>) -> Json<Snapshot> {
    Json(state.stats.snapshot())
}
