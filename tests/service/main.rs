//! Black-box tests of `cfmint serve` over a real TCP port.

mod authorize;
mod behaviour;
mod binary;
mod client_ip;
mod config;
mod described;
mod edge;
mod grant_proof;
mod harness;
mod hostile;
mod jwt;
#[cfg(any(feature = "aws-kms", feature = "pkcs11"))]
mod key_stores;
mod kubernetes;
mod limits;
mod monitoring;
mod observability;
mod oidc;
mod operations;
mod playlists;
mod redis;
mod redis_tls;
#[cfg(feature = "aws-cloudfront")]
mod rotation;
mod sessions;
mod shapes;
mod shipped;
#[path = "../teams/mod.rs"]
mod teams;
mod traversal;
