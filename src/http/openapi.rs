//! The API's description as this deployment answers it: docs/openapi.yaml
//! (built into the binary as JSON) with the configured bounds filled in, so
//! a client or a test generator knows which lifetimes, batch sizes and path
//! lengths are accepted here.

use serde_json::{Value, json};

use crate::config::Settings;
use crate::web::OPENAPI_JSON;

/// The description served at `/openapi.json` on the admin listener.
pub fn description(settings: &Settings) -> String {
    let mut description: Value =
        serde_json::from_str(OPENAPI_JSON).expect("the build wrote valid JSON");
    let mint = &settings.mint;
    let schemas = &mut description["components"]["schemas"];
    schemas["Ttl"]["minimum"] = json!(mint.min_ttl.as_secs());
    schemas["Ttl"]["maximum"] = json!(mint.max_ttl.as_secs());
    schemas["Path"]["maxLength"] = json!(mint.max_path_length);
    schemas["SignUrlsRequest"]["properties"]["urls"]["maxItems"] = json!(mint.max_sign_urls);
    if settings.playlists.is_none()
        && let Some(paths) = description["paths"].as_object_mut()
    {
        paths.remove("/playlists/{path}");
    }
    description["servers"] = json!([{
        "url": format!("http://{}", settings.server.listen),
        "description": "cfmint serve, public listener",
    }]);
    description.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configured_bounds_are_in_the_description() {
        let toml = "[cloudfront]\nbase_url = \"https://cdn.example.com\"\n[auth.users]\ndemo = true\n\
                    [mint]\nttl = \"5m\"\nmin_ttl = \"1m\"\nmax_ttl = \"1h\"\nmax_sign_urls = 7\n";
        let settings = Settings::load(toml, std::iter::empty()).unwrap();
        let served: Value = serde_json::from_str(&description(&settings)).unwrap();
        let schemas = &served["components"]["schemas"];
        assert_eq!(schemas["Ttl"]["minimum"], 60);
        assert_eq!(schemas["Ttl"]["maximum"], 3600);
        assert_eq!(
            schemas["SignUrlsRequest"]["properties"]["urls"]["maxItems"],
            7
        );
        assert_eq!(served["openapi"], "3.1.0");
        assert!(
            served["paths"].get("/playlists/{path}").is_none(),
            "no [playlists], no route to describe"
        );
        assert!(served["paths"].get("/mint").is_some());
    }
}
