//! The monitoring kit against a real Prometheus: Debian's `prometheus`
//! scrapes the shipped binary every second with `deploy/prometheus/alerts.yml`
//! loaded, while the test logs in, mints, is refused, is rate limited, has a
//! key reload refused and loses Redis. Then every rule must be healthy, every
//! dashboard and rule expression must return data through the HTTP API, and
//! the alerts for what happened must be pending or firing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::process::spawn_on_free_port;
use crate::harness::*;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Scrapes `target` every second as job "cfmint", with the rules loaded.
    fn start(target: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {rules}\n\
                 scrape_configs:\n  - job_name: cfmint\n    static_configs:\n      - targets: ['{target}']\n",
                rules = repo("deploy/prometheus/alerts.yml").display(),
            ),
        )
        .unwrap();
        let (port, child) = spawn_on_free_port("prometheus", |port| {
            Command::new("prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("prometheus must be installed (scripts/test installs it)")
        });
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    async fn get(&self, path: &str) -> Value {
        let response = reqwest::get(format!("{}{path}", self.url)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "success", "{path}: {body}");
        body["data"].clone()
    }

    /// The instant vector `expr` evaluates to now.
    async fn query(&self, expr: &str) -> Vec<Value> {
        let data = self
            .get(&format!("/api/v1/query?query={}", percent_encode(expr, "")))
            .await;
        data["result"].as_array().unwrap().clone()
    }

    /// Waits until the first scrape of cfmint is stored (target discovery
    /// takes a few seconds after start).
    async fn wait_scraping(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = reqwest::get(format!("{}/-/ready", self.url)).await
                && response.status() == StatusCode::OK
                && !self.query(r#"up{job="cfmint"} == 1"#).await.is_empty()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus did not scrape cfmint"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every PromQL expression of the Grafana dashboard.
fn dashboard_expressions() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo("deploy/grafana/cfmint.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    let mut found = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            // The dashboard's variables at "All".
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$job", ".*")
                .replace("$namespace", ".*")
                .replace("$instance", ".*");
            found.push((panel["title"].as_str().unwrap().to_owned(), expr));
        }
    }
    assert!(found.len() >= 10, "{found:?}");
    found
}

/// The sample's value as a number.
fn value(sample: &Value) -> f64 {
    sample["value"][1].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_and_alert_expression_returns_data_from_a_real_prometheus() {
    process_setup();
    let mut redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::copy(&fixtures().signing_key, &key).unwrap();
    let config = dir.path().join("cfmint.toml");
    let text = config_toml(&Options::with_store(StoreChoice::Redis(redis.port))).replace(
        &fixtures().signing_key.display().to_string(),
        &key.display().to_string(),
    );
    std::fs::write(&config, text).unwrap();
    let mut serve = ServeProcess::start(
        &["--config", config.to_str().unwrap()],
        &[
            ("CFMINT__RATE_LIMIT__LOGIN_PER_IDENTITY", "3/min"),
            ("CFMINT__MINT__EXPIRY_ROUNDING", "1m"),
        ],
    );
    let prometheus = Prometheus::start(&serve.admin);
    prometheus.wait_scraping().await;

    let alice = client();
    let login = alice
        .post(serve.url("/login"))
        .json(&json!({ "username": "alice", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::NO_CONTENT);
    let mint_url = serve.url("/mint");
    let mint = |path: &'static str| alice.post(&mint_url).json(&json!({ "path": path })).send();
    // Spread over several scrapes, so that every counter grows between two.
    let mut limited = 0;
    for _ in 0..8 {
        assert_eq!(
            mint("/users/alice/").await.unwrap().status(),
            StatusCode::OK
        );
        assert_eq!(
            mint("/users/bob/").await.unwrap().status(),
            StatusCode::FORBIDDEN
        );
        let guess = client()
            .post(serve.url("/login"))
            .json(&json!({ "username": "bob", "password": "a wrong guess" }))
            .send()
            .await
            .unwrap();
        limited += usize::from(guess.status() == StatusCode::TOO_MANY_REQUESTS);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(limited >= 4, "{limited} guesses rate limited");

    // Two refused key reloads, a scrape apart, then a good one.
    std::fs::write(&key, "not a key").unwrap();
    for _ in 0..2 {
        serve.signal("HUP");
        serve.wait_for_log(
            "key reload refused; the previous keys keep signing",
            Duration::from_secs(10),
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    std::fs::copy(&fixtures().signing_key, &key).unwrap();
    serve.signal("HUP");
    serve.wait_for_log(
        "key ring reloaded; signing with the active key",
        Duration::from_secs(10),
    );

    // Redis goes away: mints fail on cfmint's side and readiness drops.
    redis.stop();
    for _ in 0..6 {
        assert_eq!(
            mint("/users/alice/").await.unwrap().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The rules loaded and evaluate without error, and every rule, dashboard
    // panel and alert signal has data, once the scrapes and rule
    // evaluations since have happened.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rules = prometheus.get("/api/v1/rules").await;
        let mut alerts = Vec::new();
        let mut recorded = Vec::new();
        let mut unhealthy = Vec::new();
        for group in rules["groups"].as_array().unwrap() {
            for rule in group["rules"].as_array().unwrap() {
                if rule["health"] != "ok" {
                    unhealthy.push(rule.to_string());
                }
                match rule["type"].as_str().unwrap() {
                    "alerting" => alerts.push(rule.clone()),
                    _ => recorded.push(rule["name"].as_str().unwrap().to_owned()),
                }
            }
        }
        assert_eq!(alerts.len(), 10, "{rules}");
        assert_eq!(recorded.len(), 10, "{rules}");

        let mut empty = Vec::new();
        // Keys in key stores (KMS, PKCS#11) have their series only where a
        // store is configured: tests/service/stores/key_stores.rs reads them.
        let in_key_stores = |expr: &str| expr.contains("cfmint_remote_");
        for (title, expr) in dashboard_expressions() {
            if !in_key_stores(&expr) && prometheus.query(&expr).await.is_empty() {
                empty.push(format!("dashboard \"{title}\": {expr}"));
            }
        }
        for name in &recorded {
            if prometheus.query(name).await.is_empty() {
                empty.push(format!("recording rule {name}"));
            }
        }
        // An alert's expression without its threshold: the signal it watches.
        for alert in &alerts {
            let expr = alert["query"].as_str().unwrap();
            let signal = [" > ", " < ", " == "]
                .iter()
                .filter_map(|op| expr.find(op))
                .min()
                .map_or(expr, |at| &expr[..at]);
            if !in_key_stores(signal) && prometheus.query(signal).await.is_empty() {
                empty.push(format!("alert {}: {signal}", alert["name"]));
            }
        }
        if unhealthy.is_empty() && empty.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rules not evaluated without error: {unhealthy:?}\nno data for:\n{}",
            empty.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // What happened shows in the numbers.
    let one = |name: &'static str| {
        let prometheus = &prometheus;
        async move {
            let result = prometheus.query(name).await;
            assert_eq!(result.len(), 1, "{name}: {result:?}");
            value(&result[0])
        }
    };
    let errors = one("cfmint:mint_errors:ratio_rate5m").await;
    assert!(errors > 0.05, "{errors}");
    let refusals = one("cfmint:mint_refusals:ratio_rate5m").await;
    assert!(
        refusals > 0.0,
        "{refusals}: {:?}",
        prometheus.query("cfmint_http_request_seconds_count").await
    );
    assert!(one("cfmint:key_reload_failures:increase15m").await > 0.0);
    assert_eq!(one("cfmint:ready:sum").await, 0.0);
    assert_eq!(one("cfmint:scraped:count").await, 1.0);
    // The dashboard's job and replica variables list this scrape's values.
    let text = std::fs::read_to_string(repo("deploy/grafana/cfmint.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    let variables: Vec<&Value> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["type"] == "query")
        .collect();
    assert_eq!(variables.len(), 3, "job, namespace and instance");
    for variable in variables {
        let query = variable["query"]["query"].as_str().unwrap();
        let (selector, label) = query
            .strip_prefix("label_values(")
            .and_then(|rest| rest.strip_suffix(')'))
            .and_then(|rest| rest.rsplit_once(", "))
            .unwrap_or_else(|| panic!("{query}"));
        let selector = selector.replace("$job", ".*").replace("$namespace", ".*");
        let answer = prometheus
            .get(&format!(
                "/api/v1/label/{label}/values?match[]={}",
                percent_encode(&selector, "")
            ))
            .await;
        let values = answer.as_array().unwrap();
        match label {
            "job" => assert_eq!(values, &[Value::from("cfmint")], "{query}"),
            "instance" => assert_eq!(values.len(), 1, "{query}: {answer}"),
            // No namespace outside Kubernetes: "All" matches the empty label.
            _ => assert!(values.is_empty(), "{query}: {answer}"),
        }
    }
    let signing = one("cfmint:signing_seconds:p99_rate5m").await;
    assert!(signing > 0.0 && signing < 1.0, "{signing}");
    let limited = prometheus.query("cfmint:rate_limited:rate5m").await;
    assert!(
        limited
            .iter()
            .any(|s| s["metric"]["limit"] == "login_per_identity" && value(s) > 0.0),
        "{limited:?}"
    );
    let store = prometheus.query("cfmint:session_store_errors:rate5m").await;
    assert!(store.iter().any(|s| value(s) > 0.0), "{store:?}");
    let hits = prometheus
        .query(r#"sum(rate(cfmint_signature_cache_total{result="hit"}[5m]))"#)
        .await;
    assert!(value(&hits[0]) > 0.0, "{hits:?}");

    // The alerts for what happened are pending (their `for`) or firing.
    let active = prometheus.get("/api/v1/alerts").await;
    let names: Vec<&str> = active["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["alertname"].as_str().unwrap())
        .collect();
    for expected in [
        "CfmintMintErrors",
        "CfmintSessionStoreErrors",
        "CfmintSessionStoreUnreachable",
        "CfmintKeyReloadFailed",
        "CfmintNotReady",
        "CfmintNoneReady",
    ] {
        assert!(names.contains(&expected), "{expected} not in {names:?}");
    }
    // (CfmintSigningSlow depends on the machine: pure-Rust RSA on a busy
    // machine can take 50 ms, and then it rightly goes pending.)
    let firing: Vec<&Value> = active["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["alertname"] == "CfmintKeyReloadFailed")
        .collect();
    assert_eq!(firing[0]["state"], "firing", "{firing:?}");
}

/// The alert thresholds and recording rules, by `promtool test rules`.
#[test]
fn alert_rules_pass_promtool_and_their_unit_tests() {
    let dir = repo("deploy/prometheus");
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts.test.yml"],
    ] {
        let output = Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("promtool must be installed (scripts/test installs prometheus)");
        assert!(
            output.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
