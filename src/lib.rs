//! cfmint mints Amazon CloudFront signed cookies and signed URLs.
//!
//! [`signer`] is the CloudFront core (policies, keys, signing, verification),
//! the `cfmint-signer` crate;
//! [`app`] starts the minting service ([`http`], [`auth`], [`session`]) from
//! [`config`]; [`cli`] is the `cfmint` command line.

pub mod app;
pub mod auth;
#[cfg(feature = "aws-secrets")]
pub mod aws;
pub mod cli;
pub mod client_ip;
pub mod config;
pub mod demo;
pub mod distribution;
pub mod edge;
pub mod http;
pub mod keyring;
pub mod metrics;
pub mod minter;
pub mod playlist;
pub mod pool;
pub mod ratelimit;
#[cfg(feature = "aws-cloudfront")]
pub mod rotation;
pub mod session;
pub mod tls;
pub mod web;

pub use cfmint_signer as signer;

pub use app::Application;
pub use config::Settings;
