//! Seals and anchors with the real binary: `evident seal` publishes the
//! signed checkpoint to a directory anchor, `verify --anchors` and
//! `restore-check --anchors` check a log against every seal, and the
//! drill: an old backup, internally consistent, restored into place, is
//! caught as a rollback by the anchors alone; a cut tail likewise; a
//! tampered seal breaks the seal chain.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod run;
mod server;
#[allow(dead_code)]
mod support;

use std::path::Path;
use std::time::Duration;

use run::evident;
use serde_json::Value;
use support::{CHECKPOINT_TRIGGERS, ENTRY_TRIGGERS, LOG, Ledger, drop_triggers, input_line};

fn seal(ledger: &Ledger, anchors: &Path) -> run::Run {
    evident(&[
        "seal",
        "--data-dir",
        ledger.data_dir(),
        "--log",
        LOG,
        "--anchors",
        anchors.to_str().unwrap(),
        "--format",
        "json",
    ])
}

fn verify_anchored(ledger: &Ledger, anchors: &Path) -> (i32, Value) {
    ledger.verify_with(&[
        "--anchors",
        anchors.to_str().unwrap(),
        "--vkey",
        &ledger.vkey,
    ])
}

/// `(seal, index, reason)` of the report's anchor violations.
fn anchor_violations(report: &Value) -> Vec<(u64, u64, String)> {
    report["anchors"]["violations"]
        .as_array()
        .unwrap_or_else(|| panic!("no anchors in {report:#}"))
        .iter()
        .map(|v| {
            (
                v["seal"].as_u64().unwrap(),
                v["index"].as_u64().unwrap(),
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

fn seal_files(anchors: &Path) -> Vec<String> {
    let dir = anchors.join("evident.local/acme/audit");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_rollback_drill_an_old_backup_is_caught_by_the_anchors() {
    let ledger = Ledger::new();
    let tmp = tempfile::tempdir().unwrap();
    let anchors = tmp.path().join("anchors");
    let old = tmp.path().join("monday.db");

    // Monday: a backup, and the day's seal at size 100.
    let b = evident(&[
        "backup",
        "--data-dir",
        ledger.data_dir(),
        "--out",
        old.to_str().unwrap(),
    ]);
    assert_eq!(b.code, 0, "{b:?}");
    let s = seal(&ledger, &anchors);
    assert_eq!(s.code, 0, "{s:?}");
    let sealed = &s.json()["sealed"][0];
    assert_eq!(
        (sealed["seq"].as_u64(), sealed["size"].as_u64()),
        (Some(0), Some(100))
    );

    // Tuesday: 20 more entries and the next seal, linked to Monday's.
    append_more(&ledger, 100..120);
    let s = seal(&ledger, &anchors);
    assert_eq!(s.code, 0, "{s:?}");
    assert_eq!(s.json()["sealed"][0]["seq"], 1);
    assert_eq!(
        seal_files(&anchors),
        ["seal-000000000000.json", "seal-000000000001.json"]
    );
    let records: Vec<Value> = seal_files(&anchors)
        .iter()
        .map(|n| {
            serde_json::from_slice(
                &std::fs::read(anchors.join("evident.local/acme/audit").join(n)).unwrap(),
            )
            .unwrap()
        })
        .collect();
    assert_eq!(records[0]["prev"], Value::Null);
    assert_eq!(records[1]["format"], "evident-seal/v1");
    assert!(
        records[1]["checkpoint"]
            .as_str()
            .unwrap()
            .starts_with("evident.local/acme/audit\n120\n")
    );

    let (code, report) = verify_anchored(&ledger, &anchors);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["anchors"]["seals_checked"], 2);
    assert_eq!(report["anchors"]["last_sealed_size"], 120);

    // The Monday backup is internally consistent: without anchors it passes.
    let plain = evident(&[
        "restore-check",
        old.to_str().unwrap(),
        "--vkey",
        &ledger.vkey,
        "--format",
        "json",
    ]);
    assert_eq!(plain.code, 0, "{plain:?}");
    // With them, it is a rollback past Tuesday's seal.
    let checked = evident(&[
        "restore-check",
        old.to_str().unwrap(),
        "--vkey",
        &ledger.vkey,
        "--anchors",
        anchors.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(checked.code, 1, "{checked:?}");
    let r = checked.json();
    assert_eq!(r["valid"], false);
    let audit = r["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["origin"] == "evident.local/acme/audit")
        .unwrap();
    assert_eq!(
        anchor_violations(audit),
        [(1, 100, "anchor.rollback".to_owned())]
    );
    assert_eq!(audit["first_break"]["reason"], "anchor.rollback");
    assert_eq!(audit["violation_count"], 1);

    // The operator promotes it anyway: copied into place, the live data
    // directory now verifies on its own but not against the anchors.
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", ledger.db_path().display()));
    }
    std::fs::copy(&old, ledger.db_path()).unwrap();
    assert_eq!(ledger.verify().0, 0);
    let (code, report) = verify_anchored(&ledger, &anchors);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(
        anchor_violations(&report),
        [(1, 100, "anchor.rollback".to_owned())]
    );
    let text = evident(&[
        "verify",
        "--data-dir",
        ledger.data_dir(),
        "--log",
        LOG,
        "--anchors",
        anchors.to_str().unwrap(),
    ]);
    assert_eq!(text.code, 1);
    assert!(
        text.stdout.contains("INCONSISTENT with the seals"),
        "{text:?}"
    );
    // And it is never sealed over.
    let s = seal(&ledger, &anchors);
    assert_eq!(s.code, 1, "{s:?}");
    assert_eq!(s.json()["error"]["code"], "anchor.inconsistent");
    assert_eq!(seal_files(&anchors).len(), 2);
}

#[test]
fn a_cut_tail_is_reported_as_rollback() {
    let ledger = Ledger::new();
    let tmp = tempfile::tempdir().unwrap();
    let anchors = tmp.path().join("anchors");
    assert_eq!(seal(&ledger, &anchors).code, 0);

    // The attacker cuts the last batch and its checkpoint: what is left is
    // a consistent log of 80 entries.
    let db = ledger.db();
    drop_triggers(&db, &ENTRY_TRIGGERS);
    drop_triggers(&db, &CHECKPOINT_TRIGGERS);
    db.execute_batch(
        "DELETE FROM entries WHERE idx >= 80; DELETE FROM checkpoints WHERE size > 80;",
    )
    .unwrap();
    drop(db);
    let (code, report) = ledger.verify();
    assert_eq!(
        (code, &report["total_count"]),
        (0, &Value::from(80)),
        "{report:#}"
    );
    let (code, report) = verify_anchored(&ledger, &anchors);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(
        anchor_violations(&report),
        [(0, 80, "anchor.rollback".to_owned())]
    );
}

#[test]
fn a_tampered_or_foreign_seal_breaks_the_chain() {
    let ledger = Ledger::new();
    let tmp = tempfile::tempdir().unwrap();
    let anchors = tmp.path().join("anchors");
    assert_eq!(seal(&ledger, &anchors).code, 0);
    append_more(&ledger, 100..120);
    assert_eq!(seal(&ledger, &anchors).code, 0);
    let first = anchors.join("evident.local/acme/audit/seal-000000000000.json");

    // Back-dating seal 0 changes its bytes: seal 1 no longer links it.
    let mut rec: Value = serde_json::from_slice(&std::fs::read(&first).unwrap()).unwrap();
    rec["sealed_at"] = Value::from("2020-01-01T00:00:00.000000Z");
    std::fs::write(&first, format!("{rec}\n")).unwrap();
    let (code, report) = verify_anchored(&ledger, &anchors);
    assert_eq!(code, 1, "{report:#}");
    let got: Vec<(u64, String)> = report["anchors"]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["seal"].as_u64().unwrap(),
                v["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(got, [(1, "anchor.chain_broken".to_owned())]);

    // Seals checked against a key that did not sign them.
    let other = tempfile::tempdir().unwrap();
    let init = evident(&[
        "init",
        "--data-dir",
        other.path().join("d").to_str().unwrap(),
        "--format",
        "json",
    ]);
    let foreign = init.json()["vkey"].as_str().unwrap().to_owned();
    let (code, report) =
        ledger.verify_with(&["--anchors", anchors.to_str().unwrap(), "--vkey", &foreign]);
    assert_eq!(code, 1);
    let reasons: Vec<&str> = report["anchors"]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons
            .iter()
            .all(|r| *r == "anchor.seal_bad_signature" || *r == "anchor.chain_broken"),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"anchor.seal_bad_signature"),
        "{reasons:?}"
    );

    // An anchor that is not one.
    let r = evident(&[
        "seal",
        "--data-dir",
        ledger.data_dir(),
        "--all",
        "--anchors",
        "memory:",
        "--format",
        "json",
    ]);
    assert_eq!(
        (r.code, r.json()["error"]["code"].as_str()),
        (1, Some("anchor.bad_location"))
    );
    let r = evident(&[
        "seal",
        "--data-dir",
        ledger.data_dir(),
        "--all",
        "--anchors",
        "gs://bucket/x",
        "--format",
        "json",
    ]);
    assert_eq!(
        (r.code, r.json()["error"]["code"].as_str()),
        (1, Some("anchor.unsupported"))
    );
}

#[test]
fn the_daily_sealer_seals_and_reports_a_rollback() {
    let ledger = Ledger::new();
    let tmp = tempfile::tempdir().unwrap();
    let anchors = tmp.path().join("anchors");
    let old = tmp.path().join("old.db");
    let b = evident(&[
        "backup",
        "--data-dir",
        ledger.data_dir(),
        "--out",
        old.to_str().unwrap(),
    ]);
    assert_eq!(b.code, 0, "{b:?}");
    append_more(&ledger, 100..120);
    assert_eq!(seal(&ledger, &anchors).code, 0);
    std::fs::copy(&old, ledger.db_path()).unwrap();

    let at = server::next_minute();
    let s = server::Server::start(
        Path::new(ledger.data_dir()),
        &[
            ("EVIDENT_SEAL_ANCHORS", anchors.to_str().unwrap()),
            ("EVIDENT_SEAL_TIME", at.as_str()),
        ],
    );
    let system_seal = anchors.join("evident.local/_system/events/seal-000000000000.json");
    server::eventually(Duration::from_secs(180), "the sealer ran", || {
        let lines = s.log_lines();
        (system_seal.exists() && lines.iter().any(|l| l.contains("rollback_detected")))
            .then_some(())
    });
    // The rolled-back log was not sealed over; the system log was sealed.
    assert_eq!(seal_files(&anchors).len(), 1);
    let rec: Value = serde_json::from_slice(&std::fs::read(&system_seal).unwrap()).unwrap();
    assert_eq!(rec["origin"], "evident.local/_system/events");
    let events = server::eventually(Duration::from_secs(30), "the system event", || {
        let e = s.entries(&s.admin, "events");
        e.iter()
            .find(|e| e["envelope"]["kind"] == "evident.seal.rollback_detected")
            .cloned()
    });
    assert_eq!(events["body"]["resource"], "acme/audit");
    assert_eq!(
        events["body"]["data"]["violations"][0]["reason"], "anchor.rollback",
        "{events}"
    );
}
