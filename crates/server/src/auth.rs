//! Authentication and authorisation of `/v1` requests.
//!
//! The tenant is the API key's, never the client's say: a path names a log
//! inside the key's tenant, and an `X-Tenant-ID` header, if sent, must
//! agree with the key or the request is refused (403
//! `auth.tenant_mismatch`). A revocation or a tenant suspension — made
//! over HTTP or with the CLI on the data directory, by this server or
//! another — applies to the very next request: the key is looked up on
//! every request, or on SQLite kept only while the database's auth stamp
//! says nothing changed ([`crate::keycache`]).
//!
//! Refusals and their codes:
//!
//! | status | code | when |
//! |---|---|---|
//! | 401 | `auth.missing` | no `Authorization: Bearer` header |
//! | 401 | `auth.invalid` | malformed, unknown or wrong key |
//! | 401 | `auth.revoked` | the key was revoked |
//! | 403 | `tenant.suspended` | the key's tenant is suspended |
//! | 403 | `auth.tenant_mismatch` | `X-Tenant-ID` names another tenant |
//! | 403 | `auth.scope` | the key lacks the route's scope |
//! | 429 | `rate.limited` | the key's rate limit is spent |

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use evident_store::TenantStatus;
use serde_json::json;

use crate::apikey::{Scope, key_id, token_matches};
use crate::error::ApiError;
use crate::middleware::{SpanHandle, current_request_id};
use crate::state::AppState;
use crate::system::Event;

/// The tenant header a client may send; it must match the key's tenant.
pub static X_TENANT_ID: HeaderName = HeaderName::from_static("x-tenant-id");

/// Who is calling: the authenticated key.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The key's id (public).
    pub key_id: String,
    /// The key's tenant.
    pub tenant: String,
    /// What the key may do.
    pub scopes: Vec<Scope>,
}

impl Principal {
    /// Refuses with 403 `auth.scope` unless the key has `scope`. An admin
    /// key does not imply the others: each is granted explicitly.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "auth.scope",
                format!("this API key lacks the `{scope}` scope"),
            ))
        }
    }
}

impl Principal {
    /// Refuses unless the key is the system tenant's with the `admin`
    /// scope: a tenant key must never administer other tenants, whatever
    /// scopes someone gave it.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        self.require(Scope::Admin)?;
        if self.tenant == crate::system::SYSTEM_TENANT {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "auth.scope",
                "only the system tenant's keys may use the admin endpoints",
            ))
        }
    }
}

fn unauthorized(code: &'static str, message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, message)
}

/// The `/v1` authentication layer.
pub(crate) async fn auth_layer(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let action = format!("{} {}", req.method(), req.uri().path());
    let headers = req.headers().clone();
    match authenticate(&state, &headers).await {
        Ok(p) => {
            if let Some(span) = req.extensions().get::<SpanHandle>() {
                span.0.record("tenant", p.tenant.as_str());
            }
            if let Err(wait) = state.limits.check(&p.key_id) {
                state.metrics.rate_limited();
                state.system.record_throttled(Event {
                    kind: "evident.rate.limited",
                    actor: &p.key_id,
                    action: &action,
                    resource: &p.tenant,
                    outcome: "denied",
                    data: json!({"code": "rate.limited", "request_id": current_request_id()}),
                });
                return ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate.limited",
                    format!("rate limit for this API key reached; retry in {wait} s"),
                )
                .retry_after(wait)
                .into_response();
            }
            let (key_id, tenant) = (p.key_id.clone(), p.tenant.clone());
            req.extensions_mut().insert(p);
            let res = next.run(req).await;
            if res.status() == StatusCode::FORBIDDEN
                && let Some(e) = res.extensions().get::<ApiError>()
                && e.code == "auth.scope"
            {
                state.metrics.auth_failure("auth.scope");
                state.system.record_throttled(Event {
                    kind: "evident.auth.denied",
                    actor: &key_id,
                    action: &action,
                    resource: &tenant,
                    outcome: "denied",
                    data: json!({"code": "auth.scope", "request_id": current_request_id()}),
                });
            }
            res
        }
        Err((e, actor)) => {
            state.metrics.auth_failure(&e.code);
            let kind = if e.status == StatusCode::UNAUTHORIZED {
                "evident.auth.failed"
            } else {
                "evident.auth.denied"
            };
            state.system.record_throttled(Event {
                kind,
                actor: actor.as_deref().unwrap_or("anonymous"),
                action: &action,
                resource: "",
                outcome: "denied",
                data: json!({"code": e.code, "request_id": current_request_id()}),
            });
            e.into_response()
        }
    }
}

/// Checks the bearer key. On refusal, also returns the key id the client
/// claimed (for the system log), if the token was well-formed.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Principal, (ApiError, Option<String>)> {
    let header = headers.get(header::AUTHORIZATION).ok_or_else(|| {
        (
            unauthorized("auth.missing", "send `Authorization: Bearer <API key>`"),
            None,
        )
    })?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| {
            (
                unauthorized(
                    "auth.invalid",
                    "the Authorization header is not `Bearer <API key>`",
                ),
                None,
            )
        })?
        .to_owned();
    let invalid = || unauthorized("auth.invalid", "unknown or invalid API key");
    let id = key_id(&token).ok_or_else(|| (invalid(), None))?.to_owned();
    let stamp = state.keys.stamp();
    let kept = stamp.and_then(|now| state.keys.get(&id, now));
    let found = match kept {
        Some(found) => Some(found),
        None => {
            let lookup_id = id.clone();
            let found = state
                .pool
                .quick(move |s| s.find_api_key(&lookup_id).map_err(ApiError::from))
                .await
                .map_err(|e| (e, Some(id.clone())))?;
            if let (Some(before), Some(f)) = (stamp, &found) {
                state.keys.put(&id, before, f);
            }
            found
        }
    };
    let Some((record, tenant_status)) = found else {
        return Err((invalid(), Some(id)));
    };
    // Constant-time: the comparison does not tell an attacker how much of
    // a guessed secret was right.
    if !token_matches(&record.key_hash, &token) {
        return Err((invalid(), Some(id)));
    }
    if record.revoked_at.is_some() {
        return Err((
            unauthorized("auth.revoked", "this API key was revoked"),
            Some(id),
        ));
    }
    if tenant_status == TenantStatus::Suspended {
        return Err((
            ApiError::new(
                StatusCode::FORBIDDEN,
                "tenant.suspended",
                format!("tenant {:?} is suspended", record.tenant),
            ),
            Some(id),
        ));
    }
    if let Some(claimed) = headers.get(&X_TENANT_ID)
        && claimed.as_bytes() != record.tenant.as_bytes()
    {
        return Err((
            ApiError::new(
                StatusCode::FORBIDDEN,
                "auth.tenant_mismatch",
                "X-Tenant-ID does not match the API key's tenant",
            ),
            Some(id),
        ));
    }
    let scopes = record
        .scopes
        .iter()
        .filter_map(|s| s.parse::<Scope>().ok())
        .collect();
    Ok(Principal {
        key_id: record.id,
        tenant: record.tenant,
        scopes,
    })
}
