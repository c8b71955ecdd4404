//! Every configuration the project ships or shows, run through the built
//! binary as a child process: each file under `config/`, each configuration
//! under `deploy/` (TOML files, and `cfmint.toml` in a ConfigMap) and each
//! TOML block in `README.md` and `docs/*.md`, found by this test itself. The files a
//! configuration names are made up here; listeners move to free loopback
//! ports. Each must serve (and stop cleanly on SIGTERM) or exit 2 with a
//! message naming the key; it never panics.

use crate::harness::docs::fenced_blocks;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cfmint::signer::{Backend, KeySpec};
use toml::{Table, Value};

use crate::harness::process::stderr_lines;
use crate::harness::{PASSWORD, cfmint, process_setup, raw_get};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A configuration as shown, and where it was found.
struct Shown {
    origin: String,
    text: String,
    /// The file name the docs give it ("With this `bad.toml`:").
    name: Option<String>,
}

/// A fenced block of a Markdown document.
/// `README.md`, then `docs/*.md`: (path relative to the root, text).
fn documents() -> Vec<(String, String)> {
    let mut paths = vec![Path::new(ROOT).join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|path| {
            let name = path.strip_prefix(ROOT).unwrap().display().to_string();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect()
}

/// `config/*.toml`, then every ```toml block in the README and docs/.
fn shown_configurations() -> Vec<Shown> {
    let mut found = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("config"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    for path in files {
        found.push(Shown {
            origin: path.strip_prefix(ROOT).unwrap().display().to_string(),
            text: std::fs::read_to_string(&path).unwrap(),
            name: None,
        });
    }
    for path in deploy_files() {
        let origin = path.strip_prefix(ROOT).unwrap().display().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        if path.extension().is_some_and(|e| e == "toml") {
            found.push(Shown {
                origin,
                text,
                name: None,
            });
            continue;
        }
        for (line, embedded) in embedded_configurations(&text) {
            found.push(Shown {
                origin: format!("{origin}:{line}"),
                text: embedded,
                name: None,
            });
        }
    }
    for (document, text) in documents() {
        for block in fenced_blocks(&text) {
            if block.language == "toml" {
                found.push(Shown {
                    origin: format!("{document}:{}", block.line),
                    text: block.text,
                    name: block.name,
                });
            }
        }
    }
    found
}

/// Every `.toml` and `.yaml` file under `deploy/`, sorted.
fn deploy_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path
                .extension()
                .is_some_and(|e| e == "toml" || e == "yaml" || e == "yml")
            {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&Path::new(ROOT).join("deploy"), &mut found);
    found.sort();
    found
}

/// The `cfmint.toml: |` blocks of a YAML file (a ConfigMap's data), with the
/// line they start on, unindented.
fn embedded_configurations(yaml: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut found = Vec::new();
    for (at, line) in lines.iter().enumerate() {
        let key = line.trim_start();
        if !(key.starts_with("cfmint.toml: |") || key.starts_with("\"cfmint.toml\": |")) {
            continue;
        }
        let outer = line.len() - key.len();
        let body: Vec<&str> = lines[at + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > outer)
            .copied()
            .collect();
        let indent = body
            .iter()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.len() - l.trim_start().len())
            .min()
            .unwrap_or(0);
        let text = body
            .iter()
            .map(|l| l.get(indent..).unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        found.push((at + 2, text));
    }
    found
}

/// Keys whose string values name files or directories.
const PATH_KEYS: [&str; 8] = [
    "file",
    "tls_cert",
    "tls_key",
    "redis_ca_file",
    "public_key_file",
    "jwks_file",
    "origin_dir",
    "users_file",
];

/// Makes up what one configuration refers to, inside `dir`, and points the
/// configuration there; listeners go to free loopback ports.
struct MadeUp {
    dir: PathBuf,
    tls: Option<(String, String)>,
    /// Keys read from the environment (`env = "NAME"`), with made-up PEMs.
    variables: Vec<(String, String)>,
}

impl MadeUp {
    fn walk(&mut self, table: &mut Table, section: &str) {
        let kind = match table.get("type").and_then(Value::as_str) {
            Some("ecdsa") => "ecdsa",
            _ => table_kind(section),
        };
        for (key, value) in table.iter_mut() {
            let here = if section.is_empty() {
                key.clone()
            } else {
                format!("{section}.{key}")
            };
            match value {
                Value::Table(inner) => self.walk(inner, &here),
                Value::Array(items) => {
                    for item in items.iter_mut() {
                        if let Value::Table(inner) = item {
                            self.walk(inner, &here);
                        }
                    }
                }
                Value::String(text)
                    if (key == "listen" || key == "admin_listen") && !text.is_empty() =>
                {
                    *text = "127.0.0.1:0".into();
                }
                Value::String(name) if key == "env" && section == "keys.key" => {
                    let key = Backend::default()
                        .generate(KeySpec::Rsa { bits: 2048 })
                        .unwrap();
                    self.variables
                        .push((name.clone(), key.private_pem.to_string()));
                }
                Value::String(text) if PATH_KEYS.contains(&key.as_str()) => {
                    let path = self.dir.join(text.trim_start_matches('/'));
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    self.make(&here, kind, &path);
                    *text = path.display().to_string();
                }
                _ => {}
            }
        }
    }

    fn make(&mut self, key: &str, kind: &str, path: &Path) {
        if path.exists() {
            return;
        }
        let backend = Backend::default();
        match key.rsplit('.').next().unwrap() {
            "origin_dir" => std::fs::create_dir_all(path).unwrap(),
            "tls_cert" | "tls_key" | "redis_ca_file" => {
                let (cert, key_pem) = self.tls.get_or_insert_with(|| {
                    cfmint::tls::self_signed(&["localhost".to_owned()]).unwrap()
                });
                let pem = if key.ends_with("tls_key") {
                    key_pem
                } else {
                    cert
                };
                std::fs::write(path, pem).unwrap();
            }
            "public_key_file" => {
                let key = backend.generate(KeySpec::Rsa { bits: 2048 }).unwrap();
                std::fs::write(path, key.public_pem).unwrap();
            }
            "jwks_file" => std::fs::write(path, r#"{"keys":[]}"#).unwrap(),
            "file" if kind == "users" => {
                cfmint::auth::users::add_user(path, "alice", PASSWORD, None).unwrap();
            }
            _ => {
                let spec = if kind == "ecdsa" {
                    KeySpec::EcdsaP256
                } else {
                    KeySpec::Rsa { bits: 2048 }
                };
                let key = backend.generate(spec).unwrap();
                std::fs::write(path, key.private_pem).unwrap();
            }
        }
    }
}

/// What a `file` in this section holds: a users file or a key.
fn table_kind(section: &str) -> &'static str {
    if section.ends_with("users") {
        "users"
    } else {
        "key"
    }
}

/// A fragment (no `cloudfront.base_url` and no `[edge]`) is shown as a
/// change to the embedded default; whole files stand alone.
fn complete(shown: &Table) -> Table {
    let base_url = shown
        .get("cloudfront")
        .and_then(Value::as_table)
        .is_some_and(|cloudfront| cloudfront.contains_key("base_url"));
    if base_url || shown.contains_key("edge") {
        return shown.clone();
    }
    let mut base: Table = cfmint::config::DEFAULT_TOML.parse().unwrap();
    merge(&mut base, shown);
    base
}

fn merge(base: &mut Table, over: &Table) {
    for (key, value) in over {
        match (base.get_mut(key), value) {
            (Some(Value::Table(into)), Value::Table(from)) => merge(into, from),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Environment variables a block tells the reader to set in place of a key
/// it leaves out, written as `# key: ... CFMINT__SECTION__KEY ...`.
fn mentioned_variables(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in text.lines() {
        let Some((key, rest)) = line
            .trim()
            .strip_prefix('#')
            .and_then(|c| c.split_once(':'))
        else {
            continue;
        };
        let key = key.trim();
        for word in rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            let names_the_key = word
                .rsplit("__")
                .next()
                .is_some_and(|last| last.eq_ignore_ascii_case(key));
            if word.starts_with("CFMINT__") && names_the_key {
                names.push(word.to_owned());
            }
        }
    }
    names
}

/// How a run ended.
enum Outcome {
    Served,
    Refused(String),
}

fn run_shown(shown: &Shown) -> Outcome {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let table: Table = shown
        .text
        .parse()
        .unwrap_or_else(|e| panic!("{}: not TOML: {e}", shown.origin));
    let mut table = complete(&table);
    let mut made_up = MadeUp {
        dir: dir.path().to_owned(),
        tls: None,
        variables: Vec::new(),
    };
    made_up.walk(&mut table, "");
    let edge = table.contains_key("edge") && !table.contains_key("cloudfront");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, toml::to_string(&table).unwrap()).unwrap();

    let mut command = cfmint();
    command
        .arg(if edge { "edge" } else { "serve" })
        .arg("--config")
        .arg(&config)
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for name in mentioned_variables(&shown.text) {
        let value = if name.ends_with("REDIS_URL") {
            "redis://127.0.0.1:9/0"
        } else {
            "0123456789abcdef0123456789abcdef-made-up"
        };
        command.env(name, value);
    }
    command.envs(made_up.variables.iter().map(|(k, v)| (k, v)));
    let mut child = command.spawn().unwrap();
    let lines = stderr_lines(&mut child);
    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let listen = loop {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                let address = listen_address(&line);
                log.push(line);
                if let Some(address) = address {
                    break address;
                }
            }
            Err(_) => {
                let status = child.wait().unwrap();
                let log = log.join("\n");
                assert!(!log.contains("panicked"), "{}: panic\n{log}", shown.origin);
                assert_eq!(status.code(), Some(2), "{}: {status}\n{log}", shown.origin);
                assert!(log.starts_with("error: "), "{}: {log}", shown.origin);
                return Outcome::Refused(log);
            }
        }
    };
    let path = if edge { "/auth" } else { "/healthz" };
    let (answer, _) = raw_get(listen.parse().unwrap(), path, &[]);
    let expected = if edge { 400 } else { 200 };
    assert_eq!(answer, expected, "{}: {}", shown.origin, log.join("\n"));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    while let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
        log.push(line);
    }
    let log = log.join("\n");
    assert!(status.success(), "{}: {status}\n{log}", shown.origin);
    assert!(!log.contains("panicked"), "{}: panic\n{log}", shown.origin);
    Outcome::Served
}

/// True when every problem reported is a cargo feature this build lacks.
fn only_missing_features(log: &str) -> bool {
    let problems: Vec<&str> = log
        .lines()
        .filter(|line| line.starts_with("  ") && line.contains(": "))
        .collect();
    !problems.is_empty() && problems.iter().all(|line| line.contains("cargo feature"))
}

/// `listen=ADDR` (text logs) or `"listen":"ADDR"` (JSON logs) on the
/// "serving" line.
fn listen_address(line: &str) -> Option<String> {
    if !line.contains("serving") {
        return None;
    }
    let rest = line
        .split_once("\"listen\":\"")
        .or_else(|| line.split_once("listen="))?
        .1;
    Some(rest.split(['"', ' ']).next()?.to_owned())
}

#[test]
fn every_shown_configuration_serves_or_is_refused_by_name_never_panics() {
    process_setup();
    let shown = shown_configurations();
    assert!(
        shown.len() >= 6,
        "expected the config/ files and the docs' TOML blocks, found {}",
        shown.len()
    );
    assert!(
        shown
            .iter()
            .any(|s| s.origin.starts_with("deploy/kubernetes/configmap.yaml:")),
        "the Kubernetes ConfigMap's configuration is among them"
    );
    let shown_refused: Vec<String> = documents()
        .iter()
        .flat_map(|(document, text)| console_examples(text, document))
        .filter(|example| {
            example
                .output
                .first()
                .is_some_and(|l| l.starts_with("error:"))
        })
        .filter_map(|example| {
            let rest = example.command.split_once("--config ")?.1;
            Some(rest.split_whitespace().next()?.to_owned())
        })
        .collect();
    let mut refused = Vec::new();
    for config in &shown {
        let meant_to_fail = config
            .name
            .as_ref()
            .is_some_and(|n| shown_refused.contains(n));
        match run_shown(config) {
            Outcome::Refused(_) if meant_to_fail => {}
            // A configuration for a feature this build leaves out (a key
            // store) is refused by name for that alone.
            Outcome::Refused(log) if only_missing_features(&log) => {}
            Outcome::Refused(log) => refused.push(format!("{}: {log}", config.origin)),
            Outcome::Served => assert!(!meant_to_fail, "{} was shown failing", config.origin),
        }
    }
    // Everything shipped or shown is meant to run once its files exist,
    // except a file the docs show being refused.
    assert!(refused.is_empty(), "refused:\n{}", refused.join("\n"));
}

/// A `$ cfmint ...` command from a console block and the output shown for it.
struct Example {
    origin: String,
    command: String,
    output: Vec<String>,
}

/// Every `$ ` command of one document's console blocks, with the output
/// shown for it.
fn console_examples(markdown: &str, document: &str) -> Vec<Example> {
    let mut examples = Vec::new();
    for block in fenced_blocks(markdown) {
        if block.language != "console" {
            continue;
        }
        let mut lines = block.text.lines().enumerate().peekable();
        while let Some((offset, line)) = lines.next() {
            let Some(first) = line.strip_prefix("$ ") else {
                continue;
            };
            let mut command = first.to_owned();
            while command.ends_with('\\') {
                command.pop();
                let (_, next) = lines.next().expect("a continued command goes on");
                command.push(' ');
                command.push_str(next.trim());
            }
            let mut output = Vec::new();
            while let Some((_, next)) = lines.peek() {
                if next.starts_with("$ ") {
                    break;
                }
                output.push(lines.next().unwrap().1.to_owned());
            }
            examples.push(Example {
                origin: format!("{document}:{}", block.line + 1 + offset),
                command,
                output,
            });
        }
    }
    examples
}

/// What a line looks like, without the parts that change from run to run:
/// the text before the first `=`, `:`, `(` or digit.
fn shape(line: &str) -> &str {
    let end = line
        .find(|c: char| matches!(c, '=' | ':' | '(') || c.is_ascii_digit())
        .unwrap_or(line.len());
    line[..end].trim_end()
}

/// A server a console example started in the background (`$ cfmint serve &`).
struct Background {
    child: std::process::Child,
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every console example of the README and docs/ runs as written, in order,
/// one fresh directory per document (holding the files the document names),
/// and prints what it shows: the same lines, each alike up to its first
/// variable part. `cfmint`, `curl` and `cargo run -- serve` commands run; a
/// command ending in `&` runs in the background with its listeners moved to
/// free loopback ports, which the later commands are pointed at.
#[test]
fn the_docs_console_examples_run_and_print_what_they_show() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_cfmint"), bin.join("cfmint")).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let documents = documents();
    let mut ran = 0;
    let mut skipped = Vec::new();
    for (index, (document, text)) in documents.iter().enumerate() {
        let work = dir.path().join(format!("work-{index}"));
        std::fs::create_dir(&work).unwrap();
        for (_, other) in &documents {
            for block in fenced_blocks(other) {
                if let Some(name) = block.name {
                    std::fs::write(work.join(name), block.text).unwrap();
                }
            }
        }
        let (api, admin) = (free_port_string(), free_port_string());
        let mut background = Vec::new();
        for example in console_examples(text, document) {
            let command = example
                .command
                .replace("cargo run --release -- ", "cfmint ")
                .replace("127.0.0.1:8080", &format!("127.0.0.1:{api}"))
                .replace("127.0.0.1:9090", &format!("127.0.0.1:{admin}"));
            let runnable = (command.starts_with("cfmint ")
                || command.starts_with("curl ")
                || (command.starts_with("echo ") && command.contains(" | cfmint ")))
                && !command.contains("...")
                && command != "cfmint demo";
            if !runnable {
                skipped.push(format!("{}: {}", example.origin, example.command));
                continue;
            }
            let mut shell = Command::new("bash");
            shell
                .current_dir(&work)
                .env("PATH", &path)
                .env_remove("CFMINT_LOG");
            if let Some(command) = command.strip_suffix('&') {
                assert!(example.output.is_empty(), "{}", example.origin);
                let child = shell
                    .env("CFMINT__SERVER__LISTEN", format!("127.0.0.1:{api}"))
                    .env("CFMINT__SERVER__ADMIN_LISTEN", format!("127.0.0.1:{admin}"))
                    .args(["-c", &format!("exec {command}")])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                background.push(Background { child });
                let deadline = Instant::now() + Duration::from_secs(30);
                while std::net::TcpStream::connect(("127.0.0.1", api.parse::<u16>().unwrap()))
                    .is_err()
                {
                    assert!(
                        Instant::now() < deadline,
                        "{}: never listened",
                        example.origin
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
                ran += 1;
                continue;
            }
            let output = shell.args(["-c", &command]).output().unwrap();
            let printed = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
            .replace('\r', "");
            let expected_code = if example
                .output
                .first()
                .is_some_and(|l| l.starts_with("error:"))
            {
                2
            } else if example.output.last().is_some_and(|l| l.starts_with("DENY"))
                || (command.starts_with("cfmint check ")
                    && example
                        .output
                        .first()
                        .is_some_and(|l| l.contains(" problem")))
            {
                1
            } else {
                0
            };
            assert_eq!(
                output.status.code(),
                Some(expected_code),
                "{}: {command}\n{printed}",
                example.origin,
            );
            let shown: Vec<&str> = example.output.iter().map(|l| shape(l)).collect();
            let actual: Vec<&str> = printed.lines().map(shape).collect();
            assert_eq!(actual, shown, "{}: {command}\n{printed}", example.origin);
            ran += 1;
        }
    }
    // What is left is what cannot run here: the demo in the foreground and
    // commands against a real distribution.
    for skip in &skipped {
        assert!(
            skip.contains("cargo run --release -- demo") || skip.contains("cfmint demo"),
            "a console example that does not run: {skip}"
        );
    }
    assert!(ran >= 12, "only {ran} console examples ran");
}

fn free_port_string() -> String {
    crate::harness::free_port().to_string()
}
