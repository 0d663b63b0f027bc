-- Evident schema, version 5 (SQLite): request ids indexed in runs.
--
-- The unique index on entries (log_id, request_id) took one index leaf
-- page per appended entry whenever producers' ids do not sort together
-- (one sequence per client), so a commit of twenty single entries from
-- twenty clients wrote about twenty index pages of its ~45. request_ids
-- holds the same mapping, but the writer adds a log's ids in runs,
-- in the append transaction that takes the log past its mark: a run from
-- sixty-four clients touches about sixty-four leaves once, not one leaf per
-- entry per commit. Ids of the entries at or past the mark (fewer than one
-- run) are found by reading those entries' rows.
--
-- Like an index, request_ids holds nothing that entries do not: it has no
-- append-only triggers, and verification never reads it.
CREATE TABLE request_ids (
    log_id     INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    idx        INTEGER NOT NULL,
    PRIMARY KEY (log_id, request_id)
) STRICT, WITHOUT ROWID;

-- Per log, the first index whose request id is not yet in request_ids.
CREATE TABLE request_id_marks (
    log_id INTEGER PRIMARY KEY,
    upto   INTEGER NOT NULL
) STRICT;

-- Entries rows edited by an attacker may repeat an id; the later one wins,
-- as the append path's own runs do.
INSERT OR REPLACE INTO request_ids (log_id, request_id, idx)
    SELECT log_id, request_id, idx FROM entries
    WHERE request_id IS NOT NULL
    ORDER BY log_id, request_id, idx;
INSERT INTO request_id_marks (log_id, upto)
    SELECT log_id, max(idx) + 1 FROM entries GROUP BY log_id;
DROP INDEX entries_request_id;
