//! Reading a log: `evident checkpoint`, `evident entries`, `evident receipt`
//! and `evident logs`.

use clap::Args;
use evident_core::entry::EnvelopeView;
use evident_store::reader;
use serde_json::{Value, json};

use crate::Format;
use crate::common::{CmdError, DataArgs, print_json};

/// Print a log's latest signed checkpoint (C2SP tlog-checkpoint in a
/// signed note), byte for byte as stored.
#[derive(Debug, Args)]
pub struct CheckpointArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The log, as TENANT/LOG.
    #[arg(long)]
    log: String,
    /// Output format: text prints the note as is; json wraps it with its
    /// parsed origin, size and root (not verified: use `verify`).
    #[arg(long, value_enum, default_value_t)]
    pub(crate) format: Format,
}

/// Runs `checkpoint`.
pub fn checkpoint(args: &CheckpointArgs) -> Result<(), CmdError> {
    let mut opened = args.data.open()?;
    let log = opened.log(&args.log)?;
    let (stored, cp) = reader::latest(&mut *opened.store, &log)?;
    match args.format {
        Format::Text => print!("{}", stored.note),
        Format::Json => print_json(&json!({
            "origin": cp.origin,
            "size": cp.size,
            "root": cp.root,
            "note": stored.note,
        })),
    }
    Ok(())
}

/// Show entries of a log — envelopes and bodies — for inspection.
///
/// Shows what is stored, without verifying it (use `evident verify`).
#[derive(Debug, Args)]
pub struct EntriesArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The log, as TENANT/LOG.
    #[arg(long)]
    log: String,
    /// First index to show.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// Most entries to show.
    #[arg(long, default_value_t = 100)]
    limit: u64,
    /// Only entries of this kind.
    #[arg(long)]
    kind: Option<String>,
    /// Output format: json prints one document `{entries, next}`.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) format: Format,
}

/// Runs `entries`.
pub fn entries(args: &EntriesArgs) -> Result<(), CmdError> {
    let mut opened = args.data.open()?;
    let log = opened.log(&args.log)?;
    let mut out: Vec<Value> = Vec::new();
    let mut next = None;
    opened.store.scan_entries(log.id, args.from, &mut |e| {
        let view = EnvelopeView::parse(e.envelope).ok();
        if let (Some(kind), Some(v)) = (&args.kind, &view)
            && v.kind != kind.as_str()
        {
            return Ok(true);
        }
        if out.len() as u64 >= args.limit {
            next = Some(e.index);
            return Ok(false);
        }
        out.push(reader::entry_json(&e));
        Ok(true)
    })?;
    match args.format {
        Format::Json => print_json(&json!({"entries": out, "next": next})),
        Format::Text => {
            for e in &out {
                let env = &e["envelope"];
                println!(
                    "{:>8}  {}  {}  {}",
                    e["index"].as_u64().unwrap_or_default(),
                    env["ts"].as_str().unwrap_or("?"),
                    env["kind"].as_str().unwrap_or("?"),
                    if e["body"].is_null() {
                        "(no body)".to_owned()
                    } else {
                        e["body"].to_string()
                    }
                );
            }
            if let Some(n) = next {
                println!("… more from --from {n}");
            }
        }
    }
    Ok(())
}

/// Get a receipt for one entry: its envelope, body and salt, the latest
/// signed checkpoint and the inclusion proof to it.
///
/// The receipt is JSON (`evident.receipt.v1`) and verifies offline with
/// `evident verify-receipt FILE --vkey KEY`.
#[derive(Debug, Args)]
pub struct ReceiptArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The log, as TENANT/LOG.
    #[arg(long)]
    log: String,
    /// The entry's index.
    #[arg(long)]
    index: u64,
    /// Leave out the body and salt (the receipt still proves the envelope).
    #[arg(long)]
    no_body: bool,
    /// Write the receipt to this file instead of standard output.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

/// Runs `receipt`.
pub fn receipt(args: &ReceiptArgs) -> Result<(), CmdError> {
    let mut opened = args.data.open()?;
    let log = opened.log(&args.log)?;
    let r = reader::receipt(&mut *opened.store, &log, args.index, !args.no_body)?;
    let text = r.to_json();
    match &args.out {
        Some(path) => std::fs::write(path, format!("{text}\n"))
            .map_err(|e| CmdError::new("io.write_failed", format!("{}: {e}", path.display())))?,
        None => println!("{text}"),
    }
    Ok(())
}

/// List the logs in the data directory.
#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) format: Format,
}

/// Runs `logs`.
pub fn logs(args: &LogsArgs) -> Result<(), CmdError> {
    let mut opened = args.data.open()?;
    let mut out = Vec::new();
    for log in opened.store.logs()? {
        let size = opened
            .store
            .latest_checkpoint(log.id)?
            .map_or(0, |c| c.size);
        out.push((log, size));
    }
    match args.format {
        Format::Json => print_json(&json!({"logs": out.iter().map(|(l, size)| json!({
            "log": l.path(), "origin": l.origin, "size": size, "created_at": l.created_at,
        })).collect::<Vec<_>>()})),
        Format::Text => {
            for (l, size) in &out {
                println!("{}\t{size}\t{}", l.path(), l.origin);
            }
        }
    }
    Ok(())
}
