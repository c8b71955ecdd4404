//! cfmint mints Amazon CloudFront signed cookies and signed URLs.
//!
//! [`signer`] is the CloudFront core (policies, keys, signing, verification);
//! [`cli`] is the `cfmint` command line built on it.

pub mod cli;
pub mod signer;
