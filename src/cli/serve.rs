//! `cfmint serve`: the minting service, on the embedded default or a config file.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, Outcome};
use crate::app::Application;
use crate::config::Settings;
use crate::keyring::ConfigSource;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file (default: the embedded config/default.toml).
    #[arg(long, short, env = "CFMINT_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

pub fn run(args: ServeArgs) -> Result<Outcome, CliError> {
    let settings = match &args.config {
        Some(path) => Settings::load_file(path),
        None => Settings::load_default(),
    }
    .map_err(|e| CliError::from(e.to_string()))?;
    super::init_tracing(settings.server.log_format, "info");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        let source = match &args.config {
            Some(path) => ConfigSource::File(path.clone()),
            None => ConfigSource::Embedded,
        };
        let application = Application::build(settings)
            .await
            .map_err(CliError::from)?
            .with_config_source(source);
        let stop = crate::app::shutdown_signal();
        tracing::info!(
            listen = %application.local_addr(),
            admin = %application
                .admin_addr()
                .map_or_else(|| "off".to_owned(), |addr| addr.to_string()),
            key_pair_id = %application.state().minter.ring().active().id(),
            "cfmint serving"
        );
        application
            .run_until(stop)
            .await
            .map_err(|e| CliError::from(format!("server failed: {e}")))?;
        tracing::info!("stopped");
        Ok(Outcome::Success)
    })
}
