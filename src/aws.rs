//! One AWS configuration for the service's own AWS clients (Secrets Manager,
//! CloudFront): the standard chain for credentials and region, endpoint
//! overrides from `AWS_ENDPOINT_URL_<SERVICE>` or `AWS_ENDPOINT_URL`, and
//! rustls on ring as everywhere else in cfmint (no second TLS stack).

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

/// `timeout` bounds each attempt and each whole call; throttling and
/// dropped connections get the SDK's standard retries (three attempts).
pub async fn sdk_config(timeout: Duration) -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(timeout)
                .operation_attempt_timeout(timeout)
                .operation_timeout(timeout * 3)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .load()
        .await
}

/// An SDK error with its service code and message, for people.
pub fn describe<E>(operation: &str, error: &aws_sdk_secretsmanager::error::SdkError<E>) -> String
where
    E: std::error::Error + aws_sdk_secretsmanager::error::ProvideErrorMetadata + 'static,
{
    use aws_sdk_secretsmanager::error::{DisplayErrorContext, SdkError};
    match error {
        SdkError::ServiceError(service) => {
            let inner = service.err();
            format!(
                "{operation}: {}: {}",
                inner.code().unwrap_or("error"),
                inner.message().unwrap_or("no message")
            )
        }
        other => format!("{operation}: {}", DisplayErrorContext(other)),
    }
}

/// A CloudFront client: CloudFront is global, its API lives in us-east-1
/// whatever the default region is.
#[cfg(feature = "aws-cloudfront")]
pub async fn cloudfront(timeout: Duration) -> aws_sdk_cloudfront::Client {
    let config = sdk_config(timeout).await;
    let config = aws_sdk_cloudfront::config::Builder::from(&config)
        .region(aws_config::Region::new("us-east-1"))
        .build();
    aws_sdk_cloudfront::Client::from_conf(config)
}
