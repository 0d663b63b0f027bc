//! C2SP signed notes.
//!
//! A checkpoint only means something once a log key has signed it, and the
//! ecosystem around transparency logs (witnesses, monitors, Go's sumdb
//! tooling) exchanges those signatures as C2SP signed notes. Implementing the
//! format exactly — and rejecting every near miss — lets an auditor hand our
//! checkpoints to any other C2SP tool, and keeps an attacker from smuggling a
//! second reading of the same bytes past us.
//!
//! Spec: <https://c2sp.org/signed-note>. Only Ed25519 (signature type
//! `0x01`, RFC 8032) is implemented for signing and verification; signature
//! lines of other types are parsed and, their `(name, id)` pair being
//! unknown to us, left unverified as the spec requires.
//!
//! Limits: a note may be at most [`MAX_NOTE_SIZE`] bytes and carry at most
//! [`MAX_SIGNATURES`] signature lines. The spec asks verifiers to cap one or
//! the other and to accept at least 16 signatures; 100 signatures is the cap
//! in Go's `golang.org/x/mod/sumdb/note` (`Open`), and 1,000,000 bytes is the
//! note size cap in Cloudflare's `signed_note` crate (`MAX_NOTE_SIZE`), which
//! leaves room for 100 post-quantum signatures of about 5 kB each.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::code::ErrorCode;

/// Signature type byte of Ed25519 in key ids and verifier keys.
/// <https://c2sp.org/signed-note#signature-types>
pub const ALG_ED25519: u8 = 0x01;

/// Largest signed note, in bytes, that [`parse_note`] and [`open_note`]
/// accept and [`sign_note`] produces. See the module documentation.
pub const MAX_NOTE_SIZE: usize = 1_000_000;

/// Most signature lines a note may carry (Go's `note.Open` cap; the spec
/// requires accepting at least 16).
pub const MAX_SIGNATURES: usize = 100;

/// Length of an Ed25519 signature (RFC 8032 §5.1.6).
const ED25519_SIGNATURE_LEN: usize = 64;

/// Prefix of every signature line: EM DASH (U+2014) and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// Why a verifier key, signer or key name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The `<name>+<id>+<key>` structure is broken.
    #[error("malformed verifier key: {reason}")]
    Malformed {
        /// What was wrong.
        reason: &'static str,
    },
    /// The key name is empty or has a plus, a Unicode space or a control
    /// character.
    #[error("invalid key name {name:?}")]
    BadName {
        /// The rejected name.
        name: String,
    },
    /// The key id in the string is not the one the name and key hash to.
    #[error("key id {got:08x} does not match key {name}, which has id {expected:08x}")]
    BadKeyId {
        /// Key name.
        name: String,
        /// Id written in the key string.
        got: u32,
        /// Id computed from the name and key.
        expected: u32,
    },
    /// A signature type other than Ed25519.
    #[error("unsupported signature algorithm 0x{0:02x}")]
    UnsupportedAlgorithm(u8),
    /// An Ed25519 key that is not 32 bytes.
    #[error("ed25519 public key must be 32 bytes, got {0}")]
    BadKeyLength(usize),
    /// Not a point on the curve, or a weak (small-order) point.
    #[error("invalid ed25519 public key")]
    BadPublicKey,
}

impl ErrorCode for KeyError {
    fn code(&self) -> &'static str {
        match self {
            KeyError::Malformed { .. } => "key.malformed",
            KeyError::BadName { .. } => "key.bad_name",
            KeyError::BadKeyId { .. } => "key.bad_key_id",
            KeyError::UnsupportedAlgorithm(_) => "key.unsupported_algorithm",
            KeyError::BadKeyLength(_) => "key.bad_length",
            KeyError::BadPublicKey => "key.bad_public_key",
        }
    }
}

/// Why a note could not be signed, parsed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// The note is larger than [`MAX_NOTE_SIZE`].
    #[error("note is {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// Size of the note in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Invalid UTF-8 at `offset`.
    #[error("note is not valid utf-8 at byte {offset}")]
    NotUtf8 {
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },
    /// An ASCII control character other than newline (CR included).
    #[error("note has control character 0x{byte:02x} at byte {offset}")]
    ControlChar {
        /// Byte offset.
        offset: usize,
        /// The control character.
        byte: u8,
    },
    /// The text (or the signed note) does not end in a newline.
    #[error("note does not end in a newline")]
    MissingFinalNewline,
    /// No blank line separates text from signatures.
    #[error("note has no blank line before its signatures")]
    MissingSeparator,
    /// The note ends in a blank line after its signature lines.
    #[error("note has a blank line after its signatures")]
    TrailingBlankLine,
    /// Signature line `line` (1-based within the signature block) is not
    /// `— <name> <base64>`.
    #[error("signature line {line} is malformed")]
    BadSignatureLine {
        /// 1-based index of the signature line.
        line: usize,
    },
    /// Signature line `line` names an invalid key name.
    #[error("signature line {line} has invalid key name {name:?}")]
    BadKeyName {
        /// 1-based index of the signature line.
        line: usize,
        /// The rejected name.
        name: String,
    },
    /// Signature line `line` is not canonical standard base64.
    #[error("signature line {line} is not canonical base64")]
    BadBase64 {
        /// 1-based index of the signature line.
        line: usize,
    },
    /// Signature line `line` decodes to fewer than 5 bytes (key id and at
    /// least one signature byte).
    #[error("signature line {line} is {len} bytes, too short")]
    ShortSignature {
        /// 1-based index of the signature line.
        line: usize,
        /// Decoded length.
        len: usize,
    },
    /// The note has a blank line but no signature lines, or signing was
    /// asked with no signers.
    #[error("note has no signatures")]
    NoSignatures,
    /// More than [`MAX_SIGNATURES`] signature lines (or signers).
    #[error("note has {count} signatures, more than the {max} allowed")]
    TooManySignatures {
        /// Number of signature lines.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A known key's signature does not verify (or has the wrong length).
    #[error("invalid signature by key {name}+{id:08x}")]
    BadSignature {
        /// Key name.
        name: String,
        /// Key id.
        id: u32,
    },
    /// Two different trusted keys share this name and id.
    #[error("ambiguous key {name}+{id:08x}")]
    AmbiguousKey {
        /// Key name.
        name: String,
        /// Key id.
        id: u32,
    },
    /// No signature is by a known key.
    #[error("note has no signature by a known key ({unverified} unknown)")]
    NoKnownSignature {
        /// How many signatures were by unknown keys.
        unverified: usize,
    },
}

impl ErrorCode for NoteError {
    fn code(&self) -> &'static str {
        match self {
            NoteError::TooLarge { .. } => "note.too_large",
            NoteError::NotUtf8 { .. }
            | NoteError::ControlChar { .. }
            | NoteError::MissingFinalNewline
            | NoteError::MissingSeparator
            | NoteError::TrailingBlankLine
            | NoteError::BadSignatureLine { .. }
            | NoteError::BadKeyName { .. }
            | NoteError::BadBase64 { .. }
            | NoteError::ShortSignature { .. } => "note.malformed",
            NoteError::NoSignatures => "note.no_signatures",
            NoteError::TooManySignatures { .. } => "note.too_many_signatures",
            NoteError::BadSignature { .. } => "note.bad_signature",
            NoteError::AmbiguousKey { .. } => "note.ambiguous_key",
            NoteError::NoKnownSignature { .. } => "note.no_known_signature",
        }
    }
}

/// Key names must be non-empty and have no plus and no Unicode space
/// (<https://c2sp.org/signed-note#format>). We also refuse control
/// characters, which could never appear in a valid note anyway.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c == '+' || c.is_whitespace() || c.is_control())
}

fn check_name(name: &str) -> Result<(), KeyError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(KeyError::BadName {
            name: name.to_owned(),
        })
    }
}

/// Key id over an already-encoded key (type byte ‖ key bytes).
fn raw_key_id(name: &str, encoded_key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update(encoded_key);
    let sum = h.finalize();
    u32::from_be_bytes([sum[0], sum[1], sum[2], sum[3]])
}

/// First 4 bytes (big-endian u32) of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key):
/// the Ed25519 key id. <https://c2sp.org/signed-note#ed25519-signatures>
pub fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    let mut encoded = [0u8; 33];
    encoded[0] = ALG_ED25519;
    encoded[1..].copy_from_slice(public_key);
    raw_key_id(name, &encoded)
}

/// A trusted Ed25519 note key: name, key id and public key.
///
/// Its text form is Go's verifier key, `<name>+<8 hex id>+<base64(0x01 ‖
/// key)>`, the form sumdb, witnesses and C2SP tools pass keys around in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl VerifierKey {
    /// Builds a verifier key, computing its id per
    /// <https://c2sp.org/signed-note#ed25519-signatures>. Weak (small-order)
    /// keys are refused: they would make signatures meaningless.
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, KeyError> {
        check_name(name)?;
        if key.is_weak() {
            return Err(KeyError::BadPublicKey);
        }
        Ok(VerifierKey {
            name: name.to_owned(),
            id: key_id(name, key.as_bytes()),
            key,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Verifies one Ed25519 signature over `text` with RFC 8032 §5.1.7
    /// strict checks (canonical `S`, no small-order `R` or `A`), which every
    /// honest signer satisfies and which rule out malleated signatures.
    fn verify(&self, text: &[u8], sig: &[u8]) -> bool {
        let Ok(bytes) = <[u8; ED25519_SIGNATURE_LEN]>::try_from(sig) else {
            return false;
        };
        self.key
            .verify_strict(text, &Signature::from_bytes(&bytes))
            .is_ok()
    }
}

/// Parses Go's verifier key form, `<name>+<id>+<base64(0x01 ‖ key)>`, with
/// the id as exactly 8 lowercase hex digits and canonical standard base64.
/// The id must match the name and key. Checks run in the order Go's
/// `note.NewVerifier` applies them: syntax, id, then algorithm and length.
impl FromStr for VerifierKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, KeyError> {
        let (name, rest) = s.split_once('+').ok_or(KeyError::Malformed {
            reason: "missing '+' after name",
        })?;
        let (hex_id, b64) = rest.split_once('+').ok_or(KeyError::Malformed {
            reason: "missing '+' after key id",
        })?;
        check_name(name)?;
        if hex_id.len() != 8
            || !hex_id
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(KeyError::Malformed {
                reason: "key id must be 8 lowercase hex digits",
            });
        }
        let got = u32::from_str_radix(hex_id, 16).map_err(|_| KeyError::Malformed {
            reason: "key id must be 8 lowercase hex digits",
        })?;
        let raw = STANDARD.decode(b64).map_err(|_| KeyError::Malformed {
            reason: "key is not canonical base64",
        })?;
        let Some((&alg, key)) = raw.split_first() else {
            return Err(KeyError::Malformed {
                reason: "empty key",
            });
        };
        let expected = raw_key_id(name, &raw);
        if got != expected {
            return Err(KeyError::BadKeyId {
                name: name.to_owned(),
                got,
                expected,
            });
        }
        if alg != ALG_ED25519 {
            return Err(KeyError::UnsupportedAlgorithm(alg));
        }
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| KeyError::BadKeyLength(key.len()))?;
        let key = VerifyingKey::from_bytes(&key).map_err(|_| KeyError::BadPublicKey)?;
        VerifierKey::new(name, key)
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut encoded = [0u8; 33];
        encoded[0] = ALG_ED25519;
        encoded[1..].copy_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.id,
            STANDARD.encode(encoded)
        )
    }
}

/// An Ed25519 note signing key with its name.
///
/// `Debug` shows the name, id and public key only, never the secret.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    id: u32,
    key: SigningKey,
}

impl NoteSigner {
    /// Builds a signer; the name follows the same rules as verifier keys.
    pub fn new(name: &str, key: SigningKey) -> Result<Self, KeyError> {
        check_name(name)?;
        let public = key.verifying_key();
        if public.is_weak() {
            return Err(KeyError::BadPublicKey);
        }
        Ok(NoteSigner {
            name: name.to_owned(),
            id: key_id(name, public.as_bytes()),
            key,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The matching verifier key, to hand to whoever checks our notes.
    pub fn verifier_key(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            id: self.id,
            key: self.key.verifying_key(),
        }
    }

    /// Ed25519 signature of `text` (RFC 8032 §5.1.6; deterministic).
    fn sign(&self, text: &[u8]) -> [u8; ED25519_SIGNATURE_LEN] {
        self.key.sign(text).to_bytes()
    }
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("id", &format_args!("{:08x}", self.id))
            .field(
                "public_key",
                &STANDARD.encode(self.key.verifying_key().as_bytes()),
            )
            .finish_non_exhaustive()
    }
}

/// One signature line of a note: key name, key id, and the signature bytes
/// that follow the id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name.
    pub name: String,
    /// Key id (the first 4 bytes of the decoded signature, big-endian).
    pub id: u32,
    /// Signature bytes after the key id.
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// The line as it appears in a note, without its newline:
    /// `— <name> <base64(id ‖ signature)>`.
    /// <https://c2sp.org/signed-note#signatures>
    pub fn to_line(&self) -> String {
        let mut raw = Vec::with_capacity(4 + self.signature.len());
        raw.extend_from_slice(&self.id.to_be_bytes());
        raw.extend_from_slice(&self.signature);
        format!("{SIG_PREFIX}{} {}", self.name, STANDARD.encode(raw))
    }
}

/// The set of trusted keys a note is opened against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verifiers {
    keys: Vec<VerifierKey>,
}

impl Verifiers {
    /// Collects trusted keys; exact duplicates are kept once.
    pub fn new(keys: impl IntoIterator<Item = VerifierKey>) -> Self {
        let mut out: Vec<VerifierKey> = Vec::new();
        for k in keys {
            if !out.contains(&k) {
                out.push(k);
            }
        }
        Verifiers { keys: out }
    }

    /// The key with this name and id, if exactly one is trusted.
    pub fn get(&self, name: &str, id: u32) -> Option<&VerifierKey> {
        self.lookup(name, id).ok().flatten()
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[VerifierKey] {
        &self.keys
    }

    /// Like [`Verifiers::get`], but two different keys sharing a name and
    /// id is an error rather than "unknown": silently treating them as
    /// unknown could let a forged signature be skipped instead of rejected.
    fn lookup(&self, name: &str, id: u32) -> Result<Option<&VerifierKey>, NoteError> {
        let mut found = None;
        for k in self.keys.iter().filter(|k| k.id == id && k.name == name) {
            if found.is_some() {
                return Err(NoteError::AmbiguousKey {
                    name: name.to_owned(),
                    id,
                });
            }
            found = Some(k);
        }
        Ok(found)
    }
}

/// An opened note: its text and the signatures that were checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The note text, including its final newline.
    pub text: String,
    /// Signatures by trusted keys, all verified, one per key.
    pub verified: Vec<NoteSignature>,
    /// Signatures by keys we do not know, unchecked; identical lines once.
    pub unverified: Vec<NoteSignature>,
}

/// Size, UTF-8 and control-character checks shared by signing and parsing.
/// <https://c2sp.org/signed-note#format>: "Signed notes MUST be valid UTF-8
/// and MUST NOT contain any ASCII control characters (those below U+0020)
/// other than newline."
fn check_chars(bytes: &[u8]) -> Result<(), NoteError> {
    match bytes
        .iter()
        .enumerate()
        .find(|&(_, &b)| b < 0x20 && b != b'\n')
    {
        Some((offset, &byte)) => Err(NoteError::ControlChar { offset, byte }),
        None => Ok(()),
    }
}

fn check_size(size: usize) -> Result<(), NoteError> {
    if size > MAX_NOTE_SIZE {
        Err(NoteError::TooLarge {
            size,
            max: MAX_NOTE_SIZE,
        })
    } else {
        Ok(())
    }
}

/// Signs `text` with each signer and returns the signed note: the text, a
/// blank line, then one `— <name> <base64(id ‖ sig)>` line per signer in
/// order. <https://c2sp.org/signed-note#format>
///
/// The text must be non-empty, end in a newline and have no control
/// characters other than newline; the signature covers the text including
/// its final newline. Signing twice with one key is pointless but allowed.
pub fn sign_note(text: &str, signers: &[&NoteSigner]) -> Result<String, NoteError> {
    check_size(text.len())?;
    if !text.ends_with('\n') {
        return Err(NoteError::MissingFinalNewline);
    }
    check_chars(text.as_bytes())?;
    if signers.is_empty() {
        return Err(NoteError::NoSignatures);
    }
    if signers.len() > MAX_SIGNATURES {
        return Err(NoteError::TooManySignatures {
            count: signers.len(),
            max: MAX_SIGNATURES,
        });
    }
    let mut out = String::with_capacity(text.len() + 1 + signers.len() * 120);
    out.push_str(text);
    out.push('\n');
    for s in signers {
        let line = NoteSignature {
            name: s.name.clone(),
            id: s.id,
            signature: s.sign(text.as_bytes()).to_vec(),
        }
        .to_line();
        out.push_str(&line);
        out.push('\n');
    }
    check_size(out.len())?;
    Ok(out)
}

/// Parses one signature line (without its newline); `line_no` is 1-based.
/// <https://c2sp.org/signed-note#signatures>
fn parse_signature_line(line: &str, line_no: usize) -> Result<NoteSignature, NoteError> {
    let rest = line
        .strip_prefix(SIG_PREFIX)
        .ok_or(NoteError::BadSignatureLine { line: line_no })?;
    let (name, b64) = rest
        .split_once(' ')
        .ok_or(NoteError::BadSignatureLine { line: line_no })?;
    if !is_valid_name(name) {
        return Err(NoteError::BadKeyName {
            line: line_no,
            name: name.to_owned(),
        });
    }
    if b64.is_empty() {
        return Err(NoteError::BadSignatureLine { line: line_no });
    }
    let raw = STANDARD
        .decode(b64)
        .map_err(|_| NoteError::BadBase64 { line: line_no })?;
    if raw.len() < 5 {
        return Err(NoteError::ShortSignature {
            line: line_no,
            len: raw.len(),
        });
    }
    let (id, sig) = raw.split_at(4);
    Ok(NoteSignature {
        name: name.to_owned(),
        id: u32::from_be_bytes([id[0], id[1], id[2], id[3]]),
        signature: sig.to_vec(),
    })
}

/// Parses a signed note without verifying anything: returns the text
/// (including its final newline) and every signature line in order.
///
/// Strict per <https://c2sp.org/signed-note#format>: at most
/// [`MAX_NOTE_SIZE`] bytes, valid UTF-8, no control characters but newline
/// (so no CR), text and signatures split at the *last* blank line, the note
/// ends in a newline, every line after the split is a signature line with a
/// valid key name and canonical standard base64 of at least 5 bytes, and at
/// most [`MAX_SIGNATURES`] of them.
pub fn parse_note(msg: &[u8]) -> Result<(String, Vec<NoteSignature>), NoteError> {
    check_size(msg.len())?;
    let s = std::str::from_utf8(msg).map_err(|e| NoteError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    check_chars(msg)?;
    if !s.ends_with('\n') {
        return Err(NoteError::MissingFinalNewline);
    }
    let split = s.rfind("\n\n").ok_or(NoteError::MissingSeparator)?;
    let (text, sigs) = (&s[..=split], &s[split + 2..]);
    if sigs.is_empty() {
        // "…\n\n" at the very end: either a text with a blank line and no
        // signatures, or a signed note with an extra newline appended.
        let last_line = text
            .trim_end_matches('\n')
            .rsplit('\n')
            .next()
            .unwrap_or_default();
        return Err(if last_line.starts_with(SIG_PREFIX) {
            NoteError::TrailingBlankLine
        } else {
            NoteError::NoSignatures
        });
    }
    // `sigs` ends in '\n' and has no "\n\n", so every line is non-empty.
    let lines: Vec<&str> = sigs[..sigs.len() - 1].split('\n').collect();
    if lines.len() > MAX_SIGNATURES {
        return Err(NoteError::TooManySignatures {
            count: lines.len(),
            max: MAX_SIGNATURES,
        });
    }
    let sigs = lines
        .iter()
        .enumerate()
        .map(|(i, line)| parse_signature_line(line, i + 1))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((text.to_owned(), sigs))
}

/// Parses a signed note and checks its signatures against `verifiers`.
///
/// Per <https://c2sp.org/signed-note#signatures>: signatures by unknown
/// `(name, id)` pairs are ignored (kept in [`Note::unverified`], identical
/// lines once); every signature by a known key must verify, or the whole
/// note is rejected (a wrong-length signature counts as invalid); and at
/// least one known signature is required. Unlike Go, which checks only the
/// first signature per key, we verify every one.
pub fn open_note(msg: &[u8], verifiers: &Verifiers) -> Result<Note, NoteError> {
    let (text, sigs) = parse_note(msg)?;
    let mut verified: Vec<NoteSignature> = Vec::new();
    let mut unverified: Vec<NoteSignature> = Vec::new();
    for sig in sigs {
        match verifiers.lookup(&sig.name, sig.id)? {
            None => {
                if !unverified.contains(&sig) {
                    unverified.push(sig);
                }
            }
            Some(key) => {
                if !key.verify(text.as_bytes(), &sig.signature) {
                    return Err(NoteError::BadSignature {
                        name: sig.name,
                        id: sig.id,
                    });
                }
                if !verified
                    .iter()
                    .any(|v| v.name == sig.name && v.id == sig.id)
                {
                    verified.push(sig);
                }
            }
        }
    }
    if verified.is_empty() {
        return Err(NoteError::NoKnownSignature {
            unverified: unverified.len(),
        });
    }
    Ok(Note {
        text,
        verified,
        unverified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(seed: u8, name: &str) -> NoteSigner {
        NoteSigner::new(name, SigningKey::from_bytes(&[seed; 32])).expect("valid name")
    }

    #[test]
    fn debug_hides_secret() {
        let s = signer(7, "example.com/log");
        let dbg = format!("{s:?}");
        let secret_b64 = STANDARD.encode([7u8; 32]);
        assert!(!dbg.contains(&secret_b64));
        assert!(!dbg.contains("[7, 7"));
        assert!(dbg.contains("example.com/log"));
    }

    #[test]
    fn verifier_key_display_round_trips() {
        let vk = signer(1, "a.example/b").verifier_key();
        let s = vk.to_string();
        assert_eq!(s.parse::<VerifierKey>(), Ok(vk));
    }

    #[test]
    fn names() {
        assert!(is_valid_name("example.com/log42"));
        for bad in [
            "",
            "a+b",
            "a b",
            "a\u{a0}b",
            "a\u{3000}b",
            "a\tb",
            "a\u{1}b",
        ] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn codes() {
        assert_eq!(NoteError::NoSignatures.code(), "note.no_signatures");
        assert_eq!(NoteError::MissingSeparator.code(), "note.malformed");
        assert_eq!(KeyError::BadPublicKey.code(), "key.bad_public_key");
    }
}
