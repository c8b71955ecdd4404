//! The `[edge]` section: where the edge listens, the URL viewers use, the key
//! group, and the origin. Other sections of the same file are ignored, so one
//! file can configure both `serve` and `edge`.

use std::net::SocketAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;

use crate::config::{ConfigError, Problem};
use crate::signer::{Backend, KeyPairId, MAX_KEY_GROUP_SIZE, PublicKey, PublicKeys};

#[derive(Debug, Deserialize)]
struct RawFile {
    edge: Option<RawEdge>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEdge {
    #[serde(default = "default_listen")]
    listen: String,
    public_url: String,
    origin_dir: Option<PathBuf>,
    origin_url: Option<String>,
    #[serde(default)]
    allowed_origins: Vec<String>,
    #[serde(default)]
    trusted_proxies: Vec<String>,
    #[serde(default)]
    key: Vec<RawEdgeKey>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    forward_cookies: Option<RawForward>,
    forward_headers: Option<RawForward>,
}

/// `"none"`, `"all"`, or a list of names.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawForward {
    Word(String),
    List(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEdgeKey {
    id: String,
    file: PathBuf,
}

fn default_listen() -> String {
    "127.0.0.1:8081".into()
}

/// Where allowed requests are answered from.
#[derive(Debug, Clone)]
pub enum Origin {
    /// Static files, with HLS/media content types and byte ranges (GET, HEAD).
    Directory(PathBuf),
    /// An HTTP server, for every method with the request body; the path and
    /// query (signing parameters removed) are appended to `base`. Viewer
    /// cookies and headers go along as a CloudFront origin request policy
    /// would send them.
    Upstream {
        base: String,
        cookies: Forward,
        headers: Forward,
    },
}

/// Which viewer cookies or headers reach the origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forward {
    None,
    All,
    /// These names (headers in lower case).
    Only(Vec<String>),
}

impl Forward {
    pub fn allows(&self, name: &str) -> bool {
        match self {
            Self::None => false,
            Self::All => true,
            Self::Only(names) => names.iter().any(|n| n.eq_ignore_ascii_case(name)),
        }
    }
}

fn forward(
    key: &str,
    raw: Option<RawForward>,
    valid: impl Fn(&str) -> bool,
    problem: &mut impl FnMut(&str, String),
) -> Forward {
    match raw {
        None => Forward::None,
        Some(RawForward::Word(word)) if word == "none" => Forward::None,
        Some(RawForward::Word(word)) if word == "all" => Forward::All,
        Some(RawForward::Word(word)) => {
            problem(
                key,
                format!("\"{word}\" is not none, all or a list of names"),
            );
            Forward::None
        }
        Some(RawForward::List(names)) => {
            if let Some(bad) = names.iter().find(|name| !valid(name)) {
                problem(key, format!("\"{bad}\" is not a name"));
            }
            Forward::Only(names.iter().map(|n| n.to_ascii_lowercase()).collect())
        }
    }
}

#[derive(Debug, Clone)]
pub struct EdgeSettings {
    pub listen: SocketAddr,
    /// `scheme://host[:port]` as viewers see the edge; policies are matched
    /// against this plus the request's path and query.
    pub public_url: String,
    pub origin: Origin,
    pub allowed_origins: Vec<String>,
    pub trusted_proxies: Vec<IpNet>,
    /// Key pair ids and PEM files (public or private) of the key group.
    pub keys: Vec<(KeyPairId, PathBuf)>,
    /// Certificate chain and key (PEM files) to serve HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
}

impl EdgeSettings {
    /// Reads the `[edge]` section of a TOML file; every problem is reported.
    pub fn load(toml_text: &str) -> Result<Self, ConfigError> {
        let fail = |key: &str, message: String| ConfigError {
            problems: vec![Problem::new(key, message)],
        };
        let file: RawFile = toml::from_str(toml_text).map_err(|e| fail("edge", e.to_string()))?;
        let raw = file
            .edge
            .ok_or_else(|| fail("edge", "the [edge] section is missing".into()))?;
        let mut problems = Vec::new();
        let mut problem = |key: &str, message: String| problems.push(Problem::new(key, message));

        let listen = raw.listen.parse().unwrap_or_else(|_| {
            problem(
                "edge.listen",
                format!("\"{}\" is not an address like 127.0.0.1:8081", raw.listen),
            );
            SocketAddr::from(([127, 0, 0, 1], 0))
        });
        let public_url = raw.public_url.trim_end_matches('/').to_owned();
        let scheme_ok = public_url.starts_with("http://") || public_url.starts_with("https://");
        let host = public_url.split_once("://").map_or("", |(_, rest)| rest);
        if !scheme_ok || host.is_empty() || host.contains(['/', '?', '#', '*']) {
            problem(
                "edge.public_url",
                format!(
                    "\"{}\" is not a URL like https://cdn.example.com",
                    raw.public_url
                ),
            );
        }
        let cookies = forward(
            "edge.forward_cookies",
            raw.forward_cookies,
            |name| {
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
            },
            &mut problem,
        );
        let headers = forward(
            "edge.forward_headers",
            raw.forward_headers,
            |name| axum::http::HeaderName::try_from(name).is_ok(),
            &mut problem,
        );
        let origin = match (raw.origin_dir, raw.origin_url) {
            (Some(dir), None) => {
                if cookies != Forward::None || headers != Forward::None {
                    problem(
                        "edge.forward_cookies",
                        "forward_cookies and forward_headers apply to origin_url only".into(),
                    );
                }
                Origin::Directory(dir)
            }
            (None, Some(url)) if url.starts_with("http://") || url.starts_with("https://") => {
                Origin::Upstream {
                    base: url.trim_end_matches('/').to_owned(),
                    cookies,
                    headers,
                }
            }
            (None, Some(url)) => {
                problem(
                    "edge.origin_url",
                    format!("\"{url}\" is not an http(s) URL"),
                );
                Origin::Upstream {
                    base: url,
                    cookies,
                    headers,
                }
            }
            _ => {
                problem(
                    "edge",
                    "needs exactly one of origin_dir or origin_url".into(),
                );
                Origin::Directory(PathBuf::new())
            }
        };
        let trusted_proxies = raw
            .trusted_proxies
            .iter()
            .filter_map(|cidr| {
                crate::config::parse_proxy(cidr)
                    .map_err(|e| problem("edge.trusted_proxies", e))
                    .ok()
            })
            .collect();
        if raw.key.is_empty() || raw.key.len() > MAX_KEY_GROUP_SIZE {
            problem(
                "edge.key",
                format!("a key group holds 1 to {MAX_KEY_GROUP_SIZE} keys"),
            );
        }
        let keys = raw
            .key
            .into_iter()
            .enumerate()
            .filter_map(|(index, key)| match KeyPairId::new(&key.id) {
                Ok(id) => Some((id, key.file)),
                Err(e) => {
                    problem(&format!("edge.key[{index}].id"), e.to_string());
                    None
                }
            })
            .collect();
        for origin in &raw.allowed_origins {
            if origin == "*" || !(origin.starts_with("http://") || origin.starts_with("https://")) {
                problem(
                    "edge.allowed_origins",
                    format!("\"{origin}\" is not an origin (never *)"),
                );
            }
        }
        let tls = match (raw.tls_cert, raw.tls_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                problem("edge.tls_cert", "tls_cert and tls_key go together".into());
                None
            }
        };
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        Ok(Self {
            listen,
            public_url,
            origin,
            allowed_origins: raw.allowed_origins,
            trusted_proxies,
            keys,
            tls,
        })
    }

    /// Loads the key group's public keys.
    pub fn public_keys(&self, backend: Backend) -> Result<PublicKeys, String> {
        let keys = self
            .keys
            .iter()
            .enumerate()
            .map(|(index, (id, file))| {
                PublicKey::from_file(id.clone(), file, backend)
                    .map_err(|e| format!("edge.key[{index}]: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        PublicKeys::new(keys).map_err(|e| format!("edge.key: {e}"))
    }
}
