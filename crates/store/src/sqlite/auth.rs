//! Tenants and API keys on SQLite (migration 2, `0002_tenants.sql`).
//!
//! The [`Store`](crate::Store) methods of [`SqliteStore`](super::SqliteStore)
//! call these functions on their connection. Writes are single statements
//! in autocommit mode, so each is its own transaction and every other
//! connection sees it as soon as it returns: a revocation made by the CLI
//! applies to the server's next request.

use rusqlite::{Connection, OptionalExtension, params};

use super::map_err;
use crate::error::{Result, StoreError};
use crate::model::{ApiKeyRecord, NewApiKey, TenantInfo, TenantStatus, check_tenant_name};

/// The columns [`key_row`] reads, in its order, of `api_keys AS k`.
macro_rules! key_columns {
    () => {
        "k.id, k.tenant, k.scopes, k.key_hash, k.created_at, k.revoked_at"
    };
}

/// The statement behind every authenticated request: one primary-key probe
/// of each table, prepared once per connection.
const FIND_KEY: &str = concat!(
    "SELECT ",
    key_columns!(),
    ", t.status FROM api_keys AS k JOIN tenants AS t ON t.name = k.tenant WHERE k.id = ?1"
);

/// A tenant row as read: `name, status, created_at, updated_at`.
type TenantRow = (String, String, String, String);

fn tenant_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TenantRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn status(s: &str) -> Result<TenantStatus> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("tenant status {s:?}")))
}

fn tenant((name, st, created_at, updated_at): TenantRow) -> Result<TenantInfo> {
    Ok(TenantInfo {
        status: status(&st)?,
        name,
        created_at,
        updated_at,
    })
}

/// An API key row as read: the columns of `key_columns!`.
type KeyRow = (String, String, String, Vec<u8>, String, Option<String>);

fn key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn api_key((id, tenant, scopes, hash, created_at, revoked_at): KeyRow) -> Result<ApiKeyRecord> {
    let scopes: Vec<String> = serde_json::from_str(&scopes)
        .map_err(|e| StoreError::Corrupt(format!("scopes of API key {id}: {e}")))?;
    let key_hash = <[u8; 32]>::try_from(hash.as_slice())
        .map_err(|_| StoreError::Corrupt(format!("hash of API key {id} is not 32 bytes")))?;
    Ok(ApiKeyRecord {
        id,
        tenant,
        scopes,
        key_hash,
        created_at,
        revoked_at,
    })
}

pub(super) fn create_tenant(conn: &Connection, name: &str, now: &str) -> Result<TenantInfo> {
    check_tenant_name(name)?;
    let added = conn
        .execute(
            "INSERT INTO tenants (name, status, created_at, updated_at)
             VALUES (?1, 'active', ?2, ?2) ON CONFLICT (name) DO NOTHING",
            [name, now],
        )
        .map_err(map_err)?;
    if added == 0 {
        return Err(StoreError::TenantExists(name.to_owned()));
    }
    Ok(TenantInfo {
        name: name.to_owned(),
        status: TenantStatus::Active,
        created_at: now.to_owned(),
        updated_at: now.to_owned(),
    })
}

pub(super) fn tenants(conn: &Connection) -> Result<Vec<TenantInfo>> {
    let mut stmt = conn
        .prepare("SELECT name, status, created_at, updated_at FROM tenants ORDER BY name")
        .map_err(map_err)?;
    let rows = stmt.query_map([], tenant_row).map_err(map_err)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(tenant(r.map_err(map_err)?)?);
    }
    Ok(out)
}

pub(super) fn find_tenant(conn: &Connection, name: &str) -> Result<Option<TenantInfo>> {
    conn.prepare_cached("SELECT name, status, created_at, updated_at FROM tenants WHERE name = ?1")
        .map_err(map_err)?
        .query_row([name], tenant_row)
        .optional()
        .map_err(map_err)?
        .map(tenant)
        .transpose()
}

pub(super) fn set_tenant_status(
    conn: &Connection,
    name: &str,
    to: TenantStatus,
    now: &str,
) -> Result<TenantInfo> {
    // Only a change of status is written, so repeating it keeps the time
    // of the change.
    conn.execute(
        "UPDATE tenants SET status = ?2, updated_at = ?3 WHERE name = ?1 AND status <> ?2",
        [name, to.as_str(), now],
    )
    .map_err(map_err)?;
    find_tenant(conn, name)?.ok_or_else(|| StoreError::TenantNotFound(name.to_owned()))
}

pub(super) fn insert_api_key(conn: &Connection, key: &NewApiKey<'_>) -> Result<ApiKeyRecord> {
    let scopes = serde_json::to_string(key.scopes)
        .map_err(|e| StoreError::Database(format!("scopes as json: {e}")))?;
    // One statement: the row exists only if the tenant does.
    let added = conn
        .execute(
            "INSERT INTO api_keys (id, tenant, scopes, key_hash, created_at)
             SELECT ?1, name, ?3, ?4, ?5 FROM tenants WHERE name = ?2
             ON CONFLICT (id) DO NOTHING",
            params![key.id, key.tenant, scopes, &key.key_hash[..], key.now],
        )
        .map_err(map_err)?;
    if added == 0 {
        // Tenants are never deleted, so the tenant's absence now is why.
        return Err(if find_tenant(conn, key.tenant)?.is_none() {
            StoreError::TenantNotFound(key.tenant.to_owned())
        } else {
            StoreError::ApiKeyExists(key.id.to_owned())
        });
    }
    Ok(ApiKeyRecord {
        id: key.id.to_owned(),
        tenant: key.tenant.to_owned(),
        scopes: key.scopes.to_vec(),
        key_hash: *key.key_hash,
        created_at: key.now.to_owned(),
        revoked_at: None,
    })
}

pub(super) fn api_keys(conn: &Connection) -> Result<Vec<ApiKeyRecord>> {
    // rowid is the order of insertion.
    let mut stmt = conn
        .prepare(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys AS k ORDER BY k.rowid"
        ))
        .map_err(map_err)?;
    let rows = stmt.query_map([], key_row).map_err(map_err)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(api_key(r.map_err(map_err)?)?);
    }
    Ok(out)
}

pub(super) fn find_api_key(
    conn: &Connection,
    id: &str,
) -> Result<Option<(ApiKeyRecord, TenantStatus)>> {
    let row = conn
        .prepare_cached(FIND_KEY)
        .map_err(map_err)?
        .query_row([id], |r| Ok((key_row(r)?, r.get::<_, String>(6)?)))
        .optional()
        .map_err(map_err)?;
    row.map(|(key, st)| Ok((api_key(key)?, status(&st)?)))
        .transpose()
}

fn find_key_only(conn: &Connection, id: &str) -> Result<Option<ApiKeyRecord>> {
    conn.query_row(
        concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys AS k WHERE k.id = ?1"
        ),
        [id],
        key_row,
    )
    .optional()
    .map_err(map_err)?
    .map(api_key)
    .transpose()
}

pub(super) fn revoke_api_key(conn: &Connection, id: &str, now: &str) -> Result<ApiKeyRecord> {
    // The first revocation's time stays: the trigger would refuse a second.
    conn.execute(
        "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        [id, now],
    )
    .map_err(map_err)?;
    find_key_only(conn, id)?.ok_or_else(|| StoreError::ApiKeyNotFound(id.to_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Store;
    use crate::sqlite::{MIGRATIONS, SqliteStore};

    /// A database at migration 1 with a log moves to 2 with its log, and
    /// no tenant: tenant rows come from `create_tenant` only.
    #[test]
    fn migration_2_upgrades_a_database_with_logs() {
        let mut s = SqliteStore::open_in_memory().unwrap();
        s.conn
            .execute_batch(
                "CREATE TABLE schema_migrations (
                     version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL
                 ) STRICT;",
            )
            .unwrap();
        s.conn.execute_batch(MIGRATIONS[0].sql).unwrap();
        s.conn
            .execute_batch("INSERT INTO schema_migrations VALUES (1, 'init', 'then');")
            .unwrap();
        let log = s
            .create_log("acme", "audit", "x/acme/audit", "then")
            .unwrap();
        // Everything after version 1 is pending, and applies in order.
        let later: Vec<(u32, String)> = MIGRATIONS[1..]
            .iter()
            .map(|m| (m.version, m.name.to_owned()))
            .collect();
        assert_eq!(later[0], (2, "tenants".to_owned()));
        assert_eq!(s.migration_status().unwrap().pending, later);
        assert_eq!(
            s.migrate_up().unwrap(),
            later.iter().map(|l| l.0).collect::<Vec<_>>()
        );
        assert_eq!(s.logs().unwrap(), [log]);
        assert_eq!(s.tenants().unwrap(), []);
        s.create_tenant("acme", "now").unwrap();
        assert_eq!(s.tenants().unwrap().len(), 1);
    }

    /// The per-request lookup probes the primary keys; it never scans.
    #[test]
    fn find_api_key_uses_the_primary_keys() {
        let mut s = SqliteStore::open_in_memory().unwrap();
        s.migrate_up().unwrap();
        let plan: Vec<String> = s
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {FIND_KEY}"))
            .unwrap()
            .query_map(["x"], |r| r.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(plan.len(), 2, "{plan:?}");
        for p in &plan {
            assert!(p.starts_with("SEARCH"), "{plan:?}");
        }
    }

    /// Every change a key lookup depends on gives the auth stamp a new
    /// value, after it committed; reads and appends leave it alone. A
    /// refused change (an unknown key) does not stamp either.
    #[test]
    fn changes_to_tenants_and_keys_stamp_the_database() {
        use super::super::auth_stamp::AuthStamp;
        use crate::model::TenantStatus;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("evident.db");
        let mut s = SqliteStore::open(&db, true).unwrap();
        s.migrate_up().unwrap();
        let stamp = AuthStamp::open(&db).unwrap();
        let mut last = stamp.read().unwrap();
        let mut changed = |what: &str, expect: bool| {
            let now = stamp.read().unwrap();
            assert_eq!(now != last, expect, "{what}");
            last = now;
        };
        s.create_tenant("acme", "t1").unwrap();
        changed("tenant created", true);
        let scopes = ["append".to_owned()];
        s.insert_api_key(&NewApiKey {
            id: "k1",
            tenant: "acme",
            scopes: &scopes,
            key_hash: &[1; 32],
            now: "t2",
        })
        .unwrap();
        changed("key issued", true);
        s.find_api_key("k1").unwrap().unwrap();
        s.tenants().unwrap();
        s.api_keys().unwrap();
        changed("reads", false);
        s.set_tenant_status("acme", TenantStatus::Suspended, "t3")
            .unwrap();
        changed("tenant suspended", true);
        s.set_tenant_status("acme", TenantStatus::Active, "t4")
            .unwrap();
        changed("tenant resumed", true);
        s.revoke_api_key("nope", "t5").unwrap_err();
        changed("unknown key not revoked", false);
        s.revoke_api_key("k1", "t5").unwrap();
        changed("key revoked", true);
    }
}
