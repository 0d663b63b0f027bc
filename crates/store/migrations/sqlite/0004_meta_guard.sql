-- Evident schema, version 4 (SQLite): the meta table's fixed rows.
--
-- meta holds the instance name, set once at initialisation, and the
-- writes pause, which is set and cleared. Only the pause may change:
-- the instance name is the first part of every origin, and rewriting it
-- would make every log's entries point at another log.
CREATE TRIGGER meta_fixed_update BEFORE UPDATE ON meta
WHEN OLD.key IS NOT 'writes_paused' OR NEW.key IS NOT 'writes_paused'
BEGIN SELECT RAISE(ABORT, 'evident: meta rows other than the writes pause are fixed (UPDATE refused)'); END;
CREATE TRIGGER meta_fixed_delete BEFORE DELETE ON meta
WHEN OLD.key IS NOT 'writes_paused'
BEGIN SELECT RAISE(ABORT, 'evident: meta rows other than the writes pause are fixed (DELETE refused)'); END;
