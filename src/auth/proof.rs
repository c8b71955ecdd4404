//! The grant proof (docs/api.md): nothing is signed unless every URL the signed
//! resource opens under CloudFront's rules (`*` any run, `?` exactly one
//! character, over the whole URL, query included) lies inside what the
//! caller was granted. Cookies, signed URLs, query strings, every URL a
//! playlist rewrite signs and the scope of a playlist token all go through
//! [`Scope::prove`], from the one place that signs ([`crate::minter`]).
//!
//! A grant pattern names paths (`/users/alice/*`, `/exams/?/key.pdf`): it
//! grants a URL when the URL's path, up to its first `?`, matches the
//! pattern, whatever the query. The proof decides inclusion of the
//! resource's URLs in the grant's exactly, walking the resource's positions
//! against every set of grant positions they can reach, and names a URL
//! outside the grant when there is one.

use std::collections::{HashMap, VecDeque};
use std::fmt;

/// What one signature may open: every entry of `all_of` must contain the
/// resource within the union of its path patterns. Built from the
/// grants, narrowed by an authorization answer or a playlist token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    all_of: Vec<Vec<String>>,
}

/// A signature that would open more than was granted, with a URL it would
/// open that lies outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Widening {
    /// A URL the resource matches that no grant covers; `None` when the
    /// proof ran past its bound (refused all the same).
    pub outside: Option<String>,
}

impl fmt::Display for Widening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outside {
            Some(url) => write!(
                f,
                "signing it would also open {}, which is not granted",
                url.escape_debug()
            ),
            None => f.write_str("it could not be shown to stay inside the grant"),
        }
    }
}

impl Scope {
    /// Granted through any one of `patterns`.
    pub fn any_of(patterns: Vec<String>) -> Self {
        Self {
            all_of: vec![patterns],
        }
    }

    /// Also bounded by `patterns` (an authorization answer, a token's scope).
    pub fn and(mut self, patterns: Vec<String>) -> Self {
        self.all_of.push(patterns);
        self
    }

    /// Whether every URL `resource` opens lies inside the scope. `base` is
    /// the distribution's URL, which every grant pattern is relative to;
    /// `wildcards` says whether CloudFront reads `*` and `?` in the
    /// resource as wildcards (a custom policy) or compares it as it is
    /// (a canned one). An empty scope proves nothing.
    pub fn prove(&self, base: &str, resource: &str, wildcards: bool) -> Result<(), Widening> {
        if self.all_of.is_empty() {
            return Err(Widening { outside: None });
        }
        let resource = tokens(resource, wildcards);
        for any_of in &self.all_of {
            included(&resource, &Grant::new(base, any_of))?;
        }
        Ok(())
    }
}

/// Nodes explored before a proof gives up (and refuses).
const BOUND: usize = 200_000;

/// One position of a pattern under CloudFront's wildcard rules (also read
/// by `crate::distribution::patterns` for cache behaviors' path patterns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    Char(char),
    /// `?`: one character.
    One,
    /// `*`: any run of characters, none included.
    Run,
}

pub(crate) fn tokens(text: &str, wildcards: bool) -> Vec<Token> {
    text.chars()
        .map(|c| match c {
            '*' if wildcards => Token::Run,
            '?' if wildcards => Token::One,
            c => Token::Char(c),
        })
        .collect()
}

/// A grant as an automaton over URLs: the union of its patterns, each the
/// base, then the path pattern, whose wildcards stop at `?` (the query
/// separator), then optionally `?` and any query. A state is a set of
/// (pattern, position) pairs.
struct Grant {
    patterns: Vec<Vec<Token>>,
}

/// The position past the path pattern after a `?`: anything follows.
const QUERY: usize = usize::MAX;

type Positions = Vec<(usize, usize)>;

impl Grant {
    fn new(base: &str, patterns: &[String]) -> Self {
        let patterns = patterns
            .iter()
            .map(|pattern| {
                let mut tokens = tokens(base, false);
                tokens.extend(tokens_of_pattern(pattern));
                tokens
            })
            .collect();
        Self { patterns }
    }

    fn start(&self) -> Positions {
        self.closure((0..self.patterns.len()).map(|i| (i, 0)).collect())
    }

    /// Adds the positions a `*` may skip to, sorted and without repeats.
    fn closure(&self, mut positions: Positions) -> Positions {
        let mut at = 0;
        while at < positions.len() {
            let (i, position) = positions[at];
            if position != QUERY && self.patterns[i].get(position) == Some(&Token::Run) {
                positions.push((i, position + 1));
            }
            at += 1;
        }
        positions.sort_unstable();
        positions.dedup();
        positions
    }

    fn step(&self, positions: &[(usize, usize)], c: char) -> Positions {
        let mut next = Vec::with_capacity(positions.len() + 1);
        for &(i, position) in positions {
            let tokens = &self.patterns[i];
            if position == QUERY {
                next.push((i, QUERY));
                continue;
            }
            if position == tokens.len() {
                if c == '?' {
                    next.push((i, QUERY));
                }
                continue;
            }
            match tokens[position] {
                Token::Char(x) if x == c => next.push((i, position + 1)),
                Token::One if c != '?' => next.push((i, position + 1)),
                Token::Run if c != '?' => next.push((i, position)),
                _ => {}
            }
        }
        self.closure(next)
    }

    fn accepts(&self, positions: &[(usize, usize)]) -> bool {
        positions
            .iter()
            .any(|&(i, p)| p == QUERY || p == self.patterns[i].len())
    }
}

fn tokens_of_pattern(pattern: &str) -> impl Iterator<Item = Token> + '_ {
    tokens(pattern, true).into_iter()
}

/// A position in the resource and the grant positions it may be matched at.
type Node = (usize, Positions);
/// How a node was reached: the node before it and the character read (none
/// for a `*` that ends empty).
type Via = Option<(usize, Option<char>)>;

/// Whether every URL the resource matches is one the grant accepts; else a
/// URL that shows it is not.
fn included(resource: &[Token], grant: &Grant) -> Result<(), Widening> {
    let literal: Option<String> = resource
        .iter()
        .map(|token| match token {
            Token::Char(c) => Some(*c),
            _ => None,
        })
        .collect();
    if let Some(url) = literal {
        let end = url
            .chars()
            .fold(grant.start(), |positions, c| grant.step(&positions, c));
        return if grant.accepts(&end) {
            Ok(())
        } else {
            Err(Widening { outside: Some(url) })
        };
    }
    let alphabet = alphabet(resource, grant.patterns.iter().flatten());
    // Breadth first over (resource position, grant positions), each node
    // remembering how it was reached, so the first counterexample found is
    // a shortest one.
    let mut seen: HashMap<Node, usize> = HashMap::new();
    let mut nodes: Vec<(Node, Via)> = Vec::new();
    let mut queue = VecDeque::new();
    let start: Node = (0, grant.start());
    seen.insert(start.clone(), 0);
    nodes.push((start, None));
    queue.push_back(0);
    while let Some(index) = queue.pop_front() {
        let (r, positions) = nodes[index].0.clone();
        if r == resource.len() {
            if !grant.accepts(&positions) {
                return Err(Widening {
                    outside: Some(witness(&nodes, index)),
                });
            }
            continue;
        }
        let mut successors: Vec<(Node, Option<char>)> = Vec::new();
        match resource[r] {
            Token::Char(c) => successors.push(((r + 1, grant.step(&positions, c)), Some(c))),
            Token::One => {
                for &c in &alphabet {
                    successors.push(((r + 1, grant.step(&positions, c)), Some(c)));
                }
            }
            Token::Run => {
                successors.push(((r + 1, positions.clone()), None));
                for &c in &alphabet {
                    successors.push(((r, grant.step(&positions, c)), Some(c)));
                }
            }
        }
        for (node, via) in successors {
            if seen.contains_key(&node) {
                continue;
            }
            if nodes.len() >= BOUND {
                return Err(Widening { outside: None });
            }
            seen.insert(node.clone(), nodes.len());
            queue.push_back(nodes.len());
            nodes.push((node, Some((index, via))));
        }
    }
    Ok(())
}

/// Every character that either side names, `?`, and one that neither does
/// (standing for all the others, which both sides treat alike).
fn alphabet<'a>(resource: &'a [Token], grant: impl Iterator<Item = &'a Token>) -> Vec<char> {
    let mut chars: Vec<char> = resource
        .iter()
        .chain(grant)
        .filter_map(|token| match token {
            Token::Char(c) => Some(*c),
            _ => None,
        })
        .chain(['?'])
        .collect();
    chars.sort_unstable();
    chars.dedup();
    let other = "xyzqjkwvu0123456789-_.~abcdefghilmnoprst"
        .chars()
        .chain(['\u{fffd}'])
        .find(|c| chars.binary_search(c).is_err())
        .unwrap_or('\u{e000}');
    chars.push(other);
    chars
}

fn witness(nodes: &[(Node, Via)], mut at: usize) -> String {
    let mut chars = Vec::new();
    while let Some((parent, via)) = nodes[at].1 {
        chars.extend(via);
        at = parent;
    }
    chars.iter().rev().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://d.test";

    fn prove(patterns: &[&str], resource: &str, wildcards: bool) -> Result<(), Widening> {
        Scope::any_of(patterns.iter().map(|p| (*p).to_owned()).collect()).prove(
            BASE,
            &format!("{BASE}{resource}"),
            wildcards,
        )
    }

    fn outside(patterns: &[&str], resource: &str) -> String {
        prove(patterns, resource, true)
            .expect_err(resource)
            .outside
            .expect("a counterexample")
    }

    #[test]
    fn a_query_separator_in_a_custom_policy_opens_a_sibling_file() {
        // The finding: `/users/alice/a?txt` under a custom policy also
        // opens `/users/alice/a.txt`; signed canned it opens only itself.
        let url = outside(&["/users/alice/a"], "/users/alice/a?txt");
        assert!(url.starts_with("https://d.test/users/alice/a"), "{url}");
        assert!(!url.contains("/users/alice/a?"), "{url}");
        assert_eq!(
            prove(&["/users/alice/a"], "/users/alice/a?txt", false),
            Ok(())
        );
        let url = outside(&["/videos/1"], "/videos/1?/seg.ts");
        assert!(!url.starts_with("https://d.test/videos/1?"), "{url}");
        // Inside a folder grant the same resource stays inside.
        assert_eq!(
            prove(&["/users/alice/*"], "/users/alice/a?txt", true),
            Ok(())
        );
    }

    #[test]
    fn a_resource_may_need_several_patterns_together() {
        // `/a?&` opens `/a?&` (path `/a`, granted by `/?`) and `/aX&` for
        // every other X (granted by `/*??`): neither pattern alone.
        assert!(prove(&["/?", "/*??"], "/a?&", true).is_ok());
        assert!(prove(&["/?"], "/a?&", true).is_err());
        assert!(prove(&["/*??"], "/a?&", true).is_err());
    }

    #[test]
    fn a_granted_file_is_granted_with_any_query() {
        assert_eq!(prove(&["/a.pdf"], "/a.pdf", true), Ok(()));
        assert_eq!(prove(&["/a.pdf"], "/a.pdf?w=1", false), Ok(()));
        assert!(prove(&["/a.pdf"], "/a.pdfx", false).is_err());
        assert!(prove(&["/a.pdf"], "/a.pdf*", true).is_err());
        // `?` is one character of any kind: `/a.pdf.x` too.
        assert!(prove(&["/a.pdf"], "/a.pdf?*", true).is_err());
    }

    #[test]
    fn folders_and_prefixes_need_a_pattern_containing_every_extension() {
        assert_eq!(prove(&["/users/alice/*"], "/users/alice/*", true), Ok(()));
        assert_eq!(prove(&["/users/*"], "/users/alice/*", true), Ok(()));
        assert!(prove(&["/users/alice/*"], "/users/al*", true).is_err());
        assert!(prove(&["/exams/*/key.pdf"], "/exams/1/*", true).is_err());
        assert!(prove(&["/exams/?/"], "/exams/1/*", true).is_err());
        assert_eq!(prove(&["/exams/?/*"], "/exams/1/*", true), Ok(()));
        // A path wildcard does not run into the query.
        assert!(prove(&["/exams/*/key.pdf"], "/exams/a?/key.pdf", false).is_err());
        assert_eq!(
            prove(&["/b/*.m3u8", "/b/*"], "/b/1/*", true),
            Ok(()),
            "any one pattern may contain it"
        );
    }

    #[test]
    fn every_part_of_the_scope_must_contain_the_resource() {
        let scope =
            Scope::any_of(vec!["/users/alice/*".into()]).and(vec!["/users/alice/x/*".into()]);
        assert_eq!(
            scope.prove(BASE, "https://d.test/users/alice/x/*", true),
            Ok(())
        );
        assert!(
            scope
                .prove(BASE, "https://d.test/users/alice/y/*", true)
                .is_err()
        );
        assert!(
            Scope::default()
                .prove(BASE, "https://d.test/a", false)
                .is_err()
        );
        assert!(
            Scope::any_of(vec![])
                .prove(BASE, "https://d.test/a", false)
                .is_err()
        );
    }

    #[test]
    fn the_distribution_is_part_of_the_url() {
        let scope = Scope::any_of(vec!["/*".into()]);
        assert!(scope.prove(BASE, "https://e.test/a", false).is_err());
        assert!(scope.prove(BASE, "https://d.test*", true).is_err());
        assert_eq!(scope.prove(BASE, "https://d.test/*", true), Ok(()));
    }

    #[test]
    fn counterexamples_are_matched_by_the_resource_and_outside_the_grant() {
        for (pattern, resource) in [
            ("/a/b", "/a/?"),
            ("/a/*/c", "/a/*"),
            ("/a/?x", "/a/*x"),
            ("/a", "/a?b*"),
        ] {
            let url = outside(&[pattern], resource);
            let full = format!("{BASE}{resource}");
            assert!(crate::signer::wildcard_matches(&full, &url), "{full} {url}");
            let path = url[BASE.len()..].split('?').next().unwrap();
            assert!(
                !crate::signer::wildcard_matches(pattern, path),
                "{pattern} {url}"
            );
        }
    }

    #[test]
    fn grant_wildcards_stop_at_the_query_separator() {
        // A path wildcard never stands for the `?` that starts the query:
        // `/a/?/b` custom opens `/a/?/b`, whose path is `/a/`.
        assert!(prove(&["/a/*/b"], "/a/?/b", true).is_err());
        assert!(prove(&["/a?"], "/a?", false).is_err());
        assert_eq!(prove(&["/a?"], "/ab", false), Ok(()));
    }

    #[test]
    fn a_resource_read_without_wildcards_is_taken_literally() {
        // Canned: `/a/*` is the one URL `/a/*`, which `/a/?` grants.
        assert_eq!(prove(&["/a/?"], "/a/*", false), Ok(()));
        assert!(prove(&["/a/?"], "/a/*", true).is_err());
    }

    #[test]
    fn a_pattern_may_start_with_a_wildcard() {
        let scope = Scope::any_of(vec!["*".into()]);
        assert_eq!(scope.prove("", "/a", false), Ok(()));
        assert_eq!(scope.prove("", "/a*", true), Ok(()));
        // Matching nothing, the `*` leaves the query to follow at once.
        assert_eq!(scope.prove("", "?x", false), Ok(()));
        assert_eq!(scope.prove("", "", false), Ok(()));
    }

    #[test]
    fn a_refusal_says_what_it_would_open() {
        let widening = prove(&["/a"], "/a?b", true).unwrap_err();
        let text = widening.to_string();
        assert!(
            text.starts_with("signing it would also open https://d.test/a"),
            "{text}"
        );
        assert!(text.ends_with("which is not granted"), "{text}");
        let bounded = Widening { outside: None }.to_string();
        assert!(bounded.contains("could not be shown"), "{bounded}");
    }

    #[test]
    fn many_wildcards_stay_bounded() {
        let pattern = "/*a*a*a*a*a*a*a*a*b";
        let resource = format!("/{}", "*a".repeat(40));
        assert!(prove(&[pattern], &resource, true).is_err());
    }
}
