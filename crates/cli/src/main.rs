//! The `evident` command: argument parsing only; the work is in the library.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = evident::Cli::parse();
    evident::run(cli)
}
