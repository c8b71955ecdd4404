//! The requested path: checked before anything is signed, so a caller can never
//! widen a grant with a wildcard, an escape or a dot segment.

use std::fmt;

/// A path that passed every check: starts with `/`, printable ASCII only, no
/// `*`, `?`, `\`, `"`, `%`, no empty, `.` or `..` segments in the middle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedPath(String);

/// Why a requested path was refused (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError(pub &'static str);

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl RequestedPath {
    pub fn parse(path: &str, max_len: usize) -> Result<Self, PathError> {
        if path.is_empty() {
            return Err(PathError("path is empty"));
        }
        if path.len() > max_len {
            return Err(PathError("path is too long"));
        }
        if !path.starts_with('/') {
            return Err(PathError("path must start with /"));
        }
        if let Some(c) = path.chars().find(|&c| !is_allowed(c)) {
            return Err(PathError(match c {
                '*' | '?' => "path must not contain wildcards (* or ?)",
                '%' => "path must not contain percent-escapes",
                '\\' => "path must not contain backslashes",
                '"' => "path must not contain quotes",
                c if c.is_control() => "path must not contain control characters",
                c if !c.is_ascii() => "path must be ASCII",
                _ => "path contains a character that is not allowed",
            }));
        }
        let inner = path.trim_start_matches('/');
        let segments: Vec<&str> = inner.split('/').collect();
        let last = segments.len() - 1;
        for (index, segment) in segments.iter().enumerate() {
            match *segment {
                "." | ".." => return Err(PathError("path must not contain . or .. segments")),
                "" if index != last => return Err(PathError("path must not contain //")),
                _ => {}
            }
        }
        if path.starts_with("//") {
            return Err(PathError("path must not contain //"));
        }
        Ok(Self(path.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A directory request (`/audiobooks/42/`) signs everything below it.
    pub fn is_directory(&self) -> bool {
        self.0.ends_with('/')
    }
}

/// Printable ASCII except the characters that change a resource's meaning.
fn is_allowed(c: char) -> bool {
    c.is_ascii_graphic() && !matches!(c, '*' | '?' | '\\' | '"' | '%' | '#' | '\'' | '<' | '>')
}

#[cfg(test)]
mod tests {
    use super::*;

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
