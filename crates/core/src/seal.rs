//! Seals: a log's signed checkpoint published outside the database, each
//! seal linking the one before it.
//!
//! A database can be restored from an old backup, or have its tail cut,
//! and still be consistent with itself: every row, chain link and signed
//! checkpoint it holds agrees. What it cannot agree with is a checkpoint
//! published elsewhere before the loss. A seal is that publication: once a
//! day (and on demand) the sealer writes the log's latest signed
//! checkpoint to an anchor (a directory, an object store) the database's
//! writer cannot rewrite, and a later verification checks the log against
//! every seal.
//!
//! A seal record is one JSON object, written once and never changed:
//!
//! ```json
//! {"format":"evident-seal/v1","origin":"evident.local/acme/audit","seq":3,
//!  "sealed_at":"2025-01-02T00:00:00.000000Z",
//!  "checkpoint":"evident.local/acme/audit\n120\n…\n\n— evident.local …\n",
//!  "prev":"<base64 SHA-256 of seal 2's bytes>"}
//! ```
//!
//! `seq` counts a log's seals from 0; `prev` is the SHA-256 of the previous
//! record's exact bytes (`null` for seal 0), so removing, reordering or
//! editing a published seal breaks the chain. The checkpoint is the C2SP
//! signed note as the log signed it; its signature is what makes a seal
//! trustworthy, not where it is stored.

use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, open_checkpoint};
use crate::hash::{Hash, sha256};
use crate::merkle::verify_consistency;
use crate::note::Verifiers;

/// The `format` of every seal record this version writes.
pub const SEAL_FORMAT: &str = "evident-seal/v1";

/// One published seal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seal {
    /// [`SEAL_FORMAT`].
    pub format: String,
    /// The log's origin (the checkpoint's first line).
    pub origin: String,
    /// Position in the log's seal chain, from 0.
    pub seq: u64,
    /// When it was sealed (RFC 3339 UTC).
    pub sealed_at: String,
    /// The signed checkpoint note, byte for byte.
    pub checkpoint: String,
    /// Base64 SHA-256 of the previous seal record's bytes; `None` for
    /// seal 0.
    pub prev: Option<String>,
}

impl Seal {
    /// The seal that follows `prev` (`(record, its bytes)`), or the first.
    pub fn next(
        origin: &str,
        prev: Option<(&Seal, &[u8])>,
        checkpoint: &str,
        sealed_at: &str,
    ) -> Seal {
        Seal {
            format: SEAL_FORMAT.to_owned(),
            origin: origin.to_owned(),
            seq: prev.map_or(0, |(s, _)| s.seq + 1),
            sealed_at: sealed_at.to_owned(),
            checkpoint: checkpoint.to_owned(),
            prev: prev.map(|(_, bytes)| sha256(bytes).to_base64()),
        }
    }

    /// The record's bytes: compact JSON in field order, one line.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = serde_json::to_vec(self).unwrap_or_default();
        b.push(b'\n');
        b
    }

    /// Parses a record.
    pub fn parse(bytes: &[u8]) -> Result<Seal, String> {
        let s: Seal = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if s.format != SEAL_FORMAT {
            return Err(format!("format {:?}, expected {SEAL_FORMAT:?}", s.format));
        }
        Ok(s)
    }
}

/// Why a log and its seals disagree. Stable codes, as in the verification
/// report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AnchorReason {
    /// A seal record does not parse.
    #[serde(rename = "anchor.seal_malformed")]
    SealMalformed,
    /// A seal's checkpoint has no valid trusted signature, or is another
    /// log's.
    #[serde(rename = "anchor.seal_bad_signature")]
    SealBadSignature,
    /// A seal's `seq` or `prev` does not follow the seal before it: a
    /// seal was removed, reordered or edited.
    #[serde(rename = "anchor.chain_broken")]
    ChainBroken,
    /// A seal covers a smaller tree than the seal before it.
    #[serde(rename = "anchor.seal_rollback")]
    SealRollback,
    /// The log is smaller than a seal: it was restored from an older copy
    /// or its tail was cut.
    #[serde(rename = "anchor.rollback")]
    Rollback,
    /// The log is not an extension of a seal: another root at the sealed
    /// size, or no consistency proof from it.
    #[serde(rename = "anchor.fork")]
    Fork,
}

impl AnchorReason {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            AnchorReason::SealMalformed => "anchor.seal_malformed",
            AnchorReason::SealBadSignature => "anchor.seal_bad_signature",
            AnchorReason::ChainBroken => "anchor.chain_broken",
            AnchorReason::SealRollback => "anchor.seal_rollback",
            AnchorReason::Rollback => "anchor.rollback",
            AnchorReason::Fork => "anchor.fork",
        }
    }
}

/// One disagreement between a log and its seals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnchorViolation {
    /// The seal's `seq` (its position when it does not parse).
    pub seal: u64,
    /// The size the seal covers, when known: for a rollback, the first
    /// index the log lost.
    pub index: Option<u64>,
    /// Why.
    pub reason: AnchorReason,
    /// Details for a person.
    pub detail: String,
}

/// A seal whose record parsed and whose checkpoint verified.
#[derive(Debug, Clone)]
pub struct CheckedSeal {
    /// The record.
    pub seal: Seal,
    /// Its checkpoint, verified.
    pub checkpoint: Checkpoint,
}

/// Checks a log's seal records, in `seq` order as stored: each parses,
/// names `origin`, carries a checkpoint signed by a trusted key, links the
/// previous record's bytes, and covers no smaller tree than the one
/// before. Returns the seals that verified and the problems found.
pub fn check_chain(
    origin: &str,
    records: &[Vec<u8>],
    verifiers: &Verifiers,
) -> (Vec<CheckedSeal>, Vec<AnchorViolation>) {
    let mut good = Vec::new();
    let mut problems = Vec::new();
    let mut prev: Option<(u64, Hash, u64)> = None; // (seq, record hash, size)
    for (pos, bytes) in records.iter().enumerate() {
        let pos = pos as u64;
        let seal = match Seal::parse(bytes) {
            Ok(s) => s,
            Err(e) => {
                problems.push(AnchorViolation {
                    seal: pos,
                    index: None,
                    reason: AnchorReason::SealMalformed,
                    detail: format!("seal record {pos}: {e}"),
                });
                prev = None;
                continue;
            }
        };
        let expected_seq = prev.map_or(pos, |(s, _, _)| s + 1);
        let expected_prev = prev.map(|(_, h, _)| h.to_base64());
        if seal.seq != expected_seq
            || (pos > 0 || seal.prev.is_some()) && seal.prev != expected_prev
        {
            problems.push(AnchorViolation {
                seal: seal.seq,
                index: None,
                reason: AnchorReason::ChainBroken,
                detail: format!(
                    "seal {} does not follow the one before it (expected seq {expected_seq}, prev {:?}; found prev {:?})",
                    seal.seq, expected_prev, seal.prev
                ),
            });
        }
        let record_hash = sha256(bytes);
        match open_checkpoint(seal.checkpoint.as_bytes(), verifiers, Some(origin)) {
            Ok((cp, _)) => {
                if let Some((_, _, prev_size)) = prev
                    && cp.size < prev_size
                {
                    problems.push(AnchorViolation {
                        seal: seal.seq,
                        index: Some(cp.size),
                        reason: AnchorReason::SealRollback,
                        detail: format!(
                            "seal {} covers {} entries, the seal before it {prev_size}",
                            seal.seq, cp.size
                        ),
                    });
                }
                prev = Some((seal.seq, record_hash, cp.size));
                good.push(CheckedSeal {
                    seal,
                    checkpoint: cp,
                });
            }
            Err(e) => {
                problems.push(AnchorViolation {
                    seal: seal.seq,
                    index: None,
                    reason: AnchorReason::SealBadSignature,
                    detail: format!("seal {}: checkpoint: {e}", seal.seq),
                });
                prev = Some((seal.seq, record_hash, prev.map_or(0, |p| p.2)));
            }
        }
    }
    (good, problems)
}

/// Checks that a log whose current signed checkpoint is `current` extends
/// `sealed`. `proof(from, to)` gives the consistency proof between two
/// sizes of the log as stored (the caller computes it from its tiles).
pub fn check_extends(
    sealed: &CheckedSeal,
    current: &Checkpoint,
    proof: &mut dyn FnMut(u64, u64) -> Result<Vec<Hash>, String>,
) -> Option<AnchorViolation> {
    let s = &sealed.checkpoint;
    let violation = |reason, detail| {
        Some(AnchorViolation {
            seal: sealed.seal.seq,
            index: Some(s.size.min(current.size)),
            reason,
            detail,
        })
    };
    if current.size < s.size {
        return violation(
            AnchorReason::Rollback,
            format!(
                "the log has {} entries but seal {} (sealed at {}) covers {}: restored from an older copy, or its tail was cut",
                current.size, sealed.seal.seq, sealed.seal.sealed_at, s.size
            ),
        );
    }
    if current.size == s.size {
        if current.root != s.root {
            return violation(
                AnchorReason::Fork,
                format!(
                    "the log's root at size {} is {}, seal {} says {}",
                    s.size, current.root, sealed.seal.seq, s.root
                ),
            );
        }
        return None;
    }
    let checked = proof(s.size, current.size).and_then(|p| {
        verify_consistency(s.size, current.size, &p, &s.root, &current.root)
            .map_err(|e| e.to_string())
    });
    match checked {
        Ok(()) => None,
        Err(e) => violation(
            AnchorReason::Fork,
            format!(
                "the log of size {} is not proven to extend seal {} (size {}): {e}",
                current.size, sealed.seal.seq, s.size
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
    use super::*;
    use crate::checkpoint::sign_checkpoint;
    use crate::hash::leaf_hash;
    use crate::merkle::{MemoryNodes, consistency_proof};
    use crate::note::NoteSigner;

    const ORIGIN: &str = "test.example/acme/audit";

    fn signer(seed: u8) -> NoteSigner {
        NoteSigner::new(
            "test.example",
            ed25519_dalek::SigningKey::from_bytes(&[seed; 32]),
        )
        .unwrap()
    }

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("e{i}").as_bytes()))
            .collect()
    }

    fn root(n: u64) -> Hash {
        crate::merkle::root_at(n, &MemoryNodes::from_leaves(leaves(n))).unwrap()
    }

    fn cp(n: u64, r: Hash) -> Checkpoint {
        Checkpoint {
            origin: ORIGIN.into(),
            size: n,
            root: r,
            extensions: vec![],
        }
    }

    fn note(n: u64, key: &NoteSigner) -> String {
        sign_checkpoint(&cp(n, root(n)), &[key]).unwrap()
    }

    /// Seals of sizes `sizes`, chained, as stored bytes.
    fn chain(sizes: &[u64]) -> Vec<Vec<u8>> {
        let key = signer(1);
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut prev: Option<Seal> = None;
        for &n in sizes {
            let s = Seal::next(
                ORIGIN,
                prev.as_ref().zip(out.last().map(Vec::as_slice)),
                &note(n, &key),
                "2025-01-01T00:00:00.000000Z",
            );
            out.push(s.to_bytes());
            prev = Some(s);
        }
        out
    }

    fn codes(v: &[AnchorViolation]) -> Vec<(u64, &'static str)> {
        v.iter().map(|x| (x.seal, x.reason.code())).collect()
    }

    #[test]
    fn a_chain_verifies_and_roundtrips() {
        let records = chain(&[3, 5, 5, 9]);
        let keys = Verifiers::new(vec![signer(1).verifier_key()]);
        let (good, bad) = check_chain(ORIGIN, &records, &keys);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(good.len(), 4);
        assert_eq!(good[3].checkpoint.size, 9);
        let s = Seal::parse(&records[1]).unwrap();
        assert_eq!(s.to_bytes(), records[1]);
        assert_eq!(s.prev, Some(sha256(&records[0]).to_base64()));
        assert_eq!(Seal::parse(&records[0]).unwrap().prev, None);
    }

    #[test]
    fn removed_edited_foreign_and_shrinking_seals_are_found() {
        let keys = Verifiers::new(vec![signer(1).verifier_key()]);
        let mut records = chain(&[3, 5, 9]);
        records.remove(1);
        assert_eq!(
            codes(&check_chain(ORIGIN, &records, &keys).1),
            [(2, "anchor.chain_broken")]
        );

        let mut records = chain(&[3, 5, 9]);
        let mut s = Seal::parse(&records[0]).unwrap();
        s.sealed_at = "2024-01-01T00:00:00.000000Z".into();
        records[0] = s.to_bytes();
        assert_eq!(
            codes(&check_chain(ORIGIN, &records, &keys).1),
            [(1, "anchor.chain_broken")]
        );

        let other = Verifiers::new(vec![signer(2).verifier_key()]);
        let (good, bad) = check_chain(ORIGIN, &chain(&[3]), &other);
        assert!(good.is_empty());
        assert_eq!(codes(&bad), [(0, "anchor.seal_bad_signature")]);

        assert_eq!(
            codes(&check_chain(ORIGIN, &chain(&[5, 3]), &keys).1),
            [(1, "anchor.seal_rollback")]
        );
        let mut records = chain(&[3]);
        records.push(b"{\"format\":\"nope\"}".to_vec());
        assert_eq!(
            codes(&check_chain(ORIGIN, &records, &keys).1),
            [(1, "anchor.seal_malformed")]
        );
    }

    #[test]
    fn a_log_must_extend_every_seal() {
        let keys = Verifiers::new(vec![signer(1).verifier_key()]);
        let (good, _) = check_chain(ORIGIN, &chain(&[5]), &keys);
        let sealed = &good[0];
        let all = leaves(12);
        let mut proof = |from: u64, to: u64| -> Result<Vec<Hash>, String> {
            let tree = crate::merkle::MemoryNodes::from_leaves(all[..to as usize].iter().copied());
            consistency_proof(from, to, &tree).map_err(|e| e.to_string())
        };
        assert_eq!(check_extends(sealed, &cp(12, root(12)), &mut proof), None);
        assert_eq!(check_extends(sealed, &cp(5, root(5)), &mut proof), None);
        let v = check_extends(sealed, &cp(4, root(4)), &mut proof).unwrap();
        assert_eq!((v.reason, v.index), (AnchorReason::Rollback, Some(4)));
        let v = check_extends(sealed, &cp(5, root(6)), &mut proof).unwrap();
        assert_eq!(v.reason, AnchorReason::Fork);
        // Another history of 12 entries does not extend the sealed 5.
        let v = check_extends(sealed, &cp(12, root(11)), &mut proof).unwrap();
        assert_eq!(v.reason, AnchorReason::Fork);
    }
}
