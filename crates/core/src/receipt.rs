//! Receipts: what an appender keeps to prove, later and offline, that its
//! event is in the log.
//!
//! A receipt carries the entry's envelope, optionally its body and salt, a
//! signed checkpoint whose tree includes the entry, and the RFC 9162
//! inclusion proof to that checkpoint's root. Checking one needs only the
//! log's verifier key(s): no server, no database, no trust in either.
//!
//! The envelope travels as a JSON object rather than as bytes; since
//! envelopes are RFC 8785 canonical, re-canonicalising the object gives back
//! exactly the bytes that were hashed, and a receipt stays readable.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, CheckpointError, open_checkpoint};
use crate::code::ErrorCode;
use crate::entry::{Body, Envelope, SALT_SIZE, body_digest};
use crate::hash::Hash;
use crate::merkle::{MerkleError, verify_inclusion};
use crate::note::Verifiers;

/// Format tag of a receipt, so later formats can be told apart.
pub const RECEIPT_FORMAT: &str = "evident.receipt.v1";

/// A receipt as it is stored and exchanged (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// Always [`RECEIPT_FORMAT`].
    pub format: String,
    /// The entry's position in the log.
    pub index: u64,
    /// RFC 6962 leaf hash of the envelope's canonical bytes.
    pub leaf_hash: Hash,
    /// The envelope (its canonical bytes are what the tree hashes).
    pub envelope: Envelope,
    /// The body, unless the holder asked for it to be left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
    /// Base64 of the 16-byte salt, present exactly when `body` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    /// A C2SP signed-note checkpoint whose tree includes the entry.
    pub checkpoint: String,
    /// Inclusion proof from the leaf to the checkpoint's root.
    pub inclusion_proof: Vec<Hash>,
}

/// Why a receipt did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// Not a receipt: JSON syntax, fields or types.
    #[error("malformed receipt: {0}")]
    Malformed(String),
    /// `format` is not one this code understands.
    #[error("unsupported receipt format {0:?}")]
    UnsupportedFormat(String),
    /// The stated leaf hash is not the hash of the envelope.
    #[error("leaf hash {stated} is not the envelope's hash {computed}")]
    LeafMismatch {
        /// Hash written in the receipt.
        stated: Hash,
        /// Hash of the envelope's canonical bytes.
        computed: Hash,
    },
    /// The stated index is not the envelope's index.
    #[error("receipt index {stated} differs from envelope index {envelope}")]
    IndexMismatch {
        /// Index written in the receipt.
        stated: u64,
        /// Index inside the envelope.
        envelope: u64,
    },
    /// The checkpoint did not open or parse, or is for another log.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// The entry is not inside the checkpoint's tree.
    #[error("entry {index} is not in a tree of size {size}")]
    NotCovered {
        /// Entry index.
        index: u64,
        /// Checkpoint size.
        size: u64,
    },
    /// The inclusion proof does not lead to the signed root.
    #[error("inclusion proof: {0}")]
    Proof(#[from] MerkleError),
    /// A body without a salt or a salt without a body, or a salt of the
    /// wrong size.
    #[error("body and salt must come together; salt must be {SALT_SIZE} bytes of base64")]
    BadSalt,
    /// The body does not hash to the envelope's digest.
    #[error("body does not match the envelope's body digest")]
    BodyMismatch,
}

impl ErrorCode for ReceiptError {
    fn code(&self) -> &'static str {
        match self {
            ReceiptError::Malformed(_) => "receipt.malformed",
            ReceiptError::UnsupportedFormat(_) => "receipt.unsupported_format",
            ReceiptError::LeafMismatch { .. } => "receipt.leaf_mismatch",
            ReceiptError::IndexMismatch { .. } => "receipt.index_mismatch",
            ReceiptError::Checkpoint(e) => e.code(),
            ReceiptError::NotCovered { .. } => "receipt.not_covered",
            ReceiptError::Proof(_) => "receipt.bad_proof",
            ReceiptError::BadSalt => "receipt.bad_salt",
            ReceiptError::BodyMismatch => "receipt.body_mismatch",
        }
    }
}

/// What a verified receipt establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReceipt {
    /// The checkpoint the entry was proven against.
    pub checkpoint: Checkpoint,
    /// Names of the trusted keys whose signatures verified.
    pub signed_by: Vec<String>,
    /// Whether a body was present and matched the envelope.
    pub body_verified: bool,
}

impl Receipt {
    /// Parses a receipt from JSON bytes.
    pub fn parse(bytes: &[u8]) -> Result<Receipt, ReceiptError> {
        serde_json::from_slice(bytes).map_err(|e| ReceiptError::Malformed(e.to_string()))
    }

    /// Pretty JSON, for people and files.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a receipt always serialises")
    }

    /// Checks the receipt with nothing but the log's verifier keys: the
    /// envelope hashes to the leaf, the checkpoint is signed by a trusted
    /// key and belongs to the envelope's log, the proof leads from the leaf
    /// to the signed root, and a present body matches the envelope.
    pub fn verify(&self, verifiers: &Verifiers) -> Result<VerifiedReceipt, ReceiptError> {
        if self.format != RECEIPT_FORMAT {
            return Err(ReceiptError::UnsupportedFormat(self.format.clone()));
        }
        let computed = self.envelope.leaf_hash();
        if computed != self.leaf_hash {
            return Err(ReceiptError::LeafMismatch {
                stated: self.leaf_hash,
                computed,
            });
        }
        if self.index != self.envelope.index {
            return Err(ReceiptError::IndexMismatch {
                stated: self.index,
                envelope: self.envelope.index,
            });
        }
        let (checkpoint, note) = open_checkpoint(
            self.checkpoint.as_bytes(),
            verifiers,
            Some(&self.envelope.origin),
        )?;
        if self.index >= checkpoint.size {
            return Err(ReceiptError::NotCovered {
                index: self.index,
                size: checkpoint.size,
            });
        }
        verify_inclusion(
            &computed,
            self.index,
            checkpoint.size,
            &self.inclusion_proof,
            &checkpoint.root,
        )?;
        let body_verified = match (&self.body, &self.salt) {
            (None, None) => false,
            (Some(body), Some(salt)) => {
                let salt = decode_salt(salt).ok_or(ReceiptError::BadSalt)?;
                if body_digest(&salt, &body.to_bytes()) != self.envelope.body {
                    return Err(ReceiptError::BodyMismatch);
                }
                true
            }
            _ => return Err(ReceiptError::BadSalt),
        };
        Ok(VerifiedReceipt {
            checkpoint,
            signed_by: note.verified.iter().map(|s| s.name.clone()).collect(),
            body_verified,
        })
    }
}

/// Convenience: parse and verify receipt JSON in one step.
pub fn verify_receipt(
    bytes: &[u8],
    verifiers: &Verifiers,
) -> Result<VerifiedReceipt, ReceiptError> {
    Receipt::parse(bytes)?.verify(verifiers)
}

/// Base64 of a salt, as receipts and exports write it.
pub fn encode_salt(salt: &[u8; SALT_SIZE]) -> String {
    STANDARD.encode(salt)
}

/// Parses a salt written by [`encode_salt`]; `None` unless it is canonical
/// base64 of exactly [`SALT_SIZE`] bytes.
pub fn decode_salt(s: &str) -> Option<[u8; SALT_SIZE]> {
    STANDARD.decode(s).ok()?.try_into().ok()
}
