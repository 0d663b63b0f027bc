-- Evident on PostgreSQL: the owner/service role layout (docs/design.md,
-- "PostgreSQL: several nodes, one database"). crates/cli/tests/pg_roles.rs
-- runs this file as written, so what is documented is what is tested.
--
-- Before it, as a superuser (names are examples; use real passwords):
--   CREATE ROLE evident_owner LOGIN PASSWORD '…';
--   CREATE ROLE evident_service LOGIN PASSWORD '…';
--   CREATE DATABASE evident OWNER evident_owner;
--   REVOKE CREATE ON SCHEMA public FROM PUBLIC;   -- in database evident;
--                                                 -- the default since PG 15
-- then, as evident_owner: `evident migrate up` and `evident init`.
-- Run this file as evident_owner afterwards, and again after any
-- migration that adds a table.

-- Nobody but the roles named here reaches the database.
REVOKE ALL ON DATABASE evident FROM PUBLIC;
GRANT CONNECT ON DATABASE evident TO evident_service;

-- The service reads everything and appends; it owns nothing, so it can
-- neither change the schema nor disable a trigger.
GRANT USAGE ON SCHEMA public TO evident_service;
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO evident_service;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO evident_service;

-- The only updates the service makes: a partial hash tile widens, a
-- tenant is suspended or resumed, an API key is revoked (the triggers
-- refuse every other change of tenants and keys).
GRANT UPDATE (width, data) ON tiles TO evident_service;
GRANT UPDATE (status, updated_at) ON tenants TO evident_service;
GRANT UPDATE (revoked_at) ON api_keys TO evident_service;
-- The writes pause (`POST /v1/admin/writes`) is one row of meta, set
-- and cleared.
GRANT UPDATE (value), DELETE ON meta TO evident_service;
-- The incident commands that rewrite signed data's rows or keys —
-- `evident keys rotate`, `redact`, `repair` — run as evident_owner, not
-- through the service: the service role cannot erase a body or restore a
-- row even where the triggers would allow it.

-- Not an update the service makes, but what its row lock needs: an
-- append takes `SELECT … FROM logs … FOR NO KEY UPDATE`, and PostgreSQL
-- allows a row lock only to a role with UPDATE on some column of the
-- table. created_at is the column nothing depends on (origin, tenant and
-- name stay out of reach).
GRANT UPDATE (created_at) ON logs TO evident_service;
