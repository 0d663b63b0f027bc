//! `evident serve` under failure, driven over HTTP: a write load from
//! several client threads while the server is killed with SIGKILL, or
//! stopped with SIGTERM, and a database locked by another process.
//!
//! What must hold: a 2xx answer means the entries are committed (each
//! acknowledged index holds the acknowledged leaf hash and request id
//! after a crash and a restart); retrying every request sent stores each
//! entry exactly once; SIGTERM drains (exit status 0, the stop recorded
//! last in the system log); the logs verify with `evident verify`; and a
//! database the server cannot write makes it refuse appends with 503
//! `db.unavailable` and report not ready, storing nothing, until it
//! recovers by itself.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
#![cfg(unix)]

mod run;
mod server;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use server::{Req, Server, eventually};

const LOG: &str = "audit";
/// Client threads of a load.
const THREADS: u64 = 4;
/// Entries per request.
const PER_REQUEST: u64 = 5;
/// Requests one load thread sends at most: the load ends by itself even
/// if the server never goes away.
const MAX_REQUESTS: u64 = 1_000;
/// Liveness bound for waits; not a speed target.
const PATIENCE: Duration = Duration::from_secs(60);

/// What a 2xx answer acknowledged for one entry.
#[derive(Debug, Clone)]
struct Ack {
    index: u64,
    leaf_hash: String,
    request_id: String,
}

/// What the load threads sent and were told.
#[derive(Debug, Default)]
struct Sent {
    /// Every request body sent, answered or not.
    batches: Vec<Value>,
    acks: Vec<Ack>,
    /// Answers by status.
    statuses: BTreeMap<u16, u64>,
}

/// Client threads appending to [`LOG`] in requests of [`PER_REQUEST`]
/// entries with unique request ids, until stopped, refused a connection,
/// or [`MAX_REQUESTS`] each.
struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    threads: Vec<JoinHandle<Sent>>,
}

impl Load {
    fn start(s: &Server, token: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let threads = (0..THREADS)
            .map(|t| {
                let (stop, acked) = (Arc::clone(&stop), Arc::clone(&acked));
                let (addr, token) = (s.addr, token.to_owned());
                std::thread::spawn(move || {
                    let mut sent = Sent::default();
                    for j in 0..MAX_REQUESTS {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let body = json!({"entries": (0..PER_REQUEST).map(|i| json!({
                            "kind": "load.write",
                            "request_id": format!("t{t}-{j}-{i}"),
                            "data": {"t": t, "j": j, "i": i},
                        })).collect::<Vec<_>>()});
                        sent.batches.push(body.clone());
                        let answer = Req::new(addr, "POST", &format!("/v1/logs/{LOG}/entries"))
                            .bearer(&token)
                            .json(&body)
                            .try_send();
                        // The server went away (killed, or no longer
                        // accepting): this request may or may not be stored.
                        let Ok(r) = answer else { break };
                        *sent.statuses.entry(r.status).or_default() += 1;
                        if r.status == 200 || r.status == 201 {
                            for (e, input) in r.json()["entries"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .zip(body["entries"].as_array().unwrap())
                            {
                                sent.acks.push(Ack {
                                    index: e["index"].as_u64().unwrap(),
                                    leaf_hash: e["leaf_hash"].as_str().unwrap().to_owned(),
                                    request_id: input["request_id"].as_str().unwrap().to_owned(),
                                });
                            }
                            acked.fetch_add(PER_REQUEST, Ordering::Relaxed);
                        }
                    }
                    sent
                })
            })
            .collect();
        Load {
            stop,
            acked,
            threads,
        }
    }

    /// Waits until at least `n` entries are acknowledged.
    fn wait_for(&self, n: u64) {
        eventually(PATIENCE, "acknowledged entries", || {
            (self.acked.load(Ordering::Relaxed) >= n).then_some(())
        });
    }

    /// Stops the threads and gathers what they sent.
    fn finish(self) -> Sent {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Sent::default();
        for t in self.threads {
            let s = t.join().unwrap();
            all.batches.extend(s.batches);
            all.acks.extend(s.acks);
            for (k, v) in s.statuses {
                *all.statuses.entry(k).or_default() += v;
            }
        }
        all
    }
}

/// Every acknowledged entry is stored at its index with its leaf hash and
/// request id; the stored indices are 0..n without a hole.
fn assert_acknowledged_present(stored: &[Value], acks: &[Ack]) {
    for (i, e) in stored.iter().enumerate() {
        assert_eq!(e["index"], i, "stored entries have a hole at {i}");
    }
    for a in acks {
        let e = stored
            .get(a.index as usize)
            .unwrap_or_else(|| panic!("acknowledged entry {} is lost ({a:?})", a.index));
        assert_eq!(e["leaf_hash"], a.leaf_hash.as_str(), "entry {}", a.index);
        assert_eq!(
            e["body"]["request_id"],
            a.request_id.as_str(),
            "entry {}",
            a.index
        );
    }
    let distinct: HashSet<u64> = acks.iter().map(|a| a.index).collect();
    assert_eq!(
        distinct.len(),
        acks.len(),
        "an index was acknowledged twice"
    );
}

/// `evident verify --log acme/LOG --format json` on the data directory.
fn verify(dir: &Path, log: &str) -> Value {
    let r = run::evident(&[
        "verify",
        "--data-dir",
        dir.to_str().unwrap(),
        "--log",
        log,
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let report = r.json();
    assert_eq!(report["valid"], true, "{report}");
    report
}

/// Every entry of `log`, read from the data directory with the CLI.
fn entries_on_disk(dir: &Path, log: &str) -> Vec<Value> {
    let r = run::evident(&[
        "entries",
        "--data-dir",
        dir.to_str().unwrap(),
        "--log",
        log,
        "--limit",
        "1000000",
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    r.json()["entries"].as_array().unwrap().clone()
}

#[test]
fn kill_9_under_load_loses_no_acknowledged_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut s = Server::start(&dir, &[]);
    s.tenant("acme");
    let k = s.key("acme", &["append", "read"]);

    let load = Load::start(&s, &k.token);
    load.wait_for(1_000);
    s.kill9();
    let sent = load.finish();
    assert!(sent.acks.len() >= 1_000, "{}", sent.acks.len());
    assert_eq!(
        sent.statuses.keys().collect::<Vec<_>>(),
        [&201],
        "{:?}",
        sent.statuses
    );

    // Restarted on the same directory: every acknowledged entry is there.
    let mut s = Server::start(&dir, &[]);
    assert_eq!(s.started["fields"]["initialised"], false);
    let stored = s.entries(&k.token, LOG);
    assert!(stored.len() >= sent.acks.len());
    assert_acknowledged_present(&stored, &sent.acks);

    // Every request sent is retried with its request ids: acknowledged
    // entries come back as they were, the rest are stored, none twice.
    let acked: HashMap<&str, &Ack> = sent
        .acks
        .iter()
        .map(|a| (a.request_id.as_str(), a))
        .collect();
    for body in &sent.batches {
        let r = s
            .post(&format!("/v1/logs/{LOG}/entries"))
            .bearer(&k.token)
            .json(body)
            .send();
        assert!(r.status == 200 || r.status == 201, "{}", r.text());
        for (e, input) in r.json()["entries"]
            .as_array()
            .unwrap()
            .iter()
            .zip(body["entries"].as_array().unwrap())
        {
            if let Some(a) = acked.get(input["request_id"].as_str().unwrap()) {
                assert_eq!(e["duplicate"], true, "{e}");
                assert_eq!(
                    (&e["index"], &e["leaf_hash"]),
                    (&json!(a.index), &json!(a.leaf_hash))
                );
            }
        }
    }
    let total = sent.batches.len() as u64 * PER_REQUEST;
    let stored = s.entries(&k.token, LOG);
    assert_eq!(stored.len() as u64, total);
    let ids: HashSet<&str> = stored
        .iter()
        .map(|e| e["body"]["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len() as u64, total, "a request id is stored twice");

    assert!(s.terminate().success());
    let report = verify(&dir, "acme/audit");
    assert_eq!(report["total_count"], total);
}

#[test]
fn sigterm_under_load_drains_and_records_the_stop() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    // The background verifier runs every second, during the load.
    let mut s = Server::start(&dir, &[("EVIDENT_VERIFY_INTERVAL_SECS", "1")]);
    s.tenant("acme");
    let k = s.key("acme", &["append", "read"]);

    let started = Instant::now();
    let load = Load::start(&s, &k.token);
    load.wait_for(500);
    // Let the verifier run at least twice while entries are written.
    std::thread::sleep(Duration::from_millis(2_500).saturating_sub(started.elapsed()));
    let metrics = s.get("/metrics").send().text();
    let status = s.terminate();
    let sent = load.finish();
    assert!(
        status.success(),
        "exit status {status}; stderr:\n{}",
        s.stderr()
    );
    assert!(sent.acks.len() >= 500, "{}", sent.acks.len());
    assert!(
        sent.statuses.keys().all(|&c| c == 201),
        "{:?}",
        sent.statuses
    );
    let lines = s.log_lines();
    assert!(
        lines.iter().any(|l| l.contains(r#""event":"stopped""#)),
        "no stop line in\n{}",
        lines.join("\n")
    );

    // Read from the data directory, with the server gone.
    let stored = entries_on_disk(&dir, "acme/audit");
    assert_acknowledged_present(&stored, &sent.acks);
    let report = verify(&dir, "acme/audit");
    assert_eq!(report["total_count"], stored.len());
    let events = entries_on_disk(&dir, "_system/events");
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["envelope"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"evident.server.started"));
    assert_eq!(kinds.last(), Some(&"evident.server.stopped"), "{kinds:?}");
    verify(&dir, "_system/events");

    // The background verifier checked the log while it grew, and found
    // nothing: a batch committed during a verification is not a break.
    let runs: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("evident_verification_runs_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(runs >= 2.0, "{metrics}");
    assert!(
        metrics
            .lines()
            .any(|l| l == "evident_audit_chain_violations_total 0"),
        "{metrics}"
    );
    assert!(
        !kinds.contains(&"evident.verify.failed"),
        "false alarm: {:#?}",
        events
            .iter()
            .filter(|e| e["envelope"]["kind"] == "evident.verify.failed")
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_locked_database_fails_closed_and_recovers_by_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let s = Server::start(&dir, &[("EVIDENT_DB_BUSY_TIMEOUT_MS", "300")]);
    s.tenant("acme");
    let k = s.key("acme", &["append", "read", "verify"]);
    let entry = |id: &str| json!({"kind": "doc.write", "request_id": id});
    let append = |id: &str| {
        s.post(&format!("/v1/logs/{LOG}/entries"))
            .bearer(&k.token)
            .json(&entry(id))
            .send()
    };
    for i in 0..3 {
        assert_eq!(append(&format!("before-{i}")).status, 201);
    }
    assert_eq!(s.get("/ready").send().status, 200);

    // Another process holds the write lock.
    let db = rusqlite::Connection::open(dir.join("evident.db")).unwrap();
    db.execute_batch("BEGIN EXCLUSIVE").unwrap();

    let r = append("during");
    let message = r.assert_error(503, "db.unavailable");
    assert!(message.contains("nothing was stored"), "{message}");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(retry >= 1, "{retry}");
    let r = s.get("/ready").send();
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    let ready = r.json();
    assert_eq!(ready["ready"], false, "{ready}");
    assert_eq!(ready["checks"]["database"]["status"], "fail", "{ready}");
    assert!(
        ready["checks"]["database"]["error"]
            .as_str()
            .unwrap()
            .starts_with("db.unavailable"),
        "{ready}"
    );
    // Reads go on, and show nothing new.
    assert_eq!(s.size(&k.token, LOG), 3);
    let metrics = s.get("/metrics").send().text();
    assert!(metrics.lines().any(|l| l == "evident_db_up 0"), "{metrics}");
    // Still refused while the lock is held.
    append("during-2").assert_error(503, "db.unavailable");

    // The lock goes away; the server notices by itself.
    db.execute_batch("ROLLBACK").unwrap();
    eventually(Duration::from_secs(30), "/ready back to 200", || {
        (s.get("/ready").send().status == 200).then_some(())
    });
    assert_eq!(s.size(&k.token, LOG), 3);
    let r = append("after");
    assert_eq!(
        (r.status, &r.json()["index"]),
        (201, &json!(3)),
        "{}",
        r.text()
    );
    // The refused entries were never stored: sent again, they are new.
    let r = append("during");
    assert_eq!(
        (r.status, &r.json()["index"], &r.json()["duplicate"]),
        (201, &json!(4), &json!(false))
    );
    let r = s
        .get(&format!("/v1/logs/{LOG}/verify"))
        .bearer(&k.token)
        .send();
    assert_eq!(
        (r.status, &r.json()["valid"]),
        (200, &json!(true)),
        "{}",
        r.text()
    );
    assert_eq!(r.json()["total_count"], 5);
    verify(&dir, "acme/audit");
}
