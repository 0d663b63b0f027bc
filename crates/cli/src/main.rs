//! The `evident` command: thin argument parsing over library code.
#![forbid(unsafe_code)]

use clap::Parser;

/// Evident: a tamper-evident audit and receipt ledger.
///
/// Applications append events; Evident links them in a hash chain and an
/// RFC 6962 Merkle tree, signs C2SP checkpoints with Ed25519 and hands back
/// receipts that anyone can verify offline.
#[derive(Debug, Parser)]
#[command(name = "evident", version, propagate_version = true)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
