//! Signed HLS playlists for players that cannot carry cookies or touch their
//! requests: every URI in a playlist becomes a URL the player can fetch as
//! is. Media segments, `EXT-X-MAP`, `EXT-X-KEY` and the other resources get
//! the distribution's absolute URL with a signed query string (one wildcard
//! policy per folder); other playlists (variants, renditions, I-frame
//! playlists) point back through cfmint, carrying its own token.
//!
//! A careful line-based rewriter rather than a parse-and-print HLS library:
//! the output is the input byte for byte (line ends, comments, unknown tags,
//! attribute order and number formats) except for the URIs it replaces.
//! The rewriting itself has no HTTP in it; [`origin`] fetches playlists.

pub mod origin;
pub mod token;

use std::collections::BTreeSet;
use std::fmt;

use url::Url;

/// What `GET /playlists/...` works with: the origin it fetches from and the
/// key of its tokens.
pub struct Playlists {
    pub origin: origin::Origin,
    pub tokens: token::Tokens,
    token_ttl: std::time::Duration,
}

impl Playlists {
    pub fn new(settings: &crate::config::PlaylistSettings) -> Result<Self, String> {
        use secrecy::ExposeSecret;
        Ok(Self {
            origin: origin::Origin::new(settings)?,
            tokens: token::Tokens::new(settings.token_secret.expose_secret().as_bytes()),
            token_ttl: settings.token_ttl,
        })
    }

    /// A token for `identity` covering `path` in its shape, once the grant
    /// proof shows that lies within `scope` (what the caller was granted,
    /// on the distribution at `base_url`). It lasts `playlists.token_ttl`,
    /// never beyond `not_after` (when the credential that asked ends) or a
    /// bearer token's own expiry.
    pub fn issue_token(
        &self,
        base_url: &str,
        identity: &crate::auth::Identity,
        path: &crate::auth::path::RequestedPath,
        scope: &crate::auth::proof::Scope,
        not_after: Option<u64>,
    ) -> Result<String, crate::auth::proof::Widening> {
        let (resource, wildcards) = path.resource_pattern();
        scope.prove(base_url, &format!("{base_url}{resource}"), wildcards)?;
        let exp = [
            Some(crate::minter::now() + self.token_ttl.as_secs()),
            not_after,
            identity.expires,
        ]
        .into_iter()
        .flatten()
        .min()
        .expect("the token's own lifetime is always there");
        Ok(self.tokens.issue(&token::Claims {
            id: identity.to_session(),
            path: path.as_str().to_owned(),
            shape: path.shape(),
            exp,
        }))
    }
}

/// What a URI names, which decides how it is rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Another playlist: rewritten to go through cfmint again.
    Playlist,
    /// A segment, initialization section, key or data file: signed on the
    /// distribution.
    Resource,
}

/// One URI of the playlist that names something on the distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: Kind,
    /// The path under the distribution's base URL, starting with `/`, as
    /// the player will request it (percent-encoding kept).
    pub path: String,
    /// The URI's own query string, kept.
    pub query: Option<String>,
}

impl Target {
    /// The folder the path is in, ending with `/`: what one policy covers.
    pub fn folder(&self) -> &str {
        let end = self.path.rfind('/').map_or(0, |at| at + 1);
        &self.path[..end]
    }
}

/// Why a playlist cannot be rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaylistError {
    /// 1-based line number, 0 for the playlist as a whole.
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for PlaylistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.reason)
        } else {
            write!(f, "line {}: {}", self.line, self.reason)
        }
    }
}

/// Tags whose `URI` attribute names another playlist.
const PLAYLIST_TAGS: [&str; 3] = [
    "EXT-X-MEDIA",
    "EXT-X-I-FRAME-STREAM-INF",
    "EXT-X-RENDITION-REPORT",
];
/// Tags whose `URI` attribute names a file on the distribution.
const RESOURCE_TAGS: [&str; 6] = [
    "EXT-X-KEY",
    "EXT-X-SESSION-KEY",
    "EXT-X-MAP",
    "EXT-X-PART",
    "EXT-X-PRELOAD-HINT",
    "EXT-X-SESSION-DATA",
];

/// The most URIs one playlist may have: each grows by a signed query string
/// (about 600 bytes), so this bounds an answer near 30 MB. A 20-hour book in
/// 2-second segments has 36,000.
pub const MAX_URIS: usize = 50_000;

/// A parsed playlist: its text and where each URI to rewrite sits in it.
#[derive(Debug)]
pub struct Playlist<'a> {
    text: &'a str,
    /// Byte ranges of URIs in `text`, in order, with what they name.
    uris: Vec<(usize, usize, Target)>,
}

/// Where the playlist sits: the distribution's base URL and the playlist's
/// path under it, against which relative URIs resolve.
pub struct Location<'a> {
    pub base_url: &'a str,
    pub path: &'a str,
}

impl<'a> Playlist<'a> {
    /// Finds every URI in `text` (an HLS playlist, `#EXTM3U` first). URIs on
    /// other hosts and with other schemes (`data:`, `skd:`) are left alone;
    /// a URI on the distribution that cannot be signed is an error.
    pub fn parse(text: &'a str, at: &Location<'_>) -> Result<Self, PlaylistError> {
        let whole = |reason: &str| PlaylistError {
            line: 0,
            reason: reason.to_owned(),
        };
        let body = text.strip_prefix('\u{feff}').unwrap_or(text);
        if !body.starts_with("#EXTM3U") {
            return Err(whole("not an HLS playlist: it does not start with #EXTM3U"));
        }
        let base = Url::parse(at.base_url)
            .map_err(|_| whole("the distribution's base URL does not parse"))?;
        let playlist = Url::parse(&format!("{}{}", at.base_url, at.path))
            .map_err(|_| whole("the playlist's URL does not parse"))?;
        let resolver = Resolver { base, playlist };
        let mut uris = Vec::new();
        let mut offset = 0;
        let mut variant_next = false;
        for (index, raw_line) in text.split_inclusive('\n').enumerate() {
            let mut start = offset;
            offset += raw_line.len();
            let mut line = raw_line.trim_end_matches(['\n', '\r']);
            if let Some(rest) = line.strip_prefix('\u{feff}').filter(|_| index == 0) {
                start += line.len() - rest.len();
                line = rest;
            }
            let number = index + 1;
            let fail = |reason: String| PlaylistError {
                line: number,
                reason,
            };
            if let Some(tag) = line.strip_prefix("#EXT") {
                let (name, attributes) = match tag.split_once(':') {
                    Some((name, attributes)) => (name, Some(attributes)),
                    None => (tag, None),
                };
                let name = &line[1..1 + 3 + name.len()];
                if name == "EXT-X-STREAM-INF" {
                    variant_next = true;
                }
                let kind = if PLAYLIST_TAGS.contains(&name) {
                    Kind::Playlist
                } else if RESOURCE_TAGS.contains(&name) {
                    Kind::Resource
                } else {
                    continue;
                };
                let Some(attributes) = attributes else {
                    continue;
                };
                let attributes_at = start + line.len() - attributes.len();
                let Some((from, to)) = uri_attribute(attributes).map_err(fail)? else {
                    continue;
                };
                let uri = &attributes[from..to];
                if let Some(target) = resolver.target(uri, kind).map_err(fail)? {
                    uris.push((attributes_at + from, attributes_at + to, target));
                }
            } else if line.starts_with('#') || line.trim().is_empty() {
                // A comment or a blank line.
            } else {
                let kind = if std::mem::take(&mut variant_next) {
                    Kind::Playlist
                } else {
                    Kind::Resource
                };
                let trimmed = line.trim();
                let from = start + (line.len() - line.trim_start().len());
                if let Some(target) = resolver.target(trimmed, kind).map_err(fail)? {
                    uris.push((from, from + trimmed.len(), target));
                }
            }
        }
        if uris.len() > MAX_URIS {
            return Err(whole(&format!(
                "the playlist has {} URIs; at most {MAX_URIS} are rewritten",
                uris.len()
            )));
        }
        Ok(Self { text, uris })
    }

    /// Every URI to rewrite, in order.
    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        self.uris.iter().map(|(_, _, target)| target)
    }

    /// The folders of every resource, each once: one policy each.
    pub fn resource_folders(&self) -> BTreeSet<&str> {
        self.targets()
            .filter(|target| target.kind == Kind::Resource)
            .map(Target::folder)
            .collect()
    }

    /// The playlist with each URI replaced by what `rewrite` makes of it;
    /// everything between URIs is copied unchanged.
    pub fn render(&self, mut rewrite: impl FnMut(&Target, &mut String)) -> String {
        let extra = self.uris.len() * 512;
        let mut out = String::with_capacity(self.text.len() + extra);
        let mut copied = 0;
        for (from, to, target) in &self.uris {
            out.push_str(&self.text[copied..*from]);
            rewrite(target, &mut out);
            copied = *to;
        }
        out.push_str(&self.text[copied..]);
        out
    }
}

/// The byte range of the `URI` attribute's quoted value in an attribute
/// list (`NAME=VALUE,...`, values quoted or not), if there is one.
fn uri_attribute(attributes: &str) -> Result<Option<(usize, usize)>, String> {
    let bytes = attributes.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        let name_end = attributes[at..]
            .find('=')
            .map(|i| at + i)
            .ok_or("an attribute has no =")?;
        let name = &attributes[at..name_end];
        let value_at = name_end + 1;
        let (value, next) = if bytes.get(value_at) == Some(&b'"') {
            let close = attributes[value_at + 1..]
                .find('"')
                .map(|i| value_at + 1 + i)
                .ok_or("a quoted attribute value is not closed")?;
            ((value_at + 1, close), close + 1)
        } else {
            let end = attributes[value_at..]
                .find(',')
                .map_or(bytes.len(), |i| value_at + i);
            ((value_at, end), end)
        };
        if name == "URI" {
            if bytes.get(value_at) != Some(&b'"') {
                return Err("the URI attribute must be a quoted string".into());
            }
            return Ok(Some(value));
        }
        match bytes.get(next) {
            None => break,
            Some(b',') => at = next + 1,
            Some(_) => return Err("attributes must be separated by commas".into()),
        }
    }
    Ok(None)
}

/// Resolves URIs against the playlist's URL, the way a player would.
struct Resolver {
    base: Url,
    playlist: Url,
}

impl Resolver {
    /// What `uri` names on the distribution; `None` when it is elsewhere.
    fn target(&self, uri: &str, kind: Kind) -> Result<Option<Target>, String> {
        let shown = || {
            uri.chars()
                .take(80)
                .collect::<String>()
                .escape_debug()
                .to_string()
        };
        if uri.is_empty() {
            return Err("a URI is empty".into());
        }
        if uri.chars().any(char::is_control) {
            return Err("a URI contains control characters".into());
        }
        let Ok(mut resolved) = self.playlist.join(uri) else {
            return Err(format!("\"{}\" is not a URI", shown()));
        };
        resolved.set_fragment(None);
        let same_origin = resolved.scheme() == self.base.scheme()
            && resolved.host_str() == self.base.host_str()
            && resolved.port_or_known_default() == self.base.port_or_known_default();
        let prefix = self.base.path().trim_end_matches('/');
        let Some(path) = resolved
            .path()
            .strip_prefix(prefix)
            .filter(|path| path.starts_with('/'))
            .filter(|_| same_origin)
        else {
            return Ok(None);
        };
        let query = resolved.query().map(str::to_owned);
        if let Some(query) = &query {
            let url = format!("?{query}");
            let signed = crate::signer::split_signing_params(&url);
            if let Some((name, _)) = signed.params.first() {
                return Err(format!(
                    "\"{}\" already carries the signing parameter {name}",
                    shown()
                ));
            }
        }
        if kind == Kind::Playlist && !path.ends_with(".m3u8") {
            return Err(format!(
                "\"{}\" names a playlist that does not end in .m3u8",
                shown()
            ));
        }
        Ok(Some(Target {
            kind,
            path: path.to_owned(),
            query,
        }))
    }
}

/// A reference to `to` that resolves to it from a document at `from` (both
/// absolute paths): `../720p/index.m3u8`, so that it works wherever cfmint's
/// routes are mounted.
pub fn relative_reference(from: &str, to: &str) -> String {
    let from_dirs: Vec<&str> = from.split('/').collect();
    let from_dirs = &from_dirs[..from_dirs.len() - 1];
    let to_parts: Vec<&str> = to.split('/').collect();
    let (to_dirs, file) = to_parts.split_at(to_parts.len() - 1);
    let common = from_dirs
        .iter()
        .zip(to_dirs)
        .take_while(|(a, b)| a == b)
        .count();
    let mut reference = "../".repeat(from_dirs.len() - common);
    for dir in &to_dirs[common..] {
        reference.push_str(dir);
        reference.push('/');
    }
    let file = file[0];
    // A first segment with a colon would read as a scheme.
    if reference.is_empty() && (file.is_empty() || file.contains(':')) {
        reference.push_str("./");
    }
    reference.push_str(file);
    reference
}

#[cfg(test)]
mod tests;
