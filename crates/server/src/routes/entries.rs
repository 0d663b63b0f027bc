//! Appending and reading entries.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use evident_core::entry::EnvelopeView;
use evident_core::entry::{EntryDraft, Limits, parse_entry, parse_ts};
use evident_core::receipt::Receipt;
use evident_store::{Appended, LogInfo, reader};
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;

use super::extract::{Path, Query};
use crate::apikey::Scope;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::middleware::json_response;
use crate::state::AppState;

/// `?wait=receipt`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AppendQuery {
    /// `receipt`: answer with full receipts once the entries are integrated.
    wait: Option<String>,
}

/// Append one entry, a batch `{"entries":[…]}`, or NDJSON (one entry per
/// line, `Content-Type: application/x-ndjson`).
///
/// Every entry is checked before any is stored: one bad entry refuses the
/// whole request with its position. The answer comes after the batch is
/// committed, so a 2xx is durable. A `request_id` already in the log
/// answers with the stored original (`duplicate: true`) and stores nothing.
#[utoipa::path(
    post,
    path = "/v1/logs/{log}/entries",
    params(("log" = String, Path, description = "Log name within the key's tenant"), AppendQuery),
    request_body(content = String, description = "One entry object, {\"entries\": [...]}, or NDJSON"),
    responses(
        (status = 201, description = "Stored: {index, leaf_hash, ts, duplicate} or {entries: [...], size}"),
        (status = 200, description = "Every entry was a duplicate of a stored one"),
        (status = 400, description = "An entry is malformed; nothing stored"),
        (status = 413, description = "Too large; nothing stored"),
        (status = 503, description = "db.unavailable: nothing stored"),
    ),
    security(("bearer" = []))
)]
pub async fn append(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(log): Path<String>,
    Query(q): Query<AppendQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let started = Instant::now();
    p.require(Scope::Append)?;
    // Before anything else, so that a paused server creates no log either.
    state.writer.pause().check()?;
    let with_receipts = match q.wait.as_deref() {
        None => false,
        Some("receipt") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "request.bad_query",
                format!("wait={other:?}: the only value is `receipt`"),
            ));
        }
    };
    let limits = Limits {
        max_body_bytes: state.config.max_body_bytes,
        allow_reserved_kinds: false,
    };
    let ndjson = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("application/x-ndjson") || v.starts_with("application/jsonl")
        });
    let (mut drafts, single) = if ndjson {
        (parse_ndjson(&body, &limits)?, false)
    } else {
        parse_json(&body, &limits)?
    };
    if drafts.is_empty() {
        return Err(ApiError::bad_request(
            "request.empty",
            "no entries in the request",
        ));
    }
    if drafts.len() > state.config.max_entries_per_request {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request.too_many_entries",
            format!(
                "{} entries in one request; the limit is {}",
                drafts.len(),
                state.config.max_entries_per_request
            ),
        ));
    }
    if drafts.len() >= SALT_AHEAD_MIN {
        evident_store::sequencer::salt_drafts(&mut drafts)?;
    }
    let log = state.log_or_create(&p.tenant, &log).await?;
    let written = if with_receipts {
        tokio::time::timeout(
            state.config.receipt_wait(),
            state.writer.append(log.clone(), drafts),
        )
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "receipt.timeout",
                "the entries were not integrated in time; they may still be; \
                     retry with the same request_id to get them without storing twice",
            )
            .retry_after(1)
        })??
    } else {
        state.writer.append(log.clone(), drafts).await?
    };
    let receipts = if with_receipts {
        Some(receipts_for(&state, &log, &written.entries).await?)
    } else {
        None
    };
    state
        .metrics
        .observe_append(started.elapsed(), with_receipts);

    let any_new = written.entries.iter().any(|e| !e.duplicate);
    let status = if any_new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut receipts = receipts.map(Vec::into_iter);
    let items: Vec<AppendedOut<'_>> = written
        .entries
        .iter()
        .map(|a| AppendedOut {
            a,
            receipt: receipts.as_mut().and_then(Iterator::next),
        })
        .collect();
    let body = if single && items.len() == 1 {
        serde_json::to_string(&items[0])
    } else {
        serde_json::to_string(&BatchOut {
            entries: &items,
            size: written.size,
        })
    }
    .map_err(|e| ApiError::internal(format!("cannot encode the answer: {e}")))?;
    let mut res = json_response(status, body);
    if with_receipts {
        res.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
    }
    Ok(res)
}

/// One appended entry as answered: `{duplicate, index, leaf_hash,
/// receipt?, ts}`, written straight to the answer's bytes rather than
/// through a `Value` tree (for a batch of 1,000 that tree was 5% of the
/// server's time).
struct AppendedOut<'a> {
    a: &'a Appended,
    receipt: Option<Box<RawValue>>,
}

impl Serialize for AppendedOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(4 + usize::from(self.receipt.is_some())))?;
        m.serialize_entry("duplicate", &self.a.duplicate)?;
        m.serialize_entry("index", &self.a.index)?;
        m.serialize_entry("leaf_hash", &self.a.leaf_hash)?;
        if let Some(r) = &self.receipt {
            m.serialize_entry("receipt", r)?;
        }
        m.serialize_entry("ts", &self.a.ts)?;
        m.end()
    }
}

/// The answer to a batch: `{entries, size}`.
#[derive(Serialize)]
struct BatchOut<'a> {
    entries: &'a [AppendedOut<'a>],
    size: u64,
}

async fn receipts_for(
    state: &AppState,
    log: &LogInfo,
    entries: &[Appended],
) -> ApiResult<Vec<Box<RawValue>>> {
    let log = log.clone();
    let indices: Vec<u64> = entries.iter().map(|e| e.index).collect();
    let few = indices.len() <= INLINE_RECEIPTS;
    let pyramids = Arc::clone(&state.pyramids);
    let build = move |s: &mut dyn evident_store::Store| {
        indices
            .iter()
            .map(|&i| {
                reader::receipt_shared(s, &log, i, true, Some(&pyramids))
                    .map_err(ApiError::from)
                    .and_then(|r| receipt_value(&r))
            })
            .collect()
    };
    if few {
        state.pool.quick(build).await
    } else {
        state.pool.with(build).await
    }
}

/// Most receipts built on the async worker itself (where the backend
/// allows): with the tile pyramids shared, a receipt is a few indexed
/// reads and a few dozen hashes, ~50 µs, less than the hand-off to a
/// blocking thread costs; a large batch's receipts go to the blocking pool
/// so that no worker is held for long.
const INLINE_RECEIPTS: usize = 8;

/// A receipt as its own JSON text, embedded in the answer as is.
fn receipt_value(r: &Receipt) -> ApiResult<Box<RawValue>> {
    RawValue::from_string(r.to_json())
        .map_err(|e| ApiError::internal(format!("cannot encode a receipt: {e}")))
}

/// Requests of at least this many entries have their bodies salted and
/// digested here, on the request's thread, rather than by the writer,
/// whose time bounds the rate of large batches (1,000-entry batches 294 /
/// 295k → 298 / 305k per s). Below it the randomness, one system call per
/// request, cost more than the writer saved: single-entry appends, bound
/// by these threads, went 34k → 31–32k per s (BENCHMARKS.md, issue 4).
const SALT_AHEAD_MIN: usize = 32;

/// A request body that is one entry or `{"entries": [...]}`. Returns the
/// drafts and whether it was a single entry.
fn parse_json(body: &[u8], limits: &Limits) -> ApiResult<(Vec<EntryDraft>, bool)> {
    // One entry is the common request: parse it once, directly. An entry
    // never has an `entries` field (unknown fields are refused), so a body
    // that parses as an entry is not a batch; anything else is looked at
    // again below, which gives the same errors as before. A body that
    // begins with the `entries` key cannot be an entry, and trying would
    // cost most of a batch's parse: the entry reader hands input it
    // refuses to the strict reference parser, which reads the whole batch
    // into a value tree to word its error (a third of the HTTP worker's
    // time in the batch benchmark).
    if !begins_with_entries_key(body)
        && let Ok(draft) = parse_entry(body, limits)
    {
        return Ok((vec![draft], true));
    }
    let top: BTreeMap<String, &RawValue> = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "entry.invalid_json",
            format!("the body is not a JSON object: {e}"),
        )
    })?;
    let Some(list) = top.get("entries") else {
        return Ok((vec![parse_entry(body, limits)?], true));
    };
    if top.len() != 1 {
        return Err(ApiError::bad_request(
            "request.bad_batch",
            "a batch is an object with `entries` and nothing else",
        ));
    }
    let list: Vec<&RawValue> = serde_json::from_str(list.get()).map_err(|e| {
        ApiError::bad_request(
            "request.bad_batch",
            format!("`entries` is not an array: {e}"),
        )
    })?;
    let drafts = list
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            parse_entry(raw.get().as_bytes(), limits)
                .map_err(|e| at_position("entries", i, e.into()))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok((drafts, false))
}

/// Whether `body` is a JSON object whose first key is `entries`, written
/// plainly (an escaped spelling is not recognised, and is then parsed the
/// long way, to the same result).
fn begins_with_entries_key(body: &[u8]) -> bool {
    fn skip_ws(b: &[u8]) -> &[u8] {
        let n = b
            .iter()
            .take_while(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
            .count();
        &b[n..]
    }
    skip_ws(body)
        .strip_prefix(b"{")
        .map(skip_ws)
        .and_then(|b| b.strip_prefix(b"\"entries\""))
        .is_some_and(|b| skip_ws(b).starts_with(b":"))
}

fn parse_ndjson(body: &[u8], limits: &Limits) -> ApiResult<Vec<EntryDraft>> {
    let mut drafts = Vec::new();
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        drafts.push(parse_entry(line, limits).map_err(|e| at_position("line", i + 1, e.into()))?);
    }
    Ok(drafts)
}

fn at_position(what: &str, n: usize, mut e: ApiError) -> ApiError {
    e.message = if what == "line" {
        format!("line {n}: {}; nothing was stored", e.message)
    } else {
        format!("entries[{n}]: {}; nothing was stored", e.message)
    };
    e
}

/// `?from=&limit=&kind=&since=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// First index (default 0).
    from: Option<u64>,
    /// Most entries (default 100, at most 1000).
    limit: Option<u64>,
    /// Only entries of this kind.
    kind: Option<String>,
    /// Only entries sequenced at or after this RFC 3339 time.
    since: Option<String>,
}

/// Largest page of `GET …/entries`.
pub const MAX_PAGE: u64 = 1000;

/// List entries (envelopes and bodies), oldest first.
#[utoipa::path(
    get,
    path = "/v1/logs/{log}/entries",
    params(("log" = String, Path, description = "Log name"), ListQuery),
    responses((status = 200, description = "{entries: [...], next}"), (status = 404, description = "log.not_found")),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(log): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Response> {
    p.require(Scope::Read)?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(
            "request.bad_query",
            format!("limit must be 1..={MAX_PAGE}"),
        ));
    }
    let since = match &q.since {
        Some(s) => Some(parse_ts(s).map_err(|e| {
            ApiError::bad_request("request.bad_query", format!("since={s:?}: {e}"))
        })?),
        None => None,
    };
    let log = state.log(&p.tenant, &log).await?;
    let from = q.from.unwrap_or(0);
    let kind = q.kind.clone();
    let (entries, next) = state
        .pool
        .with(move |s| {
            let mut out = Vec::new();
            let mut next = None;
            s.scan_entries(log.id, from, &mut |e| {
                let view = EnvelopeView::parse(e.envelope).ok();
                if let Some(k) = &kind
                    && view.as_ref().is_some_and(|v| v.kind != k.as_str())
                {
                    return Ok(true);
                }
                if let Some(t) = since
                    && view
                        .as_ref()
                        .and_then(|v| parse_ts(&v.ts).ok())
                        .is_some_and(|ts| ts < t)
                {
                    return Ok(true);
                }
                if out.len() as u64 >= limit {
                    next = Some(e.index);
                    return Ok(false);
                }
                out.push(reader::entry_json(&e));
                Ok(true)
            })
            .map_err(ApiError::from)?;
            Ok((out, next))
        })
        .await?;
    Ok(json_response(
        StatusCode::OK,
        json!({"entries": entries, "next": next}).to_string(),
    ))
}

/// One entry: envelope, body and salt.
#[utoipa::path(
    get,
    path = "/v1/logs/{log}/entries/{index}",
    params(("log" = String, Path, description = "Log name"), ("index" = u64, Path, description = "Entry index")),
    responses((status = 200, description = "The entry"), (status = 404, description = "log.not_found or entry.not_found")),
    security(("bearer" = []))
)]
pub async fn get_one(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((log, index)): Path<(String, u64)>,
) -> ApiResult<Response> {
    p.require(Scope::Read)?;
    let log = state.log(&p.tenant, &log).await?;
    let origin = log.origin.clone();
    let found = state
        .pool
        .with(move |s| {
            let mut found = None;
            s.scan_entries(log.id, index, &mut |e| {
                if e.index == index {
                    found = Some(reader::entry_json(&e));
                }
                Ok(false)
            })
            .map_err(ApiError::from)?;
            Ok(found)
        })
        .await?;
    let entry = found.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "entry.not_found",
            format!("{origin} has no entry {index}"),
        )
    })?;
    Ok(json_response(StatusCode::OK, entry.to_string()))
}

/// `?body=false` leaves the body and salt out of a receipt.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ReceiptQuery {
    /// Include the body and salt (default true).
    body: Option<bool>,
}

/// A receipt: the entry, the latest signed checkpoint and the inclusion
/// proof to it. Verifiable offline with the verifier key alone.
#[utoipa::path(
    get,
    path = "/v1/logs/{log}/receipts/{index}",
    params(("log" = String, Path, description = "Log name"), ("index" = u64, Path, description = "Entry index"), ReceiptQuery),
    responses((status = 200, description = "evident.receipt.v1 JSON"), (status = 404, description = "log.not_found or entry.not_found")),
    security(("bearer" = []))
)]
pub async fn receipt(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((log, index)): Path<(String, u64)>,
    Query(q): Query<ReceiptQuery>,
) -> ApiResult<Response> {
    p.require(Scope::Read)?;
    let log = state.log(&p.tenant, &log).await?;
    let with_body = q.body.unwrap_or(true);
    let pyramids = Arc::clone(&state.pyramids);
    let r = state
        .pool
        .quick(move |s| {
            reader::receipt_shared(s, &log, index, with_body, Some(&pyramids))
                .map_err(ApiError::from)
        })
        .await?;
    let mut res = json_response(StatusCode::OK, r.to_json());
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn one_entry_or_a_batch() {
        let l = Limits::default();
        let (d, single) = parse_json(br#"{"kind":"a.b","actor":"x"}"#, &l).unwrap();
        assert!(single);
        assert_eq!(d.len(), 1);
        let (d, single) =
            parse_json(br#"{"entries":[{"kind":"a.b"},{"kind":"c.d"}]}"#, &l).unwrap();
        assert!(!single);
        assert_eq!(d[1].kind, "c.d");
    }

    #[test]
    fn the_entries_key_is_recognised_only_first_and_plainly_written() {
        for yes in [
            &br#"{"entries":[]}"#[..],
            b" \r\n\t{ \n \"entries\" \t: [1]}",
            br#"{"entries":"#,
        ] {
            assert!(
                begins_with_entries_key(yes),
                "{}",
                String::from_utf8_lossy(yes)
            );
        }
        for no in [
            &br#"{"kind":"a.b","entries":[]}"#[..],
            br#"{"entries_x":[]}"#,
            br#"{"\u0065ntries":[]}"#,
            br#"["entries"]"#,
            br#"{"entries"]"#,
            b"",
        ] {
            assert!(
                !begins_with_entries_key(no),
                "{}",
                String::from_utf8_lossy(no)
            );
        }
    }

    /// Bodies that take the shortcut answer exactly as the long way did.
    #[test]
    fn a_batch_is_answered_the_same_without_the_entry_attempt() {
        let l = Limits::default();
        for (body, code) in [
            (
                &br#"{"entries":[{"kind":"a.b"}],"x":1}"#[..],
                "request.bad_batch",
            ),
            (br#"{"entries":5}"#, "request.bad_batch"),
            (br#"{"entries":[{"kind":"a.b"}]"#, "entry.invalid_json"),
            (
                br#"{"entries":[{"kind":"a.b","kind":"c.d"}]}"#,
                "entry.duplicate_key",
            ),
        ] {
            let e = parse_json(body, &l).unwrap_err();
            assert_eq!(
                e.code,
                code,
                "{}: {}",
                String::from_utf8_lossy(body),
                e.message
            );
        }
        let (d, single) = parse_json(b" {\n\"entries\" : [{\"kind\":\"a.b\"}]}", &l).unwrap();
        assert_eq!((d.len(), single), (1, false));
        // An escaped spelling of the key goes the long way, to a batch too.
        let (d, single) = parse_json(br#"{"\u0065ntries":[{"kind":"a.b"}]}"#, &l).unwrap();
        assert_eq!((d.len(), single), (1, false));
    }

    #[test]
    fn a_bad_entry_names_its_position() {
        let l = Limits::default();
        let e = parse_json(br#"{"entries":[{"kind":"a.b"},{"actor":"x"}]}"#, &l).unwrap_err();
        assert_eq!(e.code, "entry.missing_kind");
        assert!(e.message.starts_with("entries[1]:"), "{}", e.message);
        let e =
            parse_ndjson(b"{\"kind\":\"a.b\"}\n\n{\"kind\":\"a.b\",\"x\":1}\n", &l).unwrap_err();
        assert!(e.message.starts_with("line 3:"), "{}", e.message);
    }

    #[test]
    fn answers_keep_their_shape() {
        let a = Appended {
            index: 7,
            leaf_hash: evident_core::hash::leaf_hash(b"x"),
            ts: "2026-11-22T00:00:00.000000Z".to_owned(),
            duplicate: false,
        };
        let one = AppendedOut {
            a: &a,
            receipt: None,
        };
        let old = json!({"index": a.index, "leaf_hash": a.leaf_hash, "ts": a.ts, "duplicate": a.duplicate});
        assert_eq!(serde_json::to_string(&one).unwrap(), old.to_string());
        let with = AppendedOut {
            a: &a,
            receipt: Some(RawValue::from_string(r#"{"r":1}"#.to_owned()).unwrap()),
        };
        let mut old_with = old.clone();
        old_with["receipt"] = json!({"r": 1});
        let batch = BatchOut {
            entries: &[one, with],
            size: 8,
        };
        assert_eq!(
            serde_json::to_string(&batch).unwrap(),
            json!({"entries": [old, old_with], "size": 8}).to_string()
        );
    }

    #[test]
    fn batch_with_other_fields_is_refused() {
        let e = parse_json(br#"{"entries":[],"kind":"a"}"#, &Limits::default()).unwrap_err();
        assert_eq!(e.code, "request.bad_batch");
    }
}
