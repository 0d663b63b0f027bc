//! Key rotation, redaction and repair on SQLite (migration 3,
//! `0003_keys_redaction_repair.sql`): the only writes besides appends that
//! touch signed data, each one transaction that checks, inside the write
//! lock, that what its caller computed from is still what is stored.

use rusqlite::{Connection, OptionalExtension, params};

use super::{blob, map_err, new_pos, pos_at, to_i64, to_u64};
use crate::error::{Result, StoreError};
use crate::model::{KeyRecord, KeyRotation, LogId, Restore, StoredEntry};

/// Every key with the checkpoint range the rotations give it, oldest first.
pub(super) fn keys(conn: &Connection) -> Result<Vec<KeyRecord>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT k.id, k.vkey, k.created_at, made.first_seq, gone.last_seq, gone.rotated_at
             FROM keys AS k
             LEFT JOIN key_rotations AS made ON made.new_key = k.id
             LEFT JOIN key_rotations AS gone ON gone.old_key = k.id
             ORDER BY k.id",
        )
        .map_err(map_err)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(KeyRecord {
                id: r.get(0)?,
                vkey: r.get(1)?,
                created_at: r.get(2)?,
                first_seq: r.get(3)?,
                last_seq: r.get(4)?,
                retired_at: r.get(5)?,
            })
        })
        .map_err(map_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map_err)
}

/// The newest key's verifier key.
pub(super) fn current_key(conn: &Connection) -> Result<Option<String>> {
    conn.prepare_cached("SELECT vkey FROM keys ORDER BY id DESC LIMIT 1")
        .map_err(map_err)?
        .query_row([], |r| r.get(0))
        .optional()
        .map_err(map_err)
}

pub(super) fn rotate_key(conn: &Connection, rot: &KeyRotation<'_>) -> Result<KeyRecord> {
    let conflict = |why: String| StoreError::RotationConflict(why);
    let current = current_key(conn)?;
    if current.as_deref() != Some(rot.old_vkey) {
        return Err(conflict(format!(
            "the current key is {}, not {}",
            current.unwrap_or_else(|| "none".into()),
            rot.old_vkey
        )));
    }
    let old_id: i64 = conn
        .query_row("SELECT id FROM keys WHERE vkey = ?1", [rot.old_vkey], |r| {
            r.get(0)
        })
        .map_err(map_err)?;
    // Each log's latest checkpoint, which its transition must re-sign.
    let mut latest: Vec<(LogId, i64)> = conn
        .prepare("SELECT log_id, max(seq) FROM checkpoints GROUP BY log_id ORDER BY log_id")
        .map_err(map_err)?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(map_err)?
        .collect::<rusqlite::Result<_>>()
        .map_err(map_err)?;
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
    let next_seq: i64 = conn
        .query_row(
            "SELECT coalesce(max(seq), 0) + 1 FROM checkpoints",
            [],
            |r| r.get(0),
        )
        .map_err(map_err)?;
    let mut seqs = Vec::with_capacity(rot.transitions.len());
    for t in rot.transitions {
        conn.prepare_cached(
            "INSERT INTO checkpoints (log_id, size, root, note, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(map_err)?
        .execute(params![t.log, to_i64(t.size), &t.root.0[..], t.note, rot.now])
        .map_err(map_err)?;
        seqs.push(conn.last_insert_rowid());
    }
    let first_seq = seqs.first().copied().unwrap_or(next_seq);
    let last_seq = seqs.last().copied().unwrap_or(next_seq - 1);
    conn.execute(
        "INSERT INTO keys (vkey, created_at) VALUES (?1, ?2)",
        [rot.new_vkey, rot.now],
    )
    .map_err(map_err)?;
    let new_id = conn.last_insert_rowid();
    conn.execute(
        "INSERT INTO key_rotations (new_key, old_key, first_seq, last_seq, rotated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![new_id, old_id, first_seq, last_seq, rot.now],
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
fn entry_row(conn: &Connection, log: LogId, index: u64) -> Result<Option<StoredEntry>> {
    let mut stmt = conn
        .prepare_cached("SELECT idx, envelope, leaf_hash, salt, body FROM entries WHERE pos = ?1")
        .map_err(map_err)?;
    let mut rows = stmt.query(params![pos_at(log, index)]).map_err(map_err)?;
    let Some(row) = rows.next().map_err(map_err)? else {
        return Ok(None);
    };
    Ok(Some(StoredEntry {
        index: to_u64(row.get(0).map_err(map_err)?)?,
        envelope: blob(row, 1)?.unwrap_or_default().to_vec(),
        leaf_hash: blob(row, 2)?.and_then(|b| evident_core::Hash::from_slice(b).ok()),
        salt: blob(row, 3)?.map(<[u8]>::to_vec),
        body: blob(row, 4)?.map(<[u8]>::to_vec),
    }))
}

pub(super) fn redact_body(
    conn: &Connection,
    log: LogId,
    index: u64,
    by: u64,
    now: &str,
) -> Result<()> {
    let refused = |reason: &str| StoreError::RedactRefused {
        index,
        reason: reason.to_owned(),
    };
    let Some(row) = entry_row(conn, log, index)? else {
        let size: i64 = conn
            .query_row(
                "SELECT coalesce(max(size), 0) FROM checkpoints WHERE log_id = ?1",
                [log],
                |r| r.get(0),
            )
            .map_err(map_err)?;
        let origin: String = conn
            .query_row("SELECT origin FROM logs WHERE id = ?1", [log], |r| r.get(0))
            .map_err(map_err)?;
        return Err(StoreError::NoSuchEntry {
            origin,
            index,
            size: to_u64(size)?,
        });
    };
    let done: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM redactions WHERE log_id = ?1 AND idx = ?2)",
            params![log, to_i64(index)],
            |r| r.get(0),
        )
        .map_err(map_err)?;
    if done {
        return Err(refused("it was redacted before"));
    }
    if row.body.is_none() && row.salt.is_none() {
        return Err(refused("it has no body"));
    }
    conn.execute(
        "INSERT INTO redactions (log_id, idx, by_idx, redacted_at) VALUES (?1, ?2, ?3, ?4)",
        params![log, to_i64(index), to_i64(by), now],
    )
    .map_err(map_err)?;
    conn.execute(
        "UPDATE entries SET salt = NULL, body = NULL WHERE pos = ?1",
        params![new_pos(log, index)?],
    )
    .map_err(map_err)?;
    Ok(())
}

pub(super) fn repair_entries(
    conn: &Connection,
    log: LogId,
    restores: &[Restore<'_>],
    now: &str,
) -> Result<()> {
    for r in restores {
        let now_stored = entry_row(conn, log, r.index)?;
        if now_stored.as_ref() != r.current {
            return Err(StoreError::RepairRefused(format!(
                "entry {} changed since the repair was checked",
                r.index
            )));
        }
        if now_stored.is_none() {
            conn.execute(
                "INSERT INTO entries (pos, leaf_hash, envelope, salt, body)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    new_pos(log, r.index)?,
                    &r.leaf_hash.0[..],
                    r.envelope,
                    r.salt,
                    r.body
                ],
            )
            .map_err(map_err)?;
            continue;
        }
        conn.execute(
            "INSERT INTO quarantine
                 (log_id, idx, leaf_hash, envelope, salt, body, request_id, restored_leaf, quarantined_at)
             SELECT log_id, idx, leaf_hash, envelope, salt, body, request_id, ?2, ?3
             FROM entries WHERE pos = ?1",
            params![new_pos(log, r.index)?, &r.leaf_hash.0[..], now],
        )
        .map_err(map_err)?;
        conn.execute(
            "UPDATE entries SET leaf_hash = ?2, envelope = ?3, salt = ?4, body = ?5
             WHERE pos = ?1",
            params![
                new_pos(log, r.index)?,
                &r.leaf_hash.0[..],
                r.envelope,
                r.salt,
                r.body
            ],
        )
        .map_err(map_err)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::Store;
    use crate::sqlite::SqliteStore;

    /// A database at migration 2 with a key and an entry moves to 3: the
    /// key is valid from the start and current, and the entry is still
    /// refused every plain UPDATE.
    #[test]
    fn migration_3_upgrades_a_database_with_keys_and_entries() {
        let mut s = SqliteStore::in_memory_at_migration(2);
        s.conn
            .execute_batch(
                "INSERT INTO keys (vkey, created_at) VALUES ('k', 'then');
                 INSERT INTO logs (tenant, name, origin, created_at) VALUES ('a', 'b', 'x/a/b', 'then');
                 INSERT INTO entries (log_id, idx, leaf_hash, envelope, salt, body)
                     VALUES (1, 0, x'00', x'01', x'02', x'03');",
            )
            .unwrap();
        assert_eq!(s.migrate_up().unwrap(), vec![3, 4, 5, 6]);
        let keys = s.keys().unwrap();
        assert_eq!(
            (
                keys[0].first_seq,
                keys[0].last_seq,
                keys[0].retired_at.clone()
            ),
            (None, None, None)
        );
        for sql in [
            "UPDATE entries SET body = NULL, salt = NULL",
            "UPDATE entries SET envelope = x'ff'",
        ] {
            let e = s.conn.execute_batch(sql).unwrap_err();
            assert!(e.to_string().contains("append-only"), "{sql}: {e}");
        }
    }
}
