//! `cfmint demo`: the whole flow on loopback with throwaway keys: the minting
//! service, the local edge and a sample audiobook page.

use std::time::Duration;

use clap::Args;

use super::{CliError, Outcome, parse_duration};
use crate::config::LogFormat;
use crate::demo::{self, DemoOptions};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Port of the demo page (0: any free port).
    #[arg(long, default_value_t = 8000)]
    page_port: u16,
    /// Port of the minting service.
    #[arg(long, default_value_t = 8080)]
    api_port: u16,
    /// Port of the local edge.
    #[arg(long, default_value_t = 8081)]
    edge_port: u16,
    /// Cookie lifetime; the page renews them at 80% of it (at 24 s by default).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    ttl: Duration,
    /// Serve HTTPS as app.DOMAIN, auth.DOMAIN and cdn.DOMAIN with a
    /// self-signed certificate and cookies for DOMAIN (map *.DOMAIN to
    /// 127.0.0.1 in the browser).
    #[arg(long, value_name = "DOMAIN")]
    tls_domain: Option<String>,
}

pub fn run(args: DemoArgs) -> Result<Outcome, CliError> {
    super::init_tracing(LogFormat::Text, "info");
    if args.ttl < Duration::from_secs(10) {
        return Err("--ttl must be at least 10s".to_owned().into());
    }
    let options = DemoOptions {
        page_port: args.page_port,
        api_port: args.api_port,
        edge_port: args.edge_port,
        ttl: args.ttl,
        tls_domain: args.tls_domain.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let stop = {
        let _inside = runtime.enter();
        crate::app::shutdown_signal()
    };
    runtime.block_on(demo::run(
        options,
        |urls| {
            println!("cfmint demo is running (ctrl-c to stop):");
            println!("  open       {}/", urls.page);
            println!("  mint API   {}", urls.api);
            println!("  edge       {}", urls.edge);
            println!("  log in as  demo / demo (the page does it for you)");
            if let Some(domain) = &args.tls_domain {
                println!(
                    "  browser    chromium --host-resolver-rules=\"MAP *.{domain} 127.0.0.1\" \\\n             --ignore-certificate-errors (the certificate is self-signed)"
                );
            }
        },
        stop,
    ))?;
    Ok(Outcome::Success)
}
