//! Evident's operator commands.
//!
//! Each command lives in its own module; [`run`] dispatches and maps the
//! outcome to the exit status convention every verifying command shares:
//! 0 valid, 1 problems found, 2 could not verify (bad input, unreadable
//! file, unknown key format).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

pub mod append_cmd;
pub mod backup_cmd;
pub mod bench_cmd;
pub mod common;
pub mod exception_cmd;
pub mod export_cmd;
pub mod init_cmd;
pub mod keys_cmd;
pub mod log_cmds;
pub mod migrate_cmd;
pub mod receipt_cmd;
pub mod redact_cmd;
pub mod repair_cmd;
pub mod seal_cmd;
pub mod serve_cmd;
pub mod tenant_cmds;
pub mod verify_cmd;
pub mod writes_cmd;

use common::CmdError;

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
    Serve(serve_cmd::ServeArgs),
    Init(init_cmd::InitArgs),
    Append(append_cmd::AppendArgs),
    Verify(verify_cmd::VerifyArgs),
    Checkpoint(log_cmds::CheckpointArgs),
    Entries(log_cmds::EntriesArgs),
    Logs(log_cmds::LogsArgs),
    Export(export_cmd::ExportArgs),
    VerifyExport(export_cmd::VerifyExportArgs),
    Receipt(log_cmds::ReceiptArgs),
    VerifyReceipt(receipt_cmd::VerifyReceiptArgs),
    Keys(keys_cmd::KeysArgs),
    MarkException(exception_cmd::MarkExceptionArgs),
    Redact(redact_cmd::RedactArgs),
    Repair(repair_cmd::RepairArgs),
    Migrate(migrate_cmd::MigrateArgs),
    Tenant(tenant_cmds::TenantArgs),
    ApiKey(tenant_cmds::ApiKeyArgs),
    Bench(bench_cmd::BenchArgs),
    Writes(writes_cmd::WritesArgs),
    Backup(backup_cmd::BackupArgs),
    RestoreCheck(backup_cmd::RestoreCheckArgs),
    Seal(seal_cmd::SealArgs),
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
        Command::Serve(a) => done(serve_cmd::serve(&a), Format::Text),
        Command::Init(a) => done(init_cmd::init(&a), a.format),
        Command::Append(a) => done(append_cmd::append(&a), a.format),
        Command::Verify(a) => verified(verify_cmd::verify(&a), a.format),
        Command::Checkpoint(a) => done(log_cmds::checkpoint(&a), a.format),
        Command::Entries(a) => done(log_cmds::entries(&a), a.format),
        Command::Logs(a) => done(log_cmds::logs(&a), a.format),
        Command::Export(a) => done(export_cmd::export(&a), a.format),
        Command::VerifyExport(a) => verified(export_cmd::verify_export(&a), a.format),
        Command::Receipt(a) => done(log_cmds::receipt(&a), Format::Text),
        Command::VerifyReceipt(a) => receipt_cmd::verify_receipt(&a).into(),
        Command::Keys(a) => done(keys_cmd::keys(&a), a.format()),
        Command::MarkException(a) => done(exception_cmd::mark_exception(&a), a.format),
        Command::Redact(a) => done(redact_cmd::redact(&a), a.format),
        Command::Repair(a) => done(repair_cmd::repair(&a), a.format),
        Command::Migrate(a) => done(migrate_cmd::migrate(&a), a.format()),
        Command::Tenant(a) => done(tenant_cmds::tenant(&a), a.format()),
        Command::ApiKey(a) => done(tenant_cmds::api_key(&a), a.format()),
        Command::Bench(a) => bench_cmd::bench(&a),
        Command::Writes(a) => done(writes_cmd::writes(&a), a.format()),
        Command::Backup(a) => done(backup_cmd::backup(&a), a.format),
        Command::RestoreCheck(a) => verified(backup_cmd::restore_check(&a), a.format),
        Command::Seal(a) => done(seal_cmd::seal(&a), a.format),
    }
}

/// Exit status of a command that does something: 0 done, 1 failed.
fn done(r: Result<(), CmdError>, format: Format) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            e.print(format);
            ExitCode::FAILURE
        }
    }
}

/// Exit status of a verifying command: 0 valid, 1 problems, 2 could not
/// verify.
fn verified(r: Result<Outcome, CmdError>, format: Format) -> ExitCode {
    match r {
        Ok(o) => o.into(),
        Err(e) => {
            e.print(format);
            Outcome::CouldNotVerify.into()
        }
    }
}
