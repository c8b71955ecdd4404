//! Players that cannot carry cookies, with the shipped binaries: `cfmint
//! serve` answering `/mint` with a signed query string and rewriting HLS
//! playlists at `/playlists/...`, and `cfmint edge` in front of a
//! multi-rendition sample made by ffmpeg, which then plays it as a
//! cookie-less player would. The edge's counters say what it allowed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::kept_dir;
use crate::harness::{EdgeProcess, KEY_ID, RATE_LIMITS_OFF, ServeProcess, raw_get, serve_config};

const TOKEN_SECRET: &str = "0123456789abcdef0123456789abcdef-playlists";

/// A two-rendition audio book (2 s segments, 8 s), made once by ffmpeg, with
/// playlists the tests break on purpose beside it.
fn book_media() -> &'static Path {
    static MEDIA: OnceLock<PathBuf> = OnceLock::new();
    MEDIA.get_or_init(|| {
        let root = kept_dir();
        let book = root.join("books/demo");
        std::fs::create_dir_all(&book).unwrap();
        let status = Command::new("ffmpeg")
            .current_dir(&book)
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=8"])
            .args(["-f", "lavfi", "-i", "sine=frequency=660:duration=8"])
            .args(["-map", "0:a", "-map", "1:a", "-c:a", "aac"])
            .args(["-b:a:0", "48k", "-b:a:1", "96k"])
            .args(["-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod"])
            .args(["-master_pl_name", "master.m3u8"])
            .args(["-var_stream_map", "a:0 a:1"])
            .args(["-hls_segment_filename", "r%v/seg-%03d.ts", "r%v/index.m3u8"])
            .status()
            .expect("ffmpeg (Debian's ffmpeg package; scripts/test installs it)");
        assert!(status.success(), "ffmpeg could not make the sample");
        std::fs::write(book.join("not-hls.m3u8"), "<html>an error page</html>").unwrap();
        let big = format!("#EXTM3U\n{}", "# padding\n".repeat(300));
        std::fs::write(book.join("big.m3u8"), big).unwrap();
        std::fs::write(
            book.join("escape.m3u8"),
            "#EXTM3U\n#EXTINF:2,\n../../secret/seg.ts\n",
        )
        .unwrap();
        // A chapter whose segments share its name: what a prefix grant
        // (`/books/demo/chapter1`, match prefix) covers, and one that also
        // names a segment outside it.
        let mut chapter = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:2\n");
        for i in 0..2 {
            let name = format!("chapter1_converted_00{i}.ts");
            std::fs::copy(book.join(format!("r0/seg-00{i}.ts")), book.join(&name)).unwrap();
            chapter.push_str(&format!("#EXTINF:2,\n{name}\n"));
        }
        std::fs::write(
            book.join("chapter1_converted.m3u8"),
            format!("{chapter}#EXT-X-ENDLIST\n"),
        )
        .unwrap();
        std::fs::write(
            book.join("chapter1_mixed.m3u8"),
            format!("{chapter}#EXTINF:2,\nr0/seg-000.ts\n#EXT-X-ENDLIST\n"),
        )
        .unwrap();
        std::fs::create_dir_all(root.join("books/other")).unwrap();
        std::fs::copy(
            book.join("r0/index.m3u8"),
            root.join("books/other/index.m3u8"),
        )
        .unwrap();
        root
    })
}

/// The segments ffmpeg wrote, as paths on the distribution.
fn segments() -> Vec<String> {
    let mut segments = Vec::new();
    for rendition in ["r0", "r1"] {
        let dir = book_media().join("books/demo").join(rendition);
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".ts") {
                segments.push(format!("/books/demo/{rendition}/{name}"));
            }
        }
    }
    segments.sort();
    segments
}

/// The edge, and `cfmint serve` minting for it and fetching playlists
/// from it (the distribution itself as the origin: signed fetches).
struct Setup {
    dir: PathBuf,
    edge: EdgeProcess,
    serve: ServeProcess,
}

fn start_book(mint_ttl: &str) -> Setup {
    crate::harness::process_setup();
    let dir = kept_dir();
    let edge = EdgeProcess::serving(book_media());
    let base = &edge.public_url;
    let config = serve_config(
        &dir,
        base,
        &format!(
            r#"
[mint]
ttl = "{mint_ttl}"
min_ttl = "10s"
expiry_rounding = "{rounding}"
[[grants]]
paths = ["/books/demo/*"]
[playlists]
origin_url = "{base}"
token_secret = "{TOKEN_SECRET}"
max_bytes = 2048
{RATE_LIMITS_OFF}"#,
            rounding = if mint_ttl == "10s" { "1s" } else { "1m" },
        ),
    );
    let serve = ServeProcess::with_config(&config, &[]);
    Setup { dir, edge, serve }
}

fn mint(client: &reqwest::blocking::Client, serve: &ServeProcess, body: Value) -> (Value, usize) {
    let response = client.post(serve.url("/mint")).json(&body).send().unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    let cookies = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter(|c| c.to_str().unwrap().starts_with("CloudFront-"))
        .count();
    (response.json().unwrap(), cookies)
}

/// ffmpeg copying every stream of `input` to a file: true if it succeeded
/// and wrote something.
fn ffmpeg_copies(input: &str, dir: &Path, name: &str) -> bool {
    let succeeded = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-protocol_whitelist", "file,http,tcp"])
        .args(["-i", input, "-map", "0", "-c", "copy"])
        .arg(dir.join(name))
        .stdin(Stdio::null())
        .status()
        .unwrap()
        .success();
    succeeded && std::fs::metadata(dir.join(name)).is_ok_and(|file| file.len() > 0)
}

fn path_counts(stats: &Value, path: &str) -> (u64, u64) {
    let counts = &stats["paths"][path];
    (
        counts["allowed"].as_u64().unwrap_or(0),
        counts["denied"].as_u64().unwrap_or(0),
    )
}

#[test]
fn ffmpeg_plays_every_rendition_through_a_signed_playlist() {
    let setup = start_book("10m");
    let client = setup.serve.logged_in_blocking();
    let (minted, cookies) = mint(
        &client,
        &setup.serve,
        json!({"path": "/books/demo/", "deliver": "query"}),
    );
    assert_eq!(cookies, 0, "query delivery sets no CloudFront cookie");
    let token = minted["playlist_token"].as_str().unwrap();
    let master = setup
        .serve
        .url(&format!("/playlists/books/demo/master.m3u8?token={token}"));

    // The master playlist comes back with each variant through cfmint.
    let text = reqwest::blocking::get(&master).unwrap().text().unwrap();
    assert!(
        text.contains(&format!("\nr0/index.m3u8?token={token}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("\nr1/index.m3u8?token={token}")),
        "{text}"
    );

    assert!(
        ffmpeg_copies(&master, &setup.dir, "book.ts"),
        "ffmpeg failed"
    );
    let size = std::fs::metadata(setup.dir.join("book.ts")).unwrap().len();
    assert!(size > 10_000, "ffmpeg wrote only {size} bytes");
    let stats = setup.edge.stats();
    let segments = segments();
    assert!(segments.len() >= 8, "{segments:?}");
    for segment in &segments {
        let (allowed, denied) = path_counts(&stats, segment);
        assert!(
            allowed >= 1 && denied == 0,
            "{segment}: {allowed} allowed, {denied} denied"
        );
    }
    assert_eq!(stats["total"]["denied"], 0, "{stats}");

    // The query string itself opens every file under the path at the edge,
    // and nothing outside it.
    let query = minted["query"].as_str().unwrap();
    assert!(
        query.starts_with("Policy=")
            && query.contains("&Signature=")
            && query.contains(&format!("&Key-Pair-Id={KEY_ID}"))
    );
    let get = |path: &str| {
        reqwest::blocking::get(setup.edge.url(path))
            .unwrap()
            .status()
    };
    assert_eq!(get(&format!("{}?{query}", segments[0])), StatusCode::OK);
    assert_eq!(
        get(&format!("/books/demo/master.m3u8?{query}")),
        StatusCode::OK
    );
    assert_eq!(get(&segments[0]), StatusCode::FORBIDDEN);
    assert_eq!(
        get(&format!("/books/other/index.m3u8?{query}")),
        StatusCode::FORBIDDEN
    );

    // "both": the cookies and the query.
    let (both, cookies) = mint(
        &client,
        &setup.serve,
        json!({"path": "/books/demo/", "deliver": "both"}),
    );
    assert!(cookies >= 3, "{cookies} cookies");
    assert!(both["query"].is_string() && both["playlist_token"].is_string());
    let (plain, plain_cookies) = mint(&client, &setup.serve, json!({"path": "/books/demo/"}));
    assert_eq!(plain_cookies, cookies);
    assert!(plain.get("query").is_none() && plain.get("playlist_token").is_none());

    // A session gets the playlist too, with a token of its own for the
    // variants.
    let text = client
        .get(setup.serve.url("/playlists/books/demo/master.m3u8"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let variant = text.lines().find(|l| l.starts_with("r0/")).unwrap();
    let handed_on = variant.split_once("token=").unwrap().1;
    let media = reqwest::blocking::get(setup.serve.url(&format!(
        "/playlists/books/demo/r0/index.m3u8?token={handed_on}"
    )))
    .unwrap();
    assert_eq!(media.status(), StatusCode::OK);
    assert_eq!(
        media.headers()["content-type"],
        "application/vnd.apple.mpegurl"
    );
    assert_eq!(media.headers()["cache-control"], "no-store");
    let media = media.text().unwrap();
    let first = media.lines().find(|l| l.starts_with("http")).unwrap();
    assert!(
        first.starts_with(&format!(
            "{}/books/demo/r0/seg-000.ts?Policy=",
            setup.edge.public_url
        )),
        "{first}"
    );

    // One signature per folder (and one for the signed origin fetches):
    // every later playlist comes from the cache.
    let signatures = || {
        let text = reqwest::blocking::get(format!("http://{}/metrics", setup.serve.admin))
            .unwrap()
            .text()
            .unwrap();
        crate::harness::metric(&text, "cfmint_signature_cache_total{result=\"miss\"}")
    };
    let before = signatures();
    for _ in 0..5 {
        let status = reqwest::blocking::get(&master).unwrap().status();
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(signatures(), before, "cached signatures only");
}

#[test]
fn a_tampered_or_expired_signature_stops_ffmpeg_at_the_edge() {
    let setup = start_book("10s");
    let client = setup.serve.logged_in_blocking();
    let (minted, _) = mint(
        &client,
        &setup.serve,
        json!({"path": "/books/demo/", "deliver": "query"}),
    );
    let token = minted["playlist_token"].as_str().unwrap();
    let url = setup.serve.url(&format!(
        "/playlists/books/demo/r0/index.m3u8?token={token}"
    ));
    let text = reqwest::blocking::get(&url).unwrap().text().unwrap();
    let signed_at = Instant::now();

    // The playlist as served plays.
    let good = setup.dir.join("good.m3u8");
    std::fs::write(&good, &text).unwrap();
    assert!(ffmpeg_copies(good.to_str().unwrap(), &setup.dir, "good.ts"));

    // One character of the signature changed: the edge refuses.
    let at = text.find("Signature=").unwrap() + "Signature=".len();
    let signature = &text[at..at + text[at..].find('&').unwrap()];
    let mut changed = signature.to_owned();
    let flipped = if &signature[10..11] == "A" { "B" } else { "A" };
    changed.replace_range(10..11, flipped);
    let tampered = text.replace(signature, &changed);
    let bad = setup.dir.join("tampered.m3u8");
    std::fs::write(&bad, tampered).unwrap();
    let denied_before = setup.edge.stats()["total"]["denied"].as_u64().unwrap();
    assert!(!ffmpeg_copies(
        bad.to_str().unwrap(),
        &setup.dir,
        "tampered.ts"
    ));
    let stats = setup.edge.stats();
    assert!(stats["total"]["denied"].as_u64().unwrap() > denied_before);
    assert_eq!(stats["last_denial"]["reason"], "bad_signature", "{stats}");

    // The untouched playlist once its signatures have expired (10 s).
    let wait = Duration::from_secs(12).saturating_sub(signed_at.elapsed());
    std::thread::sleep(wait);
    assert!(!ffmpeg_copies(
        good.to_str().unwrap(),
        &setup.dir,
        "late.ts"
    ));
    let stats = setup.edge.stats();
    assert_eq!(stats["last_denial"]["reason"], "expired", "{stats}");
}

#[test]
fn playlists_refuse_what_is_not_granted_or_cannot_be_signed() {
    let setup = start_book("10m");
    let serve = &setup.serve;
    let client = serve.logged_in_blocking();
    let (minted, _) = mint(
        &client,
        serve,
        json!({"path": "/books/demo/r0/", "deliver": "query"}),
    );
    let token = minted["playlist_token"].as_str().unwrap();
    let anonymous = reqwest::blocking::Client::new();
    let status = |client: &reqwest::blocking::Client, path: &str| {
        let response = client.get(serve.url(path)).send().unwrap();
        let status = response.status();
        let body: Value = response.json().unwrap_or(Value::Null);
        (status, body["error"].as_str().unwrap_or("").to_owned())
    };
    let cases = [
        // Who is asking.
        (
            &anonymous,
            "/playlists/books/demo/master.m3u8".to_owned(),
            401,
            "unauthenticated",
        ),
        (
            &anonymous,
            "/playlists/books/demo/master.m3u8?token=abc.def".into(),
            401,
            "invalid_token",
        ),
        (
            &anonymous,
            format!("/playlists/books/demo/master.m3u8?token={}x", token),
            401,
            "invalid_token",
        ),
        // A token covers the path it was minted for, nothing beside it.
        (
            &anonymous,
            format!("/playlists/books/demo/r0/index.m3u8?token={token}"),
            200,
            "",
        ),
        (
            &anonymous,
            format!("/playlists/books/demo/master.m3u8?token={token}"),
            403,
            "not_granted",
        ),
        (
            &anonymous,
            format!("/playlists/books/demo/r1/index.m3u8?token={token}"),
            403,
            "not_granted",
        ),
        // Grants apply to the session as at /mint.
        (
            &client,
            "/playlists/books/other/index.m3u8".into(),
            403,
            "not_granted",
        ),
        (
            &client,
            "/playlists/books/demo/escape.m3u8".into(),
            403,
            "not_granted",
        ),
        // What the origin answers.
        (
            &client,
            "/playlists/books/demo/none.m3u8".into(),
            404,
            "not_found",
        ),
        (
            &client,
            "/playlists/books/demo/not-hls.m3u8".into(),
            502,
            "bad_playlist",
        ),
        (
            &client,
            "/playlists/books/demo/big.m3u8".into(),
            502,
            "playlist_origin_unavailable",
        ),
        // Paths.
        (
            &client,
            "/playlists/books/demo/r0/seg-000.ts".into(),
            400,
            "invalid_path",
        ),
        (
            &client,
            "/playlists/books/demo/*.m3u8".into(),
            400,
            "invalid_path",
        ),
    ];
    for (client, path, expected, code) in cases {
        let (got, error) = status(client, &path);
        assert_eq!((got.as_u16(), error.as_str()), (expected, code), "{path}");
    }
    // The query string: the token and the delivery directives, nothing else.
    for (query, expected, code) in [
        ("&x=/../../bob/x.m3u8", 400, "bad_request"),
        ("&token=again", 400, "bad_request"),
        ("&_HLS_msn=notanumber", 400, "bad_request"),
        ("&_HLS_msn=3&_HLS_skip=YES", 200, ""),
    ] {
        let path = format!("/playlists/books/demo/r0/index.m3u8?token={token}{query}");
        let (got, error) = status(&anonymous, &path);
        assert_eq!((got.as_u16(), error.as_str()), (expected, code), "{query}");
    }
    // Dot segments and escapes, sent as written.
    let addr: SocketAddr = serve.listen.parse().unwrap();
    for path in [
        "/playlists/books/demo/../other/index.m3u8",
        "/playlists/books/demo/%2e%2e/other/index.m3u8",
        "/playlists/books/demo/r0%2Findex.m3u8",
        "/playlists/books//demo/master.m3u8",
    ] {
        let (status, body) = raw_get(addr, &format!("{path}?token={token}"), &[]);
        assert_eq!(status, 400, "{path}: {body}");
    }
}

#[test]
fn a_prefix_grant_plays_its_chapter_and_signs_nothing_beside_it() {
    let setup = start_book("10m");
    let client = setup.serve.logged_in_blocking();
    let (minted, _) = mint(
        &client,
        &setup.serve,
        json!({"path": "/books/demo/chapter1", "match": "prefix", "deliver": "query"}),
    );
    let token = minted["playlist_token"].as_str().unwrap();
    let url = setup.serve.url(&format!(
        "/playlists/books/demo/chapter1_converted.m3u8?token={token}"
    ));
    let response = reqwest::blocking::get(&url).unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().unwrap();
    // One policy, for the prefix: it opens the chapter's segments and not
    // the folder's other files.
    let segments: Vec<&str> = text.lines().filter(|l| l.contains(".ts?")).collect();
    assert_eq!(segments.len(), 2, "{text}");
    let query = segments[0].split_once(".ts?").unwrap().1;
    let policy = query
        .split('&')
        .find_map(|p| p.strip_prefix("Policy="))
        .unwrap();
    let json = cfmint::signer::decode_base64(policy).unwrap();
    let resource = cfmint::signer::parse_policy(&json).unwrap().resource;
    assert!(resource.ends_with("/books/demo/chapter1*"), "{resource}");
    let get = |path: &str| {
        reqwest::blocking::get(setup.edge.url(path))
            .unwrap()
            .status()
    };
    for segment in &segments {
        let path = segment.strip_prefix(&setup.edge.public_url).unwrap();
        assert_eq!(get(path), StatusCode::OK, "{segment}");
    }
    assert_eq!(
        get(&format!("/books/demo/r0/seg-000.ts?{query}")),
        StatusCode::FORBIDDEN
    );
    assert!(
        ffmpeg_copies(&url, &setup.dir, "chapter1.ts"),
        "ffmpeg failed"
    );

    // A playlist naming a segment outside the prefix is refused, by name.
    let mixed = reqwest::blocking::get(setup.serve.url(&format!(
        "/playlists/books/demo/chapter1_mixed.m3u8?token={token}"
    )))
    .unwrap();
    assert_eq!(mixed.status(), StatusCode::FORBIDDEN);
    let body: Value = mixed.json().unwrap();
    assert_eq!(body["error"], "widens_grant", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("/books/demo/r0/"),
        "{body}"
    );
}

#[test]
fn a_token_for_one_rendition_gets_no_other_signed() {
    let setup = start_book("10m");
    let client = setup.serve.logged_in_blocking();
    let (minted, _) = mint(
        &client,
        &setup.serve,
        json!({"path": "/books/demo/r0/", "deliver": "query"}),
    );
    let token = minted["playlist_token"].as_str().unwrap();
    // r1's playlist is outside the token; so is a playlist in r0 that names
    // r1's segments (the grant proof holds every folder signed to the token).
    std::fs::write(
        book_media().join("books/demo/r0/crossing.m3u8"),
        "#EXTM3U\n#EXTINF:2,\n../r1/seg-000.ts\n#EXT-X-ENDLIST\n",
    )
    .unwrap();
    let crossing = reqwest::blocking::get(setup.serve.url(&format!(
        "/playlists/books/demo/r0/crossing.m3u8?token={token}"
    )))
    .unwrap();
    assert_eq!(crossing.status(), StatusCode::FORBIDDEN);
    let body: Value = crossing.json().unwrap();
    assert_eq!(body["error"], "widens_grant", "{body}");
}
