//! Who the caller is: authenticators (local users, JWT bearer tokens) produce
//! an [`Identity`]; [`grants`] decide what that identity may mint.

pub mod authorize;
pub mod grants;
pub mod jwt;
pub mod oidc;
pub mod path;
pub mod proof;
pub mod users;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
    /// The token's `exp` (epoch seconds), when the identity came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
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

    /// The identity verified token claims describe: the subject, the claims
    /// grants look at (`claims_needed`), and extra path patterns from
    /// `paths_claim`. `None` without a subject.
    pub fn from_claims(
        claims: &Map<String, Value>,
        method: Method,
        claims_needed: &BTreeSet<String>,
        paths_claim: Option<&str>,
    ) -> Option<Self> {
        let sub = match claims.get("sub") {
            Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
            _ => return None,
        };
        let mut identity = Self::new(sub, method);
        identity.expires = claims.get("exp").and_then(Value::as_u64);
        for name in claims_needed {
            if let Some(values) = claims.get(name).and_then(string_values) {
                identity.claims.insert(name.clone(), values);
            }
        }
        if let Some(values) = paths_claim
            .and_then(|name| claims.get(name))
            .and_then(string_values)
        {
            identity.paths = grants::extra_patterns(&values);
        }
        Some(identity)
    }

    pub fn new(sub: String, method: Method) -> Self {
        Self {
            sub,
            method,
            claims: BTreeMap::new(),
            paths: Vec::new(),
            expires: None,
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

/// A claim as strings: a string, or an array of strings.
fn string_values(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::String(text) => Some(vec![text.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn identity(value: Value) -> Option<Identity> {
        let needed = BTreeSet::from(["groups".to_owned()]);
        Identity::from_claims(&claims(value), Method::Jwt, &needed, Some("paths"))
    }

    #[test]
    fn a_subject_must_be_a_non_empty_string() {
        for sub in [serde_json::json!(""), serde_json::json!(42), Value::Null] {
            assert!(
                identity(serde_json::json!({ "sub": sub })).is_none(),
                "{sub}"
            );
        }
        assert!(identity(serde_json::json!({})).is_none());
        assert_eq!(
            identity(serde_json::json!({ "sub": "ann" })).unwrap().sub,
            "ann"
        );
    }

    #[test]
    fn a_claim_is_a_string_or_a_list_of_strings() {
        let single = identity(serde_json::json!({ "sub": "t", "groups": "teachers" })).unwrap();
        assert_eq!(single.claims["groups"], ["teachers"]);
        let list = identity(serde_json::json!({ "sub": "t", "groups": ["a", "b"] })).unwrap();
        assert_eq!(list.claims["groups"], ["a", "b"]);
        for odd in [
            serde_json::json!(["a", 1]),
            serde_json::json!(7),
            serde_json::json!({}),
        ] {
            let who = identity(serde_json::json!({ "sub": "t", "groups": odd })).unwrap();
            assert!(!who.claims.contains_key("groups"), "{odd}");
        }
        // Claims no grant looks at are not kept.
        let extra = identity(serde_json::json!({ "sub": "t", "email": "t@x" })).unwrap();
        assert!(extra.claims.is_empty());
        let paths = identity(serde_json::json!({ "sub": "t", "paths": "/a/*" })).unwrap();
        assert_eq!(paths.paths, ["/a/*"]);
    }
}
