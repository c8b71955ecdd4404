//! `cfmint cloudfront check` against distributions made through the
//! CloudFront API: moto holds distributions, key groups and public keys, the
//! stand-in (harness/aws_standin.py) the cache, origin request and response
//! headers policies, in the API's own shapes. Each case starts from a
//! correct deployment, breaks one thing, and expects exactly the findings
//! that thing causes: from the documents saved as the AWS CLI saves them,
//! and (with the `aws-cloudfront` feature) through the API, which must agree.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::harness::aws::Moto;
use crate::harness::{ServeProcess, cfmint, fixtures};
use cfmint::signer::{Backend, KeySpec};

/// The origin-lock secret of the correct deployment.
const SECRET: &str = "origin-lock-secret-that-must-never-be-printed";

const SETUP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/service/harness/cloudfront_setup.py"
);

/// A key pair for the deployment, by name.
struct TestKey {
    name: &'static str,
    private_pem: PathBuf,
    public_pem: String,
}

fn keys(dir: &Path, names: &[&'static str]) -> Vec<TestKey> {
    names
        .iter()
        .map(|&name| {
            let generated = Backend::default().generate(KeySpec::EcdsaP256).unwrap();
            let private_pem = dir.join(format!("{name}.pem"));
            std::fs::write(&private_pem, generated.private_pem.as_bytes()).unwrap();
            TestKey {
                name,
                private_pem,
                public_pem: generated.public_pem,
            }
        })
        .collect()
}

/// A behavior in the API's shape for cfmint's routes.
fn cfmint_behavior(pattern: &str) -> Value {
    json!({
        "PathPattern": pattern,
        "TargetOriginId": "cfmint",
        "ViewerProtocolPolicy": "https-only",
        "AllowedMethods": {
            "Quantity": 7,
            "Items": ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"],
            "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]}
        },
        "CachePolicyId": "@cache:none",
        "OriginRequestPolicyId": "@origin-request:cfmint"
    })
}

/// A restricted behavior for content.
fn content_behavior(pattern: Option<&str>) -> Value {
    let mut behavior = json!({
        "TargetOriginId": "content",
        "ViewerProtocolPolicy": "redirect-to-https",
        "TrustedKeyGroups": {"Enabled": true, "Quantity": 1, "Items": ["@group:cfmint"]},
        "CachePolicyId": "@cache:content",
        "ResponseHeadersPolicyId": "@response-headers:cors"
    });
    if let Some(pattern) = pattern {
        behavior["PathPattern"] = json!(pattern);
    }
    behavior
}

fn cache_policy(name: &str, cookies: Value) -> Value {
    json!({
        "Name": name, "MinTTL": 0, "DefaultTTL": 86400, "MaxTTL": 31536000,
        "ParametersInCacheKeyAndForwardedToOrigin": {
            "EnableAcceptEncodingGzip": true,
            "HeadersConfig": {"HeaderBehavior": "none"},
            "CookiesConfig": cookies,
            "QueryStringsConfig": {"QueryStringBehavior": "none"}
        }
    })
}

/// A deployment that checks clean: cfmint's routes on unrestricted
/// behaviors to its locked origin, the audiobooks and everything else
/// restricted to the key group, CORS for the app.
fn correct() -> (Value, Value) {
    let spec = json!({
        "key_groups": {"cfmint": ["main"]},
        "cache_policies": {
            "content": cache_policy("content", json!({"CookieBehavior": "none"})),
            "none": cache_policy("none", json!({"CookieBehavior": "none"}))
        },
        "origin_request_policies": {
            "cfmint": {
                "Name": "cfmint",
                "HeadersConfig": {"HeaderBehavior": "allViewerAndWhitelistCloudFront",
                                  "Headers": {"Quantity": 1, "Items": ["CloudFront-Viewer-Address"]}},
                "CookiesConfig": {"CookieBehavior": "whitelist",
                                  "Cookies": {"Quantity": 1, "Items": ["cfmint_session"]}},
                "QueryStringsConfig": {"QueryStringBehavior": "all"}
            }
        },
        "response_headers_policies": {
            "cors": {
                "Name": "cors",
                "CorsConfig": {
                    "AccessControlAllowOrigins": {"Quantity": 1, "Items": ["https://app.example.com"]},
                    "AccessControlAllowHeaders": {"Quantity": 1, "Items": ["*"]},
                    "AccessControlAllowMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]},
                    "AccessControlAllowCredentials": true,
                    "OriginOverride": true
                }
            }
        },
        "distribution": {
            "CallerReference": "cfmint-check",
            "Comment": "cfmint cloudfront check",
            "Enabled": true,
            "IsIPV6Enabled": false,
            "Aliases": {"Quantity": 1, "Items": ["cdn.example.com"]},
            "Origins": {"Quantity": 2, "Items": [
                {"Id": "content", "DomainName": "content.example.com",
                 "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only"}},
                {"Id": "cfmint", "DomainName": "cfmint.example.com",
                 "CustomHeaders": {"Quantity": 1, "Items": [{"HeaderName": "X-Origin-Verify", "HeaderValue": SECRET}]},
                 "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only"}}
            ]},
            "CacheBehaviors": {"Quantity": 4, "Items": [
                cfmint_behavior("/login*"),
                cfmint_behavior("/mint"),
                cfmint_behavior("/logout"),
                content_behavior(Some("/audiobooks/*"))
            ]},
            "DefaultCacheBehavior": content_behavior(None)
        }
    });
    let config = json!({
        "server": {
            "listen": "127.0.0.1:0",
            "admin_listen": "127.0.0.1:0",
            "trusted_proxies": ["130.176.0.0/16"],
            "origin_header": "x-origin-verify"
        },
        "cloudfront": {"base_url": "https://cdn.example.com"},
        "mint": {"ip_binding": true},
        "grants": [{"paths": ["/audiobooks/{sub}/*"]}],
        "cors": {"allowed_origins": ["https://app.example.com"]}
    });
    (spec, config)
}

/// One check's result: the findings' codes, the JSON report, and both
/// outputs as printed (for what must never appear in them).
struct Checked {
    codes: Vec<String>,
    report: Value,
    printed: String,
}

/// The stand-in, and what every case needs from it.
struct Bench {
    moto: Moto,
    dir: tempfile::TempDir,
}

/// A distribution made on the stand-in, and its documents as saved.
struct Made {
    distribution_id: String,
    key_ids: Value,
    domain_name: String,
    /// `(file name, path)` of each saved document.
    saved: Vec<(String, PathBuf)>,
    dir: tempfile::TempDir,
}

impl Made {
    fn key_id(&self, key: &TestKey) -> String {
        self.key_ids[key.name]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("KNOTUPLOADED{}", key.name.to_uppercase()))
    }

    /// `--saved` for every document but those whose name starts with `except`.
    fn saved_args(&self, except: &str) -> Vec<String> {
        self.saved
            .iter()
            .filter(|(name, _)| except.is_empty() || !name.starts_with(except))
            .flat_map(|(_, path)| ["--saved".to_owned(), path.display().to_string()])
            .collect()
    }

    /// cfmint's configuration: `config` with `keys` (the first signing)
    /// and the fixtures' users file.
    fn config(&self, config: &Value, keys: &[&TestKey]) -> PathBuf {
        let mut config = config.clone();
        config["keys"] = json!({
            "active": self.key_id(keys[0]),
            "key": keys.iter().map(|k| json!({"id": self.key_id(k), "file": k.private_pem})).collect::<Vec<_>>()
        });
        config["auth"] = json!({"users": {"file": fixtures().users_file}});
        if config["cloudfront"]["base_url"] == "DISTRIBUTION_DOMAIN" {
            config["cloudfront"]["base_url"] = json!(format!("https://{}", self.domain_name));
        }
        write(
            self.dir.path(),
            "cfmint.toml",
            &toml::to_string(&config).unwrap(),
        )
    }
}

impl Bench {
    fn start() -> Self {
        Self {
            moto: Moto::start(0.0),
            dir: tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap(),
        }
    }

    /// Makes the distribution `spec` describes, with `keys` uploaded as
    /// CloudFront public keys, and saves its documents.
    fn make(&self, spec: &Value, keys: &[&TestKey]) -> Made {
        let dir = tempfile::tempdir_in(self.dir.path()).unwrap();
        let mut spec = spec.clone();
        spec["endpoint"] = json!(self.moto.url(""));
        spec["public_keys"] = keys
            .iter()
            .map(|k| (k.name.to_owned(), json!(k.public_pem)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        let spec_file = write(dir.path(), "spec.json", &spec.to_string());
        let made: Value = serde_json::from_str(&crate::harness::output_of(
            Command::new("python3")
                .arg(SETUP)
                .stdin(std::fs::File::open(spec_file).unwrap()),
        ))
        .unwrap();
        let saved = made["saved"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, document)| (name.clone(), write(dir.path(), name, &document.to_string())))
            .collect();
        Made {
            distribution_id: made["distribution_id"].as_str().unwrap().to_owned(),
            key_ids: made["key_ids"].clone(),
            domain_name: made["saved"]["distribution.json"]["Distribution"]["DomainName"]
                .as_str()
                .unwrap()
                .to_owned(),
            saved,
            dir,
        }
    }

    /// The AWS environment that points the SDK at the stand-in.
    fn aws_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.moto.url("")),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
        ]
    }

    /// Makes the distribution with `cloudfront_keys` uploaded, gives cfmint
    /// `cfmint_keys`, and checks: from the saved documents, and through the
    /// API, which must find the same.
    fn check(
        &self,
        spec: &Value,
        config: &Value,
        cloudfront_keys: &[&TestKey],
        cfmint_keys: &[&TestKey],
    ) -> Checked {
        let made = self.make(spec, cloudfront_keys);
        let config = made.config(config, cfmint_keys);
        let offline = run(&config, &made.saved_args(""), &[]);
        if cfg!(feature = "aws-cloudfront") {
            let source = ["--distribution-id".to_owned(), made.distribution_id.clone()];
            let api = run(&config, &source, &self.aws_env());
            assert_eq!(
                api.report["findings"], offline.report["findings"],
                "the API and the saved documents disagree"
            );
            assert_eq!(api.report["notes"], offline.report["notes"]);
        }
        offline
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `cfmint cloudfront check` with `--json` and without; exit 0 when clean,
/// 1 with findings, and the same findings both ways.
fn run(config: &Path, source: &[String], env: &[(&str, String)]) -> Checked {
    let command = |json: bool| {
        let mut command = cfmint();
        command
            .args(["cloudfront", "check", "--config"])
            .arg(config)
            .args(source)
            .env("CFMINT__SERVER__ORIGIN_SECRET", SECRET)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        if json {
            command.arg("--json");
        }
        command.output().unwrap()
    };
    let json = command(true);
    let human = command(false);
    let stderr = String::from_utf8_lossy(&json.stderr).into_owned();
    let report: Value = serde_json::from_slice(&json.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {stderr}"));
    let codes: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect();
    let expected_exit = if codes.is_empty() { 0 } else { 1 };
    assert_eq!(json.status.code(), Some(expected_exit), "{stderr}");
    assert_eq!(human.status.code(), Some(expected_exit));
    let human_text = String::from_utf8_lossy(&human.stdout).into_owned();
    for code in &codes {
        assert!(
            human_text.contains(&format!("problem [{code}]")),
            "{human_text}"
        );
    }
    let printed = [
        String::from_utf8_lossy(&json.stdout).into_owned(),
        stderr,
        human_text,
        String::from_utf8_lossy(&human.stderr).into_owned(),
    ]
    .concat();
    assert!(
        !printed.contains(SECRET),
        "the origin-lock secret was printed"
    );
    Checked {
        codes,
        report,
        printed,
    }
}

/// Applies `change` to the correct deployment; the findings must be `expected`.
struct Case {
    name: &'static str,
    change: fn(&mut Value, &mut Value),
    expected: &'static [&'static str],
}

fn behavior<'a>(spec: &'a mut Value, pattern: &str) -> &'a mut Value {
    if pattern == "*" {
        return &mut spec["distribution"]["DefaultCacheBehavior"];
    }
    spec["distribution"]["CacheBehaviors"]["Items"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|b| b["PathPattern"] == pattern)
        .unwrap()
}

fn set_behaviors(spec: &mut Value, items: Vec<Value>) {
    spec["distribution"]["CacheBehaviors"] = json!({"Quantity": items.len(), "Items": items});
}

/// Runs every case on one stand-in, each on a distribution of its own.
fn cases(cases: &[Case]) -> Vec<Checked> {
    let bench = Bench::start();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let main = &keys(dir.path(), &["main"])[0];
    cases
        .iter()
        .map(|case| {
            let (mut spec, mut config) = correct();
            (case.change)(&mut spec, &mut config);
            let checked = bench.check(&spec, &config, &[main], &[main]);
            assert_eq!(
                checked.codes, case.expected,
                "{}: {:#}",
                case.name, checked.report
            );
            checked
        })
        .collect()
}

#[test]
fn a_correct_distribution_checks_clean() {
    let checked = cases(&[Case {
        name: "correct",
        change: |_, _| {},
        expected: &[],
    }]);
    assert!(
        checked[0].printed.contains("no problem found"),
        "{}",
        checked[0].printed
    );
    assert_eq!(checked[0].report["notes"], json!([]));
}

#[test]
fn signed_paths_are_restricted_to_the_key_group() {
    let checked = cases(&[
        Case {
            name: "the audiobooks behavior unrestricted",
            change: |spec, _| {
                behavior(spec, "/audiobooks/*")["TrustedKeyGroups"] =
                    json!({"Enabled": false, "Quantity": 0});
            },
            expected: &["unrestricted-path"],
        },
        Case {
            name: "an unrestricted behavior before it",
            change: |spec, _| {
                let mut items = spec["distribution"]["CacheBehaviors"]["Items"]
                    .as_array()
                    .unwrap()
                    .clone();
                let mut audio = content_behavior(Some("/audio*"));
                audio["TrustedKeyGroups"] = json!({"Enabled": false, "Quantity": 0});
                items.insert(3, audio);
                set_behaviors(spec, items);
            },
            expected: &["unrestricted-path"],
        },
        Case {
            name: "a grant of everything, cfmint's routes included",
            change: |_, config| config["grants"] = json!([{"paths": ["/*"]}]),
            expected: &[],
        },
        Case {
            name: "legacy trusted signers",
            change: |spec, _| {
                let b = behavior(spec, "/audiobooks/*");
                b["TrustedKeyGroups"] = json!({"Enabled": false, "Quantity": 0});
                b["TrustedSigners"] = json!({"Enabled": true, "Quantity": 1, "Items": ["self"]});
            },
            expected: &["legacy-trusted-signers"],
        },
        Case {
            name: "plain HTTP allowed",
            change: |spec, _| {
                behavior(spec, "/audiobooks/*")["ViewerProtocolPolicy"] = json!("allow-all");
            },
            expected: &["viewer-http"],
        },
    ]);
    let shadowed = &checked[1].report["findings"][0]["problem"];
    assert!(
        shadowed
            .as_str()
            .unwrap()
            .contains("comes before behavior #5 \"/audiobooks/*\""),
        "{shadowed}"
    );
}

#[test]
fn hosts_and_the_cookie_domain() {
    cases(&[
        Case {
            name: "base_url not an alias",
            change: |_, config| {
                config["cloudfront"]["base_url"] = json!("https://media.example.com")
            },
            expected: &["base-url-not-alias"],
        },
        Case {
            name: "base_url on cloudfront.net",
            change: |_, config| config["cloudfront"]["base_url"] = json!("DISTRIBUTION_DOMAIN"),
            expected: &["cloudfront-net-cookies"],
        },
        Case {
            name: "a cookie domain that misses the distribution",
            change: |_, config| config["cloudfront"]["cookie_domain"] = json!("example.org"),
            expected: &["cookie-domain"],
        },
        Case {
            name: "a cookie domain broader than needed",
            change: |_, config| config["cloudfront"]["cookie_domain"] = json!("example.com"),
            expected: &["cookie-domain-broad"],
        },
    ]);
}

#[test]
fn cors_for_the_app_with_credentials() {
    fn cors(spec: &mut Value) -> &mut Value {
        &mut spec["response_headers_policies"]["cors"]["CorsConfig"]
    }
    cases(&[
        Case {
            name: "no response headers policy",
            change: |spec, _| {
                for pattern in ["/audiobooks/*", "*"] {
                    behavior(spec, pattern)
                        .as_object_mut()
                        .unwrap()
                        .remove("ResponseHeadersPolicyId");
                }
            },
            expected: &["cors-missing"],
        },
        Case {
            name: "the app's origin not allowed",
            change: |spec, _| {
                cors(spec)["AccessControlAllowOrigins"] =
                    json!({"Quantity": 1, "Items": ["https://other.example.com"]});
            },
            expected: &["cors-origin-missing"],
        },
        Case {
            name: "any origin with credentials",
            change: |spec, _| {
                cors(spec)["AccessControlAllowOrigins"] = json!({"Quantity": 1, "Items": ["*"]});
            },
            expected: &["cors-wildcard-credentials"],
        },
        Case {
            name: "no credentials",
            change: |spec, _| cors(spec)["AccessControlAllowCredentials"] = json!(false),
            expected: &["cors-no-credentials"],
        },
    ]);
}

#[test]
fn the_viewer_address_reaches_cfmint() {
    cases(&[
        Case {
            name: "IPv6 on with IP binding",
            change: |spec, _| spec["distribution"]["IsIPV6Enabled"] = json!(true),
            expected: &["ip-binding-ipv6"],
        },
        Case {
            name: "CloudFront-Viewer-Address not forwarded",
            change: |spec, _| {
                spec["origin_request_policies"]["cfmint"]["HeadersConfig"] =
                    json!({"HeaderBehavior": "allViewer"});
            },
            expected: &[
                "viewer-address-not-forwarded",
                "viewer-address-not-forwarded",
                "viewer-address-not-forwarded",
            ],
        },
        Case {
            name: "no trusted proxies",
            change: |_, config| config["server"]["trusted_proxies"] = json!([]),
            expected: &["trusted-proxies-empty"],
        },
    ]);
}

#[test]
fn the_origin_lock_is_compared_and_never_shown() {
    let checked = cases(&[
        Case {
            name: "no origin sends the header",
            change: |spec, _| {
                spec["distribution"]["Origins"]["Items"][1]
                    .as_object_mut()
                    .unwrap()
                    .remove("CustomHeaders");
            },
            expected: &["origin-lock-missing"],
        },
        Case {
            name: "the header with another value",
            change: |spec, _| {
                spec["distribution"]["Origins"]["Items"][1]["CustomHeaders"]["Items"][0]["HeaderValue"] =
                    json!("a-different-value-also-never-printed");
            },
            expected: &["origin-lock-mismatch"],
        },
    ]);
    assert!(
        !checked[1]
            .printed
            .contains("a-different-value-also-never-printed")
    );
}

#[test]
fn signed_cookies_stay_out_of_cache_keys_origins_and_logs() {
    cases(&[
        Case {
            name: "in the cache key",
            change: |spec, _| {
                spec["cache_policies"]["content"] = cache_policy(
                    "content",
                    json!({"CookieBehavior": "whitelist",
                           "Cookies": {"Quantity": 1, "Items": ["CloudFront-Signature"]}}),
                );
            },
            expected: &["signed-cookies-cached"],
        },
        Case {
            name: "forwarded to the content origin",
            change: |spec, _| {
                spec["origin_request_policies"]["everything"] = json!({
                    "Name": "everything",
                    "HeadersConfig": {"HeaderBehavior": "none"},
                    "CookiesConfig": {"CookieBehavior": "all"},
                    "QueryStringsConfig": {"QueryStringBehavior": "none"}
                });
                behavior(spec, "/audiobooks/*")["OriginRequestPolicyId"] =
                    json!("@origin-request:everything");
            },
            expected: &["signed-cookies-forwarded"],
        },
        Case {
            name: "logged",
            change: |spec, _| {
                spec["distribution"]["Logging"] = json!({
                    "Enabled": true, "IncludeCookies": true,
                    "Bucket": "logs.s3.amazonaws.com", "Prefix": "cdn/"
                });
            },
            expected: &["logging-cookies"],
        },
    ]);
}

#[test]
fn cfmint_routes_reach_cfmint() {
    cases(&[
        Case {
            name: "/mint restricted",
            change: |spec, _| {
                behavior(spec, "/mint")["TrustedKeyGroups"] =
                    json!({"Enabled": true, "Quantity": 1, "Items": ["@group:cfmint"]});
            },
            expected: &["cfmint-restricted"],
        },
        Case {
            name: "/mint without POST",
            change: |spec, _| {
                behavior(spec, "/mint")["AllowedMethods"] = json!({
                    "Quantity": 2, "Items": ["GET", "HEAD"],
                    "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]}
                });
            },
            expected: &["cfmint-methods"],
        },
    ]);
}

/// The key group read against cfmint's keys, compared by key, not by id.
#[test]
fn keys_are_compared_with_the_key_groups() {
    let bench = Bench::start();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let all = keys(dir.path(), &["main", "other", "third", "fourth"]);
    let [main, other, third, fourth] = [&all[0], &all[1], &all[2], &all[3]];
    let (spec, config) = correct();
    let with_group = |names: &[&str]| {
        let mut spec = spec.clone();
        spec["key_groups"]["cfmint"] = json!(names);
        spec
    };

    // The group trusts another key only.
    let checked = bench.check(
        &with_group(&["other"]),
        &config,
        &[main, other],
        &[main, other],
    );
    assert_eq!(checked.codes, ["key-not-trusted"], "{:#}", checked.report);

    // CloudFront holds other's public key under the id cfmint signs with.
    let impostor = TestKey {
        name: "main",
        private_pem: main.private_pem.clone(),
        public_pem: other.public_pem.clone(),
    };
    let checked = bench.check(&with_group(&["main"]), &config, &[&impostor], &[main]);
    assert_eq!(
        checked.codes,
        ["public-key-mismatch"],
        "{:#}",
        checked.report
    );

    // A key left in the group that cfmint no longer holds.
    let checked = bench.check(
        &with_group(&["main", "other"]),
        &config,
        &[main, other],
        &[main],
    );
    assert_eq!(checked.codes, ["unknown-key"], "{:#}", checked.report);

    // Four of five keys: one rotation from full.
    let checked = bench.check(
        &with_group(&["main", "other", "third", "fourth"]),
        &config,
        &[main, other, third, fourth],
        &[main, other, third, fourth],
    );
    assert_eq!(checked.codes, ["key-group-full"], "{:#}", checked.report);
}

/// What cannot be checked is said, with exit 2: a document missing (with
/// the command that saves it), a file that is not one, and (without the
/// feature) the API.
#[test]
fn what_cannot_be_checked_exits_2() {
    let bench = Bench::start();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let main = &keys(dir.path(), &["main"])[0];
    let (spec, config) = correct();
    let made = bench.make(&spec, &[main]);
    let config = made.config(&config, &[main]);
    let group = made
        .saved
        .iter()
        .find(|(name, _)| name.starts_with("key-group-"))
        .unwrap();
    let group_id = group
        .0
        .trim_start_matches("key-group-")
        .trim_end_matches(".json");
    let refused = |source: &[String]| {
        let output = cfmint()
            .args(["cloudfront", "check", "--config"])
            .arg(&config)
            .args(source)
            .env("CFMINT__SERVER__ORIGIN_SECRET", SECRET)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        assert!(output.stdout.is_empty());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = refused(&made.saved_args("key-group-"));
    assert!(
        stderr.contains(&format!("aws cloudfront get-key-group --id {group_id}")),
        "{stderr}"
    );
    let spec_file = made.dir.path().join("spec.json");
    let stderr = refused(&["--saved".to_owned(), spec_file.display().to_string()]);
    assert!(stderr.contains("spec.json"), "{stderr}");
    let mut source = made.saved_args("");
    source.extend(["--cfmint-url".to_owned(), "auth.example.com".to_owned()]);
    let stderr = refused(&source);
    assert!(stderr.contains("--cfmint-url"), "{stderr}");
    if !cfg!(feature = "aws-cloudfront") {
        let stderr = refused(&["--distribution-id".to_owned(), made.distribution_id.clone()]);
        assert!(stderr.contains("aws-cloudfront"), "{stderr}");
    }
}

const TEMPLATE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/cloudformation/cfmint-cloudfront.yaml"
);

const DEPLOY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/service/harness/cloudformation_deploy.py"
);

/// cfn-lint (its bundled schemas, offline) finds nothing in the template,
/// and does find a property CloudFront does not have.
#[test]
fn the_template_passes_cfn_lint() {
    let lint = |path: &Path| {
        Command::new("cfn-lint")
            .arg(path)
            .output()
            .expect("cfn-lint must be installed (scripts/test installs it from PyPI)")
    };
    let output = lint(Path::new(TEMPLATE));
    assert!(
        output.status.success() && output.stdout.is_empty(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let broken = std::fs::read_to_string(TEMPLATE)
        .unwrap()
        .replace("IPV6Enabled:", "IPv6Enabled:");
    let output = lint(&write(dir.path(), "broken.yaml", &broken));
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("IPv6Enabled"));
}

/// The template deployed (on the stand-in, as CloudFormation would make
/// it) with IP binding on and off: its outputs make a configuration that
/// `serve` runs with, origin lock included, and the distribution checks
/// clean against it.
#[test]
fn the_template_builds_a_distribution_that_checks_clean() {
    crate::harness::process_setup();
    let bench = Bench::start();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let key = &keys(dir.path(), &["cfmint"])[0];
    for ip_binding in ["true", "false"] {
        let parameters = json!({
            "PublicKeyPem": key.public_pem,
            "ContentOriginDomain": "content.example.com",
            "CfmintOriginDomain": "cfmint.example.com",
            "AliasDomain": "cdn.example.com",
            "CertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/1f2e3d4c",
            "AppOrigin": "https://app.example.com",
            "OriginSecret": SECRET,
            "IpBinding": ip_binding,
        });
        let parameters = write(dir.path(), "parameters.json", &parameters.to_string());
        let deployed: Value = serde_json::from_str(&crate::harness::output_of(
            Command::new("python3")
                .args([DEPLOY, TEMPLATE, &bench.moto.url("")])
                .arg(format!("cfmint-ip-binding-{ip_binding}"))
                .current_dir(Path::new(DEPLOY).parent().unwrap())
                .stdin(std::fs::File::open(&parameters).unwrap()),
        ))
        .unwrap();
        let outputs = &deployed["outputs"];
        let distribution = &deployed["saved"]["distribution.json"]["Distribution"];
        assert_eq!(
            distribution["DistributionConfig"]["IsIPV6Enabled"],
            json!(ip_binding == "false"),
            "IPv6 off exactly when binding"
        );

        // The configuration, from the outputs as docs/deploy.md maps them.
        let config = json!({
            "server": {
                "listen": "127.0.0.1:0",
                "admin_listen": "127.0.0.1:0",
                "trusted_proxies": ["130.176.0.0/16"],
                "origin_header": outputs["OriginHeader"]
            },
            "cloudfront": {"base_url": outputs["BaseUrl"], "cookie_domain": outputs["CookieDomain"]},
            "keys": {
                "active": outputs["KeyPairId"],
                "key": [{"id": outputs["KeyPairId"], "file": key.private_pem}]
            },
            "mint": {"ip_binding": outputs["IpBinding"] == "true"},
            "cors": {"allowed_origins": [outputs["AllowedOrigin"]]},
            "auth": {"users": {"file": fixtures().users_file}},
            "grants": [{"paths": ["/audiobooks/{sub}/*"]}]
        });
        let config = write(
            dir.path(),
            "cfmint.toml",
            &toml::to_string(&config).unwrap(),
        );
        let serve =
            ServeProcess::with_config(&config, &[("CFMINT__SERVER__ORIGIN_SECRET", SECRET)]);
        let client = reqwest::blocking::Client::new();
        let get = |header: Option<&str>| {
            let mut request = client.get(serve.url("/cfmint.js"));
            if let Some(value) = header {
                request = request.header(outputs["OriginHeader"].as_str().unwrap(), value);
            }
            request.send().unwrap().status().as_u16()
        };
        assert_eq!(
            client.get(serve.url("/readyz")).send().unwrap().status(),
            200
        );
        assert_eq!(
            get(Some(SECRET)),
            200,
            "CloudFront's origin header is accepted"
        );
        assert_eq!(get(None), 403, "the origin is locked");

        let saved: Vec<String> = deployed["saved"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(name, document)| {
                let path = write(dir.path(), name, &document.to_string());
                ["--saved".to_owned(), path.display().to_string()]
            })
            .collect();
        let cfmint_url = [
            "--cfmint-url".to_owned(),
            outputs["CfmintUrl"].as_str().unwrap().to_owned(),
        ];
        let offline = run(&config, &[saved, cfmint_url.to_vec()].concat(), &[]);
        assert_eq!(offline.codes, Vec::<String>::new(), "{:#}", offline.report);
        assert_eq!(offline.report["notes"], json!([]));
        if cfg!(feature = "aws-cloudfront") {
            let id = deployed["distribution_id"].as_str().unwrap().to_owned();
            let source = [
                vec!["--distribution-id".to_owned(), id],
                cfmint_url.to_vec(),
            ]
            .concat();
            let api = run(&config, &source, &bench.aws_env());
            assert_eq!(api.report["findings"], offline.report["findings"]);
        }
    }
}
