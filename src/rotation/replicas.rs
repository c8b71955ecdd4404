//! What the running replicas sign with, from their admin listeners
//! (`GET /admin/keys`).

use std::time::Duration;

use serde::Deserialize;

/// One replica's answer.
#[derive(Debug, Clone, Deserialize)]
pub struct Report {
    pub active: String,
    pub ring_version: Option<String>,
    pub keys: Vec<ReportKey>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReportKey {
    pub key_pair_id: String,
}

pub struct Replicas {
    urls: Vec<String>,
    token: Option<String>,
    client: reqwest::Client,
}

impl Replicas {
    /// `urls` are admin listeners (`http://10.0.0.5:9090`); `token` is
    /// `server.admin_token` when one is set.
    pub fn new(urls: Vec<String>, token: Option<String>) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        let urls = urls
            .into_iter()
            .map(|url| url.trim_end_matches('/').to_owned())
            .collect();
        Ok(Self {
            urls,
            token,
            client,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }

    /// Each replica's report, or why there is none.
    pub async fn reports(&self) -> Vec<(String, Result<Report, String>)> {
        let mut reports = Vec::new();
        for url in &self.urls {
            reports.push((url.clone(), self.report(url).await));
        }
        reports
    }

    async fn report(&self, url: &str) -> Result<Report, String> {
        let mut request = self.client.get(format!("{url}/admin/keys"));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("answered {status}"));
        }
        response
            .json()
            .await
            .map_err(|e| format!("unexpected answer: {e}"))
    }
}
