//! Grants: which path patterns an identity may mint. Config grants (with
//! `{sub}` and claim conditions) plus extra patterns a JWT may carry.

use std::collections::BTreeSet;

use super::Identity;
use super::path::RequestedPath;
use super::proof::Scope;

const SUB_PLACEHOLDER: &str = "{sub}";

/// One configured grant: patterns, optionally only when a claim holds a value.
#[derive(Debug, Clone)]
pub struct Grant {
    pub when: Option<Condition>,
    pub patterns: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum Condition {
    /// The claim (a string or a list of strings) contains the value.
    Contains { claim: String, value: String },
    /// The claim is exactly the value.
    Equals { claim: String, value: String },
}

impl Condition {
    fn claim(&self) -> &str {
        match self {
            Self::Contains { claim, .. } | Self::Equals { claim, .. } => claim,
        }
    }

    fn holds(&self, identity: &Identity) -> bool {
        let values = identity.claims.get(self.claim());
        match (self, values) {
            (Self::Contains { value, .. }, Some(values)) => values.iter().any(|v| v == value),
            (Self::Equals { value, .. }, Some(values)) => values.len() == 1 && values[0] == *value,
            (_, None) => false,
        }
    }
}

/// Every grant, and the claim that may carry extra patterns.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    pub grants: Vec<Grant>,
    pub paths_claim: Option<String>,
}

impl Grants {
    /// Every pattern granted to `identity`: the configured grants whose
    /// conditions hold (`{sub}` filled in) and the token's own.
    pub fn patterns_for(&self, identity: &Identity) -> Vec<String> {
        self.grants
            .iter()
            .filter(|grant| grant.when.as_ref().is_none_or(|c| c.holds(identity)))
            .flat_map(|grant| &grant.patterns)
            .filter_map(|pattern| substitute(pattern, &identity.sub))
            .map(std::borrow::Cow::into_owned)
            .chain(identity.paths.iter().cloned())
            .collect()
    }

    /// What `identity` was granted, for the grant proof.
    pub fn scope_for(&self, identity: &Identity) -> Scope {
        Scope::any_of(self.patterns_for(identity))
    }

    /// Whether `identity` may mint `path` in its shape: the grant proof on
    /// the resource the path signs.
    pub fn allows(&self, identity: &Identity, path: &RequestedPath) -> bool {
        let (resource, wildcards) = path.resource_pattern();
        self.scope_for(identity)
            .prove("", &resource, wildcards)
            .is_ok()
    }

    /// Claims that conditions look at, so a session keeps only those.
    pub fn claims_needed(&self) -> BTreeSet<String> {
        self.grants
            .iter()
            .filter_map(|grant| grant.when.as_ref().map(|c| c.claim().to_owned()))
            .collect()
    }
}

/// Replaces `{sub}`; a subject that is not a plain path segment gets nothing.
fn substitute<'a>(pattern: &'a str, sub: &str) -> Option<std::borrow::Cow<'a, str>> {
    if !pattern.contains(SUB_PLACEHOLDER) {
        return Some(pattern.into());
    }
    is_safe_segment(sub).then(|| pattern.replace(SUB_PLACEHOLDER, sub).into())
}

fn is_safe_segment(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 256
        && text != "."
        && text != ".."
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._@+~".contains(&b))
}

/// Checks a grant pattern: like a requested path, but `*`, `?` and (in config)
/// `{sub}` are allowed.
pub fn check_pattern(pattern: &str, allow_placeholder: bool) -> Result<(), &'static str> {
    let text = if allow_placeholder {
        pattern.replace(SUB_PLACEHOLDER, "x")
    } else {
        pattern.to_owned()
    };
    if !text.starts_with('/') {
        return Err("a path pattern must start with /");
    }
    if text.contains("{") || text.contains('}') {
        return Err("the only placeholder is {sub}");
    }
    let plain = text.replace(['*', '?'], "x");
    RequestedPath::parse(&plain, 4096)
        .map(|_| ())
        .map_err(|e| e.0)
}

/// Extra patterns from a token claim; invalid ones are dropped.
pub fn extra_patterns(values: &[String]) -> Vec<String> {
    values
        .iter()
        .filter(|pattern| check_pattern(pattern, false).is_ok())
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Method;
    use crate::signer::wildcard_matches;

    fn identity(sub: &str, groups: &[&str], extra: &[&str]) -> Identity {
        let mut identity = Identity::new(sub.into(), Method::Users);
        identity.claims.insert(
            "groups".into(),
            groups.iter().map(|g| (*g).to_owned()).collect(),
        );
        identity.paths = extra.iter().map(|p| (*p).to_owned()).collect();
        identity
    }

    fn grants() -> Grants {
        Grants {
            grants: vec![
                Grant {
                    when: None,
                    patterns: vec!["/users/{sub}/*".into()],
                },
                Grant {
                    when: Some(Condition::Contains {
                        claim: "groups".into(),
                        value: "teachers".into(),
                    }),
                    patterns: vec!["/materials/*".into(), "/exams/*/key.pdf".into()],
                },
            ],
            paths_claim: Some("paths".into()),
        }
    }

    fn allows(identity: &Identity, path: &str) -> bool {
        grants().allows(identity, &RequestedPath::parse(path, 1024).unwrap())
    }

    #[test]
    fn a_prefix_is_granted_only_inside_a_grant() {
        use crate::auth::path::Match;
        let alice = identity("alice", &["teachers"], &[]);
        let prefix = |path| {
            grants().allows(
                &alice,
                &RequestedPath::with_match(path, 1024, Some(Match::Prefix)).unwrap(),
            )
        };
        assert!(prefix("/users/alice/chapter1_converted"));
        assert!(prefix("/users/alice/"));
        // `/users/al*` would cover `/users/alice/…` and `/users/albert/…`.
        assert!(!prefix("/users/al"));
        assert!(!prefix("/users/alice"));
        assert!(!prefix("/users/"));
        // A pattern that does not end in `*` contains no prefix.
        assert!(!prefix("/exams/1/key.pdf"));
        assert!(prefix("/materials/intro"));
    }

    #[test]
    fn sub_placeholder_grants_own_folder_only() {
        let alice = identity("alice", &[], &[]);
        assert!(allows(&alice, "/users/alice/"));
        assert!(allows(&alice, "/users/alice/notes.pdf"));
        assert!(!allows(&alice, "/users/bob/"));
        assert!(!allows(&alice, "/users/"));
        assert!(!allows(&alice, "/users/alice"));
    }

    #[test]
    fn subject_with_wildcard_or_slash_gets_no_placeholder_grant() {
        for sub in ["*", "a/b", "..", "a?", ""] {
            let who = identity(sub, &[], &[]);
            assert!(!allows(&who, "/users/a/"), "{sub}");
            assert!(!allows(&who, "/users/x/y"), "{sub}");
        }
    }

    #[test]
    fn claim_condition_gates_its_patterns() {
        assert!(allows(
            &identity("t", &["teachers"], &[]),
            "/materials/x.pdf"
        ));
        assert!(!allows(
            &identity("s", &["students"], &[]),
            "/materials/x.pdf"
        ));
    }

    #[test]
    fn equals_needs_exactly_that_single_value() {
        let grants = Grants {
            grants: vec![Grant {
                when: Some(Condition::Equals {
                    claim: "groups".into(),
                    value: "staff".into(),
                }),
                patterns: vec!["/staff/*".into()],
            }],
            paths_claim: None,
        };
        let path = RequestedPath::parse("/staff/a.pdf", 1024).unwrap();
        assert!(grants.allows(&identity("s", &["staff"], &[]), &path));
        for groups in [&["staff", "other"][..], &["other"], &["Staff"], &[]] {
            assert!(
                !grants.allows(&identity("s", groups, &[]), &path),
                "{groups:?}"
            );
        }
        let no_claim = Identity::new("s".into(), Method::Users);
        assert!(!grants.allows(&no_claim, &path));
    }

    #[test]
    fn the_claims_conditions_look_at_are_the_ones_kept() {
        assert_eq!(
            grants().claims_needed().into_iter().collect::<Vec<_>>(),
            ["groups"]
        );
        assert!(Grants::default().claims_needed().is_empty());
    }

    #[test]
    fn directory_request_needs_a_pattern_ending_in_star() {
        let teacher = identity("t", &["teachers"], &[]);
        assert!(allows(&teacher, "/exams/1/key.pdf"));
        // `/exams/1/` would sign `/exams/1/*`, wider than `/exams/*/key.pdf`.
        assert!(!allows(&teacher, "/exams/1/"));
        // A pattern that does match the folder path itself, but not every
        // URL below it: `/exams/?/` matches `/exams/1/`, `/exams/1/*` is wider.
        let narrow = Grants {
            grants: vec![Grant {
                when: None,
                patterns: vec!["/exams/?/".into()],
            }],
            paths_claim: None,
        };
        let folder = RequestedPath::parse("/exams/1/", 1024).unwrap();
        assert!(wildcard_matches("/exams/?/", folder.as_str()));
        assert!(!narrow.allows(&teacher, &folder));
        let wide = Grants {
            grants: vec![Grant {
                when: None,
                patterns: vec!["/exams/?/*".into()],
            }],
            paths_claim: None,
        };
        assert!(wide.allows(&teacher, &folder));
    }

    #[test]
    fn token_patterns_extend_grants() {
        let listener = identity("l", &[], &["/audiobooks/42/*"]);
        assert!(allows(&listener, "/audiobooks/42/"));
        assert!(!allows(&listener, "/audiobooks/43/"));
    }

    #[test]
    fn token_patterns_that_fail_the_checks_are_dropped() {
        let claimed = [
            "/audiobooks/42/*",
            "audiobooks/*",
            "/a/../*",
            "/{sub}/*",
            "/b?/c",
        ]
        .map(String::from);
        assert_eq!(extra_patterns(&claimed), ["/audiobooks/42/*", "/b?/c"]);
    }

    #[test]
    fn patterns_are_checked() {
        assert!(check_pattern("/users/{sub}/*", true).is_ok());
        assert!(check_pattern("/a/*/b?.pdf", false).is_ok());
        assert!(check_pattern("/users/{sub}/*", false).is_err());
        for bad in [
            "users/*",
            "/a/../*",
            "/{user}/*",
            "/a\\b",
            "/%2e/",
            "/a}/*",
            "/{a/*",
        ] {
            assert!(check_pattern(bad, true).is_err(), "{bad}");
        }
    }
}
