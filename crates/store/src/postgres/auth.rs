//! Tenants and API keys on PostgreSQL (migration 2, `0002_tenants.sql`).
//!
//! Writes are single statements outside any explicit transaction, so each
//! commits on its own and every other connection, on any node, sees it at
//! its next statement: a revocation made by the CLI applies to every
//! server's next request.

use postgres::{Client, Row};

use super::{Statements, map_err, stmt};
use crate::error::{Result, StoreError};
use crate::model::{ApiKeyRecord, NewApiKey, TenantInfo, TenantStatus, check_tenant_name};

/// The columns [`api_key`] reads, in its order, of `api_keys AS k`.
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
    ", t.status FROM api_keys AS k JOIN tenants AS t ON t.name = k.tenant WHERE k.id = $1"
);

const FIND_TENANT: &str =
    "SELECT name, status, created_at, updated_at FROM tenants WHERE name = $1";

fn status(s: &str) -> Result<TenantStatus> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("tenant status {s:?}")))
}

fn tenant(r: &Row) -> Result<TenantInfo> {
    Ok(TenantInfo {
        name: r.get(0),
        status: status(r.get(1))?,
        created_at: r.get(2),
        updated_at: r.get(3),
    })
}

fn api_key(r: &Row) -> Result<ApiKeyRecord> {
    let id: String = r.get(0);
    let scopes: Vec<String> = serde_json::from_str(r.get(2))
        .map_err(|e| StoreError::Corrupt(format!("scopes of API key {id}: {e}")))?;
    let hash: &[u8] = r.get(3);
    let key_hash = <[u8; 32]>::try_from(hash)
        .map_err(|_| StoreError::Corrupt(format!("hash of API key {id} is not 32 bytes")))?;
    Ok(ApiKeyRecord {
        tenant: r.get(1),
        scopes,
        key_hash,
        created_at: r.get(4),
        revoked_at: r.get(5),
        id,
    })
}

pub(super) fn create_tenant(c: &mut Client, name: &str, now: &str) -> Result<TenantInfo> {
    check_tenant_name(name)?;
    let added = c
        .execute(
            "INSERT INTO tenants (name, status, created_at, updated_at)
             VALUES ($1, 'active', $2, $2) ON CONFLICT (name) DO NOTHING",
            &[&name, &now],
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

pub(super) fn tenants(c: &mut Client) -> Result<Vec<TenantInfo>> {
    c.query(
        "SELECT name, status, created_at, updated_at FROM tenants ORDER BY name",
        &[],
    )
    .map_err(map_err)?
    .iter()
    .map(tenant)
    .collect()
}

pub(super) fn find_tenant(
    c: &mut Client,
    cache: &mut Statements,
    name: &str,
) -> Result<Option<TenantInfo>> {
    let s = stmt(c, cache, FIND_TENANT)?;
    c.query_opt(&s, &[&name])
        .map_err(map_err)?
        .as_ref()
        .map(tenant)
        .transpose()
}

pub(super) fn set_tenant_status(
    c: &mut Client,
    cache: &mut Statements,
    name: &str,
    to: TenantStatus,
    now: &str,
) -> Result<TenantInfo> {
    // Only a change of status is written, so repeating it keeps the time
    // of the change.
    c.execute(
        "UPDATE tenants SET status = $2, updated_at = $3 WHERE name = $1 AND status <> $2",
        &[&name, &to.as_str(), &now],
    )
    .map_err(map_err)?;
    find_tenant(c, cache, name)?.ok_or_else(|| StoreError::TenantNotFound(name.to_owned()))
}

pub(super) fn insert_api_key(
    c: &mut Client,
    cache: &mut Statements,
    key: &NewApiKey<'_>,
) -> Result<ApiKeyRecord> {
    let scopes = serde_json::to_string(key.scopes)
        .map_err(|e| StoreError::Database(format!("scopes as json: {e}")))?;
    // One statement: the row exists only if the tenant does.
    let added = c
        .execute(
            "INSERT INTO api_keys (id, tenant, scopes, key_hash, created_at)
             SELECT $1, name, $3, $4, $5 FROM tenants WHERE name = $2
             ON CONFLICT (id) DO NOTHING",
            &[&key.id, &key.tenant, &scopes, &&key.key_hash[..], &key.now],
        )
        .map_err(map_err)?;
    if added == 0 {
        // Tenants are never deleted, so the tenant's absence now is why.
        return Err(if find_tenant(c, cache, key.tenant)?.is_none() {
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

pub(super) fn api_keys(c: &mut Client) -> Result<Vec<ApiKeyRecord>> {
    c.query(
        concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys AS k ORDER BY k.seq"
        ),
        &[],
    )
    .map_err(map_err)?
    .iter()
    .map(api_key)
    .collect()
}

pub(super) fn find_api_key(
    c: &mut Client,
    cache: &mut Statements,
    id: &str,
) -> Result<Option<(ApiKeyRecord, TenantStatus)>> {
    let s = stmt(c, cache, FIND_KEY)?;
    let Some(r) = c.query_opt(&s, &[&id]).map_err(map_err)? else {
        return Ok(None);
    };
    Ok(Some((api_key(&r)?, status(r.get(6))?)))
}

pub(super) fn revoke_api_key(c: &mut Client, id: &str, now: &str) -> Result<ApiKeyRecord> {
    // The first revocation's time stays: the trigger would refuse a second.
    c.execute(
        "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        &[&id, &now],
    )
    .map_err(map_err)?;
    c.query_opt(
        concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys AS k WHERE k.id = $1"
        ),
        &[&id],
    )
    .map_err(map_err)?
    .as_ref()
    .map(api_key)
    .transpose()?
    .ok_or_else(|| StoreError::ApiKeyNotFound(id.to_owned()))
}
