//! Writing an export: one streaming pass over the stored entries.
//!
//! The tree is the one of the latest signed checkpoint, size N. Each stored
//! envelope with index below N is hashed (`leaf_hash` of the bytes as
//! stored) into a [`TreeEdge`], which hands out every full hash tile as it
//! completes; the partial tiles are written at the end. Envelopes go into
//! entry bundles of 256 as they arrive, bodies into `bodies.ndjson`. Memory
//! is one bundle, the tree's right edge and a write buffer, whatever N.
//! The rows are copied out [`EXPORT_STEP_ROWS`] at a time, each step in
//! one short read, so that an export beside a live server does not keep
//! its WAL from starting over while the files are written.
//!
//! Nothing is verified here and nothing is repaired: an edited row makes
//! tiles that do not match the signed root, which is what `verify-export`
//! (or any C2SP client) is for.
//!
//! A missing row (a deleted entry, or a log that lost its tail) ends the
//! export's entries: bundles must hold consecutive entries, so the export
//! stops at the first missing index g. It then holds entries 0..g, their
//! bundles and the hash tiles of the tree of size g (full tiles, plus the
//! partial tiles of size g), next to the checkpoint that signs N: a
//! verifier reports the truncation at g (`gap.truncated`) and the tiles the
//! signed tree lacks. The summary says `complete: false` and
//! `missing_from: g`.

use std::fs::File;
use std::io::{BufWriter, Write};

use evident_core::checkpoint::Checkpoint;
use evident_core::hash::leaf_hash;
use evident_core::note::parse_note;
use evident_core::tile::{TILE_WIDTH, TileId, encode_bundle};
use evident_core::{ErrorCode, Hash};
use evident_store::edge::TreeEdge;
use evident_store::reader;
use evident_store::{CopiedRows, LogInfo, Opened, Store};
use indicatif::ProgressBar;

use super::bodies;
use super::layout::{BODIES, CHECKPOINT, KEY_HISTORY, KEYS, Staging};
use crate::common::CmdError;

const W: usize = TILE_WIDTH as usize;

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Written {
    /// The log's origin.
    pub(crate) origin: String,
    /// Size of the exported checkpoint.
    pub(crate) size: u64,
    /// Its signed root.
    pub(crate) root: Hash,
    /// Entries exported (the size, unless rows are missing).
    pub(crate) entries: u64,
    /// First missing index, when rows are missing.
    pub(crate) missing_from: Option<u64>,
    /// Hash tiles written.
    pub(crate) tiles: u64,
    /// Entry bundles written.
    pub(crate) bundles: u64,
    /// Bodies written.
    pub(crate) bodies: u64,
    /// Verifier keys written.
    pub(crate) keys: u64,
    /// Whether the tree of the exported entries has the signed root (an
    /// early hint only; `verify-export` is the check); `None` when entries
    /// are missing.
    pub(crate) root_matches: Option<bool>,
}

fn write_err(what: &str, e: &std::io::Error) -> CmdError {
    CmdError::new("io.write_failed", format!("{what}: {e}"))
}

/// Streaming state of one export.
struct Exporter<'s> {
    staging: &'s mut Staging,
    edge: TreeEdge,
    /// Envelopes of the bundle being filled; buffers are reused.
    bundle: Vec<Vec<u8>>,
    filled: usize,
    bodies: BufWriter<File>,
    line: Vec<u8>,
    next: u64,
    out: Written,
}

impl Exporter<'_> {
    fn entry(&mut self, index: u64, envelope: &[u8], salt: Option<&[u8]>, body: Option<&[u8]>) {
        self.edge.append(leaf_hash(envelope));
        if self.bundle.len() == self.filled {
            self.bundle.push(Vec::new());
        }
        let buf = &mut self.bundle[self.filled];
        buf.clear();
        buf.extend_from_slice(envelope);
        self.filled += 1;
        // Half a body (a salt without body or the reverse) cannot be
        // checked by anyone; like a redacted one it is not exported.
        if let (Some(salt), Some(body)) = (salt, body) {
            self.line.clear();
            bodies::write_line(&mut self.line, index, salt, body);
            self.out.bodies += 1;
        }
        self.next = index + 1;
    }

    /// Writes the pending body line; kept apart from [`Exporter::entry`] so
    /// that an I/O error surfaces where errors can be returned.
    fn flush_line(&mut self) -> Result<(), CmdError> {
        if !self.line.is_empty() {
            self.bodies
                .write_all(&self.line)
                .map_err(|e| write_err(BODIES, &e))?;
            self.line.clear();
        }
        Ok(())
    }

    /// Writes the bundle being filled (full, or the last partial one) and
    /// the hash tiles completed so far.
    fn flush_bundle(&mut self) -> Result<(), CmdError> {
        if self.filled > 0 {
            let first = self.next - self.filled as u64;
            let refs: Vec<&[u8]> = self.bundle[..self.filled]
                .iter()
                .map(Vec::as_slice)
                .collect();
            let data = encode_bundle(&refs).map_err(|e| {
                CmdError::new(e.code(), format!("entries {first}..{}: {e}", self.next - 1))
            })?;
            let id = TileId::entries(
                first / W as u64,
                u16::try_from(self.filled).expect("at most 256"),
            );
            self.staging.write(&id.path(), &data)?;
            self.out.bundles += 1;
            self.filled = 0;
        }
        for (id, data) in self.edge.take_full_tiles() {
            self.staging.write(&id.path(), &data)?;
            self.out.tiles += 1;
        }
        Ok(())
    }
}

/// Rows an export copies out of the store per read. Each step's rows are
/// copied in one short read (one SQLite read transaction) and written out
/// after it ended: a scan held open over a whole log while the files were
/// written kept a live server's WAL from starting over (3.8M entries
/// exported under batch appends grew it from 72 MB to 2 GB). Entries
/// below the exported checkpoint's size never change, so reading them in
/// several reads exports the same bytes. Memory: one step's rows, ~16 MB.
const EXPORT_STEP_ROWS: u64 = reader::VERIFY_STEP_ROWS;

/// Writes the export of `log` into `staging`.
pub(crate) fn export_log(
    opened: &mut Opened,
    log: &LogInfo,
    staging: &mut Staging,
    bar: &ProgressBar,
) -> Result<Written, CmdError> {
    export_log_in_steps(opened, log, staging, bar, EXPORT_STEP_ROWS)
}

/// [`export_log`] copying `step_rows` rows per read.
fn export_log_in_steps(
    opened: &mut Opened,
    log: &LogInfo,
    staging: &mut Staging,
    bar: &ProgressBar,
    step_rows: u64,
) -> Result<Written, CmdError> {
    let stored = opened.store.latest_checkpoint(log.id)?.ok_or_else(|| {
        CmdError::new(
            "export.no_checkpoint",
            format!(
                "{} has no signed checkpoint yet: nothing to export",
                log.path()
            ),
        )
    })?;
    let cp = parse_stored(&stored.note)?;
    let keys = opened.store.keys()?;

    staging.write(CHECKPOINT, stored.note.as_bytes())?;
    let mut key_lines = String::new();
    for k in &keys {
        key_lines.push_str(&k.vkey);
        key_lines.push('\n');
    }
    staging.write(KEYS, key_lines.as_bytes())?;
    let history = key_history_json(opened, log, &stored, &keys)?;
    staging.write(KEY_HISTORY, history.as_bytes())?;

    let bodies_path = staging.path(BODIES);
    let bodies_file = File::create(&bodies_path).map_err(|e| write_err(BODIES, &e))?;
    let n = cp.size;
    bar.set_length(n);
    let mut x = Exporter {
        staging,
        edge: TreeEdge::new(),
        bundle: Vec::with_capacity(W),
        filled: 0,
        bodies: BufWriter::with_capacity(1 << 20, bodies_file),
        line: Vec::new(),
        next: 0,
        out: Written {
            origin: cp.origin.clone(),
            size: n,
            root: cp.root,
            entries: 0,
            missing_from: None,
            tiles: 0,
            bundles: 0,
            bodies: 0,
            keys: keys.len() as u64,
            root_matches: None,
        },
    };

    if n > 0 {
        scan_in_steps(&mut *opened.store, log, &mut x, bar, n, step_rows.max(1))?;
    }
    x.flush_bundle()?;
    for (id, data) in x.edge.partial_tiles() {
        x.staging.write(&id.path(), &data)?;
        x.out.tiles += 1;
    }
    x.bodies.flush().map_err(|e| write_err(BODIES, &e))?;
    bar.set_position(x.next);

    x.out.entries = x.next;
    if x.next < n {
        x.out.missing_from = Some(x.next);
    } else {
        x.out.root_matches = Some(x.edge.root() == cp.root);
    }
    Ok(x.out)
}

/// Reads entries `0..n` into `x`, `step_rows` at a time, until one is
/// missing (the export then ends before it).
fn scan_in_steps(
    store: &mut dyn Store,
    log: &LogInfo,
    x: &mut Exporter<'_>,
    bar: &ProgressBar,
    n: u64,
    step_rows: u64,
) -> Result<(), CmdError> {
    let mut step = CopiedRows::default();
    loop {
        let until = x.next.saturating_add(step_rows).min(n);
        step.clear();
        let mut expect = x.next;
        store.scan_entries(log.id, x.next, &mut |e| {
            if e.index >= until || e.index != expect {
                // Past the step, or a missing row: stop here.
                return Ok(false);
            }
            step.push(&e);
            expect += 1;
            Ok(true)
        })?;
        for e in step.iter() {
            x.entry(e.index, e.envelope, e.salt, e.body);
            x.flush_line()?;
            if x.filled == W {
                x.flush_bundle()?;
                bar.set_position(x.next);
            }
        }
        if x.next < until || x.next >= n {
            return Ok(());
        }
    }
}

/// The `key-history.json` file (see `layout.rs`): every key with its
/// range, and this log's checkpoints signed while two keys' ranges
/// overlap, which are the rotations' transition checkpoints.
fn key_history_json(
    opened: &mut Opened,
    log: &LogInfo,
    latest: &evident_store::StoredCheckpoint,
    keys: &[evident_store::KeyRecord],
) -> Result<String, CmdError> {
    // Rotation k's transitions: from the new key's first_seq to the old
    // key's last_seq.
    let windows: Vec<(i64, i64)> = keys
        .windows(2)
        .filter_map(|w| Some((w[1].first_seq?, w[0].last_seq?)))
        .collect();
    let transitions: Vec<serde_json::Value> = if windows.is_empty() {
        Vec::new()
    } else {
        opened
            .store
            .checkpoints(log.id)?
            .into_iter()
            .filter(|c| {
                c.seq != latest.seq && windows.iter().any(|(f, l)| (*f..=*l).contains(&c.seq))
            })
            .map(|c| serde_json::json!({"seq": c.seq, "note": c.note}))
            .collect()
    };
    let last = keys.len().saturating_sub(1);
    let v = serde_json::json!({
        "checkpoint_seq": latest.seq,
        "keys": keys
            .iter()
            .enumerate()
            .map(|(i, k)| crate::keys_cmd::key_json(k, i == last))
            .collect::<Vec<_>>(),
        "transitions": transitions,
    });
    Ok(format!("{v}\n"))
}

/// Parses the stored latest checkpoint (not verified: it is exported as it
/// is, and checked by whoever reads the export).
fn parse_stored(note: &str) -> Result<Checkpoint, CmdError> {
    let corrupt = |code: &str, e: &dyn std::fmt::Display| {
        CmdError::new(
            code,
            format!("the latest stored checkpoint cannot be read: {e}"),
        )
    };
    let (text, _) = parse_note(note.as_bytes()).map_err(|e| corrupt(e.code(), &e))?;
    Checkpoint::parse(&text).map_err(|e| corrupt(e.code(), &e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use evident_core::entry::{Limits, parse_entry};
    use evident_core::note::NoteSigner;
    use evident_store::sqlite::SqliteStore;
    use evident_store::{Sequencer, Store};
    use std::collections::BTreeMap;
    use std::path::Path;

    const NOW: &str = "2026-01-01T00:00:00.000000Z";

    /// A store holding a log of `n` entries in batches of 100, with the
    /// rows at `deleted` removed as an attacker would (trigger dropped).
    fn store_of(n: usize, deleted: &[u64]) -> (Opened, LogInfo) {
        let signer = NoteSigner::new("test.example", SigningKey::from_bytes(&[7; 32])).unwrap();
        let mut s = SqliteStore::open_in_memory().unwrap();
        s.migrate_up().unwrap();
        s.initialize("test.example", &signer.verifier_key().to_string(), NOW)
            .unwrap();
        let log = s.create_log("t", "a", "test.example/t/a", NOW).unwrap();
        let mut seq = Sequencer::new(signer);
        let drafts: Vec<_> = (0..n)
            .map(|i| {
                let line = format!(r#"{{"kind":"k","actor":"u{i}","request_id":"r{i}"}}"#);
                parse_entry(line.as_bytes(), &Limits::default()).unwrap()
            })
            .collect();
        for batch in drafts.chunks(100) {
            seq.append(&mut s, &log, batch).unwrap();
        }
        s.connection()
            .execute_batch("DROP TRIGGER entries_no_delete")
            .unwrap();
        for &i in deleted {
            s.connection()
                .execute(
                    "DELETE FROM entries WHERE log_id = ?1 AND idx = ?2",
                    rusqlite::params![log.id, i as i64],
                )
                .unwrap();
        }
        let opened = Opened {
            store: Box::new(s),
            instance: "test.example".into(),
        };
        (opened, log)
    }

    /// Every file of the export in `dir`, by path.
    fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut todo = vec![dir.to_owned()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    todo.push(p);
                } else {
                    let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
        out
    }

    fn export(
        opened: &mut Opened,
        log: &LogInfo,
        step_rows: u64,
    ) -> (Written, BTreeMap<String, Vec<u8>>) {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("export");
        let mut staging = Staging::new(&out).unwrap();
        let written =
            export_log_in_steps(opened, log, &mut staging, &ProgressBar::hidden(), step_rows)
                .unwrap();
        staging.commit().unwrap();
        (written, files(&out))
    }

    #[test]
    fn an_export_in_steps_writes_what_one_scan_writes() {
        let (mut opened, log) = store_of(700, &[]);
        let (whole, whole_files) = export(&mut opened, &log, u64::MAX);
        assert_eq!(whole.entries, 700);
        assert_eq!(whole.root_matches, Some(true));
        assert!(whole_files.contains_key("tile/entries/002.p/188"));
        for step in [1, 99, 256, 699, 700] {
            let (w, f) = export(&mut opened, &log, step);
            assert_eq!(w, whole, "step {step}");
            assert_eq!(f, whole_files, "step {step}");
        }
    }

    #[test]
    fn a_missing_row_ends_a_stepped_export_where_it_ends_one_scan() {
        // Inside a step, at the first row of a step, and the last row.
        for deleted in [300, 256, 699] {
            let (mut opened, log) = store_of(700, &[deleted]);
            let (whole, whole_files) = export(&mut opened, &log, u64::MAX);
            assert_eq!(whole.missing_from, Some(deleted));
            assert_eq!(whole.entries, deleted);
            for step in [1, 128, 256] {
                let (w, f) = export(&mut opened, &log, step);
                assert_eq!(w, whole, "row {deleted} deleted, step {step}");
                assert_eq!(f, whole_files, "row {deleted} deleted, step {step}");
            }
        }
    }
}
