//! `evident bench` against a real `evident serve`: every request it counts
//! as acknowledged is in the log afterwards, batches count their entries,
//! and a refused key is reported by status and code.
#![allow(clippy::unwrap_used)]

mod run;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use run::{command, evident};
use serde_json::Value;

/// A running `evident serve` on a fresh data directory, stopped with
/// SIGTERM when dropped.
struct Server {
    child: Child,
    addr: String,
    dir: Option<tempfile::TempDir>,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut child = command(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .env("EVIDENT_RATE_LIMIT_PER_SECOND", "0")
        .env("EVIDENT_VERIFY_INTERVAL_SECS", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("the server ended before its start-up line")
                .unwrap();
            let v: Value = serde_json::from_str(&line).unwrap();
            if let Some(l) = v["fields"]["listen"].as_str() {
                break l.to_owned();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            addr,
            dir: Some(dir),
        }
    }

    fn data(&self) -> std::path::PathBuf {
        self.dir.as_ref().unwrap().path().join("data")
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// POST `body` to `path` with the admin key; the answer's JSON.
    fn admin(&self, path: &str, body: &str) -> Value {
        let key = std::fs::read_to_string(self.data().join("admin.key")).unwrap();
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            key.trim(),
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        let (head, json) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 2"), "{answer}");
        serde_json::from_str(json).unwrap()
    }

    fn append_key(&self) -> String {
        self.admin("/v1/admin/tenants", r#"{"name":"bench"}"#);
        let k = self.admin(
            "/v1/admin/api-keys",
            r#"{"tenant":"bench","scopes":["append"]}"#,
        );
        k["api_key"].as_str().unwrap().to_owned()
    }

    /// SIGTERM, then wait: the server drains and exits 0.
    fn stop(mut self) -> tempfile::TempDir {
        let pid = self.child.id().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
        let code = self.child.wait().unwrap();
        assert!(code.success(), "server exited with {code}");
        self.dir.take().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bench(url: &str, key: &str, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["bench", "--url", url, "--api-key", key, "--format", "json"];
    all.extend_from_slice(args);
    let r = evident(&all);
    let v = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {r:?}"));
    (r.code, v)
}

fn log_size(data: &Path, log: &str) -> u64 {
    let r = evident(&[
        "verify",
        "--data-dir",
        data.to_str().unwrap(),
        "--log",
        log,
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["valid"], true, "{v}");
    v["total_count"].as_u64().unwrap()
}

#[test]
fn acknowledged_entries_are_in_the_log() {
    let server = Server::start();
    let key = server.append_key();
    let url = server.url();

    let (code, single) = bench(
        &url,
        &key,
        &["--log", "one", "--requests", "60", "--connections", "4"],
    );
    assert_eq!(code, 0, "{single}");
    assert_eq!(single["requests"]["sent"], 60, "{single}");
    assert_eq!(single["requests"]["acknowledged"], 60, "{single}");
    assert_eq!(single["requests"]["duplicates"], 0, "{single}");
    assert_eq!(single["entries"]["acknowledged"], 60);
    assert_eq!(single["latency_ms"]["samples"], 60);
    assert_eq!(single["latency_ms"]["until"], "acknowledgement");
    let lat = &single["latency_ms"];
    assert!(
        lat["p50"].as_f64() <= lat["p99"].as_f64() && lat["p99"].as_f64() <= lat["max"].as_f64()
    );

    let (code, batch) = bench(
        &url,
        &key,
        &[
            "--log",
            "many",
            "--mode",
            "batch",
            "--batch-size",
            "25",
            "--requests",
            "4",
            "--connections",
            "2",
            "--wait-receipt",
        ],
    );
    assert_eq!(code, 0, "{batch}");
    assert_eq!(batch["entries"]["acknowledged"], 100, "{batch}");
    assert_eq!(batch["latency_ms"]["until"], "receipt");

    let (code, refused) = bench(
        &url,
        "evk_not_a_key",
        &["--requests", "3", "--connections", "1"],
    );
    assert_eq!(code, 1, "{refused}");
    assert_eq!(refused["requests"]["acknowledged"], 0);
    assert_eq!(refused["errors"]["401 auth.invalid"], 3, "{refused}");
    assert_eq!(refused["error"]["code"], "bench.failed", "{refused}");

    let dir = server.stop();
    let data = dir.path().join("data");
    assert_eq!(log_size(&data, "bench/one"), 60);
    assert_eq!(log_size(&data, "bench/many"), 100);
}
