//! Operations endpoints, unauthenticated: `/health`, `/ready`, `/metrics`,
//! `/openapi.json`. They reveal no tenant data.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use evident_store::migrate::EXPECTED_HEAD;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::middleware::json_response;
use crate::state::AppState;

/// Liveness: the process answers. Says nothing about the database.
#[utoipa::path(get, path = "/health", responses((status = 200, description = "{\"status\":\"ok\"}")))]
pub async fn health() -> Response {
    json_response(StatusCode::OK, r#"{"status":"ok"}"#.to_owned())
}

/// Readiness: every check with its status; 503 when any fails.
///
/// Checks: `database` (a read answers and the writer's last write or probe
/// succeeded), `migration_head` (the schema is the binary's), `signing_key`
/// (the key the writer signs with is among the database's keys),
/// `writer` (the writer thread is alive) and `verifier` (the background
/// verifier ran recently). `writes` reports a writes pause (who, why,
/// since) but never fails readiness: a paused node still serves reads and
/// verification, and taking it out of a load balancer would stop those.
#[utoipa::path(
    get,
    path = "/ready",
    responses((status = 200, description = "{ready: true, checks: {...}}"), (status = 503, description = "{ready: false, checks: {...}}"))
)]
pub async fn ready(State(state): State<AppState>) -> Response {
    let vkey = state.vkey.clone();
    let probe = state
        .pool
        .with(move |s| {
            let status = s.migration_status().map_err(ApiError::from)?;
            let keys = s.keys().map_err(ApiError::from)?;
            Ok((status.current, keys.iter().any(|k| k.vkey == vkey)))
        })
        .await;
    let writer = state.writer.health();
    let mut checks = serde_json::Map::new();
    let mut put = |name: &str, r: Result<(), String>| {
        let v = match r {
            Ok(()) => json!({"status": "ok"}),
            Err(e) => json!({"status": "fail", "error": e}),
        };
        checks.insert(name.to_owned(), v);
    };
    match &probe {
        Ok((head, key_known)) => {
            put(
                "database",
                if writer.db_ok() {
                    Ok(())
                } else {
                    Err(format!(
                        "db.unavailable: {}",
                        writer
                            .last_error()
                            .unwrap_or_else(|| "the last write failed".into())
                    ))
                },
            );
            put(
                "migration_head",
                if *head == EXPECTED_HEAD {
                    Ok(())
                } else {
                    Err(format!(
                        "migration.head_mismatch: database at {head}, this binary expects {EXPECTED_HEAD}"
                    ))
                },
            );
            put(
                "signing_key",
                if *key_known {
                    Ok(())
                } else {
                    Err("key.unknown: the signing key is not among the database's keys".into())
                },
            );
        }
        Err(e) => {
            put("database", Err(format!("{}: {}", e.code, e.message)));
            put(
                "migration_head",
                Err("unknown: the database cannot be read".into()),
            );
            put(
                "signing_key",
                Err("unknown: the database cannot be read".into()),
            );
        }
    }
    put(
        "writer",
        if writer.stopped() {
            Err("the writer thread has stopped".into())
        } else if writer.heartbeat_age() > 30.0 {
            Err(format!(
                "the writer thread last answered {:.0} s ago",
                writer.heartbeat_age()
            ))
        } else {
            Ok(())
        },
    );
    put("verifier", state.verifier.check());
    let ready = checks.values().all(|c| c["status"] == "ok");
    let mut writes = crate::routes::admin::pause_json(state.writer.pause().current().as_ref());
    writes["status"] = json!("ok");
    checks.insert("writes".to_owned(), writes);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut resp = json_response(
        status,
        json!({"ready": ready, "checks": Value::Object(checks)}).to_string(),
    );
    if !ready {
        // The checks are re-run on every request and the writer probes
        // the database every second: a load balancer may ask again soon.
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let body = state.metrics.render(state.writer.queued());
    let mut res = Response::new(axum::body::Body::from(body));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}

/// The OpenAPI document, generated from the handlers' annotations.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "OpenAPI 3.1")))]
pub async fn openapi() -> Response {
    json_response(StatusCode::OK, crate::openapi::document())
}
