//! The sequencer and integrator: turns parsed entries into a committed batch.
//!
//! One call to [`Sequencer::append`] is one batch and one database
//! transaction: the log's write lock, the head, the idempotency lookups,
//! the sealed envelopes and bodies, the hash tiles that grew and one newly
//! signed checkpoint, committed together (group commit). A crash before the
//! commit leaves none of it; after, all of it. There is no per-entry
//! signature and no per-entry transaction.
//!
//! The right edge of each log's tree is cached between batches. It is
//! trusted only while the stored head still has the size and root the
//! cache ended with; otherwise (another writer appended, or this is the
//! first batch) it is rebuilt from stored tiles and checked against the
//! latest stored checkpoint, and a log whose stored state disagrees with
//! its own head is refused rather than extended.

use std::collections::HashMap;
use std::sync::mpsc;

use evident_core::Hash;
use evident_core::checkpoint::{Checkpoint, open_checkpoint, sign_checkpoint};
use evident_core::entry::{
    EntryDraft, EntryError, EnvelopeView, SALT_SIZE, Sealer, format_ts, genesis_prev, parse_ts,
};
use evident_core::note::{NoteSigner, Verifiers};

use crate::backend::{AppendTxn, Store};
use crate::edge::TreeEdge;
use crate::error::{Result, StoreError};
use crate::model::{LogId, LogInfo, NewEntry, NewTile};

/// What happened to one entry of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Its index in the log.
    pub index: u64,
    /// Its leaf hash.
    pub leaf_hash: Hash,
    /// Its sequencing time.
    pub ts: String,
    /// True when the request id was already in the log: this is the
    /// original entry and nothing was stored.
    pub duplicate: bool,
}

/// The outcome of one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    /// One result per input entry, in input order.
    pub entries: Vec<Appended>,
    /// The log's size after the batch.
    pub size: u64,
    /// The batch's signed checkpoint; `None` when every entry was a
    /// duplicate and nothing was written.
    pub checkpoint: Option<String>,
    /// True when the clock was behind the log's last `ts` and the batch's
    /// time was held at that `ts` so time never goes backwards.
    pub clock_clamped: bool,
}

impl BatchOutcome {
    /// Number of entries stored by this batch.
    pub fn appended(&self) -> usize {
        self.entries.iter().filter(|e| !e.duplicate).count()
    }
}

/// Draws a salt for each draft and digests its body now
/// ([`EntryDraft::salt_with`]), one call for the randomness of all.
///
/// For the threads that read requests: the sequencer then seals these
/// drafts without hashing their bodies, which took ~8% of a server
/// writer's time under 1,000-entry batches (BENCHMARKS.md, issue 4).
pub fn salt_drafts(drafts: &mut [EntryDraft]) -> Result<()> {
    let mut salts = vec![0u8; drafts.len() * SALT_SIZE];
    fill_random(&mut salts)?;
    for (d, salt) in drafts.iter_mut().zip(salts.chunks_exact(SALT_SIZE)) {
        d.salt_with(salt.try_into().expect("chunks of SALT_SIZE"));
    }
    Ok(())
}

fn fill_random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| StoreError::Signing(format!("no randomness for salts: {e}")))
}

/// Microseconds since the Unix epoch.
pub type Clock = fn() -> i64;

/// The system clock.
pub fn system_clock() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[derive(Debug, Clone)]
struct LogState {
    edge: TreeEdge,
    prev: Hash,
    last_ts: i64,
}

/// Sequences batches for any number of logs with one signing key.
#[derive(Debug)]
pub struct Sequencer {
    signers: Vec<NoteSigner>,
    clock: Clock,
    logs: HashMap<LogId, LogState>,
}

impl Sequencer {
    /// A sequencer signing with `signer`, on the system clock.
    pub fn new(signer: NoteSigner) -> Self {
        Sequencer {
            signers: vec![signer],
            clock: system_clock,
            logs: HashMap::new(),
        }
    }

    /// The verifier keys of this sequencer's own signers: the only keys
    /// whose checkpoints it continues from.
    fn verifiers(&self) -> Verifiers {
        Verifiers::new(self.signers.iter().map(NoteSigner::verifier_key))
    }

    /// Uses another clock (tests of clock skew).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The verifier key this sequencer signs with.
    pub fn verifier_key(&self) -> evident_core::note::VerifierKey {
        self.signers[0].verifier_key()
    }

    /// Forgets cached state, so the next batch of every log reloads it.
    pub fn clear_cache(&mut self) {
        self.logs.clear();
    }

    /// Appends `drafts` to `log` as one batch. Entries whose request id is
    /// already in the log (or earlier in the batch) are answered with the
    /// original and not stored. Any error leaves the log unchanged.
    pub fn append(
        &mut self,
        store: &mut dyn Store,
        log: &LogInfo,
        drafts: &[EntryDraft],
    ) -> Result<BatchOutcome> {
        let first = self
            .lock(store, log)
            .and_then(|(tx, state)| self.seal_batch(tx, state, log, drafts, false));
        self.checked_retry(store, log, drafts, first)
    }

    /// As [`Sequencer::append`], but once the log's write lock is held
    /// calls `more` once, which may push further drafts onto `drafts`:
    /// they join the batch before it is sealed.
    ///
    /// Waiting for the lock is when requests pile up (another node or
    /// process holds it for a whole batch), so a writer that gathers what
    /// queued meanwhile commits it in this batch instead of queueing it
    /// behind another turn on the lock. `more` runs under the lock and
    /// should only take what is already waiting; it is not called when the
    /// lock cannot be taken. On return `drafts` holds every draft of the
    /// batch, in the order of the outcome's entries.
    pub fn append_with_more(
        &mut self,
        store: &mut dyn Store,
        log: &LogInfo,
        drafts: &mut Vec<EntryDraft>,
        more: &mut dyn FnMut(&mut Vec<EntryDraft>),
    ) -> Result<BatchOutcome> {
        let first = self.lock(store, log).and_then(|(tx, state)| {
            more(drafts);
            self.seal_batch(tx, state, log, drafts, false)
        });
        self.checked_retry(store, log, drafts, first)
    }

    /// A backend that skipped the request-id lookup refuses a batch holding
    /// an id that is already stored (and rolls it back): the batch is then
    /// done again, under a newly taken lock, looking the ids up first.
    fn checked_retry(
        &mut self,
        store: &mut dyn Store,
        log: &LogInfo,
        drafts: &[EntryDraft],
        first: Result<BatchOutcome>,
    ) -> Result<BatchOutcome> {
        match first {
            Err(StoreError::RequestIdTaken(_)) => self
                .lock(store, log)
                .and_then(|(tx, state)| self.seal_batch(tx, state, log, drafts, true)),
            other => other,
        }
    }

    /// Takes the log's write lock, reads the head and checks it, and gives
    /// the log's state: the cached one while it still matches the head,
    /// else one rebuilt from the database.
    fn lock<'s>(
        &mut self,
        store: &'s mut dyn Store,
        log: &LogInfo,
    ) -> Result<(Box<dyn AppendTxn + 's>, LogState)> {
        // Taken out of the cache for the batch; put back only on commit, so
        // a failed batch can never leave a cache ahead of the database.
        let cached = self.logs.remove(&log.id);
        let mut tx = store.begin_append(log.id)?;
        let head = tx.head()?;

        // A rotation retires this key: fail closed rather than sign
        // checkpoints that verification rejects.
        let own = self.signers[0].verifier_key().to_string();
        if let Some(current) = &head.current_key
            && *current != own
        {
            return Err(StoreError::KeyRetired {
                vkey: own,
                current: current.clone(),
            });
        }
        if head.rows_past_head {
            return Err(StoreError::Inconsistent {
                origin: log.origin.clone(),
                reason: format!(
                    "entries are stored at or past index {}, which no checkpoint covers",
                    head.size
                ),
            });
        }
        let state = match cached {
            Some(s)
                if s.edge.size() == head.size
                    && Some(s.edge.root()) == head.root
                    && (head.size == 0 || head.last_leaf == Some(s.prev)) =>
            {
                s
            }
            _ => load_state(&mut *tx, log, &head, &self.verifiers())?,
        };
        Ok((tx, state))
    }

    /// Seals `drafts` as the next entries of the locked log, stores them
    /// with their tiles and signed checkpoint, and commits. `lookup`
    /// forces the request-id lookup even where the backend would let the
    /// insert find stored ids.
    fn seal_batch(
        &mut self,
        mut tx: Box<dyn AppendTxn + '_>,
        mut state: LogState,
        log: &LogInfo,
        drafts: &[EntryDraft],
        lookup: bool,
    ) -> Result<BatchOutcome> {
        // Idempotency: the request ids of this batch already in the log.
        // A backend whose insert or commit refuses stored ids is trusted
        // to do so, which saves probing the request-id index twice per
        // entry when (as nearly always) none is stored.
        let ids: Vec<&str> = drafts.iter().filter_map(EntryDraft::request_id).collect();
        let found = if ids.is_empty() || (!lookup && tx.refuses_stored_request_ids()) {
            Vec::new()
        } else {
            tx.lookup_request_ids(&ids)?
        };
        let mut stored = HashMap::new();
        for (id, e) in ids.iter().zip(found) {
            if let Some(e) = e {
                let ts = EnvelopeView::parse(&e.envelope)
                    .map(|v| v.ts.into_owned())
                    .unwrap_or_default();
                stored.insert(*id, (e.index, e.leaf_hash, ts));
            }
        }

        // What becomes of each draft: the k-th new entry, a copy of the
        // k-th new entry (its request id came earlier in the batch), or an
        // entry already stored.
        let mut slots = Vec::with_capacity(drafts.len());
        let mut fresh: Vec<&EntryDraft> = Vec::with_capacity(drafts.len());
        // Hashed with foldhash (random seed) rather than SipHash, once per
        // id: the map took ~1% of a server writer's time.
        let mut in_batch: HashMap<&str, usize, foldhash::fast::RandomState> =
            HashMap::with_capacity_and_hasher(drafts.len(), Default::default());
        for d in drafts {
            let slot = match d.request_id() {
                Some(id) if stored.contains_key(id) => Slot::Stored(id),
                Some(id) => match in_batch.entry(id) {
                    std::collections::hash_map::Entry::Occupied(o) => Slot::Repeat(*o.get()),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(fresh.len());
                        fresh.push(d);
                        Slot::New(fresh.len() - 1)
                    }
                },
                None => {
                    fresh.push(d);
                    Slot::New(fresh.len() - 1)
                }
            };
            slots.push(slot);
        }
        drop(in_batch);

        let now = (self.clock)();
        let clock_clamped = now < state.last_ts;
        let ts_micros = now.max(state.last_ts);
        let ts = format_ts(ts_micros);

        if fresh.is_empty() {
            // Nothing new: roll back (drop) and keep the cache as it was.
            drop(tx);
            let entries = slots
                .iter()
                .map(|slot| match slot {
                    Slot::Stored(id) => {
                        let (index, leaf_hash, ts) = &stored[id];
                        Appended {
                            index: *index,
                            leaf_hash: *leaf_hash,
                            ts: ts.clone(),
                            duplicate: true,
                        }
                    }
                    Slot::New(_) | Slot::Repeat(_) => unreachable!("no new entries"),
                })
                .collect();
            let size = state.edge.size();
            self.logs.insert(log.id, state);
            return Ok(BatchOutcome {
                entries,
                size,
                checkpoint: None,
                clock_clamped,
            });
        }

        // Salts for the drafts not salted ahead ([`salt_drafts`]).
        let mut salts = vec![0u8; fresh.len() * SALT_SIZE];
        if fresh.iter().any(|d| d.salted.is_none()) {
            fill_random(&mut salts)?;
        }
        let first = state.edge.size();
        let leaves = seal_and_insert(
            &mut *tx,
            &mut state,
            &Sealing {
                sealer: Sealer::new(&log.origin, &ts)?,
                first,
                drafts: &fresh,
                salts: &salts,
            },
        )?;
        let size = state.edge.size();
        state.last_ts = ts_micros;
        let entries = slots
            .iter()
            .map(|slot| match slot {
                Slot::New(k) | Slot::Repeat(k) => Appended {
                    index: first + *k as u64,
                    leaf_hash: leaves[*k],
                    ts: ts.clone(),
                    duplicate: matches!(slot, Slot::Repeat(_)),
                },
                Slot::Stored(id) => {
                    let (index, leaf_hash, ts) = &stored[id];
                    Appended {
                        index: *index,
                        leaf_hash: *leaf_hash,
                        ts: ts.clone(),
                        duplicate: true,
                    }
                }
            })
            .collect();

        let tiles = state.edge.take_tiles()?;
        let new_tiles: Vec<NewTile<'_>> = tiles
            .iter()
            .map(|(id, data)| NewTile { id: *id, data })
            .collect();
        tx.put_tiles(&new_tiles)?;

        let root = state.edge.root();
        let cp = Checkpoint {
            origin: log.origin.clone(),
            size,
            root,
            extensions: Vec::new(),
        };
        let signers: Vec<&NoteSigner> = self.signers.iter().collect();
        let note =
            sign_checkpoint(&cp, &signers).map_err(|e| StoreError::Signing(e.to_string()))?;
        tx.insert_checkpoint(size, &root, &note)?;
        tx.commit()?;

        self.logs.insert(log.id, state);
        Ok(BatchOutcome {
            entries,
            size,
            checkpoint: Some(note),
            clock_clamped,
        })
    }
}

/// What one draft of a batch becomes.
enum Slot<'a> {
    /// The k-th new entry of the batch.
    New(usize),
    /// A repeat of the k-th new entry's request id.
    Repeat(usize),
    /// A request id already in the log.
    Stored(&'a str),
}

/// New entries to seal, all at one time, from index `first` on.
struct Sealing<'a> {
    sealer: Sealer<'a>,
    first: u64,
    drafts: &'a [&'a EntryDraft],
    /// One salt per draft, [`SALT_SIZE`] bytes each.
    salts: &'a [u8],
}

/// Entries sealed and inserted together.
const SEAL_CHUNK: usize = 1024;

/// The first chunk of a batch sealed on a second thread: the inserts wait
/// for it, so it is short.
const FIRST_SEAL_CHUNK: usize = 128;

/// Batches at least this large are sealed on a second thread while the
/// first inserts.
const PARALLEL_SEAL: usize = 4 * SEAL_CHUNK;

impl Sealing<'_> {
    fn salt(&self, k: usize) -> &[u8; SALT_SIZE] {
        match &self.drafts[k].salted {
            Some(s) => &s.salt,
            None => self.salts[k * SALT_SIZE..(k + 1) * SALT_SIZE]
                .try_into()
                .expect("one salt per draft"),
        }
    }

    /// Seals drafts `range` after the leaf `prev`, their envelopes back
    /// to back in one buffer.
    fn seal(
        &self,
        range: std::ops::Range<usize>,
        mut prev: Hash,
    ) -> std::result::Result<SealedChunk, EntryError> {
        let mut chunk = SealedChunk {
            bytes: Vec::with_capacity(range.len() * 256),
            ends: Vec::with_capacity(range.len()),
            leaves: Vec::with_capacity(range.len()),
        };
        for k in range {
            let sealed = self.sealer.seal_into(
                self.drafts[k],
                self.first + k as u64,
                &prev,
                self.salt(k),
                &mut chunk.bytes,
            )?;
            prev = sealed.leaf_hash;
            chunk.ends.push(chunk.bytes.len());
            chunk.leaves.push(sealed.leaf_hash);
        }
        Ok(chunk)
    }
}

/// Consecutive sealed entries: envelope `j` is
/// `bytes[ends[j - 1]..ends[j]]` (from 0 for the first).
struct SealedChunk {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    leaves: Vec<Hash>,
}

/// Seals the new entries in order, inserts them and extends the tree;
/// returns their leaf hashes. Sealing (encoding and hashing) runs on a
/// second thread for large batches, one chunk ahead of the inserts.
fn seal_and_insert(
    tx: &mut dyn crate::AppendTxn,
    state: &mut LogState,
    job: &Sealing<'_>,
) -> Result<Vec<Hash>> {
    let n = job.drafts.len();
    let mut leaves = Vec::with_capacity(n);
    let mut insert = |sealed: SealedChunk| -> Result<()> {
        let at = leaves.len();
        let mut start = 0;
        let rows: Vec<NewEntry<'_>> = sealed
            .ends
            .iter()
            .zip(&sealed.leaves)
            .enumerate()
            .map(|(j, (&end, leaf_hash))| {
                let envelope = &sealed.bytes[start..end];
                start = end;
                NewEntry {
                    index: job.first + (at + j) as u64,
                    envelope,
                    leaf_hash,
                    salt: job.salt(at + j),
                    body: &job.drafts[at + j].body_bytes,
                    request_id: job.drafts[at + j].request_id(),
                }
            })
            .collect();
        tx.insert_entries(&rows)?;
        leaves.extend_from_slice(&sealed.leaves);
        Ok(())
    };
    if n < PARALLEL_SEAL {
        let sealed = job.seal(0..n, state.prev)?;
        for leaf in &sealed.leaves {
            state.edge.append(*leaf);
        }
        insert(sealed)?;
    } else {
        // The sealing thread also extends the tree (a node hash per
        // entry), which the inserting thread did before: its inserts are
        // what a large batch waits for. On an error the batch fails and
        // the state is dropped with it, so the tree may run ahead.
        let prev = state.prev;
        let edge = &mut state.edge;
        std::thread::scope(|scope| {
            let (chunks, sealed_rx) = mpsc::sync_channel(2);
            scope.spawn(move || {
                let mut prev = prev;
                let mut start = 0;
                while start < n {
                    // A short first chunk: the inserts wait for it.
                    let len = if start == 0 {
                        FIRST_SEAL_CHUNK
                    } else {
                        SEAL_CHUNK
                    };
                    let end = n.min(start + len);
                    let chunk = job.seal(start..end, prev);
                    start = end;
                    if let Ok(c) = &chunk {
                        prev = c.leaves.last().copied().unwrap_or(prev);
                        for leaf in &c.leaves {
                            edge.append(*leaf);
                        }
                    }
                    let stop = chunk.is_err();
                    // The receiver is gone when inserting failed.
                    if chunks.send(chunk).is_err() || stop {
                        return;
                    }
                }
            });
            for chunk in sealed_rx {
                insert(chunk?)?;
            }
            Ok::<(), StoreError>(())
        })?;
    }
    state.prev = *leaves.last().expect("at least one entry");
    Ok(leaves)
}

/// Rebuilds a log's state from the database and checks it against the
/// latest stored checkpoint, whose note must open with one of this
/// sequencer's own keys: the `size` and `root` columns, the tiles and the
/// last entry are all writable by whoever can write the database, and the
/// next checkpoint must extend only what this key signed.
fn load_state(
    tx: &mut dyn crate::AppendTxn,
    log: &LogInfo,
    head: &crate::Head,
    verifiers: &Verifiers,
) -> Result<LogState> {
    let inconsistent = |reason: String| StoreError::Inconsistent {
        origin: log.origin.clone(),
        reason,
    };
    if let Some(note) = &head.note {
        let (cp, _) = open_checkpoint(note.as_bytes(), verifiers, Some(&log.origin))
            .map_err(|e| inconsistent(format!("the latest checkpoint does not verify: {e}")))?;
        if cp.size != head.size || Some(cp.root) != head.root {
            return Err(inconsistent(format!(
                "the latest checkpoint signs size {} and root {}, its row says {} and {}",
                cp.size,
                cp.root,
                head.size,
                head.root.map(|r| r.to_string()).unwrap_or_default()
            )));
        }
    }
    if head.size == 0 {
        return Ok(LogState {
            edge: TreeEdge::new(),
            prev: genesis_prev(&log.origin),
            last_ts: i64::MIN,
        });
    }
    let edge = TreeEdge::load(head.size, |level, index| tx.read_tile(level, index))
        .map_err(|e| inconsistent(format!("cannot rebuild the tree's right edge: {e}")))?;
    if Some(edge.root()) != head.root {
        return Err(inconsistent(format!(
            "stored tiles give root {} for size {}, the latest checkpoint says {}",
            edge.root(),
            head.size,
            head.root.map(|r| r.to_string()).unwrap_or_default()
        )));
    }
    let (Some(prev), Some(env)) = (head.last_leaf, head.last_envelope.as_deref()) else {
        return Err(inconsistent(format!("entry {} is missing", head.size - 1)));
    };
    if edge.last_leaf().is_some_and(|l| l != prev) {
        return Err(inconsistent(format!(
            "entry {}'s stored leaf hash differs from the tree's",
            head.size - 1
        )));
    }
    let view = EnvelopeView::parse(env)
        .map_err(|e| inconsistent(format!("entry {} is unreadable: {e}", head.size - 1)))?;
    if evident_core::hash::leaf_hash(env) != prev {
        return Err(inconsistent(format!(
            "entry {}'s envelope does not hash to its stored leaf hash",
            head.size - 1
        )));
    }
    let last_ts = parse_ts(&view.ts)?;
    Ok(LogState {
        edge,
        prev,
        last_ts,
    })
}
