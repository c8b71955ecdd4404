//! `cfmint keygen`: a new key pair for a CloudFront key group.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use super::{CliError, Outcome, print};
use crate::signer::KeySpec;

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Key type: RSA (PKCS#1 v1.5 signatures) or ECDSA P-256.
    #[arg(long = "type", value_enum)]
    key_type: KeyType,
    /// RSA modulus size: 2048 (what CloudFront key groups take), 3072 or 4096.
    #[arg(long)]
    bits: Option<u32>,
    /// Directory for private.pem and public.pem (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    backend: super::BackendArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KeyType {
    Rsa,
    Ecdsa,
}

pub fn run(args: KeygenArgs) -> Result<Outcome, CliError> {
    let backend = args.backend.backend;
    let spec = match (args.key_type, args.bits) {
        (KeyType::Rsa, None) => KeySpec::Rsa { bits: 2048 },
        (KeyType::Rsa, Some(bits @ (2048 | 3072 | 4096))) => KeySpec::Rsa { bits },
        (KeyType::Rsa, Some(bits)) => {
            return Err(format!(
                "--bits {bits} is not offered: use 2048 (CloudFront's size), 3072 or 4096"
            )
            .into());
        }
        (KeyType::Ecdsa, None) => KeySpec::EcdsaP256,
        (KeyType::Ecdsa, Some(_)) => {
            return Err("--bits applies to --type rsa only; ECDSA keys are P-256"
                .to_owned()
                .into());
        }
    };
    let private_path = args.out.join("private.pem");
    let public_path = args.out.join("public.pem");
    for path in [&private_path, &public_path] {
        if path.exists() {
            return Err(format!(
                "{} already exists; refusing to overwrite it",
                path.display()
            )
            .into());
        }
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;

    let key = backend.generate(spec)?;
    write_new(&private_path, key.private_pem.as_bytes(), 0o600)?;
    if let Err(error) = write_new(&public_path, key.public_pem.as_bytes(), 0o644) {
        let _ = fs::remove_file(&private_path);
        return Err(error);
    }
    print(&format!(
        "wrote {} (PKCS#8, mode 0600): the signing key, keep it secret\n\
         wrote {} (SPKI): upload it in the CloudFront console under Public keys,\n\
         add it to a key group, and sign with the key pair id CloudFront assigns\n",
        private_path.display(),
        public_path.display()
    ));
    if matches!(spec, KeySpec::Rsa { bits } if bits != 2048) {
        eprintln!(
            "warning: CloudFront key groups take 2048-bit RSA keys; this key is for other verifiers"
        );
    }
    Ok(Outcome::Success)
}

/// Creates `path` (never replacing a file) with `mode`, and writes it fully.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), CliError> {
    let write = || -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)?;
        file.write_all(contents)?;
        file.sync_all()
    };
    write().map_err(|e| CliError(format!("cannot write {}: {e}", path.display())))
}
