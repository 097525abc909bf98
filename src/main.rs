//! The `portcullis` binary: everything is in [`portcullis::cli`].

use std::process::ExitCode;

/// mimalloc: its size-segregated pages go back to the system once their
/// objects are freed, so a console that stored a large first sync (and
/// kept most of it compact) does not stay at the sync's peak
/// ([`portcullis::backend::batch::return_freed_memory`]).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    portcullis::cli::main()
}
