//! Read-side operations over any [`Store`]: verification, receipts and
//! proofs. They read what is stored and let `evident-core` judge it.

use std::cell::RefCell;
use std::ops::Range;
use std::sync::mpsc;

use evident_core::checkpoint::Checkpoint;
use evident_core::checkpoint::open_checkpoint;
use evident_core::entry::{Body, Envelope};
use evident_core::merkle::{
    consistency_proof, inclusion_proof, verify_consistency, verify_inclusion,
};
use evident_core::note::VerifierKey;
use evident_core::note::Verifiers;
use evident_core::pyramid::PyramidCache;
use evident_core::receipt::{RECEIPT_FORMAT, Receipt, encode_salt};
use evident_core::tile::{TileError, TileId, TileKind, TileNodes, TileReader};
use evident_core::verify::{
    BodyRow, EntryRow, KeyHistory, KeyPeriod, LogVerifier, Reason, Report, VerifiedPrefix,
};
use evident_core::{ErrorCode, Hash};

use crate::backend::{Store, tile_prefix};
use crate::error::{Result, StoreError};
use crate::model::{EntryRef, LogInfo, StoredCheckpoint, StoredEntry};

/// Progress callback: `(rows done, rows expected)`.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// Rows per chunk handed from the reading thread to the verifying one.
const CHUNK_ROWS: usize = 4096;

/// Verifies a whole log as stored, in one streaming pass. Every checkpoint
/// is checked against `verifiers` (the data directory's keys, or keys the
/// caller trusts instead).
///
/// Reading and verifying run on two threads: this one scans rows into
/// chunks of [`CHUNK_ROWS`], a second feeds them to the verifier, and
/// emptied chunks come back to be refilled. Memory is a few chunks plus the
/// verifier's own state, whatever the log's size. The progress total is
/// the size the latest checkpoint claims (counting rows would cost a scan
/// of its own). The whole pass reads one snapshot
/// ([`Store::begin_snapshot`]): what other connections commit meanwhile is
/// for the next verification.
pub fn verify_log(
    store: &mut dyn Store,
    log: &LogInfo,
    verifiers: Verifiers,
    progress: Progress<'_>,
) -> Result<Report> {
    // The checkpoints and the rows of one committed state: a batch
    // committed between the two reads would otherwise be rows without
    // their checkpoint, a break that is not there.
    store.begin_snapshot()?;
    let report = verify_snapshot(store, log, verifiers, progress);
    let ended = store.end_snapshot();
    let report = report?;
    ended?;
    Ok(report)
}

fn verify_snapshot(
    store: &mut dyn Store,
    log: &LogInfo,
    verifiers: Verifiers,
    progress: Progress<'_>,
) -> Result<Report> {
    Ok(full_run(store, log, verifiers, progress)?.finish())
}

/// Every checkpoint, then every row from index 0: the verifier after a
/// whole-log pass, not yet finished.
fn full_run(
    store: &mut dyn Store,
    log: &LogInfo,
    verifiers: Verifiers,
    progress: Progress<'_>,
) -> Result<LogVerifier> {
    let checkpoints = store.checkpoints(log.id)?;
    let history = key_history(store)?;
    let total = checkpoints.last().map_or(0, |c| c.size);
    let mut v = LogVerifier::new(&log.origin, verifiers);
    v.set_claimed_size(total);
    v.add_checkpoints_at(
        checkpoints.iter().map(|c| (seq_of(c), c.note.as_bytes())),
        &history,
    );
    drop(checkpoints);
    progress(0, total);
    feed_rows(store, log, 0, v, total, progress)
}

/// Verifies a log continuing from a verified prefix (the background
/// verifier's incremental run), or from the start when there is none yet.
/// Returns the report and the new prefix, if everything verified.
///
/// With a prefix, only the latest checkpoint is read: its signature is
/// checked, a consistency proof from the prefix's size to it is computed
/// from stored tiles and checked against both signed roots (so a tree
/// rewritten behind the prefix, or tiles that no longer match it, are
/// caught without a rescan), and the rows after the prefix are checked as a
/// full run would check them. Rows inside the prefix are not read again: a
/// full run ([`verify_log`]) is what finds a later change to them.
pub fn verify_incremental(
    store: &mut dyn Store,
    log: &LogInfo,
    verifiers: Verifiers,
    prefix: Option<&VerifiedPrefix>,
) -> Result<(Report, Option<VerifiedPrefix>)> {
    // One committed state, as in `verify_log`: a batch committed between
    // reading the checkpoint and the rows would look like a break.
    store.begin_snapshot()?;
    let out = verify_incremental_snapshot(store, log, verifiers, prefix);
    let ended = store.end_snapshot();
    let out = out?;
    ended?;
    Ok(out)
}

fn verify_incremental_snapshot(
    store: &mut dyn Store,
    log: &LogInfo,
    verifiers: Verifiers,
    prefix: Option<&VerifiedPrefix>,
) -> Result<(Report, Option<VerifiedPrefix>)> {
    let Some(prefix) = prefix else {
        let v = full_run(store, log, verifiers, &mut |_, _| {})?;
        let next = v.prefix();
        return Ok((v.finish(), next));
    };
    let latest = store.latest_checkpoint(log.id)?;
    let mut v = LogVerifier::resume(&log.origin, verifiers.clone(), prefix);
    let Some(latest) = latest else {
        // The checkpoints the prefix was verified against are gone.
        v.set_claimed_size(prefix.size);
        let next = v.prefix();
        return Ok((v.finish(), next));
    };
    v.set_claimed_size(latest.size);
    let history = key_history(store)?;
    v.add_checkpoints_at([(seq_of(&latest), latest.note.as_bytes())], &history);
    if latest.size > prefix.size
        && let Ok((cp, _)) = open_checkpoint(latest.note.as_bytes(), &verifiers, None)
        && cp.size == latest.size
    {
        let proven = consistency(store, log, prefix.size, cp.size).and_then(|proof| {
            verify_consistency(prefix.size, cp.size, &proof, &prefix.root, &cp.root)
                .map_err(StoreError::from)
        });
        if let Err(e) = proven {
            v.add_problem(
                prefix.size,
                Reason::CheckpointRootMismatch,
                format!(
                    "the stored tree does not prove the checkpoint of size {} consistent with the verified one of size {}: {e}",
                    cp.size, prefix.size
                ),
            );
        }
    }
    let v = feed_rows(store, log, prefix.size, v, latest.size, &mut |_, _| {})?;
    let next = v.prefix();
    Ok((v.finish(), next))
}

/// The key table as a [`KeyHistory`]: each key with the checkpoint range
/// its rotations give it. Only ranges come from here; which keys are
/// trusted is the caller's choice.
pub fn key_history(store: &mut dyn Store) -> Result<KeyHistory> {
    let mut periods = Vec::new();
    for k in store.keys()? {
        let key = k
            .vkey
            .parse::<VerifierKey>()
            .map_err(|e| StoreError::Corrupt(format!("stored key {:?}: {e}", k.vkey)))?;
        let seq = |s: Option<i64>| s.map(|s| u64::try_from(s).unwrap_or(0));
        periods.push(KeyPeriod {
            key,
            first_seq: seq(k.first_seq),
            last_seq: seq(k.last_seq),
        });
    }
    Ok(KeyHistory::new(periods))
}

/// A checkpoint's storage sequence number, as the key history counts.
pub fn seq_of(c: &StoredCheckpoint) -> u64 {
    u64::try_from(c.seq).unwrap_or(0)
}

/// Scans rows from `from` into `v` on a second thread.
fn feed_rows(
    store: &mut dyn Store,
    log: &LogInfo,
    from: u64,
    mut v: LogVerifier,
    total: u64,
    progress: Progress<'_>,
) -> Result<LogVerifier> {
    let (full_tx, full_rx) = mpsc::sync_channel::<RowChunk>(2);
    let (empty_tx, empty_rx) = mpsc::channel::<RowChunk>();
    std::thread::scope(|scope| {
        let verifier = scope.spawn(move || {
            for chunk in full_rx {
                chunk.feed(&mut v);
                // The reader may have finished; then the chunk is dropped.
                let _ = empty_tx.send(chunk.cleared());
            }
            v
        });
        let mut done = 0u64;
        let mut chunk = RowChunk::default();
        let scanned = store.scan_entries(log.id, from, &mut |e| {
            chunk.push(&e);
            if chunk.rows.len() == CHUNK_ROWS {
                let next = empty_rx.try_recv().unwrap_or_default();
                if full_tx.send(std::mem::replace(&mut chunk, next)).is_err() {
                    // The verifier thread is gone (it panicked): stop
                    // reading; joining it below reports the panic.
                    return Ok(false);
                }
                done += CHUNK_ROWS as u64;
                progress(done, total);
            }
            Ok(true)
        });
        done += chunk.rows.len() as u64;
        if scanned.is_ok() && !chunk.rows.is_empty() {
            let _ = full_tx.send(chunk);
        }
        drop(full_tx);
        let v = verifier
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        scanned?;
        progress(done, total);
        Ok(v)
    })
}

/// Rows copied out of the store's row buffers, to verify on another thread.
#[derive(Debug, Default)]
struct RowChunk {
    bytes: Vec<u8>,
    rows: Vec<ChunkRow>,
}

/// One row of a [`RowChunk`]: byte ranges into its buffer.
#[derive(Debug)]
struct ChunkRow {
    index: u64,
    leaf_hash: Option<Hash>,
    envelope: Range<usize>,
    salt: Option<Range<usize>>,
    body: Option<Range<usize>>,
}

impl RowChunk {
    fn put(&mut self, b: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(b);
        start..self.bytes.len()
    }

    fn push(&mut self, e: &EntryRef<'_>) {
        let row = ChunkRow {
            index: e.index,
            leaf_hash: e.leaf_hash,
            envelope: self.put(e.envelope),
            salt: e.salt.map(|b| self.put(b)),
            body: e.body.map(|b| self.put(b)),
        };
        self.rows.push(row);
    }

    fn feed(&self, v: &mut LogVerifier) {
        let at = |r: &Range<usize>| &self.bytes[r.clone()];
        for r in &self.rows {
            let body = match (&r.salt, &r.body) {
                (Some(salt), Some(body)) => BodyRow::Present {
                    salt: at(salt),
                    body: at(body),
                },
                // Half a body is as absent as none: the digest cannot be
                // recomputed, and no redaction leaves one half.
                _ => BodyRow::Absent,
            };
            v.push(EntryRow {
                index: r.index,
                envelope: at(&r.envelope),
                stored_leaf_hash: r.leaf_hash,
                body,
            });
        }
    }

    fn cleared(mut self) -> Self {
        self.bytes.clear();
        self.rows.clear();
        self
    }
}

/// Reads hash tiles from a store, for proofs computed from tiles alone.
pub struct StoreTiles<'s> {
    store: RefCell<&'s mut dyn Store>,
    log: i64,
}

impl std::fmt::Debug for StoreTiles<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreTiles")
            .field("log", &self.log)
            .finish()
    }
}

impl<'s> StoreTiles<'s> {
    /// Tiles of `log` in `store`.
    pub fn new(store: &'s mut dyn Store, log: &LogInfo) -> Self {
        StoreTiles {
            store: RefCell::new(store),
            log: log.id,
        }
    }
}

impl TileReader for StoreTiles<'_> {
    fn read_tile(&self, tile: &TileId) -> std::result::Result<Vec<u8>, TileError> {
        let TileKind::Hashes { level } = tile.kind else {
            return Err(TileError::NotHashTile { path: tile.path() });
        };
        let stored = self
            .store
            .borrow_mut()
            .read_tile(self.log, level, tile.index)
            .map_err(|_| TileError::Missing { path: tile.path() })?;
        tile_prefix(tile, stored)
    }
}

/// The latest checkpoint, parsed without verification (the caller is the
/// writer, or a reader about to hand the note to someone who verifies).
pub fn latest(store: &mut dyn Store, log: &LogInfo) -> Result<(StoredCheckpoint, Checkpoint)> {
    let cp = store
        .latest_checkpoint(log.id)?
        .ok_or_else(|| StoreError::NoSuchEntry {
            origin: log.origin.clone(),
            index: 0,
            size: 0,
        })?;
    let text = evident_core::note::parse_note(cp.note.as_bytes())
        .map_err(|e| StoreError::Corrupt(format!("latest checkpoint: {e}")))?
        .0;
    let parsed = Checkpoint::parse(&text)
        .map_err(|e| StoreError::Corrupt(format!("latest checkpoint: {e} ({})", e.code())))?;
    Ok((cp, parsed))
}

/// One stored entry by index.
pub fn entry(store: &mut dyn Store, log: &LogInfo, index: u64) -> Result<Option<StoredEntry>> {
    let mut found = None;
    store.scan_entries(log.id, index, &mut |e| {
        if e.index == index {
            found = Some(StoredEntry::from(e));
        }
        Ok(false)
    })?;
    Ok(found)
}

/// A receipt for entry `index`: its envelope, body and salt (unless
/// `with_body` is false), the latest signed checkpoint and the inclusion
/// proof to it, computed from stored tiles and checked against the
/// checkpoint's root before it is handed out (`store.corrupt` if stored
/// tiles or the entry no longer prove it).
pub fn receipt(
    store: &mut dyn Store,
    log: &LogInfo,
    index: u64,
    with_body: bool,
) -> Result<Receipt> {
    receipt_shared(store, log, index, with_body, None)
}

/// [`receipt`], with the nodes between stored tile levels taken from
/// `pyramids` (namespace: the log's id) when given, so that receipts for
/// neighbouring entries hash each tile's levels once between them rather
/// than once each. The proof is checked against the signed root either
/// way; when a proof built from the shared pyramids fails that check, the
/// log's pyramids are dropped and the proof is built again from the tiles
/// alone, so a bad pyramid is never served twice.
pub fn receipt_shared(
    store: &mut dyn Store,
    log: &LogInfo,
    index: u64,
    with_body: bool,
    pyramids: Option<&PyramidCache>,
) -> Result<Receipt> {
    let (stored_cp, cp) = latest(store, log)?;
    if index >= cp.size {
        return Err(StoreError::NoSuchEntry {
            origin: log.origin.clone(),
            index,
            size: cp.size,
        });
    }
    let row = entry(store, log, index)?.ok_or_else(|| StoreError::NoSuchEntry {
        origin: log.origin.clone(),
        index,
        size: cp.size,
    })?;
    let envelope = Envelope::parse(&row.envelope)
        .map_err(|e| StoreError::Corrupt(format!("entry {index}: {e}")))?;
    let leaf_hash = evident_core::hash::leaf_hash(&row.envelope);
    let (body, salt) = match (with_body, &row.salt, &row.body) {
        (true, Some(salt), Some(body)) => {
            let salt: [u8; 16] = salt
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Corrupt(format!("entry {index}: salt is not 16 bytes")))?;
            let body = Body::parse(body)
                .map_err(|e| StoreError::Corrupt(format!("entry {index}: body: {e}")))?;
            (Some(body), Some(encode_salt(&salt)))
        }
        _ => (None, None),
    };
    let tiles = StoreTiles::new(store, log);
    let ns = u64::try_from(log.id).unwrap_or_default();
    let from_tiles = || inclusion_proof(index, cp.size, &TileNodes::new(&tiles, cp.size));
    let mut proof = match pyramids {
        Some(shared) => inclusion_proof(
            index,
            cp.size,
            &TileNodes::with_shared(&tiles, cp.size, shared, ns),
        )?,
        None => from_tiles()?,
    };
    // Hash tiles are derived data without append-only triggers, and
    // neither appends nor `verify_log` read the full ones: check the proof
    // against the signed root here, so that a damaged tile or row is an
    // error now rather than a receipt that fails in the client's hands.
    let mut checked = verify_inclusion(&leaf_hash, index, cp.size, &proof, &cp.root);
    if let (Err(_), Some(shared)) = (&checked, pyramids) {
        shared.clear(ns);
        proof = from_tiles()?;
        checked = verify_inclusion(&leaf_hash, index, cp.size, &proof, &cp.root);
    }
    checked.map_err(|e| {
        StoreError::Corrupt(format!(
            "entry {index} is not proven by the latest checkpoint (size {}) from stored data: {e}; \
             the stored hash tiles or the entry were altered",
            cp.size
        ))
    })?;
    Ok(Receipt {
        format: RECEIPT_FORMAT.to_owned(),
        index,
        leaf_hash,
        envelope,
        body,
        salt,
        checkpoint: stored_cp.note,
        inclusion_proof: proof,
    })
}

/// Consistency proof between two sizes of a log, from stored tiles.
pub fn consistency(store: &mut dyn Store, log: &LogInfo, from: u64, to: u64) -> Result<Vec<Hash>> {
    let tiles = StoreTiles::new(store, log);
    let nodes = TileNodes::new(&tiles, to);
    Ok(consistency_proof(from, to, &nodes)?)
}

/// One stored entry as JSON, for people and API clients: `index`,
/// `leaf_hash` (of the bytes as stored), `envelope` and `body` parsed (or,
/// if a row no longer parses, its bytes as a string, so tampering shows
/// rather than hides), and `salt` (standard base64; `hex:…` when it is not
/// 16 bytes). A redacted or deleted body is `null`.
pub fn entry_json(e: &EntryRef<'_>) -> serde_json::Value {
    use serde_json::{Value, json};
    let lossy = |b: &[u8]| Value::String(String::from_utf8_lossy(b).into_owned());
    let envelope: Value = serde_json::from_slice(e.envelope).unwrap_or_else(|_| lossy(e.envelope));
    let body = match e.body {
        Some(b) => Body::parse(b).map_or_else(
            |_| lossy(b),
            |body| serde_json::to_value(body).unwrap_or(Value::Null),
        ),
        None => Value::Null,
    };
    let salt = e.salt.map(|s| match <[u8; 16]>::try_from(s) {
        Ok(s) => encode_salt(&s),
        Err(_) => s.iter().fold(String::from("hex:"), |mut acc, x| {
            use std::fmt::Write;
            let _ = write!(acc, "{x:02x}");
            acc
        }),
    });
    json!({
        "index": e.index,
        "leaf_hash": evident_core::hash::leaf_hash(e.envelope),
        "envelope": envelope,
        "body": body,
        "salt": salt,
    })
}
