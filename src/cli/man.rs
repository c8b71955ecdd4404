//! `cfmint man`: manual pages from the same definitions as `--help`, one per
//! command, each with ENVIRONMENT, EXIT STATUS and EXAMPLES.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{CliError, Outcome};

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write every page (cfmint.1, cfmint-sign.1, cfmint-sign-cookies.1, ...)
    /// into this directory instead of printing cfmint.1.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn run(args: ManArgs) -> Result<Outcome, CliError> {
    let mut command = super::command().disable_help_subcommand(true);
    command.build();
    match args.dir {
        None => super::print(&page(&command, &[])?),
        Some(dir) => {
            let mut written = String::new();
            write_pages(&command, &[], &dir, &mut written)?;
            super::print(&written);
        }
    }
    Ok(Outcome::Success)
}

fn write_pages(
    command: &clap::Command,
    path: &[&str],
    dir: &Path,
    written: &mut String,
) -> Result<(), CliError> {
    // cfmint-sign-url.1: the name clap gives the built subcommand.
    let file = dir.join(clap_mangen::Man::new(command.clone()).get_filename());
    std::fs::write(&file, page(command, path)?)
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    written.push_str(&format!("{}\n", file.display()));
    for sub in command.get_subcommands() {
        let mut deeper = path.to_vec();
        deeper.push(sub.get_name());
        write_pages(sub, &deeper, dir, written)?;
    }
    Ok(())
}

/// One page: clap's sections, then this command's environment, exit status
/// and examples, then the version.
fn page(command: &clap::Command, path: &[&str]) -> Result<String, CliError> {
    let man = clap_mangen::Man::new(command.clone())
        .source(format!("cfmint {}", env!("CARGO_PKG_VERSION")))
        .manual("cfmint");
    let mut out = Vec::new();
    let rendered = (|| {
        man.render_title(&mut out)?;
        man.render_name_section(&mut out)?;
        man.render_synopsis_section(&mut out)?;
        man.render_description_section(&mut out)?;
        if command.get_arguments().any(|arg| !arg.is_hide_set()) {
            man.render_options_section(&mut out)?;
        }
        if command.has_subcommands() {
            man.render_subcommands_section(&mut out)?;
        }
        std::io::Result::Ok(())
    })();
    rendered.map_err(|e| format!("cannot render the manual page: {e}"))?;
    let mut text = String::from_utf8_lossy(&out).into_owned();
    let extras = extras(path);
    section(
        &mut text,
        "ENVIRONMENT",
        &extras.environment,
        |(name, meaning)| format!(".TP\n\\fB{}\\fR\n{}\n", roff(name), roff(meaning)),
    );
    section(
        &mut text,
        "\"EXIT STATUS\"",
        &extras.exit,
        |(code, meaning)| format!(".TP\n\\fB{code}\\fR\n{}\n", roff(meaning)),
    );
    section(
        &mut text,
        "EXAMPLES",
        &extras.examples,
        |(what, example)| {
            format!(
                ".PP\n{}\n.PP\n.nf\n.RS 4\n{}\n.RE\n.fi\n",
                roff(what),
                roff(example)
            )
        },
    );
    text.push_str(&format!(
        ".SH VERSION\nv{}\n.SH \"SEE ALSO\"\ndocs/cli.md and docs/configuration.md in the cfmint sources.\n",
        env!("CARGO_PKG_VERSION")
    ));
    Ok(text)
}

/// A section of `(term, text)` pairs, each written by `entry`.
fn section(
    text: &mut String,
    title: &str,
    entries: &[(&str, &str)],
    entry: impl Fn(&(&str, &str)) -> String,
) {
    text.push_str(&format!(".SH {title}\n"));
    for pair in entries {
        text.push_str(&entry(pair));
    }
}

/// Text as roff shows it: backslashes and hyphens escaped, no line read as
/// a request.
fn roff(text: &str) -> String {
    text.lines()
        .map(|line| {
            let line = line.replace('\\', "\\e").replace('-', "\\-");
            if line.starts_with(['.', '\'']) {
                format!("\\&{line}")
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

struct Extras {
    environment: Vec<(&'static str, &'static str)>,
    exit: Vec<(&'static str, &'static str)>,
    examples: Vec<(&'static str, &'static str)>,
}

const LOG: (&str, &str) = (
    "CFMINT_LOG",
    "The log filter (info, debug, cfmint=debug); logs go to stderr.",
);
const OVERRIDES: (&str, &str) = (
    "CFMINT__SECTION__KEY",
    "Any configuration key, over the file: CFMINT__SESSION__REDIS_URL, \
     CFMINT__SERVER__ADMIN_TOKEN (lists comma-separated).",
);
const CONFIG: (&str, &str) = (
    "CFMINT_CONFIG",
    "The configuration file, when --config is not given.",
);
const TOKEN: (&str, &str) = (
    "CFMINT__SERVER__ADMIN_TOKEN",
    "server.admin_token, sent as the admin listener's bearer token \
     (--token-env names another variable).",
);
const OK: (&str, &str) = ("0", "Success.");
const USAGE: (&str, &str) = (
    "2",
    "A usage or input error; the message on stderr names what was wrong.",
);

/// What each command's page says beyond its options.
fn extras(path: &[&str]) -> Extras {
    let (environment, exit, examples): (Vec<_>, Vec<_>, Vec<_>) = match path {
        [] => (
            vec![LOG, OVERRIDES, CONFIG, TOKEN],
            vec![
                ("0", "Success, or ALLOW (verify)."),
                (
                    "1",
                    "DENY (verify), problems found (check, cloudfront check), unhealthy (healthcheck).",
                ),
                USAGE,
            ],
            vec![
                ("Run the whole flow on loopback:", "cfmint demo"),
                (
                    "Check a configuration, then serve it:",
                    "cfmint check --config /etc/cfmint/cfmint.toml\ncfmint serve --config /etc/cfmint/cfmint.toml",
                ),
                (
                    "Install every manual page:",
                    "cfmint man --dir /usr/local/share/man/man1",
                ),
            ],
        ),
        ["sign", ..] => (
            vec![LOG],
            vec![OK, USAGE],
            vec![
                (
                    "Cookies for a folder, for an hour:",
                    "cfmint sign cookies --key keys/private.pem --key-pair-id K2JCJMDEHXQW5F \\\n  --resource 'https://cdn.example.com/audiobooks/42/*' --ttl 1h",
                ),
                (
                    "A signed URL for one file:",
                    "cfmint sign url --key keys/private.pem --key-pair-id K2JCJMDEHXQW5F \\\n  --url https://cdn.example.com/a/b.mp3 --ttl 10m",
                ),
            ],
        ),
        ["verify"] => (
            vec![LOG],
            vec![
                ("0", "ALLOW: CloudFront would serve the URL."),
                ("1", "DENY, with the reason."),
                USAGE,
            ],
            vec![(
                "Why did CloudFront answer 403?",
                "cfmint verify --public-key K2JCJMDEHXQW5F=keys/public.pem \\\n  --url https://cdn.example.com/a/b.mp3 --cookie \"$(paste -sd ';' cookies.txt)\"",
            )],
        ),
        ["keygen"] => (
            vec![LOG],
            vec![OK, USAGE],
            vec![(
                "An ECDSA P-256 key pair in keys/:",
                "cfmint keygen --type ecdsa --out keys/",
            )],
        ),
        ["keys", ..] => (
            vec![
                LOG,
                CONFIG,
                TOKEN,
                (
                    "CFMINT__KEYS__PKCS11__PIN",
                    "The PKCS#11 user PIN (keys public --pkcs11-uri).",
                ),
                (
                    "AWS_*",
                    "Credentials, region and endpoints of the AWS SDK (KMS, Secrets Manager, CloudFront).",
                ),
            ],
            vec![OK, USAGE],
            vec![
                (
                    "The public key of a key in KMS:",
                    "cfmint keys public --kms-key-id alias/cloudfront",
                ),
                (
                    "Rotate with the key group:",
                    "cfmint keys rotate --config /etc/cfmint/cfmint.toml --key-group-id G1 \\\n  --replica http://10.0.0.5:9090",
                ),
            ],
        ),
        ["cloudfront", ..] => (
            vec![
                LOG,
                CONFIG,
                OVERRIDES,
                ("AWS_*", "Credentials and region of the AWS SDK."),
            ],
            vec![
                ("0", "No problem found."),
                ("1", "Problems found, each listed."),
                (
                    "2",
                    "Could not check: the configuration, the documents or the API.",
                ),
            ],
            vec![(
                "Check a distribution against cfmint's configuration:",
                "cfmint cloudfront check --config /etc/cfmint/cfmint.toml --distribution-id E1ABCDEF",
            )],
        ),
        ["check"] => (
            vec![LOG, CONFIG, OVERRIDES],
            vec![
                (
                    "0",
                    "Valid (and, with --network, every dependency answered).",
                ),
                ("1", "Problems found, each named by key."),
                (
                    "2",
                    "Could not check: the file cannot be read, or a usage error.",
                ),
            ],
            vec![
                (
                    "Before a deployment:",
                    "cfmint check --config /etc/cfmint/cfmint.toml",
                ),
                (
                    "Also call Redis, the identity provider and key stores:",
                    "cfmint check --config /etc/cfmint/cfmint.toml --network",
                ),
            ],
        ),
        ["serve"] => (
            vec![LOG, CONFIG, OVERRIDES],
            vec![
                ("0", "Stopped by SIGTERM or SIGINT after draining."),
                ("2", "Could not start: every problem named by key."),
            ],
            vec![(
                "Serve a configuration, a secret from the environment:",
                "CFMINT__SERVER__ADMIN_TOKEN=... cfmint serve --config /etc/cfmint/cfmint.toml",
            )],
        ),
        ["edge"] => (
            vec![LOG],
            vec![
                ("0", "Stopped by SIGTERM or SIGINT."),
                ("2", "Could not start: every problem named by key."),
            ],
            vec![(
                "The local edge in front of an origin folder:",
                "cfmint edge --config config/example.edge.toml",
            )],
        ),
        ["demo"] => (
            vec![LOG],
            vec![
                ("0", "Stopped by Ctrl-C."),
                (
                    "2",
                    "Could not start (a port in use names its --*-port flag).",
                ),
            ],
            vec![(
                "On other ports:",
                "cfmint demo --page-port 9000 --api-port 9001 --edge-port 9002",
            )],
        ),
        ["healthcheck"] => (
            vec![LOG],
            vec![
                ("0", "The URL answered 2xx."),
                ("1", "It did not, or not in time."),
                USAGE,
            ],
            vec![(
                "A container's health check:",
                "cfmint healthcheck --url http://127.0.0.1:9090/readyz",
            )],
        ),
        ["user", ..] => (
            vec![LOG],
            vec![
                OK,
                (
                    "2",
                    "A usage or input error: an unknown user, a short password, a file that cannot be read.",
                ),
            ],
            vec![
                (
                    "Add alice to a teachers group (password from stdin):",
                    "echo \"$PASSWORD\" | cfmint user add --file users.toml --username alice --group teachers",
                ),
                (
                    "List, change groups, remove:",
                    "cfmint user list --file users.toml\ncfmint user groups --file users.toml --username alice --add staff --remove teachers\ncfmint user remove --file users.toml --username alice",
                ),
            ],
        ),
        ["sessions", ..] => (
            vec![
                LOG,
                TOKEN,
                (
                    "CFMINT_ADMIN_URL",
                    "The admin listener, when --admin-url is not given.",
                ),
            ],
            vec![
                OK,
                (
                    "2",
                    "A usage error, or the service refused or did not confirm (ask again).",
                ),
            ],
            vec![(
                "End alice's sessions on every replica:",
                "cfmint sessions revoke --sub alice --admin-url http://127.0.0.1:9090",
            )],
        ),
        ["completions"] => (
            vec![],
            vec![OK, USAGE],
            vec![(
                "bash:",
                "cfmint completions bash > /etc/bash_completion.d/cfmint",
            )],
        ),
        _ => (
            vec![],
            vec![OK, USAGE],
            vec![(
                "Every page into a directory:",
                "cfmint man --dir /usr/local/share/man/man1",
            )],
        ),
    };
    Extras {
        environment,
        exit,
        examples,
    }
}
