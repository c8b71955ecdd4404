//! `cfmint user add`: add or update a user in a users file (argon2id).

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use zeroize::Zeroizing;

use super::{CliError, Outcome};
use crate::auth::users;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user, or set a new password for an existing one. The password is
    /// read from stdin (one line), or prompted for twice on a terminal.
    Add(AddArgs),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The users file (created, mode 0600, when missing).
    #[arg(long)]
    file: PathBuf,
    /// The name the user logs in with: 1-64 of A-Z a-z 0-9 - . _ @ +
    #[arg(long)]
    username: String,
}

pub fn run(command: UserCommand) -> Result<Outcome, CliError> {
    let UserCommand::Add(args) = command;
    users::check_username(&args.username).map_err(|e| format!("--username: {e}"))?;
    let password = read_password()?;
    let existed = users::add_user(&args.file, &args.username, &password)?;
    eprintln!(
        "{} user {} in {}",
        if existed { "updated" } else { "added" },
        args.username,
        args.file.display()
    );
    Ok(Outcome::Success)
}

/// Shortest password accepted, in characters (NIST SP 800-63B's minimum).
const MIN_PASSWORD_CHARS: usize = 8;

fn read_password() -> Result<Zeroizing<String>, CliError> {
    let password = read_password_line()?;
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(
            format!("the password is too short: at least {MIN_PASSWORD_CHARS} characters").into(),
        );
    }
    Ok(password)
}

fn read_password_line() -> Result<Zeroizing<String>, CliError> {
    if std::io::stdin().is_terminal() {
        let first = Zeroizing::new(
            rpassword::prompt_password("Password: ")
                .map_err(|e| format!("cannot read the password: {e}"))?,
        );
        let second = Zeroizing::new(
            rpassword::prompt_password("Again: ")
                .map_err(|e| format!("cannot read the password: {e}"))?,
        );
        if *first != *second {
            return Err("the passwords differ".to_owned().into());
        }
        return Ok(first);
    }
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    let trimmed = Zeroizing::new(line.trim_end_matches(['\n', '\r']).to_owned());
    if trimmed.is_empty() {
        return Err("no password on stdin".to_owned().into());
    }
    Ok(trimmed)
}
