//! `cfmint keys public`: the public key CloudFront's console takes (SPKI
//! PEM) for a key in AWS KMS, in a PKCS#11 token, or in a PEM file; and
//! `status`, `rotate`, `retire` (`key_group`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::{CliError, Outcome, print};
use crate::signer::remote::RemoteKey;
use crate::signer::{KeyPairId, PrivateKey};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a signing key's public key as SPKI PEM, for CloudFront's "Public keys".
    Public(PublicArgs),
    /// Show the key group, each key's state and age, the distributions and the replicas.
    Status(super::key_group::StatusArgs),
    /// Make a new key the active one: CloudFront, the key group, the ring and the replicas, in order.
    Rotate(super::key_group::RotateArgs),
    /// Remove a key that stopped signing long enough ago from the key group, CloudFront and the ring.
    Retire(super::key_group::RetireArgs),
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false, id = "key")]
pub struct PublicArgs {
    /// A key in AWS KMS (key id, alias or ARN); credentials, region and
    /// endpoint come from the standard AWS environment and profile.
    #[arg(long, value_name = "KEY", group = "key")]
    kms_key_id: Option<String>,
    /// A key in a PKCS#11 token (RFC 7512 URI); the PIN is read from
    /// CFMINT__KEYS__PKCS11__PIN when the token needs a login.
    #[arg(long, value_name = "URI", group = "key")]
    pkcs11_uri: Option<String>,
    /// The PKCS#11 module, unless the URI has module-path.
    #[arg(long, value_name = "PATH", requires = "pkcs11_uri")]
    pkcs11_module: Option<PathBuf>,
    /// A private key in a PEM file.
    #[arg(long, value_name = "FILE", group = "key")]
    file: Option<PathBuf>,
    /// How long to wait for the key store.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    #[command(flatten)]
    backend: super::BackendArg,
}

pub fn run(command: KeysCommand) -> Result<Outcome, CliError> {
    use super::key_group::{GroupCommand, run as group};
    let args = match command {
        KeysCommand::Public(args) => args,
        KeysCommand::Status(args) => return group(GroupCommand::Status(args)),
        KeysCommand::Rotate(args) => return group(GroupCommand::Rotate(args)),
        KeysCommand::Retire(args) => return group(GroupCommand::Retire(args)),
    };
    let backend = args.backend.backend;
    let id = KeyPairId::new("KPUBLIC").expect("a valid id");
    let remote: Arc<dyn RemoteKey> = if let Some(file) = &args.file {
        let key = PrivateKey::from_file(id, file, backend)?;
        print(&key.public_key()?.to_pem()?);
        return Ok(Outcome::Success);
    } else if let Some(key_id) = &args.kms_key_id {
        kms_key(key_id, backend, args.timeout)?
    } else if let Some(uri) = &args.pkcs11_uri {
        pkcs11_key(uri, args.pkcs11_module.clone(), backend)?
    } else {
        unreachable!("clap requires one of the key options")
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let key = PrivateKey::remote(id, remote);
    let remote = key.remote_key().expect("a remote key");
    runtime
        .block_on(crate::keyring::connect_key(remote, args.timeout))
        .map_err(|e| format!("{}: {e}", key.source()))?;
    print(&key.public_key()?.to_pem()?);
    Ok(Outcome::Success)
}

#[cfg(feature = "aws-kms")]
fn kms_key(
    key_id: &str,
    backend: crate::signer::Backend,
    timeout: Duration,
) -> Result<Arc<dyn RemoteKey>, CliError> {
    let store = crate::signer::remote::kms::KmsStore::new(backend, timeout);
    Ok(Arc::new(store.key(key_id)))
}

#[cfg(not(feature = "aws-kms"))]
fn kms_key(
    _: &str,
    _: crate::signer::Backend,
    _: Duration,
) -> Result<Arc<dyn RemoteKey>, CliError> {
    Err(format!("--kms-key-id: {}", crate::config::KMS_NOT_BUILT).into())
}

#[cfg(feature = "pkcs11")]
fn pkcs11_key(
    uri: &str,
    module: Option<PathBuf>,
    backend: crate::signer::Backend,
) -> Result<Arc<dyn RemoteKey>, CliError> {
    use crate::signer::remote::pkcs11::{Pkcs11Key, Pkcs11Options};
    let pin = std::env::var(PIN_VARIABLE)
        .ok()
        .filter(|pin| !pin.is_empty())
        .map(zeroize::Zeroizing::new);
    let options = Pkcs11Options {
        module,
        pin,
        backend,
    };
    Ok(Arc::new(Pkcs11Key::new(uri, options)?))
}

/// The same variable that sets `keys.pkcs11.pin` for `serve`.
#[cfg(feature = "pkcs11")]
const PIN_VARIABLE: &str = "CFMINT__KEYS__PKCS11__PIN";

#[cfg(not(feature = "pkcs11"))]
fn pkcs11_key(
    _: &str,
    _: Option<PathBuf>,
    _: crate::signer::Backend,
) -> Result<Arc<dyn RemoteKey>, CliError> {
    Err(format!("--pkcs11-uri: {}", crate::config::PKCS11_NOT_BUILT).into())
}
