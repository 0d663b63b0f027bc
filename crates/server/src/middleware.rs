//! The outermost layer every request passes: its request ID, its tracing
//! span, its access log line and HTTP metrics, and the rewriting of any
//! error answer that is not yet in the JSON error shape (a 413 from the
//! body limit, a 404 for an unknown route, a timeout).

use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::error::{ApiError, Rendered};
use crate::state::AppState;

/// The request ID header, in and out.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request ID kept from a client.
pub const MAX_REQUEST_ID_LEN: usize = 128;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The ID of the request being served on this task, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// A client's ID is kept when it is 1–128 characters of
/// `[A-Za-z0-9._:-]`: enough for UUIDs, W3C trace IDs and ULIDs, and
/// nothing that could break a log line or a header.
pub fn valid_request_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_REQUEST_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// A fresh ID: 32 hex digits, unique within the process and, with 64
/// random bits chosen at start-up, across processes.
///
/// The first half is that per-process random value; the second a counter
/// run through a bijective mixer, so consecutive IDs do not look alike in
/// logs. One `getrandom` per process instead of one per request (a system
/// call on every request was 0.5% of the server's time under load).
/// Request IDs correlate log lines; they are not secrets.
pub fn new_request_id() -> String {
    use std::sync::LazyLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: LazyLock<u64> = LazyLock::new(|| {
        let mut b = [0u8; 8];
        if getrandom::fill(&mut b).is_err() {
            // The OS random source failing is not a reason to refuse
            // service; the start time still tells processes apart.
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            return t.as_secs().rotate_left(32)
                ^ u64::from(t.subsec_nanos())
                ^ u64::from(std::process::id()).rotate_left(48);
        }
        u64::from_le_bytes(b)
    });
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:016x}{:016x}", *PREFIX, mix(n ^ *PREFIX))
}

/// The splitmix64 finaliser: a bijection on `u64`, so distinct counters
/// give distinct IDs.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The tenant of the request, recorded into the request's span by the
/// authentication step.
#[derive(Debug, Clone)]
pub(crate) struct SpanHandle(pub(crate) tracing::Span);

/// The request layer. See the module documentation.
pub(crate) async fn request_layer(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let rid = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|s| valid_request_id(s))
        .map_or_else(new_request_id, str::to_owned);
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        request_id = %rid,
        method = %method,
        route = %route,
        tenant = tracing::field::Empty,
    );
    req.extensions_mut().insert(SpanHandle(span.clone()));

    let res = REQUEST_ID
        .scope(rid.clone(), next.run(req).instrument(span.clone()))
        .await;
    let mut res = if res.status().is_client_error() || res.status().is_server_error() {
        if res.extensions().get::<Rendered>().is_some() {
            res
        } else {
            REQUEST_ID.scope(rid.clone(), render_plain_error(res)).await
        }
    } else {
        res
    };
    if let Ok(v) = HeaderValue::from_str(&rid) {
        res.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }

    let status = res.status();
    let elapsed = started.elapsed();
    state
        .metrics
        .observe_http(&route, method.as_str(), status.as_u16(), elapsed);
    let _enter = span.enter();
    let code = res.extensions().get::<ApiError>().map(|e| e.code.clone());
    let ms = elapsed.as_secs_f64() * 1000.0;
    if status.is_server_error() {
        tracing::warn!(
            status = status.as_u16(),
            ms,
            code = code.as_deref(),
            "request failed"
        );
    } else if status.is_client_error() {
        tracing::info!(
            status = status.as_u16(),
            ms,
            code = code.as_deref(),
            "request refused"
        );
    } else {
        tracing::debug!(status = status.as_u16(), ms, "request served");
    }
    res
}

/// Turns an error answer made outside our handlers (axum's extractors,
/// tower-http's limits, the router's 404/405) into the JSON shape, keeping
/// its status and, as the message, its text.
async fn render_plain_error(res: Response) -> Response {
    let status = res.status();
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let (code, default_msg) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "request.too_large",
            "the request body is larger than the server accepts",
        ),
        StatusCode::NOT_FOUND => ("route.not_found", "no such endpoint"),
        StatusCode::METHOD_NOT_ALLOWED => ("route.method_not_allowed", "method not allowed here"),
        StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => (
            "request.timeout",
            "the request took longer than the server allows",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("request.bad_content_type", "unsupported content type")
        }
        s if s.is_server_error() => ("server.internal", "internal error"),
        _ => ("request.bad", "bad request"),
    };
    let message = if text.is_empty() {
        default_msg.to_owned()
    } else {
        text
    };
    let mut out = ApiError::new(status, code, message);
    if let Some(v) = parts.headers.get(header::RETRY_AFTER)
        && let Some(secs) = v.to_str().ok().and_then(|s| s.parse().ok())
    {
        out = out.retry_after(secs);
    }
    let mut res = out.into_response();
    // Keep the handler's other headers (Allow on a 405, for example).
    for (k, v) in &parts.headers {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            res.headers_mut().entry(k).or_insert(v.clone());
        }
    }
    res
}

/// Answers with `body` as JSON. The body is the handler's own, whatever
/// the status (`/ready` answers 503 with its report): the request layer
/// does not rewrite it.
pub(crate) fn json_response(status: StatusCode, body: String) -> Response {
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res.extensions_mut().insert(Rendered);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids() {
        assert!(valid_request_id("0f3c-AB_12.x:y"));
        assert!(!valid_request_id(""));
        assert!(!valid_request_id("a b"));
        assert!(!valid_request_id("a\nb"));
        assert!(!valid_request_id(&"a".repeat(129)));
        assert!(valid_request_id(&"a".repeat(128)));
        let a = new_request_id();
        assert_eq!(a.len(), 32);
        assert!(valid_request_id(&a));
        assert_ne!(a, new_request_id());
        let ids: std::collections::HashSet<String> =
            (0..10_000).map(|_| new_request_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|i| i.len() == 32 && valid_request_id(i)));
    }
}
