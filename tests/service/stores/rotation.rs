//! Key rotation for real: `cfmint keys rotate` and `retire` against moto's
//! CloudFront and Secrets Manager (tests/service/stores/aws_standin.py adds the
//! two CloudFront calls moto 5.2 lacks, UpdateKeyGroup and
//! ListDistributionsByKeyGroup, in the API's own shapes), with `cfmint
//! serve` replicas reading the key ring from the secret. Every cookie is
//! checked the way CloudFront would, with the public keys the key group
//! trusts at the moment it is used.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::aws::{Moto, STANDIN};
use crate::harness::cookie_value;
use crate::harness::process::{env_refs, wait_for};
use crate::harness::{
    BASE_URL, ServeProcess, cfmint, fixtures, metric_if_present, now, process_setup,
};
use cfmint::signer::{self, Backend, KeyPairId, KeySource, PublicKey, PublicKeys, ViewerRequest};

/// moto with the stand-in's additions, on a free loopback port.
struct StandIn {
    _moto: Moto,
    aws: Aws,
}

/// The stand-in's address and a client for its test endpoints.
#[derive(Clone)]
struct Aws {
    port: u16,
    client: reqwest::blocking::Client,
}

/// What one `setup` made: key A signing, trusted by a key group that a
/// distribution's default behaviour uses.
struct Deployment {
    secret: String,
    key_a: String,
    group: String,
    dir: PathBuf,
}

impl StandIn {
    /// `deploy_seconds`: how long a distribution shows InProgress after its
    /// key group changed.
    fn start(deploy_seconds: f64) -> Self {
        let moto = Moto::start(deploy_seconds);
        let aws = Aws {
            port: moto.port,
            client: reqwest::blocking::Client::new(),
        };
        Self { _moto: moto, aws }
    }
}

impl std::ops::Deref for StandIn {
    type Target = Aws;
    fn deref(&self) -> &Aws {
        &self.aws
    }
}

impl Aws {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Key A made with `cfmint keygen`, uploaded, grouped, and signing.
    fn deploy(&self, dir: &Path, name: &str) -> Deployment {
        let keys = keygen(&dir.join(format!("{name}-a")), "rsa");
        let out = Command::new("python3")
            .args([
                STANDIN,
                "setup",
                &self.port.to_string(),
                keys.join("private.pem").to_str().unwrap(),
                keys.join("public.pem").to_str().unwrap(),
                name,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ids: Value = serde_json::from_slice(&out.stdout).unwrap();
        Deployment {
            secret: name.to_owned(),
            key_a: ids["key_pair_id"].as_str().unwrap().to_owned(),
            group: ids["key_group_id"].as_str().unwrap().to_owned(),
            dir: dir.to_owned(),
        }
    }

    /// The next `op` call (after `skip` of them) fails; with `lost` it
    /// takes effect first.
    fn fault(&self, op: &str, skip: u32, lost: bool) {
        self.client
            .post(self.url("/__fault"))
            .json(&json!({ "op": op, "skip": skip, "lost": lost }))
            .send()
            .unwrap()
            .error_for_status()
            .unwrap();
    }

    /// The public keys `group` trusts now, as CloudFront verifies with them.
    fn trusted(&self, group: &str) -> PublicKeys {
        let keys: HashMap<String, String> = self
            .client
            .get(self.url(&format!("/__trusted?group={group}")))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let keys = keys
            .iter()
            .map(|(id, pem)| {
                let id = KeyPairId::new(id).unwrap();
                PublicKey::from_pem(id, pem, KeySource::Inline, Backend::default()).unwrap()
            })
            .collect();
        PublicKeys::new(keys).unwrap()
    }

    /// How many keys the deployment's key group holds.
    fn group_size(&self, deployment: &Deployment) -> usize {
        self.state(deployment)["group"].as_array().unwrap().len()
    }

    /// The key group's keys, every public key, and the ring as stored.
    fn state(&self, deployment: &Deployment) -> Value {
        self.client
            .get(self.url(&format!(
                "/__state?group={}&secret={}",
                deployment.group, deployment.secret
            )))
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    /// `cfmint`'s AWS environment: test credentials, every service here.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
            ("AWS_ENDPOINT_URL", self.url("")),
        ]
    }
}

impl Deployment {
    /// The configuration `serve` and `cfmint keys` share.
    fn config(&self) -> PathBuf {
        let path = self
            .dir
            .join(format!("{}.toml", self.secret.replace('/', "-")));
        let text = format!(
            r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
drain_delay = "0s"
[cloudfront]
base_url = "{BASE_URL}"
hash_algorithm = "sha256"
[keys]
secret_id = "{secret}"
secret_poll_interval = "1s"
[mint]
ttl = "10s"
[auth.users]
file = "{users}"
[[grants]]
paths = ["/users/{{sub}}/*"]
[rate_limit]
login_per_address = "off"
login_per_identity = "off"
mint_per_address = "off"
mint_per_identity = "off"
"#,
            secret = self.secret,
            users = fixtures().users_file.display(),
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    fn keys_args<'a>(&'a self, config: &'a Path, command: &'a str) -> Vec<String> {
        vec![
            "keys".into(),
            command.into(),
            "--config".into(),
            config.to_str().unwrap().into(),
            "--key-group-id".into(),
            self.group.clone(),
            "--check-every".into(),
            "200ms".into(),
        ]
    }
}

/// `cfmint ARGS` with `env`, run to the end.
fn cfmint_with_env(args: &[&str], env: &[(&'static str, String)]) -> Output {
    cfmint().args(args).envs(env_refs(env)).output().unwrap()
}

/// A key pair made by `cfmint keygen` in `dir` (private.pem, public.pem).
fn keygen(dir: &Path, kind: &str) -> PathBuf {
    let out = cfmint_with_env(
        &["keygen", "--type", kind, "--out", dir.to_str().unwrap()],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.to_owned()
}

fn run_keys(args: &[String], env: &[(&'static str, String)]) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cfmint_with_env(&args, env)
}

/// `cfmint keys ...`, calling `then` once when a line containing `line`
/// appears on its output.
fn run_keys_then(
    args: &[String],
    env: &[(&'static str, String)],
    line: &str,
    then: impl FnOnce(),
) -> Output {
    let mut child = cfmint()
        .args(args)
        .envs(env_refs(env))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = String::new();
    let mut then = Some(then);
    for next in BufReader::new(child.stdout.take().unwrap()).lines() {
        let next = next.unwrap();
        if next.contains(line)
            && let Some(then) = then.take()
        {
            then();
        }
        seen.push_str(&next);
        seen.push('\n');
    }
    let mut output = child.wait_with_output().unwrap();
    output.stdout = seen.into_bytes();
    output
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `out`'s output must contain `what`.
fn assert_says(out: &Output, what: &str) {
    assert!(text(out).contains(what), "{}", text(out));
}

fn admin_keys(serve: &ServeProcess) -> Value {
    reqwest::blocking::get(format!("http://{}/admin/keys", serve.admin))
        .unwrap()
        .json()
        .unwrap()
}

/// When the cookies' policy expires (epoch seconds).
fn expires(header: &str) -> u64 {
    let policy = signer::decode_base64(&cookie_value(header, "CloudFront-Policy")).unwrap();
    let policy: Value = serde_json::from_slice(&policy).unwrap();
    policy["Statement"][0]["Condition"]["DateLessThan"]["AWS:EpochTime"]
        .as_u64()
        .unwrap()
}

/// What a player does: mints, then uses every cookie it holds that has not
/// expired, each checked with the keys the group trusts at that moment.
struct Player {
    client: reqwest::blocking::Client,
    mint_url: String,
    held: Vec<(String, u64)>,
    minted_by: HashMap<String, usize>,
    refused: Vec<String>,
    uses: usize,
}

impl Player {
    fn new(serve: &ServeProcess) -> Self {
        Self {
            client: serve.logged_in_blocking(),
            mint_url: serve.url("/mint"),
            held: Vec::new(),
            minted_by: HashMap::new(),
            refused: Vec::new(),
            uses: 0,
        }
    }

    fn step(&mut self, standin: &Aws, group: &str) {
        let response = self
            .client
            .post(&self.mint_url)
            .json(&json!({ "path": "/users/alice/book/" }))
            .send()
            .unwrap();
        let status = response.status();
        if !status.is_success() {
            self.refused.push(format!("mint answered {status}"));
            return;
        }
        let header = crate::harness::cloudfront_cookie_header(response.headers());
        let id = cookie_value(&header, "CloudFront-Key-Pair-Id");
        *self.minted_by.entry(id).or_default() += 1;
        let expiry = expires(&header);
        self.held.push((header, expiry));
        // A second's slack either side of expiry: CloudFront's clock and ours.
        let now = now();
        self.held.retain(|(_, expiry)| *expiry > now + 1);
        let trusted = standin.trusted(group);
        for (header, _) in &self.held {
            let url = format!("{BASE_URL}/users/alice/book/part-1.mp3");
            let verdict = signer::verify(
                &trusted,
                &ViewerRequest {
                    url: &url,
                    cookie_header: Some(header),
                    client_ip: None,
                    now,
                },
            );
            self.uses += 1;
            if !verdict.is_allowed() {
                self.refused.push(format!(
                    "{} refused: {:?}",
                    cookie_value(header, "CloudFront-Key-Pair-Id"),
                    verdict.result
                ));
            }
        }
    }
}

#[test]
fn rotate_then_retire_moves_two_replicas_from_key_a_to_key_b_refusing_nothing() {
    process_setup();
    let dir = tempfile::tempdir().unwrap();
    let standin = StandIn::start(2.0);
    let deployment = standin.deploy(dir.path(), "cfmint/rotation");
    let config = deployment.config();
    let env = standin.env();
    let replicas = [
        ServeProcess::with_config(&config, &env_refs(&env)),
        ServeProcess::with_config(&config, &env_refs(&env)),
    ];
    for replica in &replicas {
        assert_eq!(admin_keys(replica)["active"], deployment.key_a.as_str());
    }

    // Two players, one per replica, minting and using cookies every 100 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let players: Vec<_> = replicas
        .iter()
        .map(|replica| {
            let player = Arc::new(Mutex::new(Player::new(replica)));
            let (player2, stop) = (player.clone(), stop.clone());
            let (aws, group) = (standin.aws.clone(), deployment.group.clone());
            let thread = std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(90);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    player2.lock().unwrap().step(&aws, &group);
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
            (player, thread)
        })
        .collect();
    wait_for(
        "both players using cookies",
        Duration::from_secs(10),
        || {
            players
                .iter()
                .all(|(player, _)| player.lock().unwrap().uses > 0)
        },
    );

    let mut rotate = deployment.keys_args(&config, "rotate");
    for replica in &replicas {
        rotate.extend(["--replica".into(), format!("http://{}", replica.admin)]);
    }
    let out = run_keys(&rotate, &env);
    assert!(out.status.success(), "{}", text(&out));
    let report = text(&out);
    assert!(report.contains("0 of 1 deployed; waiting for"), "{report}");
    assert!(report.contains("2 of 2 sign with"), "{report}");
    let key_b = admin_keys(&replicas[0])["active"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(key_b, deployment.key_a);
    assert_eq!(admin_keys(&replicas[1])["active"], key_b.as_str());

    // Too early: cookies A signed may still be in use.
    let mut retire = deployment.keys_args(&config, "retire");
    retire.extend([
        "--key-pair-id".into(),
        deployment.key_a.clone(),
        "--margin".into(),
        "1s".into(),
    ]);
    for replica in &replicas {
        retire.extend(["--replica".into(), format!("http://{}", replica.admin)]);
    }
    let out = run_keys(&retire, &env);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_says(&out, "cannot be retired yet");
    assert_eq!(standin.group_size(&deployment), 2);

    // Once mint.max_ttl (10s), the poll interval and the margin have passed.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut dry = retire.clone();
    dry.push("--dry-run".into());
    let out = loop {
        std::thread::sleep(Duration::from_secs(1));
        let out = run_keys(&dry, &env);
        if out.status.success() || Instant::now() > deadline {
            break out;
        }
        assert_says(&out, "cannot be retired yet");
    };
    assert!(out.status.success(), "{}", text(&out));
    assert_says(
        &out,
        &format!("would remove {} from key group", deployment.key_a),
    );
    assert_eq!(standin.group_size(&deployment), 2);
    let out = run_keys(&retire, &env);
    assert!(out.status.success(), "{}", text(&out));
    let state = standin.state(&deployment);
    assert_eq!(state["group"], json!([key_b]));
    assert!(
        !state["public_keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|key| key["id"] == deployment.key_a.as_str())
    );
    assert_eq!(state["ring"]["active"], key_b.as_str());
    assert_eq!(state["ring"]["keys"].as_array().unwrap().len(), 1);
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);

    for (player, thread) in players {
        thread.join().unwrap();
        let player = player.lock().unwrap();
        let refused = &player.refused;
        assert!(
            refused.is_empty(),
            "{} refused, first: {:?}",
            refused.len(),
            &refused[..refused.len().min(3)]
        );
        assert!(
            player.minted_by[&deployment.key_a] >= 5,
            "{:?}",
            player.minted_by
        );
        assert!(player.minted_by[&key_b] >= 5, "{:?}", player.minted_by);
        assert!(player.uses > 100, "{}", player.uses);
    }
    for replica in &replicas {
        let reloads = metric_if_present(
            &replica.metrics_blocking(),
            "cfmint_key_reloads_total{result=\"failed\"}",
        );
        assert_eq!(reloads.unwrap_or(0), 0);
    }
}

/// Where a run is cut short: the call that fails, after how many of its
/// kind went through, and whether it took effect before failing.
struct Cut {
    op: &'static str,
    skip: u32,
    lost: bool,
    step: &'static str,
}

const CUTS: [Cut; 8] = [
    Cut {
        op: "PutSecretValue",
        skip: 0,
        lost: false,
        step: "staging the new key",
    },
    Cut {
        op: "UpdateSecretVersionStage",
        skip: 0,
        lost: true,
        step: "staging (written, answer lost)",
    },
    Cut {
        op: "CreatePublicKey",
        skip: 0,
        lost: true,
        step: "uploading (created, answer lost)",
    },
    Cut {
        op: "PutSecretValue",
        skip: 1,
        lost: false,
        step: "recording the key pair id",
    },
    Cut {
        op: "UpdateKeyGroup",
        skip: 0,
        lost: true,
        step: "adding to the group (added, answer lost)",
    },
    Cut {
        op: "GetDistribution",
        skip: 1,
        lost: false,
        step: "waiting for the deployment",
    },
    Cut {
        op: "UpdateSecretVersionStage",
        skip: 2,
        lost: false,
        step: "activating",
    },
    Cut {
        op: "GetKeyGroup",
        skip: 1,
        lost: false,
        step: "reading the group again",
    },
];

#[test]
fn a_rotation_cut_short_at_any_step_finishes_when_run_again() {
    process_setup();
    let dir = tempfile::tempdir().unwrap();
    let standin = StandIn::start(0.5);
    let env = standin.env();
    for (n, cut) in CUTS.iter().enumerate() {
        let deployment = standin.deploy(dir.path(), &format!("cfmint/cut-{n}"));
        let config = deployment.config();
        let rotate = deployment.keys_args(&config, "rotate");
        standin.fault(cut.op, cut.skip, cut.lost);
        let first = run_keys(&rotate, &env);
        assert_eq!(
            first.status.code(),
            Some(2),
            "{}: {}",
            cut.step,
            text(&first)
        );
        assert!(
            text(&first).contains("injected fault"),
            "{}: {}",
            cut.step,
            text(&first)
        );
        let again = run_keys(&rotate, &env);
        assert!(
            again.status.success(),
            "{}: {}\nthen {}",
            cut.step,
            text(&first),
            text(&again)
        );
        check_rotated(&standin.state(&deployment), &deployment, cut.step);
    }
}

/// A rotation that finished: the group trusts A and one new key B, B
/// signs, A retires, and CloudFront holds B's public key once.
fn check_rotated(state: &Value, deployment: &Deployment, step: &str) {
    let ring = &state["ring"];
    let b = ring["active"].as_str().unwrap();
    assert_ne!(b, deployment.key_a, "{step}: {state}");
    assert_eq!(state["group"], json!([deployment.key_a, b]), "{step}");
    let keys = ring["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{step}: {ring:?}");
    assert!(ring.get("pending").is_none(), "{step}");
    assert!(ring.get("next").is_none(), "{step}");
    let a = keys
        .iter()
        .find(|key| key["id"] == deployment.key_a.as_str())
        .unwrap();
    assert!(a["inactive_since"].is_string(), "{step}");
    let b_pem = &state["public_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["id"] == b)
        .unwrap()["encoded_key"];
    let twins = state["public_keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|key| &key["encoded_key"] == b_pem)
        .count();
    assert_eq!(twins, 1, "{step}: B was uploaded twice");
}

#[test]
fn a_rotation_that_gave_up_on_the_replicas_finishes_when_run_again() {
    process_setup();
    let dir = tempfile::tempdir().unwrap();
    let standin = StandIn::start(0.2);
    let env = standin.env();
    let deployment = standin.deploy(dir.path(), "cfmint/replica-wait");
    let config = deployment.config();
    // The replica reads the ring only when told (SIGHUP), so it is still
    // behind whenever the second run looks, however slow the machine.
    let mut replica_env = env.clone();
    replica_env.push(("CFMINT__KEYS__SECRET_POLL_INTERVAL", "1h".into()));
    let replica = ServeProcess::with_config(&config, &env_refs(&replica_env));
    let mut rotate = deployment.keys_args(&config, "rotate");
    rotate.extend(["--replica".into(), format!("http://{}", replica.admin)]);
    let mut impatient = rotate.clone();
    impatient.extend(["--replica-timeout".into(), "0s".into()]);
    let first = run_keys(&impatient, &env);
    assert_eq!(first.status.code(), Some(2), "{}", text(&first));
    assert_says(&first, "gave up waiting for the replicas");
    let again = run_keys_then(&rotate, &env, "finishing the rotation to", || {
        replica.signal("HUP");
    });
    assert!(again.status.success(), "{}", text(&again));
    assert_says(&again, "finishing the rotation to");
    let state = standin.state(&deployment);
    check_rotated(&state, &deployment, "replicas");
    assert_eq!(admin_keys(&replica)["active"], state["ring"]["active"]);
}

#[test]
fn dry_runs_change_nothing_and_a_full_group_stops_before_anything_is_made() {
    process_setup();
    let dir = tempfile::tempdir().unwrap();
    let standin = StandIn::start(0.1);
    let env = standin.env();
    let deployment = standin.deploy(dir.path(), "cfmint/quota");
    let config = deployment.config();
    let before = standin.state(&deployment);
    let mut dry = deployment.keys_args(&config, "rotate");
    dry.push("--dry-run".into());
    let out = run_keys(&dry, &env);
    assert!(out.status.success(), "{}", text(&out));
    assert_says(&out, "[4/7] would add it to the key group");
    assert_eq!(standin.state(&deployment), before);

    // Four rotations fill the group (A and four more); the fifth is refused
    // before a key is made, naming the oldest key that can go.
    let rotate = deployment.keys_args(&config, "rotate");
    for _ in 0..4 {
        let out = run_keys(&rotate, &env);
        assert!(out.status.success(), "{}", text(&out));
    }
    let full = standin.state(&deployment);
    assert_eq!(full["group"].as_array().unwrap().len(), 5);
    let out = run_keys(&rotate, &env);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let message = text(&out);
    assert!(message.contains("already holds 5 public keys"), "{message}");
    assert!(
        message.contains(&format!("the oldest retiring key is {}", deployment.key_a)),
        "{message}"
    );
    assert_eq!(standin.state(&deployment), full, "nothing was made");

    // Retiring the active key is refused whatever its age.
    let active = full["ring"]["active"].as_str().unwrap().to_owned();
    let mut retire = deployment.keys_args(&config, "retire");
    retire.extend([
        "--key-pair-id".into(),
        active,
        "--margin".into(),
        "0s".into(),
    ]);
    let out = run_keys(&retire, &env);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_says(&out, "is the active key");

    let mut status = deployment.keys_args(&config, "status");
    status.extend(["--margin".into(), "0s".into()]);
    let out = run_keys(&status, &env);
    assert!(out.status.success(), "{}", text(&out));
    let report = text(&out);
    assert!(report.contains("5 of 5 keys"), "{report}");
    assert_eq!(report.matches(" retiring ").count(), 4, "{report}");
    assert_eq!(report.matches(" active ").count(), 1, "{report}");
    assert!(report.contains("Deployed"), "{report}");
}

/// Writes a new version of the secret through Secrets Manager's API.
fn put_secret(standin: &Aws, name: &str, text: &str) {
    let script = format!(
        "import boto3, sys\n\
         boto3.client('secretsmanager', endpoint_url='{}', region_name='us-east-1',\n\
             aws_access_key_id='testing', aws_secret_access_key='testing'\n\
         ).put_secret_value(SecretId='{name}', SecretString=sys.stdin.read())",
        standin.url("")
    );
    let mut child = Command::new("python3")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// A ring signing with `active`, holding A (from `deployment`) and `extra`.
fn ring_text(deployment: &Deployment, active: &str, extra: Option<(&str, &Path)>) -> String {
    let pem_a = std::fs::read_to_string(
        deployment
            .dir
            .join(format!("{}-a/private.pem", deployment.secret)),
    )
    .unwrap();
    let mut keys = vec![json!({ "id": deployment.key_a, "private_key": pem_a })];
    if let Some((id, pem)) = extra {
        keys.push(json!({ "id": id, "private_key": std::fs::read_to_string(pem).unwrap() }));
    }
    json!({ "active": active, "keys": keys }).to_string()
}

fn reloads(serve: &ServeProcess, result: &str) -> u64 {
    metric_if_present(
        &serve.metrics_blocking(),
        &format!("cfmint_key_reloads_total{{result=\"{result}\"}}"),
    )
    .unwrap_or(0)
}

#[test]
fn a_new_version_of_the_secret_reloads_and_a_bad_one_is_refused_once_while_the_old_keys_sign() {
    process_setup();
    let dir = tempfile::tempdir().unwrap();
    let standin = StandIn::start(0.1);
    let env = standin.env();
    let deployment = standin.deploy(dir.path(), "cfmint/poll");
    let config = deployment.config();
    let mut replica = ServeProcess::with_config(&config, &env_refs(&env));
    let first = admin_keys(&replica);
    assert_eq!(first["active"], deployment.key_a.as_str());
    assert_eq!(first["ring_source"], "secret cfmint/poll");
    assert!(first["ring_version"].is_string());
    assert!(!first.to_string().contains("PRIVATE"), "{first}");

    // A new version signing with B: every replica takes it within the poll interval.
    let b_dir = dir.path().join("b");
    keygen(&b_dir, "ecdsa");
    let b_pem = b_dir.join("private.pem");
    put_secret(
        &standin,
        &deployment.secret,
        &ring_text(&deployment, "KNEWKEYB", Some(("KNEWKEYB", &b_pem))),
    );
    wait_for(
        "the replica to sign with B",
        Duration::from_secs(10),
        || admin_keys(&replica)["active"] == "KNEWKEYB",
    );
    assert_eq!(reloads(&replica, "ok"), 1);
    assert_ne!(admin_keys(&replica)["ring_version"], first["ring_version"]);

    // A bad version (B's key under another id as the active one, then not
    // JSON at all): refused once each, and B keeps signing.
    put_secret(
        &standin,
        &deployment.secret,
        r#"{"active": "KGONE", "keys": []}"#,
    );
    wait_for("the refusal", Duration::from_secs(10), || {
        reloads(&replica, "failed") == 1
    });
    put_secret(
        &standin,
        &deployment.secret,
        "{\"active\": -----BEGIN PRIVATE KEY-----",
    );
    wait_for("the second refusal", Duration::from_secs(10), || {
        reloads(&replica, "failed") == 2
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        reloads(&replica, "failed"),
        2,
        "a refused version is not retried every poll"
    );
    assert_eq!(admin_keys(&replica)["active"], "KNEWKEYB");
    let mut player = Player::new(&replica);
    let minted = player
        .client
        .post(&player.mint_url)
        .json(&json!({ "path": "/users/alice/" }))
        .send()
        .unwrap();
    assert_eq!(minted.status(), 200);
    let header = crate::harness::cloudfront_cookie_header(minted.headers());
    assert_eq!(cookie_value(&header, "CloudFront-Key-Pair-Id"), "KNEWKEYB");
    let log = replica.drain_log();
    assert!(
        log.contains("key reload refused; the previous keys keep signing"),
        "{log}"
    );
    assert!(
        !log.contains("BEGIN PRIVATE KEY"),
        "the log shows no key material"
    );

    // A good version again is taken.
    put_secret(
        &standin,
        &deployment.secret,
        &ring_text(&deployment, &deployment.key_a, None),
    );
    wait_for(
        "the replica to sign with A again",
        Duration::from_secs(10),
        || admin_keys(&replica)["active"] == deployment.key_a.as_str(),
    );

    // Secrets Manager gone: counted and logged, and the keys sign on.
    drop(standin);
    wait_for("an unreachable poll", Duration::from_secs(20), || {
        reloads(&replica, "unreachable") >= 1
    });
    let minted = player
        .client
        .post(&player.mint_url)
        .json(&json!({ "path": "/users/alice/" }))
        .send()
        .unwrap();
    assert_eq!(minted.status(), 200);
    player.held.clear();
}

#[test]
fn a_ring_file_is_read_at_start_polled_and_rotated_like_the_secret() {
    process_setup();
    let dir = tempfile::tempdir().unwrap();
    let standin = StandIn::start(0.2);
    let env = standin.env();
    let deployment = standin.deploy(dir.path(), "cfmint/file");
    // The same ring, in a file instead of the secret.
    let ring = dir.path().join("ring.json");
    std::fs::write(&ring, ring_text(&deployment, &deployment.key_a, None)).unwrap();
    let config = deployment.config();
    let edited = std::fs::read_to_string(&config).unwrap().replace(
        "secret_id = \"cfmint/file\"",
        &format!("ring_file = \"{}\"", ring.display()),
    );
    std::fs::write(&config, edited).unwrap();
    let replica = ServeProcess::with_config(&config, &env_refs(&env));
    assert_eq!(
        admin_keys(&replica)["ring_source"],
        format!("file {}", ring.display())
    );
    let mut rotate = deployment.keys_args(&config, "rotate");
    rotate.extend(["--replica".into(), format!("http://{}", replica.admin)]);
    let out = run_keys(&rotate, &env);
    assert!(out.status.success(), "{}", text(&out));
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&ring).unwrap()).unwrap();
    let b = written["active"].as_str().unwrap();
    assert_ne!(b, deployment.key_a);
    assert_eq!(admin_keys(&replica)["active"], b);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&ring).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the ring file is private: {mode:o}");
}

#[test]
fn two_rotations_at_once_make_one_new_key_and_the_loser_changes_nothing() {
    process_setup();
    let dir = tempfile::tempdir().unwrap();
    let standin = StandIn::start(0.5);
    let env = standin.env();
    for round in 0..3 {
        let deployment = standin.deploy(dir.path(), &format!("cfmint/race-{round}"));
        let config = deployment.config();
        let rotate = deployment.keys_args(&config, "rotate");
        let runs: Vec<_> = (0..2)
            .map(|_| {
                let (rotate, env) = (rotate.clone(), env.clone());
                std::thread::spawn(move || run_keys(&rotate, &env))
            })
            .collect();
        let outputs: Vec<Output> = runs.into_iter().map(|run| run.join().unwrap()).collect();
        assert!(
            outputs.iter().any(|out| out.status.success()),
            "{}\n{}",
            text(&outputs[0]),
            text(&outputs[1])
        );
        for out in &outputs {
            if !out.status.success() {
                assert!(
                    text(out).contains("after it was read"),
                    "a run that lost says so: {}",
                    text(out)
                );
            }
        }
        check_rotated(&standin.state(&deployment), &deployment, "two at once");
    }
}

#[cfg(feature = "aws-kms")]
#[test]
fn rotate_takes_a_given_pem_key_or_kms_key_and_the_replica_signs_with_it() {
    process_setup();
    let dir = tempfile::tempdir().unwrap();
    let standin = StandIn::start(0.2);
    let env = standin.env();
    let deployment = standin.deploy(dir.path(), "cfmint/take");
    let config = deployment.config();
    let replica = ServeProcess::with_config(&config, &env_refs(&env));
    let mut rotate = deployment.keys_args(&config, "rotate");
    rotate.extend(["--replica".into(), format!("http://{}", replica.admin)]);

    // A PEM made elsewhere: copied into the ring, its public key uploaded.
    let given = dir.path().join("given");
    keygen(&given, "ecdsa");
    let mut take_pem = rotate.clone();
    take_pem.extend([
        "--private-key".into(),
        given.join("private.pem").to_str().unwrap().into(),
    ]);
    let out = run_keys(&take_pem, &env);
    assert!(out.status.success(), "{}", text(&out));
    let state = standin.state(&deployment);
    let pem_id = state["ring"]["active"].as_str().unwrap();
    let uploaded = state["public_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["id"] == pem_id)
        .unwrap()["encoded_key"]
        .as_str()
        .unwrap();
    let public = std::fs::read_to_string(given.join("public.pem")).unwrap();
    let squeezed = |pem: &str| pem.split_whitespace().collect::<String>();
    assert_eq!(squeezed(uploaded), squeezed(&public));

    // A key in KMS: the ring holds its id; the replica signs through KMS,
    // and the cookies verify with the keys the group trusts.
    let arn = standin._moto.create_kms_key("ECC_NIST_P256");
    let mut take_kms = rotate.clone();
    take_kms.extend(["--kms-key-id".into(), arn.clone()]);
    let out = run_keys(&take_kms, &env);
    assert!(out.status.success(), "{}", text(&out));
    let state = standin.state(&deployment);
    let kms_id = state["ring"]["active"].as_str().unwrap().to_owned();
    let entry = state["ring"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["id"] == kms_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(entry["kms_key_id"], arn.as_str());
    assert!(entry.get("private_key").is_none());
    assert_eq!(admin_keys(&replica)["active"], kms_id.as_str());
    let mut player = Player::new(&replica);
    player.step(&standin, &deployment.group);
    assert!(player.refused.is_empty(), "{:?}", player.refused);
    assert_eq!(player.minted_by[&kms_id], 1);
}

#[test]
fn a_secret_that_cannot_be_read_at_start_stops_serve_naming_it() {
    process_setup();
    let dir = tempfile::tempdir().unwrap();
    let standin = StandIn::start(0.1);
    let env = standin.env();
    let deployment = standin.deploy(dir.path(), "cfmint/present");
    let config = deployment.config();
    let missing = dir.path().join("missing.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("cfmint/present", "cfmint/absent");
    std::fs::write(&missing, text).unwrap();
    let out = cfmint_with_env(&["serve", "--config", missing.to_str().unwrap()], &env);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("keys.secret_id cfmint/absent"), "{stderr}");
    assert!(stderr.contains("ResourceNotFoundException"), "{stderr}");

    // A secret holding something else than a key ring: named, not echoed.
    put_secret(
        &standin,
        "cfmint/present",
        "-----BEGIN PRIVATE KEY-----\nMIIE\n",
    );
    let out = cfmint_with_env(&["serve", "--config", config.to_str().unwrap()], &env);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("keys.secret_id cfmint/present"), "{stderr}");
    assert!(!stderr.contains("MIIE"), "{stderr}");
}

#[test]
fn a_hand_written_ring_with_an_old_key_is_not_taken_for_a_rotation_under_way() {
    process_setup();
    let dir = tempfile::tempdir().unwrap();
    let standin = StandIn::start(0.1);
    let env = standin.env();
    let deployment = standin.deploy(dir.path(), "cfmint/migrated");
    let old = dir.path().join("old");
    keygen(&old, "rsa");
    let ring = ring_text(
        &deployment,
        &deployment.key_a,
        Some(("KOLDEXTRA", &old.join("private.pem"))),
    );
    put_secret(&standin, &deployment.secret, &ring);
    let config = deployment.config();
    let out = run_keys(&deployment.keys_args(&config, "rotate"), &env);
    assert!(out.status.success(), "{}", text(&out));
    assert_says(&out, "[1/7] new key: staged");
    let state = standin.state(&deployment);
    let active = state["ring"]["active"].as_str().unwrap();
    assert!(
        active != "KOLDEXTRA" && active != deployment.key_a,
        "{state}"
    );
    let out = run_keys(&deployment.keys_args(&config, "status"), &env);
    let report = text(&out);
    let line = report
        .lines()
        .find(|line| line.contains("KOLDEXTRA"))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(line.contains("retiring"), "{line}");
    assert!(line.contains("not in the key group"), "{line}");
}
