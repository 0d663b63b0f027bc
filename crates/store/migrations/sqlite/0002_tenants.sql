-- Evident schema, version 2 (SQLite): tenants and their API keys.
--
-- A tenant is suspended, never removed, and an API key is revoked, never
-- removed or changed: the audit trail of who could write must outlive
-- the access itself. The triggers refuse anything else from any client.
-- Only SHA-256 of a key's token is stored; the token is shown once, when
-- the key is issued. A tenant row is what the HTTP service knows: it is
-- made by `evident tenant create`, not by writing a log (logs.tenant is a
-- name, as before, with no reference to this table).

CREATE TABLE tenants (
    name       TEXT PRIMARY KEY,
    status     TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

-- scopes: a JSON array of scope names, e.g. ["append","read"].
CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    tenant     TEXT NOT NULL REFERENCES tenants (name),
    scopes     TEXT NOT NULL CHECK (json_valid(scopes) AND json_type(scopes) = 'array'),
    key_hash   BLOB NOT NULL CHECK (length(key_hash) = 32),
    created_at TEXT NOT NULL,
    revoked_at TEXT
) STRICT;

CREATE INDEX api_keys_tenant ON api_keys (tenant);

CREATE TRIGGER tenants_no_delete BEFORE DELETE ON tenants
BEGIN SELECT RAISE(ABORT, 'evident: tenants are suspended, never removed (DELETE refused)'); END;
CREATE TRIGGER tenants_only_status BEFORE UPDATE ON tenants
WHEN NEW.name IS NOT OLD.name OR NEW.created_at IS NOT OLD.created_at
BEGIN SELECT RAISE(ABORT, 'evident: only a tenant''s status changes (UPDATE refused)'); END;

CREATE TRIGGER api_keys_no_delete BEFORE DELETE ON api_keys
BEGIN SELECT RAISE(ABORT, 'evident: api keys are revoked, never removed (DELETE refused)'); END;
CREATE TRIGGER api_keys_only_revoke BEFORE UPDATE ON api_keys
WHEN NOT (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
          AND NEW.id IS OLD.id AND NEW.tenant IS OLD.tenant AND NEW.scopes IS OLD.scopes
          AND NEW.key_hash IS OLD.key_hash AND NEW.created_at IS OLD.created_at)
BEGIN SELECT RAISE(ABORT, 'evident: api keys are only ever revoked (UPDATE refused)'); END;
