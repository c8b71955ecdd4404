//! The service suite: `cfmint serve` and `cfmint edge` over real TCP, with
//! the real servers they meet (Redis, nginx, Prometheus, an OpenID provider,
//! moto, SoftHSM). docs/testing.md maps it; `map_is_true` below holds that
//! map to this tree.
//!
//! - `api`: the HTTP API's behaviour, mostly in-process (`TestApp`).
//! - `delivery`: what a signature opens at the edge, as CloudFront would
//!   decide it, through nginx and to players.
//! - `binary`: the shipped binary as operators run it: commands, shipped
//!   configurations, signals, logs, metrics, manifests.
//! - `stores`: sessions in Redis (plain and TLS), keys in KMS and PKCS#11,
//!   key rotation.
//! - `teams`: one end-to-end story per kind of team that adopts cfmint.
//! - `harness`: everything the groups share (starting servers, logging in,
//!   minting, tokens, metrics).

mod api;
mod binary;
mod delivery;
mod harness;
mod stores;
mod teams;

/// docs/testing.md's test map names every test file in the tree, and only
/// files that exist.
#[test]
fn map_is_true() {
    use std::collections::BTreeSet;
    use std::path::Path;

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/testing.md")).unwrap();
    let map = &doc[doc
        .find("## Test map")
        .expect("docs/testing.md has a test map")..];
    let mapped: BTreeSet<String> = map
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|quoted| {
            (quoted.starts_with("tests/")
                || quoted.contains("/tests/")
                || quoted.starts_with("fuzz/"))
                && !quoted.contains(' ')
                && quoted.contains('.')
        })
        .map(str::to_owned)
        .collect();

    fn walk(root: &Path, dir: &Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap();
            if path.is_dir() {
                if ![
                    "node_modules",
                    "fixtures",
                    "corpus",
                    "regressions",
                    "target",
                    "artifacts",
                ]
                .contains(&name)
                {
                    walk(root, &path, found);
                }
            } else if [".rs", ".mjs", ".py"].iter().any(|ext| name.ends_with(ext)) {
                let relative = path.strip_prefix(root).unwrap();
                found.insert(relative.to_str().unwrap().to_owned());
            }
        }
    }
    let mut present = BTreeSet::new();
    for dir in ["tests", "crates/cfmint-signer/tests", "fuzz"] {
        walk(root, &root.join(dir), &mut present);
    }

    let unmapped: Vec<_> = present.difference(&mapped).collect();
    let gone: Vec<_> = mapped.difference(&present).collect();
    assert!(
        unmapped.is_empty() && gone.is_empty(),
        "docs/testing.md's test map is out of date: not in it {unmapped:?}; gone from the tree {gone:?}"
    );
}
