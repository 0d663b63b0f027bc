//! `evident redact`: erase an entry's body on a lawful request, the one
//! sanctioned deletion.

use clap::Args;
use evident_core::entry::EnvelopeView;
use evident_core::verify::{EXCEPTION_KIND, REDACTION_KIND};
use evident_store::{StoreError, StoredEntry};
use serde_json::json;

use crate::Format;
use crate::common::{CmdError, DataArgs, print_json};
use crate::exception_cmd::{append_system_entry, required};

/// Erase an entry's body and salt, recorded by a signed redaction entry.
///
/// Appends an `evident.redaction` entry naming --index, the --reason and
/// who approved it, then removes that entry's body and salt from the
/// database. The envelope (with its salted body digest) stays, so the
/// hash chain, the Merkle tree, every checkpoint, receipt and proof stay
/// valid; `evident verify` counts the entry under `redacted_count`. A
/// body missing without such an entry is still a break (`body.missing`).
///
/// Refused for an entry that has no body, was redacted before, or is
/// itself an exception or redaction entry (verification reads those).
///
/// Prints {log, index, redaction_index}.
#[derive(Debug, Args)]
pub struct RedactArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The log, as TENANT/LOG.
    #[arg(long)]
    log: String,
    /// The entry whose body is erased.
    #[arg(long)]
    index: u64,
    /// Why (e.g. the erasure request's reference).
    #[arg(long)]
    reason: String,
    /// Who approved the erasure.
    #[arg(long)]
    approved_by: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) format: Format,
}

/// Runs `redact`.
pub fn redact(args: &RedactArgs) -> Result<(), CmdError> {
    required("--reason", &args.reason)?;
    required("--approved-by", &args.approved_by)?;
    let dd = args.data.data_dir();
    let mut opened = dd.open()?;
    let log = opened.log(&args.log)?;
    let size = opened
        .store
        .latest_checkpoint(log.id)?
        .map_or(0, |c| c.size);
    let mut found: Option<StoredEntry> = None;
    if args.index < size {
        opened.store.scan_entries(log.id, args.index, &mut |e| {
            if e.index == args.index {
                found = Some(e.into());
            }
            Ok(false)
        })?;
    }
    let Some(entry) = found else {
        return Err(StoreError::NoSuchEntry {
            origin: log.origin.clone(),
            index: args.index,
            size,
        }
        .into());
    };
    let refused = |reason: &str| -> CmdError {
        StoreError::RedactRefused {
            index: args.index,
            reason: reason.to_owned(),
        }
        .into()
    };
    if entry.body.is_none() {
        return Err(refused("it has no body"));
    }
    let kind = EnvelopeView::parse(&entry.envelope)
        .map(|v| v.kind.into_owned())
        .map_err(|e| {
            refused(&format!(
                "its envelope is unreadable ({e}); run `evident verify`"
            ))
        })?;
    if kind == EXCEPTION_KIND || kind == REDACTION_KIND {
        return Err(refused(&format!(
            "it is an {kind} entry, which verification reads"
        )));
    }
    let marker = append_system_entry(
        &dd,
        &mut opened,
        &log,
        json!({
            "kind": REDACTION_KIND,
            "actor": args.approved_by,
            "action": "redact",
            "resource": format!("{}#{}", log.path(), args.index),
            "outcome": "erased",
            "data": {
                "index": args.index,
                "reason": args.reason,
                "approved_by": args.approved_by,
            },
        }),
    )?;
    opened.store.redact_body(
        log.id,
        args.index,
        marker.index,
        &evident_core::entry::format_ts(evident_store::sequencer::system_clock()),
    )?;
    match args.format {
        Format::Json => print_json(&json!({
            "log": log.path(),
            "index": args.index,
            "redaction_index": marker.index,
        })),
        Format::Text => println!(
            "{}: body of entry {} erased, recorded by redaction entry {}",
            log.path(),
            args.index,
            marker.index
        ),
    }
    Ok(())
}
