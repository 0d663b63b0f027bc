//! The router: which handler answers which path, and the layers around
//! them.

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use tower_http::timeout::TimeoutLayer;

use crate::auth::auth_layer;
use crate::middleware::request_layer;
use crate::state::AppState;

pub mod admin;
pub mod entries;
pub mod extract;
pub mod logs;
pub mod ops;

/// The whole application.
pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/v1/logs", get(logs::list_logs))
        .route(
            "/v1/logs/{log}/entries",
            post(entries::append).get(entries::list),
        )
        .route("/v1/logs/{log}/entries/{index}", get(entries::get_one))
        .route("/v1/logs/{log}/receipts/{index}", get(entries::receipt))
        .route("/v1/logs/{log}/checkpoint", get(logs::checkpoint))
        .route("/v1/logs/{log}/tile/{*path}", get(logs::tile))
        .route("/v1/logs/{log}/proofs/consistency", get(logs::consistency))
        .route("/v1/logs/{log}/verify", get(logs::verify))
        .route(
            "/v1/admin/tenants",
            post(admin::create_tenant).get(admin::list_tenants),
        )
        .route(
            "/v1/admin/tenants/{name}/suspend",
            post(admin::suspend_tenant),
        )
        .route(
            "/v1/admin/tenants/{name}/resume",
            post(admin::resume_tenant),
        )
        .route(
            "/v1/admin/api-keys",
            post(admin::issue_key).get(admin::list_keys),
        )
        .route("/v1/admin/api-keys/{id}/revoke", post(admin::revoke_key))
        .route(
            "/v1/admin/writes",
            get(admin::get_writes).post(admin::set_writes),
        )
        .route_layer(from_fn_with_state(state.clone(), auth_layer));
    let timeout = Duration::from_millis(state.config.request_timeout_ms);
    Router::new()
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .merge(v1)
        .layer(DefaultBodyLimit::max(state.config.max_request_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(from_fn_with_state(state.clone(), request_layer))
        .with_state(state)
}
