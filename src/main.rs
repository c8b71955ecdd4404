use std::process::ExitCode;

/// mimalloc: a mint makes about a hundred small allocations, and glibc's
/// allocator spends a quarter of the request's own CPU time on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Process-wide set-up happens here, once, before any subcommand runs: the
/// TLS crypto provider that every HTTPS client and server in cfmint uses.
fn main() -> ExitCode {
    cfmint::tls::install_crypto_provider();
    cfmint::cli::run()
}
