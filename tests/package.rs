//! Package metadata that must follow the dependency tree.

use std::process::Command;

fn version(text: &str) -> Vec<u64> {
    text.split('.').map(|part| part.parse().unwrap()).collect()
}

/// `rust-version` is exactly the highest any locked dependency declares: a
/// dependency update that raises it fails here until Cargo.toml says so.
#[test]
fn rust_version_is_what_the_dependencies_need() {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let ours = env!("CARGO_PKG_RUST_VERSION");
    let (needed, by) = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|package| package["name"] != env!("CARGO_PKG_NAME"))
        .filter_map(|package| {
            let declared = package["rust_version"].as_str()?;
            Some((
                version(declared),
                package["name"].as_str().unwrap().to_owned(),
            ))
        })
        .max()
        .unwrap();
    let mut ours = version(ours);
    ours.resize(needed.len().max(ours.len()), 0);
    let mut needed_padded = needed.clone();
    needed_padded.resize(ours.len(), 0);
    assert_eq!(
        ours, needed_padded,
        "rust-version in Cargo.toml should be {needed:?}, what {by} declares"
    );
}
