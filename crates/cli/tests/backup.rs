//! `evident backup` and `evident restore-check` on real data directories:
//! a backup taken while a server appends is a consistent copy that
//! verifies and restores; a tampered backup is reported with the exact
//! break; what is not an Evident database cannot be verified (exit 2).
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod run;
mod server;
#[allow(dead_code)]
mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use run::evident;
use serde_json::{Value, json};
use server::Server;
use support::{ENTRY_TRIGGERS, Ledger, assert_broken, drop_triggers, edit_body};

fn backup(data: &str, out: &Path) -> run::Run {
    evident(&[
        "backup",
        "--data-dir",
        data,
        "--out",
        out.to_str().unwrap(),
        "--format",
        "json",
    ])
}

fn restore_check(file: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["restore-check", file.to_str().unwrap(), "--format", "json"];
    args.extend(extra);
    let r = evident(&args);
    (
        r.code,
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}")),
    )
}

#[test]
fn backup_while_a_server_appends_verifies_and_restores() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let s = Server::start(&data, &[]);
    s.tenant("acme");
    let k = s.key("acme", &["append", "read"]);

    // Appends go on, batch after batch, for the whole backup.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        let (addr, token) = (s.addr, k.token.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Acquire) || n < 200 {
                let entries: Vec<Value> = (0..50)
                    .map(|i| json!({"kind": "user.login", "data": {"n": n + i, "pad": "x".repeat(500)}}))
                    .collect();
                let r = server::Req::new(addr, "POST", "/v1/logs/audit/entries")
                    .bearer(&token)
                    .json(&json!({"entries": entries}))
                    .send();
                assert_eq!(r.status, 201, "{}", r.text());
                n += 50;
            }
            n
        })
    };
    server::eventually(std::time::Duration::from_secs(60), "some entries", || {
        (s.size(&k.token, "audit") >= 100).then_some(())
    });
    let out = tmp.path().join("nightly.db");
    let b = backup(data.to_str().unwrap(), &out);
    stop.store(true, Ordering::Release);
    let appended = writer.join().unwrap();
    assert_eq!(b.code, 0, "{b:?}");
    let summary = b.json();
    assert_eq!(summary["integrity"], "ok", "{summary}");
    assert_eq!(summary["file"], out.to_str().unwrap());
    assert_eq!(summary["bytes"], std::fs::metadata(&out).unwrap().len());
    let sizes: Vec<(String, u64)> = summary["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["log"].as_str().unwrap().to_owned(),
                l["size"].as_u64().unwrap(),
            )
        })
        .collect();
    let audit = sizes.iter().find(|(l, _)| l == "acme/audit").unwrap().1;
    assert!(audit >= 100 && audit <= appended, "{audit} of {appended}");
    assert_eq!(audit % 50, 0, "whole batches only: {audit}");

    // The backup verifies in full against the key held apart.
    let (code, report) = restore_check(&out, &["--vkey", &s.vkey]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["valid"], true);
    assert_eq!(report["writes_paused"], false);
    let audit_report = report["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["origin"] == "evident.local/acme/audit")
        .unwrap();
    assert_eq!(audit_report["total_count"], audit, "{audit_report:#}");

    // Restored by copying it into place, it is served as it was.
    drop(s);
    let restored = tmp.path().join("restored");
    std::fs::create_dir(&restored).unwrap();
    std::fs::copy(&out, restored.join("evident.db")).unwrap();
    for keep in ["signing-key.pem", "admin.key"] {
        std::fs::copy(data.join(keep), restored.join(keep)).unwrap();
    }
    let v = evident(&[
        "verify",
        "--all",
        "--data-dir",
        restored.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(v.code, 0, "{v:?}");
    let s2 = Server::start(&restored, &[]);
    let k2 = s2.key("acme", &["append", "read"]);
    assert_eq!(s2.size(&k2.token, "audit"), audit);

    // A backup never overwrites.
    let again = backup(restored.to_str().unwrap(), &out);
    assert_eq!(again.code, 1, "{again:?}");
    assert_eq!(again.json()["error"]["code"], "backup.exists");
    assert_eq!(
        std::fs::metadata(&out).unwrap().len(),
        summary["bytes"].as_u64().unwrap()
    );
}

#[test]
fn restore_check_reports_a_tampered_backup() {
    let ledger = Ledger::new();
    let out = ledger.db_path().with_file_name("copy.db");
    let b = backup(ledger.data_dir(), &out);
    assert_eq!(b.code, 0, "{b:?}");
    let (code, report) = restore_check(&out, &["--vkey", &ledger.vkey]);
    assert_eq!((code, &report["valid"]), (0, &json!(true)), "{report:#}");

    // The attacker edits the backup file, not the live database.
    let db = rusqlite::Connection::open(&out).unwrap();
    drop_triggers(&db, &ENTRY_TRIGGERS);
    edit_body(&db, 37, |b| b.outcome = Some("failure".into()));
    drop(db);
    let (code, report) = restore_check(&out, &["--vkey", &ledger.vkey]);
    assert_eq!(report["valid"], false, "{report:#}");
    assert_broken(
        code,
        &report["logs"][0],
        37,
        "body.digest_mismatch",
        "chain_breaks",
    );
    let text = evident(&[
        "restore-check",
        out.to_str().unwrap(),
        "--vkey",
        &ledger.vkey,
    ]);
    assert_eq!(text.code, 1);
    assert!(text.stdout.contains("INVALID — do not promote"), "{text:?}");
    // The live database was never touched.
    assert_eq!(ledger.verify().0, 0);
}

#[test]
fn restore_check_cannot_verify_what_is_not_an_evident_database() {
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk.db");
    std::fs::write(&junk, b"not a database at all, just some bytes").unwrap();
    let r = evident(&["restore-check", junk.to_str().unwrap(), "--format", "json"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(r.json()["error"]["code"], "db.unavailable", "{r:?}");
    let missing = tmp.path().join("missing.db");
    let r = evident(&[
        "restore-check",
        missing.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(r.json()["error"]["code"], "io.failed");
    // An empty SQLite database is not an initialised Evident one.
    rusqlite::Connection::open(tmp.path().join("empty.db"))
        .unwrap()
        .execute_batch("CREATE TABLE x (a)")
        .unwrap();
    let r = evident(&[
        "restore-check",
        tmp.path().join("empty.db").to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(
        r.json()["error"]["code"],
        "migration.head_mismatch",
        "{r:?}"
    );
}
