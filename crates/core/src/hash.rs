//! RFC 6962 hashing.
//!
//! A Merkle tree hashes leaves and interior nodes with distinct one-byte
//! prefixes so that a leaf can never be passed off as a node (the second
//! preimage attack RFC 6962 §2.1 closes). Hashes travel as standard,
//! padded, canonical base64 — the form C2SP checkpoints use — so a hash is
//! only ever accepted in the one spelling that we also produce.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::code::ErrorCode;

/// Size of a SHA-256 hash in bytes.
pub const HASH_SIZE: usize = 32;

/// A SHA-256 value: a leaf hash, node hash or tree root.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; HASH_SIZE]);

/// Why a hash string or byte slice was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// Not canonical standard base64 (padding, alphabet or trailing bits).
    #[error("hash is not canonical base64: {0:?}")]
    BadBase64(String),
    /// Decoded to the wrong number of bytes.
    #[error("hash must be {HASH_SIZE} bytes, got {0}")]
    BadLength(usize),
}

impl ErrorCode for HashError {
    fn code(&self) -> &'static str {
        match self {
            HashError::BadBase64(_) => "hash.bad_base64",
            HashError::BadLength(_) => "hash.bad_length",
        }
    }
}

impl Hash {
    /// Builds a hash from a slice that must be exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, HashError> {
        let arr: [u8; HASH_SIZE] = bytes
            .try_into()
            .map_err(|_| HashError::BadLength(bytes.len()))?;
        Ok(Hash(arr))
    }

    /// Parses canonical, padded, standard base64 (RFC 4648 §4). The `base64`
    /// crate's standard engine rejects non-zero trailing bits, so each hash
    /// has exactly one accepted spelling.
    pub fn from_base64(s: &str) -> Result<Self, HashError> {
        let bytes = STANDARD
            .decode(s)
            .map_err(|_| HashError::BadBase64(s.to_owned()))?;
        Self::from_slice(&bytes)
    }

    /// Standard, padded base64 of the 32 bytes.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; HASH_SIZE] {
        &self.0
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_base64())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl serde::Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64())
    }
}

impl<'de> serde::Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Hash::from_base64(&s).map_err(serde::de::Error::custom)
    }
}

/// Plain SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Hash {
    Hash(Sha256::digest(data).into())
}

/// Hash of the empty tree: SHA-256 of the empty string.
/// <https://www.rfc-editor.org/rfc/rfc6962#section-2.1>
pub fn empty_root() -> Hash {
    sha256(&[])
}

/// Leaf hash: SHA-256(0x00 ‖ leaf bytes).
/// <https://www.rfc-editor.org/rfc/rfc6962#section-2.1>
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    Hash(h.finalize().into())
}

/// Interior node hash: SHA-256(0x01 ‖ left ‖ right).
/// <https://www.rfc-editor.org/rfc/rfc6962#section-2.1>
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left.0);
    h.update(right.0);
    Hash(h.finalize().into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // RFC 6962 §2.1 and every CT implementation: the empty tree's root.
    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(
            empty_root().to_base64(),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    // Leaf hash of the empty leaf, the first reference vector in the
    // transparency-dev/merkle and Certificate Transparency test data:
    // 6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d.
    #[test]
    fn empty_leaf_hash_known_answer() {
        assert_eq!(
            hex::encode(leaf_hash(b"").0),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn base64_round_trip_and_strictness() {
        let h = sha256(b"evident");
        assert_eq!(Hash::from_base64(&h.to_base64()), Ok(h));
        // Unpadded, URL-safe and wrong-length forms are each rejected.
        let s = h.to_base64();
        let unpadded = s.trim_end_matches('=');
        assert_eq!(
            Hash::from_base64(unpadded).unwrap_err().code(),
            "hash.bad_base64"
        );
        assert_eq!(
            Hash::from_base64("AAAA").unwrap_err(),
            HashError::BadLength(3)
        );
        // Non-zero trailing bits: 32 bytes are 256 bits, spelled with 43
        // characters (258 bits), so the last character before `=` carries
        // two spare bits that must be zero.
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut chars: Vec<char> = s.chars().collect();
        let v = alphabet.find(chars[42]).unwrap();
        assert_eq!(v & 0b11, 0, "canonical encoding has zero spare bits");
        chars[42] = alphabet.as_bytes()[v | 1] as char;
        let noncanon: String = chars.into_iter().collect();
        assert_eq!(
            Hash::from_base64(&noncanon),
            Err(HashError::BadBase64(noncanon.clone()))
        );
    }
}
