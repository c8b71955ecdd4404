//! The edge in the tests: in-process (`TestEdge`), as the shipped binary
//! (`EdgeProcess`), and behind Debian's nginx with the documented
//! `auth_request` configuration.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use cfmint::edge::{Edge, EdgeSettings};
use cfmint::signer::{
    Backend, HashAlgorithm, KeyPairId, Policy, PolicyForm, PrivateKey, PublicKeys, SignedPolicy,
};
use tokio::sync::oneshot;

use super::{KEY_ID, fixtures};

pub const PUBLIC: &str = "http://edge.cfmint.test";

/// The edge tests' origin: an audio book's playlist and segments, media
/// of other kinds, and files that are not media.
pub fn sample_origin() -> PathBuf {
    let dir = super::kept_dir();
    let book = dir.join("audiobooks/42");
    std::fs::create_dir_all(&book).unwrap();
    std::fs::write(book.join("chapter-1.m3u8"), "#EXTM3U\n#EXT-X-ENDLIST\n").unwrap();
    std::fs::write(book.join("seg-001.ts"), vec![0x47u8; 1880]).unwrap();
    std::fs::write(book.join("seg-001.aac"), b"aac-bytes").unwrap();
    std::fs::write(book.join("booklet.pdf"), b"%PDF-1.4 booklet").unwrap();
    for media in ["seg-001.m4s", "video.mp4", "chapter.m4a", "UPPER.AAC"] {
        std::fs::write(book.join(media), b"media-bytes").unwrap();
    }
    std::fs::write(dir.join("abc.txt"), b"abc").unwrap();
    dir
}

pub fn signing_key() -> PrivateKey {
    PrivateKey::from_file(
        KeyPairId::new(KEY_ID).unwrap(),
        &fixtures().signing_key,
        Backend::default(),
    )
    .unwrap()
}

pub struct TestEdge {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for TestEdge {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub async fn edge_with(origin: &str, keys: PublicKeys, trusted: &str) -> TestEdge {
    edge_at(PUBLIC, origin, keys, trusted).await
}

/// An edge answering for `public` (its `public_url`).
pub async fn edge_at(public: &str, origin: &str, keys: PublicKeys, trusted: &str) -> TestEdge {
    crate::harness::process_setup();
    let toml = format!(
        r#"
[edge]
listen = "127.0.0.1:0"
public_url = "{public}"
{origin}
allowed_origins = ["http://app.cfmint.test"]
trusted_proxies = [{trusted}]
[[edge.key]]
id = "{KEY_ID}"
file = "unused.pem"
"#
    );
    let settings = EdgeSettings::load(&toml).unwrap();
    let edge = Edge::build(settings, keys).await.unwrap();
    let addr = edge.local_addr();
    let (stop, stopped) = oneshot::channel();
    tokio::spawn(edge.run_until(async move {
        let _ = stopped.await;
    }));
    TestEdge {
        addr,
        stop: Some(stop),
    }
}

pub async fn edge(dir: &Path) -> TestEdge {
    edge_with(
        &format!("origin_dir = \"{}\"", dir.display()),
        fixtures().public_keys.clone(),
        "",
    )
    .await
}

pub fn sign(resource: &str, expires: u64, ip: Option<&str>, form: PolicyForm) -> SignedPolicy {
    let mut builder = Policy::builder(format!("{PUBLIC}{resource}")).expires(expires);
    if let Some(ip) = ip {
        builder = builder.source_ip(ip);
    }
    signing_key()
        .sign(&builder.build().unwrap(), form, HashAlgorithm::Sha1)
        .unwrap()
}

/// nginx (Debian's package) on a free port, with `auth_request` to the edge.
pub struct Nginx {
    pub port: u16,
    child: Child,
}

impl Drop for Nginx {
    /// The master and its workers, which are in its process group: a
    /// killed master alone would leave the workers running.
    fn drop(&mut self) {
        super::process::stop_group(&mut self.child);
    }
}

/// The documented `auth_request` configuration (docs/edge.md), verbatim
/// but for the edge's address.
fn documented_auth_request(edge: SocketAddr) -> String {
    let block = super::docs::fenced_blocks(include_str!("../../../docs/edge.md"))
        .into_iter()
        .find(|block| block.language == "nginx")
        .expect("docs/edge.md shows the nginx auth_request configuration")
        .text;
    assert!(block.contains("http://127.0.0.1:8081/auth"), "{block}");
    block.replace("127.0.0.1:8081", &edge.to_string())
}

pub fn start_nginx(root: &Path, edge: SocketAddr) -> Nginx {
    let dir = super::kept_dir();
    // Workers may run as another user: let them read the files.
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(root)
        .status()
        .unwrap();
    Command::new("chmod")
        .args(["a+rx"])
        .arg(root.parent().unwrap())
        .status()
        .unwrap();
    super::process::on_free_port(
        "nginx",
        |port| {
            let config = format!(
                r#"
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
{readme}
    }}
}}
"#,
                dir = dir.display(),
                root = root.display(),
                readme = documented_auth_request(edge),
            );
            let config_path = dir.join("nginx.conf");
            std::fs::write(&config_path, config).unwrap();
            let child = Command::new("nginx")
                .arg("-c")
                .arg(&config_path)
                .args(["-p"])
                .arg(&dir)
                .args(["-g", "daemon off;"])
                .process_group(0)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("nginx must be installed (scripts/test installs it)");
            Nginx { port, child }
        },
        |nginx| (&mut nginx.child, nginx.port),
    )
}

/// `cfmint edge --config <file>`, the shipped binary, on a free port;
/// stopped when dropped.
pub struct EdgeProcess {
    child: Child,
    /// `http://localhost:<port>`: the edge's `public_url`, what cfmint signs
    /// for (`base_url`).
    pub public_url: String,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl EdgeProcess {
    /// `origin` is the `origin_dir = …` or `origin_url = …` line (and any
    /// forwarding lines); `keys` the key group as (id, PEM file).
    pub fn start(origin: &str, keys: &[(&str, &Path)]) -> Self {
        super::process::on_free_port(
            "cfmint edge",
            |port| {
                let public_url = format!("http://localhost:{port}");
                let dir = tempfile::tempdir().unwrap();
                let mut config = format!(
                    "[edge]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"{public_url}\"\n{origin}\n"
                );
                for (id, file) in keys {
                    config.push_str(&format!(
                        "[[edge.key]]\nid = \"{id}\"\nfile = \"{}\"\n",
                        file.display()
                    ));
                }
                let path = dir.path().join("edge.toml");
                std::fs::write(&path, config).unwrap();
                let child = super::cfmint()
                    .arg("edge")
                    .arg("--config")
                    .arg(&path)
                    .env("CFMINT_LOG", "warn")
                    .stdout(Stdio::null())
                    .spawn()
                    .unwrap();
                Self {
                    child,
                    public_url,
                    port,
                    _dir: dir,
                }
            },
            |edge| (&mut edge.child, edge.port),
        )
    }

    /// Serving the files under `origin` with the fixtures' signing key.
    pub fn serving(origin: &Path) -> Self {
        Self::start(
            &format!("origin_dir = \"{}\"", origin.display()),
            &[(KEY_ID, &fixtures().signing_key)],
        )
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// A GET through the edge with these cookies.
    pub async fn get(&self, path: &str, cookies: &str) -> reqwest::Response {
        let mut request = reqwest::Client::new().get(self.url(path));
        if !cookies.is_empty() {
            request = request.header("cookie", cookies);
        }
        request.send().await.unwrap()
    }

    /// What the edge has allowed and denied (`/_cfmint/stats`).
    pub fn stats(&self) -> serde_json::Value {
        reqwest::blocking::get(self.url("/_cfmint/stats"))
            .unwrap()
            .json()
            .unwrap()
    }
}

impl Drop for EdgeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
