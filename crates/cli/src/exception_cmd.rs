//! `evident mark-exception`: acknowledge a known break with a signed
//! `evident.exception` entry, never by editing anything.

use clap::Args;
use evident_core::ErrorCode;
use evident_core::entry::{Limits, format_ts, parse_entry};
use evident_core::verify::EXCEPTION_KIND;
use evident_store::reader::verify_log;
use evident_store::sequencer::system_clock;
use evident_store::{Appended, DataDir, LogInfo, Opened, Sequencer};
use serde_json::{Value, json};

use crate::Format;
use crate::common::{CmdError, DataArgs, print_json};

/// Acknowledge a verification break with a signed exception entry.
///
/// Verifies the log, and if it reports problems at entry --index, appends
/// an `evident.exception` entry (signed into the log like any other) whose
/// data names that index, the reason codes found there, the --reason and
/// who approved it. From then on `evident verify` lists those problems
/// under `acknowledged` and no longer counts them against `valid`. The
/// exception covers exactly those problems: a different kind of problem
/// later found at the same entry, or any problem elsewhere, stays a break.
/// Nothing is stored when there is no problem at that index.
///
/// Prints {log, index, exception_index, acknowledges}.
#[derive(Debug, Args)]
pub struct MarkExceptionArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The log, as TENANT/LOG.
    #[arg(long)]
    log: String,
    /// The entry whose problems are acknowledged.
    #[arg(long)]
    index: u64,
    /// Why the break is accepted (for auditors).
    #[arg(long)]
    reason: String,
    /// Who approved the exception.
    #[arg(long)]
    approved_by: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) format: Format,
}

/// Checks a free-text field an operator must fill in.
pub(crate) fn required(flag: &str, value: &str) -> Result<(), CmdError> {
    if value.trim().is_empty() {
        return Err(CmdError::new(
            "input.missing",
            format!("{flag} must not be empty"),
        ));
    }
    Ok(())
}

/// Appends a system event to `_system/events` (creating the tenant and the
/// log on a data directory that has none yet), as the server's system log
/// does; `fields` as for [`append_system_entry`].
pub(crate) fn record_system_event(
    dd: &DataDir,
    opened: &mut Opened,
    fields: Value,
) -> Result<Appended, CmdError> {
    let tenant = evident_core::entry::SYSTEM_TENANT;
    if opened.store.find_tenant(tenant)?.is_none() {
        opened
            .store
            .create_tenant(tenant, &format_ts(system_clock()))?;
    }
    let events = opened.log_or_create(&format!("{tenant}/events"))?;
    append_system_entry(dd, opened, &events, fields)
}

/// Appends one entry of a reserved `evident.*` kind, built from `fields`
/// (a JSON object of body fields plus `kind`), signed with the data
/// directory's key as its own batch.
pub(crate) fn append_system_entry(
    dd: &DataDir,
    opened: &mut Opened,
    log: &LogInfo,
    mut fields: Value,
) -> Result<Appended, CmdError> {
    let signer = dd.signer(opened)?;
    fields["occurred_at"] = json!(format_ts(system_clock()));
    let limits = Limits {
        allow_reserved_kinds: true,
        ..Limits::default()
    };
    let draft = parse_entry(fields.to_string().as_bytes(), &limits)
        .map_err(|e| CmdError::new(e.code(), e.to_string()))?;
    let mut seq = Sequencer::new(signer);
    let out = seq.append(&mut *opened.store, log, &[draft])?;
    out.entries
        .into_iter()
        .next()
        .ok_or_else(|| CmdError::new("cli.internal", "the batch returned no entry"))
}

/// Runs `mark-exception`.
pub fn mark_exception(args: &MarkExceptionArgs) -> Result<(), CmdError> {
    required("--reason", &args.reason)?;
    required("--approved-by", &args.approved_by)?;
    let dd = args.data.data_dir();
    let mut opened = dd.open()?;
    let log = opened.log(&args.log)?;
    let verifiers = opened.verifiers()?;
    let report = verify_log(&mut *opened.store, &log, verifiers, &mut |_, _| {})?;
    let mut codes: Vec<&str> = report
        .violations
        .iter()
        .filter(|v| v.index == args.index)
        .map(|v| v.reason.code())
        .collect();
    codes.dedup();
    if codes.is_empty() {
        return Err(CmdError::new(
            "exception.no_break",
            format!(
                "verify reports no open problem at entry {} of {}: nothing to acknowledge",
                args.index,
                log.path()
            ),
        ));
    }
    let entry = append_system_entry(
        &dd,
        &mut opened,
        &log,
        json!({
            "kind": EXCEPTION_KIND,
            "actor": args.approved_by,
            "action": "mark-exception",
            "resource": format!("{}#{}", log.path(), args.index),
            "outcome": "approved",
            "data": {
                "index": args.index,
                "acknowledges": codes,
                "reason": args.reason,
                "approved_by": args.approved_by,
            },
        }),
    )?;
    match args.format {
        Format::Json => print_json(&json!({
            "log": log.path(),
            "index": args.index,
            "exception_index": entry.index,
            "acknowledges": codes,
        })),
        Format::Text => println!(
            "{}: exception entry {} acknowledges {} at entry {}",
            log.path(),
            entry.index,
            codes.join(", "),
            args.index
        ),
    }
    Ok(())
}
