//! Evident's operator commands.
//!
//! Each command lives in its own module; [`run`] dispatches and maps the
//! outcome to the exit status convention every verifying command shares:
//! 0 valid, 1 problems found, 2 could not verify (bad input, unreadable
//! file, unknown key format).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

pub mod receipt_cmd;

/// Evident: a tamper-evident audit and receipt ledger.
///
/// Applications append events; Evident links them in a hash chain and an
/// RFC 6962 Merkle tree, signs C2SP checkpoints with Ed25519 and hands back
/// receipts that anyone can verify offline.
#[derive(Debug, Parser)]
#[command(name = "evident", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    VerifyReceipt(receipt_cmd::VerifyReceiptArgs),
}

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Lines for a person.
    #[default]
    Text,
    /// One JSON document on stdout.
    Json,
}

/// Outcome of a verifying command, mapped to the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything checked out (exit 0).
    Valid,
    /// Problems were found (exit 1).
    Invalid,
    /// Verification could not be carried out (exit 2).
    CouldNotVerify,
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> ExitCode {
        ExitCode::from(match o {
            Outcome::Valid => 0,
            Outcome::Invalid => 1,
            Outcome::CouldNotVerify => 2,
        })
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::VerifyReceipt(args) => receipt_cmd::verify_receipt(&args).into(),
    }
}
