-- Evident schema, version 5 (PostgreSQL): nothing to change.
--
-- Version 5 moved SQLite's request-id index into a table filled in runs
-- (migrations/sqlite/0005_request_id_runs.sql): SQLite's single writer
-- wrote one index page per entry per commit. PostgreSQL keeps its unique
-- index on entries (log_id, request_id), which concurrent nodes rely on to
-- refuse a duplicate id (db.request_id_taken). Both backends share one
-- migration head, so this version is recorded here too.
SELECT 1;
