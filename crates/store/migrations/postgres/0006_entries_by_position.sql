-- Evident schema, version 6 (PostgreSQL): nothing to change.
--
-- SQLite's version 6 rebuilds `entries` as a rowid table keyed by one
-- integer, because its WITHOUT ROWID b-tree rewrote several pages per
-- append. PostgreSQL stores rows in a heap, in the order written, and its
-- (log_id, idx) primary-key index already appends at its right edge; the
-- version exists so that one migration head describes both backends.
SELECT 1;
