// What each fuzz target asserts about one input. Shared by the libFuzzer
// targets (fuzz/fuzz_targets/) and the regression test
// (tests/fuzz_regressions.rs), which replays fuzz/corpus/ and
// fuzz/regressions/. Two-part inputs are split at the first newline.

use std::sync::OnceLock;

use cfmint::edge::path::canonicalize;
use cfmint::signer::{
    Backend, KeyPairId, KeySource, Policy, PublicKey, PublicKeys, ViewerRequest, parse_policy,
    split_signing_params, verify, wildcard_matches,
};

/// The fuzz targets, by name (the regression test walks them).
#[allow(dead_code, reason = "each fuzz target binary uses one")]
pub const TARGETS: [&str; 8] = [
    "policy_json",
    "viewer",
    "signed_url",
    "request_path",
    "wildcard",
    "config",
    "key_ring",
    "playlist",
];

/// Runs `target`'s checks on `data`; a violated property panics.
pub fn check(target: &str, data: &[u8]) {
    match target {
        "policy_json" => policy_json(data),
        "viewer" => viewer(data),
        "signed_url" => signed_url(data),
        "request_path" => request_path(data),
        "wildcard" => wildcard(data),
        "config" => config(data),
        "key_ring" => key_ring(data),
        "playlist" => playlist(data),
        other => panic!("no fuzz target {other}"),
    }
}

fn two_parts(data: &[u8]) -> Option<(&str, &str)> {
    std::str::from_utf8(data).ok()?.split_once('\n')
}

/// Policy JSON from a cookie or URL: parsing never panics, and whatever
/// parses and builds again comes back the same.
fn policy_json(data: &[u8]) {
    let Ok(parsed) = parse_policy(data) else {
        return;
    };
    let mut builder = Policy::builder(parsed.resource.clone()).expires(parsed.expires);
    if let Some(active) = parsed.active {
        builder = builder.active(active);
    }
    if let Some(net) = parsed.source_ip {
        builder = builder.source_ip(net.to_string());
    }
    if let Ok(policy) = builder.build() {
        let again = parse_policy(policy.to_json().as_bytes()).expect("a built policy parses");
        assert_eq!(again, parsed, "{}", policy.to_json());
    }
}

fn key_group() -> &'static PublicKeys {
    static KEYS: OnceLock<PublicKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let pem = include_str!(
            "../crates/cfmint-signer/tests/fixtures/cloudfront-sep/test-rsa-public-key.pem"
        );
        let id = KeyPairId::new("K2JCJMDEHXQW5F").unwrap();
        let key = PublicKey::from_pem(id, pem, KeySource::Inline, Backend::default()).unwrap();
        PublicKeys::new(vec![key]).unwrap()
    })
}

/// A viewer request (URL, newline, Cookie header) against a key group:
/// a verdict, never a panic; an allowed one had a signature to check.
fn viewer(data: &[u8]) {
    let Some((url, cookie_header)) = two_parts(data) else {
        return;
    };
    let verdict = verify(
        key_group(),
        &ViewerRequest {
            url,
            cookie_header: Some(cookie_header),
            client_ip: Some([203, 0, 113, 7].into()),
            now: 1_700_000_000,
        },
    );
    if verdict.is_allowed() {
        assert!(
            url.contains("Signature=") || cookie_header.contains("CloudFront-Signature="),
            "allowed without a signature: {url} / {cookie_header}"
        );
    }
}

/// A signed URL: the signing parameters come off and the rest is kept, and
/// verifying it alone never panics.
fn signed_url(data: &[u8]) {
    let Ok(url) = std::str::from_utf8(data) else {
        return;
    };
    let split = split_signing_params(url);
    assert!(split.unsigned.len() <= url.len());
    let _ = verify(
        key_group(),
        &ViewerRequest {
            url,
            cookie_header: None,
            client_ip: None,
            now: 1_700_000_000,
        },
    );
}

/// The edge's canonical path: absolute, no empty, `.` or `..` segments,
/// nothing decoded that a proxy could read differently, and a fixed point.
/// The minting service's requested-path check never lets a wildcard,
/// escape or dot segment through.
fn request_path(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(path) = canonicalize(raw) {
        let text = path.as_str();
        assert!(text.starts_with('/'), "{raw:?} -> {text:?}");
        assert!(!text.contains("//"), "{raw:?} -> {text:?}");
        for segment in path.decoded().split('/') {
            assert!(segment != "." && segment != "..", "{raw:?} -> {text:?}");
        }
        assert!(!path.decoded().contains('\\'), "{raw:?}");
        assert!(!path.decoded().chars().any(char::is_control), "{raw:?}");
        let again = canonicalize(text).expect("a canonical path is accepted");
        assert_eq!(again, path, "{raw:?}");
    }
    if let Ok(requested) = cfmint::auth::path::RequestedPath::parse(raw, 1024) {
        let text = requested.as_str();
        assert!(text.starts_with('/'));
        assert!(!text.contains(['*', '?', '\\', '%', '"']), "{raw:?}");
        for segment in text.split('/').skip(1) {
            assert!(segment != "." && segment != "..", "{raw:?}");
        }
    }
}

/// The reference: plain recursion over characters with memoisation.
fn reference_match(pattern: &[char], text: &[char]) -> bool {
    let mut memo = vec![vec![None; text.len() + 1]; pattern.len() + 1];
    fn go(
        p: usize,
        t: usize,
        pattern: &[char],
        text: &[char],
        memo: &mut [Vec<Option<bool>>],
    ) -> bool {
        if let Some(known) = memo[p][t] {
            return known;
        }
        let result = match pattern.get(p) {
            None => t == text.len(),
            Some('*') => {
                go(p + 1, t, pattern, text, memo)
                    || (t < text.len() && go(p, t + 1, pattern, text, memo))
            }
            Some('?') => t < text.len() && go(p + 1, t + 1, pattern, text, memo),
            Some(c) => text.get(t) == Some(c) && go(p + 1, t + 1, pattern, text, memo),
        };
        memo[p][t] = Some(result);
        result
    }
    go(0, 0, pattern, text, &mut memo)
}

/// Wildcard matching (pattern, newline, text) agrees with the reference.
fn wildcard(data: &[u8]) {
    let Some((pattern, text)) = two_parts(data) else {
        return;
    };
    if pattern.len() > 256 || text.len() > 256 {
        return;
    }
    let pattern_chars: Vec<char> = pattern.chars().collect();
    let text_chars: Vec<char> = text.chars().collect();
    assert_eq!(
        wildcard_matches(pattern, text),
        reference_match(&pattern_chars, &text_chars),
        "{pattern:?} against {text:?}"
    );
}

/// Any TOML text: settings or a list of problems, never a panic; every
/// problem names a key.
fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(error) = cfmint::Settings::load(text, std::iter::empty()) {
        let message = error.to_string();
        assert!(!message.is_empty());
    }
    let _ = cfmint::edge::EdgeSettings::load(text);
}

/// A key ring document from a secret or file: parsing never panics; what
/// parses is written out and parses back the same; an error never repeats
/// a `private_key` value.
fn key_ring(data: &[u8]) {
    use cfmint::keyring::document::RingDocument;
    match RingDocument::parse(data) {
        Ok(ring) => {
            let text = ring.to_json();
            let again = RingDocument::parse(text.as_bytes()).expect("a written ring parses");
            assert_eq!(*again.to_json(), *text);
            let _ = ring.entries();
        }
        Err(error) => {
            assert!(!error.contains("PRIVATE KEY"), "{error}");
        }
    }
}

/// An HLS playlist from an origin (first line: its path, then the text):
/// parsing never panics, every target is a path on the distribution in a
/// folder one policy covers, playlists end in `.m3u8`, and rendering with
/// nothing in place of the URIs keeps every other byte.
fn playlist(data: &[u8]) {
    use cfmint::playlist::{Kind, Location, Playlist};
    let Some((path, text)) = two_parts(data) else {
        return;
    };
    if !path.starts_with('/') {
        return;
    }
    let location = Location {
        base_url: "https://cdn.example.com/media",
        path,
    };
    let Ok(playlist) = Playlist::parse(text, &location) else {
        return;
    };
    let mut removed = 0;
    let rendered = playlist.render(|target, _| {
        assert!(target.path.starts_with('/'), "{target:?}");
        assert!(target.folder().ends_with('/'), "{target:?}");
        assert!(target.path.starts_with(target.folder()), "{target:?}");
        if target.kind == Kind::Playlist {
            assert!(target.path.ends_with(".m3u8"), "{target:?}");
        }
        removed += 1;
    });
    assert!(rendered.len() <= text.len());
    assert_eq!(removed == 0, rendered == text);
    let marked = playlist.render(|_, out| out.push('\u{1}'));
    assert_eq!(
        marked.matches('\u{1}').count() - text.matches('\u{1}').count(),
        removed
    );
}
