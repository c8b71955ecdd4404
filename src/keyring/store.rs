//! Where a key ring document lives: an AWS Secrets Manager secret or a file.
//! Both are read whole with a version, and written only over the version
//! that was read, so a rotation never overwrites a change it did not see.

use std::path::PathBuf;
use std::time::Duration;

use super::document::{MAX_DOCUMENT_BYTES, RingDocument};
use crate::config::RingSource;

/// A document as read, and the version to write over.
pub struct Stored {
    pub document: RingDocument,
    /// The secret's version id, or a digest of the file.
    pub version: String,
}

/// Why a read or write failed.
#[derive(Debug)]
pub enum StoreError {
    /// The store could not be reached or refused the call.
    Unavailable(String),
    /// The document at `version` is not a valid key ring.
    Invalid { message: String, version: String },
    /// The ring changed since it was read.
    Conflict,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unavailable(message) | Self::Invalid { message, .. } => f.write_str(message),
            Self::Conflict => f.write_str(
                "the key ring changed after it was read (another rotation at the same time?); \
                 nothing was written: run the command again",
            ),
        }
    }
}

pub enum RingStore {
    File(PathBuf),
    #[cfg(feature = "aws-secrets")]
    Secret(secret::SecretRing),
}

impl RingStore {
    /// `timeout` bounds each call to a remote store.
    pub fn new(source: &RingSource, timeout: Duration) -> Result<Self, String> {
        match source {
            RingSource::File(path) => Ok(Self::File(path.clone())),
            #[cfg(feature = "aws-secrets")]
            RingSource::Secret(id) => Ok(Self::Secret(secret::SecretRing::new(id, timeout))),
            #[cfg(not(feature = "aws-secrets"))]
            RingSource::Secret(_) => {
                let _ = timeout;
                Err(format!(
                    "keys.secret_id: {}",
                    crate::config::SECRETS_NOT_BUILT
                ))
            }
        }
    }

    pub async fn read(&self) -> Result<Stored, StoreError> {
        match self {
            Self::File(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || file::read(&path))
                    .await
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?
            }
            #[cfg(feature = "aws-secrets")]
            Self::Secret(secret) => secret.read().await,
        }
    }

    /// Writes `document` if the stored version is still `expected`; the new version.
    pub async fn write(
        &self,
        document: &RingDocument,
        expected: &str,
    ) -> Result<String, StoreError> {
        match self {
            Self::File(path) => {
                let (path, document, expected) =
                    (path.clone(), document.clone(), expected.to_owned());
                tokio::task::spawn_blocking(move || file::write(&path, &document, &expected))
                    .await
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?
            }
            #[cfg(feature = "aws-secrets")]
            Self::Secret(secret) => secret.write(document, expected).await,
        }
    }
}

fn parsed(text: &[u8], version: String, source: &str) -> Result<Stored, StoreError> {
    match RingDocument::parse(text) {
        Ok(document) => Ok(Stored { document, version }),
        Err(e) => Err(StoreError::Invalid {
            message: format!("{source}: {e}"),
            version,
        }),
    }
}

mod file {
    use std::io::{Read, Write};
    use std::path::Path;

    use super::{MAX_DOCUMENT_BYTES, RingDocument, StoreError, Stored, parsed};

    pub fn read(path: &Path) -> Result<Stored, StoreError> {
        let source = format!("keys.ring_file {}", path.display());
        let text =
            read_bytes(path).map_err(|e| StoreError::Unavailable(format!("{source}: {e}")))?;
        parsed(&text, digest(&text), &source)
    }

    fn read_bytes(path: &Path) -> std::io::Result<zeroize::Zeroizing<Vec<u8>>> {
        let mut text = zeroize::Zeroizing::new(Vec::new());
        std::fs::File::open(path)?
            .take(MAX_DOCUMENT_BYTES as u64 + 1)
            .read_to_end(&mut text)?;
        Ok(text)
    }

    /// Replaces the file whole (a new file renamed over it, mode 0600), so
    /// a reader sees the old ring or the new one, never half of one.
    pub fn write(
        path: &Path,
        document: &RingDocument,
        expected: &str,
    ) -> Result<String, StoreError> {
        let unavailable = |e: std::io::Error| {
            StoreError::Unavailable(format!("keys.ring_file {}: {e}", path.display()))
        };
        let current = read_bytes(path).map_err(unavailable)?;
        if digest(&current) != expected {
            return Err(StoreError::Conflict);
        }
        let text = document.to_json();
        let directory = path.parent().filter(|p| !p.as_os_str().is_empty());
        let mut file = tempfile::Builder::new()
            .prefix(".cfmint-ring")
            .tempfile_in(directory.unwrap_or(Path::new(".")))
            .map_err(unavailable)?;
        file.write_all(text.as_bytes()).map_err(unavailable)?;
        file.as_file().sync_all().map_err(unavailable)?;
        file.persist(path).map_err(|e| unavailable(e.error))?;
        Ok(digest(text.as_bytes()))
    }

    fn digest(bytes: &[u8]) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
        digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(feature = "aws-secrets")]
mod secret {
    use std::time::Duration;

    use aws_sdk_secretsmanager::Client;
    use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
    use tokio::sync::OnceCell;

    use super::{RingDocument, StoreError, Stored, parsed};
    use crate::aws::describe;

    /// The label a new version is written under before it becomes current.
    const WRITE_STAGE: &str = "CFMINT_PENDING";

    pub struct SecretRing {
        id: String,
        timeout: Duration,
        client: OnceCell<Client>,
    }

    impl SecretRing {
        pub fn new(id: &str, timeout: Duration) -> Self {
            Self {
                id: id.to_owned(),
                timeout,
                client: OnceCell::new(),
            }
        }

        async fn client(&self) -> &Client {
            self.client
                .get_or_init(|| async { Client::new(&crate::aws::sdk_config(self.timeout).await) })
                .await
        }

        fn source(&self) -> String {
            format!("keys.secret_id {}", self.id)
        }

        pub async fn read(&self) -> Result<Stored, StoreError> {
            let output = self
                .client()
                .await
                .get_secret_value()
                .secret_id(&self.id)
                // The default; named because moto serves the secret's first
                // version without it once AWSCURRENT has moved.
                .version_stage("AWSCURRENT")
                .send()
                .await
                .map_err(|e| {
                    StoreError::Unavailable(format!(
                        "{}: {}",
                        self.source(),
                        describe("GetSecretValue", &e)
                    ))
                })?;
            let version = output.version_id().unwrap_or_default().to_owned();
            let text = output.secret_string().ok_or_else(|| StoreError::Invalid {
                message: format!("{}: the secret holds no text (SecretString)", self.source()),
                version: version.clone(),
            })?;
            parsed(text.as_bytes(), version, &self.source())
        }

        /// Puts the new version under a label of its own, then moves
        /// `AWSCURRENT` to it from `expected`; Secrets Manager refuses the
        /// move when `AWSCURRENT` is no longer on `expected`.
        pub async fn write(
            &self,
            document: &RingDocument,
            expected: &str,
        ) -> Result<String, StoreError> {
            let client = self.client().await;
            let unavailable =
                |e: String| StoreError::Unavailable(format!("{}: {e}", self.source()));
            let text = document.to_json();
            let put = client
                .put_secret_value()
                .secret_id(&self.id)
                .secret_string(text.as_str())
                .client_request_token(uuid::Uuid::new_v4().to_string())
                .version_stages(WRITE_STAGE)
                .send()
                .await
                .map_err(|e| unavailable(describe("PutSecretValue", &e)))?;
            let version = put.version_id().unwrap_or_default().to_owned();
            let moved = client
                .update_secret_version_stage()
                .secret_id(&self.id)
                .version_stage("AWSCURRENT")
                .remove_from_version_id(expected)
                .move_to_version_id(&version)
                .send()
                .await;
            match moved {
                Ok(_) => Ok(version),
                Err(e) if e.code() == Some("InvalidParameterException") => {
                    Err(StoreError::Conflict)
                }
                Err(e) => Err(unavailable(describe("UpdateSecretVersionStage", &e))),
            }
        }
    }
}
