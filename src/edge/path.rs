//! The one request-path canonicalisation of the edge: its file serving, its
//! signed-URL and cookie check and `GET /auth` all decide on the path a
//! proxy in front (nginx, CloudFront) will actually serve, or refuse it.
//!
//! Percent-encoding is decoded once, duplicate slashes merged and dot
//! segments removed (RFC 3986 section 5.2.4), the way nginx builds `$uri`.
//! Whatever a proxy could resolve differently is refused: encoded `/` or
//! `\`, backslashes, NUL and control characters, malformed escapes, bytes
//! that are not UTF-8, and a `..` that climbs above the root.

use std::fmt;

/// Longest path accepted, decoded or not.
pub const MAX_PATH: usize = 4096;

/// Why a request path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathRefusal {
    NotAbsolute,
    TooLong,
    MalformedEscape,
    EncodedSeparator,
    Backslash,
    ControlCharacter,
    NotUtf8,
    AboveRoot,
}

impl fmt::Display for PathRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAbsolute => "the path must start with /",
            Self::TooLong => "the path is too long",
            Self::MalformedEscape => "a % is not followed by two hex digits",
            Self::EncodedSeparator => "an encoded / or \\ is not allowed",
            Self::Backslash => "a backslash is not allowed",
            Self::ControlCharacter => "NUL and control characters are not allowed",
            Self::NotUtf8 => "the decoded path is not UTF-8",
            Self::AboveRoot => "a .. segment climbs above the root",
        })
    }
}

/// A canonical request path: starts with `/`, no empty, `.` or `..`
/// segments, and percent-encoded in one normal form (unreserved characters
/// and sub-delimiters literal, everything else `%XX` in upper case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalPath {
    encoded: String,
    decoded: String,
}

impl CanonicalPath {
    /// The normal percent-encoded form, for matching and forwarding.
    pub fn as_str(&self) -> &str {
        &self.encoded
    }

    /// The decoded form, for finding a file.
    pub fn decoded(&self) -> &str {
        &self.decoded
    }
}

/// Canonicalises the path part of a request target (no query string).
pub fn canonicalize(raw: &str) -> Result<CanonicalPath, PathRefusal> {
    if !raw.starts_with('/') {
        return Err(PathRefusal::NotAbsolute);
    }
    if raw.len() > MAX_PATH {
        return Err(PathRefusal::TooLong);
    }
    let decoded = percent_decode(raw.as_bytes())?;
    let decoded = String::from_utf8(decoded).map_err(|_| PathRefusal::NotUtf8)?;
    if decoded.chars().any(char::is_control) {
        return Err(PathRefusal::ControlCharacter);
    }
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in decoded.split('/').skip(1) {
        trailing_slash = matches!(segment, "" | "." | "..");
        match segment {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err(PathRefusal::AboveRoot);
                }
            }
            name => segments.push(name),
        }
    }
    let mut path = String::with_capacity(decoded.len() + 1);
    for segment in &segments {
        path.push('/');
        path.push_str(segment);
    }
    if trailing_slash || segments.is_empty() {
        path.push('/');
    }
    // Re-encoding can lengthen a path (a raw `é` becomes `%C3%A9`): the
    // bound holds for the canonical form too, so it is accepted again.
    let encoded = percent_encode(&path);
    if encoded.len() > MAX_PATH {
        return Err(PathRefusal::TooLong);
    }
    Ok(CanonicalPath {
        encoded,
        decoded: path,
    })
}

/// Decodes `%XX` once. Raw or encoded backslashes and encoded slashes are
/// refused: nginx, CloudFront and a file system each read them differently.
fn percent_decode(raw: &[u8]) -> Result<Vec<u8>, PathRefusal> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter().copied();
    while let Some(byte) = bytes.next() {
        let byte = match byte {
            b'\\' => return Err(PathRefusal::Backslash),
            b'%' => {
                let high = bytes
                    .next()
                    .and_then(hex)
                    .ok_or(PathRefusal::MalformedEscape)?;
                let low = bytes
                    .next()
                    .and_then(hex)
                    .ok_or(PathRefusal::MalformedEscape)?;
                match high << 4 | low {
                    b'/' | b'\\' => return Err(PathRefusal::EncodedSeparator),
                    decoded => decoded,
                }
            }
            other => other,
        };
        out.push(byte);
    }
    Ok(out)
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).map(|value| value as u8)
}

/// Characters a path segment carries literally (RFC 3986 `pchar` without
/// `%`): unreserved, sub-delimiters, `:` and `@`, plus the `/` separator.
fn is_literal(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&byte)
}

fn percent_encode(path: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(path.len());
    for &byte in path.as_bytes() {
        if is_literal(byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(raw: &str) -> Result<String, PathRefusal> {
        canonicalize(raw).map(|path| path.as_str().to_owned())
    }

    #[test]
    fn dot_segments_and_duplicate_slashes_resolve_like_nginx() {
        for (raw, expected) in [
            ("/", "/"),
            ("/a/b.txt", "/a/b.txt"),
            ("/users/alice/../bob/secret.txt", "/users/bob/secret.txt"),
            (
                "/users/alice/%2e%2e/bob/secret.txt",
                "/users/bob/secret.txt",
            ),
            (
                "/users/alice/%2E%2E/bob/secret.txt",
                "/users/bob/secret.txt",
            ),
            ("/users/alice//../bob/secret.txt", "/users/bob/secret.txt"),
            ("/users/alice/./../bob/secret.txt", "/users/bob/secret.txt"),
            ("//a///b/", "/a/b/"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/a/%61%62c", "/a/abc"),
            ("/a b/%C3%A9", "/a%20b/%C3%A9"),
            ("/a/%3F%23", "/a/%3F%23"),
            ("/a/%25", "/a/%25"),
            ("/..a/.b/...", "/..a/.b/..."),
        ] {
            assert_eq!(canonical(raw).as_deref(), Ok(expected), "{raw}");
        }
    }

    #[test]
    fn what_a_proxy_could_read_differently_is_refused() {
        for (raw, refusal) in [
            ("users/alice", PathRefusal::NotAbsolute),
            ("", PathRefusal::NotAbsolute),
            (
                "/users/alice/%2E%2E%2Fbob%2Fsecret.txt",
                PathRefusal::EncodedSeparator,
            ),
            ("/users/alice/%2f", PathRefusal::EncodedSeparator),
            ("/users/alice/%5c", PathRefusal::EncodedSeparator),
            ("/users/alice/..\\bob\\secret.txt", PathRefusal::Backslash),
            ("/a/%00", PathRefusal::ControlCharacter),
            ("/a/%0a", PathRefusal::ControlCharacter),
            ("/a/%7F", PathRefusal::ControlCharacter),
            ("/a/\u{1}", PathRefusal::ControlCharacter),
            ("/a/%C2%85", PathRefusal::ControlCharacter),
            ("/a/%", PathRefusal::MalformedEscape),
            ("/a/%4", PathRefusal::MalformedEscape),
            ("/a/%zz", PathRefusal::MalformedEscape),
            ("/a/%FF", PathRefusal::NotUtf8),
            ("/..", PathRefusal::AboveRoot),
            ("/a/../..", PathRefusal::AboveRoot),
            ("/%2e%2e/etc/passwd", PathRefusal::AboveRoot),
        ] {
            assert_eq!(canonical(raw), Err(refusal), "{raw:?}");
        }
        assert_eq!(
            canonical(&format!("/{}", "a".repeat(MAX_PATH))),
            Err(PathRefusal::TooLong)
        );
    }

    #[test]
    fn the_decoded_form_finds_the_file() {
        let path = canonicalize("/a%20b/./%C3%A9.txt").unwrap();
        assert_eq!(path.as_str(), "/a%20b/%C3%A9.txt");
        assert_eq!(path.decoded(), "/a b/é.txt");
    }

    #[test]
    fn the_length_bound_itself_is_allowed_and_refusals_say_why() {
        let longest = format!("/{}", "a".repeat(MAX_PATH - 1));
        assert_eq!(canonical(&longest).as_deref(), Ok(longest.as_str()));
        for (raw, reason) in [
            ("x", "start with /"),
            ("/a/%2f", "encoded /"),
            ("/a\\b", "backslash"),
            ("/a/%00", "control"),
            ("/a/%", "two hex digits"),
            ("/a/%FF", "UTF-8"),
            ("/..", "above the root"),
        ] {
            let refusal = canonicalize(raw).unwrap_err();
            assert!(refusal.to_string().contains(reason), "{raw:?}: {refusal}");
        }
        let long = format!("/{}", "a".repeat(MAX_PATH));
        assert!(
            canonicalize(&long)
                .unwrap_err()
                .to_string()
                .contains("too long")
        );
    }

    #[test]
    fn the_canonical_form_is_a_fixed_point() {
        for raw in ["/a/../b/%7e/%41", "/x y/é/", "/a/%3F"] {
            let once = canonical(raw).unwrap();
            assert_eq!(canonical(&once).unwrap(), once);
        }
    }
}
