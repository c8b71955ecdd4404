//! What a policy covers: one file, a folder, or every URL with a prefix,
//! built from a distribution's base URL and a path that is checked first, so
//! a path that came from a request can never widen the grant with a
//! wildcard, an escape or a dot segment.

use std::fmt;

use super::error::Error;

/// A policy's `Resource`: an exact URL or a pattern with `*`.
///
/// ```
/// use cfmint_signer::Resource;
///
/// let folder = Resource::folder("https://cdn.example.com", "/videos/42/")?;
/// assert_eq!(folder.as_str(), "https://cdn.example.com/videos/42/*");
///
/// let prefix = Resource::prefix("https://cdn.example.com", "/books/7/chapter1")?;
/// assert_eq!(prefix.as_str(), "https://cdn.example.com/books/7/chapter1*");
///
/// // A path from a request cannot widen the grant.
/// assert!(Resource::folder("https://cdn.example.com", "/videos/../admin/").is_err());
/// assert!(Resource::exact("https://cdn.example.com", "/videos/*").is_err());
/// # Ok::<(), cfmint_signer::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Resource(String);

impl Resource {
    /// The one file at `path` below `base_url`, e.g. `https://cdn.example.com/a/b.mp4`.
    pub fn exact(base_url: &str, path: &str) -> Result<Self, Error> {
        checked(path)?;
        if path.ends_with('/') {
            return Err(Error::policy(format!(
                "\"{}\" ends in / and names a folder; use Resource::folder",
                path.escape_debug()
            )));
        }
        Ok(Self(format!("{}{path}", base(base_url)?)))
    }

    /// Everything below the folder `path` (which ends in `/`): `<base><path>*`.
    pub fn folder(base_url: &str, path: &str) -> Result<Self, Error> {
        checked(path)?;
        if !path.ends_with('/') {
            return Err(Error::policy(format!(
                "a folder path ends in / (\"{}\")",
                path.escape_debug()
            )));
        }
        Ok(Self(format!("{}{path}*", base(base_url)?)))
    }

    /// Every URL starting with `path`: `<base><path>*`, e.g. a playlist's
    /// name without its extension, covering the playlist and its segments.
    pub fn prefix(base_url: &str, path: &str) -> Result<Self, Error> {
        checked(path)?;
        Ok(Self(format!("{}{path}*", base(base_url)?)))
    }

    /// A pattern written by the caller, used as given: `*` matches any
    /// run of characters, `?` one character. Never build one from request
    /// input; use [`Resource::folder`] or [`Resource::prefix`] for that.
    pub fn pattern(pattern: impl Into<String>) -> Self {
        Self(pattern.into())
    }

    /// The resource as it appears in the policy.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Resource> for String {
    fn from(resource: Resource) -> Self {
        resource.0
    }
}

/// [`check_path`] as the signer's error, quoting the path.
fn checked(path: &str) -> Result<(), Error> {
    check_path(path).map_err(|why| Error::policy(format!("{why} (\"{}\")", path.escape_debug())))
}

/// The distribution's base URL without a trailing `/`: absolute http(s),
/// no query, fragment or wildcard.
fn base(url: &str) -> Result<&str, Error> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let scheme = if lower.starts_with("https://") {
        "https://".len()
    } else if lower.starts_with("http://") {
        "http://".len()
    } else {
        return Err(Error::policy(format!(
            "base URL \"{}\" is not an absolute http:// or https:// URL",
            url.escape_debug()
        )));
    };
    let trimmed = url.trim_end_matches('/');
    if trimmed.len() <= scheme || !trimmed.chars().all(is_allowed) {
        return Err(Error::policy(format!(
            "base URL \"{}\" needs a host and must not carry a query, fragment, \
             wildcard or escape",
            url.escape_debug()
        )));
    }
    Ok(trimmed)
}

/// Checks a path before it becomes part of a resource: starts with `/`,
/// visible ASCII only, none of `*` `?` `\` `"` `%` `#` `'` `<` `>` `` ` ``
/// `{` `}`, no `//`, and no `.` or `..` segments. Returns what was wrong.
///
/// ```
/// assert!(cfmint_signer::check_path("/videos/42/master.m3u8").is_ok());
/// assert_eq!(
///     cfmint_signer::check_path("/videos/%2e%2e/admin/"),
///     Err("path must not contain percent-escapes"),
/// );
/// ```
pub fn check_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("path is empty");
    }
    if !path.starts_with('/') {
        return Err("path must start with /");
    }
    if let Some(c) = path.chars().find(|&c| !is_allowed(c)) {
        return Err(match c {
            '*' | '?' => "path must not contain wildcards (* or ?)",
            '%' => "path must not contain percent-escapes",
            '\\' => "path must not contain backslashes",
            '"' => "path must not contain quotes",
            c if c.is_control() => "path must not contain control characters",
            c if !c.is_ascii() => "path must be ASCII",
            _ => "path contains a character that is not allowed",
        });
    }
    if path.starts_with("//") {
        return Err("path must not contain //");
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    for (index, segment) in segments.iter().enumerate() {
        match *segment {
            "." | ".." => return Err("path must not contain . or .. segments"),
            "" if index != last => return Err("path must not contain //"),
            _ => {}
        }
    }
    Ok(())
}

fn is_allowed(c: char) -> bool {
    c.is_ascii_graphic()
        && !matches!(
            c,
            '*' | '?' | '\\' | '"' | '%' | '#' | '\'' | '<' | '>' | '`' | '{' | '}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_join_the_base_and_the_path() {
        let base = "https://cdn.example.com/";
        assert_eq!(
            Resource::exact(base, "/a/b.mp4").unwrap().as_str(),
            "https://cdn.example.com/a/b.mp4"
        );
        assert_eq!(
            Resource::folder(base, "/a/").unwrap().as_str(),
            "https://cdn.example.com/a/*"
        );
        assert_eq!(
            Resource::prefix("http://cdn.example.com/media", "/a/b")
                .unwrap()
                .as_str(),
            "http://cdn.example.com/media/a/b*"
        );
    }

    #[test]
    fn hostile_paths_and_bases_are_refused() {
        let base = "https://cdn.example.com";
        for path in [
            "", "a/", "/a/../", "/./", "//a/", "/a//b/", "/a*/", "/a?/", "/%2e/", "/a b/", "/a\\/",
            "/é/",
        ] {
            assert!(Resource::folder(base, path).is_err(), "{path:?}");
            assert!(Resource::prefix(base, path).is_err(), "{path:?}");
        }
        assert!(Resource::exact(base, "/a/").is_err());
        assert!(Resource::folder(base, "/a").is_err());
        for base in [
            "cdn.example.com",
            "ftp://cdn.example.com",
            "https://",
            "https://cdn.example.com/*",
            "https://cdn.example.com?x",
        ] {
            assert!(Resource::prefix(base, "/a").is_err(), "{base:?}");
        }
    }
}
