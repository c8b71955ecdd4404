//! `deploy/kubernetes/`: every manifest validates against the Kubernetes
//! schemas (`kubernetes-validate`, strict) for the version the docs state,
//! the kustomization lists them all, and the Deployment agrees with the
//! configuration it mounts and with what a hardened pod needs. (The
//! ConfigMap's configuration itself is run by `shipped`.)

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The Kubernetes version the manifests are validated for (docs/deploy.md).
const KUBERNETES: &str = "1.34.0";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes")
}

/// The documents of a YAML file, as JSON (PyYAML, which kubernetes-validate
/// brings).
fn load(name: &str) -> Vec<Value> {
    let output = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(dir().join(name))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The ConfigMap's `cfmint.toml`.
fn configuration() -> toml::Table {
    load("configmap.yaml")[0]["data"]["cfmint.toml"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn manifests_validate_against_the_kubernetes_schemas() {
    let kustomization = &load("kustomization.yaml")[0];
    let listed: Vec<String> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    let mut present: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    present.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(sorted, present, "the kustomization lists every manifest");

    let output = Command::new("kubernetes-validate")
        .args(["--strict", "--kubernetes-version", KUBERNETES])
        .args(&listed)
        .current_dir(dir())
        .output()
        .expect("kubernetes-validate must be installed (scripts/test installs it from PyPI)");
    let report = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{report}");
    for name in &listed {
        assert!(report.contains(&format!("INFO {name} passed")), "{report}");
    }
}

#[test]
fn the_deployment_is_hardened_and_mounts_what_its_configuration_names() {
    let deployment = &load("deployment.yaml")[0];
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 2);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["automountServiceAccountToken"], false);
    let container = &pod["containers"][0];
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"][0], "ALL");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    for kind in ["requests", "limits"] {
        assert!(container["resources"][kind]["memory"].is_string(), "{kind}");
    }

    // Readiness notices a drain before drain_delay ends; the grace period
    // covers drain_delay and shutdown_timeout.
    let config = configuration();
    let seconds = |key: &str| -> u64 {
        let text = config["server"][key].as_str().unwrap();
        humantime::parse_duration(text).unwrap().as_secs()
    };
    let probe = &container["readinessProbe"];
    let notice =
        probe["periodSeconds"].as_u64().unwrap() * probe["failureThreshold"].as_u64().unwrap();
    assert!(
        notice < seconds("drain_delay"),
        "readiness notices within the drain delay"
    );
    assert!(
        pod["terminationGracePeriodSeconds"].as_u64().unwrap()
            > seconds("drain_delay") + seconds("shutdown_timeout")
    );

    // Every file the configuration names lies in a mounted volume, and the
    // command line reads the mounted configuration.
    let mounts: Vec<&str> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    let mounted = |path: &str| mounts.iter().any(|m| path.starts_with(&format!("{m}/")));
    let key_file = config["keys"]["key"][0]["file"].as_str().unwrap();
    let users_file = config["auth"]["users"]["file"].as_str().unwrap();
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let config_path = args[args.iter().position(|a| *a == "--config").unwrap() + 1];
    for path in [key_file, users_file, config_path] {
        assert!(
            mounted(path),
            "{path} is not in a mounted volume: {mounts:?}"
        );
    }
    // The secrets the configuration leaves out come from the Secret.
    let env: Vec<&str> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    for name in [
        "CFMINT__SESSION__REDIS_URL",
        "CFMINT__SERVER__ORIGIN_SECRET",
        "CFMINT__SERVER__ADMIN_TOKEN",
    ] {
        assert!(env.contains(&name), "{name} not set: {env:?}");
    }
    // Ports the probes use are the admin listener's.
    let admin_port: u64 = config["server"]["admin_listen"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let admin = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "admin")
        .unwrap();
    assert_eq!(admin["containerPort"], admin_port);
    assert_eq!(probe["httpGet"]["port"], "admin");
}

/// The NetworkPolicy selects the Deployment's pods, opens the API port to
/// all, and the admin port (metrics, probes, revocation) only to the
/// monitoring namespace and pods labelled for administration; the ports it
/// names are the container's, and the init container checks the
/// configuration the server then runs.
#[test]
fn the_admin_port_is_reachable_only_from_monitoring_and_admin_pods() {
    let policy = &load("networkpolicy.yaml")[0];
    let deployment = &load("deployment.yaml")[0];
    let pod = &deployment["spec"]["template"];
    assert_eq!(
        policy["spec"]["podSelector"]["matchLabels"],
        pod["metadata"]["labels"]
    );
    assert_eq!(
        policy["spec"]["policyTypes"],
        serde_json::json!(["Ingress"])
    );
    let rules = policy["spec"]["ingress"].as_array().unwrap();
    assert_eq!(rules.len(), 2, "{rules:?}");
    let container = &pod["spec"]["containers"][0];
    let port_of = |name: &str| {
        container["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["containerPort"].clone())
            .unwrap_or_else(|| panic!("no container port {name}"))
    };
    assert_eq!(port_of("http"), 8080);
    assert_eq!(port_of("admin"), 9090);
    // The API: any peer, that port only.
    assert!(rules[0].get("from").is_none(), "{:?}", rules[0]);
    assert_eq!(
        rules[0]["ports"],
        serde_json::json!([{ "port": "http", "protocol": "TCP" }])
    );
    // The admin port: only the named peers.
    assert_eq!(
        rules[1]["ports"],
        serde_json::json!([{ "port": "admin", "protocol": "TCP" }])
    );
    let peers = rules[1]["from"].as_array().unwrap();
    assert_eq!(peers.len(), 2);
    assert_eq!(
        peers[0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "monitoring"
    );
    assert_eq!(
        peers[1]["podSelector"]["matchLabels"]["cfmint-admin"],
        "true"
    );
    // The admin port the policy guards is the one the configuration listens on.
    let config = configuration();
    assert!(
        config["server"]["admin_listen"]
            .as_str()
            .unwrap()
            .ends_with(":9090")
    );

    let init = &pod["spec"]["initContainers"][0];
    assert_eq!(
        init["args"],
        serde_json::json!(["check", "--config", "/etc/cfmint/config/cfmint.toml"])
    );
    for field in [
        "image",
        "env",
        "volumeMounts",
        "securityContext",
        "resources",
    ] {
        assert_eq!(init[field], container[field], "{field}");
    }
}
