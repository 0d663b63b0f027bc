//! `evident writes pause|resume|status`: the containment switch, on the
//! data directory.
//!
//! The pause is a row in the database, so it reaches every server running
//! on it (each reads it at least once a second) as well as `evident
//! append` on the same directory. The same switch is `POST
//! /v1/admin/writes` on a server.

use clap::{Args, Subcommand};
use evident_core::entry::{Limits, SYSTEM_TENANT, format_ts, parse_entry};
use evident_store::sequencer::system_clock;
use evident_store::{DataDir, Opened, Sequencer, Store, WritesPause};
use serde_json::{Value, json};

use crate::Format;
use crate::common::{CmdError, DataArgs, print_json};

/// Pause or resume appends (containment), or show whether they are paused.
///
/// While paused, every server on this database answers appends with 503
/// `writes.paused` (within a second of the change) and `evident append`
/// refuses with the same code; reads, receipts, export and verification
/// go on. Use it to stop the damage during an integrity incident, or to
/// hold a database still. Pause and resume are recorded in the
/// `_system/events` log when the signing key is at hand.
#[derive(Debug, Args)]
pub struct WritesArgs {
    #[command(subcommand)]
    command: WritesCommand,
}

#[derive(Debug, Subcommand)]
enum WritesCommand {
    /// Pause appends on every server of this database.
    ///
    /// Pausing while paused replaces who, why and since.
    Pause(PauseArgs),
    /// Resume appends. Resuming while not paused changes nothing.
    Resume(StatusArgs),
    /// Show whether appends are paused, by whom, why and since when.
    Status(StatusArgs),
}

#[derive(Debug, Args)]
struct PauseArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Why: shown to clients in the 503 answer and kept in the system log.
    #[arg(long)]
    reason: String,
    /// Who pauses [default: $USER, or `cli`].
    #[arg(long)]
    by: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(Debug, Args)]
struct StatusArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Who resumes [default: $USER, or `cli`] (resume only).
    #[arg(long)]
    by: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

impl WritesArgs {
    /// The output format of the subcommand.
    pub fn format(&self) -> Format {
        match &self.command {
            WritesCommand::Pause(a) => a.format,
            WritesCommand::Resume(a) | WritesCommand::Status(a) => a.format,
        }
    }
}

fn operator(by: Option<&String>) -> String {
    by.cloned()
        .or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "cli".to_owned())
}

/// The pause as JSON, the shape `GET /v1/admin/writes` answers with.
fn pause_json(p: Option<&WritesPause>) -> Value {
    match p {
        None => json!({"paused": false}),
        Some(p) => json!({"paused": true, "by": p.by, "reason": p.reason, "since": p.since}),
    }
}

fn print(format: Format, v: &Value) {
    match format {
        Format::Json => print_json(v),
        Format::Text => {
            if v["paused"] == true {
                println!(
                    "writes paused by {} since {}: {}",
                    v["by"].as_str().unwrap_or_default(),
                    v["since"].as_str().unwrap_or_default(),
                    v["reason"].as_str().unwrap_or_default()
                );
            } else {
                println!("writes running");
            }
            if v["event_recorded"] == false {
                eprintln!(
                    "note: not recorded in the _system/events log (no signing key or no system log here)"
                );
            }
        }
    }
}

/// Runs `writes`.
pub fn writes(args: &WritesArgs) -> Result<(), CmdError> {
    match &args.command {
        WritesCommand::Status(a) => {
            let mut opened = a.data.open()?;
            let p = opened.store.writes_pause()?;
            print(a.format, &pause_json(p.as_ref()));
            Ok(())
        }
        WritesCommand::Pause(a) => {
            let reason = a.reason.trim();
            if reason.is_empty() {
                return Err(CmdError::new(
                    "writes.reason_required",
                    "say why writes are paused: --reason TEXT",
                ));
            }
            let pause = WritesPause {
                by: operator(a.by.as_ref()),
                reason: reason.to_owned(),
                since: format_ts(system_clock()),
            };
            let dd = a.data.data_dir();
            let mut opened = dd.open()?;
            opened.store.set_writes_pause(Some(&pause))?;
            let mut v = pause_json(Some(&pause));
            v["event_recorded"] = json!(record(&dd, &mut opened, Some(&pause), &pause.by));
            print(a.format, &v);
            Ok(())
        }
        WritesCommand::Resume(a) => {
            let dd = a.data.data_dir();
            let mut opened = dd.open()?;
            let was = opened.store.writes_pause()?;
            opened.store.set_writes_pause(None)?;
            let mut v = pause_json(None);
            v["was"] = pause_json(was.as_ref());
            if was.is_some() {
                let by = operator(a.by.as_ref());
                v["event_recorded"] = json!(record(&dd, &mut opened, None, &by));
            }
            print(a.format, &v);
            Ok(())
        }
    }
}

/// Appends `evident.writes.paused` or `evident.writes.resumed` to the
/// system log, as the admin endpoint does. Best effort: the switch itself
/// is already stored, and a data directory without the signing key (kept
/// elsewhere) or without a system log (never served) can still be paused.
fn record(dd: &DataDir, opened: &mut Opened, pause: Option<&WritesPause>, by: &str) -> bool {
    let Ok(signer) = dd.signer(opened) else {
        return false;
    };
    let Ok(Some(log)) = opened
        .store
        .find_log(SYSTEM_TENANT, evident_server::system::SYSTEM_LOG)
    else {
        return false;
    };
    let (kind, action) = match pause {
        Some(_) => ("evident.writes.paused", "writes pause"),
        None => ("evident.writes.resumed", "writes resume"),
    };
    let line = json!({
        "kind": kind,
        "actor": by,
        "action": action,
        "resource": opened.instance,
        "outcome": "ok",
        "occurred_at": format_ts(system_clock()),
        "data": pause_json(pause),
    })
    .to_string();
    let limits = Limits {
        allow_reserved_kinds: true,
        ..Limits::default()
    };
    let Ok(draft) = parse_entry(line.as_bytes(), &limits) else {
        return false;
    };
    Sequencer::new(signer)
        .append(&mut *opened.store, &log, &[draft])
        .is_ok()
}

/// `Err(writes.paused)` when appends are paused: what `evident append`
/// checks before it stores anything.
pub fn refuse_if_paused(store: &mut dyn Store) -> Result<(), CmdError> {
    match store.writes_pause()? {
        None => Ok(()),
        Some(p) => Err(CmdError::new(
            "writes.paused",
            format!(
                "writes are paused by {} since {}: {}; nothing was stored (`evident writes resume` lifts the pause)",
                p.by, p.since, p.reason
            ),
        )),
    }
}
