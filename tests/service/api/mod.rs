//! The HTTP API's behaviour: sessions, bearer tokens, OpenID Connect, the
//! authorization callback, resource shapes, limits, hostile input, and the
//! API's description against what ships.

mod authorize;
mod behaviour;
mod client_ip;
mod described;
mod hostile;
mod jwt;
mod limits;
mod oidc;
mod sessions;
mod shapes;
