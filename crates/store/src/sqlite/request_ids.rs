//! Request ids, indexed in runs (migration 5).
//!
//! A unique index on `entries (log_id, request_id)` took one index leaf
//! page per appended entry whenever producers' ids do not sort together
//! (one sequence per client): a commit of twenty single entries from
//! twenty clients wrote about twenty index pages of its ~45. Here a log's
//! ids go into `request_ids` in runs of [`REQUEST_ID_RUN`] entries,
//! in the append transaction that takes the log past its mark, so a run
//! touches each leaf once. The ids of the entries past the mark — the
//! tail, fewer than a run — are held in memory by the writer's connection
//! ([`Tails`]) and checked against the database at the start of every
//! append transaction (the mark and the last index), so another process
//! appending to the same file, or a rolled-back transaction, makes the
//! writer read the tail's rows again instead of trusting what it held.

use std::collections::HashMap;

use indexmap::IndexMap;
use indexmap::map::Entry;
use rusqlite::{Connection, OptionalExtension, params};

use super::{blob, hash_col, map_err, pos, pos_at, pos_end, to_i64, to_u64};
use crate::error::{Result, StoreError};
use crate::model::{Existing, LogId};

/// Entries per run: larger runs touch fewer leaves per entry, and cost a
/// longer read of the tail's rows when the writer's memory of it is stale.
pub(super) const REQUEST_ID_RUN: u64 = 1_024;

/// Logs whose tails the writer keeps; past this, an arbitrary one is
/// dropped (it is read again from its rows when next appended to).
const TAILS_KEPT: usize = 256;

/// Rows per INSERT when a run is written: one statement step for many.
const RUN_INSERT_ROWS: usize = 64;

/// `OR FAIL` for the reason `entries`' INSERT has it (`insert_sql` in the
/// parent module): no statement journal. A refused run fails the commit,
/// which rolls the whole transaction back.
fn run_insert_sql(rows: usize, replace: bool) -> String {
    let mut sql = String::from(if replace {
        "INSERT OR REPLACE INTO request_ids (log_id, request_id, idx) VALUES "
    } else {
        "INSERT OR FAIL INTO request_ids (log_id, request_id, idx) VALUES "
    });
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?)");
    }
    sql
}

/// Request ids already in `request_ids`, with their entries: json_each
/// outside (CROSS JOIN keeps it there), one primary-key probe per id.
pub(super) const LOOKUP_MERGED: &str = "SELECT j.key, e.idx, e.leaf_hash, e.envelope
     FROM json_each(?2) AS j CROSS JOIN request_ids AS r CROSS JOIN entries AS e
     WHERE r.log_id = ?1 AND r.request_id = j.value
       AND e.pos = ?3 + r.idx";

/// The entries from a log's mark on that have a request id.
pub(super) const TAIL_ROWS: &str = "SELECT request_id, idx FROM entries
     WHERE pos >= ?1 AND pos < ?2 AND request_id IS NOT NULL ORDER BY pos";

/// The request ids of one log's entries from its mark on.
#[derive(Debug, Default)]
pub(super) struct Tail {
    /// The first index whose id is not in `request_ids`.
    mark: u64,
    /// One past the log's last index.
    end: u64,
    /// In the order appended: a run is written in that order, which for
    /// producers whose ids rise adds at the end of the table's b-tree (in
    /// hash order the CLI's appends took 15% longer).
    ids: IndexMap<String, u64, IdHasher>,
}

/// The hasher of the tail's ids: foldhash, seeded at random per process
/// and per map. The default (SipHash-1-3) took ~4% of a server writer's
/// time under 1,000-entry batches (BENCHMARKS.md, issue 4), for maps that
/// hold at most a run and a batch of one tenant's ids; foldhash keeps
/// the random seed that stops a producer from choosing colliding ids.
pub(super) type IdHasher = foldhash::fast::RandomState;

/// The writer's tails, per log.
#[derive(Debug, Default)]
pub(super) struct Tails {
    map: HashMap<LogId, Tail>,
}

impl Tails {
    /// The log's tail as the database holds it in `tx`: the one kept, when
    /// the mark and the last index still match, else read from the rows.
    pub(super) fn take(&mut self, tx: &Connection, log: LogId) -> Result<Tail> {
        let mark: Option<i64> = tx
            .prepare_cached("SELECT upto FROM request_id_marks WHERE log_id = ?1")
            .map_err(map_err)?
            .query_row([log], |r| r.get(0))
            .optional()
            .map_err(map_err)?;
        let mark = mark.map_or(Ok(0), to_u64)?;
        let last: Option<i64> = tx
            .prepare_cached(
                "SELECT idx FROM entries WHERE pos >= ?1 AND pos < ?2 ORDER BY pos DESC LIMIT 1",
            )
            .map_err(map_err)?
            .query_row(params![pos(log, 0), pos_end(log)], |r| r.get(0))
            .optional()
            .map_err(map_err)?;
        let end = last.map_or(Ok(0), |i| to_u64(i).map(|i| i + 1))?;
        if let Some(t) = self.map.remove(&log)
            && t.mark == mark
            && t.end == end
        {
            return Ok(t);
        }
        let mut ids = IndexMap::default();
        let mut stmt = tx.prepare_cached(TAIL_ROWS).map_err(map_err)?;
        let mut rows = stmt
            .query(params![pos(log, mark), pos_end(log)])
            .map_err(map_err)?;
        while let Some(row) = rows.next().map_err(map_err)? {
            let id: String = row.get(0).map_err(map_err)?;
            // An id repeated in rows an attacker edited: the first stands,
            // as a lookup in index order would find it.
            ids.entry(id)
                .or_insert(to_u64(row.get(1).map_err(map_err)?)?);
        }
        Ok(Tail { mark, end, ids })
    }

    /// Keeps a tail after its transaction committed.
    pub(super) fn put(&mut self, log: LogId, tail: Tail) {
        if self.map.len() >= TAILS_KEPT
            && !self.map.contains_key(&log)
            && let Some(&other) = self.map.keys().next()
        {
            self.map.remove(&other);
        }
        self.map.insert(log, tail);
    }
}

/// What [`Tail::claim`] found.
pub(super) enum Claim {
    /// A lookup of this transaction found the id nowhere: it is the
    /// entry's now.
    Reserved,
    /// No lookup saw it: the tail holds it now, at this position
    /// ([`Tail::id_at`]), and the caller must look in `request_ids`.
    Unseen(usize),
    /// The tail already holds it.
    Taken,
}

/// Marks an id a lookup found nowhere, until its entry is inserted.
const RESERVED: u64 = u64::MAX;

impl Tail {
    /// The index of the entry holding `id`, if it is in the tail.
    pub(super) fn get(&self, id: &str) -> Option<u64> {
        self.ids.get(id).copied().filter(|&i| i != RESERVED)
    }

    /// Notes that a lookup in this transaction found `id` nowhere: its
    /// insert then needs no second look (the sequencer looks ids up first
    /// only after a refusal, and then never pays twice). The string is
    /// kept for the insert.
    pub(super) fn reserve(&mut self, id: &str) {
        if !self.ids.contains_key(id) {
            self.ids.insert(id.to_owned(), RESERVED);
        }
    }

    /// Takes in an inserted entry's id, with one hash of it: the tail
    /// holds it afterwards unless it was [`Claim::Taken`].
    pub(super) fn claim(&mut self, id: &str, index: u64) -> Claim {
        self.extend_to(index);
        match self.ids.entry(id.to_owned()) {
            Entry::Occupied(mut o) if *o.get() == RESERVED => {
                o.insert(index);
                Claim::Reserved
            }
            Entry::Occupied(_) => Claim::Taken,
            Entry::Vacant(v) => {
                let at = v.index();
                v.insert(index);
                Claim::Unseen(at)
            }
        }
    }

    /// Drops the reservations no insert claimed, before the tail is
    /// written or kept.
    pub(super) fn release(&mut self) {
        self.ids.retain(|_, i| *i != RESERVED);
    }

    /// Forgets an id whose row is gone (an attacker deleted it): like a
    /// unique index, the tail then no longer holds it.
    pub(super) fn forget(&mut self, id: &str) {
        self.ids.shift_remove(id);
    }

    /// The id [`Tail::claim`] put at `at`.
    pub(super) fn id_at(&self, at: usize) -> Option<&str> {
        self.ids.get_index(at).map(|(id, _)| id.as_str())
    }

    /// Whether the tail holds a run, which the commit then writes.
    pub(super) fn run_due(&self) -> bool {
        self.end >= self.mark.saturating_add(REQUEST_ID_RUN)
    }

    /// Records an inserted entry without an id.
    pub(super) fn extend_to(&mut self, index: u64) {
        self.end = self.end.max(index.saturating_add(1));
    }

    /// Writes the tail's ids to `request_ids` and moves the mark
    /// to the end, once the tail holds a run. Without `replace`, an id
    /// already in `request_ids` fails it with
    /// [`StoreError::RequestIdTaken`]; with it, the tail's index replaces
    /// the stored one (for an id whose lookup found no entry: an
    /// attacker's deletion freed it, and it must not stop every later
    /// append).
    pub(super) fn write_run(&mut self, tx: &Connection, log: LogId, replace: bool) -> Result<()> {
        self.release();
        if !self.run_due() {
            return Ok(());
        }
        let ids: Vec<(&String, &u64)> = self.ids.iter().collect();
        let sql = |rows| run_insert_sql(rows, replace);
        let refused = |e: rusqlite::Error| match e.sqlite_error() {
            Some(f) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                StoreError::RequestIdTaken(format!(
                    "log {log} already holds a request id of this batch"
                ))
            }
            _ => map_err(e),
        };
        let mut chunks = ids.chunks_exact(RUN_INSERT_ROWS);
        if chunks.len() > 0 {
            let mut stmt = tx.prepare_cached(&sql(RUN_INSERT_ROWS)).map_err(map_err)?;
            for chunk in &mut chunks {
                for (r, (id, index)) in chunk.iter().enumerate() {
                    stmt.raw_bind_parameter(r * 3 + 1, log).map_err(map_err)?;
                    stmt.raw_bind_parameter(r * 3 + 2, id.as_str())
                        .map_err(map_err)?;
                    stmt.raw_bind_parameter(r * 3 + 3, to_i64(**index))
                        .map_err(map_err)?;
                }
                stmt.raw_execute().map_err(refused)?;
            }
        }
        let mut stmt = tx.prepare_cached(&sql(1)).map_err(map_err)?;
        for (id, index) in chunks.remainder() {
            stmt.execute(params![log, id, to_i64(**index)])
                .map_err(refused)?;
        }
        tx.prepare_cached(
            "INSERT INTO request_id_marks (log_id, upto) VALUES (?1, ?2)
             ON CONFLICT (log_id) DO UPDATE SET upto = excluded.upto",
        )
        .map_err(map_err)?
        .execute(params![log, to_i64(self.end)])
        .map_err(map_err)?;
        self.mark = self.end;
        self.ids.clear();
        Ok(())
    }
}

/// The entry at `index`, as a request-id lookup answers it.
pub(super) fn entry_at(tx: &Connection, log: LogId, index: u64) -> Result<Option<Existing>> {
    tx.prepare_cached("SELECT NULL, idx, leaf_hash, envelope FROM entries WHERE pos = ?1")
        .map_err(map_err)?
        .query_row(params![pos_at(log, index)], |r| Ok(existing(r)))
        .optional()
        .map_err(map_err)?
        .transpose()
}

/// Looks `ids` up in `request_ids`, in one statement (SQLite walks the ids
/// as a JSON array; the bundled SQLite decodes every JSON escape,
/// `\u0000` included, and a test holds it to that).
pub(super) fn find_merged(
    tx: &Connection,
    log: LogId,
    ids: &[&str],
) -> Result<Vec<Option<Existing>>> {
    let mut out = vec![None; ids.len()];
    if ids.is_empty() {
        return Ok(out);
    }
    let json = serde_json::to_string(ids)
        .map_err(|e| StoreError::Database(format!("request ids as json: {e}")))?;
    let mut stmt = tx.prepare_cached(LOOKUP_MERGED).map_err(map_err)?;
    let mut rows = stmt
        .query(params![log, json, pos(log, 0)])
        .map_err(map_err)?;
    while let Some(row) = rows.next().map_err(map_err)? {
        let key: i64 = row.get(0).map_err(map_err)?;
        let slot = usize::try_from(key)
            .ok()
            .and_then(|k| out.get_mut(k))
            .ok_or_else(|| StoreError::Database(format!("json_each key {key}")))?;
        *slot = Some(existing(row)?);
    }
    Ok(out)
}

/// An entry found by its request id, from `idx, leaf_hash, envelope` at
/// columns 1–3.
fn existing(row: &rusqlite::Row<'_>) -> Result<Existing> {
    Ok(Existing {
        index: to_u64(row.get(1).map_err(map_err)?)?,
        leaf_hash: hash_col(blob(row, 2)?.unwrap_or_default(), "leaf hash")?,
        envelope: blob(row, 3)?.unwrap_or_default().to_vec(),
    })
}
