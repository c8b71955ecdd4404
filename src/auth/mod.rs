//! Who the caller is: authenticators (local users, JWT bearer tokens) produce
//! an [`Identity`]; [`grants`] decide what that identity may mint.

pub mod grants;
pub mod jwt;
pub mod oidc;
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
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, Vec<String>>,
    /// Extra path patterns carried by a token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
}

impl Identity {
    /// The identity as the session keeps it: one JSON string, not a map of
    /// values, so 100,000 in-memory sessions stay small.
    pub fn to_session(&self) -> String {
        serde_json::to_string(self).expect("an identity always serializes")
    }

    /// Reads [`Identity::to_session`]'s text back; `None` if it is not one.
    pub fn from_session(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

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
    Oidc,
}
