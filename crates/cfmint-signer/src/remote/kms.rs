//! Keys in AWS KMS: an asymmetric `RSA_2048` (`RSASSA_PKCS1_V1_5_SHA_256`)
//! or `ECC_NIST_P256` (`ECDSA_SHA_256`) key signs the policy bytes with
//! `Sign` (`MessageType=RAW`), and `GetPublicKey` reports its public half.
//! KMS signs over SHA-256 only, so the distribution must take
//! `Hash-Algorithm=SHA256`.
//!
//! The client comes from the standard chain: credentials from the
//! environment, a profile, web identity, or a container or instance role;
//! the region from the environment or profile (or the key's ARN); the
//! endpoint from `AWS_ENDPOINT_URL_KMS` or `AWS_ENDPOINT_URL` when set.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_kms::Client;
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, KeyUsageType, MessageType, SigningAlgorithmSpec};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use tokio::sync::OnceCell;

use super::{BoxFuture, RemoteKey};
use crate::backend::{Backend, HashAlgorithm, KeyAlgorithm, VerifyingKey};
use crate::error::{Error, ErrorKind};

/// `Sign` takes at most this many bytes with `MessageType=RAW`.
const MAX_RAW_MESSAGE: usize = 4096;

/// Error codes KMS answers when a request quota is exceeded.
const THROTTLING_CODES: [&str; 3] = [
    "ThrottlingException",
    "LimitExceededException",
    "TooManyRequestsException",
];

/// One AWS configuration (credentials, region, endpoint, timeouts) shared
/// by the KMS keys made from it; loaded when the first key connects.
pub struct KmsStore {
    backend: Backend,
    timeout: Duration,
    config: OnceCell<SdkConfig>,
}

impl KmsStore {
    /// `timeout` bounds every call, connection included; `backend` checks
    /// the signatures KMS returns.
    pub fn new(backend: Backend, timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            backend,
            timeout,
            config: OnceCell::new(),
        })
    }

    /// A key by id, alias or ARN. Nothing is called until it connects.
    pub fn key(self: &Arc<Self>, key_id: impl Into<String>) -> KmsKey {
        KmsKey {
            store: self.clone(),
            key_id: key_id.into(),
            client: OnceCell::new(),
            algorithm: RwLock::new(None),
        }
    }

    async fn sdk_config(&self) -> &SdkConfig {
        self.config
            .get_or_init(|| async {
                // rustls with ring, as the rest of cfmint: no second TLS stack.
                let http = aws_smithy_http_client::Builder::new()
                    .tls_provider(Provider::Rustls(CryptoMode::Ring))
                    .build_https();
                aws_config::defaults(BehaviorVersion::latest())
                    .http_client(http)
                    .timeout_config(
                        TimeoutConfig::builder()
                            .connect_timeout(self.timeout)
                            .operation_attempt_timeout(self.timeout)
                            .operation_timeout(self.timeout)
                            .build(),
                    )
                    // One quick retry, for a dropped connection: throttling
                    // is the caller's to report, not to wait out here.
                    .retry_config(
                        RetryConfig::standard()
                            .with_max_attempts(2)
                            .with_max_backoff(Duration::from_millis(50)),
                    )
                    .load()
                    .await
            })
            .await
    }
}

/// A key in AWS KMS.
pub struct KmsKey {
    store: Arc<KmsStore>,
    key_id: String,
    client: OnceCell<Client>,
    algorithm: RwLock<Option<KeyAlgorithm>>,
}

impl KmsKey {
    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let config = self.store.sdk_config().await;
                let mut builder = aws_sdk_kms::config::Builder::from(config);
                // A key ARN names its region, whatever the default one is.
                if let Some(region) = arn_region(&self.key_id) {
                    builder = builder.region(Region::new(region.to_owned()));
                }
                Client::from_conf(builder.build())
            })
            .await
    }

    async fn get_public_key(&self) -> Result<Box<dyn VerifyingKey>, Error> {
        let client = self.client().await;
        if client.config().region().is_none() {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "no AWS region: set AWS_REGION (or a profile's region), or give the key's ARN",
            ));
        }
        let output = client
            .get_public_key()
            .key_id(&self.key_id)
            .send()
            .await
            .map_err(|e| classify(e, "GetPublicKey"))?;
        if output.key_usage() != Some(&KeyUsageType::SignVerify) {
            return Err(Error::key(format!(
                "the key's usage is {:?}; CloudFront signing needs SIGN_VERIFY",
                output.key_usage().map(KeyUsageType::as_str)
            )));
        }
        // KeySpec, or its deprecated twin that older answers carry alone.
        #[allow(deprecated)]
        let spec = output
            .key_spec()
            .map(KeySpec::as_str)
            .or(output.customer_master_key_spec().map(|spec| spec.as_str()));
        match spec {
            Some("RSA_2048" | "RSA_3072" | "RSA_4096" | "ECC_NIST_P256") => {}
            other => {
                return Err(Error::key(format!(
                    "key spec {}; CloudFront takes RSA_2048 or ECC_NIST_P256",
                    other.unwrap_or("unknown")
                )));
            }
        }
        let der = output
            .public_key()
            .ok_or_else(|| Error::key("GetPublicKey returned no public key"))?
            .as_ref()
            .to_vec();
        let public = self.store.backend.load_public_der(der, true)?;
        if let Ok(mut algorithm) = self.algorithm.write() {
            *algorithm = Some(public.algorithm());
        }
        Ok(public)
    }

    async fn sign_raw(&self, hash: HashAlgorithm, message: &[u8]) -> Result<Vec<u8>, Error> {
        if hash != HashAlgorithm::Sha256 {
            return Err(Error::key(
                "AWS KMS signs over SHA-256 only; set cloudfront.hash_algorithm = \"sha256\"",
            ));
        }
        if message.len() > MAX_RAW_MESSAGE {
            return Err(Error::policy(format!(
                "a policy of {} bytes is over the {MAX_RAW_MESSAGE} bytes KMS signs",
                message.len()
            )));
        }
        let algorithm = self.algorithm.read().ok().and_then(|a| *a);
        let spec = match algorithm {
            Some(KeyAlgorithm::Rsa { .. }) => SigningAlgorithmSpec::RsassaPkcs1V15Sha256,
            Some(KeyAlgorithm::EcdsaP256) => SigningAlgorithmSpec::EcdsaSha256,
            None => {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "the key's public key has not been read yet",
                ));
            }
        };
        let output = self
            .client()
            .await
            .sign()
            .key_id(&self.key_id)
            .message(Blob::new(message))
            .message_type(MessageType::Raw)
            .signing_algorithm(spec)
            .send()
            .await
            .map_err(|e| classify(e, "Sign"))?;
        output
            .signature()
            .map(|blob| blob.as_ref().to_vec())
            .ok_or_else(|| Error::crypto("KMS Sign returned no signature"))
    }
}

impl RemoteKey for KmsKey {
    fn store(&self) -> &'static str {
        "aws-kms"
    }

    fn location(&self) -> &str {
        &self.key_id
    }

    fn blocks(&self) -> bool {
        false
    }

    fn connect(&self) -> BoxFuture<'_, Result<Box<dyn VerifyingKey>, Error>> {
        Box::pin(self.get_public_key())
    }

    fn sign<'a>(
        &'a self,
        hash: HashAlgorithm,
        message: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, Error>> {
        Box::pin(self.sign_raw(hash, message))
    }
}

/// The region of a key ARN: `arn:aws:kms:REGION:ACCOUNT:key/ID`.
fn arn_region(key_id: &str) -> Option<&str> {
    let mut parts = key_id.strip_prefix("arn:")?.split(':');
    let (_partition, service, region) = (parts.next()?, parts.next()?, parts.next()?);
    (service == "kms" && !region.is_empty()).then_some(region)
}

/// Throttling becomes [`ErrorKind::Throttled`]; anything else that keeps
/// the key from signing now (unreachable, timed out, access denied, key
/// disabled) becomes [`ErrorKind::Unavailable`], with what KMS said.
fn classify<E, R>(error: SdkError<E, R>, call: &str) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let code = error.code().unwrap_or_default();
    let kind = if THROTTLING_CODES.contains(&code) {
        ErrorKind::Throttled
    } else {
        ErrorKind::Unavailable
    };
    let what = match &error {
        SdkError::TimeoutError(_) => "timed out".to_owned(),
        SdkError::DispatchFailure(_) => "could not reach KMS".to_owned(),
        SdkError::ServiceError(_) => format!("{code}: {}", error.message().unwrap_or("")),
        _ => DisplayErrorContext(&error).to_string(),
    };
    Error::new(kind, format!("KMS {call} {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_comes_from_a_key_arn_only() {
        assert_eq!(
            arn_region("arn:aws:kms:eu-west-1:111122223333:key/1234abcd"),
            Some("eu-west-1")
        );
        assert_eq!(arn_region("1234abcd-12ab-34cd-56ef-1234567890ab"), None);
        assert_eq!(arn_region("alias/cloudfront"), None);
        assert_eq!(arn_region("arn:aws:s3:::bucket"), None);
    }
}
