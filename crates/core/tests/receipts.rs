//! Receipts verified with nothing but a verifier key, and every way a
//! receipt can be wrong.
#![allow(clippy::cast_possible_truncation, clippy::unwrap_used)]

mod common;

use common::{SampleLog, signer};
use evident_core::ErrorCode;
use evident_core::checkpoint::{Checkpoint, CheckpointError, sign_checkpoint};
use evident_core::entry::{Body, Envelope};
use evident_core::merkle::{MerkleError, inclusion_proof};
use evident_core::note::{NoteError, Verifiers};
use evident_core::receipt::{RECEIPT_FORMAT, Receipt, ReceiptError, encode_salt, verify_receipt};

fn receipt_for(log: &SampleLog, index: u64, with_body: bool) -> Receipt {
    let row = &log.rows[index as usize];
    let size = log.tree.size();
    Receipt {
        format: RECEIPT_FORMAT.into(),
        index,
        leaf_hash: row.leaf,
        envelope: Envelope::parse(&row.envelope).unwrap(),
        body: with_body.then(|| Body::parse(&row.body).unwrap()),
        salt: with_body.then(|| encode_salt(&row.salt)),
        checkpoint: String::from_utf8(log.checkpoints.last().unwrap().clone()).unwrap(),
        inclusion_proof: inclusion_proof(index, size, &log.nodes).unwrap(),
    }
}

fn log() -> SampleLog {
    SampleLog::batches(3, 37)
}

#[test]
fn every_receipt_of_a_log_verifies_offline() {
    let log = log();
    for i in 0..log.tree.size() {
        let r = receipt_for(&log, i, i % 2 == 0);
        // Round trip through JSON: an auditor gets a file, not a struct.
        let v = verify_receipt(r.to_json().as_bytes(), &log.verifiers()).unwrap();
        assert_eq!(v.checkpoint.size, 111);
        assert_eq!(v.body_verified, i % 2 == 0);
        assert_eq!(v.signed_by, vec!["evident.local".to_string()]);
    }
}

#[test]
fn receipt_against_an_older_checkpoint_verifies() {
    let log = log();
    let mut r = receipt_for(&log, 5, true);
    r.checkpoint = String::from_utf8(log.checkpoints[0].clone()).unwrap();
    r.inclusion_proof = inclusion_proof(5, 37, &log.nodes).unwrap();
    assert_eq!(r.verify(&log.verifiers()).unwrap().checkpoint.size, 37);
}

#[test]
fn altered_envelope_is_a_leaf_mismatch() {
    let log = log();
    let mut r = receipt_for(&log, 9, false);
    r.envelope.kind = "access.denied".into();
    let e = r.verify(&log.verifiers()).unwrap_err();
    assert!(matches!(e, ReceiptError::LeafMismatch { .. }), "{e:?}");
    assert_eq!(e.code(), "receipt.leaf_mismatch");
}

#[test]
fn altered_envelope_and_leaf_fails_the_proof() {
    let log = log();
    let mut r = receipt_for(&log, 9, false);
    r.envelope.kind = "access.denied".into();
    r.leaf_hash = r.envelope.leaf_hash();
    let e = r.verify(&log.verifiers()).unwrap_err();
    assert!(
        matches!(e, ReceiptError::Proof(MerkleError::RootMismatch { .. })),
        "{e:?}"
    );
    assert_eq!(e.code(), "receipt.bad_proof");
}

#[test]
fn altered_body_is_a_body_mismatch() {
    let log = log();
    let mut r = receipt_for(&log, 12, true);
    r.body.as_mut().unwrap().actor = Some("mallory".into());
    assert_eq!(r.verify(&log.verifiers()), Err(ReceiptError::BodyMismatch));
}

#[test]
fn body_without_salt_is_refused() {
    let log = log();
    let mut r = receipt_for(&log, 12, true);
    r.salt = None;
    assert_eq!(r.verify(&log.verifiers()), Err(ReceiptError::BadSalt));
    r.salt = Some("AAAA".into());
    assert_eq!(r.verify(&log.verifiers()), Err(ReceiptError::BadSalt));
}

#[test]
fn stated_index_must_match_the_envelope() {
    let log = log();
    let mut r = receipt_for(&log, 12, false);
    r.index = 13;
    assert_eq!(
        r.verify(&log.verifiers()),
        Err(ReceiptError::IndexMismatch {
            stated: 13,
            envelope: 12
        })
    );
}

#[test]
fn untrusted_key_is_refused() {
    let log = log();
    let r = receipt_for(&log, 3, false);
    let other = Verifiers::new([signer(42, "evident.local").verifier_key()]);
    let e = r.verify(&other).unwrap_err();
    assert!(
        matches!(
            e,
            ReceiptError::Checkpoint(CheckpointError::Note(NoteError::NoKnownSignature { .. }))
        ),
        "{e:?}"
    );
    assert_eq!(e.code(), "note.no_known_signature");
}

#[test]
fn checkpoint_of_another_log_is_refused() {
    let log = log();
    let mut r = receipt_for(&log, 3, false);
    let cp = Checkpoint {
        origin: "evident.local/acme/other".into(),
        size: log.tree.size(),
        root: log.tree.root(),
        extensions: vec![],
    };
    r.checkpoint = sign_checkpoint(&cp, &[&log.signer]).unwrap();
    let e = r.verify(&log.verifiers()).unwrap_err();
    assert_eq!(e.code(), "checkpoint.origin_mismatch");
}

#[test]
fn entry_beyond_the_checkpoint_is_not_covered() {
    let log = log();
    let mut r = receipt_for(&log, 50, false);
    r.checkpoint = String::from_utf8(log.checkpoints[0].clone()).unwrap();
    assert_eq!(
        r.verify(&log.verifiers()),
        Err(ReceiptError::NotCovered {
            index: 50,
            size: 37
        })
    );
}

#[test]
fn each_flipped_proof_bit_is_refused() {
    let log = log();
    let r = receipt_for(&log, 77, false);
    for step in 0..r.inclusion_proof.len() {
        for bit in [0usize, 7, 128, 255] {
            let mut bad = r.clone();
            bad.inclusion_proof[step].0[bit / 8] ^= 1 << (bit % 8);
            assert!(
                bad.verify(&log.verifiers()).is_err(),
                "step {step} bit {bit}"
            );
        }
    }
    let mut short = r.clone();
    short.inclusion_proof.pop();
    assert_eq!(
        short.verify(&log.verifiers()).unwrap_err().code(),
        "receipt.bad_proof"
    );
}

#[test]
fn malformed_and_unknown_formats_are_refused() {
    let log = log();
    assert_eq!(
        Receipt::parse(b"{").unwrap_err().code(),
        "receipt.malformed"
    );
    let mut json: serde_json::Value =
        serde_json::from_str(&receipt_for(&log, 1, false).to_json()).unwrap();
    json["surprise"] = 1.into();
    assert_eq!(
        Receipt::parse(json.to_string().as_bytes())
            .unwrap_err()
            .code(),
        "receipt.malformed"
    );
    let mut r = receipt_for(&log, 1, false);
    r.format = "evident.receipt.v9".into();
    assert_eq!(
        r.verify(&log.verifiers()),
        Err(ReceiptError::UnsupportedFormat("evident.receipt.v9".into()))
    );
}
