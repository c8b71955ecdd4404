//! Fetching a playlist from `[playlists] origin_url`: fresh every time (a
//! live playlist changes every few seconds), within `playlists.timeout` for
//! the whole exchange and `playlists.max_bytes`, never following redirects.

use std::time::Duration;

use crate::config::PlaylistSettings;

/// Why the origin gave no playlist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("the origin has no such playlist")]
    NotFound,
    #[error("the origin answered {0}")]
    Status(u16),
    #[error("the origin's playlist is larger than playlists.max_bytes ({0} bytes)")]
    TooLarge(usize),
    #[error("the origin did not answer within playlists.timeout ({0:?})")]
    Timeout(Duration),
    #[error("the origin's playlist is not UTF-8 text")]
    NotText,
    #[error("the origin cannot be reached: {0}")]
    Unreachable(String),
}

pub struct Origin {
    http: reqwest::Client,
    base_url: String,
    timeout: Duration,
    max_bytes: usize,
}

impl Origin {
    pub fn new(settings: &PlaylistSettings) -> Result<Self, String> {
        crate::tls::require_crypto_provider("playlist origin HTTP client")?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            http,
            base_url: settings.origin_url.clone(),
            timeout: settings.timeout,
            max_bytes: settings.max_bytes,
        })
    }

    /// The playlist at `path_and_query` under the origin's URL.
    pub async fn fetch(&self, path_and_query: &str) -> Result<String, FetchError> {
        let url = format!("{}{path_and_query}", self.base_url);
        tokio::time::timeout(self.timeout, self.fetch_now(&url))
            .await
            .map_err(|_| FetchError::Timeout(self.timeout))?
    }

    async fn fetch_now(&self, url: &str) -> Result<String, FetchError> {
        let unreachable = |e: reqwest::Error| FetchError::Unreachable(e.without_url().to_string());
        let mut response = self.http.get(url).send().await.map_err(unreachable)?;
        match response.status().as_u16() {
            200 => {}
            404 | 410 => return Err(FetchError::NotFound),
            status => return Err(FetchError::Status(status)),
        }
        if response
            .content_length()
            .is_some_and(|length| length > self.max_bytes as u64)
        {
            return Err(FetchError::TooLarge(self.max_bytes));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(FetchError::TooLarge(self.max_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| FetchError::NotText)
    }
}
