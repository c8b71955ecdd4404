//! The `cfmint` command line: one binary, one file per subcommand.
//! Exit codes: 0 success or ALLOW, 1 DENY, 2 usage or input error.

mod check;
mod cloudfront;
mod demo;
mod edge;
mod healthcheck;
mod key_group;
mod keygen;
mod keys;
mod man;
mod serve;
mod sessions;
mod sign;
mod user;
mod verify;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::LogFormat;
use crate::minter::now;
use crate::signer::{self, Backend};

#[derive(Debug, Parser)]
#[command(
    name = "cfmint",
    version,
    about = "Mint and check Amazon CloudFront signed cookies and URLs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `--backend`, on the subcommands that load keys themselves.
#[derive(Debug, Clone, Copy, Args)]
pub struct BackendArg {
    /// Crypto library for keys and signatures: openssl or rustcrypto (same bytes
    /// out; they differ in speed and in what they link).
    #[arg(long, value_parser = parse_backend, default_value_t = Backend::default())]
    pub backend: Backend,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print signed cookies or a signed URL.
    #[command(subcommand)]
    Sign(sign::SignCommand),
    /// Decode and verify cookies or a signed URL: ALLOW, or DENY with the reason.
    Verify(verify::VerifyArgs),
    /// Write a new key pair: private.pem (PKCS#8, 0600) and public.pem (SPKI).
    Keygen(keygen::KeygenArgs),
    /// Keys: print a public key; rotate and retire keys with CloudFront's key group.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// The CloudFront distribution: check it against cfmint's configuration.
    #[command(subcommand)]
    Cloudfront(cloudfront::CloudFrontCommand),
    /// The whole flow on loopback: mint service, local edge, audiobook page.
    Demo(demo::DemoArgs),
    /// Run the minting service.
    Serve(serve::ServeArgs),
    /// Check a configuration as `serve` would, without serving it.
    Check(check::CheckArgs),
    /// Run the local edge: enforces signed cookies and URLs like CloudFront.
    Edge(edge::EdgeArgs),
    /// Exit 0 when the service answers /healthz (for container health checks).
    Healthcheck(healthcheck::HealthcheckArgs),
    /// Manage the users file.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Act on a running service's sessions (through its admin listener).
    #[command(subcommand)]
    Sessions(sessions::SessionsCommand),
    /// Print a shell completion script: cfmint completions bash > /etc/bash_completion.d/cfmint
    Completions(CompletionsArgs),
    /// Print the manual page (roff), or write every command's page: cfmint man --dir /usr/local/share/man/man1
    Man(man::ManArgs),
}

#[derive(Debug, Args)]
struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// A problem with the input: printed to stderr, exit code 2.
#[derive(Debug)]
pub struct CliError(String);

impl From<signer::Error> for CliError {
    fn from(error: signer::Error) -> Self {
        Self(error.to_string())
    }
}

impl From<String> for CliError {
    fn from(message: String) -> Self {
        Self(message)
    }
}

/// What a subcommand wants the process to report.
pub enum Outcome {
    Success,
    Denied,
}

/// What a build may leave out: (subcommand path, argument or `None` for the
/// whole command, the cargo feature that brings it).
const OPTIONAL: &[(&[&str], Option<&str>, &str)] = &[
    (&["keys", "status"], None, "aws-cloudfront"),
    (&["keys", "rotate"], None, "aws-cloudfront"),
    (&["keys", "retire"], None, "aws-cloudfront"),
    (&["keys", "public"], Some("kms_key_id"), "aws-kms"),
    (&["keys", "public"], Some("pkcs11_uri"), "pkcs11"),
    (
        &["cloudfront", "check"],
        Some("distribution_id"),
        "aws-cloudfront",
    ),
];

/// Whether this build has a cargo feature that [`OPTIONAL`] names.
fn built(feature: &str) -> bool {
    match feature {
        "aws-cloudfront" => cfg!(feature = "aws-cloudfront"),
        "aws-kms" => cfg!(feature = "aws-kms"),
        "pkcs11" => cfg!(feature = "pkcs11"),
        other => unreachable!("OPTIONAL names no feature {other}"),
    }
}

/// The command line as this build has it: what it cannot run says so, with
/// the cargo feature that brings it, in `--help`, completions and man pages.
pub fn command() -> clap::Command {
    let mut command = Cli::command();
    // The parent of commands left out lists them too (`keys` in `cfmint --help`).
    let mut parents: Vec<(&[&str], Vec<&str>, &str)> = Vec::new();
    for (path, argument, feature) in OPTIONAL {
        if built(feature) {
            continue;
        }
        let note = format!("[not in this build: needs the `{feature}` cargo feature]");
        command = mark(command, path, *argument, &note);
        if let (None, [parent @ .., name]) = (argument, *path) {
            match parents
                .iter_mut()
                .find(|(p, _, f)| *p == parent && f == feature)
            {
                Some((_, names, _)) => names.push(name),
                None => parents.push((parent, vec![name], feature)),
            }
        }
    }
    for (parent, names, feature) in parents {
        let note = format!(
            "[{}: not in this build, they need the `{feature}` cargo feature]",
            names.join(", ")
        );
        command = mark(command, parent, None, &note);
    }
    command
}

/// Appends `note` to the help of the subcommand at `path` (or its `argument`).
fn mark(
    command: clap::Command,
    path: &[&str],
    argument: Option<&str>,
    note: &str,
) -> clap::Command {
    match path {
        [] => match argument {
            None => {
                let about = command
                    .get_about()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                command.about(format!("{about} {note}"))
            }
            Some(id) => command.mut_arg(id, |arg| {
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                arg.help(format!("{help} {note}"))
            }),
        },
        [first, rest @ ..] => command.mut_subcommand(first, |sub| mark(sub, rest, argument, note)),
    }
}

/// Parses the command line and runs it.
pub fn run() -> ExitCode {
    let cli = match Cli::from_arg_matches(&command().get_matches()) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    if !matches!(
        cli.command,
        Command::Serve(_) | Command::Edge(_) | Command::Demo(_)
    ) {
        init_tracing(LogFormat::Text, "warn");
    }
    let result = match cli.command {
        Command::Sign(command) => sign::run(command),
        Command::Verify(args) => verify::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Keys(command) => keys::run(command),
        Command::Cloudfront(command) => cloudfront::run(command),
        Command::Demo(args) => demo::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Check(args) => check::run(args),
        Command::Edge(args) => edge::run(args),
        Command::User(command) => user::run(command),
        Command::Healthcheck(args) => healthcheck::run(args),
        Command::Sessions(command) => sessions::run(command),
        Command::Completions(args) => {
            let mut out = Vec::new();
            clap_complete::generate(args.shell, &mut command(), "cfmint", &mut out);
            print(&String::from_utf8_lossy(&out));
            Ok(Outcome::Success)
        }
        Command::Man(args) => man::run(args),
    };
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Denied) => ExitCode::from(1),
        Err(CliError(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Logs go to stderr; `CFMINT_LOG` sets the filter (default: `level`).
pub fn init_tracing(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CFMINT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}

fn parse_backend(name: &str) -> Result<Backend, String> {
    name.parse()
}

/// Parses a key pair id for clap.
fn parse_key_pair_id(id: &str) -> Result<signer::KeyPairId, String> {
    signer::KeyPairId::new(id).map_err(|e| e.to_string())
}

/// Parses a duration: a number and a unit (ms, s, m, h, d, w), combinable as `1h30m`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("\"{text}\" is not a duration like 30s, 10m or 12h ({e})"))
}

/// An epoch as RFC 3339, for people reading the output.
fn rfc3339(epoch: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(epoch)).to_string()
}

/// Shows untrusted text safely on a terminal: control characters escaped.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Writes to stdout; a closed pipe is not an error worth a panic.
fn print(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every subcommand and every flag says what it is for.
    #[test]
    fn every_command_and_flag_is_described() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if !matches!(id, "help" | "version") && arg.get_help().is_none() {
                    missing.push(format!("{path} --{id}"));
                }
            }
            for sub in command.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() {
                    missing.push(path.clone());
                }
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "cfmint", &mut missing);
        assert!(missing.is_empty(), "undescribed: {missing:?}");
    }

    /// `--backend` is offered where keys are loaded, and only there.
    #[test]
    fn backend_is_offered_where_keys_are_loaded() {
        let cli = Cli::command();
        let mut with = Vec::new();
        for sub in cli.get_subcommands() {
            let leaves: Vec<&clap::Command> = if sub.has_subcommands() {
                sub.get_subcommands().collect()
            } else {
                vec![sub]
            };
            for leaf in leaves {
                if leaf.get_arguments().any(|a| a.get_id() == "backend") {
                    with.push(leaf.get_name().to_owned());
                }
            }
        }
        assert_eq!(
            with,
            [
                "cookies", "url", "verify", "keygen", "public", "rotate", "edge"
            ]
        );
    }

    #[test]
    fn clap_definitions_are_consistent() {
        Cli::command().debug_assert();
    }
}
