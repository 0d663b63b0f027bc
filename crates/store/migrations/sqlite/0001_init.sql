-- Evident schema, version 1 (SQLite).
--
-- Entries, checkpoints and keys are append-only: the triggers at the end
-- refuse UPDATE and DELETE whatever the client. Hash tiles are derived data
-- (recomputable from the entries), so a partial tile is replaced by its
-- wider successor.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE keys (
    id         INTEGER PRIMARY KEY,
    vkey       TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE logs (
    id         INTEGER PRIMARY KEY,
    tenant     TEXT NOT NULL,
    name       TEXT NOT NULL,
    origin     TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    UNIQUE (tenant, name)
) STRICT;

-- One row per entry. The primary key is the position, so a log's rows are
-- stored in index order and appended at the end of the b-tree.
CREATE TABLE entries (
    log_id     INTEGER NOT NULL REFERENCES logs (id),
    idx        INTEGER NOT NULL,
    leaf_hash  BLOB NOT NULL,
    envelope   BLOB NOT NULL,
    salt       BLOB,
    body       BLOB,
    request_id TEXT,
    PRIMARY KEY (log_id, idx)
) STRICT, WITHOUT ROWID;

CREATE UNIQUE INDEX entries_request_id ON entries (log_id, request_id)
    WHERE request_id IS NOT NULL;

CREATE TABLE checkpoints (
    seq        INTEGER PRIMARY KEY,
    log_id     INTEGER NOT NULL REFERENCES logs (id),
    size       INTEGER NOT NULL,
    root       BLOB NOT NULL,
    note       TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

CREATE INDEX checkpoints_log ON checkpoints (log_id, seq);

CREATE TABLE tiles (
    log_id INTEGER NOT NULL REFERENCES logs (id),
    level  INTEGER NOT NULL,
    idx    INTEGER NOT NULL,
    width  INTEGER NOT NULL,
    data   BLOB NOT NULL,
    PRIMARY KEY (log_id, level, idx)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'evident: entries are append-only (UPDATE refused)'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'evident: entries are append-only (DELETE refused)'); END;
CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'evident: checkpoints are append-only (UPDATE refused)'); END;
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'evident: checkpoints are append-only (DELETE refused)'); END;
CREATE TRIGGER keys_no_update BEFORE UPDATE ON keys
BEGIN SELECT RAISE(ABORT, 'evident: keys are append-only (UPDATE refused)'); END;
CREATE TRIGGER keys_no_delete BEFORE DELETE ON keys
BEGIN SELECT RAISE(ABORT, 'evident: keys are append-only (DELETE refused)'); END;
