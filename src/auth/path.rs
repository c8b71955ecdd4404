//! The requested path: checked before anything is signed, so a caller can never
//! widen a grant with a wildcard, an escape or a dot segment.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How a requested path becomes the policy's resource (`"match"` in `/mint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Match {
    /// The one file at the path.
    Exact,
    /// Everything below a path ending in `/`: `<path>*`.
    Folder,
    /// Every URL starting with the path: `<path>*`, e.g. `/books/42/chapter1*`
    /// for `chapter1.m3u8` and its segments.
    Prefix,
}

impl Match {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Folder => "folder",
            Self::Prefix => "prefix",
        }
    }
}

/// A path that passed every check: starts with `/`, printable ASCII only, no
/// `*`, `?`, `\`, `"`, `%`, no empty, `.` or `..` segments in the middle.
/// It signs one file, or (folder and prefix) every URL starting with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedPath {
    path: String,
    shape: Match,
}

/// Why a requested path was refused (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError(pub &'static str);

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl RequestedPath {
    /// A path with the shape its form implies: a folder when it ends in `/`,
    /// else one file.
    pub fn parse(path: &str, max_len: usize) -> Result<Self, PathError> {
        Self::with_match(path, max_len, None)
    }

    /// A path with the shape asked for (`None`: what [`Self::parse`] implies).
    pub fn with_match(path: &str, max_len: usize, shape: Option<Match>) -> Result<Self, PathError> {
        check(path, max_len)?;
        let folder = path.ends_with('/');
        let shape = match (shape, folder) {
            (None, true) | (Some(Match::Folder), true) => Match::Folder,
            (None, false) | (Some(Match::Exact), false) => Match::Exact,
            (Some(Match::Prefix), _) => Match::Prefix,
            (Some(Match::Folder), false) => {
                return Err(PathError("match folder needs a path ending in /"));
            }
            (Some(Match::Exact), true) => {
                return Err(PathError(
                    "match exact names one file; a path ending in / is a folder",
                ));
            }
        };
        Ok(Self {
            path: path.to_owned(),
            shape,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.path
    }

    pub fn shape(&self) -> Match {
        self.shape
    }

    /// Whether the resource covers every URL starting with the path.
    pub fn signs_below(&self) -> bool {
        self.shape != Match::Exact
    }

    /// The resource this path signs, relative to the distribution, and
    /// whether it is read with wildcards: `<path>*` for a folder or a
    /// prefix, the path itself for one file.
    pub fn resource_pattern(&self) -> (String, bool) {
        if self.signs_below() {
            (format!("{}*", self.path), true)
        } else {
            (self.path.clone(), false)
        }
    }

    /// The same as a grant pattern: what an authorization answer or a
    /// playlist token for this path grants.
    pub fn as_pattern(&self) -> String {
        self.resource_pattern().0
    }
}

/// The checks every requested path passes, whatever its shape: the
/// signer's own (no wildcard, escape or dot segment) and the length bound.
fn check(path: &str, max_len: usize) -> Result<(), PathError> {
    if path.len() > max_len {
        return Err(PathError("path is too long"));
    }
    crate::signer::check_path(path).map_err(PathError)
}

/// One URL to sign (a `/sign-urls` item): a file path with an optional
/// query string, which is signed as part of the URL; grants look at the
/// path alone.
pub fn url_item(raw: &str, max_len: usize) -> Result<(RequestedPath, Option<&str>), String> {
    if raw.len() > max_len {
        return Err(format!(
            "the URL path and query are longer than {max_len} bytes"
        ));
    }
    let (path, query) = match raw.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (raw, None),
    };
    let path = RequestedPath::parse(path, max_len).map_err(|e| e.to_string())?;
    if path.signs_below() {
        return Err("a signed URL names one file, not a folder".into());
    }
    if let Some(query) = query {
        check_query(query)?;
    }
    Ok((path, query))
}

/// Checks the query string of a URL to sign (after the `?`). It becomes part
/// of the signed URL byte for byte, so it must be what a client sends
/// unchanged: visible ASCII, characters outside RFC 3986 percent-encoded, no
/// CloudFront wildcard (`*`, `?`) and none of CloudFront's own parameters.
pub fn check_query(query: &str) -> Result<(), String> {
    if query.is_empty() {
        return Err("the query string after ? is empty".into());
    }
    let bytes = query.as_bytes();
    for (at, &b) in bytes.iter().enumerate() {
        match b {
            b'%' => {
                let escape = bytes.get(at + 1..at + 3);
                if !escape.is_some_and(|e| e.iter().all(u8::is_ascii_hexdigit)) {
                    return Err(
                        "the query string has a % that does not start an escape like %2F".into(),
                    );
                }
            }
            b'*' | b'?' => {
                return Err(format!(
                    "the query string must not contain {} (a CloudFront wildcard); \
                     percent-encode it as %{b:02X}",
                    b as char
                ));
            }
            b'#' => return Err("the query string must not contain # (a fragment)".into()),
            // Browsers percent-encode `"`, `<`, `>` and `'` in a query before
            // sending it, which would no longer match the signature; the
            // rest are not allowed unencoded in a URI at all.
            b'"' | b'\'' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}' => {
                return Err(format!(
                    "the query string must percent-encode {} as %{b:02X}",
                    b as char
                ));
            }
            b if !b.is_ascii_graphic() => {
                return Err(
                    "the query string must be visible ASCII; percent-encode spaces and other characters"
                        .into(),
                );
            }
            _ => {}
        }
    }
    for parameter in query.split('&') {
        let name = parameter
            .split_once('=')
            .map_or(parameter, |(name, _)| name);
        if let Some(own) = crate::signer::SIGNING_PARAMS
            .iter()
            .find(|own| own.eq_ignore_ascii_case(name))
        {
            return Err(format!(
                "the query parameter {name} is CloudFront's own ({own}); it cannot be signed in"
            ));
        }
    }
    Ok(())
}

/// Printable ASCII except the characters that change a resource's meaning
/// and those a browser percent-encodes in a path (so the URL it sends would
/// not be the one signed).
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_signed_as_sent_or_refused_by_name() {
        for good in [
            "w=200&fmt=avif",
            "response-content-disposition=attachment%3B%20filename%3D%22r%C3%A9sum%C3%A9.pdf%22",
            "a=b+c&d=%27e%27",
            "flag",
            "x-amz-meta=%25",
        ] {
            assert_eq!(check_query(good), Ok(()), "{good}");
        }
        for (bad, reason) in [
            ("", "empty"),
            ("a=%2", "escape"),
            ("a=%zz", "escape"),
            ("a=%", "escape"),
            ("a=*", "wildcard"),
            ("a=b?c", "wildcard"),
            ("a=b#c", "fragment"),
            ("a=\"b\"", "percent-encode \""),
            ("d='e'", "percent-encode '"),
            ("a=b c", "visible ASCII"),
            ("a=é", "visible ASCII"),
            ("a=\n", "visible ASCII"),
            ("Expires=1", "Expires"),
            ("w=1&signature=x", "signature"),
            ("Key-Pair-Id", "Key-Pair-Id"),
            ("hash-algorithm=SHA256", "Hash-Algorithm"),
            ("Policy=x", "Policy"),
        ] {
            let error = check_query(bad).expect_err(bad);
            assert!(error.contains(reason), "{bad:?}: {error}");
        }
    }

    #[test]
    fn a_shape_names_itself_and_its_pattern() {
        for shape in [Match::Exact, Match::Folder, Match::Prefix] {
            let json = serde_json::to_string(&shape).unwrap();
            assert_eq!(json, format!("\"{}\"", shape.as_str()));
        }
        let pattern = |path, shape| {
            RequestedPath::with_match(path, 64, Some(shape))
                .unwrap()
                .as_pattern()
        };
        assert_eq!(pattern("/a/b.pdf", Match::Exact), "/a/b.pdf");
        assert_eq!(pattern("/a/", Match::Folder), "/a/*");
        assert_eq!(pattern("/a/ch1", Match::Prefix), "/a/ch1*");
    }

    #[test]
    fn a_url_to_sign_is_bounded_path_and_query_together() {
        let at_bound = format!("/{}?w=1", "a".repeat(59));
        assert_eq!(at_bound.len(), 64);
        let (path, query) = url_item(&at_bound, 64).unwrap();
        assert_eq!((path.as_str().len(), query), (60, Some("w=1")));
        let past = format!("/{}?w=1", "a".repeat(60));
        assert!(url_item(&past, 64).unwrap_err().contains("longer than 64"));
        assert!(url_item("/a/", 64).unwrap_err().contains("one file"));
        assert!(url_item("/a?", 64).unwrap_err().contains("empty"));
    }

    #[test]
    fn a_shape_must_fit_the_path() {
        let shaped = |path, shape| RequestedPath::with_match(path, 64, shape).map(|p| p.shape());
        assert_eq!(shaped("/a/", None), Ok(Match::Folder));
        assert_eq!(shaped("/a", None), Ok(Match::Exact));
        assert_eq!(shaped("/a/b", Some(Match::Prefix)), Ok(Match::Prefix));
        assert_eq!(shaped("/a/", Some(Match::Prefix)), Ok(Match::Prefix));
        assert_eq!(shaped("/a/", Some(Match::Folder)), Ok(Match::Folder));
        assert_eq!(shaped("/a", Some(Match::Exact)), Ok(Match::Exact));
        assert!(
            shaped("/a", Some(Match::Folder))
                .unwrap_err()
                .0
                .contains("ending in /")
        );
        assert!(
            shaped("/a/", Some(Match::Exact))
                .unwrap_err()
                .0
                .contains("folder")
        );
        // The shape never loosens the path checks.
        assert!(shaped("/a*", Some(Match::Prefix)).is_err());
        assert!(shaped("/a/../b", Some(Match::Prefix)).is_err());
        for (path, shape, below) in [
            ("/a", None, false),
            ("/a/", None, true),
            ("/a", Some(Match::Prefix), true),
        ] {
            assert_eq!(
                RequestedPath::with_match(path, 64, shape)
                    .unwrap()
                    .signs_below(),
                below
            );
        }
    }

    fn parse(path: &str) -> Result<RequestedPath, PathError> {
        RequestedPath::parse(path, 64)
    }

    #[test]
    fn ordinary_paths_are_accepted() {
        for path in [
            "/",
            "/a.pdf",
            "/audiobooks/42/",
            "/a/b-c_d.e~f/g.m3u8",
            "/a/.well",
        ] {
            assert!(parse(path).is_ok(), "{path}");
        }
    }

    #[test]
    fn hostile_paths_are_refused() {
        let long = format!("/{}", "a".repeat(64));
        for path in [
            "",
            "a/b",
            "/a/../b",
            "/..",
            "/a/./b",
            "/.",
            "/a/*",
            "/a?b",
            "/a\\b",
            "/a\"b",
            "/a%2e%2e/b",
            "/a\u{0}b",
            "/a\nb",
            "/a b",
            "/é",
            "//evil",
            "/a//b",
            &long,
        ] {
            assert!(parse(path).is_err(), "{path:?}");
        }
    }

    #[test]
    fn each_refusal_says_what_was_wrong() {
        for (path, reason) in [
            ("", "empty"),
            ("a/b", "start with /"),
            ("/a/*", "wildcards"),
            ("/a?b", "wildcards"),
            ("/a%2e", "percent-escapes"),
            ("/a\\b", "backslashes"),
            ("/a\"b", "quotes"),
            ("/a\u{7}b", "control characters"),
            ("/é", "ASCII"),
            ("/a b", "not allowed"),
            ("/a{b}", "not allowed"),
            ("/a`b", "not allowed"),
            ("/a/../b", ". or .."),
            ("/a//b", "//"),
            ("//evil", "//"),
        ] {
            let error = parse(path).unwrap_err();
            assert!(error.to_string().contains(reason), "{path:?}: {error}");
        }
        assert!(
            parse(&format!("/{}", "a".repeat(64)))
                .unwrap_err()
                .0
                .contains("too long")
        );
        // The bound itself is allowed.
        assert!(parse(&format!("/{}", "a".repeat(63))).is_ok());
    }
}
