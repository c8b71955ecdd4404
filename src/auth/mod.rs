//! Who the caller is: authenticators (local users, JWT bearer tokens) produce
//! an [`Identity`]; [`grants`] decide what that identity may mint.

pub mod grants;
pub mod jwt;
pub mod path;
pub mod users;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An authenticated caller, as kept in the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The subject: a username or a token's `sub`.
    pub sub: String,
    pub method: Method,
    /// Claims that grant conditions look at, each as a list of strings.
    #[serde(default)]
    pub claims: BTreeMap<String, Vec<String>>,
    /// Extra path patterns carried by a token.
    #[serde(default)]
    pub paths: Vec<String>,
}

impl Identity {
    pub fn new(sub: String, method: Method) -> Self {
        Self {
            sub,
            method,
            claims: BTreeMap::new(),
            paths: Vec::new(),
        }
    }
}

/// How the identity was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Users,
    Jwt,
}
