//! `cfmint user add | remove | list | groups`: the users file (argon2id
//! hashes and groups), edited in place with comments kept. `serve` reads it
//! at start.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use zeroize::Zeroizing;

use super::{CliError, Outcome, printable};
use crate::auth::users;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user, or set a new password for an existing one. The password is
    /// read from stdin (one line), or prompted for twice on a terminal.
    Add(AddArgs),
    /// Remove a user.
    Remove(UserArgs),
    /// List the users and their groups.
    List(FileArgs),
    /// Add a user to groups or take them out (grants' `when` conditions on
    /// the `groups` claim); prints the groups the user then has.
    Groups(GroupsArgs),
}

#[derive(Debug, Args)]
pub struct FileArgs {
    /// The users file.
    #[arg(long)]
    file: PathBuf,
}

#[derive(Debug, Args)]
pub struct UserArgs {
    /// The users file.
    #[arg(long)]
    file: PathBuf,
    /// The user's name.
    #[arg(long)]
    username: String,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The users file (created, mode 0600, when missing).
    #[arg(long)]
    file: PathBuf,
    /// The name the user logs in with: 1-64 of A-Z a-z 0-9 - . _ @ +
    #[arg(long)]
    username: String,
    /// The user's groups, replacing any they had; repeat for several.
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = true, id = "change")]
pub struct GroupsArgs {
    #[command(flatten)]
    user: UserArgs,
    /// A group to add the user to; repeat for several.
    #[arg(long, value_name = "GROUP", group = "change")]
    add: Vec<String>,
    /// A group to take the user out of; repeat for several.
    #[arg(long, value_name = "GROUP", group = "change")]
    remove: Vec<String>,
}

pub fn run(command: UserCommand) -> Result<Outcome, CliError> {
    match command {
        UserCommand::Add(args) => add(args),
        UserCommand::Remove(args) => {
            users::remove_user(&args.file, &args.username)?;
            eprintln!(
                "removed user {} from {}",
                args.username,
                args.file.display()
            );
            Ok(Outcome::Success)
        }
        UserCommand::List(args) => {
            let listing: String = users::list_users(&args.file)?
                .iter()
                .map(|(name, groups)| line(name, groups))
                .collect();
            super::print(&listing);
            Ok(Outcome::Success)
        }
        UserCommand::Groups(args) => {
            let groups = users::change_groups(
                &args.user.file,
                &args.user.username,
                &args.add,
                &args.remove,
            )?;
            super::print(&line(&args.user.username, &groups));
            Ok(Outcome::Success)
        }
    }
}

/// A user and their groups: `name<TAB>group,group`.
fn line(name: &str, groups: &[String]) -> String {
    let groups: Vec<String> = groups.iter().map(|group| printable(group)).collect();
    format!("{name}\t{}\n", groups.join(","))
}

fn add(args: AddArgs) -> Result<Outcome, CliError> {
    users::check_username(&args.username).map_err(|e| format!("--username: {e}"))?;
    for group in &args.groups {
        users::check_group(group).map_err(|e| format!("--group: {e}"))?;
    }
    let password = read_password()?;
    let groups = (!args.groups.is_empty()).then_some(args.groups.as_slice());
    let existed = users::add_user(&args.file, &args.username, &password, groups)?;
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
