//! Read-side operations over any [`Store`]: verification, receipts and
//! proofs. They read what is stored and let `evident-core` judge it.

use std::cell::RefCell;
use std::collections::VecDeque;
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
    BodyRow, CheckpointTrust, EntryRow, KeyHistory, KeyPeriod, LogVerifier, Reason, Report,
    VerifiedPrefix,
};
use evident_core::{ErrorCode, Hash};

use crate::backend::{Store, tile_prefix};
use crate::error::{Result, StoreError};
use crate::model::{CopiedRows, EntryRef, LogId, LogInfo, StoredCheckpoint, StoredEntry};

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
/// of its own). The pass reports on one committed state, the one its
/// first snapshot ([`Store::begin_snapshot`]) sees: what other
/// connections commit meanwhile is for the next verification. It reads
/// that state in snapshots of [`VERIFY_STEP_ROWS`] rows, renewed between
/// steps ([`Store::renew_snapshot`]), because a snapshot held for the
/// whole pass stopped a live server's WAL from starting over: verifying
/// 4 million entries under batch appends grew it from 69 to 371 MB and
/// halved the appends while it ran (BENCHMARKS.md, issue 4).
pub fn verify_log(
    store: &mut dyn Store,
    log: &LogInfo,
    verifiers: Verifiers,
    progress: Progress<'_>,
) -> Result<Report> {
    verify_log_in_steps(store, log, verifiers, progress, VERIFY_STEP_ROWS)
}

/// [`verify_log`] with `step_rows` rows per snapshot (`u64::MAX`: one
/// snapshot for the whole pass).
pub fn verify_log_in_steps(
    store: &mut dyn Store,
    log: &LogInfo,
    verifiers: Verifiers,
    progress: Progress<'_>,
    step_rows: u64,
) -> Result<Report> {
    // The checkpoints and the rows of one committed state: a batch
    // committed between the two reads would otherwise be rows without
    // their checkpoint, a break that is not there.
    store.begin_snapshot()?;
    let pace = Pace {
        snapshot_rows: step_rows.max(1),
        ..Pace::default()
    };
    let v = full_run(store, log, verifiers, progress, pace);
    let ended = store.end_snapshot();
    let report = v?.finish();
    ended?;
    Ok(report)
}

/// Rows [`verify_log`] reads per snapshot. Between two, SQLite pauses
/// [`STEP_GAP`] only when its WAL grew meanwhile, so a verification with
/// no writer about, or a light one, pays nothing for the steps.
pub const VERIFY_STEP_ROWS: u64 = 32_768;

/// Every checkpoint and every row from index 0: the verifier after a
/// whole-log pass, not yet finished. Checkpoints are read a page at a time
/// and handed to the verifier a little ahead of the rows that reach them,
/// so memory does not grow with their number (a server that commits a
/// thousand small batches a second stores as many checkpoints).
///
/// With a bounded [`Pace::snapshot_rows`], the pass ends the caller's
/// snapshot after each stretch of rows, waits [`Pace::snapshot_gap`] and
/// begins another: it reads the rows and checkpoints of the first
/// snapshot (up to its latest checkpoint), which later commits only add
/// to.
fn full_run(
    store: &mut dyn Store,
    log: &LogInfo,
    verifiers: Verifiers,
    progress: Progress<'_>,
    pace: Pace,
) -> Result<LogVerifier> {
    let history = key_history(store)?;
    let latest = store.latest_checkpoint(log.id)?;
    let total = latest.as_ref().map_or(0, |c| c.size);
    let trust = checkpoint_trust(store, log, &history, &verifiers)?;
    let mut v = LogVerifier::new(&log.origin, verifiers);
    v.set_claimed_size(total);
    progress(0, total);
    let stepped = pace.snapshot_rows < total;
    let mut feed = CheckpointFeed {
        log: log.id,
        origin: log.origin.clone(),
        trust,
        after_seq: i64::MIN,
        last_seq: match (&latest, stepped) {
            (Some(c), true) => c.seq,
            _ => i64::MAX,
        },
        page: VecDeque::new(),
        page_size: pace.checkpoint_page,
        exhausted: false,
        largest: 0,
    };
    if !stepped {
        let rows = Rows {
            from: 0,
            until: None,
            last: true,
        };
        return feed_rows(store, log, rows, v, total, progress, Some(&mut feed), pace);
    }
    let mut from = 0u64;
    loop {
        let until = from.saturating_add(pace.snapshot_rows).min(total);
        let last = until >= total;
        let rows = Rows {
            from,
            until: Some(until),
            last,
        };
        v = feed_rows(store, log, rows, v, total, progress, Some(&mut feed), pace)?;
        if last {
            return Ok(v);
        }
        from = until;
        store.renew_snapshot(pace.snapshot_gap)?;
    }
}

/// The pause between two snapshots of a pass that goes in steps: long
/// enough for a WAL checkpoint to finish while no snapshot is open, so
/// that SQLite's writer starts the WAL over. Measured with steps of
/// 16,384 rows under batch appends: 30 ms kept the WAL near 100 MB, 10
/// and 15 ms let it grow to 289 and 214 MB (BENCHMARKS.md, issue 4).
pub const STEP_GAP: std::time::Duration = std::time::Duration::from_millis(30);

/// How much the reading thread hands over at a time. The defaults are the
/// constants below; tests use small ones so that checkpoints, segments and
/// chunks interleave within a small log.
#[derive(Debug, Clone, Copy)]
struct Pace {
    chunk_rows: usize,
    checkpoints_ahead: usize,
    checkpoint_page: usize,
    /// Rows a whole-log pass reads per snapshot; `u64::MAX`: one
    /// snapshot for the whole pass.
    snapshot_rows: u64,
    /// The pause between two of those snapshots.
    snapshot_gap: std::time::Duration,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            chunk_rows: CHUNK_ROWS,
            checkpoints_ahead: CHECKPOINTS_AHEAD,
            checkpoint_page: CHECKPOINT_PAGE,
            snapshot_rows: u64::MAX,
            snapshot_gap: STEP_GAP,
        }
    }
}

/// Checkpoints read per query.
const CHECKPOINT_PAGE: usize = 1024;

/// The keys to open a log's checkpoints with. Linking keys across
/// rotations needs only the checkpoints that may link (rotation
/// transitions), so only those are kept from a first pass over the pages,
/// and none is read when every key of the history is trusted already.
fn checkpoint_trust(
    store: &mut dyn Store,
    log: &LogInfo,
    history: &KeyHistory,
    verifiers: &Verifiers,
) -> Result<CheckpointTrust> {
    let mut notes: Vec<(u64, String)> = Vec::new();
    if CheckpointTrust::needs_links(history, verifiers) {
        let mut after = i64::MIN;
        loop {
            let page = store.checkpoints_after(log.id, after, CHECKPOINT_PAGE)?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            notes.extend(
                page.into_iter()
                    .filter(|c| CheckpointTrust::may_link(history, verifiers, seq_of(c)))
                    .map(|c| (seq_of(&c), c.note)),
            );
        }
    }
    Ok(CheckpointTrust::link(
        history,
        verifiers,
        notes.iter().map(|(seq, note)| (*seq, note.as_bytes())),
    ))
}

/// One checkpoint opened on the reading thread, for the verifying one.
struct OpenedCheckpoint {
    seq: u64,
    note: String,
    opened: std::result::Result<Checkpoint, String>,
}

/// A log's checkpoints in the order stored, opened as the rows need them.
struct CheckpointFeed {
    log: i64,
    origin: String,
    trust: CheckpointTrust,
    after_seq: i64,
    /// Checkpoints stored after this one are left out (a pass that reads
    /// several snapshots stops at the first one's latest).
    last_seq: i64,
    page: VecDeque<StoredCheckpoint>,
    page_size: usize,
    exhausted: bool,
    /// The largest valid size so far: a checkpoint smaller is a rollback
    /// (the verifier's rule), so valid ones that count come in size order.
    largest: u64,
}

impl CheckpointFeed {
    fn next(&mut self, store: &mut dyn Store) -> Result<Option<StoredCheckpoint>> {
        if self.page.is_empty() && !self.exhausted {
            let mut page = store.checkpoints_after(self.log, self.after_seq, self.page_size)?;
            match page.last() {
                Some(last) => self.after_seq = last.seq,
                None => self.exhausted = true,
            }
            if self.after_seq > self.last_seq {
                page.retain(|c| c.seq <= self.last_seq);
                self.exhausted = true;
            }
            self.page = page.into();
        }
        Ok(self.page.pop_front())
    }

    /// Opens checkpoints in order until `ahead` valid ones lie beyond
    /// `rows` entries. Returns them with the size the rows may reach
    /// before the next ones are needed: the last of those valid sizes, or
    /// `None` when no checkpoint is left (then every row may be read).
    ///
    /// The stop is a valid checkpoint's signed size, never a size read
    /// from a column or an unverified note: a forged checkpoint claiming a
    /// huge size must not let the rows run past the valid ones after it.
    fn take(
        &mut self,
        store: &mut dyn Store,
        rows: u64,
        ahead: usize,
    ) -> Result<(Vec<OpenedCheckpoint>, Option<u64>)> {
        let mut out = Vec::new();
        let mut beyond = 0;
        while beyond < ahead {
            let Some(c) = self.next(store)? else {
                return Ok((out, None));
            };
            let seq = seq_of(&c);
            let opened = self.trust.open(seq, c.note.as_bytes());
            if let Ok(cp) = &opened
                && cp.origin == self.origin
                && cp.size >= self.largest
            {
                self.largest = cp.size;
                if cp.size > rows {
                    beyond += 1;
                }
            }
            out.push(OpenedCheckpoint {
                seq,
                note: c.note,
                opened,
            });
        }
        Ok((out, Some(self.largest)))
    }
}

/// What the reading thread hands the verifying one, in order.
enum Feed {
    Rows(CopiedRows),
    Checkpoints(Vec<OpenedCheckpoint>),
}

/// Where an incremental verification continues from: a verified prefix
/// and the stored checkpoint it was verified against.
#[derive(Debug, Clone, PartialEq)]
pub struct Resume {
    /// The entries verified, and the state to continue from.
    pub prefix: VerifiedPrefix,
    /// That checkpoint's [`StoredCheckpoint::seq`]: a bounded step looks
    /// for its target among the checkpoints stored after it.
    pub seq: i64,
}

/// What one call of [`verify_incremental`] found.
#[derive(Debug)]
pub struct Incremental {
    /// The report of the rows and the checkpoint checked.
    pub report: Report,
    /// Where the next call continues from; `None` when something did not
    /// verify (continue from the last one that did).
    pub resume: Option<Resume>,
    /// Whether the checkpoint reached is the latest stored: when not, a
    /// bound stopped the step short of it.
    pub caught_up: bool,
}

/// Verifies a log continuing from a verified prefix (the background
/// verifier's incremental run), or from the start when there is none yet.
///
/// With a prefix, one checkpoint is read as the target: the latest, or,
/// when that is more than `max_rows` past the prefix, the last stored one
/// within `max_rows` of it (the first one past the bound when none is
/// within it). Its signature is checked, a consistency proof from the
/// prefix's size to it is computed from stored tiles and checked against
/// both signed roots (so a tree rewritten behind the prefix, or tiles that
/// no longer match it, are caught without a rescan), and the rows up to it
/// are checked as a full run would check them. Rows inside the prefix are
/// not read again: a full run ([`verify_log`]) is what finds a later change
/// to them. Without a prefix the whole log is verified as [`verify_log`]
/// does, in snapshots of `max_rows` rows with [`STEP_GAP`] between them.
///
/// With a prefix, each call reads one snapshot, which on SQLite holds
/// back the WAL's restart for as long as it lasts: a server verifying millions of new
/// rows in one go let the WAL grow by hundreds of megabytes and slowed its
/// writer by half meanwhile (BENCHMARKS.md, issue 4). The bound lets the
/// caller go in short steps instead.
pub fn verify_incremental(
    store: &mut dyn Store,
    log: &LogInfo,
    verifiers: Verifiers,
    from: Option<&Resume>,
    max_rows: u64,
) -> Result<Incremental> {
    // One committed state, as in `verify_log`: a batch committed between
    // reading the checkpoint and the rows would look like a break.
    store.begin_snapshot()?;
    let out = verify_incremental_snapshot(store, log, verifiers, from, max_rows);
    let ended = store.end_snapshot();
    let out = out?;
    ended?;
    Ok(out)
}

fn verify_incremental_snapshot(
    store: &mut dyn Store,
    log: &LogInfo,
    verifiers: Verifiers,
    from: Option<&Resume>,
    max_rows: u64,
) -> Result<Incremental> {
    let latest = store.latest_checkpoint(log.id)?;
    let Some(from) = from else {
        let pace = Pace {
            snapshot_rows: max_rows,
            ..Pace::default()
        };
        let v = full_run(store, log, verifiers, &mut |_, _| {}, pace)?;
        let resume = v.prefix().map(|prefix| Resume {
            prefix,
            seq: latest.as_ref().map_or(i64::MIN, |c| c.seq),
        });
        return Ok(Incremental {
            report: v.finish(),
            resume,
            caught_up: true,
        });
    };
    let prefix = &from.prefix;
    let mut v = LogVerifier::resume(&log.origin, verifiers.clone(), prefix);
    let Some(latest) = latest else {
        // The checkpoints the prefix was verified against are gone.
        v.set_claimed_size(prefix.size);
        let resume = v.prefix().map(|prefix| Resume {
            prefix,
            seq: from.seq,
        });
        return Ok(Incremental {
            report: v.finish(),
            resume,
            caught_up: true,
        });
    };
    let latest_seq = latest.seq;
    let target = step_target(store, log.id, from, latest, max_rows)?;
    let caught_up = target.seq == latest_seq;
    v.set_claimed_size(target.size);
    let history = key_history(store)?;
    v.add_checkpoints_at([(seq_of(&target), target.note.as_bytes())], &history);
    if target.size > prefix.size
        && let Ok((cp, _)) = open_checkpoint(target.note.as_bytes(), &verifiers, None)
        && cp.size == target.size
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
    // Rows past the latest checkpoint are read, to be reported as not
    // covered by one; past an earlier target, they are the next step's.
    let rows = Rows {
        from: prefix.size,
        until: (!caught_up).then_some(target.size),
        last: true,
    };
    let v = feed_rows(
        store,
        log,
        rows,
        v,
        target.size,
        &mut |_, _| {},
        None,
        Pace::default(),
    )?;
    let resume = v.prefix().map(|prefix| Resume {
        prefix,
        seq: target.seq,
    });
    Ok(Incremental {
        report: v.finish(),
        resume,
        caught_up,
    })
}

/// The checkpoint a step from `from` verifies against: `latest` when it is
/// within `max_rows` of the prefix, else the last one stored after
/// `from.seq` that is, or the first past the bound when none is. Sizes are
/// the stored column, a cache: a wrong one only misplaces the step, and
/// the note's own size is what is checked.
fn step_target(
    store: &mut dyn Store,
    log: LogId,
    from: &Resume,
    latest: StoredCheckpoint,
    max_rows: u64,
) -> Result<StoredCheckpoint> {
    let bound = from.prefix.size.saturating_add(max_rows);
    if latest.size <= bound {
        return Ok(latest);
    }
    let mut after = from.seq;
    let mut best: Option<StoredCheckpoint> = None;
    loop {
        let page = store.checkpoints_after(log, after, CHECKPOINT_PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for c in page {
            if c.size > bound {
                return Ok(best.unwrap_or(c));
            }
            best = Some(c);
        }
    }
    Ok(best.unwrap_or(latest))
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

/// Valid checkpoints handed to the verifier ahead of the rows: what bounds
/// the verifier's memory for checkpoints (and the pages of rows scanned
/// between two reads of checkpoints).
const CHECKPOINTS_AHEAD: usize = 1024;

/// The rows one call of [`feed_rows`] reads.
#[derive(Debug, Clone, Copy)]
struct Rows {
    /// The first index.
    from: u64,
    /// The index the rows stop before; `None`: every row there is.
    until: Option<u64>,
    /// Whether these are the pass's last rows: then the checkpoints left
    /// are handed over after them and the verifier is told the rows are
    /// done.
    last: bool,
}

#[allow(clippy::too_many_arguments)]
/// Scans rows from `from` into `v` on a second thread, with the log's
/// checkpoints from `checkpoints` (when the caller has not added them):
/// each segment of rows is scanned only after every checkpoint it reaches
/// was handed over, and ends at the last of those sizes, where the scan
/// starts again after reading the next checkpoints.
fn feed_rows(
    store: &mut dyn Store,
    log: &LogInfo,
    rows: Rows,
    mut v: LogVerifier,
    total: u64,
    progress: Progress<'_>,
    checkpoints: Option<&mut CheckpointFeed>,
    pace: Pace,
) -> Result<LogVerifier> {
    let (full_tx, full_rx) = mpsc::sync_channel::<Feed>(2);
    let (empty_tx, empty_rx) = mpsc::channel::<CopiedRows>();
    std::thread::scope(|scope| {
        let verifier = scope.spawn(move || {
            for item in full_rx {
                match item {
                    Feed::Rows(mut chunk) => {
                        feed_copied(&chunk, &mut v);
                        chunk.clear();
                        // The reader may have finished; then the chunk is
                        // dropped.
                        let _ = empty_tx.send(chunk);
                    }
                    Feed::Checkpoints(cps) => {
                        for c in cps {
                            v.add_opened_checkpoint(c.seq, c.note.as_bytes(), c.opened);
                        }
                    }
                }
            }
            if rows.last {
                v.rows_done();
            }
            v
        });
        let read = read_segments(
            store,
            log,
            rows,
            total,
            progress,
            checkpoints,
            pace,
            &full_tx,
            &empty_rx,
        );
        drop(full_tx);
        let v = verifier
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        read?;
        Ok(v)
    })
}

/// The reading side of [`feed_rows`]. Checkpoints past the last row are
/// handed over after the rows, a page at a time; the verifier, told the
/// rows are done, keeps only their largest size.
#[allow(clippy::too_many_arguments)]
fn read_segments(
    store: &mut dyn Store,
    log: &LogInfo,
    rows: Rows,
    total: u64,
    progress: Progress<'_>,
    mut checkpoints: Option<&mut CheckpointFeed>,
    pace: Pace,
    full_tx: &mpsc::SyncSender<Feed>,
    empty_rx: &mpsc::Receiver<CopiedRows>,
) -> Result<()> {
    // The verifier thread is gone (it panicked) when a send fails: stop
    // reading; joining it reports the panic.
    let gone = || StoreError::Database("the verifying thread stopped".into());
    let Rows { from, until, last } = rows;
    let mut done = 0u64;
    let mut next_index = from;
    let mut chunk = CopiedRows::default();
    let mut rows_left = true;
    while rows_left {
        if until.is_some_and(|u| from + done >= u) {
            break;
        }
        let stop = match checkpoints.as_deref_mut() {
            None => None,
            Some(feed) => {
                let (cps, stop) = feed.take(store, from + done, pace.checkpoints_ahead)?;
                if !cps.is_empty() {
                    full_tx.send(Feed::Checkpoints(cps)).map_err(|_| gone())?;
                }
                stop
            }
        };
        let limit = stop
            .into_iter()
            .chain(until)
            .min()
            .map(|s| s.saturating_sub(from + done));
        let mut segment = 0u64;
        let mut sent = true;
        store.scan_entries(log.id, next_index, &mut |e| {
            chunk.push(&e);
            next_index = e.index.saturating_add(1);
            segment += 1;
            if chunk.len() == pace.chunk_rows {
                let next = empty_rx.try_recv().unwrap_or_default();
                if full_tx
                    .send(Feed::Rows(std::mem::replace(&mut chunk, next)))
                    .is_err()
                {
                    sent = false;
                    return Ok(false);
                }
                progress(from + done + segment, total);
            }
            Ok(limit.is_none_or(|l| segment < l))
        })?;
        if !sent {
            return Err(gone());
        }
        done += segment;
        // Fewer rows than the checkpoints allowed: the rows ran out.
        rows_left = limit.is_some_and(|l| segment == l && l > 0);
    }
    if !chunk.is_empty() {
        full_tx.send(Feed::Rows(chunk)).map_err(|_| gone())?;
    }
    progress(from + done, total);
    if let Some(feed) = checkpoints.filter(|_| last) {
        loop {
            let (cps, stop) = feed.take(store, from + done, pace.checkpoint_page)?;
            if !cps.is_empty() {
                full_tx.send(Feed::Checkpoints(cps)).map_err(|_| gone())?;
            }
            if stop.is_none() {
                break;
            }
        }
    }
    Ok(())
}

/// Hands copied rows to the verifier, in order.
fn feed_copied(rows: &CopiedRows, v: &mut LogVerifier) {
    for r in rows.iter() {
        let body = match (r.salt, r.body) {
            (Some(salt), Some(body)) => BodyRow::Present { salt, body },
            // Half a body is as absent as none: the digest cannot be
            // recomputed, and no redaction leaves one half.
            _ => BodyRow::Absent,
        };
        v.push(EntryRow {
            index: r.index,
            envelope: r.envelope,
            stored_leaf_hash: r.leaf_hash,
            body,
        });
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

    use ed25519_dalek::SigningKey;
    use evident_core::checkpoint::sign_checkpoint;
    use evident_core::entry::{Limits, parse_entry};
    use evident_core::note::NoteSigner;

    use super::*;
    use crate::Sequencer;
    use crate::sqlite::SqliteStore;

    const NOW: &str = "2026-01-01T00:00:00.000000Z";

    fn signer(key: u8) -> NoteSigner {
        NoteSigner::new("test.example", SigningKey::from_bytes(&[key; 32])).unwrap()
    }

    fn verifiers() -> Verifiers {
        Verifiers::new([signer(7).verifier_key()])
    }

    /// A log of `n` entries, one checkpoint per entry.
    fn log_of(n: usize) -> (SqliteStore, LogInfo) {
        let mut s = SqliteStore::open_in_memory().unwrap();
        s.migrate_up().unwrap();
        s.initialize("test.example", &signer(7).verifier_key().to_string(), NOW)
            .unwrap();
        let log = s.create_log("t", "a", "test.example/t/a", NOW).unwrap();
        let mut seq = Sequencer::new(signer(7));
        for i in 0..n {
            let d = parse_entry(
                format!(r#"{{"kind":"k","actor":"u{i}"}}"#).as_bytes(),
                &Limits::default(),
            )
            .unwrap();
            seq.append(&mut s, &log, &[d]).unwrap();
        }
        (s, log)
    }

    fn forge(s: &SqliteStore, log: &LogInfo, at_size: u64, claims: u64, root: u8, key: u8) {
        let cp = Checkpoint {
            origin: log.origin.clone(),
            size: claims,
            root: Hash([root; 32]),
            extensions: Vec::new(),
        };
        let note = sign_checkpoint(&cp, &[&signer(key)]).unwrap();
        s.connection()
            .execute(
                "UPDATE checkpoints SET note = ?1 WHERE log_id = ?2 AND size = ?3",
                rusqlite::params![note, log.id, at_size as i64],
            )
            .unwrap();
    }

    /// Every checkpoint up front, then every row: what streaming must equal.
    fn all_at_once(s: &mut SqliteStore, log: &LogInfo) -> Report {
        let cps = s.checkpoints(log.id).unwrap();
        let history = key_history(s).unwrap();
        let mut v = LogVerifier::new(&log.origin, verifiers());
        v.set_claimed_size(cps.last().map_or(0, |c| c.size));
        v.add_checkpoints_at(cps.iter().map(|c| (seq_of(c), c.note.as_bytes())), &history);
        let mut chunk = CopiedRows::default();
        s.scan_entries(log.id, 0, &mut |e| {
            chunk.push(&e);
            Ok(true)
        })
        .unwrap();
        feed_copied(&chunk, &mut v);
        v.finish()
    }

    /// Chunk rows, checkpoints ahead, checkpoint page, snapshot rows.
    const PACES: [(usize, usize, usize, u64); 8] = [
        (7, 3, 5, u64::MAX),
        (1, 1, 1, u64::MAX),
        (50, 2, 3, u64::MAX),
        (4, 40, 7, u64::MAX),
        (4096, 1024, 1024, u64::MAX),
        (7, 3, 5, 13),
        (1, 1, 1, 1),
        (4096, 1024, 1024, 40),
    ];

    fn streamed(
        s: &mut SqliteStore,
        log: &LogInfo,
        (c, a, p, r): (usize, usize, usize, u64),
    ) -> Report {
        let pace = Pace {
            chunk_rows: c,
            checkpoints_ahead: a,
            checkpoint_page: p,
            snapshot_rows: r,
            snapshot_gap: std::time::Duration::ZERO,
        };
        s.begin_snapshot().unwrap();
        let v = full_run(s, log, verifiers(), &mut |_, _| {}, pace).unwrap();
        s.end_snapshot().unwrap();
        v.finish()
    }

    /// Small paces interleave checkpoint pages, row segments, chunks and
    /// snapshots in every way; each gives the report of the verifier fed everything up
    /// front, on an intact log and on one with a forged far-ahead
    /// checkpoint (which must not let the rows run past the valid ones),
    /// a wrong root under the log's own key, an edited envelope and rows
    /// deleted from the end.
    #[test]
    fn streamed_checkpoints_give_the_all_at_once_report() {
        let (mut s, log) = log_of(120);
        let intact = all_at_once(&mut s, &log);
        assert!(intact.valid);
        for pace in PACES {
            assert_eq!(streamed(&mut s, &log, pace), intact, "{pace:?}");
        }
        s.connection()
            .execute_batch(
                "DROP TRIGGER entries_no_update; DROP TRIGGER entries_no_delete;
                 DROP TRIGGER checkpoints_no_update;",
            )
            .unwrap();
        forge(&s, &log, 10, 115, 1, 9);
        forge(&s, &log, 60, 60, 2, 7);
        s.connection()
            .execute_batch(
                "UPDATE entries SET envelope = (SELECT envelope FROM entries WHERE idx = 3)
                     WHERE idx = 80;
                 DELETE FROM entries WHERE idx >= 100;",
            )
            .unwrap();
        let tampered = all_at_once(&mut s, &log);
        let codes: Vec<&str> = tampered
            .signature_failures
            .iter()
            .chain(&tampered.checkpoint_mismatches)
            .chain(&tampered.gaps)
            .map(|v| v.reason.code())
            .collect();
        for code in [
            "checkpoint.bad_signature",
            "checkpoint.root_mismatch",
            "gap.truncated",
        ] {
            assert!(codes.contains(&code), "{code}: {tampered:?}");
        }
        for pace in PACES {
            assert_eq!(streamed(&mut s, &log, pace), tampered, "{pace:?}");
        }
    }

    /// The feed stops after `ahead` valid checkpoints beyond the rows, at
    /// the last one's signed size; an invalid checkpoint claiming more does
    /// not move the stop.
    #[test]
    fn the_feed_stops_at_valid_checkpoints_only() {
        let (mut s, log) = log_of(30);
        let feed = |s: &mut SqliteStore| CheckpointFeed {
            log: log.id,
            origin: log.origin.clone(),
            trust: {
                let history = key_history(s).unwrap();
                checkpoint_trust(s, &log, &history, &verifiers()).unwrap()
            },
            after_seq: i64::MIN,
            last_seq: i64::MAX,
            page: VecDeque::new(),
            page_size: 4,
            exhausted: false,
            largest: 0,
        };
        let mut f = feed(&mut s);
        let (cps, stop) = f.take(&mut s, 0, 3).unwrap();
        assert_eq!((cps.len(), stop), (3, Some(3)));
        let (cps, stop) = f.take(&mut s, 3, 10).unwrap();
        assert_eq!((cps.len(), stop), (10, Some(13)));
        let (cps, stop) = f.take(&mut s, 13, 100).unwrap();
        assert_eq!((cps.len(), stop), (17, None));

        s.connection()
            .execute_batch("DROP TRIGGER checkpoints_no_update;")
            .unwrap();
        forge(&s, &log, 2, 29, 1, 9);
        let mut f = feed(&mut s);
        let (cps, stop) = f.take(&mut s, 0, 3).unwrap();
        assert!(cps[1].opened.is_err());
        assert_eq!((cps.len(), stop), (4, Some(4)));

        // Cut at the tenth checkpoint stored: a pass reading several
        // snapshots sees none stored after its first one's latest.
        let tenth = s.checkpoints(log.id).unwrap()[9].seq;
        let mut f = CheckpointFeed {
            last_seq: tenth,
            ..feed(&mut s)
        };
        let (cps, stop) = f.take(&mut s, 0, 100).unwrap();
        assert_eq!((cps.len(), stop), (10, None));
        assert_eq!(cps.last().map(|c| c.seq), u64::try_from(tenth).ok());
    }
}
