//! Streaming log verification.
//!
//! The verifier recomputes everything a log claims from the entry bytes
//! alone and checks it against the log's signed checkpoints. It trusts
//! nothing else a database holds: stored leaf hashes and row positions are
//! compared with what the bytes say, never used in their place. The same
//! code runs in the server, in `evident verify` and on an auditor's offline
//! export, so all three reach the same verdict.
//!
//! Entries are fed one at a time in index order and forgotten. State is the
//! Merkle frontier (O(log n) hashes), the previous entry's leaf hash and
//! timestamp, one sequence counter per producer, the checkpoints, and the
//! problems found so far (capped at [`MAX_LISTED`]), so a log of any length
//! verifies in bounded memory.
//!
//! # What each check catches
//!
//! | reason | list | what it means |
//! |---|---|---|
//! | `entry.malformed` | `chain_breaks` | envelope bytes are not a canonical v1 envelope |
//! | `entry.wrong_origin` | `chain_breaks` | envelope names another log |
//! | `entry.index_mismatch` | `chain_breaks` | envelope's index is not the row's position (moved or swapped rows) |
//! | `entry.leaf_hash_mismatch` | `chain_breaks` | stored leaf hash differs from the hash of the bytes (edited envelope) |
//! | `chain.prev_mismatch` | `chain_breaks` | `prev` is not the previous entry's leaf hash |
//! | `body.digest_mismatch` | `chain_breaks` | body or salt no longer matches the envelope's digest (edited body) |
//! | `body.missing` | `chain_breaks` | body gone with no `evident.redaction` entry for it |
//! | `time.decreasing` | `retrocausation_violations` | `ts` earlier than the entry before it |
//! | `causality.parent_not_earlier` | `retrocausation_violations` | `parent` is not an earlier index |
//! | `gap.missing_entries` | `gaps` | indices missing between two rows (deleted entries) |
//! | `gap.truncated` | `gaps` | a signed checkpoint covers entries the log no longer has |
//! | `source.seq_gap` | `gaps` | a producer skipped sequence numbers |
//! | `source.seq_regression` | `gaps` | a producer's sequence number repeated or went back |
//! | `checkpoint.bad_signature` | `signature_failures` | no valid signature by a trusted key, or a bad one by a known key |
//! | `checkpoint.root_mismatch` | `checkpoint_mismatches` | recomputed tree root differs from a signed root |
//! | `checkpoint.wrong_origin` | `checkpoint_mismatches` | a validly signed checkpoint of another log |
//! | `checkpoint.rollback` | `checkpoint_mismatches` | a checkpoint smaller than one stored before it |
//! | `checkpoint.uncovered` | `checkpoint_mismatches` | entries past the last valid checkpoint, which every batch must have |
//!
//! # Which index a problem is reported at
//!
//! Entry problems are reported at the entry. A checkpoint vouches for the
//! entries between the previous valid checkpoint and its own size, so a
//! checkpoint problem is reported at the first entry it alone vouched for:
//! that is as precisely as signed data can locate a change that was hidden
//! by recomputing every later hash. When several problems share an index,
//! `first_break` names the most specific one (see [`Reason::rank`]).

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, open_checkpoint};
use crate::entry::{Body, Envelope, EnvelopeView, SALT_SIZE, body_digest, genesis_prev};
use crate::hash::{Hash, leaf_hash};
use crate::merkle::CompactTree;
use crate::note::Verifiers;
use crate::note::{VerifierKey, open_note};

/// Most problems listed in one report; counts stay exact beyond it.
pub const MAX_LISTED: usize = 10_000;

/// Kind of the entries that acknowledge breaks (see [`Exception`]).
pub const EXCEPTION_KIND: &str = "evident.exception";
/// Kind of the entries that record an erased body.
pub const REDACTION_KIND: &str = "evident.redaction";
/// Kind of the entries that record a repair from a trusted copy (see
/// [`Repair`]).
pub const CHAIN_REPAIRED_KIND: &str = "evident.chain_repaired";

/// A repair the log records: an `evident.chain_repaired` entry whose body
/// lists, in `data.restored`, the earlier entries whose original bytes
/// were put back from a trusted copy. A repaired entry verifies like any
/// other (its bytes are the signed ones again), so without this list the
/// report would not show that anything happened: an operator or auditor
/// reads here which entries were once tampered with and where the repair
/// is recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repair {
    /// Index of the `evident.chain_repaired` entry.
    pub index: u64,
    /// Entries it says were restored (each before it).
    pub restored: Vec<u64>,
}

impl Repair {
    /// Reads a repair marker's body; indices not before the marker are
    /// ignored (a marker cannot vouch for what came after it).
    pub fn from_body(body: &Body, at: u64) -> Repair {
        let restored = body
            .data
            .as_ref()
            .and_then(|d| d.get("restored"))
            .and_then(|r| r.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(serde_json::Value::as_u64)
                    .filter(|&i| i < at)
                    .collect()
            })
            .unwrap_or_default();
        Repair {
            index: at,
            restored,
        }
    }
}

/// One stored entry as the verifier receives it.
#[derive(Debug, Clone, Copy)]
pub struct EntryRow<'a> {
    /// Position at which the store holds this row. Compared with the
    /// envelope's own `index`, never trusted in its place.
    pub index: u64,
    /// The envelope bytes exactly as stored (what the tree hashes).
    pub envelope: &'a [u8],
    /// The leaf hash the store or export holds for this row, if any
    /// (an index column, or the level-0 tile).
    pub stored_leaf_hash: Option<Hash>,
    /// The body as stored.
    pub body: BodyRow<'a>,
}

/// What the store holds of an entry's body.
#[derive(Debug, Clone, Copy)]
pub enum BodyRow<'a> {
    /// The canonical body bytes and their salt.
    Present {
        /// The 16-byte salt (any other length is a break).
        salt: &'a [u8],
        /// Canonical body bytes.
        body: &'a [u8],
    },
    /// The store has no body for this entry: it must have been redacted.
    Absent,
    /// Bodies are not being checked (a tiles-only verification).
    NotChecked,
}

/// A stable reason code. Serialised as its dotted string ([`Reason::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Reason {
    /// Envelope bytes are not a canonical v1 envelope.
    EntryMalformed,
    /// Envelope names another log.
    EntryWrongOrigin,
    /// Envelope's index is not the row's position.
    EntryIndexMismatch,
    /// Stored leaf hash differs from the hash of the stored bytes.
    LeafHashMismatch,
    /// `prev` is not the previous entry's leaf hash.
    PrevMismatch,
    /// Body or salt does not match the envelope's body digest.
    BodyDigestMismatch,
    /// Body absent without a redaction entry.
    BodyMissing,
    /// `ts` earlier than the previous entry's.
    TimeDecreasing,
    /// `parent` is not an earlier index.
    ParentNotEarlier,
    /// Indices missing between rows.
    MissingEntries,
    /// A signed checkpoint covers entries the log no longer has.
    Truncated,
    /// A producer skipped sequence numbers.
    SourceSeqGap,
    /// A producer's sequence number repeated or went back.
    SourceSeqRegression,
    /// A checkpoint without a valid trusted signature.
    CheckpointBadSignature,
    /// Recomputed root differs from a signed root.
    CheckpointRootMismatch,
    /// A validly signed checkpoint of another log.
    CheckpointWrongOrigin,
    /// A checkpoint smaller than one stored before it.
    CheckpointRollback,
    /// Entries past the last valid checkpoint.
    CheckpointUncovered,
}

impl Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Reason::from_code(&code)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown reason code {code:?}")))
    }
}

/// Which list of the report a reason belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    Chain,
    Signature,
    Retrocausation,
    Gap,
    Checkpoint,
}

impl Reason {
    /// Every reason, so codes can be read back by looking them up.
    pub const ALL: [Reason; 18] = [
        Reason::EntryMalformed,
        Reason::EntryWrongOrigin,
        Reason::EntryIndexMismatch,
        Reason::LeafHashMismatch,
        Reason::PrevMismatch,
        Reason::BodyDigestMismatch,
        Reason::BodyMissing,
        Reason::TimeDecreasing,
        Reason::ParentNotEarlier,
        Reason::MissingEntries,
        Reason::Truncated,
        Reason::SourceSeqGap,
        Reason::SourceSeqRegression,
        Reason::CheckpointBadSignature,
        Reason::CheckpointRootMismatch,
        Reason::CheckpointWrongOrigin,
        Reason::CheckpointRollback,
        Reason::CheckpointUncovered,
    ];

    /// The reason with this code, if any.
    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The stable dotted code: the one place each code is spelled, used by
    /// the report's JSON as well.
    pub fn code(self) -> &'static str {
        match self {
            Reason::EntryMalformed => "entry.malformed",
            Reason::EntryWrongOrigin => "entry.wrong_origin",
            Reason::EntryIndexMismatch => "entry.index_mismatch",
            Reason::LeafHashMismatch => "entry.leaf_hash_mismatch",
            Reason::PrevMismatch => "chain.prev_mismatch",
            Reason::BodyDigestMismatch => "body.digest_mismatch",
            Reason::BodyMissing => "body.missing",
            Reason::TimeDecreasing => "time.decreasing",
            Reason::ParentNotEarlier => "causality.parent_not_earlier",
            Reason::MissingEntries => "gap.missing_entries",
            Reason::Truncated => "gap.truncated",
            Reason::SourceSeqGap => "source.seq_gap",
            Reason::SourceSeqRegression => "source.seq_regression",
            Reason::CheckpointBadSignature => "checkpoint.bad_signature",
            Reason::CheckpointRootMismatch => "checkpoint.root_mismatch",
            Reason::CheckpointWrongOrigin => "checkpoint.wrong_origin",
            Reason::CheckpointRollback => "checkpoint.rollback",
            Reason::CheckpointUncovered => "checkpoint.uncovered",
        }
    }

    /// Problems located at a specific entry by that entry's own bytes.
    fn is_entry_level(self) -> bool {
        matches!(self.category(), Category::Chain | Category::Retrocausation)
            || self == Reason::MissingEntries
    }

    fn category(self) -> Category {
        match self {
            Reason::EntryMalformed
            | Reason::EntryWrongOrigin
            | Reason::EntryIndexMismatch
            | Reason::LeafHashMismatch
            | Reason::PrevMismatch
            | Reason::BodyDigestMismatch
            | Reason::BodyMissing => Category::Chain,
            Reason::TimeDecreasing | Reason::ParentNotEarlier => Category::Retrocausation,
            Reason::MissingEntries
            | Reason::Truncated
            | Reason::SourceSeqGap
            | Reason::SourceSeqRegression => Category::Gap,
            Reason::CheckpointBadSignature => Category::Signature,
            Reason::CheckpointRootMismatch
            | Reason::CheckpointWrongOrigin
            | Reason::CheckpointRollback
            | Reason::CheckpointUncovered => Category::Checkpoint,
        }
    }

    /// Order among problems found at the same index: the most specific
    /// explanation first. A backwards `ts` also changes the leaf hash, but
    /// "time went backwards" is what the operator needs to read; a missing
    /// row explains the chain break after it; a bad signature explains why
    /// the entries it covered are uncovered.
    pub fn rank(self) -> u8 {
        match self {
            Reason::MissingEntries => 0,
            Reason::Truncated => 1,
            Reason::EntryMalformed => 2,
            Reason::EntryIndexMismatch => 3,
            Reason::EntryWrongOrigin => 4,
            Reason::TimeDecreasing => 5,
            Reason::ParentNotEarlier => 6,
            Reason::BodyMissing => 7,
            Reason::BodyDigestMismatch => 8,
            Reason::LeafHashMismatch => 9,
            Reason::PrevMismatch => 10,
            Reason::CheckpointBadSignature => 11,
            Reason::CheckpointWrongOrigin => 12,
            Reason::CheckpointRollback => 13,
            Reason::CheckpointRootMismatch => 14,
            Reason::CheckpointUncovered => 15,
            Reason::SourceSeqGap => 16,
            Reason::SourceSeqRegression => 17,
        }
    }
}

/// One problem, at one index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The entry index the problem is located at (see the module docs).
    pub index: u64,
    /// Stable reason code.
    pub reason: Reason,
    /// What was found, for a person.
    pub detail: String,
    /// For checkpoint problems: the checkpoint's tree size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_size: Option<u64>,
    /// For gaps: the last missing index or sequence number (inclusive);
    /// the first is `index` for index gaps and `missing_from` for sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_from: Option<u64>,
    /// For gaps: the last missing index or sequence number (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_to: Option<u64>,
    /// For producer gaps: the producer id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// For acknowledged problems: the index of the exception entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<u64>,
    /// Timestamp of the last entry before `index`, used for
    /// `last_verified_timestamp`; not part of the report.
    #[serde(skip)]
    before_ts: Option<String>,
}

impl Violation {
    fn new(index: u64, reason: Reason, detail: impl Into<String>) -> Self {
        Violation {
            index,
            reason,
            detail: detail.into(),
            checkpoint_size: None,
            missing_from: None,
            missing_to: None,
            source: None,
            acknowledged_by: None,
            before_ts: None,
        }
    }

    fn sort_key(&self) -> (u64, u8) {
        (self.index, self.reason.rank())
    }
}

/// The verification report of DESIGN.md, shared by `evident verify`,
/// `evident verify-export` and `GET /v1/logs/<log>/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// True when no unacknowledged problem was found.
    pub valid: bool,
    /// The log's origin.
    pub origin: String,
    /// Entries the log should have: the largest of the rows seen, the
    /// highest index seen plus one, the largest signed size and the size
    /// the store claims.
    pub total_count: u64,
    /// Rows fed to the verifier.
    pub rows_checked: u64,
    /// Rows before the first break.
    pub verified_count: u64,
    /// Checkpoints examined.
    pub checkpoints_checked: u64,
    /// Checkpoints whose signature verified and whose root matched.
    pub checkpoints_verified: u64,
    /// Size of the largest checkpoint that verified and matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_size: Option<u64>,
    /// Entry-level breaks: bytes, hashes, chain links, bodies.
    pub chain_breaks: Vec<Violation>,
    /// Checkpoints without a valid trusted signature.
    pub signature_failures: Vec<Violation>,
    /// Time going backwards, or an entry before its causal parent.
    pub retrocausation_violations: Vec<Violation>,
    /// Missing indices, truncation, and producer sequence gaps.
    pub gaps: Vec<Violation>,
    /// Signed roots the recomputed tree does not match.
    pub checkpoint_mismatches: Vec<Violation>,
    /// The earliest unacknowledged problem.
    pub first_break: Option<Violation>,
    /// Problems covered by an `evident.exception` entry.
    pub acknowledged: Vec<Violation>,
    /// Entries whose body was erased with a redaction entry.
    pub redacted_count: u64,
    /// Repairs recorded in the log, in index order.
    #[serde(default)]
    pub repairs: Vec<Repair>,
    /// Last index of the unbroken prefix.
    pub last_verified_index: Option<u64>,
    /// `ts` of that entry.
    pub last_verified_timestamp: Option<String>,
    /// Number of unacknowledged problems (exact, even when lists are cut).
    pub violation_count: u64,
    /// True when more than [`MAX_LISTED`] problems were found and the
    /// lists hold only the first ones.
    pub truncated: bool,
    /// Every unacknowledged problem, flattened, in index order.
    pub violations: Vec<Violation>,
}

/// The body of an `evident.exception` or `evident.redaction` entry names
/// the entries it concerns in its `data`: `{"index": N}` or
/// `{"index": N, "through": M}` (inclusive). An exception may also name
/// the reason codes it acknowledges, `"acknowledges": ["body.digest_mismatch"]`:
/// then a problem of another kind at those indices stays open, so an
/// exception approved for one break never hides a later, different one.
/// Anything else in `data` (`reason`, `approved_by`, …) is for people and
/// is not interpreted here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    /// First index covered.
    pub from: u64,
    /// Last index covered (inclusive).
    pub through: u64,
    /// Index of the exception entry itself.
    pub at: u64,
    /// The reasons acknowledged; empty for every reason.
    pub reasons: Vec<Reason>,
}

impl Exception {
    /// Reads the covered range from an exception or redaction body. `None`
    /// when the body does not name a valid range.
    pub fn from_body(body: &Body, at: u64) -> Option<Exception> {
        let data = body.data.as_ref()?.as_object()?;
        let from = data.get("index")?.as_u64()?;
        let through = match data.get("through") {
            None => from,
            Some(v) => v.as_u64()?,
        };
        let reasons = match data.get("acknowledges") {
            None => Vec::new(),
            Some(list) => {
                let codes = list.as_array()?;
                let reasons = codes
                    .iter()
                    .map(|c| c.as_str().and_then(Reason::from_code))
                    .collect::<Option<Vec<_>>>()?;
                if reasons.is_empty() {
                    return None;
                }
                reasons
            }
        };
        (through >= from).then_some(Exception {
            from,
            through,
            at,
            reasons,
        })
    }

    fn covers(&self, index: u64) -> bool {
        (self.from..=self.through).contains(&index)
    }

    /// Whether this exception acknowledges `v`.
    fn acknowledges(&self, v: &Violation) -> bool {
        self.covers(v.index) && (self.reasons.is_empty() || self.reasons.contains(&v.reason))
    }
}

/// One key of a key history and the checkpoints it may sign, by their
/// storage sequence number (`seq`, which only grows, across all logs).
///
/// A rotation writes, for each log, a transition checkpoint signed by both
/// the old and the new key: the old key's range ends with the last of
/// them, the new key's starts with the first. So a checkpoint signed only
/// by a retired key after its range (a stolen old key, a server still
/// running with it) is a signature failure, and a verifier that trusts
/// only the old key can follow the transition to the new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPeriod {
    /// The key.
    pub key: VerifierKey,
    /// First `seq` it may sign; `None` from the start.
    pub first_seq: Option<u64>,
    /// Last `seq` it may sign; `None` while current.
    pub last_seq: Option<u64>,
}

impl KeyPeriod {
    fn covers(&self, seq: u64) -> bool {
        self.first_seq.is_none_or(|f| seq >= f) && self.last_seq.is_none_or(|l| seq <= l)
    }

    /// The range for a person: `5..=9`, `..=9`, `5..`, `all`.
    pub fn range_text(&self) -> String {
        match (self.first_seq, self.last_seq) {
            (None, None) => "all".to_owned(),
            (f, l) => format!(
                "{}..{}",
                f.map(|f| f.to_string()).unwrap_or_default(),
                l.map(|l| format!("={l}")).unwrap_or_default()
            ),
        }
    }
}

/// Every key a log's checkpoints may be signed with, and when.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyHistory {
    periods: Vec<KeyPeriod>,
}

impl KeyHistory {
    /// A history from its periods, oldest key first.
    pub fn new(periods: Vec<KeyPeriod>) -> Self {
        KeyHistory { periods }
    }

    /// The periods.
    pub fn periods(&self) -> &[KeyPeriod] {
        &self.periods
    }

    /// The history's period of `key`, or, for a key it does not list (a
    /// key pinned by hand, an export without history), every checkpoint.
    fn period_of(&self, key: &VerifierKey) -> KeyPeriod {
        self.periods
            .iter()
            .find(|p| &p.key == key)
            .cloned()
            .unwrap_or(KeyPeriod {
                key: key.clone(),
                first_seq: None,
                last_seq: None,
            })
    }
}

/// Opens checkpoints given with their storage `seq`, each against the
/// `trusted` keys whose period in `history` covers it, after extending
/// trust along dual-signed transitions (see
/// [`LogVerifier::add_checkpoints_at`]). Returns them in `seq` order, each
/// with the parsed checkpoint or why it is refused (for a person). The
/// origin is not checked here.
pub fn open_checkpoints_at<'a>(
    notes: impl IntoIterator<Item = (u64, &'a [u8])>,
    history: &KeyHistory,
    trusted: &Verifiers,
) -> Vec<(u64, &'a [u8], Result<Checkpoint, String>)> {
    let mut notes: Vec<(u64, &[u8])> = notes.into_iter().collect();
    notes.sort_by_key(|n| n.0);
    let trust = CheckpointTrust::link(history, trusted, notes.iter().copied());
    notes
        .into_iter()
        .map(|(seq, note)| (seq, note, trust.open(seq, note)))
        .collect()
}

/// Whether `key` alone validly signed `note`.
fn signed_by(note: &[u8], key: &VerifierKey) -> bool {
    open_note(note, &Verifiers::new([key.clone()])).is_ok()
}

/// The keys a log's checkpoints are checked against, each with the range
/// of `seq` it may sign, after trust was extended along the key history's
/// dual-signed transitions.
///
/// Split from opening so that a caller can open checkpoints one at a time
/// (a verifier streaming millions of them) once it has linked the few
/// transition checkpoints: only a checkpoint inside the periods of two keys,
/// one of them not yet trusted, can link keys
/// ([`CheckpointTrust::may_link`]).
#[derive(Debug, Clone)]
pub struct CheckpointTrust {
    trusted: Vec<KeyPeriod>,
}

impl CheckpointTrust {
    /// Whether linking can trust more keys than `trusted`: false when the
    /// history lists no key outside it, and then no note need be read.
    pub fn needs_links(history: &KeyHistory, trusted: &Verifiers) -> bool {
        history
            .periods
            .iter()
            .any(|p| !trusted.keys().contains(&p.key))
    }

    /// Whether the checkpoint stored at `seq` can link a key to `trusted`:
    /// it lies in the period of a key `trusted` lacks and in the period of
    /// another key. Notes for which this is false never change
    /// [`CheckpointTrust::link`]'s result.
    pub fn may_link(history: &KeyHistory, trusted: &Verifiers, seq: u64) -> bool {
        let is_trusted = |p: &KeyPeriod| trusted.keys().contains(&p.key);
        let untrusted = history
            .periods
            .iter()
            .filter(|p| !is_trusted(p) && p.covers(seq))
            .count();
        untrusted >= 2
            || (untrusted == 1
                && trusted
                    .keys()
                    .iter()
                    .any(|k| history.period_of(k).covers(seq)))
    }

    /// Trust for `keys`, extended along the transitions among `notes`
    /// (storage `seq` and note; any order). Notes for which
    /// [`CheckpointTrust::may_link`] is false are ignored, so passing only
    /// the others gives the same result.
    pub fn link<'a>(
        history: &KeyHistory,
        keys: &Verifiers,
        notes: impl IntoIterator<Item = (u64, &'a [u8])>,
    ) -> Self {
        let mut trusted: Vec<KeyPeriod> =
            keys.keys().iter().map(|k| history.period_of(k)).collect();
        let untrusted: Vec<&KeyPeriod> = history
            .periods
            .iter()
            .filter(|p| !trusted.iter().any(|t| t.key == p.key))
            .collect();
        if untrusted.is_empty() {
            return CheckpointTrust { trusted };
        }
        let mut notes: Vec<(u64, &[u8])> = notes
            .into_iter()
            .filter(|(seq, _)| Self::may_link(history, keys, *seq))
            .collect();
        notes.sort_by_key(|n| n.0);
        // Linking, until nothing changes: only checkpoints inside two keys'
        // overlapping periods (the transitions) can link them.
        loop {
            let before = trusted.len();
            for &(seq, note) in &notes {
                // Only where a key not yet trusted may sign: cheap checks
                // first, signatures only at the few transitions.
                let candidate = untrusted
                    .iter()
                    .any(|p| p.covers(seq) && !trusted.iter().any(|t| t.key == p.key));
                if !candidate
                    || !trusted
                        .iter()
                        .any(|t| t.covers(seq) && signed_by(note, &t.key))
                {
                    continue;
                }
                let newly: Vec<KeyPeriod> = untrusted
                    .iter()
                    .filter(|p| {
                        p.covers(seq)
                            && !trusted.iter().any(|t| t.key == p.key)
                            && signed_by(note, &p.key)
                    })
                    .map(|p| (*p).clone())
                    .collect();
                trusted.extend(newly);
            }
            if trusted.len() == before {
                break;
            }
        }
        CheckpointTrust { trusted }
    }

    /// Opens the checkpoint stored at `seq` against the keys that may sign
    /// it; the error says why not, for a person. The origin is not checked.
    pub fn open(&self, seq: u64, note: &[u8]) -> Result<Checkpoint, String> {
        let valid = Verifiers::new(
            self.trusted
                .iter()
                .filter(|t| t.covers(seq))
                .map(|t| t.key.clone()),
        );
        open_checkpoint(note, &valid, None)
            .map(|(cp, _)| cp)
            .map_err(|e| {
                match self
                    .trusted
                    .iter()
                    .find(|t| !t.covers(seq) && signed_by(note, &t.key))
                {
                    Some(t) => format!(
                        "is signed by {}+{:08x}, which may sign only checkpoints {} (retired or not yet valid)",
                        t.key.name(),
                        t.key.id(),
                        t.range_text()
                    ),
                    None => format!("does not verify: {e}"),
                }
            })
    }
}

/// A checkpoint as stored, after opening.
#[derive(Debug, Clone)]
struct PendingCheckpoint {
    size: u64,
    root: Hash,
}

/// Verifies one log, fed row by row.
#[derive(Debug)]
pub struct LogVerifier {
    origin: String,
    verifiers: Verifiers,
    expected_prev: Hash,
    expected_index: u64,
    tree: CompactTree,
    last_ts: Option<String>,
    producers: HashMap<String, u64>,
    rows: u64,
    max_index_seen: Option<u64>,
    claimed_size: u64,

    /// Valid checkpoints still to be compared, in the order added, which
    /// is by size (a smaller one than before is a rollback, not pending).
    /// Callers that stream add each one shortly before the rows reach it,
    /// so this holds a bounded number, not one per checkpoint of the log.
    pending: VecDeque<PendingCheckpoint>,
    /// Set by [`LogVerifier::rows_done`]: checkpoints added after it that
    /// the tree never reaches are only counted, by their largest size.
    rows_done: bool,
    /// Largest valid checkpoint size added after the rows ended and beyond
    /// them.
    unreached_after_rows: Option<u64>,
    checkpoints_checked: u64,
    checkpoints_verified: u64,
    /// Largest checkpoint size seen so far in storage order (valid ones).
    largest_signed: u64,
    /// Largest size that verified and matched.
    verified_size: Option<u64>,
    /// `ts` of entry `verified_size - 1`, so a checkpoint problem can say
    /// when the last verified entry was written.
    verified_ts: Option<String>,
    /// The size of the last checkpoint reached and the `ts` of the entry
    /// before it (for entries past the last valid checkpoint).
    reached_ts: Option<(u64, String)>,

    exceptions: Vec<Exception>,
    redactions: Vec<Exception>,
    repairs: Vec<Repair>,
    /// Entries whose body is absent, waiting for a redaction entry.
    missing_bodies: Vec<Violation>,
    found: Vec<Violation>,
    found_count: u64,
}

/// A verified prefix of a log: what a later run needs in order to check
/// only the entries appended since, instead of the whole log again.
///
/// It holds the tree's right edge (a compact range: one hash per set bit
/// of the size), the last leaf hash for the `prev` chain, the last `ts`
/// and each producer's last `source.seq`, so the entries after it are
/// checked exactly as a full run would check them. What it cannot see is
/// a later change to the prefix's own rows; a full run still catches that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPrefix {
    /// Entries verified.
    pub size: u64,
    /// The signed root they matched.
    pub root: Hash,
    tree: CompactTree,
    prev: Hash,
    last_ts: Option<String>,
    producers: HashMap<String, u64>,
}

impl LogVerifier {
    /// A verifier for the log `origin`, trusting `verifiers` for its
    /// checkpoints.
    pub fn new(origin: &str, verifiers: Verifiers) -> Self {
        LogVerifier {
            origin: origin.to_owned(),
            verifiers,
            expected_prev: genesis_prev(origin),
            expected_index: 0,
            tree: CompactTree::new(),
            last_ts: None,
            producers: HashMap::new(),
            rows: 0,
            max_index_seen: None,
            claimed_size: 0,
            pending: VecDeque::new(),
            rows_done: false,
            unreached_after_rows: None,
            checkpoints_checked: 0,
            checkpoints_verified: 0,
            largest_signed: 0,
            verified_size: None,
            verified_ts: None,
            reached_ts: None,
            exceptions: Vec::new(),
            redactions: Vec::new(),
            repairs: Vec::new(),
            missing_bodies: Vec::new(),
            found: Vec::new(),
            found_count: 0,
        }
    }

    /// Records a problem found outside the rows and notes, such as a
    /// consistency proof from stored tiles that does not hold.
    pub fn add_problem(&mut self, index: u64, reason: Reason, detail: impl Into<String>) {
        self.record(Violation::new(index, reason, detail));
    }

    /// A verifier that continues after `prefix`: rows are fed from index
    /// `prefix.size`, checkpoints smaller than it are rollbacks, and one of
    /// the same size must have the prefix's root.
    pub fn resume(origin: &str, verifiers: Verifiers, prefix: &VerifiedPrefix) -> Self {
        let mut v = LogVerifier::new(origin, verifiers);
        v.expected_prev = prefix.prev;
        v.expected_index = prefix.size;
        v.tree = prefix.tree.clone();
        v.last_ts.clone_from(&prefix.last_ts);
        v.producers.clone_from(&prefix.producers);
        v.max_index_seen = prefix.size.checked_sub(1);
        v.largest_signed = prefix.size;
        v.verified_size = (prefix.size > 0).then_some(prefix.size);
        v
    }

    /// The prefix verified so far, when everything fed verified: no
    /// problem found, no body waiting for a redaction, every checkpoint
    /// reached, and the tree's size is one a signed checkpoint matched.
    /// Call before [`LogVerifier::finish`].
    pub fn prefix(&self) -> Option<VerifiedPrefix> {
        let size = self.tree.size();
        let clean = self.found_count == 0
            && self.missing_bodies.is_empty()
            && self.pending.is_empty()
            && self.unreached_after_rows.is_none();
        if !clean || self.verified_size != Some(size) {
            return None;
        }
        Some(VerifiedPrefix {
            size,
            root: self.tree.root(),
            tree: self.tree.clone(),
            prev: self.expected_prev,
            last_ts: self.last_ts.clone(),
            producers: self.producers.clone(),
        })
    }

    /// The size the store claims for the log (its head). A claim larger
    /// than the rows fed is reported as truncation.
    pub fn set_claimed_size(&mut self, size: u64) {
        self.claimed_size = size;
    }

    /// Adds the log's signed checkpoints, in the order they were stored
    /// (oldest first). Must be called before the first row.
    pub fn add_checkpoints<'a>(&mut self, notes: impl IntoIterator<Item = &'a [u8]>) {
        // Index of the first entry each checkpoint alone vouches for is the
        // size of the largest valid checkpoint stored before it.
        for note in notes {
            self.checkpoints_checked += 1;
            let blame = self.largest_signed;
            match open_checkpoint(note, &self.verifiers, None) {
                Err(e) => {
                    let mut v = Violation::new(
                        blame,
                        Reason::CheckpointBadSignature,
                        format!("checkpoint #{}: {e}", self.checkpoints_checked),
                    );
                    v.checkpoint_size = peek_size(note);
                    self.record(v);
                }
                Ok((cp, _)) => self.accept_checkpoint(cp, blame),
            }
        }
    }

    /// Like [`LogVerifier::add_checkpoints`], but each checkpoint, given
    /// with its storage `seq`, is checked only against the trusted keys
    /// whose period in `history` covers that seq: a checkpoint signed only
    /// by a key outside its period (retired, or not yet made) or by no
    /// trusted key is `checkpoint.bad_signature`.
    ///
    /// The keys trusted are those this verifier was made with. A history
    /// key that is not trusted becomes trusted from a checkpoint that both
    /// it and a trusted key validly signed within both their periods (a
    /// rotation's transition checkpoint): so an auditor who pins the old
    /// key follows the rotation, and one who pins the new key accepts the
    /// old key's checkpoints only if a transition links them. Trusted keys
    /// the history does not list may sign any checkpoint.
    pub fn add_checkpoints_at<'a>(
        &mut self,
        notes: impl IntoIterator<Item = (u64, &'a [u8])>,
        history: &KeyHistory,
    ) {
        for (seq, note, result) in open_checkpoints_at(notes, history, &self.verifiers) {
            self.add_opened_checkpoint(seq, note, result);
        }
    }

    /// Adds one checkpoint, stored at `seq` and already opened (with
    /// [`CheckpointTrust::open`], against this verifier's keys): the
    /// streaming form of [`LogVerifier::add_checkpoints_at`]. Checkpoints
    /// must come in the order stored, and each before the row that brings
    /// the tree to its size is pushed (its note's second line, which a
    /// valid signature covers); one that comes later cannot be compared
    /// and is reported as a root mismatch, failing closed.
    pub fn add_opened_checkpoint(
        &mut self,
        seq: u64,
        note: &[u8],
        opened: Result<Checkpoint, String>,
    ) {
        self.checkpoints_checked += 1;
        let blame = self.largest_signed;
        match opened {
            Err(detail) => {
                let mut v = Violation::new(
                    blame,
                    Reason::CheckpointBadSignature,
                    format!(
                        "checkpoint #{} (seq {seq}) {detail}",
                        self.checkpoints_checked
                    ),
                );
                v.checkpoint_size = peek_size(note);
                self.record(v);
            }
            Ok(cp) => self.accept_checkpoint(cp, blame),
        }
    }

    /// Says that no more rows will be pushed: checkpoints added from now
    /// on that the tree does not reach are kept only as the largest size
    /// (for `gap.truncated`), so a log whose rows were deleted does not
    /// make the verifier hold every checkpoint it still has.
    pub fn rows_done(&mut self) {
        self.rows_done = true;
    }

    fn accept_checkpoint(&mut self, cp: Checkpoint, blame: u64) {
        if cp.origin != self.origin {
            let mut v = Violation::new(
                blame,
                Reason::CheckpointWrongOrigin,
                format!(
                    "checkpoint #{} is for {:?}, not {:?}",
                    self.checkpoints_checked, cp.origin, self.origin
                ),
            );
            v.checkpoint_size = Some(cp.size);
            self.record(v);
            return;
        }
        if cp.size < self.largest_signed {
            let mut v = Violation::new(
                cp.size,
                Reason::CheckpointRollback,
                format!(
                    "checkpoint #{} has size {}, smaller than the {} signed before it",
                    self.checkpoints_checked, cp.size, self.largest_signed
                ),
            );
            v.checkpoint_size = Some(cp.size);
            self.record(v);
            return;
        }
        self.largest_signed = cp.size;
        let tree_size = self.tree.size();
        if cp.size < tree_size {
            // The rows passed this size before the checkpoint came: the
            // caller broke the order above. Say so rather than skip it.
            let mut v = Violation::new(
                self.verified_size.unwrap_or(0),
                Reason::CheckpointRootMismatch,
                format!(
                    "checkpoint #{} of size {} reached the verifier after {tree_size} entries, so it was not compared (a fault in the verifier's caller)",
                    self.checkpoints_checked, cp.size
                ),
            );
            v.checkpoint_size = Some(cp.size);
            self.record(v);
            return;
        }
        if self.rows_done && cp.size > tree_size {
            self.unreached_after_rows = Some(cp.size);
            return;
        }
        self.pending.push_back(PendingCheckpoint {
            size: cp.size,
            root: cp.root,
        });
        self.check_reached_checkpoints();
    }

    /// Compares the recomputed root with every checkpoint of the current
    /// tree size.
    fn check_reached_checkpoints(&mut self) {
        while let Some(cp) = self.pending.front() {
            if cp.size != self.tree.size() {
                break;
            }
            let cp = self.pending.pop_front().expect("just looked at it");
            if let Some(ts) = &self.last_ts
                && self.reached_ts.as_ref().map(|r| r.0) != Some(cp.size)
            {
                self.reached_ts = Some((cp.size, ts.clone()));
            }
            let root = self.tree.root();
            if root == cp.root {
                self.checkpoints_verified += 1;
                if self.verified_size != Some(cp.size) {
                    self.verified_ts.clone_from(&self.last_ts);
                }
                self.verified_size = Some(self.verified_size.map_or(cp.size, |s| s.max(cp.size)));
            } else {
                // Everything up to the last matching checkpoint is proven;
                // the change is somewhere after it.
                let blame = self.verified_size.unwrap_or(0);
                let mut v = Violation::new(
                    blame,
                    Reason::CheckpointRootMismatch,
                    format!(
                        "recomputed root {root} of the first {} entries differs from the signed root {}; {}",
                        cp.size,
                        cp.root,
                        match self.verified_size {
                            Some(n) => format!("the first {n} entries match an earlier checkpoint"),
                            None => "no earlier checkpoint matched".to_owned(),
                        }
                    ),
                );
                v.checkpoint_size = Some(cp.size);
                v.before_ts.clone_from(&self.verified_ts);
                self.record(v);
            }
        }
    }

    fn record(&mut self, v: Violation) {
        self.found_count += 1;
        if self.found.len() < MAX_LISTED * 4 {
            self.found.push(v);
        }
    }

    /// Feeds the next row in index order.
    pub fn push(&mut self, row: EntryRow<'_>) {
        self.rows += 1;

        // Position: rows must arrive at consecutive indices.
        if row.index > self.expected_index {
            let mut v = Violation::new(
                self.expected_index,
                Reason::MissingEntries,
                format!(
                    "entries {}..={} are missing",
                    self.expected_index,
                    row.index - 1
                ),
            );
            v.missing_from = Some(self.expected_index);
            v.missing_to = Some(row.index - 1);
            found(v, self);
        } else if row.index < self.expected_index {
            found(
                Violation::new(
                    row.index,
                    Reason::EntryIndexMismatch,
                    format!(
                        "row at position {} arrived after position {}",
                        row.index,
                        self.expected_index - 1
                    ),
                ),
                self,
            );
        }
        self.expected_index = self.expected_index.max(row.index.saturating_add(1));
        self.max_index_seen = Some(self.max_index_seen.map_or(row.index, |m| m.max(row.index)));

        // The tree and the chain are over the bytes as stored.
        let leaf = leaf_hash(row.envelope);
        if let Some(stored) = row.stored_leaf_hash
            && stored != leaf
        {
            found(
                Violation::new(
                    row.index,
                    Reason::LeafHashMismatch,
                    format!("stored leaf hash {stored}, envelope bytes hash to {leaf}"),
                ),
                self,
            );
        }

        match EnvelopeView::parse(row.envelope) {
            // The general parser explains what is wrong better than the
            // canonical-form reader's "unexpected byte at offset".
            Err(fast) => {
                let detail = match Envelope::parse(row.envelope) {
                    Err(e) => e.to_string(),
                    Ok(_) => fast.to_string(),
                };
                found(
                    Violation::new(row.index, Reason::EntryMalformed, detail),
                    self,
                );
            }
            Ok(env) => self.check_envelope(&row, &env),
        }

        self.expected_prev = leaf;
        self.tree.append(leaf);
        self.check_reached_checkpoints();
    }

    fn check_envelope(&mut self, row: &EntryRow<'_>, env: &EnvelopeView<'_>) {
        let at = row.index;
        if env.origin != self.origin {
            found(
                Violation::new(
                    at,
                    Reason::EntryWrongOrigin,
                    format!("envelope origin is {:?}", env.origin),
                ),
                self,
            );
        }
        if env.index != row.index {
            found(
                Violation::new(
                    at,
                    Reason::EntryIndexMismatch,
                    format!("envelope says index {}, stored at {}", env.index, row.index),
                ),
                self,
            );
        }
        if env.prev != self.expected_prev {
            found(
                Violation::new(
                    at,
                    Reason::PrevMismatch,
                    format!(
                        "prev is {}, previous entry hashes to {}",
                        env.prev, self.expected_prev
                    ),
                ),
                self,
            );
        }
        if let Some(last) = &self.last_ts
            && env.ts.as_ref() < last.as_str()
        {
            found(
                Violation::new(
                    at,
                    Reason::TimeDecreasing,
                    format!("ts {} is earlier than the previous entry's {last}", env.ts),
                ),
                self,
            );
        }
        if let Some(parent) = env.parent
            && parent >= env.index
        {
            found(
                Violation::new(
                    at,
                    Reason::ParentNotEarlier,
                    format!("parent {parent} is not earlier than index {}", env.index),
                ),
                self,
            );
        }
        if let Some((id, seq)) = &env.source {
            let (id, seq) = (id.as_ref(), *seq);
            match self.producers.get_mut(id) {
                None => {
                    self.producers.insert(id.to_owned(), seq);
                }
                Some(last) if seq == last.saturating_add(1) => *last = seq,
                Some(last) if seq > *last => {
                    let last_seq = std::mem::replace(last, seq);
                    let mut v = Violation::new(
                        at,
                        Reason::SourceSeqGap,
                        format!("producer {id:?} skipped seq {}..={}", last_seq + 1, seq - 1),
                    );
                    v.source = Some(id.to_owned());
                    v.missing_from = Some(last_seq + 1);
                    v.missing_to = Some(seq - 1);
                    found(v, self);
                }
                Some(last) => {
                    let last_seq = *last;
                    let mut v = Violation::new(
                        at,
                        Reason::SourceSeqRegression,
                        format!("producer {id:?} sent seq {seq} after {last_seq}"),
                    );
                    v.source = Some(id.to_owned());
                    found(v, self);
                }
            }
        }

        match row.body {
            BodyRow::NotChecked => {}
            BodyRow::Absent => {
                let mut v = Violation::new(
                    at,
                    Reason::BodyMissing,
                    "body is absent and no redaction entry covers it",
                );
                v.before_ts = self.last_ts.clone();
                self.missing_bodies.push(v);
            }
            BodyRow::Present { salt, body } => {
                let salt: Option<&[u8; SALT_SIZE]> = salt.try_into().ok();
                match salt {
                    None => found(
                        Violation::new(
                            at,
                            Reason::BodyDigestMismatch,
                            format!("salt must be {SALT_SIZE} bytes"),
                        ),
                        self,
                    ),
                    Some(salt) => {
                        if body_digest(salt, body) != env.body {
                            found(
                                Violation::new(
                                    at,
                                    Reason::BodyDigestMismatch,
                                    "body and salt do not hash to the envelope's body digest",
                                ),
                                self,
                            );
                        } else if env.kind == CHAIN_REPAIRED_KIND {
                            if let Ok(b) = Body::parse(body) {
                                self.repairs.push(Repair::from_body(&b, env.index));
                            }
                        } else if env.kind == EXCEPTION_KIND || env.kind == REDACTION_KIND {
                            let range = Body::parse(body)
                                .ok()
                                .and_then(|b| Exception::from_body(&b, env.index))
                                .filter(|x| x.through < env.index);
                            if let Some(x) = range {
                                if env.kind == EXCEPTION_KIND {
                                    self.exceptions.push(x);
                                } else {
                                    self.redactions.push(x);
                                }
                            }
                        }
                    }
                }
            }
        }

        // Keep the latest time seen, reusing the buffer: this runs per entry.
        match &mut self.last_ts {
            Some(last) if env.ts.as_ref() < last.as_str() => {}
            Some(last) => {
                last.clear();
                last.push_str(&env.ts);
            }
            None => self.last_ts = Some(env.ts.to_string()),
        }
    }

    /// Ends the stream and builds the report.
    pub fn finish(mut self) -> Report {
        let rows = self.rows;
        let tree_size = self.tree.size();

        // Bodies absent without a redaction are breaks.
        let mut redacted_count = 0;
        for v in std::mem::take(&mut self.missing_bodies) {
            if self.redactions.iter().any(|r| r.covers(v.index)) {
                redacted_count += 1;
            } else {
                self.record(v);
            }
        }

        // Checkpoints the stream never reached: the log lost entries.
        let unreached = std::mem::take(&mut self.pending);
        let largest = unreached
            .iter()
            .map(|c| c.size)
            .chain(self.unreached_after_rows)
            .max();
        if let Some(largest) = largest {
            let mut v = Violation::new(
                tree_size,
                Reason::Truncated,
                format!("a checkpoint signs {largest} entries, the log has {tree_size}"),
            );
            v.checkpoint_size = Some(largest);
            v.missing_from = Some(tree_size);
            v.missing_to = Some(largest - 1);
            v.before_ts = self.last_ts.clone();
            self.record(v);
        } else if self.claimed_size > tree_size {
            let mut v = Violation::new(
                tree_size,
                Reason::Truncated,
                format!(
                    "the store claims {} entries, {tree_size} were found",
                    self.claimed_size
                ),
            );
            v.missing_from = Some(tree_size);
            v.missing_to = Some(self.claimed_size - 1);
            v.before_ts = self.last_ts.clone();
            self.record(v);
        }

        // Entries no valid checkpoint vouches for.
        if tree_size > self.largest_signed {
            let from = self.largest_signed;
            let mut v = Violation::new(
                from,
                Reason::CheckpointUncovered,
                format!("entries {from}..{tree_size} are not covered by a valid signed checkpoint"),
            );
            v.before_ts = match &self.reached_ts {
                Some((size, ts)) if *size == from => Some(ts.clone()),
                _ => None,
            };
            self.record(v);
        }

        let listed = self.found.len() as u64;
        let mut found = std::mem::take(&mut self.found);
        locate_root_mismatches(&mut found);
        found.sort_by_key(Violation::sort_key);
        let mut acknowledged = Vec::new();
        let mut open = Vec::new();
        for mut v in found {
            match self.exceptions.iter().find(|x| x.acknowledges(&v)) {
                Some(x) => {
                    v.acknowledged_by = Some(x.at);
                    acknowledged.push(v);
                }
                None => open.push(v),
            }
        }
        let violation_count = self.found_count - acknowledged.len() as u64;
        let truncated = self.found_count > listed || open.len() > MAX_LISTED;
        open.truncate(MAX_LISTED);
        acknowledged.truncate(MAX_LISTED);

        let first_break = open.first().cloned();
        let (verified_count, last_verified_index, last_verified_timestamp) = match &first_break {
            None => (rows, tree_size.checked_sub(1), self.last_ts.clone()),
            Some(b) => (
                b.index.min(rows),
                b.index.checked_sub(1),
                b.before_ts.clone(),
            ),
        };

        for v in open.iter_mut().chain(acknowledged.iter_mut()) {
            v.before_ts = None;
        }
        let first_break = first_break.map(|mut b| {
            b.before_ts = None;
            b
        });

        let pick = |c: Category| -> Vec<Violation> {
            open.iter()
                .filter(|v| v.reason.category() == c)
                .cloned()
                .collect()
        };
        let total_count = [
            rows,
            self.max_index_seen.map_or(0, |m| m + 1),
            self.largest_signed,
            self.claimed_size,
        ]
        .into_iter()
        .max()
        .unwrap_or(0);

        Report {
            valid: first_break.is_none(),
            origin: self.origin,
            total_count,
            rows_checked: rows,
            verified_count,
            checkpoints_checked: self.checkpoints_checked,
            checkpoints_verified: self.checkpoints_verified,
            verified_size: self.verified_size,
            chain_breaks: pick(Category::Chain),
            signature_failures: pick(Category::Signature),
            retrocausation_violations: pick(Category::Retrocausation),
            gaps: pick(Category::Gap),
            checkpoint_mismatches: pick(Category::Checkpoint),
            first_break,
            acknowledged,
            redacted_count,
            repairs: std::mem::take(&mut self.repairs),
            last_verified_index,
            last_verified_timestamp,
            violation_count,
            truncated,
            violations: open,
        }
    }
}

/// Records a problem found while reading the current row. Its
/// `before_ts` is the time of the last row read before it, which is what
/// `last_verified_timestamp` reports if this turns out to be the first
/// break; cloned only here, so the clean path allocates nothing.
fn found(mut v: Violation, this: &mut LogVerifier) {
    v.before_ts.clone_from(&this.last_ts);
    this.record(v);
}

/// A root mismatch only says the change lies between the last matching
/// checkpoint and the mismatching one. When an entry-level problem inside
/// that range already pinpoints it, report the mismatch there too, so the
/// first break names the entry rather than the start of the range.
fn locate_root_mismatches(found: &mut [Violation]) {
    let mut entry_level: Vec<(u64, Option<String>)> = found
        .iter()
        .filter(|v| v.reason.is_entry_level())
        .map(|v| (v.index, v.before_ts.clone()))
        .collect();
    entry_level.sort_by_key(|e| e.0);
    for v in found
        .iter_mut()
        .filter(|v| v.reason == Reason::CheckpointRootMismatch)
    {
        let size = v.checkpoint_size.unwrap_or(u64::MAX);
        let at = entry_level.partition_point(|e| e.0 < v.index);
        if let Some((index, ts)) = entry_level.get(at).filter(|e| e.0 < size) {
            v.index = *index;
            v.before_ts.clone_from(ts);
        }
    }
}

/// Best-effort size of a checkpoint that failed to open, for the report.
fn peek_size(note: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(note).ok()?;
    text.lines().nth(1)?.parse().ok()
}
