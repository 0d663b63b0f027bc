//! Per-checkpoint key validity: each checkpoint is checked against the
//! keys whose period (in storage `seq`) covers it, and a rotation's
//! dual-signed transition checkpoint carries trust from one key to the
//! next.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use common::{ORIGIN, SampleLog, signer};
use evident_core::checkpoint::{Checkpoint, sign_checkpoint};
use evident_core::note::{NoteSigner, Verifiers};
use evident_core::verify::{KeyHistory, KeyPeriod, LogVerifier, Reason, Report};

/// 5 batches of 10 entries; checkpoints at seq 1..=5 (sizes 10..=50).
fn log50() -> SampleLog {
    SampleLog::batches(5, 10)
}

fn new_key() -> NoteSigner {
    signer(8, "evident.local")
}

/// Re-signs checkpoint `k` (0-based) with `signers`.
fn resign(log: &SampleLog, cps: &mut [Vec<u8>], k: usize, signers: &[&NoteSigner]) {
    let size = (k as u64 + 1) * 10;
    let mut tree = evident_core::merkle::CompactTree::new();
    for r in &log.rows[..size as usize] {
        tree.append(r.leaf);
    }
    let cp = Checkpoint {
        origin: ORIGIN.into(),
        size,
        root: tree.root(),
        extensions: vec![],
    };
    cps[k] = sign_checkpoint(&cp, signers).unwrap().into_bytes();
}

/// Old key signs seq ..=3, new key seq 3..; checkpoint 3 carries both.
fn rotated(log: &SampleLog) -> (Vec<Vec<u8>>, KeyHistory) {
    let new = new_key();
    let mut cps = log.checkpoints.clone();
    resign(log, &mut cps, 2, &[&log.signer, &new]);
    resign(log, &mut cps, 3, &[&new]);
    resign(log, &mut cps, 4, &[&new]);
    let history = KeyHistory::new(vec![
        KeyPeriod {
            key: log.verifier_key(),
            first_seq: None,
            last_seq: Some(3),
        },
        KeyPeriod {
            key: new.verifier_key(),
            first_seq: Some(3),
            last_seq: None,
        },
    ]);
    (cps, history)
}

fn verify(log: &SampleLog, cps: &[Vec<u8>], history: &KeyHistory, trust: Verifiers) -> Report {
    let mut v = LogVerifier::new(ORIGIN, trust);
    v.add_checkpoints_at(
        cps.iter()
            .enumerate()
            .map(|(i, c)| (i as u64 + 1, c.as_slice())),
        history,
    );
    for r in &log.rows {
        v.push(r.as_entry_row());
    }
    v.finish()
}

fn first(r: &Report) -> (u64, Reason) {
    let b = r.first_break.as_ref().expect("a break");
    (b.index, b.reason)
}

#[test]
fn dual_signed_transition_links_either_key_to_the_other() {
    let log = log50();
    let (cps, history) = rotated(&log);
    let old = Verifiers::new([log.verifier_key()]);
    let new = Verifiers::new([new_key().verifier_key()]);
    let both = Verifiers::new([log.verifier_key(), new_key().verifier_key()]);
    for trust in [old, new, both] {
        let r = verify(&log, &cps, &history, trust);
        assert!(r.valid, "{r:#?}");
        assert_eq!(r.checkpoints_verified, 5);
    }
}

#[test]
fn retired_key_signing_after_its_range_is_a_signature_failure() {
    let log = log50();
    let (mut cps, history) = rotated(&log);
    // The retired key signs the last checkpoint again, alone.
    resign(&log, &mut cps, 4, &[&log.signer]);
    let r = verify(&log, &cps, &history, Verifiers::new([log.verifier_key()]));
    assert_eq!(first(&r), (40, Reason::CheckpointBadSignature));
    assert_eq!(r.signature_failures.len(), 1);
    assert!(
        r.signature_failures[0]
            .detail
            .contains("may sign only checkpoints ..=3"),
        "{}",
        r.signature_failures[0].detail
    );
}

#[test]
fn new_key_before_its_range_is_a_signature_failure() {
    let log = log50();
    let (mut cps, history) = rotated(&log);
    resign(&log, &mut cps, 1, &[&new_key()]);
    let r = verify(
        &log,
        &cps,
        &history,
        Verifiers::new([new_key().verifier_key()]),
    );
    assert_eq!(first(&r), (10, Reason::CheckpointBadSignature));
    assert_eq!(r.signature_failures.len(), 1);
}

#[test]
fn unknown_key_is_a_signature_failure() {
    let log = log50();
    let (mut cps, history) = rotated(&log);
    resign(&log, &mut cps, 3, &[&signer(99, "evident.local")]);
    let r = verify(&log, &cps, &history, Verifiers::new([log.verifier_key()]));
    assert_eq!(first(&r), (30, Reason::CheckpointBadSignature));
    assert_eq!(r.signature_failures.len(), 1);
}

#[test]
fn without_a_dual_signed_transition_trust_does_not_carry_over() {
    let log = log50();
    let (mut cps, history) = rotated(&log);
    resign(&log, &mut cps, 2, &[&new_key()]);
    let r = verify(&log, &cps, &history, Verifiers::new([log.verifier_key()]));
    assert_eq!(first(&r), (20, Reason::CheckpointBadSignature));
    assert_eq!(r.signature_failures.len(), 3);
}

#[test]
fn exception_naming_a_reason_does_not_hide_another_at_the_same_index() {
    let mut log = log50();
    log.rows[33].body = b"{}".to_vec();
    log.append_json(
        r#"{"kind":"evident.exception","actor":"oncall","data":{"index":33,"acknowledges":["body.digest_mismatch"],"reason":"known","approved_by":"ciso"}}"#,
    );
    log.checkpoint();
    let v = |log: &SampleLog| {
        let mut v = LogVerifier::new(ORIGIN, log.verifiers());
        v.add_checkpoints(log.checkpoints.iter().map(Vec::as_slice));
        for r in &log.rows {
            v.push(r.as_entry_row());
        }
        v.finish()
    };
    let r = v(&log);
    assert!(r.valid, "{r:#?}");
    assert_eq!(r.acknowledged.len(), 1);
    assert_eq!(r.acknowledged[0].reason, Reason::BodyDigestMismatch);
    // Later the same entry's body is erased too: a different break.
    log.rows[33].body_present = false;
    let r = v(&log);
    assert_eq!(first(&r), (33, Reason::BodyMissing));
}
