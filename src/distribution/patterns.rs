//! CloudFront's choice of cache behavior, decided for a whole set of paths:
//! which behaviors can serve some path a pattern names, each with a path
//! that shows it.
//!
//! CloudFront compares a request's path (no query) with each behavior's
//! path pattern in order and takes the first that matches, the default
//! behavior (`*`) last. In a path pattern `*` is any run of characters and
//! `?` exactly one; a pattern without a leading `/` behaves as if it had
//! one. The same rules read the paths cfmint signs for (grant patterns,
//! `{sub}` standing as `*`).

use std::collections::{HashMap, VecDeque};

use crate::auth::proof::{Token, tokens};

/// Nodes explored before the search gives up.
const BOUND: usize = 200_000;

/// A path pattern as tokens, with the leading `/` CloudFront implies.
#[derive(Debug, Clone)]
struct Glob(Vec<Token>);

impl Glob {
    fn new(pattern: &str) -> Self {
        let implied = (!pattern.starts_with(['/', '*'])).then_some(Token::Char('/'));
        Self(implied.into_iter().chain(tokens(pattern, true)).collect())
    }

    /// The positions reachable from `positions` by skipping `*`s, sorted.
    fn closure(&self, mut positions: Vec<usize>) -> Vec<usize> {
        let mut at = 0;
        while at < positions.len() {
            let p = positions[at];
            if self.0.get(p) == Some(&Token::Run) && !positions.contains(&(p + 1)) {
                positions.push(p + 1);
            }
            at += 1;
        }
        positions.sort_unstable();
        positions.dedup();
        positions
    }

    fn start(&self) -> Vec<usize> {
        self.closure(vec![0])
    }

    fn step(&self, positions: &[usize], c: char) -> Vec<usize> {
        let mut next = Vec::with_capacity(positions.len());
        for &p in positions {
            match self.0.get(p) {
                Some(Token::Char(x)) if *x == c => next.push(p + 1),
                Some(Token::One) => next.push(p + 1),
                Some(Token::Run) => next.push(p),
                _ => {}
            }
        }
        self.closure(next)
    }

    fn accepts(&self, positions: &[usize]) -> bool {
        positions.contains(&self.0.len())
    }

    fn chars(&self) -> impl Iterator<Item = char> + '_ {
        self.0.iter().filter_map(|token| match token {
            Token::Char(c) => Some(*c),
            _ => None,
        })
    }
}

/// The search ran past its bound: the patterns are too intricate to decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecided;

/// For every behavior that serves some path `target` names, in the order
/// given (`behaviors` in CloudFront's order, the default last), the index
/// and a shortest such path.
pub fn serving(target: &str, behaviors: &[&str]) -> Result<Vec<(usize, String)>, Undecided> {
    let target = Glob::new(target);
    let globs: Vec<Glob> = behaviors.iter().map(|pattern| Glob::new(pattern)).collect();
    let alphabet = alphabet(std::iter::once(&target).chain(&globs));

    type Node = (Vec<usize>, Vec<Vec<usize>>);
    let start: Node = (target.start(), globs.iter().map(Glob::start).collect());
    let mut seen: HashMap<Node, ()> = HashMap::new();
    // Each node with how it was reached: its parent and the character read.
    let mut nodes: Vec<(Node, Option<(usize, char)>)> = vec![(start.clone(), None)];
    seen.insert(start, ());
    let mut queue = VecDeque::from([0]);
    let mut found: Vec<Option<String>> = vec![None; globs.len()];
    while let Some(index) = queue.pop_front() {
        let (target_at, at) = nodes[index].0.clone();
        if target.accepts(&target_at)
            && let Some(first) = globs.iter().zip(&at).position(|(g, p)| g.accepts(p))
            && found[first].is_none()
        {
            found[first] = Some(witness(&nodes, index));
        }
        for &c in &alphabet {
            let next_target = target.step(&target_at, c);
            if next_target.is_empty() {
                continue;
            }
            let next: Node = (
                next_target,
                globs.iter().zip(&at).map(|(g, p)| g.step(p, c)).collect(),
            );
            if seen.contains_key(&next) {
                continue;
            }
            if nodes.len() >= BOUND {
                return Err(Undecided);
            }
            seen.insert(next.clone(), ());
            queue.push_back(nodes.len());
            nodes.push((next, Some((index, c))));
        }
    }
    Ok(found
        .into_iter()
        .enumerate()
        .filter_map(|(i, path)| path.map(|path| (i, path)))
        .collect())
}

/// Every character a pattern names, and one none does (standing for all
/// the others, which every pattern treats alike).
fn alphabet<'a>(globs: impl Iterator<Item = &'a Glob>) -> Vec<char> {
    let mut chars: Vec<char> = globs.flat_map(Glob::chars).collect();
    chars.sort_unstable();
    chars.dedup();
    let other = "xyzqjkwvu0123456789-_.~abcdefghilmnoprst"
        .chars()
        .find(|c| chars.binary_search(c).is_err())
        .unwrap_or('\u{e000}');
    chars.push(other);
    chars
}

fn witness<T>(nodes: &[(T, Option<(usize, char)>)], mut at: usize) -> String {
    let mut chars = Vec::new();
    while let Some((parent, c)) = nodes[at].1 {
        chars.push(c);
        at = parent;
    }
    chars.iter().rev().collect()
}

/// Whether `path` (no wildcard) matches the path pattern.
pub fn matches(pattern: &str, path: &str) -> bool {
    let glob = Glob::new(pattern);
    let end = path
        .chars()
        .fold(glob.start(), |positions, c| glob.step(&positions, c));
    glob.accepts(&end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(target: &str, behaviors: &[&str]) -> Vec<usize> {
        serving(target, behaviors)
            .unwrap()
            .into_iter()
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn the_first_matching_behavior_serves() {
        let behaviors = ["/audio/*", "/audio/public/*", "*"];
        assert_eq!(served("/audio/*", &behaviors), vec![0]);
        assert_eq!(served("/audio/public/*", &behaviors), vec![0]);
        assert_eq!(served("/video/*", &behaviors), vec![2]);
        // A folder grant reaches past a narrower behavior to the default.
        assert_eq!(served("/*", &behaviors), vec![0, 2]);
    }

    #[test]
    fn an_earlier_broader_behavior_shadows_a_later_one() {
        let (index, path) = serving("/books/*", &["/b*", "/books/*", "*"]).unwrap()[0].clone();
        assert_eq!(index, 0);
        assert!(path.starts_with("/books/"), "{path}");
        assert_eq!(served("/books/*", &["/b*", "/books/*", "*"]), vec![0]);
    }

    #[test]
    fn a_leading_slash_is_implied_and_question_marks_are_one_character() {
        assert!(matches("images/*.jpg", "/images/a.jpg"));
        assert!(matches("/exam/?/key", "/exam/1/key"));
        assert!(!matches("/exam/?/key", "/exam/12/key"));
        assert_eq!(served("/exam/12/*", &["/exam/?/*", "*"]), vec![1]);
        assert_eq!(served("/exam/*/key", &["/exam/?/*", "*"]), vec![0, 1]);
    }

    #[test]
    fn paths_are_case_sensitive() {
        assert_eq!(served("/Audio/*", &["/audio/*", "*"]), vec![1]);
    }

    #[test]
    fn a_witness_is_a_path_both_name() {
        for (i, path) in serving("/a/*/b", &["/a/x*", "*"]).unwrap() {
            assert!(matches("/a/*/b", &path), "{path}");
            assert!(matches(["/a/x*", "*"][i], &path), "{path}");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn pattern() -> impl Strategy<Value = String> {
            proptest::collection::vec(prop::sample::select(vec!['/', 'a', 'b', '*', '?']), 0..5)
                .prop_map(|chars| chars.into_iter().collect())
        }

        /// Every path of up to `len` characters over `/`, `a`, `b`, `c`.
        fn paths(len: usize) -> Vec<String> {
            let mut all = vec![String::new()];
            let mut last = vec![String::new()];
            for _ in 0..len {
                last = last
                    .iter()
                    .flat_map(|p| ['/', 'a', 'b', 'c'].map(|c| format!("{p}{c}")))
                    .collect();
                all.extend(last.iter().cloned());
            }
            all
        }

        proptest! {
            /// The search agrees with trying every short path: each
            /// behavior some short path reaches is found, and each path it
            /// names is one the target names and that behavior serves first.
            #[test]
            fn serving_agrees_with_every_short_path(
                target in pattern(),
                behaviors in proptest::collection::vec(pattern(), 0..3),
            ) {
                let mut all: Vec<&str> = behaviors.iter().map(String::as_str).collect();
                all.push("*");
                let found = serving(&target, &all).unwrap();
                for (index, path) in &found {
                    prop_assert!(matches(&target, path), "{path}");
                    prop_assert_eq!(all.iter().position(|p| matches(p, path)), Some(*index));
                }
                for path in paths(5) {
                    if matches(&target, &path) {
                        let first = all.iter().position(|p| matches(p, &path)).unwrap();
                        prop_assert!(found.iter().any(|(i, _)| *i == first), "{path} -> {first}");
                    }
                }
            }
        }
    }
}
