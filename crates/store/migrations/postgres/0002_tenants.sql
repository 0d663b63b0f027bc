-- Evident schema, version 2 (PostgreSQL): tenants and their API keys.
-- Mirrors the SQLite migration.
--
-- A tenant is suspended, never removed, and an API key is revoked, never
-- removed or changed: the audit trail of who could write must outlive the
-- access itself. The triggers refuse anything else from any client. Only
-- SHA-256 of a key's token is stored.

CREATE TABLE tenants (
    name       text COLLATE "C" PRIMARY KEY,
    status     text NOT NULL CHECK (status IN ('active', 'suspended')),
    created_at text NOT NULL,
    updated_at text NOT NULL
);

-- seq is the order of issue, which api_keys() lists by (SQLite's rowid).
-- scopes: a JSON array of scope names, e.g. ["append","read"].
CREATE TABLE api_keys (
    seq        bigserial NOT NULL UNIQUE,
    id         text COLLATE "C" PRIMARY KEY,
    tenant     text COLLATE "C" NOT NULL REFERENCES tenants (name),
    scopes     text NOT NULL CHECK (jsonb_typeof(scopes::jsonb) = 'array'),
    key_hash   bytea NOT NULL CHECK (length(key_hash) = 32),
    created_at text NOT NULL,
    revoked_at text
);

CREATE INDEX api_keys_tenant ON api_keys (tenant);

CREATE FUNCTION evident_refuse() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'evident: % (% refused)', TG_ARGV[0], TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;

CREATE TRIGGER tenants_no_delete BEFORE DELETE OR TRUNCATE ON tenants
    FOR EACH STATEMENT EXECUTE FUNCTION evident_refuse('tenants are suspended, never removed');
CREATE TRIGGER tenants_only_status BEFORE UPDATE ON tenants
    FOR EACH ROW
    WHEN (NEW.name IS DISTINCT FROM OLD.name OR NEW.created_at IS DISTINCT FROM OLD.created_at)
    EXECUTE FUNCTION evident_refuse('only a tenant''s status changes');

CREATE TRIGGER api_keys_no_delete BEFORE DELETE OR TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION evident_refuse('api keys are revoked, never removed');
CREATE TRIGGER api_keys_only_revoke BEFORE UPDATE ON api_keys
    FOR EACH ROW
    WHEN (NOT (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
               AND NEW.seq IS NOT DISTINCT FROM OLD.seq
               AND NEW.id IS NOT DISTINCT FROM OLD.id
               AND NEW.tenant IS NOT DISTINCT FROM OLD.tenant
               AND NEW.scopes IS NOT DISTINCT FROM OLD.scopes
               AND NEW.key_hash IS NOT DISTINCT FROM OLD.key_hash
               AND NEW.created_at IS NOT DISTINCT FROM OLD.created_at))
    EXECUTE FUNCTION evident_refuse('api keys are only ever revoked');
