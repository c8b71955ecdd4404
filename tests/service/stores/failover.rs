//! Sessions on highly available Redis, with the shipped binary: two
//! replicas of `cfmint serve` mint at a steady rate while the master of a
//! Sentinel set, or a master of a Cluster, is killed. What the players see
//! during the failover is measured and printed (run with `--nocapture`):
//! every refusal a 503 with `Retry-After`, none slower than the store
//! timeout, recovery without a restart, the established sessions kept.
//! And a revocation is never reported done before a replica has it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::json;

use crate::harness::redis_ha::{Cluster, SentinelSet};
use crate::harness::{PASSWORD, ServeProcess, fixtures, process_setup};

/// Short enough that a failover's refusals come quickly.
const STORE_TIMEOUT: Duration = Duration::from_millis(500);
/// What a request may take beyond the store timeout before it counts as a
/// hang: the rest of its work, on a 2-core machine running the whole suite
/// at once in a debug build (one answer took 766 ms there, where the same
/// test alone measures 506–633 ms; the figures are printed).
const SLACK: Duration = Duration::from_millis(1500);

fn serve(url: &str, extra: &[(&str, &str)]) -> ServeProcess {
    let users = fixtures().users_file.display().to_string();
    let mut env = vec![
        ("CFMINT__SERVER__LISTEN", "127.0.0.1:0"),
        ("CFMINT__SERVER__ADMIN_LISTEN", "127.0.0.1:0"),
        ("CFMINT__SESSION__STORE", "redis"),
        ("CFMINT__SESSION__REDIS_URL", url),
        ("CFMINT__SESSION__STORE_TIMEOUT", "500ms"),
        ("CFMINT__AUTH__USERS__FILE", &users),
        // The limits stay in Redis (a script per check) but never refuse.
        ("CFMINT__RATE_LIMIT__LOGIN_PER_ADDRESS", "100000/min"),
        ("CFMINT__RATE_LIMIT__LOGIN_PER_IDENTITY", "100000/min"),
        ("CFMINT__RATE_LIMIT__MINT_PER_ADDRESS", "100000/min"),
        ("CFMINT__RATE_LIMIT__MINT_PER_IDENTITY", "100000/min"),
    ];
    for (key, value) in extra {
        env.retain(|(k, _)| k != key);
        env.push((key, value));
    }
    ServeProcess::start(&[], &env)
}

fn client() -> Client {
    Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn ready(serve: &ServeProcess) -> bool {
    reqwest::blocking::get(serve.url("/readyz")).is_ok_and(|r| r.status() == StatusCode::OK)
}

fn wait_until_ready(replicas: &[ServeProcess]) {
    crate::harness::process::wait_for("both replicas ready", Duration::from_secs(20), || {
        replicas.iter().all(ready)
    });
}

/// Alice's sessions (one per replica) end on both; bob's still mints.
fn only_alice_revoked(replicas: &[ServeProcess; 2], alice: &[Client; 2], bob: &Client) {
    for (i, client) in alice.iter().enumerate() {
        assert_eq!(mint(&replicas[i], client), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(mint(&replicas[1], bob), StatusCode::OK);
}

fn login(serve: &ServeProcess, user: &str) -> Client {
    let client = client();
    let response = client
        .post(serve.url("/login"))
        .json(&json!({ "username": user, "password": PASSWORD }))
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT, "login {user}");
    client
}

fn mint(serve: &ServeProcess, client: &Client) -> StatusCode {
    client
        .post(serve.url("/mint"))
        .send()
        .map(|r| r.status())
        .unwrap_or(StatusCode::GATEWAY_TIMEOUT)
}

fn revoke(serve: &ServeProcess, sub: &str) -> (StatusCode, serde_json::Value) {
    let response = Client::new()
        .post(serve.admin_url("/admin/sessions/revoke"))
        .json(&json!({ "sub": sub }))
        .send()
        .unwrap();
    (response.status(), response.json().unwrap())
}

/// One `/mint` as a player made it.
#[derive(Debug, Clone)]
struct Sample {
    /// When it was sent, from the start of the load.
    at: Duration,
    took: Duration,
    status: u16,
    retry_after: Option<String>,
}

/// Players minting every 50 ms, alternating between the replicas, and a
/// probe of each replica's `/readyz` every 100 ms, until stopped.
struct Load {
    started: Instant,
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    readiness: Arc<Mutex<Vec<(Duration, usize, u16)>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(replicas: &[ServeProcess; 2], players: Vec<Client>) -> Self {
        let replicas: Arc<[String; 2]> = Arc::new([replicas[0].url(""), replicas[1].url("")]);
        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let readiness = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for (i, player) in players.into_iter().enumerate() {
            let (replicas, stop, samples) = (replicas.clone(), stop.clone(), samples.clone());
            threads.push(std::thread::spawn(move || {
                let mut n = i;
                while !stop.load(Ordering::Relaxed) {
                    let at = started.elapsed();
                    let sent = Instant::now();
                    let response = player.post(format!("{}/mint", replicas[n % 2])).send();
                    let took = sent.elapsed();
                    let (status, retry_after) = match response {
                        Ok(r) => (
                            r.status().as_u16(),
                            r.headers()
                                .get("retry-after")
                                .map(|v| v.to_str().unwrap().to_owned()),
                        ),
                        Err(_) => (0, None),
                    };
                    samples.lock().unwrap().push(Sample {
                        at,
                        took,
                        status,
                        retry_after,
                    });
                    n += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
            }));
        }
        let (replicas, stop2, probes) = (replicas.clone(), stop.clone(), readiness.clone());
        threads.push(std::thread::spawn(move || {
            let probe = Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            while !stop2.load(Ordering::Relaxed) {
                for (i, replica) in replicas.iter().enumerate() {
                    let status = probe
                        .get(format!("{replica}/readyz"))
                        .send()
                        .map_or(0, |r| r.status().as_u16());
                    probes.lock().unwrap().push((started.elapsed(), i, status));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }));
        Self {
            started,
            stop,
            samples,
            readiness,
            threads,
        }
    }

    /// Waits until every request sent over the last `quiet` answered 200,
    /// at least `after` into the load; false if that did not come `within`.
    fn wait_for_calm(&self, after: Duration, quiet: Duration, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let now = self.started.elapsed();
            let samples = self.samples.lock().unwrap();
            let last_refusal = samples
                .iter()
                .filter(|s| s.status != 200)
                .map(|s| s.at + s.took)
                .max()
                .unwrap_or_default();
            drop(samples);
            if now > after && now > last_refusal + quiet {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn finish(self) -> (Vec<Sample>, Vec<(Duration, usize, u16)>) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().unwrap();
        }
        let samples = self.samples.lock().unwrap().clone();
        let readiness = self.readiness.lock().unwrap().clone();
        (samples, readiness)
    }
}

/// Mints under load while `fail_over` kills a master and waits for the
/// topology to promote a replica; checks and prints what the players saw.
fn failover_under_load(topology: &str, url: &str, fail_over: impl FnOnce()) {
    process_setup();
    let replicas = [serve(url, &[]), serve(url, &[])];
    wait_until_ready(&replicas);
    // Established sessions: eight players, logged in on either replica.
    let users = ["alice", "bob", "tess"];
    let players: Vec<Client> = (0..8)
        .map(|i| login(&replicas[i % 2], users[i % 3]))
        .collect();
    let kept = players.clone();
    let load = Load::start(&replicas, players);
    std::thread::sleep(Duration::from_secs(2));

    // Four logins answered just before the kill: their sessions may not
    // have reached a replica.
    let late: Vec<Client> = (0..4).map(|i| login(&replicas[i % 2], "bob")).collect();
    let killed_at = load.started.elapsed();
    fail_over();
    let promoted_at = load.started.elapsed();
    let calm = load.wait_for_calm(promoted_at, Duration::from_secs(3), Duration::from_secs(30));
    let (samples, readiness) = load.finish();
    if !calm {
        let mut replicas = replicas;
        let recent: Vec<_> = samples.iter().rev().take(10).collect();
        panic!(
            "{topology}: the replicas did not recover; last answers {recent:?}\n\
             replica logs:\n{}\n---\n{}",
            replicas[0].drain_log(),
            replicas[1].drain_log()
        );
    }

    let after: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at + s.took >= killed_at)
        .collect();
    let refused: Vec<&Sample> = after.iter().copied().filter(|s| s.status != 200).collect();
    for sample in &refused {
        assert_eq!(
            sample.status, 503,
            "{topology}: a refusal other than 503: {sample:?}"
        );
        assert_eq!(
            sample.retry_after.as_deref(),
            Some("1"),
            "{topology}: a 503 without Retry-After: {sample:?}"
        );
    }
    let slowest = samples.iter().map(|s| s.took).max().unwrap();
    assert!(
        slowest <= STORE_TIMEOUT + SLACK,
        "{topology}: a request took {slowest:?} (store timeout {STORE_TIMEOUT:?})"
    );
    let before: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at + s.took < killed_at)
        .collect();
    assert!(
        !before.is_empty() && before.iter().all(|s| s.status == 200),
        "{topology}: refusals before the kill"
    );
    let window = match (refused.first(), refused.last()) {
        (Some(first), Some(last)) => {
            (last.at + last.took)
                .saturating_sub(killed_at)
                .as_secs_f64()
                - first.at.saturating_sub(killed_at).as_secs_f64()
        }
        _ => 0.0,
    };
    let first_refusal = refused
        .first()
        .map_or(0.0, |s| s.at.saturating_sub(killed_at).as_secs_f64());
    let last_refusal = refused.last().map_or(0.0, |s| {
        (s.at + s.took).saturating_sub(killed_at).as_secs_f64()
    });
    // Readiness: how long each replica's /readyz was not 200 after the kill.
    let unready: Vec<f64> = (0..2)
        .map(|replica| {
            let probes: Vec<_> = readiness
                .iter()
                .filter(|(at, i, _)| *i == replica && *at >= killed_at)
                .collect();
            let failed: Vec<_> = probes.iter().filter(|(_, _, s)| *s != 200).collect();
            match (failed.first(), failed.last()) {
                (Some(first), Some(last)) => (last.0 - first.0).as_secs_f64() + 0.1,
                _ => 0.0,
            }
        })
        .collect();
    assert!(
        replicas.iter().all(ready),
        "{topology}: ready again without a restart"
    );

    // The established sessions all survived; the late ones may not have.
    let lost = kept
        .iter()
        .enumerate()
        .filter(|(i, player)| mint(&replicas[i % 2], player) != StatusCode::OK)
        .count();
    assert_eq!(lost, 0, "{topology}: established sessions lost");
    let late_lost = late
        .iter()
        .enumerate()
        .filter(|(i, player)| mint(&replicas[i % 2], player) == StatusCode::UNAUTHORIZED)
        .count();
    eprintln!(
        "FAILOVER {topology}: {} mints over {:.1} s; master killed at {:.1} s, promotion seen \
         {:.1} s later; {} of {} mints after the kill refused, all 503 with Retry-After: 1, \
         from {first_refusal:.2} s to {last_refusal:.2} s after the kill ({window:.2} s); \
         slowest answer {} ms (store timeout {} ms); /readyz not ready for {:.1} s and {:.1} s; \
         established sessions lost 0 of 8; sessions made just before the kill lost {late_lost} \
         of 4",
        samples.len(),
        (samples.last().unwrap().at).as_secs_f64(),
        killed_at.as_secs_f64(),
        (promoted_at - killed_at).as_secs_f64(),
        refused.len(),
        after.len(),
        slowest.as_millis(),
        STORE_TIMEOUT.as_millis(),
        unready[0],
        unready[1],
    );
}

#[test]
fn sentinel_master_killed_under_load() {
    let mut set = SentinelSet::start();
    let (url, old) = (set.url(), set.master_port());
    failover_under_load("sentinel", &url, || {
        set.master.kill();
        set.wait_for_promotion(old, Duration::from_secs(30));
    });
}

#[test]
fn cluster_master_killed_under_load() {
    let mut cluster = Cluster::start();
    let url = cluster.url();
    let victim = cluster.masters()[0];
    failover_under_load("cluster", &url, || {
        cluster.nodes[victim].kill();
        cluster.wait_for_promotion(victim, Duration::from_secs(30));
    });
}

/// A revocation that no replica has confirmed is refused (503), not
/// reported done: a failover then could bring the sessions back. Asked
/// again once the set has healed, it completes.
#[test]
fn an_unconfirmed_revocation_is_refused_and_completes_when_asked_again() {
    process_setup();
    let mut set = SentinelSet::start();
    let replicas = [serve(&set.url(), &[]), serve(&set.url(), &[])];
    let alice = [login(&replicas[0], "alice"), login(&replicas[1], "alice")];
    let bob = login(&replicas[0], "bob");

    // Both replicas stop answering (a network partition, say).
    for replica in &set.replicas {
        replica.signal("STOP");
    }
    let started = Instant::now();
    let (status, body) = revoke(&replicas[0], "alice");
    let took = started.elapsed();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "session_store_unavailable", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("not confirmed"),
        "{body}"
    );
    assert!(took <= STORE_TIMEOUT + SLACK, "the refusal took {took:?}");
    // What the operator's command says.
    let out = crate::harness::cfmint()
        .args(["sessions", "revoke", "--sub", "alice", "--admin-url"])
        .arg(replicas[1].admin_url(""))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("503") && stderr.contains("ask again"),
        "{stderr}"
    );

    // The master dies before they come back; one of them is promoted.
    let old = set.master_port();
    set.master.kill();
    for replica in &set.replicas {
        replica.signal("CONT");
    }
    set.wait_for_promotion(old, Duration::from_secs(30));
    wait_until_ready(&replicas);

    // Asked again, the revocation is confirmed and holds on both.
    let (status, body) = revoke(&replicas[1], "alice");
    assert_eq!(status, StatusCode::OK, "{body}");
    only_alice_revoked(&replicas, &alice, &bob);
}

/// Revoke, and kill the master at once: the promoted replica has the
/// revocation, because it was confirmed by a replica before it was
/// reported (one replica is frozen meanwhile; the other confirms).
#[test]
fn a_confirmed_revocation_survives_the_master_dying_at_once() {
    process_setup();
    let mut set = SentinelSet::start();
    let replicas = [serve(&set.url(), &[]), serve(&set.url(), &[])];
    let alice = [login(&replicas[0], "alice"), login(&replicas[1], "alice")];
    let bob = login(&replicas[1], "bob");

    set.replicas[0].signal("STOP");
    let (status, body) = revoke(&replicas[0], "alice");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["revoked"], 2, "{body}");
    let old = set.master_port();
    set.master.kill();
    let promoted = set.wait_for_promotion(old, Duration::from_secs(30));
    assert_eq!(promoted, set.replicas[1].port, "the replica that confirmed");
    set.replicas[0].signal("CONT");
    wait_until_ready(&replicas);

    only_alice_revoked(&replicas, &alice, &bob);
}

/// Everything cfmint keeps in Redis works on a Cluster, under a prefix:
/// sessions shared by the replicas, revocation of a subject whose sessions
/// lie in different slots, and one rate limit shared by both replicas.
#[test]
fn sessions_revocation_and_shared_limits_work_on_a_cluster() {
    process_setup();
    let cluster = Cluster::start();
    let url = cluster.url();
    let limited = [
        ("CFMINT__SESSION__REDIS_PREFIX", "team7:"),
        ("CFMINT__RATE_LIMIT__MINT_PER_IDENTITY", "6/min"),
    ];
    let replicas = [serve(&url, &limited), serve(&url, &limited)];
    let alice: Vec<Client> = (0..4).map(|i| login(&replicas[i % 2], "alice")).collect();
    let bob = login(&replicas[0], "bob");

    // Alice's four sessions are spread over the masters, under the prefix.
    let keys: Vec<String> = cluster
        .masters()
        .iter()
        .flat_map(|&i| {
            let listed = cluster.nodes[i].cli(&["--scan", "--pattern", "team7:session:*"]);
            listed.lines().map(str::to_owned).collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(keys.len(), 5, "{keys:?}");
    let holders = cluster
        .masters()
        .iter()
        .filter(|&&i| {
            !cluster.nodes[i]
                .cli(&["--scan", "--pattern", "team7:session:*"])
                .is_empty()
        })
        .count();
    eprintln!("cluster: 5 sessions on {holders} of 3 masters");

    // One shared allowance of six mints a minute for alice, on either replica.
    let statuses: Vec<u16> = (0..8)
        .map(|i| mint(&replicas[i % 2], &alice[i % 4]).as_u16())
        .collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 429, 429]);

    let (status, body) = revoke(&replicas[1], "alice");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["revoked"], 4, "{body}");
    for (i, client) in alice.iter().enumerate() {
        assert_eq!(mint(&replicas[i % 2], client), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(mint(&replicas[1], &bob), StatusCode::OK);
}
