//! The SQLite store's append and verify paths end to end: what the
//! sequencer stores, how it answers request ids it has seen, how it picks a
//! log up after another writer, and that verification (which reads and
//! verifies on two threads) reports exactly what feeding the verifier row by
//! row reports, on intact and tampered logs.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use ed25519_dalek::SigningKey;
use evident_core::entry::{EntryDraft, EnvelopeView, Limits, parse_entry};
use evident_core::note::{NoteSigner, Verifiers};
use evident_core::verify::{BodyRow, EntryRow, LogVerifier, Report};
use evident_store::reader::verify_log;
use evident_store::sqlite::SqliteStore;
use evident_store::{LogInfo, Sequencer, Store};

fn signer() -> NoteSigner {
    NoteSigner::new("test.example", SigningKey::from_bytes(&[7; 32])).unwrap()
}

fn verifiers() -> Verifiers {
    Verifiers::new([signer().verifier_key()])
}

fn store() -> (SqliteStore, LogInfo) {
    let mut s = SqliteStore::open_in_memory().unwrap();
    s.migrate_up().unwrap();
    s.initialize(
        "test.example",
        &signer().verifier_key().to_string(),
        "2026-01-01T00:00:00.000000Z",
    )
    .unwrap();
    let log = s
        .create_log(
            "t",
            "audit",
            "test.example/t/audit",
            "2026-01-01T00:00:00.000000Z",
        )
        .unwrap();
    (s, log)
}

fn draft(i: usize, request_id: bool) -> EntryDraft {
    let rid = if request_id {
        format!(r#","request_id":"req-{i}""#)
    } else {
        String::new()
    };
    parse_entry(
        format!(r#"{{"kind":"test.event","actor":"u{i}"{rid},"data":{{"n":{i}}}}}"#).as_bytes(),
        &Limits::default(),
    )
    .unwrap()
}

/// Appends `n` entries with request ids `from..from + n` in batches.
fn fill(
    s: &mut SqliteStore,
    log: &LogInfo,
    seq: &mut Sequencer,
    from: usize,
    n: usize,
    batch: usize,
) {
    let drafts: Vec<EntryDraft> = (from..from + n).map(|i| draft(i, i % 3 != 0)).collect();
    for chunk in drafts.chunks(batch) {
        seq.append(s, log, chunk).unwrap();
    }
}

/// The verifier fed directly, one row at a time, on this thread.
fn direct_report(s: &mut SqliteStore, log: &LogInfo) -> Report {
    let cps = s.checkpoints(log.id).unwrap();
    let mut v = LogVerifier::new(&log.origin, verifiers());
    if let Some(last) = cps.last() {
        v.set_claimed_size(last.size);
    }
    v.add_checkpoints(cps.iter().map(|c| c.note.as_bytes()));
    push_rows(s, log, v)
}

/// Pushes every row of `log` into `v`, then finishes it.
fn push_rows(s: &mut SqliteStore, log: &LogInfo, mut v: LogVerifier) -> Report {
    s.scan_entries(log.id, 0, &mut |e| {
        let body = match (e.salt, e.body) {
            (Some(salt), Some(body)) => BodyRow::Present { salt, body },
            _ => BodyRow::Absent,
        };
        v.push(EntryRow {
            index: e.index,
            envelope: e.envelope,
            stored_leaf_hash: e.leaf_hash,
            body,
        });
        Ok(true)
    })
    .unwrap();
    v.finish()
}

fn report(s: &mut SqliteStore, log: &LogInfo) -> Report {
    let mut last = (0, 0);
    let r = verify_log(s, log, verifiers(), &mut |done, total| last = (done, total)).unwrap();
    assert_eq!(last.0, r.rows_checked, "progress ends at the rows read");
    r
}

/// Lets the test play the attacker: drops the append-only triggers.
fn unprotect(s: &SqliteStore) {
    s.connection()
        .execute_batch(
            "DROP TRIGGER entries_no_update; DROP TRIGGER entries_no_delete;
             DROP TRIGGER checkpoints_no_delete;",
        )
        .unwrap();
}

#[test]
fn intact_log_verifies_across_chunks() {
    let (mut s, log) = store();
    let mut seq = Sequencer::new(signer());
    // Not a multiple of the reader's chunk, nor of the batch.
    fill(&mut s, &log, &mut seq, 0, 9_001, 1_000);
    let r = report(&mut s, &log);
    assert!(r.valid, "{r:?}");
    assert_eq!(r.rows_checked, 9_001);
    assert_eq!(r.checkpoints_verified, 10);
    assert_eq!(r, direct_report(&mut s, &log));
}

#[test]
fn tampered_log_reports_what_a_direct_feed_reports() {
    let (mut s, log) = store();
    let mut seq = Sequencer::new(signer());
    fill(&mut s, &log, &mut seq, 0, 12_345, 997);
    unprotect(&s);
    let c = s.connection();
    // A body edited, a row deleted, an envelope swapped with another's,
    // a salt removed (half a body), the last checkpoint removed.
    c.execute(
        "UPDATE entries SET body = CAST('{\"actor\":\"x\"}' AS BLOB) WHERE idx = 10",
        [],
    )
    .unwrap();
    c.execute("DELETE FROM entries WHERE idx = 5000", [])
        .unwrap();
    c.execute(
        "UPDATE entries SET envelope = (SELECT envelope FROM entries WHERE idx = 8) WHERE idx = 9000",
        [],
    )
    .unwrap();
    c.execute("UPDATE entries SET salt = NULL WHERE idx = 11000", [])
        .unwrap();
    c.execute(
        "DELETE FROM checkpoints WHERE seq = (SELECT max(seq) FROM checkpoints)",
        [],
    )
    .unwrap();
    let r = report(&mut s, &log);
    assert!(!r.valid);
    assert!(r.violation_count >= 4, "{r:?}");
    assert_eq!(r, direct_report(&mut s, &log));
}

#[test]
fn empty_log_verifies() {
    let (mut s, log) = store();
    let r = report(&mut s, &log);
    assert!(r.valid);
    assert_eq!(r.rows_checked, 0);
    assert_eq!(r, direct_report(&mut s, &log));
}

#[test]
fn request_ids_are_answered_with_the_original() {
    let (mut s, log) = store();
    let mut seq = Sequencer::new(signer());
    let first = seq
        .append(&mut s, &log, &[draft(1, true), draft(2, true)])
        .unwrap();
    assert_eq!(first.appended(), 2);
    // Seen in an earlier batch, earlier in this batch, and new.
    let out = seq
        .append(
            &mut s,
            &log,
            &[
                draft(2, true),
                draft(3, true),
                draft(3, true),
                draft(4, false),
            ],
        )
        .unwrap();
    let idx: Vec<(u64, bool)> = out.entries.iter().map(|e| (e.index, e.duplicate)).collect();
    assert_eq!(idx, [(1, true), (2, false), (2, true), (3, false)]);
    assert_eq!(out.entries[0].leaf_hash, first.entries[1].leaf_hash);
    assert_eq!(out.entries[0].ts, first.entries[1].ts);
    assert_eq!(out.entries[2].leaf_hash, out.entries[1].leaf_hash);
    assert_eq!(out.size, 4);
    assert_eq!(out.appended(), 2);
    // All duplicates: nothing written, no checkpoint.
    let again = seq.append(&mut s, &log, &[draft(1, true)]).unwrap();
    assert_eq!(again.checkpoint, None);
    assert_eq!(again.size, 4);
    assert_eq!(s.checkpoints(log.id).unwrap().len(), 2);
    assert!(report(&mut s, &log).valid);
}

#[test]
fn another_writer_moves_the_log_on() {
    let (mut s, log) = store();
    let mut a = Sequencer::new(signer());
    let mut b = Sequencer::new(signer());
    fill(&mut s, &log, &mut a, 0, 300, 100);
    fill(&mut s, &log, &mut b, 300, 213, 100);
    fill(&mut s, &log, &mut a, 513, 600, 250);
    // A request id that `b` stored is known to `a`.
    let out = a.append(&mut s, &log, &[draft(301, true)]).unwrap();
    assert!(out.entries[0].duplicate);
    assert_eq!(out.entries[0].index, 301);
    let r = report(&mut s, &log);
    assert!(r.valid, "{r:?}");
    assert_eq!(r.rows_checked, 1_113);
    // Stored rows are in order, chained, and carry their request ids.
    let mut prev_ts = String::new();
    s.scan_entries(log.id, 0, &mut |e| {
        let v = EnvelopeView::parse(e.envelope).unwrap();
        assert_eq!(v.index, e.index);
        assert!(*v.ts >= *prev_ts);
        prev_ts = v.ts.into_owned();
        Ok(true)
    })
    .unwrap();
}

#[test]
fn a_failed_batch_leaves_the_log_and_the_cache_unchanged() {
    let (mut s, log) = store();
    let mut seq = Sequencer::new(signer());
    fill(&mut s, &log, &mut seq, 0, 10, 10);
    // The second entry would be index 11: parent 11 cannot be sealed.
    let bad = parse_entry(br#"{"kind":"a","parent":11}"#, &Limits::default()).unwrap();
    assert!(seq.append(&mut s, &log, &[draft(10, true), bad]).is_err());
    assert_eq!(s.checkpoints(log.id).unwrap().len(), 1);
    assert_eq!(s.entry_count(log.id).unwrap(), 10);
    fill(&mut s, &log, &mut seq, 10, 10, 10);
    assert!(report(&mut s, &log).valid);
}

/// Large batches are sealed on a second thread while the first inserts:
/// the outcome is the same as for small ones.
#[test]
fn large_batches_with_repeats_and_a_late_failure() {
    let (mut s, log) = store();
    let mut seq = Sequencer::new(signer());
    let first: Vec<EntryDraft> = (0..100).map(|i| draft(i, true)).collect();
    seq.append(&mut s, &log, &first).unwrap();
    // 10,000 drafts: ids 50..99 are stored already, 9000..9099 repeat
    // 8000..8099 of this batch.
    let mut drafts: Vec<EntryDraft> = (50..10_050).map(|i| draft(i, true)).collect();
    for k in 0..100 {
        drafts[9_000 + k] = draft(8_000 + 50 + k, true);
    }
    let out = seq.append(&mut s, &log, &drafts).unwrap();
    assert_eq!(out.entries.len(), 10_000);
    assert_eq!(out.appended(), 10_000 - 50 - 100);
    for (k, e) in out.entries.iter().enumerate() {
        if k < 50 {
            assert!(e.duplicate && e.index == 50 + k as u64, "{k}: {e:?}");
        } else if (9_000..9_100).contains(&k) {
            let orig = &out.entries[8_000 + k - 9_000];
            assert!(e.duplicate && !orig.duplicate);
            assert_eq!((e.index, e.leaf_hash), (orig.index, orig.leaf_hash));
        } else {
            let skipped = if k >= 9_100 { 150 } else { 50 };
            assert!(!e.duplicate);
            assert_eq!(e.index, 100 + (k - skipped) as u64, "{k}");
        }
    }
    assert_eq!(out.size, 100 + 9_850);
    let r = report(&mut s, &log);
    assert!(r.valid, "{r:?}");

    // A draft that cannot be sealed late in a large batch: nothing of the
    // batch is stored and the next batch continues from the log's head.
    let mut drafts: Vec<EntryDraft> = (20_000..29_000).map(|i| draft(i, true)).collect();
    drafts[8_500] = parse_entry(br#"{"kind":"a","parent":999999}"#, &Limits::default()).unwrap();
    assert!(seq.append(&mut s, &log, &drafts).is_err());
    assert_eq!(s.entry_count(log.id).unwrap(), 9_950);
    drafts[8_500] = draft(1, false);
    let out = seq.append(&mut s, &log, &drafts).unwrap();
    assert_eq!(out.entries[0].index, 9_950);
    assert_eq!(out.size, 9_950 + 9_000);
    assert!(report(&mut s, &log).valid);
}

/// Request ids are matched exactly, whatever characters they hold
/// (including NUL, which SQLite's JSON functions would cut at).
#[test]
fn request_ids_with_any_characters_are_found() {
    let (mut s, log) = store();
    let mut seq = Sequencer::new(signer());
    let ids = [
        "a\u{0}b",
        "a",
        "\u{1}\u{1f}",
        "\u{1F600}",
        "quote\"back\\slash/",
        "\u{2028}\u{2029}",
        "A",
        " a",
        "a ",
        "\u{e9}",
        "e\u{301}",
        "[\"a\"]",
    ];
    // The id is set on the draft, not parsed: client input may no longer
    // hold NUL (entry.bad_field), but logs written before that rule do,
    // and their ids must still be found.
    let with_id = |id: &str| {
        let line = serde_json::json!({"kind": "k", "request_id": "x"}).to_string();
        let mut d = parse_entry(line.as_bytes(), &Limits::default()).unwrap();
        d.body.request_id = Some(id.to_owned());
        d.body_bytes = d.body.to_bytes();
        d
    };
    let first: Vec<EntryDraft> = ids.iter().map(|id| with_id(id)).collect();
    let out = seq.append(&mut s, &log, &first).unwrap();
    assert_eq!(out.appended(), ids.len());
    // Again, in reverse, with near misses in between.
    let mut again: Vec<EntryDraft> = ids.iter().rev().map(|id| with_id(id)).collect();
    again.push(with_id("a\u{0}c"));
    again.push(with_id("a\u{0}"));
    again.push(with_id("b"));
    let out = seq.append(&mut s, &log, &again).unwrap();
    for (k, e) in out.entries.iter().enumerate() {
        if k < ids.len() {
            assert!(e.duplicate, "{k}");
            assert_eq!(e.index, (ids.len() - 1 - k) as u64);
        } else {
            assert!(!e.duplicate, "{k}");
        }
    }
    assert_eq!(out.size, ids.len() as u64 + 3);
}

/// The verifier fed directly with every checkpoint at once (opened with the
/// store's key history, as the reader opens them), then every row.
fn direct_report_at(s: &mut SqliteStore, log: &LogInfo) -> Report {
    let cps = s.checkpoints(log.id).unwrap();
    let history = evident_store::reader::key_history(s).unwrap();
    let mut v = LogVerifier::new(&log.origin, verifiers());
    if let Some(last) = cps.last() {
        v.set_claimed_size(last.size);
    }
    v.add_checkpoints_at(
        cps.iter().map(|c| (c.seq as u64, c.note.as_bytes())),
        &history,
    );
    push_rows(s, log, v)
}

/// A note for `log` claiming `size` and `root`, signed by `key`.
fn forged_note(log: &LogInfo, size: u64, root: [u8; 32], key: u8) -> String {
    let signer = NoteSigner::new("test.example", SigningKey::from_bytes(&[key; 32])).unwrap();
    let cp = evident_core::checkpoint::Checkpoint {
        origin: log.origin.clone(),
        size,
        root: evident_core::Hash(root),
        extensions: Vec::new(),
    };
    evident_core::checkpoint::sign_checkpoint(&cp, &[&signer]).unwrap()
}

/// More checkpoints than the reader hands the verifier at once (it reads
/// them in pages, a little ahead of the rows, and scans the rows in
/// segments between): the report is the one the verifier gives with every
/// checkpoint up front, intact and tampered, including a forged checkpoint
/// that claims a size far ahead (it must not let the rows run past the
/// valid checkpoints after it) and rows deleted from the end (checkpoints
/// past the last row).
#[test]
fn many_checkpoints_stream_to_the_same_report() {
    let (mut s, log) = store();
    let mut seq = Sequencer::new(signer());
    fill(&mut s, &log, &mut seq, 0, 3_000, 1);
    let r = report(&mut s, &log);
    assert!(r.valid, "{r:?}");
    assert_eq!((r.rows_checked, r.checkpoints_verified), (3_000, 3_000));
    assert_eq!(r, direct_report_at(&mut s, &log));

    unprotect(&s);
    let c = s.connection();
    c.execute_batch("DROP TRIGGER checkpoints_no_update;")
        .unwrap();
    let seq_of_size = |size: u64| -> i64 {
        c.query_row(
            "SELECT seq FROM checkpoints WHERE log_id = ?1 AND size = ?2",
            rusqlite::params![log.id, size as i64],
            |r| r.get(0),
        )
        .unwrap()
    };
    // Early on, a checkpoint by another key that claims 2,990 entries.
    c.execute(
        "UPDATE checkpoints SET note = ?1 WHERE seq = ?2",
        rusqlite::params![forged_note(&log, 2_990, [1; 32], 9), seq_of_size(100)],
    )
    .unwrap();
    // In the second page, one by the log's own key with the wrong root.
    c.execute(
        "UPDATE checkpoints SET note = ?1 WHERE seq = ?2",
        rusqlite::params![forged_note(&log, 1_500, [2; 32], 7), seq_of_size(1_500)],
    )
    .unwrap();
    // An envelope edited in the third, and the last 300 rows deleted.
    c.execute(
        "UPDATE entries SET envelope = (SELECT envelope FROM entries WHERE idx = 8) WHERE idx = 2_500",
        [],
    )
    .unwrap();
    c.execute("DELETE FROM entries WHERE idx >= 2700", [])
        .unwrap();
    let r = report(&mut s, &log);
    assert!(!r.valid);
    assert_eq!(r.rows_checked, 2_700);
    let codes: Vec<&str> = r
        .signature_failures
        .iter()
        .chain(&r.checkpoint_mismatches)
        .chain(&r.gaps)
        .map(|v| v.reason.code())
        .collect();
    for code in [
        "checkpoint.bad_signature",
        "checkpoint.root_mismatch",
        "gap.truncated",
    ] {
        assert!(codes.contains(&code), "{code} missing: {r:?}");
    }
    assert_eq!(r, direct_report_at(&mut s, &log));
}
