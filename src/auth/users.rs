//! The `users` authenticator: a TOML users file with argon2id hashes.
//!
//! ```toml
//! [users.alice]
//! password_hash = "$argon2id$v=19$m=19456,t=2,p=1$…"
//! groups = ["teachers"]
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::path::Path;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{Identity, Method};

/// The demo user, accepted only while cfmint listens on loopback.
pub const DEMO_USERNAME: &str = "demo";
pub const DEMO_PASSWORD: &str = "demo";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    users: BTreeMap<String, UserEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    password_hash: String,
    #[serde(default)]
    groups: Vec<String>,
}

struct User {
    password_hash: String,
    groups: Vec<String>,
}

/// Users by name, plus a hash to check unknown names against so that they
/// take as long as wrong passwords.
pub struct Users {
    users: HashMap<String, User>,
    decoy_hash: String,
}

impl Users {
    /// Loads `file` (when given) and adds the demo user (when asked).
    pub fn load(file: Option<&Path>, demo: bool) -> Result<Self, String> {
        let mut users = HashMap::new();
        if let Some(path) = file {
            for (name, entry) in read(path)? {
                users.insert(
                    name,
                    User {
                        password_hash: entry.password_hash,
                        groups: entry.groups,
                    },
                );
            }
        }
        if demo {
            users.insert(
                DEMO_USERNAME.to_owned(),
                User {
                    password_hash: hash_password(DEMO_PASSWORD)?,
                    groups: Vec::new(),
                },
            );
        }
        Ok(Self {
            users,
            decoy_hash: hash_password("decoy password for unknown users")?,
        })
    }

    /// Checks a password (CPU-heavy: call it off the async runtime).
    /// Unknown users cost one argon2 verification, like a wrong password.
    pub fn verify(&self, username: &str, password: &str) -> Option<Identity> {
        let user = self.users.get(username);
        let hash = user.map_or(self.decoy_hash.as_str(), |u| u.password_hash.as_str());
        let matches = PasswordHash::new(hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        });
        let user = user.filter(|_| matches)?;
        let mut identity = Identity::new(username.to_owned(), Method::Users);
        identity
            .claims
            .insert("groups".to_owned(), user.groups.clone());
        Some(identity)
    }
}

/// An argon2id PHC string with the crate's recommended parameters.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| format!("cannot hash password: {e}"))
}

/// Usernames become `{sub}` in grant paths, so they are plain path segments.
pub fn check_username(name: &str) -> Result<(), &'static str> {
    let valid = (1..=64).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._@+".contains(&b));
    if valid {
        Ok(())
    } else {
        Err("a username is 1-64 characters of A-Z a-z 0-9 - . _ @ +")
    }
}

fn check_hash(hash: &str) -> Result<(), String> {
    let parsed = PasswordHash::new(hash).map_err(|e| format!("password_hash: {e}"))?;
    if parsed.algorithm != Algorithm::Argon2id.ident() {
        return Err(format!(
            "password_hash uses {}, expected argon2id",
            parsed.algorithm
        ));
    }
    Ok(())
}

/// Adds or updates `username` in the users file, keeping everything else
/// (comments included); `groups`, when given, replace the user's groups.
/// Written to a temporary file and renamed, mode 0600.
pub fn add_user(
    file: &Path,
    username: &str,
    password: &str,
    groups: Option<&[String]>,
) -> Result<bool, String> {
    check_username(username).map_err(str::to_owned)?;
    if password.is_empty() {
        return Err("the password is empty".into());
    }
    if let Some(groups) = groups {
        groups.iter().try_for_each(|group| check_group(group))?;
    }
    let hash = hash_password(password)?;
    edit(file, true, |document| {
        let users = users_of(document)?;
        let existed = users.contains_key(username);
        let user = users
            .entry(username)
            .or_insert_with(toml_edit::table)
            .as_table_like_mut()
            .ok_or_else(|| format!("users.{username} must be a table"))?;
        user.insert("password_hash", toml_edit::value(hash));
        if let Some(groups) = groups {
            user.insert("groups", toml_edit::value(group_array(groups)));
        }
        Ok(existed)
    })
}

/// Removes `username` from the users file; an unknown name is an error.
pub fn remove_user(file: &Path, username: &str) -> Result<(), String> {
    edit(file, false, |document| {
        let users = users_of(document)?;
        let removed = users
            .remove(username)
            .ok_or_else(|| format!("no user {username}"))?;
        // Comments above the removed user (the file's own heading among
        // them) stay: above the user that followed, or at the end.
        let Some(table) = removed.as_table() else {
            return Ok(());
        };
        let comments = table
            .decor()
            .prefix()
            .and_then(|p| p.as_str())
            .unwrap_or("")
            .to_owned();
        if !comments.contains('#') {
            return Ok(());
        }
        let position = table.position().unwrap_or(isize::MAX);
        let next = users
            .iter_mut()
            .filter_map(|(_, item)| item.as_table_mut())
            .filter(|next| next.position().is_some_and(|p| p > position))
            .min_by_key(|next| next.position());
        match next {
            Some(next) => {
                let own = next.decor().prefix().and_then(|p| p.as_str()).unwrap_or("");
                let joined = format!("{comments}{own}");
                next.decor_mut().set_prefix(joined);
            }
            None => {
                let trailing = document.trailing().as_str().unwrap_or("").to_owned();
                document.set_trailing(format!("{comments}{trailing}"));
            }
        }
        Ok(())
    })
}

/// Adds and removes groups of `username`; returns the groups it then has.
pub fn change_groups(
    file: &Path,
    username: &str,
    add: &[String],
    remove: &[String],
) -> Result<Vec<String>, String> {
    add.iter().try_for_each(|group| check_group(group))?;
    edit(file, false, |document| {
        let user = users_of(document)?
            .get_mut(username)
            .and_then(|user| user.as_table_like_mut())
            .ok_or_else(|| format!("no user {username}"))?;
        let mut groups: Vec<String> = user
            .get("groups")
            .and_then(|groups| groups.as_array())
            .map(|groups| {
                groups
                    .iter()
                    .filter_map(|group| group.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        groups.retain(|group| !remove.contains(group));
        for group in add {
            if !groups.contains(group) {
                groups.push(group.clone());
            }
        }
        user.insert("groups", toml_edit::value(group_array(&groups)));
        Ok(groups)
    })
}

/// Every user of the file with their groups, by name; the file is checked
/// as `serve` loads it.
pub fn list_users(file: &Path) -> Result<Vec<(String, Vec<String>)>, String> {
    Ok(read(file)?
        .into_iter()
        .map(|(name, entry)| (name, entry.groups))
        .collect())
}

/// The users file's entries, every name and hash checked.
fn read(path: &Path) -> Result<BTreeMap<String, UserEntry>, String> {
    let text = fs::read_to_string(path)
        .map_err(|e| format!("cannot read users file {}: {e}", path.display()))?;
    let parsed: UsersFile = toml::from_str(&text)
        .map_err(|e| format!("users file {}: {}", path.display(), e.message()))?;
    for (name, entry) in &parsed.users {
        check_username(name).map_err(|e| format!("users file: user {name:?}: {e}"))?;
        check_hash(&entry.password_hash).map_err(|e| format!("users file: user {name}: {e}"))?;
    }
    Ok(parsed.users)
}

/// A group name: what grants' `when = { claim = "groups", ... }` compare
/// with, so printable and without surrounding spaces.
pub fn check_group(group: &str) -> Result<(), String> {
    if group.is_empty()
        || group.chars().count() > 128
        || group.chars().any(char::is_control)
        || group.trim() != group
    {
        return Err(format!(
            "{group:?} is not a group name: 1-128 printable characters, no surrounding spaces"
        ));
    }
    Ok(())
}

fn group_array(groups: &[String]) -> toml_edit::Array {
    groups.iter().map(String::as_str).collect()
}

/// The document's `[users]` table, made when missing.
fn users_of(document: &mut toml_edit::DocumentMut) -> Result<&mut toml_edit::Table, String> {
    let users = document
        .entry("users")
        .or_insert_with(toml_edit::table)
        .as_table_mut()
        .ok_or("users must be a table")?;
    users.set_implicit(true);
    Ok(users)
}

/// Reads the users file (an empty one when missing and `create`), applies
/// `change` to it and writes it back whole, keeping
/// comments: a 0600 temporary file beside the target, renamed over it, so
/// readers see the old file or the new one, never half of either.
fn edit<T>(
    file: &Path,
    create: bool,
    change: impl FnOnce(&mut toml_edit::DocumentMut) -> Result<T, String>,
) -> Result<T, String> {
    let text = match fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if create && e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
    };
    let mut document: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| format!("{} is not valid TOML: {e}", file.display()))?;
    let result = change(&mut document).map_err(|e| format!("{}: {e}", file.display()))?;

    let directory = file.parent().filter(|p| !p.as_os_str().is_empty());
    let mut temporary = tempfile::NamedTempFile::new_in(directory.unwrap_or(Path::new(".")))
        .map_err(|e| format!("cannot create a file beside {}: {e}", file.display()))?;
    temporary
        .write_all(document.to_string().as_bytes())
        .and_then(|()| temporary.as_file().sync_all())
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    temporary
        .persist(file)
        .map_err(|e| format!("cannot replace {}: {}", file.display(), e.error))?;
    Ok(result)
}

/// A password read from somewhere, wiped when dropped.
pub type Password = Zeroizing<String>;

#[cfg(test)]
mod tests {
    use super::{Users, add_user, check_username};

    #[test]
    fn a_users_file_with_a_hash_that_is_not_argon2id_is_refused_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users.toml");
        add_user(&file, "alice", "a password", None).unwrap();
        assert!(Users::load(Some(&file), false).is_ok());
        for hash in [
            "not-a-hash",
            "$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
        ] {
            std::fs::write(&file, format!("[users.bob]\npassword_hash = \"{hash}\"\n")).unwrap();
            let Err(error) = Users::load(Some(&file), false) else {
                panic!("{hash} was accepted");
            };
            assert!(error.contains("bob"), "{hash}: {error}");
        }
    }

    #[test]
    fn a_users_file_that_cannot_be_read_is_an_error_not_an_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: reading fails, and nothing
        // may be written as if the file were new.
        let error = add_user(dir.path(), "alice", "a password", None).unwrap_err();
        assert!(error.starts_with("cannot read"), "{error}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn usernames_are_plain_path_segments() {
        for good in [
            "alice",
            "a",
            "bob.smith",
            "x_y-z",
            "ann@example.com",
            "a+b",
            &"a".repeat(64),
        ] {
            assert!(check_username(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a b",
            "a*",
            "a?",
            "a%2f",
            "é",
            &"a".repeat(65),
        ] {
            assert!(check_username(bad).is_err(), "{bad:?}");
        }
    }
}
