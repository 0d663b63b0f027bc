//! Seals in an S3-compatible object store, with the real binary against a
//! real S3 server: `moto`'s standalone server (PyPI `moto[server]`) on a
//! loopback port of this test's choosing, one per test, with a bucket the
//! test creates over the S3 API (plain HTTP requests: see [`FAKE_AUTH`]).
//! `evident seal --anchors s3://…` and
//! `verify --anchors s3://…` are configured only through the standard
//! AWS environment; the test reads and tampers with the objects through
//! plain S3 requests, as an attacker with bucket access would.
//!
//! When moto cannot be started the tests print `skipped: …` and pass,
//! unless `EVIDENT_REQUIRE_INTEROP=1` (set by `scripts/test`, which also
//! installs moto) is set: then they fail and say what to install. The
//! Python that runs moto is `EVIDENT_MOTO_PYTHON` (default `python3`).
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod run;
mod server;
#[allow(dead_code)]
mod support;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use evident_core::ErrorCode;
use evident_store::anchor::Anchor;
use run::Run;
use serde_json::Value;
use server::Req;
use support::{LOG, Ledger, input_line};

const BUCKET: &str = "evident-seals";
const ORIGIN_KEYS: &str = "anchors/evident.local/acme/audit";

/// How long moto may take to answer its first request: a liveness bound
/// on a shared machine, not a speed target.
const MOTO_START: Duration = Duration::from_secs(90);

/// What the test's own S3 requests carry as credentials. moto does not
/// check signatures, but answers 403 to some requests that carry none
/// (GET, conditional PUT): any well-formed `Authorization` header passes,
/// so the test's reads and its tampering need no signing code of its own.
const FAKE_AUTH: &str = "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00";

/// A moto S3 server on a loopback port, killed on drop.
#[derive(Debug)]
struct Moto {
    child: Child,
    addr: SocketAddr,
}

impl Moto {
    /// Starts moto with an empty bucket [`BUCKET`], or says why it cannot.
    fn start() -> Option<Moto> {
        let python = std::env::var("EVIDENT_MOTO_PYTHON").unwrap_or_else(|_| "python3".into());
        let probe = Command::new(&python)
            .args(["-c", "import moto.server, flask, flask_cors"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !probe.is_ok_and(|s| s.success()) {
            let why = format!("`{python} -c 'import moto.server'` fails");
            assert!(
                std::env::var("EVIDENT_REQUIRE_INTEROP").as_deref() != Ok("1"),
                "EVIDENT_REQUIRE_INTEROP=1 but {why}; install it with \
                 `python3 -m pip install 'moto[server]'` (scripts/test does)"
            );
            eprintln!("skipped: moto's S3 server is not installed ({why})");
            return None;
        }
        let port = free_port();
        let child = Command::new(&python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut moto = Moto {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let started = Instant::now();
        loop {
            // object_store cannot create buckets: a plain CreateBucket.
            if let Ok(r) = Req::new(moto.addr, "PUT", &format!("/{BUCKET}"))
                .header("Authorization", FAKE_AUTH)
                .try_send()
            {
                assert_eq!(r.status, 200, "create bucket: {}", r.text());
                return Some(moto);
            }
            if let Some(status) = moto.child.try_wait().unwrap() {
                panic!("moto exited before answering: {status}");
            }
            assert!(
                started.elapsed() < MOTO_START,
                "moto did not answer on {}",
                moto.addr
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The anchor location the tests use.
    fn location(&self) -> String {
        format!("s3://{BUCKET}/anchors")
    }

    /// The AWS settings that point a client at this server.
    fn settings(&self) -> Vec<(&'static str, String)> {
        settings_for(self.addr)
    }

    /// `evident ARGS…` with this server's AWS settings and no other
    /// `AWS_*` variable of the caller's.
    fn evident(&self, args: &[&str]) -> Run {
        let mut cmd = run::command(args);
        for (var, _) in std::env::vars_os() {
            if var.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(var);
            }
        }
        for (k, v) in self.settings() {
            cmd.env(k, v);
        }
        let out = cmd.stdin(Stdio::null()).output().unwrap();
        Run {
            code: out.status.code().unwrap(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// An anchor opened in this process with the same settings.
    fn anchor(&self) -> Anchor {
        let settings = self.settings();
        let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Anchor::open_s3_with(&self.location(), &pairs).unwrap()
    }

    /// The keys under `prefix`, as a plain ListObjectsV2 returns them.
    fn keys(&self, prefix: &str) -> Vec<String> {
        let r = Req::new(
            self.addr,
            "GET",
            &format!("/{BUCKET}?list-type=2&prefix={prefix}"),
        )
        .header("Authorization", FAKE_AUTH)
        .send();
        assert_eq!(r.status, 200, "{}", r.text());
        r.text()
            .split("<Key>")
            .skip(1)
            .map(|s| s.split("</Key>").next().unwrap().to_owned())
            .collect()
    }

    /// An object's bytes, read with a plain GET.
    fn get(&self, key: &str) -> Vec<u8> {
        let r = Req::new(self.addr, "GET", &format!("/{BUCKET}/{key}"))
            .header("Authorization", FAKE_AUTH)
            .send();
        assert_eq!(r.status, 200, "GET {key}: {}", r.text());
        r.body
    }

    /// Overwrites an object with a plain, unconditional PUT.
    fn put(&self, key: &str, bytes: &[u8]) {
        let r = Req::new(self.addr, "PUT", &format!("/{BUCKET}/{key}"))
            .header("Authorization", FAKE_AUTH)
            .body("application/json", bytes.to_vec())
            .send();
        assert_eq!(r.status, 200, "PUT {key}: {}", r.text());
    }
}

/// An S3-compatible server that ignores conditional puts, as some older
/// ones do: a proxy in front of moto that forwards every request without
/// its `If-None-Match` header.
const NO_CONDITIONS_PROXY: &str = r#"
import http.client, sys
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
upstream, port = int(sys.argv[1]), int(sys.argv[2])
class Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def forward(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("if-none-match", "connection")}
        up = http.client.HTTPConnection("127.0.0.1", upstream)
        up.request(self.command, self.path, body=body, headers=headers)
        r = up.getresponse()
        data = r.read()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("connection", "content-length", "transfer-encoding", "server", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        up.close()
    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", port), Forward).serve_forever()
"#;

/// [`NO_CONDITIONS_PROXY`] running, killed on drop.
#[derive(Debug)]
struct Proxy {
    child: Child,
    addr: SocketAddr,
}

impl Proxy {
    fn start(moto: &Moto) -> Proxy {
        let python = std::env::var("EVIDENT_MOTO_PYTHON").unwrap_or_else(|_| "python3".into());
        let port = free_port();
        let child = Command::new(&python)
            .args(["-c", NO_CONDITIONS_PROXY])
            .arg(moto.addr.port().to_string())
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut proxy = Proxy {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let started = Instant::now();
        loop {
            if let Ok(r) = Req::new(proxy.addr, "GET", &format!("/{BUCKET}?list-type=2"))
                .header("Authorization", FAKE_AUTH)
                .try_send()
            {
                assert_eq!(r.status, 200, "through the proxy: {}", r.text());
                return proxy;
            }
            if let Some(status) = proxy.child.try_wait().unwrap() {
                panic!("the proxy exited before answering: {status}");
            }
            assert!(started.elapsed() < MOTO_START, "the proxy did not answer");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that was free a moment ago: bound, released, handed on.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The AWS settings that point a client at the S3 server at `addr`.
fn settings_for(addr: SocketAddr) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ENDPOINT_URL", format!("http://{addr}")),
        ("AWS_ALLOW_HTTP", "true".into()),
    ]
}

fn seal(moto: &Moto, ledger: &Ledger) -> Run {
    moto.evident(&[
        "seal",
        "--data-dir",
        ledger.data_dir(),
        "--log",
        LOG,
        "--anchors",
        &moto.location(),
        "--format",
        "json",
    ])
}

/// `evident verify --anchors s3://… --vkey KEY`: exit status and report.
fn verify_anchored(moto: &Moto, ledger: &Ledger, vkey: &str) -> (i32, Value) {
    let run = moto.evident(&[
        "verify",
        "--data-dir",
        ledger.data_dir(),
        "--log",
        LOG,
        "--anchors",
        &moto.location(),
        "--vkey",
        vkey,
        "--format",
        "json",
    ]);
    assert!(run.code == 0 || run.code == 1, "{run:?}");
    (run.code, run.json())
}

/// `(seal, index, reason)` of the report's anchor violations (the index
/// is the sealed size a rollback or fork is found at; none for a broken
/// seal chain).
fn anchor_violations(report: &Value) -> Vec<(u64, Option<u64>, String)> {
    report["anchors"]["violations"]
        .as_array()
        .unwrap_or_else(|| panic!("no anchors in {report:#}"))
        .iter()
        .map(|v| {
            (
                v["seal"].as_u64().unwrap(),
                v["index"].as_u64(),
                v["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn append_more(ledger: &Ledger, range: std::ops::Range<u64>) {
    let lines: Vec<String> = range.map(input_line).collect();
    let out = ledger.append(&lines.join("\n"), Some(20));
    assert_eq!(out.code, 0, "{out:?}");
}

fn seal_key(seq: u64) -> String {
    format!("{ORIGIN_KEYS}/seal-{seq:012}.json")
}

#[test]
fn seals_in_s3_verify_and_the_rollback_drill() {
    let Some(moto) = Moto::start() else { return };
    let ledger = Ledger::new();
    let tmp = tempfile::tempdir().unwrap();
    let old = tmp.path().join("monday.db");

    // Monday: a backup, and the day's seal at size 100.
    let b = run::evident(&[
        "backup",
        "--data-dir",
        ledger.data_dir(),
        "--out",
        old.to_str().unwrap(),
    ]);
    assert_eq!(b.code, 0, "{b:?}");
    let s = seal(&moto, &ledger);
    assert_eq!(s.code, 0, "{s:?}");
    let sealed = &s.json()["sealed"][0];
    assert_eq!(
        (sealed["seq"].as_u64(), sealed["size"].as_u64()),
        (Some(0), Some(100))
    );
    assert_eq!(
        sealed["object"],
        format!("s3://{BUCKET}/{}", seal_key(0)).as_str()
    );

    // Tuesday: 20 more entries and the next seal, linked to Monday's.
    append_more(&ledger, 100..120);
    let s = seal(&moto, &ledger);
    assert_eq!(s.code, 0, "{s:?}");
    assert_eq!(s.json()["sealed"][0]["seq"], 1);
    assert_eq!(moto.keys("anchors/"), [seal_key(0), seal_key(1)]);
    let records: Vec<Value> = [0, 1]
        .iter()
        .map(|&n| serde_json::from_slice(&moto.get(&seal_key(n))).unwrap())
        .collect();
    assert_eq!(records[0]["prev"], Value::Null);
    assert!(records[1]["prev"].is_string(), "{:#}", records[1]);
    assert!(
        records[1]["checkpoint"]
            .as_str()
            .unwrap()
            .starts_with("evident.local/acme/audit\n120\n")
    );

    let (code, report) = verify_anchored(&moto, &ledger, &ledger.vkey);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["anchors"]["location"], moto.location().as_str());
    assert_eq!(report["anchors"]["seals_checked"], 2);
    assert_eq!(report["anchors"]["last_sealed_size"], 120);

    // The Monday backup, checked against the bucket, is a rollback.
    let checked = moto.evident(&[
        "restore-check",
        old.to_str().unwrap(),
        "--vkey",
        &ledger.vkey,
        "--anchors",
        &moto.location(),
        "--format",
        "json",
    ]);
    assert_eq!(checked.code, 1, "{checked:?}");
    let r = checked.json();
    let audit = r["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["origin"] == "evident.local/acme/audit")
        .unwrap();
    assert_eq!(
        anchor_violations(audit),
        [(1, Some(100), "anchor.rollback".to_owned())]
    );

    // Promoted anyway: the live log disagrees with the bucket, and is
    // never sealed over.
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", ledger.db_path().display()));
    }
    std::fs::copy(&old, ledger.db_path()).unwrap();
    assert_eq!(ledger.verify().0, 0);
    let (code, report) = verify_anchored(&moto, &ledger, &ledger.vkey);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(
        anchor_violations(&report),
        [(1, Some(100), "anchor.rollback".to_owned())]
    );
    assert_eq!(report["first_break"]["reason"], "anchor.rollback");
    let s = seal(&moto, &ledger);
    assert_eq!(s.code, 1, "{s:?}");
    assert_eq!(s.json()["error"]["code"], "anchor.inconsistent");
    assert_eq!(moto.keys("anchors/").len(), 2);
}

#[test]
fn a_seal_object_overwritten_in_the_bucket_breaks_the_chain() {
    let Some(moto) = Moto::start() else { return };
    let ledger = Ledger::new();
    assert_eq!(seal(&moto, &ledger).code, 0);
    append_more(&ledger, 100..120);
    assert_eq!(seal(&moto, &ledger).code, 0);

    // Back-dating seal 0 in place changes its bytes: seal 1 no longer
    // links it.
    let mut rec: Value = serde_json::from_slice(&moto.get(&seal_key(0))).unwrap();
    rec["sealed_at"] = Value::from("2020-01-01T00:00:00.000000Z");
    moto.put(&seal_key(0), format!("{rec}\n").as_bytes());
    let (code, report) = verify_anchored(&moto, &ledger, &ledger.vkey);
    assert_eq!(code, 1, "{report:#}");
    let got: Vec<(u64, String)> = anchor_violations(&report)
        .into_iter()
        .map(|(seal, _, reason)| (seal, reason))
        .collect();
    assert_eq!(got, [(1, "anchor.chain_broken".to_owned())]);

    // A forged seal 1: a checkpoint signed by another key.
    let other = tempfile::tempdir().unwrap();
    let init = run::evident(&[
        "init",
        "--data-dir",
        other.path().join("d").to_str().unwrap(),
        "--format",
        "json",
    ]);
    let foreign = init.json()["vkey"].as_str().unwrap().to_owned();
    let (code, report) = verify_anchored(&moto, &ledger, &foreign);
    assert_eq!(code, 1);
    let reasons: Vec<String> = anchor_violations(&report)
        .into_iter()
        .map(|(_, _, r)| r)
        .collect();
    assert!(
        reasons.contains(&"anchor.seal_bad_signature".to_owned()),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .all(|r| r == "anchor.seal_bad_signature" || r == "anchor.chain_broken"),
        "{reasons:?}"
    );
}

#[test]
fn racing_sealers_one_wins_the_other_gets_a_conflict() {
    let Some(moto) = Moto::start() else { return };
    let origin = "evident.local/acme/audit";
    let (a, b) = (moto.anchor(), moto.anchor());
    assert!(a.seals(origin).unwrap().is_empty());

    // One after the other: the second is refused and the first's bytes stay.
    a.publish(origin, 0, b"first\n").unwrap();
    let e = b.publish(origin, 0, b"second\n").unwrap_err();
    assert_eq!(e.code(), "anchor.conflict", "{e}");
    assert_eq!(moto.get(&seal_key(0)), b"first\n");

    // At the same time: exactly one wins.
    let results: Vec<Result<String, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = [&a, &b]
            .into_iter()
            .enumerate()
            .map(|(i, anchor)| {
                s.spawn(move || {
                    anchor
                        .publish(origin, 1, format!("racer {i}\n").as_bytes())
                        .map_err(|e| e.code().to_owned())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wins: Vec<usize> = (0..2).filter(|&i| results[i].is_ok()).collect();
    assert_eq!(wins.len(), 1, "{results:?}");
    let loser = 1 - wins[0];
    assert_eq!(results[loser], Err("anchor.conflict".to_owned()));
    assert_eq!(
        moto.get(&seal_key(1)),
        format!("racer {}\n", wins[0]).into_bytes()
    );
    assert_eq!(
        a.seals(origin).unwrap(),
        [
            b"first\n".to_vec(),
            format!("racer {}\n", wins[0]).into_bytes()
        ]
    );

    // A client told the store has no conditional puts refuses to seal.
    let settings = moto.settings();
    let mut pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    pairs.push(("AWS_CONDITIONAL_PUT", "disabled"));
    let plain = Anchor::open_s3_with(&moto.location(), &pairs).unwrap();
    let e = plain.publish(origin, 2, b"x").unwrap_err();
    assert_eq!(e.code(), "anchor.no_conditional_put", "{e}");
    assert_eq!(moto.keys("anchors/").len(), 2);
}

#[test]
fn a_store_that_ignores_conditional_puts_is_refused() {
    let Some(moto) = Moto::start() else { return };
    let proxy = Proxy::start(&moto);
    let origin = "evident.local/acme/audit";
    let settings = settings_for(proxy.addr);
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let anchor = Anchor::open_s3_with(&moto.location(), &pairs).unwrap();

    // The put went through (the store took it unconditionally), and the
    // anchor says the store cannot be trusted to keep it.
    let e = anchor.publish(origin, 0, b"seal 0\n").unwrap_err();
    assert_eq!(e.code(), "anchor.no_conditional_put", "{e}");
    assert_eq!(moto.get(&seal_key(0)), b"seal 0\n");

    // Straight to moto, which honours the condition, the same anchor
    // code refuses a second seal 0: it is the store that made the difference.
    let e = moto.anchor().publish(origin, 0, b"other\n").unwrap_err();
    assert_eq!(e.code(), "anchor.conflict", "{e}");

    // And through the CLI: `evident seal` exits with the code.
    let ledger = Ledger::new();
    let mut cmd = run::command(&[
        "seal",
        "--data-dir",
        ledger.data_dir(),
        "--log",
        LOG,
        "--anchors",
        &format!("s3://{BUCKET}/cli"),
        "--format",
        "json",
    ]);
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(var);
        }
    }
    for (k, v) in &settings {
        cmd.env(k, v);
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        answer["error"]["code"], "anchor.no_conditional_put",
        "{answer}"
    );
}

#[test]
fn the_daily_sealer_publishes_to_the_bucket() {
    let Some(moto) = Moto::start() else { return };
    let ledger = Ledger::new();
    let at = server::next_minute();
    let location = moto.location();
    let settings = moto.settings();
    let mut env: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("EVIDENT_SEAL_ANCHORS", &location));
    env.push(("EVIDENT_SEAL_TIME", &at));
    let s = server::Server::start(Path::new(ledger.data_dir()), &env);
    server::eventually(Duration::from_secs(180), "the sealer ran", || {
        let lines = s.log_lines();
        lines
            .iter()
            .any(|l| l.contains(r#""event":"sealed""#) && l.contains("acme/audit"))
            .then_some(())
    });
    drop(s);
    assert!(
        moto.keys("anchors/").contains(&seal_key(0)),
        "{:?}",
        moto.keys("anchors/")
    );
    let rec: Value = serde_json::from_slice(&moto.get(&seal_key(0))).unwrap();
    assert!(
        rec["checkpoint"]
            .as_str()
            .unwrap()
            .starts_with("evident.local/acme/audit\n100\n"),
        "{rec:#}"
    );
    let (code, report) = verify_anchored(&moto, &ledger, &ledger.vkey);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["anchors"]["seals_checked"], 1);
}
