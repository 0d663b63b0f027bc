//! Path and query-string parsing with our error codes.
//!
//! axum's own extractors reject `?limit=ten` or `/entries/x` with a
//! plain-text 400 that the error middleware can only turn into the generic
//! `request.bad`; clients and runbooks key on codes, so each gets its own
//! (`request.bad_query`, `request.bad_path`) with serde's explanation of
//! what was wrong.

use axum::extract::FromRequestParts;
use axum::extract::rejection::PathRejection;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The parsed query string of a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // axum's message names the parameter (`limit: invalid digit…`).
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(e) => Err(ApiError::bad_request("request.bad_query", e.body_text())),
        }
    }
}

/// The typed path parameters of a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            // A route without the parameters is a bug here, not the client's.
            Err(PathRejection::MissingPathParams(e)) => Err(ApiError::internal(e.body_text())),
            Err(e) => Err(ApiError::bad_request(
                "request.bad_path",
                format!("path: {}", e.body_text()),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::Request;

    #[derive(Debug, serde::Deserialize)]
    struct Q {
        limit: Option<u64>,
    }

    async fn parse(uri: &str) -> Result<Query<Q>, ApiError> {
        let (mut parts, ()) = Request::get(uri).body(()).unwrap().into_parts();
        Query::<Q>::from_request_parts(&mut parts, &()).await
    }

    #[tokio::test]
    async fn a_number_that_is_not_one_is_a_bad_query() {
        let e = parse("/x?limit=ten").await.unwrap_err();
        assert_eq!(e.code, "request.bad_query");
        assert!(e.message.contains("limit"), "{}", e.message);
        assert_eq!(parse("/x?limit=7").await.unwrap().0.limit, Some(7));
        assert_eq!(parse("/x").await.unwrap().0.limit, None);
    }
}
