//! A log as a whole: the tenant's list of logs, the latest checkpoint, the
//! C2SP tlog-tiles read API, consistency proofs and verification.

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use evident_core::tile::{TileId, TileKind, TileReader, encode_bundle};
use evident_store::{LogInfo, reader};
use serde::Deserialize;
use serde_json::json;

use super::extract::{Path, Query};
use crate::apikey::Scope;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::middleware::json_response;
use crate::state::AppState;
use crate::system::Event;
use evident_store::datadir::stored_verifiers;

/// Full tiles and bundles never change: cache them for a year.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Partial tiles are replaced by wider ones as the log grows.
const SHORT_LIVED: &str = "public, max-age=5";

/// The tenant's logs with their sizes.
#[utoipa::path(
    get,
    path = "/v1/logs",
    responses((status = 200, description = "{logs: [{name, origin, size, created_at}]}")),
    security(("bearer" = []))
)]
pub async fn list_logs(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Response> {
    p.require(Scope::Read)?;
    let tenant = p.tenant.clone();
    let logs = state
        .pool
        .with(move |s| {
            let mut out = Vec::new();
            for log in s.logs().map_err(ApiError::from)? {
                if log.tenant != tenant {
                    continue;
                }
                let size = s
                    .latest_checkpoint(log.id)
                    .map_err(ApiError::from)?
                    .map_or(0, |c| c.size);
                out.push(json!({
                    "name": log.name,
                    "origin": log.origin,
                    "size": size,
                    "created_at": log.created_at,
                }));
            }
            Ok(out)
        })
        .await?;
    Ok(json_response(
        StatusCode::OK,
        json!({"logs": logs}).to_string(),
    ))
}

/// The latest signed checkpoint (C2SP tlog-checkpoint in a signed note),
/// byte for byte as signed.
#[utoipa::path(
    get,
    path = "/v1/logs/{log}/checkpoint",
    params(("log" = String, Path, description = "Log name")),
    responses((status = 200, description = "The signed note, text/plain"), (status = 404, description = "log.not_found")),
    security(("bearer" = []))
)]
pub async fn checkpoint(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(log): Path<String>,
) -> ApiResult<Response> {
    p.require(Scope::Read)?;
    let log = state.log(&p.tenant, &log).await?;
    let note = latest_note(&state, &log).await?.0;
    Ok(text(
        note.into_bytes(),
        "text/plain; charset=utf-8",
        "no-cache",
    ))
}

async fn latest_note(state: &AppState, log: &LogInfo) -> ApiResult<(String, u64)> {
    let l = log.clone();
    state
        .pool
        .with(
            move |s| match s.latest_checkpoint(l.id).map_err(ApiError::from)? {
                Some(cp) => Ok((cp.note, cp.size)),
                None => Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "checkpoint.not_found",
                    format!("{} has no checkpoint yet", l.origin),
                )),
            },
        )
        .await
}

fn text(body: Vec<u8>, content_type: &'static str, cache: &'static str) -> Response {
    let mut res = Response::new(Body::from(body));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    res
}

/// A hash tile or entry bundle, C2SP tlog-tiles: `tile/<L>/<N>[.p/<W>]`,
/// `tile/entries/<N>[.p/<W>]`.
#[utoipa::path(
    get,
    path = "/v1/logs/{log}/tile/{path}",
    params(("log" = String, Path, description = "Log name"), ("path" = String, Path, description = "Tile path below tile/")),
    responses((status = 200, description = "Tile bytes"), (status = 404, description = "tile.not_found")),
    security(("bearer" = []))
)]
pub async fn tile(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((log, path)): Path<(String, String)>,
) -> ApiResult<Response> {
    p.require(Scope::Read)?;
    let full_path = format!("tile/{path}");
    let id = TileId::parse_path(&full_path).map_err(|e| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "tile.not_found",
            format!("{full_path}: {e}"),
        )
    })?;
    let log = state.log(&p.tenant, &log).await?;
    let not_found = {
        let full_path = full_path.clone();
        move || {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "tile.not_found",
                format!("{full_path} is not in the log's signed tree"),
            )
        }
    };
    let data = state
        .pool
        .with(move |s| {
            let size = s
                .latest_checkpoint(log.id)
                .map_err(ApiError::from)?
                .map_or(0, |c| c.size);
            if !covered(&id, size) {
                return Err(not_found());
            }
            match id.kind {
                TileKind::Hashes { .. } => reader::StoreTiles::new(s, &log)
                    .read_tile(&id)
                    .map_err(|_| not_found()),
                TileKind::Entries => {
                    let first = id.index * 256;
                    let want = u64::from(id.width);
                    let mut rows: Vec<Vec<u8>> = Vec::with_capacity(usize::from(id.width));
                    s.scan_entries(log.id, first, &mut |e| {
                        if e.index != first + rows.len() as u64 {
                            return Ok(false);
                        }
                        rows.push(e.envelope.to_vec());
                        Ok((rows.len() as u64) < want)
                    })
                    .map_err(ApiError::from)?;
                    if rows.len() as u64 != want {
                        return Err(ApiError::new(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "store.corrupt",
                            format!("entries {first}..{} are not all stored", first + want),
                        ));
                    }
                    let refs: Vec<&[u8]> = rows.iter().map(Vec::as_slice).collect();
                    encode_bundle(&refs).map_err(|e| ApiError::internal(e.to_string()))
                }
            }
        })
        .await?;
    let cache = if id.is_full() { IMMUTABLE } else { SHORT_LIVED };
    Ok(text(data, "application/octet-stream", cache))
}

/// Whether a tree of `size` leaves has tile `id` (at exactly its width or
/// wider).
fn covered(id: &TileId, size: u64) -> bool {
    let level = match id.kind {
        TileKind::Hashes { level } => u32::from(level),
        TileKind::Entries => 0,
    };
    // Nodes at tree level 8 * level.
    let nodes = size.checked_shr(8 * level).unwrap_or(0);
    id.index
        .checked_mul(256)
        .and_then(|start| start.checked_add(u64::from(id.width)))
        .is_some_and(|end| end <= nodes)
}

/// `?from=&to=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ConsistencyQuery {
    /// The older size.
    from: u64,
    /// The newer size (default: the latest checkpoint's).
    to: Option<u64>,
}

/// A consistency proof between two sizes of the log (RFC 6962 §2.1.2),
/// computed from stored tiles.
#[utoipa::path(
    get,
    path = "/v1/logs/{log}/proofs/consistency",
    params(("log" = String, Path, description = "Log name"), ConsistencyQuery),
    responses((status = 200, description = "{from, to, proof: [base64 hashes]}"), (status = 400, description = "proof.bad_range")),
    security(("bearer" = []))
)]
pub async fn consistency(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(log): Path<String>,
    Query(q): Query<ConsistencyQuery>,
) -> ApiResult<Response> {
    p.require(Scope::Read)?;
    let log = state.log(&p.tenant, &log).await?;
    let (_, size) = latest_note(&state, &log).await?;
    let to = q.to.unwrap_or(size);
    if q.from > to || to > size {
        return Err(ApiError::bad_request(
            "proof.bad_range",
            format!(
                "need from <= to <= {size} (the latest checkpoint's size); got from={}, to={to}",
                q.from
            ),
        ));
    }
    let from = q.from;
    let proof = state
        .pool
        .with(move |s| reader::consistency(s, &log, from, to).map_err(ApiError::from))
        .await?;
    Ok(json_response(
        StatusCode::OK,
        json!({"from": from, "to": to, "proof": proof}).to_string(),
    ))
}

/// Verifies the whole log as stored and answers the report of DESIGN.md:
/// `{valid, total_count, rows_checked, …, first_break, violations}`.
/// 200 whether or not the log is valid: the report says which.
#[utoipa::path(
    get,
    path = "/v1/logs/{log}/verify",
    params(("log" = String, Path, description = "Log name")),
    responses((status = 200, description = "The verification report")),
    security(("bearer" = []))
)]
pub async fn verify(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(log): Path<String>,
) -> ApiResult<Response> {
    p.require(Scope::Verify)?;
    let log = state.log(&p.tenant, &log).await?;
    let l = log.clone();
    let report = state
        .pool
        .with(move |s| {
            let verifiers = stored_verifiers(s).map_err(ApiError::from)?;
            reader::verify_log(s, &l, verifiers, &mut |_, _| {}).map_err(ApiError::from)
        })
        .await;
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            state.metrics.observe_verification("error", 0, 0, 0);
            return Err(e);
        }
    };
    state.verifier.count(&state.metrics, log.id, &report, true);
    if !report.valid {
        state.system.record(Event {
            kind: "evident.verify.failed",
            actor: &p.key_id,
            action: "verify",
            resource: &log.path(),
            outcome: "failed",
            data: json!({
                "first_break": report.first_break,
                "violation_count": report.violation_count,
                "request_id": crate::middleware::current_request_id(),
            }),
        });
    }
    let body = serde_json::to_string(&report).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(json_response(StatusCode::OK, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_covered_by_a_size() {
        // 300 leaves: level 0 has one full tile and 000.p/44 after it…
        assert!(covered(&TileId::hashes(0, 0, 256), 300));
        assert!(covered(&TileId::hashes(0, 1, 44), 300));
        assert!(covered(&TileId::hashes(0, 1, 10), 300));
        assert!(!covered(&TileId::hashes(0, 1, 45), 300));
        assert!(!covered(&TileId::hashes(0, 2, 1), 300));
        // …level 1 has one node: tile/1/000.p/1.
        assert!(covered(&TileId::hashes(1, 0, 1), 300));
        assert!(!covered(&TileId::hashes(1, 0, 2), 300));
        assert!(covered(&TileId::entries(1, 44), 300));
        assert!(!covered(&TileId::entries(0, 1), 0));
    }
}
