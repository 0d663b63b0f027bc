//! `evident seal`: publish logs' signed checkpoints to an anchor outside
//! the database, and the `--anchors` check that `verify` and
//! `restore-check` share.

use clap::Args;
use evident_core::ErrorCode;
use evident_core::checkpoint::open_checkpoint;
use evident_core::entry::format_ts;
use evident_core::note::{VerifierKey, Verifiers};
use evident_core::verify::Report;
use evident_core::verify::open_checkpoints_at;
use evident_store::anchor::{Anchor, AnchorError, AnchorReport, check_log, seal_log};
use evident_store::sequencer::system_clock;
use evident_store::{LogInfo, Store};
use serde_json::{Value, json};

use crate::Format;
use crate::common::{CmdError, DataArgs, parse_vkeys, print_json};

/// Seal logs: publish each one's latest signed checkpoint to an anchor
/// outside the database (a directory: a path or file:///path; or an
/// S3-compatible bucket: s3://bucket/prefix), linked to the seal before it.
///
/// An s3:// anchor is configured by the standard AWS environment:
/// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN too for
/// temporary keys; without keys, a web identity or the instance's role),
/// AWS_REGION, and for a store other
/// than AWS: AWS_ENDPOINT_URL, plus AWS_ALLOW_HTTP=true for a plain-http
/// endpoint. Seals are created with a conditional put (If-None-Match: *);
/// a store that ignores it is refused with anchor.no_conditional_put.
///
/// Before sealing, the log is checked against the seals already there; a
/// log that is smaller than a seal (restored from an old backup, tail cut)
/// or does not extend it is refused with anchor.inconsistent and nothing
/// is published. `evident verify --anchors` and `evident restore-check
/// --anchors` check a log against every seal. A seal record is one JSON
/// file `<anchor>/<origin>/seal-<seq>.json` (see docs/design.md). The
/// server seals every log daily when `seal_anchors` is set.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["log", "all"])))]
pub struct SealArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The log to seal, as TENANT/LOG.
    #[arg(long)]
    log: Option<String>,
    /// Seal every log.
    #[arg(long)]
    all: bool,
    /// Where seals are published: a directory path, file:///dir or
    /// s3://bucket/prefix.
    #[arg(long, env = "EVIDENT_SEAL_ANCHORS")]
    anchors: String,
    /// Trust only this verifier key for the seals already published
    /// (repeatable) [default: the data directory's keys].
    #[arg(long = "vkey")]
    vkeys: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) format: Format,
}

/// An anchor error as the CLI prints it.
pub(crate) fn anchor_err(e: AnchorError) -> CmdError {
    CmdError::new(e.code(), e.to_string())
}

/// Runs `seal`.
pub fn seal(args: &SealArgs) -> Result<(), CmdError> {
    let anchor = Anchor::open(&args.anchors).map_err(anchor_err)?;
    let mut opened = args.data.open()?;
    let keys = if args.vkeys.is_empty() {
        opened.verifiers()?
    } else {
        parse_vkeys(&args.vkeys)?
    };
    let logs = match &args.log {
        Some(path) => vec![opened.log(path)?],
        None => opened.store.logs()?,
    };
    let now = format_ts(system_clock());
    let mut sealed = Vec::new();
    let mut skipped = Vec::new();
    for log in &logs {
        match seal_log(&mut *opened.store, log, &anchor, &keys, &now).map_err(anchor_err)? {
            Some(s) => sealed.push(s),
            None => skipped.push(log.path()),
        }
    }
    match args.format {
        Format::Json => {
            print_json(&json!({"anchor": args.anchors, "sealed": sealed, "empty": skipped}))
        }
        Format::Text => {
            for s in &sealed {
                println!(
                    "{}: seal {} at size {} → {}",
                    s.log, s.seq, s.size, s.object
                );
            }
            for l in &skipped {
                println!("{l}: no checkpoint yet, not sealed");
            }
        }
    }
    Ok(())
}

/// Checks `log` against `anchor` and folds the result into its
/// verification report: `anchors: {location, seals_checked,
/// last_sealed_size, violations}`, each violation also in `violations`
/// (with the sealed size as `index`), `violation_count` raised and
/// `valid` false when the log disagrees with a seal. Returns the report
/// as JSON, the anchor report, and whether it is still valid.
pub(crate) fn with_anchors(
    store: &mut dyn Store,
    log: &LogInfo,
    report: &Report,
    anchor: Option<&Anchor>,
    keys: &Verifiers,
) -> Result<(Value, Option<AnchorReport>, bool), CmdError> {
    let mut v = serde_json::to_value(report).unwrap_or_default();
    let Some(anchor) = anchor else {
        return Ok((v, None, report.valid));
    };
    let linked = seal_keys(store, log, keys)?;
    let a = check_log(store, log, anchor, &linked).map_err(anchor_err)?;
    let valid = report.valid && a.violations.is_empty();
    if let Some(list) = v["violations"].as_array_mut() {
        for x in &a.violations {
            list.push(json!({
                "index": x.index.unwrap_or(0),
                "reason": x.reason.code(),
                "detail": x.detail,
            }));
        }
    }
    if v["first_break"].is_null()
        && let Some(x) = a.violations.first()
    {
        v["first_break"] =
            json!({"index": x.index.unwrap_or(0), "reason": x.reason.code(), "detail": x.detail});
    }
    v["violation_count"] = json!(report.violation_count + a.violations.len() as u64);
    v["valid"] = json!(valid);
    v["anchors"] = serde_json::to_value(&a).unwrap_or_default();
    Ok((v, Some(a), valid))
}

/// The keys a seal of `log` may be signed by: the trusted keys, and each
/// key of the history that trust reaches the way verification links it
/// (a rotation's transition checkpoint signed by a trusted key and the
/// other): those that validly sign a checkpoint of the log opened with
/// that linking. Without it, a seal published after a rotation fails
/// `verify --anchors --vkey OLD`, and one from before fails `--vkey NEW`,
/// though the log itself verifies pinned to either.
fn seal_keys(
    store: &mut dyn Store,
    log: &LogInfo,
    keys: &Verifiers,
) -> Result<Verifiers, CmdError> {
    let history = evident_store::reader::key_history(store)?;
    let checkpoints = store.checkpoints(log.id)?;
    let mut linked: Vec<VerifierKey> = keys.keys().to_vec();
    let opened = open_checkpoints_at(
        checkpoints
            .iter()
            .map(|c| (evident_store::reader::seq_of(c), c.note.as_bytes())),
        &history,
        keys,
    );
    for (_, note, result) in opened {
        if result.is_err() {
            continue;
        }
        for p in history.periods() {
            if !linked.contains(&p.key)
                && open_checkpoint(note, &Verifiers::new([p.key.clone()]), Some(&log.origin))
                    .is_ok()
            {
                linked.push(p.key.clone());
            }
        }
    }
    Ok(Verifiers::new(linked))
}

/// Text lines for an anchor check.
pub(crate) fn print_anchor_text(log: &str, a: &AnchorReport) {
    if a.violations.is_empty() {
        println!(
            "{log}: consistent with {} seals in {}{}",
            a.seals_checked,
            a.location,
            a.last_sealed_size
                .map(|s| format!(" (last sealed size {s})"))
                .unwrap_or_default()
        );
    } else {
        println!(
            "{log}: INCONSISTENT with the seals in {} — {} problems",
            a.location,
            a.violations.len()
        );
        for v in &a.violations {
            println!("  seal {:>6}  {:<26} {}", v.seal, v.reason.code(), v.detail);
        }
    }
}
