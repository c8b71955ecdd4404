//! Rewriting a 2,000-segment HLS media playlist as `GET /playlists/...`
//! does: parse, one signature per folder from the minter's cache, render.
//! `scripts/bench-playlists` runs this and the live-audience HTTP run.

use std::fmt::Write;
use std::hint::black_box;

use cfmint::auth::path::{Match, RequestedPath};
use cfmint::auth::proof::Scope;
use cfmint::minter::{MintRequest, Minter};
use cfmint::playlist::{Kind, Location, Playlist, relative_reference};
use cfmint::signer::{Backend, KeyPairId, KeyRing, KeySource, KeySpec, PrivateKey};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const BASE_URL: &str = "https://d111111abcdef8.cloudfront.net";
const PATH: &str = "/audiobooks/42/128k/index.m3u8";
const SEGMENTS: usize = 2_000;

fn media_playlist() -> String {
    let mut text = String::from(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:6\n#EXT-X-PLAYLIST-TYPE:VOD\n\
         #EXT-X-MAP:URI=\"init.mp4\"\n#EXT-X-KEY:METHOD=AES-128,URI=\"../keys/k1.bin\"\n",
    );
    for n in 0..SEGMENTS {
        writeln!(
            text,
            "#EXTINF:6.006,\n#EXT-X-BYTERANGE:480000@{}\nseg-{n:05}.m4s",
            n * 480_000
        )
        .unwrap();
    }
    text.push_str("#EXT-X-ENDLIST\n");
    text
}

fn minter() -> Minter {
    let pem = Backend::default()
        .generate(KeySpec::Rsa { bits: 2048 })
        .unwrap()
        .private_pem
        .to_string();
    let id = KeyPairId::new("KBENCH").unwrap();
    let key =
        PrivateKey::from_pem(id.clone(), &pem, KeySource::Inline, Backend::default()).unwrap();
    let toml = format!(
        "[cloudfront]\nbase_url = \"{BASE_URL}\"\n[auth.users]\ndemo = true\n\
         [mint]\nttl = \"10m\"\nexpiry_rounding = \"1m\"\n"
    );
    let settings = cfmint::Settings::load(&toml, std::iter::empty()).unwrap();
    Minter::new(
        KeyRing::new(vec![key], &id).unwrap(),
        settings.cloudfront,
        settings.mint,
    )
    .unwrap()
}

fn rewrite(c: &mut Criterion) {
    let text = media_playlist();
    let minter = minter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let location = Location {
        base_url: BASE_URL,
        path: PATH,
    };
    let scope = Scope::any_of(vec!["/*".into()]);
    let rewrite = || {
        let playlist = Playlist::parse(&text, &location).unwrap();
        let mut queries = std::collections::BTreeMap::new();
        for folder in playlist.resource_folders() {
            let path = RequestedPath::with_match(folder, 1024, Some(Match::Folder)).unwrap();
            let minted = runtime
                .block_on(minter.mint(MintRequest::new(&path, &scope)))
                .unwrap();
            let query: Vec<String> = minted
                .signed
                .query_params()
                .into_iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            queries.insert(folder.to_owned(), query.join("&"));
        }
        playlist.render(|target, out| match target.kind {
            Kind::Resource => {
                out.push_str(BASE_URL);
                out.push_str(&target.path);
                out.push('?');
                out.push_str(&queries[target.folder()]);
            }
            Kind::Playlist => out.push_str(&relative_reference(PATH, &target.path)),
        })
    };
    // The first call signs (two folders); every later one reads the cache.
    let size = rewrite().len();
    let mut group = c.benchmark_group("playlist");
    group.throughput(Throughput::Elements(SEGMENTS as u64));
    group.bench_function(
        format!("rewrite_{SEGMENTS}_segments_{}kB_out", size / 1000),
        |b| b.iter(|| black_box(rewrite())),
    );
    group.finish();
}

criterion_group!(benches, rewrite);
criterion_main!(benches);
