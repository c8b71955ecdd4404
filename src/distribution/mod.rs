//! `cfmint cloudfront check`: the CloudFront distribution read against
//! cfmint's configuration, for what will answer viewers 403 or leave
//! content or cookies open (docs/deploy.md, "Check the distribution").
//!
//! [`model`] is what the check reads, filled from saved AWS CLI documents
//! ([`saved`]) or from the CloudFront API (`fetch`, with the
//! `aws-cloudfront` feature); [`patterns`] decides which behavior serves
//! which path; [`check`] makes the findings.

pub mod check;
#[cfg(feature = "aws-cloudfront")]
pub mod fetch;
pub mod model;
pub mod patterns;
pub mod saved;

use std::time::Duration;

use crate::config::Settings;

/// cfmint's keys as the check compares them: each key pair id with its
/// public key (SPKI PEM), and the active id. Keys in a ring or a key store
/// are read from there.
pub async fn cfmint_keys(
    settings: &Settings,
    timeout: Duration,
) -> Result<(Vec<(String, String)>, String), String> {
    let mut settings = settings.clone();
    crate::keyring::resolve_ring(&mut settings).await?;
    if settings.keys.keys.is_empty() {
        return Err(
            "keys: no signing key configured ([[keys.key]], keys.secret_id or \
                    keys.ring_file): there is nothing to compare with the key groups"
                .to_owned(),
        );
    }
    let ring = crate::keyring::key_ring(&settings)?;
    for (id, result) in crate::keyring::connect_remote_keys(&ring, &settings, timeout).await {
        result.map_err(|e| format!("key {id}: {e}"))?;
    }
    let mut keys = Vec::new();
    for key in ring.keys() {
        let pem = key
            .public_key()
            .and_then(|public| public.to_pem())
            .map_err(|e| format!("key {}: {e}", key.id()))?;
        keys.push((key.id().as_str().to_owned(), pem));
    }
    Ok((keys, ring.active().id().as_str().to_owned()))
}
