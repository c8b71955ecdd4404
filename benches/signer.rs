//! Signer benchmarks: policy building, CloudFront base64, and signing and
//! verifying per backend, key type and hash. Throughput is reported in
//! elements per second, one element being one signature (or verification).
//! `scripts/bench-signer` runs these beside `openssl speed` and compares.

use std::hint::black_box;
use std::time::Duration;

use cfmint::signer::{
    Backend, HashAlgorithm, KeyPairId, KeySource, KeySpec, Policy, PolicyForm, PrivateKey,
    PublicKeys, ViewerRequest, encode_base64, verify,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const RESOURCE: &str = "https://d111111abcdef8.cloudfront.net/audiobooks/42/*";
const EXPIRES: u64 = 1_900_000_000;

fn policy() -> Policy {
    Policy::builder(RESOURCE)
        .expires(EXPIRES)
        .source_ip("192.0.2.0/24")
        .build()
        .unwrap()
}

/// Keys are generated once with the default backend and loaded by each backend.
fn keys() -> Vec<(&'static str, String)> {
    let generate = |spec| {
        Backend::default()
            .generate(spec)
            .unwrap()
            .private_pem
            .to_string()
    };
    vec![
        ("rsa2048", generate(KeySpec::Rsa { bits: 2048 })),
        ("p256", generate(KeySpec::EcdsaP256)),
    ]
}

fn load(pem: &str, backend: Backend) -> PrivateKey {
    PrivateKey::from_pem(
        KeyPairId::new("KBENCH").unwrap(),
        pem,
        KeySource::Inline,
        backend,
    )
    .unwrap()
}

fn policy_and_encoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("policy");
    group.throughput(Throughput::Elements(1));
    group.bench_function("build_custom_json", |b| {
        b.iter(|| {
            Policy::builder(black_box(RESOURCE))
                .expires(black_box(EXPIRES))
                .source_ip("192.0.2.0/24")
                .build()
                .unwrap()
                .to_json()
        })
    });
    let json = policy().to_json();
    group.bench_function("encode_policy", |b| {
        b.iter(|| encode_base64(black_box(json.as_bytes())))
    });
    let signature = [0xa5u8; 256];
    group.bench_function("encode_rsa2048_signature", |b| {
        b.iter(|| encode_base64(black_box(&signature)))
    });
    group.finish();
}

fn signing(c: &mut Criterion) {
    let policy = policy();
    let mut group = c.benchmark_group("sign");
    group.throughput(Throughput::Elements(1));
    for (name, pem) in keys() {
        for &backend in Backend::ALL {
            let key = load(&pem, backend);
            for (hash_name, hash) in [
                ("sha1", HashAlgorithm::Sha1),
                ("sha256", HashAlgorithm::Sha256),
            ] {
                group.bench_function(format!("{backend}/{name}/{hash_name}"), |b| {
                    b.iter(|| {
                        key.sign(black_box(&policy), PolicyForm::Auto, hash)
                            .unwrap()
                    })
                });
            }
        }
    }
    group.finish();
}

fn verifying(c: &mut Criterion) {
    let policy = policy();
    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(1));
    for (name, pem) in keys() {
        for &backend in Backend::ALL {
            let key = load(&pem, backend);
            let keys = PublicKeys::new(vec![key.public_key().unwrap()]).unwrap();
            let signed = key
                .sign(&policy, PolicyForm::Auto, HashAlgorithm::Sha1)
                .unwrap();
            let header = signed.cookie_header();
            let request = ViewerRequest {
                url: "https://d111111abcdef8.cloudfront.net/audiobooks/42/ch1/seg-001.aac",
                cookie_header: Some(&header),
                client_ip: Some("192.0.2.7".parse().unwrap()),
                now: EXPIRES - 60,
            };
            assert!(verify(&keys, &request).is_allowed());
            group.bench_function(format!("{backend}/{name}/sha1"), |b| {
                b.iter(|| verify(black_box(&keys), black_box(&request)))
            });
        }
    }
    group.finish();
}

/// A mint whose policy was signed before: the cache hit path (policy JSON,
/// lookup, no private-key operation), beside a mint with the cache off.
fn minting(c: &mut Criterion) {
    let toml = |cache: u64| {
        format!(
            "[cloudfront]\nbase_url = \"https://cdn.example.com\"\n\
             [mint]\nexpiry_rounding = \"5m\"\nsignature_cache = {cache}\nsigning = \"inline\"\n\
             [auth.users]\ndemo = true\n"
        )
    };
    let path = cfmint::auth::path::RequestedPath::parse("/audiobooks/42/", 1024).unwrap();
    let scope = cfmint::auth::proof::Scope::any_of(vec![
        "/users/{sub}/*".replace("{sub}", "alice"),
        "/audiobooks/42/*".into(),
    ]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("mint");
    group.throughput(Throughput::Elements(1));
    for (name, pem) in keys() {
        for (label, cache) in [("cache_hit", 10_000), ("cache_off", 0)] {
            let settings = cfmint::Settings::load(&toml(cache), std::iter::empty()).unwrap();
            let ring = cfmint::signer::KeyRing::new(
                vec![load(&pem, Backend::default())],
                &KeyPairId::new("KBENCH").unwrap(),
            )
            .unwrap();
            let minter =
                cfmint::minter::Minter::new(ring, settings.cloudfront, settings.mint).unwrap();
            group.bench_function(format!("{label}/{name}"), |b| {
                b.iter(|| {
                    let minted = runtime.block_on(
                        minter.mint(cfmint::minter::MintRequest::new(black_box(&path), &scope)),
                    );
                    black_box(minted.unwrap())
                })
            });
        }
    }
    group.finish();
}

/// The grant proof every mint passes: a folder under a folder grant among
/// a token's fifty, one file, and a query string refused under a custom
/// policy (with the URL it would have opened).
fn grant_proof(c: &mut Criterion) {
    use cfmint::auth::proof::Scope;
    let base = "https://cdn.example.com";
    let mut patterns: Vec<String> = (0..49).map(|i| format!("/audiobooks/{i}/*")).collect();
    patterns.push("/users/alice/*".into());
    let scope = Scope::any_of(patterns);
    let exact = Scope::any_of(vec!["/users/alice/a.pdf".into()]);
    let mut group = c.benchmark_group("grant_proof");
    group.throughput(Throughput::Elements(1));
    for (name, scope, resource, wildcards) in [
        (
            "folder_among_50",
            &scope,
            "https://cdn.example.com/users/alice/books/*",
            true,
        ),
        (
            "one_file",
            &exact,
            "https://cdn.example.com/users/alice/a.pdf",
            false,
        ),
        (
            "query_refused",
            &exact,
            "https://cdn.example.com/users/alice/a.pdf?w=1",
            true,
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| black_box(scope.prove(base, black_box(resource), wildcards)))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = policy_and_encoding, signing, verifying, minting, grant_proof
}
criterion_main!(benches);
