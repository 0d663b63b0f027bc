//! `evident verify`: the full verification report for one log or all.

use clap::Args;
use evident_core::note::Verifiers;
use evident_core::verify::Report;
use evident_store::reader::verify_log;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::common::{CmdError, DataArgs, parse_vkeys, print_json};
use crate::{Format, Outcome};

/// Verify a log (or every log) as stored: recompute every leaf hash, the
/// hash chain, body digests and the Merkle tree from the entry bytes, and
/// check each signed checkpoint against them.
///
/// Prints the verification report (`valid`, `first_break`, `chain_breaks`,
/// `signature_failures`, `retrocausation_violations`, `gaps`,
/// `checkpoint_mismatches`, `acknowledged`, `violations`, …). Nothing the
/// database says is trusted in place of what the bytes say. Checkpoints are
/// checked against the public keys recorded in the data directory, or only
/// against the `--vkey` keys when given: pass the key you hold
/// independently so that a key inserted into the database is not trusted.
///
/// With --anchors, each log is also checked against the seals published
/// there (`evident seal`): the seal chain, each seal's signature, and that
/// the log extends every sealed checkpoint. A database restored from an old
/// backup or with its tail cut is consistent with itself but not with a
/// later seal: it is reported as `anchor.rollback` (or `anchor.fork`) in
/// `violations` and in the report's `anchors` section.
///
/// On the embedded SQLite database, the append-only triggers are checked
/// against those the migrations create: when one is missing, altered or
/// added, the output says so (`append_only_guards: {missing, altered,
/// unexpected}` in JSON, a WARNING line in text) and `evident repair` puts
/// them back. It does not change the verdict: the verdict rests on the
/// bytes and signatures alone, and the triggers are the database's own
/// defence, which an attacker with the file drops before editing rows.
///
/// Exit status: 0 valid, 1 problems found, 2 could not verify.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["log", "all"])))]
pub struct VerifyArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The log to verify, as TENANT/LOG.
    #[arg(long)]
    log: Option<String>,
    /// Verify every log.
    #[arg(long)]
    all: bool,
    /// Trust only this verifier key (repeatable).
    #[arg(long = "vkey")]
    vkeys: Vec<String>,
    /// Also check every log against the seals in this anchor (a directory
    /// path, file:///dir or s3://bucket/prefix; see `evident seal --help`).
    #[arg(long)]
    anchors: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) format: Format,
}

/// Runs `verify`.
pub fn verify(args: &VerifyArgs) -> Result<Outcome, CmdError> {
    let anchor = args
        .anchors
        .as_deref()
        .map(evident_store::anchor::Anchor::open)
        .transpose()
        .map_err(crate::seal_cmd::anchor_err)?;
    let mut opened = args.data.open()?;
    let pinned = if args.vkeys.is_empty() {
        None
    } else {
        Some(parse_vkeys(&args.vkeys)?)
    };
    let verifiers = |opened: &mut evident_store::Opened| -> Result<Verifiers, CmdError> {
        match &pinned {
            Some(v) => Ok(v.clone()),
            None => Ok(opened.verifiers()?),
        }
    };
    let logs = match &args.log {
        Some(path) => vec![opened.log(path)?],
        None => opened.store.logs()?,
    };
    let mut reports = Vec::new();
    for log in &logs {
        let keys = verifiers(&mut opened)?;
        let bar = progress_bar(args.format, &log.path());
        let report = verify_log(&mut *opened.store, log, keys.clone(), &mut |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })?;
        bar.finish_and_clear();
        let (value, anchored, valid) = crate::seal_cmd::with_anchors(
            &mut *opened.store,
            log,
            &report,
            anchor.as_ref(),
            &keys,
        )?;
        if args.format == Format::Text {
            print_text(&log.path(), &report);
            if let Some(a) = &anchored {
                crate::seal_cmd::print_anchor_text(&log.path(), a);
            }
        }
        reports.push((value, valid));
    }
    let valid = reports.iter().all(|r| r.1);
    let mut reports: Vec<serde_json::Value> = reports.into_iter().map(|r| r.0).collect();
    let guards = guards(&args.data)?;
    if args.format == Format::Json {
        if args.all {
            let mut out = json!({"valid": valid, "logs": reports});
            if let Some(g) = guards {
                out["append_only_guards"] = g;
            }
            print_json(&out);
        } else if let Some(r) = reports.first_mut() {
            if let Some(g) = guards {
                r["append_only_guards"] = g;
            }
            print_json(r);
        }
    } else {
        if args.all && logs.is_empty() {
            println!("no logs");
        }
        if let Some(g) = guards {
            println!(
                "WARNING: the database's append-only triggers are not as its migrations create them (missing {}, altered {}, unexpected {}); `evident repair` puts them back",
                g["missing"], g["altered"], g["unexpected"]
            );
        }
    }
    Ok(if valid {
        Outcome::Valid
    } else {
        Outcome::Invalid
    })
}

fn progress_bar(format: Format, log: &str) -> ProgressBar {
    if format == Format::Json {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} verifying {log} {{bar:40}} {{pos}}/{{len}} entries ({{per_sec}}, {{eta}} left)"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// How many violations text mode lists before summarising.
const TEXT_LISTED: usize = 20;

pub(crate) fn print_text(log: &str, r: &Report) {
    if r.valid {
        println!(
            "{log}: valid — {} entries, {} of {} checkpoints verified{}",
            r.total_count,
            r.checkpoints_verified,
            r.checkpoints_checked,
            match (&r.last_verified_index, &r.last_verified_timestamp) {
                (Some(i), Some(ts)) => format!(", last verified index {i} at {ts}"),
                _ => String::new(),
            }
        );
    } else {
        println!(
            "{log}: INVALID — {} violations in {} entries",
            r.violation_count, r.total_count
        );
        if let Some(b) = &r.first_break {
            println!(
                "first break: index {} {} — {}",
                b.index,
                b.reason.code(),
                b.detail
            );
        }
        println!(
            "chain breaks {}, signature failures {}, retrocausation {}, gaps {}, checkpoint mismatches {}",
            r.chain_breaks.len(),
            r.signature_failures.len(),
            r.retrocausation_violations.len(),
            r.gaps.len(),
            r.checkpoint_mismatches.len()
        );
        for v in r.violations.iter().take(TEXT_LISTED) {
            println!(
                "  index {:>10}  {:<32} {}",
                v.index,
                v.reason.code(),
                v.detail
            );
        }
        if r.violations.len() > TEXT_LISTED {
            println!(
                "  … {} more (use --format json for all)",
                r.violations.len() - TEXT_LISTED
            );
        }
    }
    if !r.acknowledged.is_empty() {
        println!(
            "{} problems acknowledged by exception entries",
            r.acknowledged.len()
        );
    }
    for rep in &r.repairs {
        println!(
            "repaired at index {}: restored {:?} from a trusted copy",
            rep.index, rep.restored
        );
    }
    if r.redacted_count > 0 {
        println!("{} bodies redacted", r.redacted_count);
    }
}

/// The append-only triggers of an embedded SQLite database, when they
/// differ from the migrations'; `None` when intact or on PostgreSQL.
fn guards(data: &DataArgs) -> Result<Option<serde_json::Value>, CmdError> {
    let dd = data.data_dir();
    if dd.database_url().is_some() {
        return Ok(None);
    }
    let check = evident_store::sqlite::SqliteStore::open(&dd.db_path(), false)?.check_guards()?;
    Ok((!check.intact()).then(|| {
        json!({"missing": check.missing, "altered": check.altered, "unexpected": check.unexpected})
    }))
}
