//! Log verification against real tampering of the rows and checkpoints a
//! store would hold: each case changes bytes the way an attacker with
//! database access could, and checks the exact first break.
#![allow(clippy::unwrap_used)]

mod common;

use common::{ORIGIN, Row, SampleLog, signer};
use evident_core::checkpoint::{Checkpoint, sign_checkpoint};
use evident_core::entry::{Envelope, body_digest};
use evident_core::hash::leaf_hash;
use evident_core::merkle::CompactTree;
use evident_core::note::Verifiers;
use evident_core::verify::{LogVerifier, Reason, Report};

fn verify_rows(log: &SampleLog, rows: &[Row], checkpoints: &[Vec<u8>]) -> Report {
    let mut v = LogVerifier::new(ORIGIN, log.verifiers());
    v.add_checkpoints(checkpoints.iter().map(Vec::as_slice));
    for r in rows {
        v.push(r.as_entry_row());
    }
    v.finish()
}

fn verify(log: &SampleLog) -> Report {
    verify_rows(log, &log.rows, &log.checkpoints)
}

fn first(r: &Report) -> (u64, Reason) {
    let b = r.first_break.as_ref().expect("a break");
    (b.index, b.reason)
}

/// Every problem as (index, reason), in report order.
fn reasons(r: &Report) -> Vec<(u64, Reason)> {
    r.violations.iter().map(|v| (v.index, v.reason)).collect()
}

#[test]
fn reason_codes_are_unique_and_read_back() {
    let mut codes: Vec<_> = Reason::ALL.iter().map(|r| r.code()).collect();
    for r in Reason::ALL {
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, format!("\"{}\"", r.code()));
        assert_eq!(serde_json::from_str::<Reason>(&json).unwrap(), r);
    }
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), Reason::ALL.len());
    assert!(serde_json::from_str::<Reason>("\"chain.nope\"").is_err());
}

/// Re-encodes an edited envelope, as an attacker editing the JSON would.
fn edit_envelope(row: &mut Row, f: impl FnOnce(&mut Envelope)) {
    let mut env = Envelope::parse(&row.envelope).unwrap();
    f(&mut env);
    row.envelope = env.to_bytes();
}

/// 5 batches of 10 entries, a checkpoint after each.
fn log50() -> SampleLog {
    SampleLog::batches(5, 10)
}

#[test]
fn untouched_log_is_valid() {
    let log = log50();
    let r = verify(&log);
    assert!(r.valid, "{r:#?}");
    assert_eq!(r.total_count, 50);
    assert_eq!(r.rows_checked, 50);
    assert_eq!(r.verified_count, 50);
    assert_eq!(r.checkpoints_checked, 5);
    assert_eq!(r.checkpoints_verified, 5);
    assert_eq!(r.verified_size, Some(50));
    assert_eq!(r.last_verified_index, Some(49));
    assert_eq!(
        r.last_verified_timestamp.as_deref(),
        Some(Envelope::parse(&log.rows[49].envelope).unwrap().ts.as_str())
    );
    assert!(r.violations.is_empty() && r.first_break.is_none());
}

#[test]
fn empty_log_with_empty_checkpoint_is_valid() {
    let mut log = SampleLog::new();
    log.checkpoint();
    let r = verify(&log);
    assert!(r.valid, "{r:#?}");
    assert_eq!(r.total_count, 0);
    assert_eq!(r.last_verified_index, None);
}

#[test]
fn edited_body_is_found_at_its_entry() {
    let log = log50();
    let mut rows = log.rows.clone();
    rows[23].body = br#"{"actor":"mallory","data":{"n":23}}"#.to_vec();
    let r = verify_rows(&log, &rows, &log.checkpoints);
    assert!(!r.valid);
    assert_eq!(first(&r), (23, Reason::BodyDigestMismatch));
    assert_eq!(r.chain_breaks.len(), 1);
    assert_eq!(r.last_verified_index, Some(22));
    assert_eq!(r.verified_count, 23);
}

#[test]
fn edited_envelope_is_found_at_its_entry() {
    let log = log50();
    let mut rows = log.rows.clone();
    edit_envelope(&mut rows[17], |e| e.kind = "access.denied".into());
    let r = verify_rows(&log, &rows, &log.checkpoints);
    assert_eq!(first(&r), (17, Reason::LeafHashMismatch));
    // The next entry's link breaks too, and the checkpoint covering 10..20.
    let reasons = reasons(&r);
    assert!(reasons.contains(&(18, Reason::PrevMismatch)), "{reasons:?}");
    assert!(
        reasons.contains(&(17, Reason::CheckpointRootMismatch)),
        "{reasons:?}"
    );
}

#[test]
fn recomputed_chain_is_caught_by_the_signed_root() {
    // The attacker edits entry 27, then recomputes its leaf hash and every
    // later prev and leaf hash: the chain alone looks intact.
    let log = log50();
    let mut rows = log.rows.clone();
    edit_envelope(&mut rows[27], |e| e.kind = "access.denied".into());
    rows[27].leaf = leaf_hash(&rows[27].envelope);
    for i in 28..rows.len() {
        let prev = rows[i - 1].leaf;
        edit_envelope(&mut rows[i], |e| e.prev = prev);
        rows[i].leaf = leaf_hash(&rows[i].envelope);
    }
    let r = verify_rows(&log, &rows, &log.checkpoints);
    assert!(r.chain_breaks.is_empty(), "{:#?}", r.chain_breaks);
    // The checkpoint of batch 20..30 is the first signed root contradicted.
    assert_eq!(first(&r), (20, Reason::CheckpointRootMismatch));
    assert_eq!(r.first_break.as_ref().unwrap().checkpoint_size, Some(30));
    assert_eq!(r.checkpoint_mismatches.len(), 3, "sizes 30, 40 and 50");
    assert_eq!(r.verified_size, Some(20));
    assert_eq!(r.last_verified_index, Some(19));
    assert_eq!(
        r.last_verified_timestamp.as_deref(),
        Some(Envelope::parse(&log.rows[19].envelope).unwrap().ts.as_str())
    );
}

#[test]
fn deleted_middle_entry_is_a_gap() {
    let log = log50();
    let mut rows = log.rows.clone();
    rows.remove(31);
    let r = verify_rows(&log, &rows, &log.checkpoints);
    assert_eq!(first(&r), (31, Reason::MissingEntries));
    let gap = &r.gaps[0];
    assert_eq!((gap.missing_from, gap.missing_to), (Some(31), Some(31)));
}

#[test]
fn deleted_tail_is_truncation() {
    let log = log50();
    let rows = log.rows[..46].to_vec();
    let r = verify_rows(&log, &rows, &log.checkpoints);
    assert_eq!(first(&r), (46, Reason::Truncated));
    assert_eq!(r.total_count, 50);
    assert_eq!(r.last_verified_index, Some(45));
    assert_eq!(
        r.last_verified_timestamp.as_deref(),
        Some(Envelope::parse(&log.rows[45].envelope).unwrap().ts.as_str())
    );
}

#[test]
fn swapped_entries_are_found_at_the_first() {
    let log = log50();
    let mut rows = log.rows.clone();
    // Swap the contents of positions 12 and 14, keeping the row positions.
    let (a, b) = (rows[12].clone(), rows[14].clone());
    rows[12] = Row { index: 12, ..b };
    rows[14] = Row { index: 14, ..a };
    let r = verify_rows(&log, &rows, &log.checkpoints);
    assert_eq!(first(&r), (12, Reason::EntryIndexMismatch));
}

#[test]
fn backdated_entry_is_retrocausation() {
    let log = log50();
    let mut rows = log.rows.clone();
    edit_envelope(&mut rows[8], |e| {
        e.ts = "2020-01-01T00:00:00.000000Z".into()
    });
    let r = verify_rows(&log, &rows, &log.checkpoints);
    assert_eq!(first(&r), (8, Reason::TimeDecreasing));
    assert_eq!(r.retrocausation_violations.len(), 1);
}

#[test]
fn parent_after_child_is_retrocausation() {
    let log = log50();
    let mut rows = log.rows.clone();
    edit_envelope(&mut rows[5], |e| e.parent = Some(9));
    let r = verify_rows(&log, &rows, &log.checkpoints);
    assert_eq!(first(&r), (5, Reason::ParentNotEarlier));
}

#[test]
fn checkpoint_signed_by_another_key_fails() {
    let log = log50();
    let mut cps = log.checkpoints.clone();
    let forged = Checkpoint {
        origin: ORIGIN.into(),
        size: 50,
        root: log.tree.root(),
        extensions: vec![],
    };
    *cps.last_mut().unwrap() = sign_checkpoint(&forged, &[&signer(99, "evident.local")])
        .unwrap()
        .into_bytes();
    let r = verify_rows(&log, &log.rows, &cps);
    // The forged checkpoint alone vouched for entries 40..50.
    assert_eq!(first(&r), (40, Reason::CheckpointBadSignature));
    assert_eq!(r.signature_failures.len(), 1);
    assert_eq!(r.signature_failures[0].checkpoint_size, Some(50));
}

#[test]
fn older_checkpoint_put_back_as_latest_is_rollback() {
    let log = log50();
    let mut cps = log.checkpoints.clone();
    *cps.last_mut().unwrap() = cps[1].clone(); // size 20 replaces size 50
    let r = verify_rows(&log, &log.rows, &cps);
    assert_eq!(first(&r), (20, Reason::CheckpointRollback));
    let reasons = reasons(&r);
    assert!(
        reasons.contains(&(40, Reason::CheckpointUncovered)),
        "{reasons:?}"
    );
}

#[test]
fn checkpoint_of_another_log_is_rejected() {
    let log = log50();
    let mut cps = log.checkpoints.clone();
    let other = Checkpoint {
        origin: "evident.local/acme/other".into(),
        size: 50,
        root: log.tree.root(),
        extensions: vec![],
    };
    *cps.last_mut().unwrap() = sign_checkpoint(&other, &[&log.signer])
        .unwrap()
        .into_bytes();
    let r = verify_rows(&log, &log.rows, &cps);
    assert_eq!(first(&r), (40, Reason::CheckpointWrongOrigin));
}

#[test]
fn unsigned_tail_is_uncovered() {
    let mut log = log50();
    log.append_n(3);
    let r = verify(&log);
    assert_eq!(first(&r), (50, Reason::CheckpointUncovered));
}

#[test]
fn missing_body_needs_a_redaction_entry() {
    let mut log = log50();
    log.rows[3].body_present = false;
    let r = verify(&log);
    assert_eq!(first(&r), (3, Reason::BodyMissing));

    log.append_json(
        r#"{"kind":"evident.redaction","actor":"dpo","data":{"index":3,"reason":"gdpr erasure"}}"#,
    );
    log.checkpoint();
    let r = verify(&log);
    assert!(r.valid, "{r:#?}");
    assert_eq!(r.redacted_count, 1);
}

#[test]
fn exception_acknowledges_a_break() {
    let mut log = log50();
    log.rows[33].body = b"{}".to_vec();
    assert!(!verify(&log).valid);
    log.append_json(
        r#"{"kind":"evident.exception","actor":"oncall","data":{"index":33,"reason":"known incident","approved_by":"ciso"}}"#,
    );
    log.checkpoint();
    let r = verify(&log);
    assert!(r.valid, "{r:#?}");
    assert_eq!(r.acknowledged.len(), 1);
    assert_eq!(r.acknowledged[0].index, 33);
    assert_eq!(r.acknowledged[0].acknowledged_by, Some(50));
}

#[test]
fn exception_entry_with_forged_body_acknowledges_nothing() {
    let mut log = log50();
    log.rows[33].body = b"{}".to_vec();
    log.append_json(
        r#"{"kind":"evident.exception","actor":"oncall","data":{"index":1,"reason":"x"}}"#,
    );
    log.checkpoint();
    // Rewrite the exception's body to cover 33: its digest no longer matches.
    let last = log.rows.last_mut().unwrap();
    last.body = br#"{"actor":"oncall","data":{"index":33,"reason":"x"}}"#.to_vec();
    assert_ne!(
        body_digest(&last.salt, &last.body),
        Envelope::parse(&last.envelope).unwrap().body
    );
    let r = verify(&log);
    assert_eq!(first(&r), (33, Reason::BodyDigestMismatch));
    assert!(r.acknowledged.is_empty());
}

#[test]
fn producer_sequence_gap_is_reported() {
    let mut log = SampleLog::new();
    for seq in [1, 2, 5, 6, 6] {
        log.append_json(&format!(
            r#"{{"kind":"job.run","source":{{"id":"worker-a","seq":{seq}}}}}"#
        ));
    }
    log.checkpoint();
    let r = verify(&log);
    let gaps: Vec<_> = r
        .gaps
        .iter()
        .map(|g| (g.index, g.reason, g.missing_from, g.missing_to))
        .collect();
    assert_eq!(
        gaps,
        vec![
            (2, Reason::SourceSeqGap, Some(3), Some(4)),
            (4, Reason::SourceSeqRegression, None, None)
        ]
    );
    assert_eq!(first(&r), (2, Reason::SourceSeqGap));
}

#[test]
fn report_serialises_with_stable_codes() {
    let log = log50();
    let mut rows = log.rows.clone();
    rows.remove(31);
    let r = verify_rows(&log, &rows, &log.checkpoints);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["valid"], false);
    assert_eq!(json["first_break"]["index"], 31);
    assert_eq!(json["first_break"]["reason"], "gap.missing_entries");
    assert_eq!(json["violations"][0]["reason"], "gap.missing_entries");
    for key in [
        "total_count",
        "rows_checked",
        "verified_count",
        "chain_breaks",
        "signature_failures",
        "retrocausation_violations",
        "gaps",
        "checkpoint_mismatches",
        "acknowledged",
        "last_verified_index",
        "last_verified_timestamp",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    let back: Report = serde_json::from_value(json).unwrap();
    assert_eq!(back.first_break, r.first_break);
}

#[test]
fn untrusted_key_fails_every_checkpoint() {
    let log = log50();
    let mut v = LogVerifier::new(
        ORIGIN,
        Verifiers::new([signer(1, "evident.local").verifier_key()]),
    );
    v.add_checkpoints(log.checkpoints.iter().map(Vec::as_slice));
    for r in &log.rows {
        v.push(r.as_entry_row());
    }
    let r = v.finish();
    assert_eq!(r.signature_failures.len(), 5);
    assert_eq!(first(&r), (0, Reason::CheckpointBadSignature));
}

#[test]
fn compact_tree_agrees_with_the_sample_log() {
    let log = log50();
    let mut t = CompactTree::new();
    for r in &log.rows {
        t.append(leaf_hash(&r.envelope));
    }
    assert_eq!(t.root(), log.tree.root());
}

// ---------------------------------------------------------------------------
// Resuming after a verified prefix (the server's background verifier).
// ---------------------------------------------------------------------------

/// Verifies rows `..k` with the checkpoints up to and including `cp`, and
/// returns the prefix.
fn prefix_at(log: &SampleLog, k: usize, cp: usize) -> evident_core::verify::VerifiedPrefix {
    let mut v = LogVerifier::new(ORIGIN, log.verifiers());
    v.add_checkpoints(log.checkpoints[..=cp].iter().map(Vec::as_slice));
    for r in &log.rows[..k] {
        v.push(r.as_entry_row());
    }
    let p = v.prefix().expect("a clean prefix");
    assert!(v.finish().valid);
    p
}

fn resume_rows(
    log: &SampleLog,
    p: &evident_core::verify::VerifiedPrefix,
    rows: &[Row],
    cps: &[Vec<u8>],
) -> (Report, Option<evident_core::verify::VerifiedPrefix>) {
    let mut v = LogVerifier::resume(ORIGIN, log.verifiers(), p);
    v.add_checkpoints(cps.iter().map(Vec::as_slice));
    for r in rows {
        v.push(r.as_entry_row());
    }
    let next = v.prefix();
    (v.finish(), next)
}

#[test]
fn resuming_after_a_prefix_equals_a_full_run() {
    let log = log50();
    let p = prefix_at(&log, 20, 1);
    assert_eq!(p.size, 20);
    // Only the latest checkpoint is given, as the server does.
    let (r, next) = resume_rows(&log, &p, &log.rows[20..], &log.checkpoints[4..]);
    assert!(r.valid, "{r:#?}");
    assert_eq!(r.rows_checked, 30);
    assert_eq!(r.total_count, 50);
    assert_eq!(r.verified_size, Some(50));
    let full = {
        let mut v = LogVerifier::new(ORIGIN, log.verifiers());
        v.add_checkpoints(log.checkpoints.iter().map(Vec::as_slice));
        for row in &log.rows {
            v.push(row.as_entry_row());
        }
        v.prefix().unwrap()
    };
    assert_eq!(next.unwrap(), full);
}

#[test]
fn resuming_finds_breaks_after_the_prefix() {
    let log = log50();
    let p = prefix_at(&log, 20, 1);
    let mut rows = log.rows[20..].to_vec();
    edit_envelope(&mut rows[5], |e| e.kind = "forged.kind".into());
    let (r, next) = resume_rows(&log, &p, &rows, &log.checkpoints[4..]);
    assert_eq!(first(&r), (25, Reason::LeafHashMismatch));
    assert!(next.is_none());
}

#[test]
fn resuming_with_an_older_checkpoint_is_rollback() {
    let log = log50();
    let p = prefix_at(&log, 40, 3);
    // The store now offers only the size-20 checkpoint and 20 rows.
    let (r, next) = resume_rows(&log, &p, &[], &log.checkpoints[1..2]);
    assert_eq!(first(&r), (20, Reason::CheckpointRollback));
    assert!(next.is_none());
}

#[test]
fn resuming_with_a_forked_checkpoint_of_the_same_size_fails() {
    let log = log50();
    let p = prefix_at(&log, 20, 1);
    // A different log's tree signed at the same size, with the same key.
    let mut other = SampleLog::new();
    for i in 0..20 {
        other.append_json(&format!(r#"{{"kind":"other.kind","actor":"a{i}"}}"#));
    }
    let forked = other.checkpoint();
    let (r, _) = resume_rows(&log, &p, &[], &[forked]);
    assert!(!r.valid, "{r:#?}");
    assert_eq!(r.checkpoint_mismatches.len(), 1, "{r:#?}");
}
