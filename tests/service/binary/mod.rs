//! The shipped binary as operators run it: its commands, every shipped
//! configuration, signals and health checks, logs, metrics with a real
//! Prometheus, and the Kubernetes manifests.

mod check;
mod cloudfront;
mod commands;
mod config;
mod kubernetes;
mod monitoring;
mod observability;
mod operations;
pub mod shipped;
