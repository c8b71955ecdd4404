//! What cfmint keeps elsewhere: sessions in Redis (plain and TLS), keys in
//! AWS KMS and PKCS#11, and key rotation through CloudFront and Secrets
//! Manager.

mod failover;
#[cfg(any(feature = "aws-kms", feature = "pkcs11"))]
mod key_stores;
mod redis;
mod redis_tls;
#[cfg(feature = "aws-cloudfront")]
mod rotation;
