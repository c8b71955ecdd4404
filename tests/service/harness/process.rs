//! Servers as child processes: `cfmint serve` (the shipped binary),
//! `redis-server`, and what every child needs: a port, its log lines, a way
//! to stop it with everything it started.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use super::PASSWORD;

/// The built `cfmint` binary, with no `CFMINT_LOG` from the environment.
pub fn cfmint() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cfmint"));
    command.env_remove("CFMINT_LOG");
    command
}

/// `(name, value)` pairs as the borrowed pairs `Command::envs` and
/// `ServeProcess` take.
pub fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A child's stderr, line by line, read by a thread of its own.
pub fn stderr_lines(child: &mut Child) -> Receiver<String> {
    use std::io::{BufRead, BufReader};
    let stderr = child.stderr.take().expect("stderr piped");
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    lines
}

/// Runs `command` to the end; it must succeed (its stderr is the failure
/// message). Its stdout, trimmed.
pub fn output_of(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{:?}: {}",
        command,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Sends `kill SIGNAL TARGET` (a pid, or `-PGID` for a process group).
pub fn signal(signal: &str, target: &str) -> bool {
    Command::new("kill")
        .args([signal, "--", target])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// Stops a child started with `process_group(0)` and everything in its
/// group: SIGTERM, then SIGKILL if it has not exited within five seconds.
pub fn stop_group(child: &mut Child) {
    let group = format!("-{}", child.id());
    if !signal("-TERM", &group) {
        let _ = child.wait();
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    signal("-KILL", &group);
    let _ = child.wait();
}

/// Polls `done` every 100 ms until it holds; fails the test after `within`.
pub fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What `/mint` answered.
pub struct Minted {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: serde_json::Value,
    /// The CloudFront cookies it set, as a `Cookie` header.
    pub cookies: String,
}

impl Minted {
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or_default();
        let cookies = super::cloudfront_cookie_header(&headers);
        Self {
            status,
            headers,
            body,
            cookies,
        }
    }

    /// This answer, which must be 200.
    pub fn ok(self) -> Self {
        assert_eq!(self.status, reqwest::StatusCode::OK, "{}", self.body);
        self
    }

    pub fn key_pair_id(&self) -> String {
        self.body["key_pair_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn retry_after(&self) -> Option<String> {
        self.headers
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned())
    }
}

/// A loopback port nothing listens on now (the OS picks it), for a server
/// that cannot bind port 0 and say which port it got. Start such servers
/// with `on_free_port`, which tries again if the port is taken meanwhile.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts a server with `start(port)` on a free port and waits until it
/// accepts connections there; when it exits first (the port was taken in
/// the meantime), again on another port. `parts` gives its child and port.
pub fn on_free_port<T>(
    name: &str,
    mut start: impl FnMut(u16) -> T,
    parts: impl Fn(&mut T) -> (&mut Child, u16),
) -> T {
    for _ in 0..5 {
        let mut server = start(free_port());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (child, port) = parts(&mut server);
            let listening = TcpStream::connect(("127.0.0.1", port)).is_ok();
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if listening {
                return server;
            }
            assert!(Instant::now() < deadline, "{name} did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("{name} exited at start five times (ports taken, or see its log)")
}

/// [`on_free_port`] for a server that is one child process: the port and
/// the child that listens on it.
pub fn spawn_on_free_port(name: &str, mut spawn: impl FnMut(u16) -> Child) -> (u16, Child) {
    on_free_port(
        name,
        |port| (port, spawn(port)),
        |(port, child)| (child, *port),
    )
}

/// A `redis-server` on a free loopback port; killed when dropped.
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Redis {
    pub fn start() -> Self {
        on_free_port(
            "redis-server",
            |port| {
                let mut redis = Self {
                    port,
                    child: None,
                    dir: tempfile::tempdir().unwrap(),
                };
                redis.spawn();
                redis
            },
            |redis| (redis.child.as_mut().unwrap(), redis.port),
        )
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test installs it)");
        self.child = Some(child);
    }

    /// Starts again on the same port and waits until it answers.
    pub fn restart(&mut self) {
        self.spawn();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `cfmint serve` as a separate process with JSON logs on stderr.
pub struct ServeProcess {
    pub child: Child,
    pub listen: String,
    pub admin: String,
    lines: std::sync::mpsc::Receiver<String>,
    pub log: Vec<String>,
}

impl ServeProcess {
    /// Starts `cfmint serve` with `args` and waits for its "serving" line.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = cfmint();
        command
            .arg("serve")
            .args(args)
            .env("CFMINT__SERVER__LOG_FORMAT", "json")
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let lines = stderr_lines(&mut child);
        let mut process = Self {
            child,
            listen: String::new(),
            admin: String::new(),
            lines,
            log: Vec::new(),
        };
        let serving = process.wait_for_log("cfmint serving", Duration::from_secs(30));
        process.listen = serving["listen"].as_str().unwrap().to_owned();
        process.admin = serving["admin"].as_str().unwrap().to_owned();
        process
    }

    /// `cfmint serve --config <config>` with more `CFMINT__…` settings.
    pub fn with_config(config: &Path, env: &[(&str, &str)]) -> Self {
        Self::start(&["--config", config.to_str().unwrap()], env)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.listen)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// Logs `client` in as `username` with `password`; the login must
    /// answer 204.
    pub async fn login_as(&self, client: &reqwest::Client, username: &str, password: &str) {
        let response = client
            .post(self.url("/login"))
            .json(&serde_json::json!({ "username": username, "password": password }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            reqwest::StatusCode::NO_CONTENT,
            "login {username}"
        );
    }

    /// A new client (cookies kept) holding `username`'s session, logged in
    /// with the users file's password.
    pub async fn logged_in(&self, username: &str) -> reqwest::Client {
        let client = super::client();
        self.login_as(&client, username, super::PASSWORD).await;
        client
    }

    /// POSTs `body` to `/mint` (no body when it is null).
    pub async fn mint(&self, client: &reqwest::Client, body: serde_json::Value) -> Minted {
        let mut request = client.post(self.url("/mint"));
        if !body.is_null() {
            request = request.json(&body);
        }
        Minted::read(request.send().await.unwrap()).await
    }

    /// The admin listener's `/metrics` text.
    pub async fn metrics(&self) -> String {
        reqwest::get(self.admin_url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// `/metrics`, for tests without an async runtime.
    pub fn metrics_blocking(&self) -> String {
        reqwest::blocking::get(self.admin_url("/metrics"))
            .unwrap()
            .text()
            .unwrap()
    }

    /// A blocking client holding alice's session (204 from `/login`).
    pub fn logged_in_blocking(&self) -> reqwest::blocking::Client {
        let client = reqwest::blocking::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let login = client
            .post(self.url("/login"))
            .json(&serde_json::json!({"username": "alice", "password": PASSWORD}))
            .send()
            .unwrap();
        assert_eq!(login.status(), reqwest::StatusCode::NO_CONTENT);
        client
    }

    /// The next log entry whose message is `message`.
    pub fn wait_for_log(&mut self, message: &str, timeout: Duration) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!("no \"{message}\" in the log:\n{}", self.log.join("\n"))
            });
            self.log.push(line.clone());
            let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if entry["message"] == message {
                return entry;
            }
        }
    }

    pub fn signal(&self, name: &str) {
        signal(&format!("-{name}"), &self.child.id().to_string());
    }

    /// Everything logged so far (and in the next moment).
    pub fn drain_log(&mut self) -> String {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.log.push(line);
        }
        self.log.join("\n")
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
