//! `cfmint edge`: the local edge, from the `[edge]` section of a config file.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, Outcome};
use crate::config::LogFormat;
use crate::edge::{Edge, EdgeSettings};

#[derive(Debug, Args)]
pub struct EdgeArgs {
    /// Configuration file with an [edge] section.
    #[arg(long, short)]
    config: PathBuf,
    #[command(flatten)]
    backend: super::BackendArg,
}

pub fn run(args: EdgeArgs) -> Result<Outcome, CliError> {
    let backend = args.backend.backend;
    let text = std::fs::read_to_string(&args.config)
        .map_err(|e| format!("cannot read {}: {e}", args.config.display()))?;
    let settings = EdgeSettings::load(&text).map_err(|e| e.to_string())?;
    super::init_tracing(LogFormat::Text, "info");
    let keys = settings.public_keys(backend)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        let edge = Edge::build(settings, keys).await?;
        let stop = crate::app::shutdown_signal();
        tracing::info!(listen = %edge.local_addr(), "cfmint edge serving");
        edge.run_until(stop)
            .await
            .map_err(|e| format!("edge failed: {e}"))?;
        Ok(Outcome::Success)
    })
}
