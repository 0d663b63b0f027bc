//! The `evident` command: argument parsing only; the work is in the library.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of the C library's allocator. Every append allocates
/// and frees a few dozen small buffers on one thread that another thread
/// then drops (the HTTP workers hand entries to the writer; the spool
/// reader hands drafts to the sequencer), which glibc's malloc pays for in
/// arena locks and `malloc_consolidate`: 14% of the server's CPU under
/// single-entry load. See BENCHMARKS.md for what the switch measured.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = evident::Cli::parse();
    evident::run(cli)
}
