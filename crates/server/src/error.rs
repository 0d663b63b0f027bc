//! The one error shape every endpoint answers with:
//! `{"error":{"code":"…","message":"…","request_id":"…"}}`.
//!
//! Codes are stable dotted strings (the store's and the core's codes pass
//! through unchanged); messages are for people and may change.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use evident_core::ErrorCode;
use evident_core::entry::EntryError;
use evident_store::StoreError;
use serde_json::json;

use crate::middleware::current_request_id;

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable dotted code.
    pub code: Cow<'static, str>,
    /// What went wrong, for a person.
    pub message: String,
    /// Seconds to wait before retrying (429, 503).
    pub retry_after: Option<u64>,
}

/// Marks a response whose body the server wrote (the JSON error shape, or
/// a handler's own JSON), so the request middleware does not rewrite it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rendered;

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            retry_after: None,
        }
    }

    /// Adds `Retry-After`.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// 400 with a code.
    pub fn bad_request(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 for a log the caller's tenant does not have. Another tenant's
    /// log answers exactly this, byte for byte, so its existence does not
    /// leak.
    pub fn log_not_found(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "log.not_found",
            format!("no log named {name:?}"),
        )
    }

    /// 503 `db.unavailable`.
    pub fn db_unavailable(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "db.unavailable",
            format!("the database cannot be reached or written: {detail}; nothing was stored"),
        )
        .retry_after(1)
    }

    /// 500 for a failure that is the server's fault.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server.internal",
            message,
        )
    }

    /// The JSON body.
    pub fn body(&self, request_id: &str) -> String {
        json!({"error": {"code": self.code, "message": self.message, "request_id": request_id}})
            .to_string()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.code,
            self.status.as_u16(),
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let rid = current_request_id().unwrap_or_default();
        let mut res = (self.status, self.body(&rid)).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res.extensions_mut().insert(Rendered);
        res.extensions_mut().insert(self);
        res
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let status = match &e {
            StoreError::Unavailable(_) => return ApiError::db_unavailable(&e),
            StoreError::LogNotFound(_) | StoreError::NoSuchEntry { .. } => StatusCode::NOT_FOUND,
            StoreError::BadLogName { .. } | StoreError::Entry(_) => StatusCode::BAD_REQUEST,
            // Neither is the client's fault and neither lasts: the operator
            // migrates, or restarts the server on the rotated key.
            StoreError::MigrationHeadMismatch { .. } | StoreError::KeyRetired { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            StoreError::Inconsistent { .. } => StatusCode::CONFLICT,
            _ if e.code().starts_with("tenant.") || e.code().starts_with("api_key.") => {
                if e.code().ends_with("not_found") {
                    StatusCode::NOT_FOUND
                } else if e.code().ends_with("exists") {
                    StatusCode::CONFLICT
                } else {
                    StatusCode::BAD_REQUEST
                }
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl From<EntryError> for ApiError {
    fn from(e: EntryError) -> Self {
        let status = if e.code() == "entry.too_large" {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::BAD_REQUEST
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn body_has_the_three_fields() {
        let e = ApiError::bad_request("entry.bad_json", "line 1: expected value");
        let v: serde_json::Value = serde_json::from_str(&e.body("r-1")).unwrap();
        assert_eq!(v["error"]["code"], "entry.bad_json");
        assert_eq!(v["error"]["message"], "line 1: expected value");
        assert_eq!(v["error"]["request_id"], "r-1");
    }

    #[test]
    fn store_errors_keep_their_codes() {
        let e = ApiError::from(StoreError::Unavailable("disk gone".into()));
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.code, "db.unavailable");
        assert_eq!(e.retry_after, Some(1));
        let e = ApiError::from(StoreError::LogNotFound("a/b".into()));
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        assert_eq!(e.code, "log.not_found");
    }
}
