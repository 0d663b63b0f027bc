#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
//! `evident redact` with the real binary: the body goes, every proof
//! stays valid, and a body deleted without a redaction entry is a break.

mod run;
#[allow(dead_code)]
mod support;

use rusqlite::params;
use support::{ENTRIES, ENTRY_TRIGGERS, LOG, Ledger, assert_broken, drop_triggers, evident};

fn redact(ledger: &Ledger, index: u64) -> support::Run {
    let i = index.to_string();
    evident(&[
        "redact",
        "--data-dir",
        ledger.data_dir(),
        "--log",
        LOG,
        "--index",
        &i,
        "--reason",
        "GDPR art. 17 request #981",
        "--approved-by",
        "dpo@example.com",
        "--format",
        "json",
    ])
}

/// Writes entry `index`'s receipt to a file and checks it with
/// `verify-receipt --vkey`; returns the exit status.
fn receipt_verifies(ledger: &Ledger, index: u64, dir: &std::path::Path) -> i32 {
    let file = dir.join(format!("receipt-{index}.json"));
    let i = index.to_string();
    let run = evident(&[
        "receipt",
        "--data-dir",
        ledger.data_dir(),
        "--log",
        LOG,
        "--index",
        &i,
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let run = evident(&[
        "verify-receipt",
        file.to_str().unwrap(),
        "--vkey",
        &ledger.vkey,
        "--format",
        "json",
    ]);
    run.code
}

fn body_of(ledger: &Ledger, index: u64) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    ledger
        .db()
        .query_row(
            "SELECT salt, body FROM entries WHERE idx = ?1",
            params![index as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

#[test]
fn redaction_keeps_every_proof_valid_and_is_reported() {
    let ledger = Ledger::new();
    let tmp = tempfile::tempdir().unwrap();
    let out = redact(&ledger, 10);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["redaction_index"], ENTRIES);
    assert_eq!(body_of(&ledger, 10), (None, None));

    let (code, r) = ledger.verify();
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["redacted_count"], 1);
    assert_eq!(r["total_count"], ENTRIES + 1);
    // Receipts of the redacted entry, its neighbour and the marker verify.
    for i in [10, 11, ENTRIES] {
        assert_eq!(receipt_verifies(&ledger, i, tmp.path()), 0, "receipt {i}");
    }
    let text = ledger.verify_text();
    assert!(text.stdout.contains("1 bodies redacted"), "{}", text.stdout);

    // Again, or on the redaction entry itself, or past the end: refused.
    for (i, code) in [
        (10, "redact.refused"),
        (ENTRIES, "redact.refused"),
        (ENTRIES + 5, "entry.not_found"),
    ] {
        let run = redact(&ledger, i);
        assert_eq!(run.code, 1, "{run:?}");
        assert_eq!(run.json()["error"]["code"], code, "{i}");
    }
    assert_eq!(ledger.verify().0, 0);
}

#[test]
fn a_body_deleted_without_a_redaction_entry_stays_a_break() {
    let ledger = Ledger::new();
    assert_eq!(redact(&ledger, 10).code, 0);
    // The redaction entry for 10 excuses 10 only.
    let db = ledger.db();
    drop_triggers(&db, &ENTRY_TRIGGERS);
    db.execute(
        "UPDATE entries SET salt = NULL, body = NULL WHERE idx = ?1",
        params![20],
    )
    .unwrap();
    let (code, r) = ledger.verify();
    assert_broken(code, &r, 20, "body.missing", "chain_breaks");
    assert_eq!(r["redacted_count"], 1);
}

#[test]
fn the_database_refuses_a_body_erased_without_a_redaction_record() {
    let ledger = Ledger::new();
    let err = ledger
        .db()
        .execute(
            "UPDATE entries SET salt = NULL, body = NULL WHERE idx = ?1",
            params![20],
        )
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    assert!(body_of(&ledger, 20).1.is_some());
}
