-- Evident schema, version 1 (PostgreSQL). Mirrors the SQLite schema.
--
-- Entries, checkpoints and keys are append-only: the triggers at the end
-- refuse UPDATE, DELETE and TRUNCATE whatever the client, short of a
-- superuser or table owner who disables them (which the role layout in
-- docs/design.md keeps away from the service). Hash tiles are derived
-- data (recomputable from the entries), so a partial tile is replaced by
-- its wider successor.
--
-- Names compare and sort as bytes (COLLATE "C"), whatever the database's
-- default collation, as they do in SQLite. Timestamps are text in the
-- canonical RFC 3339 spelling, stored as given.

CREATE TABLE meta (
    key   text COLLATE "C" PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE keys (
    id         bigserial PRIMARY KEY,
    vkey       text COLLATE "C" NOT NULL UNIQUE,
    created_at text NOT NULL
);

-- Appends lock their log's row (SELECT ... FOR NO KEY UPDATE) before they
-- read the head: that row lock is what serialises the writers of a log
-- across connections and server nodes.
CREATE TABLE logs (
    id         bigserial PRIMARY KEY,
    tenant     text COLLATE "C" NOT NULL,
    name       text COLLATE "C" NOT NULL,
    origin     text COLLATE "C" NOT NULL UNIQUE,
    created_at text NOT NULL,
    UNIQUE (tenant, name)
);

-- One row per entry. No foreign key to logs: rows are only written under
-- the log row's lock, which needs the row, and a per-row reference check
-- would cost every append for nothing.
CREATE TABLE entries (
    log_id     bigint NOT NULL,
    idx        bigint NOT NULL,
    leaf_hash  bytea NOT NULL,
    envelope   bytea NOT NULL,
    salt       bytea,
    body       bytea,
    request_id text COLLATE "C",
    PRIMARY KEY (log_id, idx)
);

CREATE UNIQUE INDEX entries_request_id ON entries (log_id, request_id)
    WHERE request_id IS NOT NULL;

CREATE TABLE checkpoints (
    seq        bigserial PRIMARY KEY,
    log_id     bigint NOT NULL REFERENCES logs (id),
    size       bigint NOT NULL,
    root       bytea NOT NULL,
    note       text NOT NULL,
    created_at text NOT NULL
);

CREATE INDEX checkpoints_log ON checkpoints (log_id, seq);

CREATE TABLE tiles (
    log_id bigint NOT NULL REFERENCES logs (id),
    level  smallint NOT NULL,
    idx    bigint NOT NULL,
    width  integer NOT NULL,
    data   bytea NOT NULL,
    PRIMARY KEY (log_id, level, idx)
);

-- The one refusal every append-only table shares. TG_ARGV[0] names the
-- table's rows; the message starts with "evident:" like SQLite's, which
-- is how the backend tells a refusal from other errors.
CREATE FUNCTION evident_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'evident: % are append-only (% refused)', TG_ARGV[0], TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;

CREATE TRIGGER entries_no_change BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION evident_append_only('entries');
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION evident_append_only('entries');
CREATE TRIGGER checkpoints_no_change BEFORE UPDATE OR DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION evident_append_only('checkpoints');
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION evident_append_only('checkpoints');
CREATE TRIGGER keys_no_change BEFORE UPDATE OR DELETE ON keys
    FOR EACH ROW EXECUTE FUNCTION evident_append_only('keys');
CREATE TRIGGER keys_no_truncate BEFORE TRUNCATE ON keys
    FOR EACH STATEMENT EXECUTE FUNCTION evident_append_only('keys');
