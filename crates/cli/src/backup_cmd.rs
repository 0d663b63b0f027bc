//! `evident backup` and `evident restore-check`: a consistent copy of the
//! database taken while a server runs, and the check an operator runs on a
//! copy before promoting it.

use std::path::{Path, PathBuf};

use clap::Args;
use evident_core::note::Verifiers;
use evident_store::reader::verify_log;
use evident_store::sqlite::SqliteStore;
use evident_store::sqlite::backup::backup_database;
use evident_store::{DataDir, Store};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::common::{CmdError, DataArgs, parse_vkeys, print_json};
use crate::{Format, Outcome};

/// Take a consistent online backup of the database into FILE.
///
/// Safe while `evident serve` writes: SQLite's online backup API copies
/// one committed state, never half of a batch. Progress goes to standard
/// error. The copy is checked before success is reported: SQLite's
/// integrity check, this binary's migration head, an instance name, and
/// every log's latest checkpoint readable. The result restores by copying
/// it into place as `<data-dir>/evident.db` (with the server stopped and
/// any old `evident.db-wal` and `evident.db-shm` removed); check it with
/// `evident restore-check FILE` first. The signing key is not in it: keep
/// the key's own backup apart. A backup taken during a writes pause
/// carries the pause.
#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The backup file to create (never overwritten).
    #[arg(long)]
    out: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) format: Format,
}

/// Check a backup before promoting it: restore it into a temporary
/// directory, verify every log in full, and (with --anchors) check it
/// against the published seals, so an old or cut-short backup is reported
/// as a rollback or truncation.
///
/// FILE is never modified. The report is `{valid, file, instance,
/// migration_head, writes_paused, logs: [verification report…], anchors}`
/// (the reports have `evident verify`'s shape). Checkpoints are checked
/// against the backup's own key table unless --vkey pins the keys you
/// hold, which an operator restoring after an incident should do.
///
/// Exit status: 0 valid, 1 problems found, 2 could not verify.
#[derive(Debug, Args)]
pub struct RestoreCheckArgs {
    /// The backup file (an `evident backup` output, or any copy of
    /// `evident.db`).
    file: PathBuf,
    /// Trust only this verifier key (repeatable).
    #[arg(long = "vkey")]
    vkeys: Vec<String>,
    /// Also check every log against the seals in this anchor (a directory
    /// path, file:///dir or s3://bucket/prefix): a backup older than the last seal is reported
    /// as anchor.rollback.
    #[arg(long)]
    anchors: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) format: Format,
}

fn io_err(what: &str, path: &Path, e: &std::io::Error) -> CmdError {
    CmdError::new("io.failed", format!("{what} {}: {e}", path.display()))
}

/// Runs `backup`.
pub fn backup(args: &BackupArgs) -> Result<(), CmdError> {
    let dd = args.data.data_dir();
    if dd.database_url().is_some() {
        return Err(CmdError::new(
            "backup.unsupported",
            "evident backup copies the embedded SQLite database; back up PostgreSQL with its own tools (pg_dump or base backups; see docs/design.md)",
        ));
    }
    // Opening checks the data directory is initialised and at the head.
    let opened = args.data.open()?;
    let source = SqliteStore::open(&dd.db_path(), false)?;
    if args.out.exists() {
        return Err(CmdError::new(
            "backup.exists",
            format!("{} exists; a backup never overwrites", args.out.display()),
        ));
    }
    let name = args
        .out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "backup".into());
    let partial = args.out.with_file_name(format!(".{name}.partial"));
    let _ = std::fs::remove_file(&partial);
    let bar = if args.format == Format::Json {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} backing up {bar:40} {pos}/{len} pages ({eta} left)",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    };
    let copied = backup_database(source.connection(), &partial, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    drop(source);
    drop(opened);
    let result = copied
        .map_err(CmdError::from)
        .and_then(|pages| check_backup(&partial).map(|summary| (pages, summary)));
    let (pages, mut summary) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    // Last, so FILE exists only once it is complete and checked.
    if args.out.exists() {
        let _ = std::fs::remove_file(&partial);
        return Err(CmdError::new(
            "backup.exists",
            format!(
                "{} appeared meanwhile; the backup is discarded",
                args.out.display()
            ),
        ));
    }
    std::fs::rename(&partial, &args.out).map_err(|e| io_err("cannot create", &args.out, &e))?;
    let bytes = std::fs::metadata(&args.out).map_or(0, |m| m.len());
    summary["file"] = json!(args.out.display().to_string());
    summary["bytes"] = json!(bytes);
    summary["pages"] = json!(pages);
    match args.format {
        Format::Json => print_json(&summary),
        Format::Text => {
            let logs = summary["logs"].as_array().map_or(0, Vec::len);
            println!(
                "backup {} — {bytes} bytes, {logs} logs, integrity ok, migration head {}; check it with `evident restore-check {}`",
                args.out.display(),
                summary["migration_head"],
                args.out.display()
            );
        }
    }
    Ok(())
}

/// Opens a finished copy and checks it is a whole Evident database:
/// SQLite's integrity check, the migration head, the instance, each log's
/// latest checkpoint. Returns `{instance, migration_head, integrity, logs:
/// [{log, size}]}`.
fn check_backup(path: &Path) -> Result<Value, CmdError> {
    let invalid = |m: String| CmdError::new("backup.invalid", m);
    let mut store = SqliteStore::open(path, false)?;
    let integrity: String = store
        .connection()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| invalid(format!("integrity check: {e}")))?;
    if integrity != "ok" {
        return Err(invalid(format!("integrity check: {integrity}")));
    }
    let status = store.migration_status()?;
    if status.current != status.expected {
        return Err(invalid(format!(
            "the copy is at migration {}, this binary expects {}",
            status.current, status.expected
        )));
    }
    let instance = store
        .instance()?
        .ok_or_else(|| invalid("the copy has no instance name".into()))?;
    let mut logs = Vec::new();
    for log in store.logs()? {
        let size = store.latest_checkpoint(log.id)?.map_or(0, |c| c.size);
        logs.push(json!({"log": log.path(), "size": size}));
    }
    Ok(json!({
        "instance": instance,
        "migration_head": status.current,
        "integrity": "ok",
        "logs": logs,
    }))
}

/// Runs `restore-check`.
pub fn restore_check(args: &RestoreCheckArgs) -> Result<Outcome, CmdError> {
    if !args.file.is_file() {
        return Err(CmdError::new(
            "io.failed",
            format!("{} is not a file", args.file.display()),
        ));
    }
    let pinned = if args.vkeys.is_empty() {
        None
    } else {
        Some(parse_vkeys(&args.vkeys)?)
    };
    let anchor = args
        .anchors
        .as_deref()
        .map(evident_store::anchor::Anchor::open)
        .transpose()
        .map_err(crate::seal_cmd::anchor_err)?;
    let tmp = tempfile::tempdir()
        .map_err(|e| io_err("cannot create", Path::new("a temporary directory"), &e))?;
    let dd = DataDir::new(tmp.path(), None);
    std::fs::copy(&args.file, dd.db_path()).map_err(|e| io_err("cannot copy", &args.file, &e))?;
    let mut opened = dd.open()?;
    let head = opened.store.migration_status()?.current;
    let paused = opened.store.writes_pause()?;
    let keys: Verifiers = match pinned {
        Some(k) => k,
        None => opened.verifiers()?,
    };
    let mut reports = Vec::new();
    for log in opened.store.logs()? {
        let report = verify_log(&mut *opened.store, &log, keys.clone(), &mut |_, _| {})?;
        let (value, anchored, valid) = crate::seal_cmd::with_anchors(
            &mut *opened.store,
            &log,
            &report,
            anchor.as_ref(),
            &keys,
        )?;
        if args.format == Format::Text {
            crate::verify_cmd::print_text(&log.path(), &report);
            if let Some(a) = &anchored {
                crate::seal_cmd::print_anchor_text(&log.path(), a);
            }
        }
        reports.push((value, valid));
    }
    let valid = reports.iter().all(|r| r.1);
    let reports: Vec<Value> = reports.into_iter().map(|r| r.0).collect();
    let out = json!({
        "valid": valid,
        "file": args.file.display().to_string(),
        "instance": opened.instance,
        "migration_head": head,
        "writes_paused": paused.is_some(),
        "anchors": args.anchors,
        "logs": reports,
    });
    match args.format {
        Format::Json => print_json(&out),
        Format::Text => {
            if paused.is_some() {
                println!(
                    "note: the backup carries a writes pause; `evident writes resume` after promoting it"
                );
            }
            println!(
                "{}: {}",
                args.file.display(),
                if valid {
                    "valid — every log verifies; safe to promote"
                } else {
                    "INVALID — do not promote"
                }
            );
        }
    }
    Ok(if valid {
        Outcome::Valid
    } else {
        Outcome::Invalid
    })
}
