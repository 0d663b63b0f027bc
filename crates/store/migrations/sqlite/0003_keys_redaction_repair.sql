-- Evident schema, version 3 (SQLite): key rotation, redaction and repair.
--
-- key_rotations: one row per rotation, so the range of checkpoints each
-- key signed is derivable from the database alone. Checkpoint `seq`
-- numbers are global and only grow; the rotation writes one transition
-- checkpoint per log, signed by both keys, with seq first_seq..=last_seq
-- (empty when no log had a checkpoint: last_seq = first_seq - 1). The old
-- key signs nothing after last_seq, the new one nothing before first_seq.
CREATE TABLE key_rotations (
    new_key    INTEGER PRIMARY KEY REFERENCES keys (id),
    old_key    INTEGER NOT NULL UNIQUE REFERENCES keys (id),
    first_seq  INTEGER NOT NULL,
    last_seq   INTEGER NOT NULL,
    rotated_at TEXT NOT NULL,
    CHECK (last_seq >= first_seq - 1)
) STRICT;

-- redactions: the authority for the one sanctioned change to an entry
-- row (its salt and body set to NULL). `by_idx` is the index of the signed
-- `evident.redaction` entry in the same log that records who and why.
CREATE TABLE redactions (
    log_id      INTEGER NOT NULL REFERENCES logs (id),
    idx         INTEGER NOT NULL,
    by_idx      INTEGER NOT NULL,
    redacted_at TEXT NOT NULL,
    PRIMARY KEY (log_id, idx)
) STRICT, WITHOUT ROWID;

-- quarantine: tampered rows a repair replaced, byte for byte as they were
-- found, kept as evidence. `restored_leaf` is the leaf hash of the bytes
-- the repair put back (the one the signed tree commits to).
CREATE TABLE quarantine (
    id             INTEGER PRIMARY KEY,
    log_id         INTEGER NOT NULL REFERENCES logs (id),
    idx            INTEGER NOT NULL,
    leaf_hash      BLOB,
    envelope       BLOB,
    salt           BLOB,
    body           BLOB,
    request_id     TEXT,
    restored_leaf  BLOB NOT NULL,
    quarantined_at TEXT NOT NULL
) STRICT;

CREATE INDEX quarantine_entry ON quarantine (log_id, idx);

CREATE TRIGGER key_rotations_no_update BEFORE UPDATE ON key_rotations
BEGIN SELECT RAISE(ABORT, 'evident: key rotations are append-only (UPDATE refused)'); END;
CREATE TRIGGER key_rotations_no_delete BEFORE DELETE ON key_rotations
BEGIN SELECT RAISE(ABORT, 'evident: key rotations are append-only (DELETE refused)'); END;
CREATE TRIGGER redactions_no_update BEFORE UPDATE ON redactions
BEGIN SELECT RAISE(ABORT, 'evident: redactions are append-only (UPDATE refused)'); END;
CREATE TRIGGER redactions_no_delete BEFORE DELETE ON redactions
BEGIN SELECT RAISE(ABORT, 'evident: redactions are append-only (DELETE refused)'); END;
CREATE TRIGGER quarantine_no_update BEFORE UPDATE ON quarantine
BEGIN SELECT RAISE(ABORT, 'evident: quarantine is append-only (UPDATE refused)'); END;
CREATE TRIGGER quarantine_no_delete BEFORE DELETE ON quarantine
BEGIN SELECT RAISE(ABORT, 'evident: quarantine is append-only (DELETE refused)'); END;

-- Entries stay append-only, with two sanctioned exceptions, each only
-- with its authority row already in place:
--  * redaction: salt and body become NULL, nothing else changes, and a
--    redactions row names this entry;
--  * repair: the row as it is now is already in quarantine (so the
--    tampered bytes are kept), and the new envelope hashes to the leaf
--    that quarantine row says is being restored. Position never changes.
DROP TRIGGER entries_no_update;
CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
WHEN NOT (
    NEW.log_id IS OLD.log_id AND NEW.idx IS OLD.idx
    AND (
        (NEW.salt IS NULL AND NEW.body IS NULL
         AND NEW.envelope IS OLD.envelope AND NEW.leaf_hash IS OLD.leaf_hash
         AND NEW.request_id IS OLD.request_id
         AND EXISTS (SELECT 1 FROM redactions r
                     WHERE r.log_id = OLD.log_id AND r.idx = OLD.idx))
        OR
        EXISTS (SELECT 1 FROM quarantine q
                WHERE q.log_id = OLD.log_id AND q.idx = OLD.idx
                  AND q.leaf_hash IS OLD.leaf_hash AND q.envelope IS OLD.envelope
                  AND q.salt IS OLD.salt AND q.body IS OLD.body
                  AND q.request_id IS OLD.request_id
                  AND q.restored_leaf = NEW.leaf_hash)
    )
)
BEGIN SELECT RAISE(ABORT, 'evident: entries are append-only (UPDATE refused)'); END;
