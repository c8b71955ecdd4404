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
pub const TARGETS: [&str; 10] = [
    "policy_json",
    "viewer",
    "signed_url",
    "request_path",
    "wildcard",
    "config",
    "key_ring",
    "playlist",
    "grant_proof",
    "distribution",
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
        "grant_proof" => grant_proof(data),
        "distribution" => distribution(data),
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

/// The distribution the grant proof's minter signs for.
const PROOF_BASE: &str = "https://cdn.example.com/media";

/// The minter `cfmint serve` builds for [`PROOF_BASE`], with a throwaway
/// key; inputs only prepare policies, so nothing is signed per input.
fn proof_minter() -> &'static cfmint::minter::Minter {
    static MINTER: OnceLock<cfmint::minter::Minter> = OnceLock::new();
    MINTER.get_or_init(|| {
        let toml = format!(
            "[cloudfront]\nbase_url = \"{PROOF_BASE}\"\n[mint]\nsigning = \"inline\"\n[auth.jwt]\nalgorithms = [\"HS256\"]\nhmac_secret = \"{}\"\n",
            "k".repeat(32)
        );
        let settings = cfmint::Settings::load(&toml, std::iter::empty()).unwrap();
        let ring = cfmint::keyring::key_ring(&settings).unwrap();
        cfmint::minter::Minter::new(ring, settings.cloudfront, settings.mint).unwrap()
    })
}

/// The grant proof, end to end: grant patterns (space-separated) and a
/// request, a newline apart, after one byte choosing the request's kind
/// (bits 0-1: a `/sign-urls` item, or a `/mint` path exact, folder or
/// prefix), whether the policy is bound to an address (bit 2: so always
/// custom, wildcards read) and whether an authorization answer narrows the
/// scope (bit 3). Whatever the service would sign, every URL its resource
/// matches under CloudFront's rules (the signer's own matcher, on
/// candidates made by filling each wildcard with hostile text) has a path
/// that a grant pattern (or the answer) matches.
pub fn grant_proof(data: &[u8]) {
    use cfmint::auth::grants::{Grant, Grants, check_pattern};
    use cfmint::auth::path::{Match, RequestedPath, url_item};
    use cfmint::auth::{Identity, Method};
    use cfmint::minter::{MintError, MintRequest};

    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Some((patterns, raw)) = two_parts(rest) else {
        return;
    };
    let patterns: Vec<String> = patterns
        .split(' ')
        .filter(|pattern| check_pattern(pattern, false).is_ok())
        .map(str::to_owned)
        .collect();
    let (path, query) = match mode & 3 {
        0 => match url_item(raw, 1024) {
            Ok((path, query)) => (path, query),
            Err(_) => return,
        },
        shape => {
            let shape = [Match::Exact, Match::Folder, Match::Prefix][usize::from(shape - 1)];
            match RequestedPath::with_match(raw, 1024, Some(shape)) {
                Ok(path) => (path, None),
                Err(_) => return,
            }
        }
    };
    let grants = Grants {
        grants: vec![Grant {
            when: None,
            patterns: patterns.clone(),
        }],
        paths_claim: None,
    };
    let identity = Identity::new("alice".into(), Method::Users);
    if !grants.allows(&identity, &path) {
        return;
    }
    let mut scope = grants.scope_for(&identity);
    let answered = (mode & 8 != 0).then(|| path.as_pattern());
    if let Some(answer) = &answered {
        scope = scope.and(vec![answer.clone()]);
    }
    let request = MintRequest {
        query,
        ip: (mode & 4 != 0).then(|| std::net::Ipv4Addr::new(192, 0, 2, 7)),
        ..MintRequest::new(&path, &scope)
    };
    let granted = |url: &str| {
        let Some(rest) = url.strip_prefix(PROOF_BASE) else {
            return false;
        };
        let path = rest.split('?').next().unwrap_or_default();
        patterns
            .iter()
            .any(|pattern| wildcard_matches(pattern, path))
            && answered
                .as_ref()
                .is_none_or(|answer| wildcard_matches(answer, path))
    };
    let prepared = match proof_minter().prepare(request) {
        Ok(prepared) => prepared,
        Err(MintError::Widens(widening)) => {
            // What the grant allows is refused only for a query string read
            // with wildcards: a path alone, or a query signed canned, is
            // plainly inside and must be signed.
            assert!(
                query.is_some() && mode & 4 != 0,
                "refused {raw:?} though {patterns:?} grant it: {widening}"
            );
            // A refusal names a URL the resource would open, outside (or
            // says the proof ran past its bound, which refuses all the same).
            let Some(url) = widening.outside else {
                return;
            };
            let mut resource = format!("{PROOF_BASE}{}", path.as_str());
            if let Some(query) = query {
                resource = format!("{resource}?{query}");
            }
            if path.signs_below() {
                resource.push('*');
            }
            assert!(
                wildcard_matches(&resource, &url),
                "{resource} does not open {url}"
            );
            assert!(!granted(&url), "{url} is granted");
            return;
        }
        Err(error) => panic!("{error}"),
    };
    let candidates = if prepared.wildcards {
        wildcard_candidates(&prepared.resource)
    } else {
        vec![prepared.resource.clone()]
    };
    for candidate in candidates {
        let opens = if prepared.wildcards {
            wildcard_matches(&prepared.resource, &candidate)
        } else {
            candidate == prepared.resource
        };
        if opens {
            assert!(
                granted(&candidate),
                "{} opens {candidate}, outside {patterns:?} (answer {answered:?})",
                prepared.resource
            );
        }
    }
}

/// URLs a wildcard resource matches, made by filling its `?` and `*` with
/// text an attacker would try: each wildcard on its own through every
/// filling, then all of them alike.
fn wildcard_candidates(resource: &str) -> Vec<String> {
    const ONE: [&str; 8] = ["a", ".", "/", "?", "b", "\u{e9}", "%", "="];
    const RUN: [&str; 10] = [
        "", "a", "/", "?", "?a", "/../b", ".b", "\u{e9}", "b?a=b", "a/b?c",
    ];
    let wildcards: Vec<char> = resource
        .chars()
        .filter(|c| matches!(c, '*' | '?'))
        .collect();
    let fill = |choice: &dyn Fn(usize, char) -> usize| {
        let mut index = 0;
        resource
            .chars()
            .map(|c| match c {
                '?' | '*' => {
                    let pick = choice(index, c);
                    index += 1;
                    if c == '?' {
                        ONE[pick % ONE.len()]
                    } else {
                        RUN[pick % RUN.len()]
                    }
                    .to_owned()
                }
                c => c.to_string(),
            })
            .collect::<String>()
    };
    let mut candidates = Vec::new();
    for pick in 0..RUN.len() {
        candidates.push(fill(&|_, _| pick));
        for at in 0..wildcards.len() {
            candidates.push(fill(&|index, _| if index == at { pick } else { 0 }));
        }
    }
    candidates
}

/// The origin-lock secret of [`distribution`]'s configuration.
const ORIGIN_SECRET: &str = "fuzzed-origin-lock-secret-never-printed";

/// Documents saved from the CloudFront API (one per paragraph), read and
/// checked against a configuration with grants, CORS, IP binding and an
/// origin lock: nothing panics (the check reads only what the documents
/// hold), every finding says what, why and how to fix it, and none shows
/// the origin-lock secret.
fn distribution(data: &[u8]) {
    use cfmint::distribution::check::{Deployment, check};
    use cfmint::distribution::saved;

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let files: Vec<(String, Vec<u8>)> = text
        .split("\n\n")
        .enumerate()
        .map(|(i, part)| (format!("document {i}"), part.as_bytes().to_vec()))
        .collect();
    let Ok(snapshot) = saved::snapshot(&files) else {
        return;
    };
    static SETTINGS: OnceLock<cfmint::Settings> = OnceLock::new();
    let settings = SETTINGS.get_or_init(|| {
        let toml = r#"
            [server]
            trusted_proxies = ["130.176.0.0/16"]
            origin_header = "x-origin-verify"
            [cloudfront]
            base_url = "https://cdn.example.com"
            cookie_domain = "example.com"
            [mint]
            ip_binding = true
            default_path = "/books/"
            [cors]
            allowed_origins = ["https://app.example.com"]
            [auth.jwt]
            algorithms = ["HS256"]
            hmac_secret = "a fuzzing secret that is long enough for HS256"
            [[grants]]
            paths = ["/audiobooks/{sub}/*", "/exams/?/key.pdf"]
        "#;
        let env = [(
            "CFMINT__SERVER__ORIGIN_SECRET".to_owned(),
            ORIGIN_SECRET.to_owned(),
        )];
        cfmint::Settings::load(toml, env).expect("the fuzz configuration loads")
    });
    let deployment = Deployment {
        settings,
        keys: vec![("KFUZZKEY".to_owned(), key_group_pem())],
        active: "KFUZZKEY".to_owned(),
        cfmint_host: None,
    };
    if let Ok(report) = check(&snapshot, &deployment) {
        for finding in &report.findings {
            assert!(!finding.problem.is_empty() && !finding.fix.is_empty());
            let all = format!("{finding:?}");
            assert!(!all.contains(ORIGIN_SECRET), "{all}");
        }
    }
}

/// A public key as SPKI PEM, for [`distribution`]'s key ring.
fn key_group_pem() -> String {
    include_str!("../crates/cfmint-signer/tests/fixtures/cloudfront-sep/test-rsa-public-key.pem")
        .to_owned()
}
