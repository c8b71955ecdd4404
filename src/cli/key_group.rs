//! `cfmint keys status | rotate | retire`: the CloudFront key group and the
//! key ring in `keys.secret_id` or `keys.ring_file` rotated together
//! (`crate::rotation`), with the configuration `serve` runs with.
// Without the feature, the arguments are parsed and refused unread.
#![cfg_attr(not(feature = "aws-cloudfront"), allow(dead_code))]

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::{CliError, Outcome, parse_duration};

/// What `status`, `rotate` and `retire` all need.
#[derive(Debug, Args)]
pub struct GroupArgs {
    /// The configuration `cfmint serve` runs with (its keys.secret_id or
    /// keys.ring_file, mint.max_ttl, keys.secret_poll_interval).
    #[arg(long, env = "CFMINT_CONFIG", value_name = "FILE")]
    config: PathBuf,
    /// The CloudFront key group the distributions trust.
    #[arg(long, value_name = "ID")]
    key_group_id: String,
    /// A replica's admin listener (`http://10.0.0.5:9090`), asked what it
    /// signs with; repeat for every replica.
    #[arg(long = "replica", value_name = "URL")]
    replicas: Vec<String>,
    /// The environment variable holding `server.admin_token`, if one is set:
    /// by default the one `serve` reads it from.
    #[arg(long, default_value = "CFMINT__SERVER__ADMIN_TOKEN")]
    token_env: String,
    /// How long one AWS call may take.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// How often waits look again.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    check_every: Duration,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    group: GroupArgs,
    /// Added to when a key may be retired, as `retire` adds it.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    margin: Duration,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum NewKeyType {
    Rsa,
    Ecdsa,
}

#[derive(Debug, Args)]
#[group(multiple = false, id = "take")]
pub struct RotateArgs {
    #[command(flatten)]
    group: GroupArgs,
    /// The kind of key to make (unless one is given).
    #[arg(long = "type", value_enum, default_value = "rsa")]
    key_type: NewKeyType,
    /// Take this private key (PEM) instead of making one; it is copied into the ring.
    #[arg(long, value_name = "FILE", group = "take")]
    private_key: Option<PathBuf>,
    /// Take this AWS KMS key (id, alias or ARN) instead of making one.
    #[arg(long, value_name = "KEY", group = "take")]
    kms_key_id: Option<String>,
    /// The new CloudFront public key's name, before a timestamp.
    #[arg(long, default_value = "cfmint")]
    name: String,
    /// How long to wait for the distributions to deploy.
    #[arg(long, default_value = "45m", value_parser = parse_duration)]
    deploy_timeout: Duration,
    /// How long to wait for the replicas (default: twice keys.secret_poll_interval, plus 30s).
    #[arg(long, value_parser = parse_duration)]
    replica_timeout: Option<Duration>,
    /// Print what would be done, and change nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    backend: super::BackendArg,
}

#[derive(Debug, Args)]
pub struct RetireArgs {
    #[command(flatten)]
    group: GroupArgs,
    /// The key to retire.
    #[arg(long, value_name = "ID", value_parser = super::parse_key_pair_id)]
    key_pair_id: crate::signer::KeyPairId,
    /// Added to mint.max_ttl and keys.secret_poll_interval before a key
    /// that stopped signing may go.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    margin: Duration,
    /// Print what would be done, and change nothing.
    #[arg(long)]
    dry_run: bool,
}

pub enum GroupCommand {
    Status(StatusArgs),
    Rotate(RotateArgs),
    Retire(RetireArgs),
}

impl GroupCommand {
    fn group(&self) -> &GroupArgs {
        match self {
            Self::Status(args) => &args.group,
            Self::Rotate(args) => &args.group,
            Self::Retire(args) => &args.group,
        }
    }
}

#[cfg(feature = "aws-cloudfront")]
pub fn run(command: GroupCommand) -> Result<Outcome, CliError> {
    use crate::rotation::{Context, NewKey, Replicas, RetirePlan, RotatePlan};
    use crate::signer::{HashAlgorithm, KeySpec};

    let group = command.group();
    let settings = crate::config::Settings::load_file(&group.config)
        .map_err(|e| format!("{}: {e}", group.config.display()))?;
    let token = std::env::var(&group.token_env)
        .ok()
        .filter(|t| !t.is_empty());
    let replicas = Replicas::new(group.replicas.clone(), token)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        let cx = Context::new(
            &settings,
            group.key_group_id.clone(),
            replicas,
            group.timeout,
            group.check_every,
        )
        .await?;
        match &command {
            GroupCommand::Status(args) => crate::rotation::status(&cx, args.margin).await,
            GroupCommand::Rotate(args) => {
                let new_key = match (&args.private_key, &args.kms_key_id, args.key_type) {
                    (Some(path), _, _) => NewKey::PemFile(path.clone()),
                    (_, Some(key_id), _) => NewKey::Kms(key_id.clone()),
                    (_, _, NewKeyType::Rsa) => NewKey::Generate(KeySpec::Rsa { bits: 2048 }),
                    (_, _, NewKeyType::Ecdsa) => NewKey::Generate(KeySpec::EcdsaP256),
                };
                let plan = RotatePlan {
                    new_key,
                    name: args.name.clone(),
                    deploy_timeout: args.deploy_timeout,
                    replica_timeout: args
                        .replica_timeout
                        .unwrap_or(settings.keys.ring_poll_interval * 2 + Duration::from_secs(30)),
                    dry_run: args.dry_run,
                    backend: args.backend.backend,
                    sha1: settings.cloudfront.hash_algorithm == HashAlgorithm::Sha1,
                };
                crate::rotation::rotate(&cx, &plan).await
            }
            GroupCommand::Retire(args) => {
                let plan = RetirePlan {
                    key_pair_id: args.key_pair_id.as_str().to_owned(),
                    margin: args.margin,
                    dry_run: args.dry_run,
                };
                crate::rotation::retire(&cx, &plan).await
            }
        }
    })?;
    Ok(Outcome::Success)
}

#[cfg(not(feature = "aws-cloudfront"))]
pub fn run(command: GroupCommand) -> Result<Outcome, CliError> {
    let _ = command.group();
    Err(
        "this build of cfmint has no CloudFront API support (built without the \
         `aws-cloudfront` cargo feature)"
            .to_owned()
            .into(),
    )
}
