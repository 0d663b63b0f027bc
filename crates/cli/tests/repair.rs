#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
//! `evident repair` with the real binary: restore tampered rows from an
//! export or a backup file, proven by the signed checkpoints; refuse a
//! copy that does not prove out and change nothing.

mod run;
#[allow(dead_code)]
mod support;

use std::path::{Path, PathBuf};

use rusqlite::params;
use support::{
    ENTRIES, ENTRY_TRIGGERS, LOG, Ledger, assert_broken, drop_triggers, dump, edit_body,
    edit_body_and_digest, envelope_bytes, evident, salt_and_body, write_envelope,
};

fn export(ledger: &Ledger, out: &Path) -> PathBuf {
    let dir = out.join("export");
    let run = evident(&[
        "export",
        "--data-dir",
        ledger.data_dir(),
        "--log",
        LOG,
        "--out",
        dir.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    dir
}

/// A consistent copy of the database, as a backup tool makes it.
fn backup(ledger: &Ledger, out: &Path) -> PathBuf {
    let file = out.join("backup.db");
    ledger
        .db()
        .execute("VACUUM INTO ?1", params![file.to_str().unwrap()])
        .unwrap();
    file
}

fn repair(ledger: &Ledger, from: &Path, yes: bool) -> support::Run {
    let mut args = vec![
        "repair",
        "--data-dir",
        ledger.data_dir(),
        "--log",
        LOG,
        "--from",
        from.to_str().unwrap(),
        "--format",
        "json",
    ];
    if yes {
        args.push("--yes");
    }
    evident(&args)
}

/// The two tamper cases: entry 30's body edited; entry 60's envelope
/// edited (actor changed, digest and leaf hash recomputed). Returns the
/// rows as tampered.
fn tamper(ledger: &Ledger) -> Vec<(Vec<u8>, Vec<u8>)> {
    let db = ledger.db();
    drop_triggers(&db, &ENTRY_TRIGGERS);
    edit_body(&db, 30, |b| b.actor = Some("mallory".into()));
    let env = edit_body_and_digest(&db, 60, |b| b.outcome = Some("denied".into()));
    write_envelope(&db, 60, &env.to_bytes(), true);
    let (code, r) = ledger.verify();
    assert_broken(code, &r, 30, "body.digest_mismatch", "chain_breaks");
    [30, 60]
        .iter()
        .map(|&i| (envelope_bytes(&db, i), salt_and_body(&db, i).1))
        .collect()
}

fn events(ledger: &Ledger) -> serde_json::Value {
    let run = evident(&[
        "verify",
        "--data-dir",
        ledger.data_dir(),
        "--log",
        "_system/events",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    run.json()
}

fn quarantine(ledger: &Ledger) -> Vec<(u64, Vec<u8>, Option<Vec<u8>>)> {
    let db = ledger.db();
    let mut stmt = db
        .prepare("SELECT idx, envelope, body FROM quarantine ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn check_repaired(ledger: &Ledger, out: &support::Run, tampered: &[(Vec<u8>, Vec<u8>)]) {
    assert_eq!(out.code, 0, "{out:?}");
    let out = out.json();
    assert_eq!(out["restored"], serde_json::json!([30, 60]));
    assert_eq!(out["quarantined"], 2);
    assert_eq!(out["repair_index"], ENTRIES);
    let (code, r) = ledger.verify();
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["total_count"], ENTRIES + 1);
    // The tampered rows are kept, byte for byte.
    let q = quarantine(ledger);
    assert_eq!(q.len(), 2);
    assert_eq!((q[0].0, &q[0].2), (30, &Some(tampered[0].1.clone())));
    assert_eq!((q[1].0, &q[1].1), (60, &tampered[1].0));
    // The repair is a system event too.
    assert_eq!(events(ledger)["total_count"], 1);
}

#[test]
fn repair_from_an_export_restores_edited_body_and_envelope() {
    let ledger = Ledger::new();
    let tmp = tempfile::tempdir().unwrap();
    let copy = export(&ledger, tmp.path());
    let tampered = tamper(&ledger);
    let out = repair(&ledger, &copy, true);
    check_repaired(&ledger, &out, &tampered);
    // Once repaired there is nothing left to do.
    let again = repair(&ledger, &copy, true);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(again.json()["restored"], serde_json::json!([]));
    assert_eq!(again.json()["guards_restored"], serde_json::json!([]));
}

#[test]
fn repair_puts_back_triggers_dropped_even_with_no_row_to_restore() {
    let ledger = Ledger::new();
    let tmp = tempfile::tempdir().unwrap();
    let copy = export(&ledger, tmp.path());
    let db = ledger.db();
    drop_triggers(&db, &ENTRY_TRIGGERS);
    let (code, r) = ledger.verify();
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(
        r["append_only_guards"],
        serde_json::json!({"missing": ["entries_no_delete", "entries_no_update"], "altered": [], "unexpected": []})
    );
    let text = ledger.verify_text();
    assert!(
        text.stdout
            .contains("WARNING: the database's append-only triggers"),
        "{text:?}"
    );
    let out = repair(&ledger, &copy, true);
    assert_eq!(out.code, 0, "{out:?}");
    let out = out.json();
    assert_eq!(out["restored"], serde_json::json!([]));
    assert_eq!(
        out["guards_restored"],
        serde_json::json!(["entries_no_delete", "entries_no_update"])
    );
    assert!(ledger.verify().1.get("append_only_guards").is_none());
    assert!(db.execute("DELETE FROM entries WHERE idx = 1", []).is_err());
}

#[test]
fn repair_from_a_backup_file_restores_edited_and_deleted_rows() {
    let ledger = Ledger::new();
    let tmp = tempfile::tempdir().unwrap();
    let copy = backup(&ledger, tmp.path());
    let tampered = tamper(&ledger);
    let out = repair(&ledger, &copy, true);
    check_repaired(&ledger, &out, &tampered);

    // The repair put the triggers back: a DELETE is refused until the
    // attacker drops them again.
    let db = ledger.db();
    assert!(
        db.execute("DELETE FROM entries WHERE idx = 45", [])
            .is_err()
    );
    // A deleted row comes back too.
    drop_triggers(&db, &ENTRY_TRIGGERS);
    db.execute("DELETE FROM entries WHERE idx = 45", [])
        .unwrap();
    let (code, r) = ledger.verify();
    assert_broken(code, &r, 45, "gap.missing_entries", "gaps");
    let out = repair(&ledger, &copy, true);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["inserted"], 1);
    assert_eq!(
        out.json()["guards_restored"],
        serde_json::json!(["entries_no_delete", "entries_no_update"])
    );
    assert_eq!(ledger.verify().0, 0);
}

#[test]
fn a_tampered_source_changes_nothing_and_says_why() {
    let ledger = Ledger::new();
    let tmp = tempfile::tempdir().unwrap();
    let copy = backup(&ledger, tmp.path());
    tamper(&ledger);
    // The copy is tampered too, at entry 60, differently.
    let bad = rusqlite::Connection::open(&copy).unwrap();
    drop_triggers(&bad, &ENTRY_TRIGGERS);
    let env = edit_body_and_digest(&bad, 60, |b| b.outcome = Some("forged".into()));
    write_envelope(&bad, 60, &env.to_bytes(), true);
    drop(bad);

    let before: Vec<Vec<String>> = ["entries", "checkpoints", "quarantine"]
        .iter()
        .map(|t| dump(&ledger.db(), t))
        .collect();
    let out = repair(&ledger, &copy, true);
    assert_eq!(out.code, 1, "{out:?}");
    let e = out.json()["error"].clone();
    assert_eq!(e["code"], "repair.refused");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("does not prove out"),
        "{e}"
    );
    let after: Vec<Vec<String>> = ["entries", "checkpoints", "quarantine"]
        .iter()
        .map(|t| dump(&ledger.db(), t))
        .collect();
    assert_eq!(before, after);
}

#[test]
fn repair_needs_confirmation_when_not_at_a_terminal() {
    let ledger = Ledger::new();
    let tmp = tempfile::tempdir().unwrap();
    let copy = export(&ledger, tmp.path());
    tamper(&ledger);
    let out = repair(&ledger, &copy, false);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.json()["error"]["code"], "repair.needs_confirmation");
    assert!(quarantine(&ledger).is_empty());
    assert_eq!(ledger.verify().0, 1);
}
