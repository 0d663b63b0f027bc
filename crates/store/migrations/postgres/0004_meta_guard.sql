-- Evident schema, version 4 (PostgreSQL): the meta table's fixed rows.
-- Mirrors the SQLite migration: only the writes pause may be set and
-- cleared; the instance name (the first part of every origin) is fixed.
-- The service role is granted UPDATE (value) and DELETE on meta for the
-- pause (docs/postgres-roles.sql); these triggers keep that grant from
-- reaching any other row.

CREATE FUNCTION evident_meta_fixed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.key = 'writes_paused' AND NEW.key = 'writes_paused' THEN
        RETURN NEW;
    ELSIF TG_OP = 'DELETE' AND OLD.key = 'writes_paused' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'evident: meta rows other than the writes pause are fixed (% refused)', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;

CREATE TRIGGER meta_fixed BEFORE UPDATE OR DELETE ON meta
    FOR EACH ROW EXECUTE FUNCTION evident_meta_fixed();
CREATE TRIGGER meta_no_truncate BEFORE TRUNCATE ON meta
    FOR EACH STATEMENT EXECUTE FUNCTION evident_append_only('meta rows');
