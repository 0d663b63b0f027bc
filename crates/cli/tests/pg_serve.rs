//! `evident serve` on PostgreSQL: several real server nodes on one
//! database of a throwaway cluster (crates/pgtest), driven over HTTP.
//!
//! What must hold: any number of nodes append to one log at once with no
//! break, duplicate index or lost entry (sequencing is serialised by the
//! log's row lock, not by either process); a node killed with SIGKILL
//! loses nothing it acknowledged; a PostgreSQL restart gives 503
//! `db.unavailable` while it is down, then recovery with no partial batch;
//! an unmigrated database stops start-up with `migration.head_mismatch`
//! unless `--migrate`. Each test skips, saying so, when PostgreSQL is not
//! installed, unless EVIDENT_REQUIRE_POSTGRES=1.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
#![cfg(unix)]

mod run;
mod server;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use evident_pgtest::Cluster;
use serde_json::{Value, json};
use server::{Req, Server, eventually};

/// The migration head this build expects.
const HEAD: u32 = evident_store::migrate::EXPECTED_HEAD;

const LOG: &str = "audit";
/// Liveness bound for waits; not a speed target.
const PATIENCE: Duration = Duration::from_secs(120);

/// `evident ARGS…` against the database at `url`, to completion.
fn evident_pg(url: &str, args: &[&str]) -> run::Run {
    let out = run::command(args)
        .env("EVIDENT_DATABASE_URL", url)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    run::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// A migrated database and the first node on it (which initialises it);
/// the node's data directory holds the key file the others share.
struct Setup {
    _tmp: tempfile::TempDir,
    url: String,
    first: PathBuf,
}

impl Setup {
    fn new(cluster: &Cluster) -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let url = cluster.url(&cluster.create_database());
        let m = evident_pg(&url, &["migrate", "up", "--format", "json"]);
        assert_eq!(m.code, 0, "{m:?}");
        let all: Vec<u32> = (1..=HEAD).collect();
        assert_eq!(m.json()["applied_now"], json!(all));
        let first = tmp.path().join("node-0");
        Setup {
            _tmp: tmp,
            url,
            first,
        }
    }

    /// Node `n`: its own data directory (for its admin credential), the
    /// shared database and the first node's key file.
    fn node(&self, n: usize) -> Server {
        let dir = self.first.with_file_name(format!("node-{n}"));
        let key = self.first.join("signing-key.pem");
        if n > 0 {
            // The admin credential was written once, by the first node.
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::copy(self.first.join("admin.key"), dir.join("admin.key")).unwrap();
        }
        let mut env = vec![("EVIDENT_DATABASE_URL", self.url.as_str())];
        let key = key.to_str().unwrap().to_owned();
        if n > 0 {
            env.push(("EVIDENT_KEY_FILE", key.as_str()));
        }
        let s = Server::start(&dir, &env);
        assert_eq!(s.started["fields"]["backend"], "postgres", "{}", s.started);
        s
    }

    /// `evident verify` of acme/LOG: the report, which must be valid.
    fn verify(&self) -> Value {
        let r = evident_pg(
            &self.url,
            &[
                "verify",
                "--data-dir",
                self.first.to_str().unwrap(),
                "--log",
                &format!("acme/{LOG}"),
                "--format",
                "json",
            ],
        );
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        let report = r.json();
        assert_eq!(report["valid"], true, "{report}");
        report
    }
}

/// What a 2xx answer acknowledged for one entry.
#[derive(Debug, Clone)]
struct Ack {
    index: u64,
    leaf_hash: String,
    request_id: String,
}

#[derive(Debug, Default)]
struct Sent {
    acks: Vec<Ack>,
    statuses: BTreeMap<u16, u64>,
    /// Error codes of non-2xx answers.
    codes: BTreeMap<String, u64>,
}

/// Writer threads, each bound to one server address, appending requests
/// of `per_request` entries with unique request ids until stopped or
/// `max_requests` each.
struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    threads: Vec<JoinHandle<Sent>>,
}

impl Load {
    fn start(
        targets: &[std::net::SocketAddr],
        token: &str,
        per_request: u64,
        max_requests: u64,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let threads = targets
            .iter()
            .enumerate()
            .map(|(t, &addr)| {
                let (stop, acked, token) =
                    (Arc::clone(&stop), Arc::clone(&acked), token.to_owned());
                std::thread::spawn(move || {
                    let mut sent = Sent::default();
                    for j in 0..max_requests {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let body = json!({"entries": (0..per_request).map(|i| json!({
                            "kind": "load.write",
                            "request_id": format!("w{t}-{j}-{i}"),
                            "data": {"w": t, "j": j, "i": i},
                        })).collect::<Vec<_>>()});
                        let answer = Req::new(addr, "POST", &format!("/v1/logs/{LOG}/entries"))
                            .bearer(&token)
                            .json(&body)
                            .try_send();
                        // The server went away: this request may or may
                        // not be stored, and this writer stops.
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
                            acked.fetch_add(per_request, Ordering::Relaxed);
                        } else {
                            let code = r.json()["error"]["code"].as_str().unwrap_or("?").to_owned();
                            *sent.codes.entry(code).or_default() += 1;
                            std::thread::sleep(Duration::from_millis(20));
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

    fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    fn wait_for(&self, n: u64) {
        eventually(PATIENCE, "acknowledged entries", || {
            (self.acked() >= n).then_some(())
        });
    }

    /// Waits for the writers to end by themselves.
    fn join(self) -> Sent {
        let mut all = Sent::default();
        for t in self.threads {
            let s = t.join().unwrap();
            all.acks.extend(s.acks);
            for (k, v) in s.statuses {
                *all.statuses.entry(k).or_default() += v;
            }
            for (k, v) in s.codes {
                *all.codes.entry(k).or_default() += v;
            }
        }
        all
    }

    fn finish(self) -> Sent {
        self.stop.store(true, Ordering::Relaxed);
        self.join()
    }
}

/// Every acknowledged entry is stored at its index with its leaf hash and
/// request id, no index was acknowledged twice, and the stored indices are
/// 0..n without a hole.
fn assert_acknowledged_present(stored: &[Value], acks: &[Ack]) {
    for (i, e) in stored.iter().enumerate() {
        assert_eq!(e["index"], i, "stored entries have a hole at {i}");
    }
    for a in acks {
        let e = stored
            .get(a.index as usize)
            .unwrap_or_else(|| panic!("acknowledged entry {} is lost ({a:?})", a.index));
        assert_eq!(e["leaf_hash"], a.leaf_hash.as_str(), "entry {}", a.index);
        assert_eq!(e["body"]["request_id"], a.request_id.as_str());
    }
    let distinct: HashSet<u64> = acks.iter().map(|a| a.index).collect();
    assert_eq!(
        distinct.len(),
        acks.len(),
        "an index was acknowledged twice"
    );
}

/// Every entry of acme/LOG, read with the CLI from the database.
fn entries(setup: &Setup) -> Vec<Value> {
    let r = evident_pg(
        &setup.url,
        &[
            "entries",
            "--data-dir",
            setup.first.to_str().unwrap(),
            "--log",
            &format!("acme/{LOG}"),
            "--limit",
            "100000000",
            "--format",
            "json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.json()["entries"].as_array().unwrap().clone()
}

/// Two nodes, eight writers each, 20,000 entries per writer, all on one
/// log: every request is acknowledged, every index is used once, and the
/// log verifies with the exact count.
#[test]
fn two_nodes_times_eight_writers_share_one_log() {
    const WRITERS_PER_NODE: usize = 8;
    const PER_WRITER: u64 = 20_000;
    const PER_REQUEST: u64 = 250;
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let setup = Setup::new(&cluster);
    let a = setup.node(0);
    let b = setup.node(1);
    a.tenant("acme");
    let k = a.key("acme", &["append", "read"]);
    let targets: Vec<_> = (0..2 * WRITERS_PER_NODE)
        .map(|w| if w % 2 == 0 { a.addr } else { b.addr })
        .collect();
    let sent = Load::start(&targets, &k.token, PER_REQUEST, PER_WRITER / PER_REQUEST).join();
    let total = 2 * WRITERS_PER_NODE as u64 * PER_WRITER;
    assert_eq!(
        sent.acks.len() as u64,
        total,
        "{:?} {:?}",
        sent.statuses,
        sent.codes
    );
    let mut indices: Vec<u64> = sent.acks.iter().map(|a| a.index).collect();
    indices.sort_unstable();
    assert_eq!(indices, (0..total).collect::<Vec<_>>(), "every index once");
    // Both nodes see the whole log.
    assert_eq!(a.size(&k.token, LOG), total);
    assert_eq!(b.size(&k.token, LOG), total);
    let report = setup.verify();
    assert_eq!(report["total_count"], total);
    assert_eq!(report["verified_count"], total);
}

/// One of two nodes is killed with SIGKILL under load; the other goes on.
/// Every entry either acknowledged is stored as acknowledged, and the log
/// verifies.
#[test]
fn kill_9_of_one_node_loses_no_acknowledged_entry() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let setup = Setup::new(&cluster);
    let mut a = setup.node(0);
    let b = setup.node(1);
    a.tenant("acme");
    let k = a.key("acme", &["append", "read"]);
    let targets = [a.addr, a.addr, a.addr, b.addr, b.addr, b.addr];
    let load = Load::start(&targets, &k.token, 20, 2_000);
    load.wait_for(2_000);
    a.kill9();
    let after_kill = load.acked();
    load.wait_for(after_kill + 1_000);
    let sent = load.finish();
    assert!(
        sent.statuses.keys().all(|&s| s == 201),
        "{:?} {:?}",
        sent.statuses,
        sent.codes
    );
    let stored = entries(&setup);
    assert!(stored.len() >= sent.acks.len());
    assert_acknowledged_present(&stored, &sent.acks);
    let report = setup.verify();
    assert_eq!(report["total_count"], stored.len());
}

/// PostgreSQL stops under load and starts again: while it is down appends
/// answer 503 `db.unavailable`; afterwards they succeed again on the same
/// server, and the log holds whole batches only (it verifies: no row past
/// its last checkpoint) with every acknowledged entry.
#[test]
fn a_postgres_restart_gives_503_then_recovers() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let setup = Setup::new(&cluster);
    let a = setup.node(0);
    a.tenant("acme");
    let k = a.key("acme", &["append", "read"]);
    let load = Load::start(&[a.addr, a.addr, a.addr], &k.token, 20, 100_000);
    load.wait_for(1_000);
    cluster.stop();
    let down = || {
        a.post(&format!("/v1/logs/{LOG}/entries"))
            .bearer(&k.token)
            .json(&json!({"kind": "probe"}))
            .send()
    };
    let r = eventually(PATIENCE, "a 503 while PostgreSQL is down", || {
        let r = down();
        (r.status == 503).then_some(r)
    });
    r.assert_error(503, "db.unavailable");
    let before = load.acked();
    cluster.restart();
    eventually(PATIENCE, "appends after the restart", || {
        (load.acked() >= before + 1_000).then_some(())
    });
    let sent = load.finish();
    assert!(
        sent.codes.contains_key("db.unavailable"),
        "{:?}",
        sent.codes
    );
    assert!(
        sent.codes.keys().all(|c| c == "db.unavailable"),
        "{:?}",
        sent.codes
    );
    let stored = entries(&setup);
    assert_acknowledged_present(&stored, &sent.acks);
    let report = setup.verify();
    assert_eq!(report["total_count"], stored.len());
    // Ready again.
    let ready = a.get("/ready").send();
    assert_eq!(ready.status, 200, "{}", ready.text());
    drop(a);
    let _ = std::fs::remove_dir_all(Path::new(&setup.first));
}

/// An unmigrated database stops `evident serve` with
/// `migration.head_mismatch`, naming both heads; `evident migrate status`
/// shows it; `--migrate` brings it up and serves.
#[test]
fn an_unmigrated_database_is_refused_unless_told_to_migrate() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let url = cluster.url(&cluster.create_database());
    let dir = tmp.path().join("node");
    let d = dir.to_str().unwrap();
    let r = evident_pg(&url, &["serve", "--listen", "127.0.0.1:0", "--data-dir", d]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("migration.head_mismatch")
            && r.stderr.contains(&format!(
                "schema is at migration 0, this binary expects {HEAD}"
            )),
        "{r:?}"
    );
    let s = evident_pg(&url, &["migrate", "status", "--format", "json"]).json();
    assert_eq!(
        (
            s["backend"].as_str(),
            s["current"].as_u64(),
            s["expected"].as_u64()
        ),
        (Some("postgres"), Some(0), Some(u64::from(HEAD)))
    );
    let server = Server::start(
        &dir,
        &[
            ("EVIDENT_DATABASE_URL", &url),
            ("EVIDENT_AUTO_MIGRATE", "true"),
        ],
    );
    assert_eq!(server.started["fields"]["migration_head"], HEAD);
    let ready = server.get("/ready").send();
    assert_eq!(ready.status, 200, "{}", ready.text());
    let s = evident_pg(&url, &["migrate", "status", "--format", "json"]).json();
    assert_eq!(s["current"], HEAD);
}
