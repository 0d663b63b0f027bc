//! `evident serve`'s API as a client sees it: the real binary on a
//! loopback port, driven over HTTP/1.1. Every endpoint's success path with
//! its status and JSON shape, receipts that verify offline with
//! `evident verify-receipt`, idempotency by `request_id`, NDJSON, refusals
//! that store nothing, size limits, the one error shape with its request
//! ID, cache headers, tiles checked against hashes computed here, and the
//! operations endpoints.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod run;
mod server;

use std::collections::BTreeSet;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use server::{Key, Resp, Server};
use sha2::{Digest, Sha256};

/// A fresh server with tenant `acme` and a key with every tenant scope.
fn acme(env: &[(&str, &str)]) -> (tempfile::TempDir, Server, Key) {
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::start(&tmp.path().join("data"), env);
    s.tenant("acme");
    let k = s.key("acme", &["append", "read", "verify"]);
    (tmp, s, k)
}

/// Client input of entry `i`: two kinds, a request id, a producer sequence.
fn entry(i: u64) -> Value {
    json!({
        "kind": if i.is_multiple_of(2) { "user.login" } else { "user.logout" },
        "request_id": format!("r-{i}"),
        "actor": format!("user-{i}"),
        "source": {"id": "gw", "seq": i + 1},
        "data": {"i": i},
    })
}

fn batch(range: std::ops::Range<u64>) -> Value {
    json!({"entries": range.map(entry).collect::<Vec<_>>()})
}

fn ndjson(range: std::ops::Range<u64>) -> String {
    range.map(|i| format!("{}\n", entry(i))).collect()
}

/// The sorted keys of a JSON object.
fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

fn append(s: &Server, k: &Key, body: &Value) -> Resp {
    s.post("/v1/logs/audit/entries")
        .bearer(&k.token)
        .json(body)
        .send()
}

/// The indices of an `{entries: [...]}` answer, in order.
fn indices(v: &Value) -> Vec<u64> {
    v["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("no entries in {v}"))
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect()
}

/// Appends entries `range` in one batch; asserts 201 and the indices.
fn append_ok(s: &Server, k: &Key, range: std::ops::Range<u64>) -> Value {
    let r = append(s, k, &batch(range.clone()));
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    assert_eq!(indices(&v), range.clone().collect::<Vec<_>>(), "{v}");
    assert_eq!(v["size"], range.end);
    v
}

fn b64(s: &Value) -> Vec<u8> {
    B64.decode(s.as_str().unwrap_or_else(|| panic!("not a string: {s}")))
        .unwrap()
}

/// `evident verify-receipt FILE --vkey KEY --format json`.
fn verify_receipt(dir: &Path, name: &str, receipt: &Value, vkey: &str) -> (i32, Value) {
    let file = dir.join(name);
    std::fs::write(&file, receipt.to_string()).unwrap();
    let r = run::evident(&[
        "verify-receipt",
        file.to_str().unwrap(),
        "--vkey",
        vkey,
        "--format",
        "json",
    ]);
    (r.code, r.json())
}

#[test]
fn appends_one_a_batch_and_ndjson_and_request_ids_make_retries_idempotent() {
    let (_tmp, s, k) = acme(&[]);
    let r = s.get("/v1/logs").bearer(&k.token).send();
    assert_eq!((r.status, r.json()), (200, json!({"logs": []})));

    // One entry: 201 and {index, leaf_hash, ts, duplicate}.
    let r = append(&s, &k, &entry(0));
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let first = r.json();
    assert_eq!(keys(&first), ["duplicate", "index", "leaf_hash", "ts"]);
    assert_eq!(first["index"], 0);
    assert_eq!(first["duplicate"], false);
    assert_eq!(b64(&first["leaf_hash"]).len(), 32);
    let ts = first["ts"].as_str().unwrap();
    assert!(
        ts.len() == 27 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
        "{ts}"
    );

    // A batch: {entries: [...], size}.
    let v = append_ok(&s, &k, 1..4);
    assert_eq!(keys(&v), ["entries", "size"]);
    for e in v["entries"].as_array().unwrap() {
        assert_eq!(keys(e), ["duplicate", "index", "leaf_hash", "ts"]);
        assert_eq!(e["duplicate"], false);
    }

    // NDJSON, with a CRLF line end and a blank line.
    let body = format!("{}\r\n\n{}\n{}", entry(4), entry(5), entry(6));
    let r = s
        .post("/v1/logs/audit/entries")
        .bearer(&k.token)
        .body("application/x-ndjson", body)
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    assert_eq!(v["size"], 7);
    assert_eq!(indices(&v), [4, 5, 6]);
    let mut leaves: Vec<Value> = vec![first["leaf_hash"].clone()];
    leaves.extend(
        s.entries(&k.token, "audit")[1..]
            .iter()
            .map(|e| e["leaf_hash"].clone()),
    );

    // The same request_id in a later request: 200, the stored original.
    let r = append(&s, &k, &entry(0));
    assert_eq!(r.status, 200, "{}", r.text());
    let mut again = first.clone();
    again["duplicate"] = json!(true);
    assert_eq!(r.json(), again);
    // A batch of duplicates only, also as NDJSON: 200, nothing stored.
    let r = append(&s, &k, &batch(1..4));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["size"], 7);
    assert!(
        r.json()["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["duplicate"] == true)
    );
    let r = s
        .post("/v1/logs/audit/entries")
        .bearer(&k.token)
        .body("application/x-ndjson", ndjson(4..7))
        .send();
    assert_eq!((r.status, &r.json()["size"]), (200, &json!(7)));
    // One old, one new: 201, the old one at its index.
    let r = append(&s, &k, &json!({"entries": [entry(2), entry(7)]}));
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    assert_eq!(v["entries"][0]["index"], 2);
    assert_eq!(v["entries"][0]["duplicate"], true);
    assert_eq!(v["entries"][0]["leaf_hash"], leaves[2]);
    assert_eq!(v["entries"][1]["index"], 7);
    assert_eq!(v["entries"][1]["duplicate"], false);
    assert_eq!(v["size"], 8);

    // Stored once each, in order.
    let stored = s.entries(&k.token, "audit");
    let ids: Vec<&str> = stored
        .iter()
        .map(|e| e["body"]["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, (0..8).map(|i| format!("r-{i}")).collect::<Vec<_>>());
    for (i, leaf) in leaves.iter().enumerate() {
        assert_eq!(&stored[i]["leaf_hash"], leaf);
    }
    assert_eq!(s.size(&k.token, "audit"), 8);
}

#[test]
fn reads_entries_checkpoint_proofs_receipts_and_verification() {
    let (tmp, s, k) = acme(&[]);
    let mut leaves = Vec::new();
    for range in [0..5, 5..10] {
        let v = append_ok(&s, &k, range);
        leaves.extend(
            v["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["leaf_hash"].clone()),
        );
    }

    let r = s.get("/v1/logs").bearer(&k.token).send();
    assert_eq!(r.status, 200);
    let logs = r.json();
    assert_eq!(keys(&logs), ["logs"]);
    let log = &logs["logs"][0];
    assert_eq!(keys(log), ["created_at", "name", "origin", "size"]);
    assert_eq!(
        (&log["name"], &log["origin"], &log["size"]),
        (
            &json!("audit"),
            &json!("evident.local/acme/audit"),
            &json!(10)
        )
    );

    // Entries: envelope, body, salt; paging, kind and since filters.
    let r = s.get("/v1/logs/audit/entries").bearer(&k.token).send();
    assert_eq!(r.status, 200);
    let all = r.json();
    assert_eq!(keys(&all), ["entries", "next"]);
    assert_eq!(all["next"], Value::Null);
    let all = all["entries"].as_array().unwrap().clone();
    assert_eq!(all.len(), 10);
    for (i, e) in all.iter().enumerate() {
        assert_eq!(keys(e), ["body", "envelope", "index", "leaf_hash", "salt"]);
        assert_eq!(e["index"], i);
        assert_eq!(e["leaf_hash"], leaves[i]);
        assert_eq!(e["envelope"]["index"], i);
        assert_eq!(e["envelope"]["origin"], "evident.local/acme/audit");
        assert_eq!(e["envelope"]["kind"], entry(i as u64)["kind"]);
        assert_eq!(e["body"]["actor"], format!("user-{i}"));
        assert_eq!(b64(&e["salt"]).len(), 16);
    }
    let page = s
        .get("/v1/logs/audit/entries?from=3&limit=4")
        .bearer(&k.token)
        .send()
        .json();
    assert_eq!(
        (indices(&page), &page["next"]),
        (vec![3, 4, 5, 6], &json!(7))
    );
    let logouts = s
        .get("/v1/logs/audit/entries?kind=user.logout")
        .bearer(&k.token)
        .send()
        .json();
    assert_eq!(indices(&logouts), [1, 3, 5, 7, 9]);
    let since = all[5]["envelope"]["ts"].as_str().unwrap();
    let want: Vec<u64> = (0..10)
        .filter(|&i| all[i as usize]["envelope"]["ts"].as_str().unwrap() >= since)
        .collect();
    let got = s
        .get(&format!("/v1/logs/audit/entries?since={since}"))
        .bearer(&k.token)
        .send()
        .json();
    assert_eq!(indices(&got), want);

    let r = s.get("/v1/logs/audit/entries/4").bearer(&k.token).send();
    assert_eq!((r.status, r.json()), (200, all[4].clone()));
    s.get("/v1/logs/audit/entries/10")
        .bearer(&k.token)
        .send()
        .assert_error(404, "entry.not_found");

    // The checkpoint: the signed note as is.
    let r = s.get("/v1/logs/audit/checkpoint").bearer(&k.token).send();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    let note = r.text();
    let lines: Vec<&str> = note.split('\n').collect();
    assert_eq!(lines.len(), 6, "{note:?}");
    assert_eq!(&lines[..2], ["evident.local/acme/audit", "10"]);
    assert_eq!(B64.decode(lines[2]).unwrap().len(), 32);
    assert_eq!(lines[3], "");
    let key_name = s.vkey.split('+').next().unwrap();
    assert!(lines[4].starts_with(&format!("— {key_name} ")), "{note:?}");
    assert_eq!(lines[5], "");

    // Consistency proofs.
    let r = s
        .get("/v1/logs/audit/proofs/consistency?from=5&to=10")
        .bearer(&k.token)
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    let p = r.json();
    assert_eq!(keys(&p), ["from", "proof", "to"]);
    assert_eq!((&p["from"], &p["to"]), (&json!(5), &json!(10)));
    let proof = p["proof"].as_array().unwrap();
    assert!(!proof.is_empty());
    assert!(proof.iter().all(|h| b64(h).len() == 32), "{p}");
    let r = s
        .get("/v1/logs/audit/proofs/consistency?from=4")
        .bearer(&k.token)
        .send();
    assert_eq!((r.status, &r.json()["to"]), (200, &json!(10)));
    let r = s
        .get("/v1/logs/audit/proofs/consistency?from=10&to=10")
        .bearer(&k.token)
        .send();
    assert_eq!((r.status, &r.json()["proof"]), (200, &json!([])));
    s.get("/v1/logs/audit/proofs/consistency?from=6&to=5")
        .bearer(&k.token)
        .send()
        .assert_error(400, "proof.bad_range");
    s.get("/v1/logs/audit/proofs/consistency?from=1&to=11")
        .bearer(&k.token)
        .send()
        .assert_error(400, "proof.bad_range");

    // Verification.
    let r = s.get("/v1/logs/audit/verify").bearer(&k.token).send();
    assert_eq!(r.status, 200, "{}", r.text());
    let report = r.json();
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["total_count"], 10);
    assert_eq!(report["verified_count"], 10);
    assert_eq!(report["first_break"], Value::Null);
    assert_eq!(report["violations"], json!([]));

    // A receipt: not cached, verifiable offline with the key alone.
    let r = s.get("/v1/logs/audit/receipts/4").bearer(&k.token).send();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let receipt = r.json();
    assert_eq!(receipt["format"], "evident.receipt.v1");
    assert_eq!(receipt["index"], 4);
    assert_eq!(receipt["leaf_hash"], leaves[4]);
    assert_eq!(receipt["checkpoint"], note.as_str());
    let (code, out) = verify_receipt(tmp.path(), "r4.json", &receipt, &s.vkey);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        (&out["valid"], &out["index"], &out["body_verified"]),
        (&json!(true), &json!(4), &json!(true))
    );
    // The check can fail: another body.
    let mut forged = receipt.clone();
    forged["body"]["actor"] = json!("mallory");
    let (code, out) = verify_receipt(tmp.path(), "forged.json", &forged, &s.vkey);
    assert_eq!(
        (code, &out["error"]["code"]),
        (1, &json!("receipt.body_mismatch"))
    );
    // Without the body.
    let r = s
        .get("/v1/logs/audit/receipts/4?body=false")
        .bearer(&k.token)
        .send();
    assert_eq!(r.status, 200);
    let bare = r.json();
    assert!(
        bare.get("body").is_none() && bare.get("salt").is_none(),
        "{bare}"
    );
    let (code, out) = verify_receipt(tmp.path(), "bare.json", &bare, &s.vkey);
    assert_eq!((code, &out["body_verified"]), (0, &json!(false)), "{out}");
    s.get("/v1/logs/audit/receipts/10")
        .bearer(&k.token)
        .send()
        .assert_error(404, "entry.not_found");
}

#[test]
fn wait_receipt_answers_with_receipts_that_verify_offline() {
    let (tmp, s, k) = acme(&[]);
    append_ok(&s, &k, 0..2);
    let r = s
        .post("/v1/logs/audit/entries?wait=receipt")
        .bearer(&k.token)
        .json(&batch(2..5))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let v = r.json();
    assert_eq!(v["size"], 5);
    for (n, e) in v["entries"].as_array().unwrap().iter().enumerate() {
        let i = n as u64 + 2;
        assert_eq!(
            keys(e),
            ["duplicate", "index", "leaf_hash", "receipt", "ts"]
        );
        let receipt = &e["receipt"];
        assert_eq!(receipt["index"], i);
        assert_eq!(receipt["leaf_hash"], e["leaf_hash"]);
        assert_eq!(receipt["body"]["request_id"], format!("r-{i}"));
        let (code, out) = verify_receipt(tmp.path(), &format!("r{i}.json"), receipt, &s.vkey);
        assert_eq!(code, 0, "{out}");
        assert_eq!(out["checkpoint_size"], 5);
    }
    // One entry, and a retry of it: the receipt of the original.
    let r = s
        .post("/v1/logs/audit/entries?wait=receipt")
        .bearer(&k.token)
        .json(&entry(5))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    let one = r.json();
    let (code, out) = verify_receipt(tmp.path(), "r5.json", &one["receipt"], &s.vkey);
    assert_eq!((code, &out["index"]), (0, &json!(5)), "{out}");
    let r = s
        .post("/v1/logs/audit/entries?wait=receipt")
        .bearer(&k.token)
        .json(&entry(5))
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["duplicate"], true);
    assert_eq!(r.json()["receipt"]["leaf_hash"], one["leaf_hash"]);
    // A receipt for another key does not verify.
    let (code, _) = verify_receipt(
        tmp.path(),
        "r5-other-key.json",
        &one["receipt"],
        "other+0badc0de+AW06KAE4mpYjaQjszQXB3AcjLA90WmzpGAQIaXZJwTgf",
    );
    assert_ne!(code, 0);

    s.post("/v1/logs/audit/entries?wait=soon")
        .bearer(&k.token)
        .json(&entry(6))
        .send()
        .assert_error(400, "request.bad_query");
    assert_eq!(s.size(&k.token, "audit"), 6);
}

#[test]
fn one_bad_entry_refuses_the_whole_request_and_stores_nothing() {
    let (_tmp, s, k) = acme(&[]);
    append_ok(&s, &k, 0..2);
    let refusals: Vec<(Resp, &str, Option<&str>)> = vec![
        (
            append(
                &s,
                &k,
                &json!({"entries": [entry(2), {"actor": "x"}, entry(3)]}),
            ),
            "entry.missing_kind",
            Some("entries[1]"),
        ),
        (
            append(
                &s,
                &k,
                &json!({"entries": [entry(2), {"kind": "evident.exception"}]}),
            ),
            "entry.reserved_kind",
            Some("entries[1]"),
        ),
        (
            append(
                &s,
                &k,
                &json!({"entries": [entry(2), {"kind": "a.b", "colour": 1}]}),
            ),
            "entry.unknown_field",
            Some("entries[1]"),
        ),
        (
            s.post("/v1/logs/audit/entries")
                .bearer(&k.token)
                .body(
                    "application/x-ndjson",
                    format!("{}\n{}\n{{\"kind\":\"a.b\",\"data\":\n", entry(2), entry(3)),
                )
                .send(),
            "entry.invalid_json",
            Some("line 3"),
        ),
        (
            s.post("/v1/logs/audit/entries")
                .bearer(&k.token)
                .body("application/json", "{\"kind\": \"a.b\"")
                .send(),
            "entry.invalid_json",
            None,
        ),
        (
            append(&s, &k, &json!({"entries": [entry(2)], "kind": "a.b"})),
            "request.bad_batch",
            None,
        ),
        (
            append(&s, &k, &json!({"entries": []})),
            "request.empty",
            None,
        ),
        (
            s.post("/v1/logs/audit/entries")
                .bearer(&k.token)
                .body("application/x-ndjson", "\n\n")
                .send(),
            "request.empty",
            None,
        ),
    ];
    for (r, code, position) in &refusals {
        let message = r.assert_error(400, code);
        if let Some(p) = position {
            assert!(message.starts_with(p), "{message}");
            assert!(message.ends_with("nothing was stored"), "{message}");
        }
    }
    // Nothing of any refused request is stored: the size is the same, and
    // the good entries of the refused batches are new when sent alone.
    assert_eq!(s.size(&k.token, "audit"), 2);
    assert_eq!(s.entries(&k.token, "audit").len(), 2);
    let r = append(&s, &k, &entry(2));
    assert_eq!((r.status, &r.json()["index"]), (201, &json!(2)));
}

#[test]
fn request_size_and_entry_count_limits() {
    let (_tmp, s, k) = acme(&[
        ("EVIDENT_MAX_REQUEST_BYTES", "4096"),
        ("EVIDENT_MAX_ENTRIES_PER_REQUEST", "5"),
    ]);
    append_ok(&s, &k, 0..5);
    // A body over the limit: 413 request.too_large, in the JSON shape.
    let big = json!({"kind": "a.b", "data": {"pad": "x".repeat(6000)}});
    let r = append(&s, &k, &big);
    r.assert_error(413, "request.too_large");
    // Just under it is accepted: the limit is the body's size.
    let fits = json!({"kind": "a.b", "request_id": "fits", "data": {"pad": "x".repeat(3900)}});
    assert!(fits.to_string().len() <= 4096);
    let r = append(&s, &k, &fits);
    assert_eq!(r.status, 201, "{}", r.text());
    // Six entries in one request: 413 request.too_many_entries.
    let r = append(&s, &k, &batch(6..12));
    let message = r.assert_error(413, "request.too_many_entries");
    assert!(message.contains("limit is 5"), "{message}");
    let r = s
        .post("/v1/logs/audit/entries")
        .bearer(&k.token)
        .body("application/x-ndjson", ndjson(6..12))
        .send();
    r.assert_error(413, "request.too_many_entries");
    assert_eq!(s.size(&k.token, "audit"), 6);
    // A body over the limit on an admin endpoint is refused the same way.
    s.post("/v1/admin/tenants")
        .bearer(&s.admin)
        .json(&json!({"name": "x".repeat(5000)}))
        .send()
        .assert_error(413, "request.too_large");
}

#[test]
fn errors_have_one_shape_and_carry_the_request_id() {
    let (_tmp, s, k) = acme(&[]);
    append_ok(&s, &k, 0..3);

    s.get("/v2/nothing")
        .send()
        .assert_error(404, "route.not_found");
    s.get("/v1/logs/audit/nothing")
        .bearer(&k.token)
        .send()
        .assert_error(404, "route.not_found");
    let r = s
        .req("DELETE", "/v1/logs/audit/entries")
        .bearer(&k.token)
        .send();
    r.assert_error(405, "route.method_not_allowed");
    assert!(r.header("allow").is_some(), "{r:?}");

    // Bad queries.
    for (path, code) in [
        ("/v1/logs/audit/entries?limit=0", "request.bad_query"),
        ("/v1/logs/audit/entries?limit=1001", "request.bad_query"),
        (
            "/v1/logs/audit/entries?since=yesterday",
            "request.bad_query",
        ),
        ("/v1/logs/audit/entries?limit=ten", "request.bad_query"),
        ("/v1/logs/audit/entries?from=-1", "request.bad_query"),
        ("/v1/logs/audit/proofs/consistency", "request.bad_query"),
        ("/v1/logs/audit/receipts/4?body=maybe", "request.bad_query"),
        ("/v1/logs/audit/entries/x", "request.bad_path"),
    ] {
        s.get(path).bearer(&k.token).send().assert_error(400, code);
    }
    s.get("/v1/logs/Audit/entries")
        .bearer(&k.token)
        .send()
        .assert_error(400, "log.bad_name");
    s.get("/v1/logs/ghost/entries")
        .bearer(&k.token)
        .send()
        .assert_error(404, "log.not_found");
    s.get("/v1/logs/ghost/checkpoint")
        .bearer(&k.token)
        .send()
        .assert_error(404, "log.not_found");

    // A valid request ID is kept, on success and on error alike.
    let id = "trace-0af7651916cd43dd8448eb211c80319c.b7:ad_6b";
    let r = s
        .get("/v1/logs/audit/entries")
        .bearer(&k.token)
        .header("X-Request-ID", id)
        .send();
    assert_eq!((r.status, r.request_id()), (200, id));
    let r = s.get("/v2/nothing").header("X-Request-ID", id).send();
    r.assert_error(404, "route.not_found");
    assert_eq!(r.request_id(), id);
    let r = s.get("/health").header("X-Request-ID", id).send();
    assert_eq!(r.request_id(), id);
    // An invalid one is replaced by a fresh one, 32 hex digits.
    for bad in ["has space", "semi;colon", "é", &"a".repeat(129), ""] {
        let r = s
            .get("/v1/logs/ghost/entries")
            .bearer(&k.token)
            .header("X-Request-ID", bad)
            .send();
        r.assert_error(404, "log.not_found");
        let fresh = r.request_id();
        assert_ne!(fresh, bad);
        assert!(
            fresh.len() == 32 && fresh.bytes().all(|b| b.is_ascii_hexdigit()),
            "{fresh}"
        );
    }
    // Every answer gets one, and a different one each time.
    let a = s.get("/health").send();
    let b = s.get("/health").send();
    assert_ne!(a.request_id(), b.request_id());
}

#[test]
fn tiles_match_hashes_computed_here_with_their_cache_headers() {
    let (_tmp, s, k) = acme(&[]);
    for start in (0..300).step_by(100) {
        append_ok(&s, &k, start..start + 100);
    }
    let tile = |path: &str| -> Resp {
        s.get(&format!("/v1/logs/audit/tile/{path}"))
            .bearer(&k.token)
            .send()
    };
    let immutable = Some("public, max-age=31536000, immutable");
    let short = Some("public, max-age=5");

    // Entry bundles: each entry a u16 length and its bytes; the leaf hash
    // of each is SHA-256(0x00 ‖ bytes), computed here.
    let mut leaves: Vec<[u8; 32]> = Vec::new();
    for (path, width, cache) in [
        ("entries/000", 256, immutable),
        ("entries/001.p/44", 44, short),
    ] {
        let r = tile(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/octet-stream"));
        assert_eq!(r.header("cache-control"), cache, "{path}");
        let mut rest = &r.body[..];
        let mut n = 0;
        while !rest.is_empty() {
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            let env = &rest[2..2 + len];
            let v: Value = serde_json::from_slice(env).unwrap();
            assert_eq!(v["index"], leaves.len());
            leaves.push(
                Sha256::new()
                    .chain_update([0])
                    .chain_update(env)
                    .finalize()
                    .into(),
            );
            rest = &rest[2 + len..];
            n += 1;
        }
        assert_eq!(n, width, "{path}");
    }
    let stored = s.entries(&k.token, "audit");
    for (i, leaf) in leaves.iter().enumerate() {
        assert_eq!(stored[i]["leaf_hash"], B64.encode(leaf), "entry {i}");
    }

    // Level-0 tiles are those leaf hashes.
    let r = tile("0/000");
    assert_eq!((r.status, r.header("cache-control")), (200, immutable));
    assert_eq!(r.body, leaves[..256].concat());
    let r = tile("0/001.p/44");
    assert_eq!((r.status, r.header("cache-control")), (200, short));
    assert_eq!(r.body, leaves[256..].concat());
    // A narrower partial tile is a prefix of the wider one.
    let r = tile("0/001.p/10");
    assert_eq!((r.status, r.header("cache-control")), (200, short));
    assert_eq!(r.body, leaves[256..266].concat());
    // Level 1 holds the root of the first 256 leaves, computed here.
    let mut level: Vec<[u8; 32]> = leaves[..256].to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|p| {
                Sha256::new()
                    .chain_update([1])
                    .chain_update(p[0])
                    .chain_update(p[1])
                    .finalize()
                    .into()
            })
            .collect();
    }
    let r = tile("1/000.p/1");
    assert_eq!((r.status, r.header("cache-control")), (200, short));
    assert_eq!(r.body, level[0]);

    // Tiles the signed tree does not have.
    for path in [
        "0/001.p/45",
        "0/001",
        "0/002.p/1",
        "1/000",
        "1/000.p/2",
        "2/000.p/1",
        "entries/001.p/45",
        "entries/001",
        "0/001.p/0",
        "0/000.p/256",
        "0/1",
        "x/000",
    ] {
        tile(path).assert_error(404, "tile.not_found");
    }
}

#[test]
fn health_ready_openapi_and_metrics() {
    let (_tmp, s, k) = acme(&[]);
    let r = s.get("/health").send();
    assert_eq!((r.status, r.json()), (200, json!({"status": "ok"})));
    let r = s.get("/ready").send();
    assert_eq!(r.status, 200, "{}", r.text());
    let ok = json!({"status": "ok"});
    assert_eq!(
        r.json(),
        json!({"ready": true, "checks": {
            "database": ok, "migration_head": ok, "signing_key": ok, "writer": ok, "verifier": ok,
            "writes": {"status": "ok", "paused": false},
        }})
    );

    // The OpenAPI document lists every route.
    let r = s.get("/openapi.json").send();
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let paths: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let want: BTreeSet<&str> = [
        "/health",
        "/ready",
        "/metrics",
        "/openapi.json",
        "/v1/logs",
        "/v1/logs/{log}/entries",
        "/v1/logs/{log}/entries/{index}",
        "/v1/logs/{log}/receipts/{index}",
        "/v1/logs/{log}/checkpoint",
        "/v1/logs/{log}/tile/{path}",
        "/v1/logs/{log}/proofs/consistency",
        "/v1/logs/{log}/verify",
        "/v1/admin/tenants",
        "/v1/admin/tenants/{name}/suspend",
        "/v1/admin/tenants/{name}/resume",
        "/v1/admin/api-keys",
        "/v1/admin/api-keys/{id}/revoke",
        "/v1/admin/writes",
    ]
    .into();
    assert_eq!(paths, want);
    assert!(doc["paths"]["/v1/logs/{log}/entries"]["post"].is_object());
    assert!(doc["paths"]["/v1/logs/{log}/entries"]["get"].is_object());

    // Metrics count requests and appended entries.
    append_ok(&s, &k, 0..3);
    let metric = |text: &str, name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    let r = s.get("/metrics").send();
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type").unwrap().starts_with("text/plain"),
        "{r:?}"
    );
    let before = r.text();
    let posts =
        r#"evident_http_requests_total{route="/v1/logs/{log}/entries",method="POST",status="201"}"#;
    assert_eq!(metric(&before, posts), 1.0);
    let appended = metric(&before, "evident_appended_entries_total");
    assert!(appended >= 3.0, "{appended}");
    append_ok(&s, &k, 3..8);
    let after = s.get("/metrics").send().text();
    assert_eq!(metric(&after, posts), 2.0);
    assert_eq!(
        metric(&after, "evident_appended_entries_total"),
        appended + 5.0
    );
    assert_eq!(metric(&after, "evident_db_up"), 1.0);
}
