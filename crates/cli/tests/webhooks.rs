//! Webhooks from the real server to a real local HTTP receiver: integrity
//! events (a chain break found by the background verifier, a writes pause)
//! arrive signed with HMAC-SHA256 over `<t>.<body>`, checked here with the
//! `hmac` and `sha2` crates, one `v1` per live secret (the expired one no
//! longer signs); a receiver that fails twice gets the same delivery a
//! third time, after backoff.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod run;
mod server;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use server::{Server, eventually};
use sha2::Sha256;

const LIVE_NEW: &str = "new-secret-0123456789";
const LIVE_OLD: &str = "old-secret-0123456789";
const EXPIRED: &str = "expired-secret-0123456789";

#[derive(Debug, Clone)]
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    answered: u16,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} in {:?}", self.headers))
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A receiver on a loopback port that answers 500 to its first `fail`
/// requests and 204 after, keeping every request.
fn receiver(fail: usize) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/evident", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&got);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert!(line.starts_with("POST /hooks/evident HTTP/1.1"), "{line}");
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                let (k, v) = h.split_once(':').unwrap();
                headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
            let len: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v.parse().unwrap())
                .unwrap();
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let mut all = seen.lock().unwrap();
            let answered = if all.len() < fail { 500 } else { 204 };
            all.push(Received {
                headers,
                body,
                answered,
            });
            drop(all);
            let reason = if answered == 500 {
                "Internal Server Error"
            } else {
                "No Content"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {answered} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (url, got)
}

fn hmac_hex(secret: &str, t: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex_of(&mac.finalize().into_bytes())
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Checks a request's signature independently: `t` and every `v1`.
fn check_signature(r: &Received) {
    let sig = r.header("Evident-Signature");
    let mut parts = sig.split(',');
    let t = parts.next().unwrap().strip_prefix("t=").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let t_num: u64 = t.parse().unwrap();
    assert!(t_num <= now && now - t_num < 3600, "t={t} now={now}");
    let v1: Vec<&str> = parts.map(|p| p.strip_prefix("v1=").unwrap()).collect();
    assert_eq!(
        v1,
        [
            hmac_hex(LIVE_NEW, t, &r.body),
            hmac_hex(LIVE_OLD, t, &r.body)
        ],
        "{sig}"
    );
    assert!(!v1.contains(&hmac_hex(EXPIRED, t, &r.body).as_str()));
}

#[test]
fn integrity_events_arrive_signed_and_retried() {
    let (url, got) = receiver(2);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = tmp.path().join("evident.toml");
    std::fs::write(
        &config,
        format!(
            "verify_interval_secs = 1\n\
             [[webhooks]]\nurl = \"{url}\"\n\
             secrets = [{{secret = \"{LIVE_NEW}\"}}, \
             {{secret = \"{LIVE_OLD}\", expires_at = \"2999-01-01T00:00:00.000000Z\"}}, \
             {{secret = \"{EXPIRED}\", expires_at = \"2001-01-01T00:00:00.000000Z\"}}]\n"
        ),
    )
    .unwrap();
    let env = [("EVIDENT_CONFIG", config.to_str().unwrap())];

    // A log with entries, then an attacker's edit while the server is down.
    let mut s = Server::start(&data, &env);
    s.tenant("acme");
    let k = s.key("acme", &["append", "read"]);
    let r = s
        .post("/v1/logs/audit/entries")
        .bearer(&k.token)
        .json(&json!({"entries": (0..5).map(|i| json!({"kind": "user.login", "data": {"i": i}})).collect::<Vec<_>>()}))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(s.terminate().success());
    let db = rusqlite::Connection::open(data.join("evident.db")).unwrap();
    db.execute_batch("DROP TRIGGER entries_no_update").unwrap();
    let log_id: i64 = db
        .query_row(
            "SELECT id FROM logs WHERE tenant = 'acme' AND name = 'audit'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let n = db
        .execute(
            "UPDATE entries SET body = CAST('{\"kind\":\"user.login\",\"data\":{\"i\":99}}' AS BLOB) WHERE log_id = ?1 AND idx = 2",
            [log_id],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(db);

    // The restarted server's verifier finds the break; the receiver fails
    // the first two attempts.
    let s = Server::start(&data, &env);
    let limit = Duration::from_secs(60);
    let first = eventually(limit, "chain_break delivered", || {
        let all = got.lock().unwrap();
        all.iter()
            .find(|r| r.answered == 204 && r.header("Evident-Event") == "chain_break")
            .cloned()
    });
    let all = got.lock().unwrap().clone();
    assert_eq!(
        all.iter().map(|r| r.answered).take(3).collect::<Vec<_>>(),
        [500, 500, 204]
    );
    let id = first.header("Evident-Delivery").to_owned();
    assert!(
        all[..3].iter().all(|r| r.header("Evident-Delivery") == id),
        "one delivery, retried"
    );
    for r in &all {
        check_signature(r);
        assert_eq!(r.header("Content-Type"), "application/json");
    }
    let body = first.json();
    assert_eq!(body["event"], "chain_break");
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["instance"], "evident.local");
    assert_eq!(body["data"]["log"], "acme/audit");
    assert_eq!(body["data"]["first_break"]["index"], 2, "{body}");

    // Containment is an integrity event too.
    s.admin(
        "/v1/admin/writes",
        &json!({"paused": true, "reason": "chain break at 2"}),
        200,
    );
    let paused = eventually(limit, "writes_paused delivered", || {
        got.lock()
            .unwrap()
            .iter()
            .find(|r| r.header("Evident-Event") == "writes_paused")
            .cloned()
    });
    check_signature(&paused);
    let body = paused.json();
    assert_eq!(
        (&body["data"]["paused"], &body["data"]["reason"]),
        (&json!(true), &json!("chain break at 2"))
    );
    // A body changed in transit no longer matches any signature.
    let mut forged = paused.clone();
    forged.body = paused
        .body
        .iter()
        .map(|&b| if b == b'2' { b'3' } else { b })
        .collect();
    let t = forged
        .header("Evident-Signature")
        .split(',')
        .next()
        .unwrap()[2..]
        .to_owned();
    assert!(
        !forged
            .header("Evident-Signature")
            .contains(&hmac_hex(LIVE_NEW, &t, &forged.body))
    );
}

/// The sum of a metric's samples in a `/metrics` text (every label set).
fn metric(s: &Server, name: &str) -> f64 {
    s.get("/metrics")
        .send()
        .text()
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn a_break_is_counted_once_however_often_it_is_verified_again() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Every second pass is a full one: the break inside the verified
    // prefix is seen by full passes only, with incremental ones between.
    let env = [
        ("EVIDENT_VERIFY_INTERVAL_SECS", "1"),
        ("EVIDENT_VERIFY_FULL_EVERY", "2"),
    ];
    let s = Server::start(&data, &env);
    s.tenant("acme");
    let k = s.key("acme", &["append", "read", "verify"]);
    let append = |n: u64| {
        let r = s
            .post("/v1/logs/audit/entries")
            .bearer(&k.token)
            .json(&json!({"entries": (0..n).map(|i| json!({"kind": "user.login", "data": {"i": i}})).collect::<Vec<_>>()}))
            .send();
        assert_eq!(r.status, 201, "{}", r.text());
    };
    append(5);

    // The attacker edits a body while the server runs.
    let db = rusqlite::Connection::open(data.join("evident.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    db.execute_batch("DROP TRIGGER entries_no_update").unwrap();
    let n = db
        .execute(
            "UPDATE entries SET body = CAST('{\"kind\":\"user.login\",\"data\":{\"i\":99}}' AS BLOB) \
             WHERE log_id = (SELECT id FROM logs WHERE tenant = 'acme' AND name = 'audit') AND idx = 2",
            [],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(db);

    let limit = Duration::from_secs(60);
    let breaks = eventually(limit, "the break counted", || {
        Some(metric(&s, "evident_chain_breaks_total")).filter(|&b| b > 0.0)
    });
    let violations = metric(&s, "evident_audit_chain_violations_total");
    // What one verification finds, from the report itself.
    let report = s
        .get("/v1/logs/audit/verify")
        .bearer(&k.token)
        .send()
        .json();
    assert_eq!(report["valid"], false, "{report}");
    assert_eq!(report["first_break"]["index"], 2, "{report}");
    assert_eq!(report["first_break"]["reason"], "body.digest_mismatch");
    assert_eq!(violations, report["violation_count"].as_f64().unwrap());
    assert_eq!(breaks, violations, "a body edit is a chain break");

    // Appends go on (incremental passes between the full ones), and the
    // operator verifies again: at least two more full passes see the same
    // break.
    // Runs count both; the background's are those this loop did not ask
    // for. Each pass runs both logs (this one and `_system/events`), so
    // eight runs are at least four passes, two of them full.
    let runs = metric(&s, "evident_verification_runs_total");
    let mut asked = 0.0;
    while metric(&s, "evident_verification_runs_total") - asked < runs + 8.0 {
        append(1);
        let r = s.get("/v1/logs/audit/verify").bearer(&k.token).send();
        assert_eq!(r.json()["first_break"]["index"], 2);
        asked += 1.0;
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(metric(&s, "evident_chain_breaks_total"), breaks);
    assert_eq!(
        metric(&s, "evident_audit_chain_violations_total"),
        violations
    );
}
