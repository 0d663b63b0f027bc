//! `evident export` and `evident verify-export` (being written).

use std::path::PathBuf;

use clap::Args;

use crate::common::{CmdError, DataArgs};
use crate::{Format, Outcome};

/// Export a log for offline verification (C2SP tlog-tiles layout).
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The log, as TENANT/LOG.
    #[arg(long)]
    log: String,
    /// Directory to write.
    #[arg(long)]
    out: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) format: Format,
}

/// Verify an export directory offline.
#[derive(Debug, Args)]
pub struct VerifyExportArgs {
    /// The export directory.
    dir: PathBuf,
    /// Trust only this verifier key (repeatable).
    #[arg(long = "vkey")]
    vkeys: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) format: Format,
}

/// Runs `export`.
pub fn export(args: &ExportArgs) -> Result<(), CmdError> {
    let _ = (&args.data, &args.log, &args.out);
    Err(CmdError::new(
        "cli.unimplemented",
        "export is not built yet",
    ))
}

/// Runs `verify-export`.
pub fn verify_export(args: &VerifyExportArgs) -> Result<Outcome, CmdError> {
    let _ = (&args.dir, &args.vkeys);
    Err(CmdError::new(
        "cli.unimplemented",
        "verify-export is not built yet",
    ))
}
