//! Admin endpoints: tenants and API keys, authorised by a key with the
//! `admin` scope (the bootstrap credential in `<data-dir>/admin.key`).
//! They do what `evident tenant …` and `evident api-key …` do on the data
//! directory, and each change is recorded in the system event log.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use evident_core::entry::format_ts;
use evident_store::{ApiKeyRecord, TenantInfo, TenantStatus, WritesPause};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::apikey::{self, Scope, parse_scopes};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::middleware::{current_request_id, json_response};
use crate::state::AppState;
use crate::system::{Event, SYSTEM_TENANT};

fn now() -> String {
    format_ts(evident_store::sequencer::system_clock())
}

fn tenant_json(t: &TenantInfo) -> Value {
    json!({"name": t.name, "status": t.status.as_str(), "created_at": t.created_at, "updated_at": t.updated_at})
}

fn key_json(k: &ApiKeyRecord) -> Value {
    json!({
        "id": k.id,
        "tenant": k.tenant,
        "scopes": k.scopes,
        "created_at": k.created_at,
        "revoked_at": k.revoked_at,
    })
}

fn body_json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("request.bad_json", format!("request body: {e}")))
}

fn audit(state: &AppState, p: &Principal, action: &str, resource: &str) {
    state.system.record(Event {
        kind: "evident.admin.change",
        actor: &p.key_id,
        action,
        resource,
        outcome: "ok",
        data: json!({"request_id": current_request_id()}),
    });
}

fn user_tenant_name(name: &str) -> ApiResult<()> {
    if name.starts_with('_') {
        return Err(ApiError::bad_request(
            "tenant.reserved",
            format!("tenant names starting with `_` are reserved for the system: {name:?}"),
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    name: String,
}

/// Create a tenant: `{"name": "acme"}`.
#[utoipa::path(post, path = "/v1/admin/tenants", responses((status = 201, description = "The tenant"), (status = 409, description = "tenant.exists")), security(("bearer" = [])))]
pub async fn create_tenant(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    body: Bytes,
) -> ApiResult<Response> {
    p.require_admin()?;
    let req: NewTenant = body_json(&body)?;
    user_tenant_name(&req.name)?;
    let name = req.name.clone();
    let t = state
        .pool
        .with(move |s| s.create_tenant(&name, &now()).map_err(ApiError::from))
        .await?;
    audit(&state, &p, "tenant create", &t.name);
    Ok(json_response(
        StatusCode::CREATED,
        tenant_json(&t).to_string(),
    ))
}

/// List tenants.
#[utoipa::path(get, path = "/v1/admin/tenants", responses((status = 200, description = "{tenants: [...]}")), security(("bearer" = [])))]
pub async fn list_tenants(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Response> {
    p.require_admin()?;
    let ts = state
        .pool
        .with(|s| s.tenants().map_err(ApiError::from))
        .await?;
    let list: Vec<Value> = ts.iter().map(tenant_json).collect();
    Ok(json_response(
        StatusCode::OK,
        json!({"tenants": list}).to_string(),
    ))
}

async fn set_status(
    state: &AppState,
    p: &Principal,
    name: String,
    status: TenantStatus,
) -> ApiResult<Response> {
    p.require_admin()?;
    if name == SYSTEM_TENANT {
        return Err(ApiError::bad_request(
            "tenant.reserved",
            "the system tenant cannot be suspended",
        ));
    }
    let n = name.clone();
    let t = state
        .pool
        .with(move |s| {
            s.set_tenant_status(&n, status, &now())
                .map_err(ApiError::from)
        })
        .await?;
    audit(state, p, &format!("tenant {}", status.as_str()), &name);
    Ok(json_response(StatusCode::OK, tenant_json(&t).to_string()))
}

/// Suspend a tenant: its keys answer 403 `tenant.suspended` at once.
#[utoipa::path(post, path = "/v1/admin/tenants/{name}/suspend", params(("name" = String, Path, description = "Tenant")), responses((status = 200, description = "The tenant")), security(("bearer" = [])))]
pub async fn suspend_tenant(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    set_status(&state, &p, name, TenantStatus::Suspended).await
}

/// Resume a suspended tenant.
#[utoipa::path(post, path = "/v1/admin/tenants/{name}/resume", params(("name" = String, Path, description = "Tenant")), responses((status = 200, description = "The tenant")), security(("bearer" = [])))]
pub async fn resume_tenant(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    set_status(&state, &p, name, TenantStatus::Active).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    tenant: String,
    scopes: Vec<String>,
}

/// Issue an API key: `{"tenant": "acme", "scopes": ["append","read"]}`.
/// The answer holds the key once: `{"id": …, "api_key": …}`.
#[utoipa::path(post, path = "/v1/admin/api-keys", responses((status = 201, description = "{id, api_key, tenant, scopes}")), security(("bearer" = [])))]
pub async fn issue_key(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    body: Bytes,
) -> ApiResult<Response> {
    p.require_admin()?;
    let req: NewKey = body_json(&body)?;
    user_tenant_name(&req.tenant)?;
    let scopes = parse_scopes(&req.scopes.join(","))
        .map_err(|e| ApiError::bad_request("api_key.bad_scopes", e.to_string()))?;
    if scopes.contains(&Scope::Admin) {
        return Err(ApiError::bad_request(
            "api_key.bad_scopes",
            "tenant keys cannot have the admin scope",
        ));
    }
    let tenant = req.tenant.clone();
    let issued = state
        .pool
        .with(move |s| apikey::issue(s, &tenant, &scopes, &now()).map_err(ApiError::from))
        .await?;
    audit(
        &state,
        &p,
        "api-key issue",
        &format!("{}/{}", issued.record.tenant, issued.id),
    );
    let mut res = json_response(
        StatusCode::CREATED,
        json!({
            "id": issued.id,
            "api_key": issued.token,
            "tenant": issued.record.tenant,
            "scopes": issued.record.scopes,
        })
        .to_string(),
    );
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}

/// List API keys (never their secrets).
#[utoipa::path(get, path = "/v1/admin/api-keys", responses((status = 200, description = "{api_keys: [...]}")), security(("bearer" = [])))]
pub async fn list_keys(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Response> {
    p.require_admin()?;
    let keys = state
        .pool
        .with(|s| s.api_keys().map_err(ApiError::from))
        .await?;
    let list: Vec<Value> = keys.iter().map(key_json).collect();
    Ok(json_response(
        StatusCode::OK,
        json!({"api_keys": list}).to_string(),
    ))
}

/// Revoke an API key: it answers 401 `auth.revoked` from the next request.
#[utoipa::path(post, path = "/v1/admin/api-keys/{id}/revoke", params(("id" = String, Path, description = "Key id")), responses((status = 200, description = "The key")), security(("bearer" = [])))]
pub async fn revoke_key(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    p.require_admin()?;
    let i = id.clone();
    let k = state
        .pool
        .with(move |s| s.revoke_api_key(&i, &now()).map_err(ApiError::from))
        .await?;
    audit(&state, &p, "api-key revoke", &id);
    Ok(json_response(StatusCode::OK, key_json(&k).to_string()))
}

/// The writes pause as JSON: `{"paused": false}` or `{"paused": true,
/// "by": …, "reason": …, "since": …}`.
pub fn pause_json(p: Option<&WritesPause>) -> Value {
    match p {
        None => json!({"paused": false}),
        Some(p) => json!({"paused": true, "by": p.by, "reason": p.reason, "since": p.since}),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetWrites {
    paused: bool,
    #[serde(default)]
    reason: Option<String>,
}

/// Whether appends are paused, as this server last read it from the
/// database (at most [`POLL_INTERVAL`](crate::pause::POLL_INTERVAL) old).
#[utoipa::path(get, path = "/v1/admin/writes", responses((status = 200, description = "{paused, by, reason, since}")), security(("bearer" = [])))]
pub async fn get_writes(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Response> {
    p.require_admin()?;
    let current = state.writer.pause().current();
    Ok(json_response(
        StatusCode::OK,
        pause_json(current.as_ref()).to_string(),
    ))
}

/// Pause or resume appends on every node of this database:
/// `{"paused": true, "reason": "incident 42"}` or `{"paused": false}`.
/// While paused, appends answer 503 `writes.paused`; reads, receipts and
/// verification go on. Recorded in the system event log.
#[utoipa::path(post, path = "/v1/admin/writes", responses((status = 200, description = "{paused, by, reason, since}"), (status = 400, description = "writes.reason_required")), security(("bearer" = [])))]
pub async fn set_writes(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    body: Bytes,
) -> ApiResult<Response> {
    p.require_admin()?;
    let req: SetWrites = body_json(&body)?;
    let pause = if req.paused {
        let reason = req
            .reason
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                ApiError::bad_request(
                    "writes.reason_required",
                    "say why writes are paused: {\"paused\": true, \"reason\": \"…\"}",
                )
            })?;
        Some(WritesPause {
            by: p.key_id.clone(),
            reason,
            since: now(),
        })
    } else {
        None
    };
    let stored = pause.clone();
    state
        .pool
        .with(move |s| s.set_writes_pause(stored.as_ref()).map_err(ApiError::from))
        .await?;
    let changed = state.writer.pause().set(pause.clone());
    state.metrics.set_writes_paused(pause.is_some());
    record_writes_event(&state, &p.key_id, pause.as_ref());
    if changed {
        state.webhooks.notify(
            if pause.is_some() {
                "writes_paused"
            } else {
                "writes_resumed"
            },
            pause_json(pause.as_ref()),
        );
    }
    Ok(json_response(
        StatusCode::OK,
        pause_json(pause.as_ref()).to_string(),
    ))
}

/// Records a pause or resume in the system event log.
fn record_writes_event(state: &AppState, actor: &str, pause: Option<&WritesPause>) {
    let (kind, action) = match pause {
        Some(_) => ("evident.writes.paused", "writes pause"),
        None => ("evident.writes.resumed", "writes resume"),
    };
    let mut data = pause_json(pause);
    data["request_id"] = json!(current_request_id());
    state.system.record(Event {
        kind,
        actor,
        action,
        resource: &state.instance,
        outcome: "ok",
        data,
    });
}
