//! Highly available Redis on loopback, from Debian's `redis-server`: a
//! Sentinel set (a master, two replicas, three sentinels) and a Cluster
//! (three masters, each with a replica), with failovers that take about a
//! second or two rather than the defaults' half minute.
//!
//! `CFMINT_TEST_REDIS_SERVER` names another server binary (Debian 13's
//! `valkey-server`, say) and `CFMINT_TEST_REDIS_CLI` its command line tool.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::process::{free_port, output_of, wait_for};

/// The server binary the tests start.
pub fn server_binary() -> String {
    std::env::var("CFMINT_TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into())
}

fn cli_binary() -> String {
    std::env::var("CFMINT_TEST_REDIS_CLI").unwrap_or_else(|_| "redis-cli".into())
}

/// TLS and passwords for a topology's servers and sentinels.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// A directory with `ca.crt`, `server.crt` and `server.key` (for
    /// 127.0.0.1): every port, replication link and cluster bus is TLS.
    pub tls: Option<std::path::PathBuf>,
    /// The servers' `requirepass` (and `masterauth`).
    pub password: Option<String>,
    /// The sentinels' own `requirepass`.
    pub sentinel_password: Option<String>,
}

impl Security {
    /// Arguments that make a server or sentinel listen on `port` (TLS only
    /// when configured), with `password`.
    fn listen(&self, port: u16, password: Option<&str>) -> Vec<String> {
        let mut args: Vec<String> = vec!["--bind".into(), "127.0.0.1".into()];
        match &self.tls {
            None => args.extend(["--port".into(), port.to_string()]),
            Some(dir) => {
                let file = |name: &str| dir.join(name).display().to_string();
                args.extend([
                    "--port".into(),
                    "0".into(),
                    "--tls-port".into(),
                    port.to_string(),
                ]);
                args.extend(["--tls-cert-file".into(), file("server.crt")]);
                args.extend(["--tls-key-file".into(), file("server.key")]);
                args.extend(["--tls-ca-cert-file".into(), file("ca.crt")]);
                args.extend(["--tls-auth-clients".into(), "no".into()]);
                args.extend(["--tls-replication".into(), "yes".into()]);
            }
        }
        if let Some(password) = password {
            args.extend(["--requirepass".into(), password.into()]);
        }
        args
    }

    /// The client's arguments for the same.
    fn client(&self, password: Option<&str>) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(dir) = &self.tls {
            args.extend(["--tls".into(), "--cacert".into()]);
            args.push(dir.join("ca.crt").display().to_string());
        }
        if let Some(password) = password {
            args.extend(["-a".into(), password.into(), "--no-auth-warning".into()]);
        }
        args
    }

    fn scheme(&self, topology: &str) -> String {
        let tls = if self.tls.is_some() { "s" } else { "" };
        format!("redis{tls}-{topology}")
    }

    fn credentials(&self) -> String {
        self.password
            .as_ref()
            .map(|p| format!(":{p}@"))
            .unwrap_or_default()
    }
}

/// `redis-cli -p port command…` with `client` arguments, trimmed.
fn cli(port: u16, client: &[String], command: &[&str]) -> String {
    output_of(
        Command::new(cli_binary())
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(client)
            .args(command),
    )
    .trim()
    .to_owned()
}

/// One server process (or sentinel) on a fixed loopback port.
pub struct Node {
    pub port: u16,
    child: Option<Child>,
    args: Vec<String>,
    /// What `redis-cli` needs to reach it (TLS, password).
    client: Vec<String>,
    dir: tempfile::TempDir,
}

impl Node {
    fn start(port: u16, args: Vec<String>, config: Option<String>, client: Vec<String>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut args = args;
        if let Some(config) = config {
            let path = dir.path().join("node.conf");
            std::fs::write(&path, config).unwrap();
            args.insert(0, path.display().to_string());
        }
        let mut node = Self {
            port,
            child: None,
            args,
            client,
            dir,
        };
        node.spawn();
        node
    }

    fn spawn(&mut self) {
        let child = Command::new(server_binary())
            .args(&self.args)
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test installs it)");
        self.child = Some(child);
        wait_for(
            &format!("{} on port {}", server_binary(), self.port),
            Duration::from_secs(10),
            || std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok(),
        );
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// SIGKILL: gone at once, as a crashed host.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP or SIGCONT: a node that stops answering without closing.
    pub fn signal(&self, name: &str) {
        let child = self.child.as_ref().expect("running");
        super::process::signal(&format!("-{name}"), &child.id().to_string());
    }

    pub fn cli(&self, command: &[&str]) -> String {
        cli(self.port, &self.client, command)
    }

    /// The `role:` line of `INFO replication`: "master" or "replica"
    /// (which Redis and Valkey call "slave" there).
    pub fn role(&self) -> String {
        let role = self
            .cli(&["INFO", "replication"])
            .lines()
            .find_map(|line| line.strip_prefix("role:"))
            .unwrap_or("")
            .trim()
            .to_owned();
        if role == "slave" {
            "replica".into()
        } else {
            role
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A stopped process ignores SIGKILL until continued on some
            // kernels' accounting; continue it first.
            super::process::signal("-CONT", &child.id().to_string());
        }
        self.kill();
    }
}

/// Replicas of `node` done with their first sync (a replica still waiting
/// for it counts as connected, but has nothing yet).
fn online_replicas(node: &Node) -> usize {
    node.cli(&["INFO", "replication"])
        .matches("state=online")
        .count()
}

/// A server on `port`: no persistence, replicas synced at once.
fn server(security: &Security, port: u16, extra: &[String]) -> Node {
    let password = security.password.as_deref();
    let mut args = security.listen(port, password);
    args.extend(persistence());
    if let Some(password) = password {
        args.extend(["--masterauth".into(), password.into()]);
    }
    args.extend(extra.iter().cloned());
    Node::start(port, args, None, security.client(password))
}

fn persistence() -> Vec<String> {
    [
        "--save",
        "",
        "--appendonly",
        "no",
        // A replica's first full sync at once, not after five seconds.
        "--repl-diskless-sync-delay",
        "0",
    ]
    .map(String::from)
    .to_vec()
}

/// A master, two replicas and three sentinels watching them as `main`.
pub struct SentinelSet {
    pub master: Node,
    pub replicas: Vec<Node>,
    pub sentinels: Vec<Node>,
    security: Security,
}

pub const SERVICE: &str = "main";

impl SentinelSet {
    pub fn start() -> Self {
        Self::start_with(Security::default())
    }

    pub fn start_with(security: Security) -> Self {
        let master = server(&security, free_port(), &[]);
        let replicas: Vec<Node> = (0..2)
            .map(|_| {
                let of = [
                    "--replicaof".into(),
                    "127.0.0.1".into(),
                    master.port.to_string(),
                ];
                server(&security, free_port(), &of)
            })
            .collect();
        let sentinels = (0..3)
            .map(|_| {
                let port = free_port();
                // A master silent for a second is down; the failover itself
                // is given five.
                let mut config = format!(
                    "sentinel monitor {SERVICE} 127.0.0.1 {master} 2\n\
                     sentinel down-after-milliseconds {SERVICE} 1000\n\
                     sentinel failover-timeout {SERVICE} 5000\n\
                     sentinel parallel-syncs {SERVICE} 2\n",
                    master = master.port
                );
                if let Some(password) = &security.password {
                    config.push_str(&format!("sentinel auth-pass {SERVICE} {password}\n"));
                }
                let sentinel_password = security.sentinel_password.as_deref();
                let mut args = vec!["--sentinel".to_owned()];
                args.extend(security.listen(port, sentinel_password));
                Node::start(port, args, Some(config), security.client(sentinel_password))
            })
            .collect();
        let set = Self {
            master,
            replicas,
            sentinels,
            security,
        };
        wait_for(
            "both replicas in sync and known to every sentinel",
            Duration::from_secs(30),
            || {
                online_replicas(&set.master) == 2
                    && set.sentinels.iter().all(|s| {
                        s.cli(&["SENTINEL", "REPLICAS", SERVICE])
                            .matches("flags")
                            .count()
                            == 2
                    })
            },
        );
        set
    }

    /// `redis-sentinel://` (or `rediss-`) naming all three sentinels, with
    /// the passwords.
    pub fn url(&self) -> String {
        let [first, rest @ ..] = &self.sentinels[..] else {
            unreachable!()
        };
        let nodes: String = rest
            .iter()
            .map(|s| format!("&node=127.0.0.1:{}", s.port))
            .collect();
        let sentinel_password = self
            .security
            .sentinel_password
            .as_ref()
            .map(|p| format!("&sentinelPassword={p}"))
            .unwrap_or_default();
        format!(
            "{}://{}127.0.0.1:{}?sentinelServiceName={SERVICE}{nodes}{sentinel_password}",
            self.security.scheme("sentinel"),
            self.security.credentials(),
            first.port
        )
    }

    /// The master's port as the first sentinel reports it.
    pub fn master_port(&self) -> u16 {
        let answer = self.sentinels[0].cli(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE]);
        answer.lines().nth(1).unwrap_or("0").trim().parse().unwrap()
    }

    /// Waits until a sentinel names a master other than `old` and that
    /// server says it is one; answers its port.
    pub fn wait_for_promotion(&self, old: u16, within: Duration) -> u16 {
        let started = Instant::now();
        let mut promoted = 0;
        wait_for("a replica promoted", within, || {
            promoted = self.master_port();
            promoted != old
                && promoted != 0
                && self
                    .replicas
                    .iter()
                    .any(|r| r.port == promoted && r.child.is_some() && r.role() == "master")
        });
        eprintln!(
            "sentinel: {promoted} promoted {:.1} s after waiting began",
            started.elapsed().as_secs_f64()
        );
        promoted
    }
}

/// Three masters and three replicas in one Cluster.
pub struct Cluster {
    pub nodes: Vec<Node>,
    security: Security,
}

impl Cluster {
    pub fn start() -> Self {
        Self::start_with(Security::default())
    }

    pub fn start_with(security: Security) -> Self {
        let nodes: Vec<Node> = (0..6)
            .map(|_| {
                let mut args: Vec<String> = [
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "1000",
                    "--cluster-port",
                ]
                .map(String::from)
                .to_vec();
                args.push(free_port().to_string());
                if security.tls.is_some() {
                    args.extend(["--tls-cluster".into(), "yes".into()]);
                }
                server(&security, free_port(), &args)
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut create = Command::new(cli_binary());
        create
            .args(security.client(security.password.as_deref()))
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"]);
        let out = create.output().unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Self { nodes, security };
        wait_for(
            "the cluster ok on every node, each master with its replica",
            Duration::from_secs(30),
            || {
                cluster
                    .nodes
                    .iter()
                    .all(|n| n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
                    && cluster.masters().len() == 3
                    && cluster
                        .nodes
                        .iter()
                        .filter(|n| n.role() == "replica")
                        .count()
                        == 3
                    && cluster
                        .masters()
                        .iter()
                        .all(|&i| online_replicas(&cluster.nodes[i]) == 1)
            },
        );
        cluster
    }

    /// Indexes of the running nodes that are masters now.
    pub fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].child.is_some() && self.nodes[i].role() == "master")
            .collect()
    }

    /// `redis-cluster://` naming every node as a seed.
    pub fn url(&self) -> String {
        let [first, rest @ ..] = &self.nodes[..] else {
            unreachable!()
        };
        let nodes: Vec<String> = rest
            .iter()
            .map(|n| format!("node=127.0.0.1:{}", n.port))
            .collect();
        format!(
            "{}://{}127.0.0.1:{}?{}",
            self.security.scheme("cluster"),
            self.security.credentials(),
            first.port,
            nodes.join("&")
        )
    }

    /// Waits until the cluster is ok again with three masters, none of them
    /// `killed`.
    pub fn wait_for_promotion(&self, killed: usize, within: Duration) {
        let started = Instant::now();
        wait_for("a replica promoted in the cluster", within, || {
            let masters = self.masters();
            masters.len() == 3
                && !masters.contains(&killed)
                && masters.iter().all(|&i| {
                    self.nodes[i]
                        .cli(&["CLUSTER", "INFO"])
                        .contains("cluster_state:ok")
                })
        });
        eprintln!(
            "cluster: promoted {:.1} s after waiting began",
            started.elapsed().as_secs_f64()
        );
    }
}
