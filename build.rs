//! Turns the HTTP API's description (docs/openapi.yaml) into the JSON the
//! admin listener serves at `/openapi.json`. A description that is not valid
//! YAML fails the build.

use std::path::Path;

fn main() {
    let source = "docs/openapi.yaml";
    println!("cargo::rerun-if-changed={source}");
    let yaml = std::fs::read_to_string(source).unwrap_or_else(|e| panic!("{source}: {e}"));
    let description: serde_json::Value =
        yaml_serde::from_str(&yaml).unwrap_or_else(|e| panic!("{source}: {e}"));
    let out = std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR");
    let json = serde_json::to_string(&description).expect("a JSON value serialises");
    std::fs::write(Path::new(&out).join("openapi.json"), json).expect("OUT_DIR is writable");
}
