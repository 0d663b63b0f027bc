#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
//! `evident mark-exception` with the real binary, on a data directory an
//! attacker really tampered with.

mod run;
#[allow(dead_code)]
mod support;

use rusqlite::params;
use support::{
    ENTRIES, ENTRY_TRIGGERS, LOG, Ledger, assert_broken, checkpoints, drop_triggers, edit_body,
    evident, listed, pairs,
};

fn mark(ledger: &Ledger, index: u64) -> support::Run {
    let i = index.to_string();
    evident(&[
        "mark-exception",
        "--data-dir",
        ledger.data_dir(),
        "--log",
        LOG,
        "--index",
        &i,
        "--reason",
        "INC-42: restored from paper records",
        "--approved-by",
        "ciso@example.com",
        "--format",
        "json",
    ])
}

#[test]
fn exception_acknowledges_exactly_the_break_it_names() {
    let ledger = Ledger::new();
    let db = ledger.db();
    drop_triggers(&db, &ENTRY_TRIGGERS);
    edit_body(&db, 30, |b| b.actor = Some("mallory".into()));
    edit_body(&db, 70, |b| b.actor = Some("mallory".into()));
    let (code, r) = ledger.verify();
    assert_broken(code, &r, 30, "body.digest_mismatch", "chain_breaks");

    // Nothing to acknowledge at an intact entry: refused, nothing stored.
    let none = mark(&ledger, 50);
    assert_eq!(none.code, 1, "{none:?}");
    assert_eq!(none.json()["error"]["code"], "exception.no_break");
    assert_eq!(checkpoints(&ledger.db()).len(), 5);

    let out = mark(&ledger, 30);
    assert_eq!(out.code, 0, "{out:?}");
    let out = out.json();
    assert_eq!(out["exception_index"], ENTRIES);
    assert_eq!(
        out["acknowledges"],
        serde_json::json!(["body.digest_mismatch"])
    );

    // 30 is acknowledged and still reported; 70 is still the first break.
    let (code, r) = ledger.verify();
    assert_broken(code, &r, 70, "body.digest_mismatch", "chain_breaks");
    assert_eq!(
        listed(&r, "acknowledged"),
        pairs(&[(30, "body.digest_mismatch")])
    );
    assert_eq!(r["acknowledged"][0]["acknowledged_by"], ENTRIES);
    assert_eq!(r["violation_count"], 1);

    let out = mark(&ledger, 70);
    assert_eq!(out.code, 0, "{out:?}");
    let (code, r) = ledger.verify();
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["valid"], true);
    assert_eq!(
        listed(&r, "acknowledged"),
        pairs(&[(30, "body.digest_mismatch"), (70, "body.digest_mismatch")])
    );
    assert_eq!(r["total_count"], ENTRIES + 2);
}

#[test]
fn exception_does_not_hide_a_later_break_of_another_kind_at_the_same_entry() {
    let ledger = Ledger::new();
    let db = ledger.db();
    drop_triggers(&db, &ENTRY_TRIGGERS);
    edit_body(&db, 30, |b| b.actor = Some("mallory".into()));
    assert_eq!(mark(&ledger, 30).code, 0);
    assert_eq!(ledger.verify().0, 0);

    // Later the same entry's body is deleted outright.
    db.execute(
        "UPDATE entries SET salt = NULL, body = NULL WHERE idx = ?1",
        params![30],
    )
    .unwrap();
    let (code, r) = ledger.verify();
    assert_broken(code, &r, 30, "body.missing", "chain_breaks");
    assert!(listed(&r, "acknowledged").is_empty(), "{r:#}");
}

#[test]
fn mark_exception_needs_a_reason_and_an_approver() {
    let ledger = Ledger::new();
    let run = evident(&[
        "mark-exception",
        "--data-dir",
        ledger.data_dir(),
        "--log",
        LOG,
        "--index",
        "3",
        "--reason",
        " ",
        "--approved-by",
        "ciso",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.json()["error"]["code"], "input.missing");
    let help = evident(&["mark-exception", "--help"]);
    assert!(help.stdout.contains("acknowledged"), "{}", help.stdout);
}
