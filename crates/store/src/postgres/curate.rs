//! Key rotation, redaction and repair on PostgreSQL (migration 3,
//! `0003_keys_redaction_repair.sql`), the counterpart of the SQLite
//! backend's module of the same name.
//!
//! SQLite has one write lock for the whole database; here each operation
//! takes the row locks of the logs it touches (`FOR NO KEY UPDATE`, the
//! lock appends take), so it is serialised with every node's appends
//! exactly as those are with each other. A rotation locks every log, in
//! id order so two rotations cannot deadlock, and an advisory lock keeps
//! two rotations of a database without logs apart too.

use postgres::{GenericClient, Transaction};

use super::{map_err, to_i64, to_u64};
use crate::error::{Result, StoreError};
use crate::model::{KeyRecord, KeyRotation, LogId, Restore, StoredEntry};

/// Advisory lock key of rotations ("evidrota" in ASCII).
const ROTATION_LOCK: i64 = 0x6576_6964_726f_7461;

/// Every key with the checkpoint range the rotations give it, oldest first.
pub(super) fn keys(c: &mut impl GenericClient) -> Result<Vec<KeyRecord>> {
    let rows = c
        .query(
            "SELECT k.id, k.vkey, k.created_at, made.first_seq, gone.last_seq, gone.rotated_at
             FROM keys AS k
             LEFT JOIN key_rotations AS made ON made.new_key = k.id
             LEFT JOIN key_rotations AS gone ON gone.old_key = k.id
             ORDER BY k.id",
            &[],
        )
        .map_err(map_err)?;
    Ok(rows
        .iter()
        .map(|r| KeyRecord {
            id: r.get(0),
            vkey: r.get(1),
            created_at: r.get(2),
            first_seq: r.get(3),
            last_seq: r.get(4),
            retired_at: r.get(5),
        })
        .collect())
}

/// The newest key's verifier key.
pub(super) fn current_key(c: &mut impl GenericClient) -> Result<Option<String>> {
    Ok(
        c.query_opt("SELECT vkey FROM keys ORDER BY id DESC LIMIT 1", &[])
            .map_err(map_err)?
            .map(|r| r.get(0)),
    )
}

/// Takes the row lock of `log`, as an append does.
fn lock_log(tx: &mut Transaction<'_>, log: LogId) -> Result<()> {
    tx.query_opt(
        "SELECT id FROM logs WHERE id = $1 FOR NO KEY UPDATE",
        &[&log],
    )
    .map_err(map_err)?
    .map(|_| ())
    .ok_or_else(|| StoreError::LogNotFound(format!("#{log}")))
}

pub(super) fn rotate_key(tx: &mut Transaction<'_>, rot: &KeyRotation<'_>) -> Result<KeyRecord> {
    let conflict = |why: String| StoreError::RotationConflict(why);
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ROTATION_LOCK])
        .map_err(map_err)?;
    tx.execute("SELECT id FROM logs ORDER BY id FOR NO KEY UPDATE", &[])
        .map_err(map_err)?;
    let current = current_key(tx)?;
    if current.as_deref() != Some(rot.old_vkey) {
        return Err(conflict(format!(
            "the current key is {}, not {}",
            current.unwrap_or_else(|| "none".into()),
            rot.old_vkey
        )));
    }
    let old_id: i64 = tx
        .query_one("SELECT id FROM keys WHERE vkey = $1", &[&rot.old_vkey])
        .map_err(map_err)?
        .get(0);
    // Each log's latest checkpoint, which its transition must re-sign.
    let mut latest: Vec<(LogId, i64)> = tx
        .query(
            "SELECT log_id, max(seq) FROM checkpoints GROUP BY log_id ORDER BY log_id",
            &[],
        )
        .map_err(map_err)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut given: Vec<(LogId, i64)> = rot
        .transitions
        .iter()
        .map(|t| (t.log, t.after_seq))
        .collect();
    given.sort_unstable();
    latest.sort_unstable();
    if given != latest {
        return Err(conflict(
            "a log's latest checkpoint changed while the rotation was prepared".into(),
        ));
    }
    let mut seqs = Vec::with_capacity(rot.transitions.len());
    for t in rot.transitions {
        let seq: i64 = tx
            .query_one(
                "INSERT INTO checkpoints (log_id, size, root, note, created_at)
                 VALUES ($1, $2, $3, $4, $5) RETURNING seq",
                &[&t.log, &to_i64(t.size), &&t.root.0[..], &t.note, &rot.now],
            )
            .map_err(map_err)?
            .get(0);
        seqs.push(seq);
    }
    // With no transition the range is empty and starts past every seq
    // handed out so far (the sequence only grows).
    let next_seq: i64 = if seqs.is_empty() {
        tx.query_one("SELECT coalesce(max(seq), 0) + 1 FROM checkpoints", &[])
            .map_err(map_err)?
            .get(0)
    } else {
        0
    };
    let first_seq = seqs.first().copied().unwrap_or(next_seq);
    let last_seq = seqs.last().copied().unwrap_or(next_seq - 1);
    let new_id: i64 = tx
        .query_one(
            "INSERT INTO keys (vkey, created_at) VALUES ($1, $2) RETURNING id",
            &[&rot.new_vkey, &rot.now],
        )
        .map_err(map_err)?
        .get(0);
    tx.execute(
        "INSERT INTO key_rotations (new_key, old_key, first_seq, last_seq, rotated_at)
         VALUES ($1, $2, $3, $4, $5)",
        &[&new_id, &old_id, &first_seq, &last_seq, &rot.now],
    )
    .map_err(map_err)?;
    Ok(KeyRecord {
        id: new_id,
        vkey: rot.new_vkey.to_owned(),
        created_at: rot.now.to_owned(),
        first_seq: Some(first_seq),
        last_seq: None,
        retired_at: None,
    })
}

/// The row at `index`, as [`StoredEntry`].
fn entry_row(tx: &mut Transaction<'_>, log: LogId, index: u64) -> Result<Option<StoredEntry>> {
    let Some(row) = tx
        .query_opt(
            "SELECT idx, envelope, leaf_hash, salt, body FROM entries WHERE log_id = $1 AND idx = $2",
            &[&log, &to_i64(index)],
        )
        .map_err(map_err)?
    else {
        return Ok(None);
    };
    let leaf: Option<&[u8]> = row.get(2);
    Ok(Some(StoredEntry {
        index: to_u64(row.get(0))?,
        envelope: row.get::<_, Option<Vec<u8>>>(1).unwrap_or_default(),
        leaf_hash: leaf.and_then(|b| evident_core::Hash::from_slice(b).ok()),
        salt: row.get(3),
        body: row.get(4),
    }))
}

pub(super) fn redact_body(
    tx: &mut Transaction<'_>,
    log: LogId,
    index: u64,
    by: u64,
    now: &str,
) -> Result<()> {
    let refused = |reason: &str| StoreError::RedactRefused {
        index,
        reason: reason.to_owned(),
    };
    lock_log(tx, log)?;
    let Some(row) = entry_row(tx, log, index)? else {
        let size: i64 = tx
            .query_one(
                "SELECT coalesce(max(size), 0) FROM checkpoints WHERE log_id = $1",
                &[&log],
            )
            .map_err(map_err)?
            .get(0);
        let origin: String = tx
            .query_one("SELECT origin FROM logs WHERE id = $1", &[&log])
            .map_err(map_err)?
            .get(0);
        return Err(StoreError::NoSuchEntry {
            origin,
            index,
            size: to_u64(size)?,
        });
    };
    let done: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM redactions WHERE log_id = $1 AND idx = $2)",
            &[&log, &to_i64(index)],
        )
        .map_err(map_err)?
        .get(0);
    if done {
        return Err(refused("it was redacted before"));
    }
    if row.body.is_none() && row.salt.is_none() {
        return Err(refused("it has no body"));
    }
    tx.execute(
        "INSERT INTO redactions (log_id, idx, by_idx, redacted_at) VALUES ($1, $2, $3, $4)",
        &[&log, &to_i64(index), &to_i64(by), &now],
    )
    .map_err(map_err)?;
    tx.execute(
        "UPDATE entries SET salt = NULL, body = NULL WHERE log_id = $1 AND idx = $2",
        &[&log, &to_i64(index)],
    )
    .map_err(map_err)?;
    Ok(())
}

pub(super) fn repair_entries(
    tx: &mut Transaction<'_>,
    log: LogId,
    restores: &[Restore<'_>],
    now: &str,
) -> Result<()> {
    lock_log(tx, log)?;
    for r in restores {
        let now_stored = entry_row(tx, log, r.index)?;
        if now_stored.as_ref() != r.current {
            return Err(StoreError::RepairRefused(format!(
                "entry {} changed since the repair was checked",
                r.index
            )));
        }
        let (idx, leaf) = (to_i64(r.index), &r.leaf_hash.0[..]);
        if now_stored.is_none() {
            tx.execute(
                "INSERT INTO entries (log_id, idx, leaf_hash, envelope, salt, body)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&log, &idx, &leaf, &r.envelope, &r.salt, &r.body],
            )
            .map_err(map_err)?;
            continue;
        }
        tx.execute(
            "INSERT INTO quarantine
                 (log_id, idx, leaf_hash, envelope, salt, body, request_id, restored_leaf, quarantined_at)
             SELECT log_id, idx, leaf_hash, envelope, salt, body, request_id, $3, $4
             FROM entries WHERE log_id = $1 AND idx = $2",
            &[&log, &idx, &leaf, &now],
        )
        .map_err(map_err)?;
        tx.execute(
            "UPDATE entries SET leaf_hash = $3, envelope = $4, salt = $5, body = $6
             WHERE log_id = $1 AND idx = $2",
            &[&log, &idx, &leaf, &r.envelope, &r.salt, &r.body],
        )
        .map_err(map_err)?;
    }
    Ok(())
}
