use std::process::ExitCode;

/// mimalloc: a mint makes about a hundred small allocations, and glibc's
/// allocator spends a quarter of the request's own CPU time on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    cfmint::cli::run()
}
