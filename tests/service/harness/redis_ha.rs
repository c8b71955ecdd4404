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

/// `redis-cli -p port command…`, its output trimmed.
pub fn cli(port: u16, command: &[&str]) -> String {
    output_of(
        Command::new(cli_binary())
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
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
    dir: tempfile::TempDir,
}

impl Node {
    fn start(args: Vec<String>, config: Option<String>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut args = args;
        if let Some(config) = config {
            let path = dir.path().join("node.conf");
            std::fs::write(&path, config).unwrap();
            args.insert(0, path.display().to_string());
        }
        let port: u16 = args
            .iter()
            .position(|a| a == "--port")
            .map(|i| args[i + 1].parse().unwrap())
            .unwrap();
        let mut node = Self {
            port,
            child: None,
            args,
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
        cli(self.port, command)
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

fn server_args(port: u16) -> Vec<String> {
    [
        "--bind",
        "127.0.0.1",
        "--port",
        &port.to_string(),
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
}

pub const SERVICE: &str = "main";

impl SentinelSet {
    pub fn start() -> Self {
        let master = Node::start(server_args(free_port()), None);
        let replicas: Vec<Node> = (0..2)
            .map(|_| {
                let mut args = server_args(free_port());
                args.extend(["--replicaof".into(), "127.0.0.1".into()]);
                args.push(master.port.to_string());
                Node::start(args, None)
            })
            .collect();
        let sentinels = (0..3)
            .map(|_| {
                let port = free_port();
                // A master silent for a second is down; the failover itself
                // is given five.
                let config = format!(
                    "port {port}\nbind 127.0.0.1\n\
                     sentinel monitor {SERVICE} 127.0.0.1 {master} 2\n\
                     sentinel down-after-milliseconds {SERVICE} 1000\n\
                     sentinel failover-timeout {SERVICE} 5000\n\
                     sentinel parallel-syncs {SERVICE} 2\n",
                    master = master.port
                );
                Node::start(
                    vec!["--sentinel".into(), "--port".into(), port.to_string()],
                    Some(config),
                )
            })
            .collect();
        let set = Self {
            master,
            replicas,
            sentinels,
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

    /// `redis-sentinel://` naming all three sentinels.
    pub fn url(&self) -> String {
        let [first, rest @ ..] = &self.sentinels[..] else {
            unreachable!()
        };
        let nodes: String = rest
            .iter()
            .map(|s| format!("&node=127.0.0.1:{}", s.port))
            .collect();
        format!(
            "redis-sentinel://127.0.0.1:{}?sentinelServiceName={SERVICE}{nodes}",
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
}

impl Cluster {
    pub fn start() -> Self {
        let nodes: Vec<Node> = (0..6)
            .map(|_| {
                let mut args = server_args(free_port());
                args.extend(
                    [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "1000",
                        "--cluster-port",
                    ]
                    .map(String::from),
                );
                args.push(free_port().to_string());
                Node::start(args, None)
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut create = Command::new(cli_binary());
        create.args(["--cluster", "create"]).args(&addresses).args([
            "--cluster-replicas",
            "1",
            "--cluster-yes",
        ]);
        let out = create.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = Self { nodes };
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
            "redis-cluster://127.0.0.1:{}?{}",
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
