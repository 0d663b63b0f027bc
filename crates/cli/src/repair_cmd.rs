//! `evident repair`: restore tampered entry rows from a trusted copy,
//! proven by the log's own signed checkpoints.
//!
//! The proof: for the largest validly signed checkpoint (size N, root R),
//! take for each index below N the copy's envelope where the copy has it,
//! and the stored one otherwise; recompute the tree. Only if it has root
//! R (and every smaller signed checkpoint's root at its size) is anything
//! restored: then each of those envelopes is the one the signatures
//! commit to. Bodies are restored only when they hash, with their salt,
//! to the proven envelope's digest; a body erased by a redaction stays
//! erased. Anything short of that and nothing changes.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use evident_core::Hash;
use evident_core::checkpoint::Checkpoint;
use evident_core::entry::{Body, EnvelopeView, SALT_SIZE, body_digest};
use evident_core::hash::leaf_hash;
use evident_core::merkle::CompactTree;
use evident_core::note::parse_note;
use evident_core::tile::{decode_bundle, entry_bundles_for_size};
use evident_core::verify::{Exception, REDACTION_KIND, open_checkpoints_at};
use evident_store::reader::{key_history, seq_of};
use evident_store::sqlite::SqliteStore;
use evident_store::{LogInfo, Restore, Store, StoreError, StoredEntry};
use serde_json::json;

use crate::Format;
use crate::common::{CmdError, DataArgs, print_json};
use crate::exception_cmd::{append_system_entry, record_system_event};
use crate::export_cmd::bodies::BodyReader;
use crate::export_cmd::layout::{BODIES, CHECKPOINT, read_opt};

/// Kind of the entry a repair appends to the repaired log (verify lists
/// these under `repairs`).
pub use evident_core::verify::CHAIN_REPAIRED_KIND;
/// Kind of the system event a repair records in `_system/events`.
pub const REPAIR_EVENT_KIND: &str = "evident.repair";

/// Restore tampered entries from a trusted copy (an export or a backup).
///
/// For every entry below the log's latest validly signed checkpoint whose
/// stored bytes (envelope, leaf hash, salt or body) disagree with the
/// signed tree, or whose row is gone, puts back the original bytes from
/// SOURCE: an `evident export` directory, or a backup file (a copy of
/// evident.db). Nothing is restored unless SOURCE proves out: with its
/// envelopes the tree must have exactly the roots the checkpoints sign,
/// and each restored body must hash to its envelope's digest. A body
/// erased by a redaction stays erased. If SOURCE does not prove out,
/// nothing changes and the error (`repair.refused`) says why.
///
/// The tampered rows are moved to the `quarantine` table, kept as
/// evidence; an `evident.chain_repaired` entry appended to the log
/// records which entries were restored from where, and an `evident.repair`
/// event goes to the `_system/events` log.
///
/// On the embedded SQLite database, repair also puts back the append-only
/// triggers an attacker dropped, altered or added (even when no row needs
/// restoring) and names them in `guards_restored`.
///
/// Repair is the only command that rewrites a stored row, so it asks
/// for confirmation; pass --yes when not at a terminal.
///
/// Prints {log, source, size, restored, quarantined, inserted,
/// repair_index, event_index, guards_restored}.
#[derive(Debug, Args)]
pub struct RepairArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The log, as TENANT/LOG.
    #[arg(long)]
    log: String,
    /// The trusted copy: an export directory or a backup database file.
    #[arg(long)]
    from: PathBuf,
    /// Do not ask for confirmation.
    #[arg(long)]
    yes: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) format: Format,
}

fn refused(why: impl Into<String>) -> CmdError {
    StoreError::RepairRefused(why.into()).into()
}

/// One entry of the trusted copy.
struct Copy {
    envelope: Vec<u8>,
    /// `(salt, body)`, if the copy has the body.
    body: Option<(Vec<u8>, Vec<u8>)>,
}

/// Reads the copy's consecutive entries from index 0, at most `n`.
fn read_source(path: &Path, log: &LogInfo, n: u64) -> Result<Vec<Copy>, CmdError> {
    if path.is_dir() {
        read_export(path, log, n)
    } else if path.is_file() {
        read_backup(path, log, n)
    } else {
        Err(CmdError::new(
            "repair.no_source",
            format!(
                "{} is neither an export directory nor a backup file",
                path.display()
            ),
        ))
    }
}

fn read_export(dir: &Path, log: &LogInfo, n: u64) -> Result<Vec<Copy>, CmdError> {
    let note = read_opt(dir, CHECKPOINT)?
        .ok_or_else(|| refused(format!("{} has no {CHECKPOINT} file", dir.display())))?;
    let (text, _) = parse_note(&note).map_err(|e| refused(format!("{CHECKPOINT}: {e}")))?;
    let cp = Checkpoint::parse(&text).map_err(|e| refused(format!("{CHECKPOINT}: {e}")))?;
    if cp.origin != log.origin {
        return Err(refused(format!(
            "{} is an export of {}, not {}",
            dir.display(),
            cp.origin,
            log.origin
        )));
    }
    let bodies = std::fs::File::open(dir.join(BODIES))
        .map_err(|e| refused(format!("{}: {e}", dir.join(BODIES).display())))?;
    let mut bodies = BodyReader::new(bodies);
    let mut out = Vec::new();
    'bundles: for id in entry_bundles_for_size(cp.size.min(n)) {
        let Some(data) = read_opt(dir, &id.path())? else {
            break;
        };
        let Ok(entries) = decode_bundle(&data, id.width) else {
            break;
        };
        for envelope in entries {
            let index = out.len() as u64;
            let body = if bodies.has(index)? {
                let b = (bodies.salt.clone(), bodies.body.clone());
                bodies.consume();
                Some(b)
            } else {
                None
            };
            out.push(Copy {
                envelope: envelope.to_vec(),
                body,
            });
            if out.len() as u64 >= n {
                break 'bundles;
            }
        }
    }
    Ok(out)
}

fn read_backup(file: &Path, log: &LogInfo, n: u64) -> Result<Vec<Copy>, CmdError> {
    let mut store = SqliteStore::open_read_only(file).map_err(|e| {
        refused(format!(
            "{} cannot be read as a backup: {e}",
            file.display()
        ))
    })?;
    let found = store.find_log(&log.tenant, &log.name).map_err(|e| {
        refused(format!(
            "{} cannot be read as a backup: {e}",
            file.display()
        ))
    })?;
    let Some(copy) = found else {
        return Err(refused(format!(
            "the backup {} has no log {}",
            file.display(),
            log.path()
        )));
    };
    if copy.origin != log.origin {
        return Err(refused(format!(
            "the backup's log {} has origin {}, not {}",
            log.path(),
            copy.origin,
            log.origin
        )));
    }
    let mut out = Vec::new();
    store.scan_entries(copy.id, 0, &mut |e| {
        if e.index != out.len() as u64 || e.index >= n {
            return Ok(false);
        }
        let body = match (e.salt, e.body) {
            (Some(s), Some(b)) => Some((s.to_vec(), b.to_vec())),
            _ => None,
        };
        out.push(Copy {
            envelope: e.envelope.to_vec(),
            body,
        });
        Ok(true)
    })?;
    Ok(out)
}

/// What the repair would restore.
struct Plan {
    size: u64,
    rows: Vec<(StoredEntry, Option<StoredEntry>)>,
}

/// Proves the copy against the signed checkpoints and works out the rows
/// to restore: `(restored row, row as stored now)`.
fn plan(
    store: &mut dyn Store,
    log: &LogInfo,
    trusted: &evident_core::note::Verifiers,
    source: &Path,
) -> Result<Plan, CmdError> {
    let checkpoints = store.checkpoints(log.id)?;
    let history = key_history(store)?;
    let signed: Vec<Checkpoint> = open_checkpoints_at(
        checkpoints.iter().map(|c| (seq_of(c), c.note.as_bytes())),
        &history,
        trusted,
    )
    .into_iter()
    .filter_map(|(_, _, r)| r.ok())
    .filter(|cp| cp.origin == log.origin)
    .collect();
    let Some(n) = signed.iter().map(|c| c.size).max() else {
        return Err(refused(format!(
            "{} has no validly signed checkpoint to prove a copy against",
            log.path()
        )));
    };

    let mut stored: Vec<Option<StoredEntry>> = (0..n).map(|_| None).collect();
    store.scan_entries(log.id, 0, &mut |e| {
        if e.index >= n {
            return Ok(false);
        }
        if let Some(slot) = usize::try_from(e.index)
            .ok()
            .and_then(|i| stored.get_mut(i))
        {
            *slot = Some(e.into());
        }
        Ok(true)
    })?;
    let copy = read_source(source, log, n)?;

    // The proven envelopes: the copy's where it has them.
    let mut tree = CompactTree::new();
    let mut proven: Vec<&[u8]> = Vec::with_capacity(stored.len());
    let mut roots: Vec<(u64, Hash)> = Vec::new();
    let wanted: std::collections::BTreeSet<u64> = signed.iter().map(|c| c.size).collect();
    for (i, row) in stored.iter().enumerate() {
        let env = match (copy.get(i), row) {
            (Some(c), _) => c.envelope.as_slice(),
            (None, Some(r)) => r.envelope.as_slice(),
            (None, None) => {
                return Err(refused(format!(
                    "entry {i} is missing from the log and from {}",
                    source.display()
                )));
            }
        };
        proven.push(env);
        tree.append(leaf_hash(env));
        if wanted.contains(&tree.size()) {
            roots.push((tree.size(), tree.root()));
        }
    }
    for cp in &signed {
        let root = roots.iter().find(|r| r.0 == cp.size).map(|r| r.1);
        if root != Some(cp.root) {
            return Err(refused(format!(
                "{} does not prove out: with its entries the first {} entries hash to root {}, the signed checkpoint says {}",
                source.display(),
                cp.size,
                root.map(|r| r.to_string()).unwrap_or_default(),
                cp.root
            )));
        }
    }

    // Which bodies the log's own redaction entries erased.
    let body_of = |i: usize, digest: &Hash| -> Option<(Vec<u8>, Vec<u8>)> {
        let matches = |s: &[u8], b: &[u8]| {
            <&[u8; SALT_SIZE]>::try_from(s).is_ok_and(|s| body_digest(s, b) == *digest)
        };
        if let Some(Some(r)) = stored.get(i)
            && let (Some(s), Some(b)) = (&r.salt, &r.body)
            && matches(s, b)
        {
            return Some((s.clone(), b.clone()));
        }
        copy.get(i)
            .and_then(|c| c.body.clone())
            .filter(|(s, b)| matches(s, b))
    };
    let mut views = Vec::with_capacity(proven.len());
    for (i, env) in proven.iter().enumerate() {
        let view = EnvelopeView::parse(env).map_err(|e| {
            refused(format!(
                "the signed envelope of entry {i} is unreadable: {e}"
            ))
        })?;
        views.push((view.kind.into_owned(), view.body, view.index));
    }
    let mut redactions: Vec<Exception> = Vec::new();
    for (i, (kind, digest, index)) in views.iter().enumerate() {
        if kind == REDACTION_KIND
            && let Some((_, b)) = body_of(i, digest)
            && let Ok(body) = Body::parse(&b)
            && let Some(x) = Exception::from_body(&body, *index)
            && x.through < *index
        {
            redactions.push(x);
        }
    }

    let mut rows = Vec::new();
    for (i, (_, digest, _)) in views.iter().enumerate() {
        let body = match body_of(i, digest) {
            Some(b) => Some(b),
            None if redactions
                .iter()
                .any(|x| (x.from..=x.through).contains(&(i as u64))) =>
            {
                None
            }
            None => {
                return Err(refused(format!(
                    "no copy of entry {i}'s body (stored or in {}) hashes to its signed digest",
                    source.display()
                )));
            }
        };
        let want = StoredEntry {
            index: i as u64,
            envelope: proven[i].to_vec(),
            leaf_hash: Some(leaf_hash(proven[i])),
            salt: body.as_ref().map(|b| b.0.clone()),
            body: body.map(|b| b.1),
        };
        if stored[i].as_ref() != Some(&want) {
            rows.push((want, stored[i].clone()));
        }
    }
    Ok(Plan { size: n, rows })
}

/// Asks on the terminal; `false` unless the answer is yes.
fn confirm(question: &str) -> Result<bool, CmdError> {
    let io = |e: std::io::Error| CmdError::new("io.failed", e.to_string());
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().map_err(io)?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(io)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// Runs `repair`.
pub fn repair(args: &RepairArgs) -> Result<(), CmdError> {
    let dd = args.data.data_dir();
    let mut opened = dd.open()?;
    // Fail before any work if this key cannot record the repair.
    dd.signer(&mut opened)?;
    let log = opened.log(&args.log)?;
    let trusted = opened.verifiers()?;
    let plan = plan(&mut *opened.store, &log, &trusted, &args.from)?;
    let restored: Vec<u64> = plan.rows.iter().map(|r| r.0.index).collect();
    if restored.is_empty() {
        let guards = restore_guards(&dd)?;
        match args.format {
            Format::Json => print_json(&json!({
                "log": log.path(),
                "source": args.from,
                "size": plan.size,
                "restored": restored,
                "quarantined": 0,
                "inserted": 0,
                "guards_restored": guards,
            })),
            Format::Text => {
                println!(
                    "{}: every entry below {} already matches the signed tree; nothing to repair",
                    log.path(),
                    plan.size
                );
                print_guards_text(&guards);
            }
        }
        return Ok(());
    }
    if !args.yes {
        let question = format!(
            "restore {} entries of {} from {} (tampered rows go to quarantine)?",
            restored.len(),
            log.path(),
            args.from.display()
        );
        if !std::io::stdin().is_terminal() {
            return Err(CmdError::new(
                "repair.needs_confirmation",
                format!(
                    "{question} Pass --yes to confirm when not at a terminal; nothing was changed"
                ),
            ));
        }
        if !confirm(&question)? {
            return Err(CmdError::new(
                "repair.cancelled",
                "not confirmed; nothing was changed",
            ));
        }
    }
    let restores: Vec<Restore<'_>> = plan
        .rows
        .iter()
        .map(|(want, now)| Restore {
            index: want.index,
            current: now.as_ref(),
            envelope: &want.envelope,
            leaf_hash: want.leaf_hash.as_ref().expect("set by plan"),
            salt: want.salt.as_deref(),
            body: want.body.as_deref(),
        })
        .collect();
    // The guards first, so the rewrite below goes through the one path
    // the restored entries trigger permits (a quarantine row per change).
    let guards = restore_guards(&dd)?;
    let now = evident_core::entry::format_ts(evident_store::sequencer::system_clock());
    opened.store.repair_entries(log.id, &restores, &now)?;
    let inserted = plan.rows.iter().filter(|r| r.1.is_none()).count();
    let quarantined = restored.len() - inserted;
    let source = args.from.display().to_string();
    let details = json!({
        "log": log.path(),
        "restored": restored,
        "quarantined": quarantined,
        "inserted": inserted,
        "source": source,
        "checkpoint_size": plan.size,
        "guards_restored": guards,
    });
    let marker = append_system_entry(
        &dd,
        &mut opened,
        &log,
        json!({
            "kind": CHAIN_REPAIRED_KIND,
            "actor": "evident-cli",
            "action": "repair",
            "resource": log.path(),
            "outcome": "restored",
            "data": details,
        }),
    )?;
    let event = record_event(&dd, &mut opened, &details, marker.index)?;
    match args.format {
        Format::Json => print_json(&json!({
            "log": log.path(),
            "source": args.from,
            "size": plan.size,
            "restored": restored,
            "quarantined": quarantined,
            "inserted": inserted,
            "repair_index": marker.index,
            "event_index": event,
            "guards_restored": guards,
        })),
        Format::Text => {
            println!(
                "{}: restored entries {:?} from {} ({} rows quarantined, {} reinserted); recorded by entry {}",
                log.path(),
                restored,
                source,
                quarantined,
                inserted,
                marker.index
            );
            print_guards_text(&guards);
        }
    }
    Ok(())
}

/// Puts back the append-only triggers of an embedded SQLite database
/// (an attacker who edited rows dropped them first); the names of those
/// restored. A PostgreSQL database's triggers are not checked here.
fn restore_guards(dd: &evident_store::DataDir) -> Result<Vec<String>, CmdError> {
    if dd.database_url().is_some() {
        return Ok(Vec::new());
    }
    Ok(SqliteStore::open(&dd.db_path(), false)?
        .restore_guards()?
        .names())
}

fn print_guards_text(guards: &[String]) {
    if !guards.is_empty() {
        println!("append-only triggers put back: {}", guards.join(", "));
    }
}

/// Appends the `evident.repair` system event to `_system/events`.
fn record_event(
    dd: &evident_store::DataDir,
    opened: &mut evident_store::Opened,
    details: &serde_json::Value,
    marker: u64,
) -> Result<u64, CmdError> {
    let mut data = details.clone();
    data["repair_index"] = json!(marker);
    let e = record_system_event(
        dd,
        opened,
        json!({
            "kind": REPAIR_EVENT_KIND,
            "actor": "evident-cli",
            "action": "repair",
            "resource": details["log"],
            "outcome": "ok",
            "data": data,
        }),
    )?;
    Ok(e.index)
}
