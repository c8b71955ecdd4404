//! One end-to-end test per kind of team that adopts cfmint, each over real
//! HTTP with the built `cfmint` binary (`serve` and `edge` as child
//! processes), the local edge serving or proxying what the cookies and URLs
//! unlock, and cfmint's verifier. Compiled into the service test binary, so
//! they share its harness (Redis, the OpenID provider, key fixtures).

mod app_api;
mod audiobooks;
mod school;
mod uploads;
mod video_course;

pub use crate::harness::{
    EdgeProcess, PASSWORD, ServeProcess, bearer, browser, post_json, serve_config,
};
