//! The service suite: `cfmint serve` and `cfmint edge` over real TCP, with
//! the real servers they meet (Redis, nginx, Prometheus, an OpenID provider,
//! moto, SoftHSM). docs/testing.md maps it; `map_is_true` below holds that
//! map to this tree.
//!
//! - `api`: the HTTP API's behaviour, mostly in-process (`TestApp`).
//! - `delivery`: what a signature opens at the edge, as CloudFront would
//!   decide it, through nginx and to players.
//! - `binary`: the shipped binary as operators run it: commands, shipped
//!   configurations, signals, logs, metrics, manifests.
//! - `stores`: sessions in Redis (plain and TLS), keys in KMS and PKCS#11,
//!   key rotation.
//! - `teams`: one end-to-end story per kind of team that adopts cfmint.
//! - `harness`: everything the groups share (starting servers, logging in,
//!   minting, tokens, metrics).

mod api;
mod binary;
mod delivery;
mod harness;
mod stores;
mod teams;
