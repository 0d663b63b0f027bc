-- Evident schema, version 3 (PostgreSQL): key rotation, redaction and
-- repair. Mirrors the SQLite migration; see it for what each table means.
--
-- Checkpoint seq numbers come from a sequence, so they only grow; a
-- rotation holds every log's row lock while it writes the transition
-- checkpoints, so no append's checkpoint lands inside a key's range from
-- the other side of the rotation.

CREATE TABLE key_rotations (
    new_key    bigint PRIMARY KEY REFERENCES keys (id),
    old_key    bigint NOT NULL UNIQUE REFERENCES keys (id),
    first_seq  bigint NOT NULL,
    last_seq   bigint NOT NULL,
    rotated_at text NOT NULL,
    CHECK (last_seq >= first_seq - 1)
);

CREATE TABLE redactions (
    log_id      bigint NOT NULL REFERENCES logs (id),
    idx         bigint NOT NULL,
    by_idx      bigint NOT NULL,
    redacted_at text NOT NULL,
    PRIMARY KEY (log_id, idx)
);

CREATE TABLE quarantine (
    id             bigserial PRIMARY KEY,
    log_id         bigint NOT NULL REFERENCES logs (id),
    idx            bigint NOT NULL,
    leaf_hash      bytea,
    envelope       bytea,
    salt           bytea,
    body           bytea,
    request_id     text COLLATE "C",
    restored_leaf  bytea NOT NULL,
    quarantined_at text NOT NULL
);

CREATE INDEX quarantine_entry ON quarantine (log_id, idx);

CREATE TRIGGER key_rotations_no_change BEFORE UPDATE OR DELETE ON key_rotations
    FOR EACH ROW EXECUTE FUNCTION evident_append_only('key rotations');
CREATE TRIGGER key_rotations_no_truncate BEFORE TRUNCATE ON key_rotations
    FOR EACH STATEMENT EXECUTE FUNCTION evident_append_only('key rotations');
CREATE TRIGGER redactions_no_change BEFORE UPDATE OR DELETE ON redactions
    FOR EACH ROW EXECUTE FUNCTION evident_append_only('redactions');
CREATE TRIGGER redactions_no_truncate BEFORE TRUNCATE ON redactions
    FOR EACH STATEMENT EXECUTE FUNCTION evident_append_only('redactions');
CREATE TRIGGER quarantine_no_change BEFORE UPDATE OR DELETE ON quarantine
    FOR EACH ROW EXECUTE FUNCTION evident_append_only('quarantine');
CREATE TRIGGER quarantine_no_truncate BEFORE TRUNCATE ON quarantine
    FOR EACH STATEMENT EXECUTE FUNCTION evident_append_only('quarantine');

-- Entries stay append-only, with the two sanctioned updates of the SQLite
-- schema, each only with its authority row already in place: a redaction
-- (salt and body to NULL, nothing else, a redactions row naming the
-- entry) and a repair (the row as it is now already in quarantine, the
-- new leaf the one that quarantine row says is restored). DELETE and
-- TRUNCATE stay refused outright.
CREATE FUNCTION evident_entries_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.log_id = OLD.log_id AND NEW.idx = OLD.idx AND (
        (NEW.salt IS NULL AND NEW.body IS NULL
         AND NEW.envelope = OLD.envelope AND NEW.leaf_hash = OLD.leaf_hash
         AND NEW.request_id IS NOT DISTINCT FROM OLD.request_id
         AND EXISTS (SELECT 1 FROM redactions r
                     WHERE r.log_id = OLD.log_id AND r.idx = OLD.idx))
        OR
        EXISTS (SELECT 1 FROM quarantine q
                WHERE q.log_id = OLD.log_id AND q.idx = OLD.idx
                  AND q.leaf_hash IS NOT DISTINCT FROM OLD.leaf_hash
                  AND q.envelope IS NOT DISTINCT FROM OLD.envelope
                  AND q.salt IS NOT DISTINCT FROM OLD.salt
                  AND q.body IS NOT DISTINCT FROM OLD.body
                  AND q.request_id IS NOT DISTINCT FROM OLD.request_id
                  AND q.restored_leaf = NEW.leaf_hash)
    ) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'evident: entries are append-only (UPDATE refused)'
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;

DROP TRIGGER entries_no_change ON entries;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION evident_append_only('entries');
CREATE TRIGGER entries_update_sanctioned BEFORE UPDATE ON entries
    FOR EACH ROW EXECUTE FUNCTION evident_entries_update();
