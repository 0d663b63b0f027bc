//! `evident export` and `evident verify-export`: a log as a C2SP
//! tlog-tiles directory, with its bodies and keys, and the offline check of
//! such a directory.
//!
//! The layout is in `export/layout.rs`, the writer in `export/write.rs`,
//! the checker in `export/check.rs` and the bodies file in
//! `export/bodies.rs`.

use std::path::PathBuf;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::common::{CmdError, DataArgs, parse_vkeys, print_json};
use crate::{Format, Outcome};

#[path = "export/bodies.rs"]
pub(crate) mod bodies;
#[path = "export/check.rs"]
mod check;
#[path = "export/layout.rs"]
pub(crate) mod layout;
#[path = "export/write.rs"]
mod write;

use check::{Checked, KeySource};

/// Export a log for offline verification (C2SP tlog-tiles layout).
///
/// Writes, for the log's latest signed checkpoint of size N, a new
/// directory with: `checkpoint`, the signed checkpoint note byte for byte;
/// `tile/<L>/<N>[.p/<W>]`, every hash tile of the tree of size N;
/// `tile/entries/<N>[.p/<W>]`, the entry bundles (envelopes as stored);
/// `bodies.ndjson`, one {"index","salt","body"} line per entry that has a
/// body; and `keys`, the verifier keys, one per line, oldest first.
///
/// The tiles are computed from the stored envelopes, not copied: what is
/// exported is what is stored, so an edited row shows up when the export
/// is verified. If rows are missing, the export stops at the first missing
/// index (bundles hold consecutive entries) and the summary says so
/// (`complete: false`, `missing_from`).
///
/// The export is written beside --out and renamed into place at the end: a
/// failed export leaves nothing under that name. --out must not exist or
/// be an empty directory. The directory is readable by its owner only, as
/// bodies may hold personal data.
///
/// Prints {log, origin, size, root, dir, tiles, bundles, bodies, entries,
/// complete, missing_from, keys, tree_matches_checkpoint}; the last is a
/// hint (do the stored entries hash to the signed root?), not a
/// verification.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The log, as TENANT/LOG.
    #[arg(long)]
    log: String,
    /// Directory to write (must not exist, or be empty).
    #[arg(long)]
    out: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) format: Format,
}

/// Verify an export directory offline, with no database.
///
/// Checks the checkpoint's signature, every entry in the bundles (leaf
/// hashes against the level-0 tiles, the hash chain, body digests from
/// bodies.ndjson, timestamps, producer sequences), the recomputed tree root
/// against the signed one, and that every hash tile file is the one the
/// entries make, with none missing and none extra.
///
/// Prints the verification report of `evident verify` plus
/// `tile_mismatches` ([{path, problem: missing|differs|unexpected|malformed}])
/// and `tile_mismatch_count`; `valid` is false if either finds a problem.
///
/// Trust: without --vkey the export's own `keys` file is trusted, which
/// only shows the export is self-consistent. For an independent check, pass
/// the verifier key you hold from another source with --vkey: then only
/// that key is trusted.
///
/// Exit status: 0 valid, 1 problems found, 2 could not verify (no
/// checkpoint, bodies.ndjson or keys file, a file that cannot be read or
/// parsed, a bad --vkey).
#[derive(Debug, Args)]
pub struct VerifyExportArgs {
    /// The export directory.
    dir: PathBuf,
    /// Trust only this verifier key (repeatable) instead of the export's
    /// `keys` file.
    #[arg(long = "vkey")]
    vkeys: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) format: Format,
}

fn progress_bar(format: Format, what: &str) -> ProgressBar {
    if format == Format::Json {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {what} {{bar:40}} {{pos}}/{{len}} entries ({{per_sec}}, {{eta}} left)"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Runs `export`.
pub fn export(args: &ExportArgs) -> Result<(), CmdError> {
    let mut opened = args.data.open()?;
    let log = opened.log(&args.log)?;
    let mut staging = layout::Staging::new(&args.out)?;
    let bar = progress_bar(args.format, &format!("exporting {}", log.path()));
    let written = write::export_log(&mut opened, &log, &mut staging, &bar);
    bar.finish_and_clear();
    // On error the staging directory is dropped, and removed with it.
    let w = written?;
    let dir = staging.commit()?;
    match args.format {
        Format::Json => print_json(&json!({
            "log": log.path(),
            "origin": w.origin,
            "size": w.size,
            "root": w.root,
            "dir": dir,
            "tiles": w.tiles,
            "bundles": w.bundles,
            "bodies": w.bodies,
            "entries": w.entries,
            "complete": w.missing_from.is_none(),
            "missing_from": w.missing_from,
            "keys": w.keys,
            "tree_matches_checkpoint": w.root_matches,
        })),
        Format::Text => {
            println!(
                "exported {} (size {}, root {}) to {}: {} tiles, {} bundles, {} bodies, {} keys",
                log.path(),
                w.size,
                w.root,
                dir.display(),
                w.tiles,
                w.bundles,
                w.bodies,
                w.keys
            );
            if let Some(g) = w.missing_from {
                eprintln!(
                    "warning: entry {g} is missing from the store; the export holds entries 0..{g} of {} (run `evident verify`)",
                    w.size
                );
            } else if w.root_matches == Some(false) {
                eprintln!(
                    "warning: the stored entries do not hash to the signed root; the export shows them as stored (run `evident verify`)"
                );
            }
        }
    }
    Ok(())
}

/// Runs `verify-export`.
pub fn verify_export(args: &VerifyExportArgs) -> Result<Outcome, CmdError> {
    let pinned = if args.vkeys.is_empty() {
        None
    } else {
        Some(parse_vkeys(&args.vkeys)?)
    };
    let bar = progress_bar(args.format, &format!("verifying {}", args.dir.display()));
    let checked = check::check_export(&args.dir, pinned, &bar);
    bar.finish_and_clear();
    let checked = checked?;
    match args.format {
        Format::Json => print_json(&to_json(&checked)),
        Format::Text => print_text(&args.dir.display().to_string(), &checked),
    }
    Ok(if checked.valid() {
        Outcome::Valid
    } else {
        Outcome::Invalid
    })
}

/// The report's fields, with the tile check beside them.
fn to_json(c: &Checked) -> Value {
    let mut v = serde_json::to_value(&c.report).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut v {
        m.insert("valid".into(), json!(c.valid()));
        m.insert("tile_mismatches".into(), c.tiles.to_json());
        m.insert("tile_mismatch_count".into(), json!(c.tiles.count));
        m.insert("size".into(), json!(c.size));
        m.insert("entries_read".into(), json!(c.entries));
        m.insert(
            "trusted_keys".into(),
            json!(match c.keys {
                KeySource::Pinned => "vkey",
                KeySource::Export => "export",
            }),
        );
    }
    v
}

/// How many tile mismatches text mode lists.
const TEXT_LISTED: usize = 20;

fn print_text(dir: &str, c: &Checked) {
    if c.report.valid && c.tiles.count > 0 {
        println!(
            "{dir}: INVALID — the entries verify, but {} tile files do not match them",
            c.tiles.count
        );
    } else {
        crate::verify_cmd::print_text(dir, &c.report);
    }
    if c.tiles.count > 0 {
        println!("tile mismatches {}:", c.tiles.count);
        for (path, problem) in c.tiles.listed.iter().take(TEXT_LISTED) {
            println!("  {path:<40} {}", problem_text(*problem));
        }
        if c.tiles.count > TEXT_LISTED as u64 {
            println!(
                "  … {} more (use --format json for all)",
                c.tiles.count - TEXT_LISTED as u64
            );
        }
    }
    if c.keys == KeySource::Export {
        println!("trusted the export's own keys file; pass --vkey for an independent check");
    }
}

fn problem_text(p: check::Problem) -> &'static str {
    match p {
        check::Problem::Missing => "missing",
        check::Problem::Differs => "differs from the tile rebuilt from the entries",
        check::Problem::Unexpected => "unexpected (not a tile of the signed tree)",
        check::Problem::Malformed => "malformed entry bundle",
    }
}
