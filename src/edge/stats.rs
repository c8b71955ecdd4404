//! Counts of what the edge answered, by path and status, served as JSON at
//! `GET /_cfmint/stats` so tests and people can see what reached the edge.

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
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
    inner: Mutex<(Counts, BTreeMap<String, Counts>)>,
}

#[derive(Serialize)]
pub struct Snapshot {
    pub total: Counts,
    pub paths: BTreeMap<String, Counts>,
}

impl EdgeStats {
    pub fn record(&self, path: &str, status: StatusCode) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.0.add(status);
        if inner.1.len() < MAX_PATHS || inner.1.contains_key(path) {
            inner.1.entry(path.to_owned()).or_default().add(status);
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        Snapshot {
            total: inner.0.clone(),
            paths: inner.1.clone(),
        }
    }
}

pub async fn show(State(state): State<EdgeState>) -> Json<Snapshot> {
    Json(state.stats.snapshot())
}
