//! Entries: the envelope that the Merkle tree commits to, and the body it
//! commits to by a salted digest.
//!
//! An entry is split in two so that its content can be erased later (a
//! GDPR request, a leaked secret) without breaking any proof: the tree
//! hashes only the *envelope*, and the envelope carries
//! `SHA-256(salt ‖ body bytes)` rather than the body. Deleting the body and
//! its salt leaves the digest unguessable and the tree intact.
//!
//! Both halves are serialised as RFC 8785 (JSON Canonicalization Scheme,
//! JCS) so that every implementation hashes the same bytes for the same
//! value. JCS only works on I-JSON (RFC 8785 §3.1, RFC 7493): object names
//! must be unique and numbers must survive a trip through an IEEE 754
//! double. Client input is therefore checked for both before it is
//! accepted — a number that canonicalisation would silently change must be
//! refused, or the ledger would record something other than what the client
//! sent.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::code::ErrorCode;
use crate::hash::{self, Hash};

mod jcs;
mod json;
mod name;
mod number;
mod one_pass;
mod seal;
#[cfg(test)]
mod testgen;
mod time;
mod view;

pub use name::{
    MAX_INSTANCE_BYTES, MAX_KIND_BYTES, MAX_SEGMENT_BYTES, SYSTEM_TENANT, origin, validate_kind,
};
pub use number::check_numbers;
pub use seal::{Sealed, Sealer};
pub use time::{MAX_TS_MICROS, MIN_TS_MICROS, format_ts, parse_ts, try_format_ts};
pub use view::EnvelopeView;

/// The envelope format version written in `v`.
pub const ENVELOPE_VERSION: u64 = 1;
/// Largest envelope, in bytes of canonical JSON. Envelopes are small and
/// fixed-shape; the cap keeps tiles and proofs cheap to serve and lets the
/// storage layer use a 16-bit length.
pub const MAX_ENVELOPE_BYTES: usize = 65_535;
/// Default largest body, in bytes of canonical JSON.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;
/// Size of the random salt mixed into the body digest. 128 bits make the
/// digest of an erased body impossible to confirm by guessing the body.
pub const SALT_SIZE: usize = 16;
/// Largest value of the typed integer fields (`index`, `parent`,
/// `source.seq`): 2^53. JCS writes every number as an IEEE 754 double
/// (RFC 8785 §3.2.2.3), and above 2^53 not every integer has a double, so
/// counters are kept where every value is exact (RFC 7493 §2.2).
pub const MAX_SAFE_INTEGER: u64 = 1 << 53;
/// Largest `request_id`, in bytes. It is an idempotency key that the store
/// indexes, so it is kept short.
pub const MAX_REQUEST_ID_BYTES: usize = 256;
/// Kinds with this prefix are written only by the server itself
/// (`evident.exception`, `evident.redaction`, …).
pub const RESERVED_KIND_PREFIX: &str = "evident.";

/// Why an entry, envelope, body, timestamp or name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// The bytes are not UTF-8 (RFC 8259 §8.1 requires it of JSON).
    #[error("input is not valid utf-8 at byte {offset}")]
    InvalidUtf8 {
        /// Offset of the first byte that is not part of valid UTF-8.
        offset: usize,
    },
    /// The bytes are not one JSON value.
    #[error("invalid json at line {line} column {column}: {reason}")]
    InvalidJson {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's description.
        reason: String,
    },
    /// The JSON value is not an object.
    #[error("input must be a json object")]
    NotObject,
    /// An object has a field that the format does not define.
    #[error("unknown field {field:?}")]
    UnknownField {
        /// Dotted path of the field, e.g. `source.extra`.
        field: String,
    },
    /// An object, at any depth, has the same name twice. RFC 8785 §3.1
    /// requires I-JSON, which forbids it (RFC 7493 §2.3): the meaning of
    /// such an object depends on the parser.
    #[error("duplicate key {key:?} at line {line} column {column}")]
    DuplicateKey {
        /// The repeated name (unescaped).
        key: String,
        /// 1-based line of the end of the second occurrence.
        line: usize,
        /// 1-based column of the end of the second occurrence.
        column: usize,
    },
    /// The required `kind` field is absent or null.
    #[error("missing required field \"kind\"")]
    MissingKind,
    /// `kind` is empty, too long or uses characters outside `[A-Za-z0-9._:-]`.
    #[error("bad kind: {reason}")]
    BadKind {
        /// What is wrong with it.
        reason: String,
    },
    /// `kind` starts with `evident.`, which only the server may write.
    #[error("kind {kind:?} uses the reserved prefix \"evident.\"")]
    ReservedKind {
        /// The offending kind.
        kind: String,
    },
    /// A field has the wrong type or value.
    #[error("bad field {field:?}: {reason}")]
    BadField {
        /// Dotted path of the field, e.g. `source.seq`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A number would change value under canonicalisation (RFC 8785
    /// §3.2.2.3 writes every number as the shortest form of a double).
    #[error("number {literal} at byte {offset} cannot be represented exactly; send it as a string")]
    LossyNumber {
        /// The number as written (cut to 64 bytes).
        literal: String,
        /// Byte offset of the number in the input.
        offset: usize,
    },
    /// A body or envelope is over its size limit.
    #[error("{what} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// `body` or `envelope`.
        what: &'static str,
        /// Its size in canonical bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Stored bytes parse but are not the canonical spelling of their value.
    #[error("not in canonical form: first difference at byte {offset}")]
    NotCanonical {
        /// First byte offset at which input and canonical form differ.
        offset: usize,
    },
    /// A timestamp is not in the one accepted form, or out of range.
    #[error("bad timestamp {value:?}: expected YYYY-MM-DDTHH:MM:SS.ffffffZ")]
    BadTimestamp {
        /// The rejected text (cut to 64 bytes).
        value: String,
    },
    /// An instance, tenant or log name breaks the naming rules.
    #[error("bad name {name:?}: {reason}")]
    BadName {
        /// The rejected name (cut to 64 bytes).
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl ErrorCode for EntryError {
    fn code(&self) -> &'static str {
        match self {
            EntryError::InvalidUtf8 { .. } => "entry.invalid_utf8",
            EntryError::InvalidJson { .. } => "entry.invalid_json",
            EntryError::NotObject => "entry.not_object",
            EntryError::UnknownField { .. } => "entry.unknown_field",
            EntryError::DuplicateKey { .. } => "entry.duplicate_key",
            EntryError::MissingKind => "entry.missing_kind",
            EntryError::BadKind { .. } => "entry.bad_kind",
            EntryError::ReservedKind { .. } => "entry.reserved_kind",
            EntryError::BadField { .. } => "entry.bad_field",
            EntryError::LossyNumber { .. } => "entry.lossy_number",
            EntryError::TooLarge { .. } => "entry.too_large",
            EntryError::NotCanonical { .. } => "entry.not_canonical",
            EntryError::BadTimestamp { .. } => "entry.bad_timestamp",
            EntryError::BadName { .. } => "entry.bad_name",
        }
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary, so that errors
/// quoting user input stay small.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn bad_field(field: &str, reason: impl fmt::Display) -> EntryError {
    EntryError::BadField {
        field: field.to_owned(),
        reason: reason.to_string(),
    }
}

/// The producer-side identity of an event: which producer sent it and its
/// sequence number there, so that gaps and replays can be spotted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The producer's identifier.
    pub id: String,
    /// The producer's sequence number.
    pub seq: u64,
}

/// What the Merkle tree commits to. Its bytes are the JCS canonical JSON of
/// these fields (RFC 8785 §3.2); optional fields are omitted, never null,
/// so that each envelope has exactly one spelling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Format version, [`ENVELOPE_VERSION`].
    pub v: u64,
    /// The log's origin, `<instance>/<tenant>/<log>`.
    pub origin: String,
    /// 0-based position in the log.
    pub index: u64,
    /// Server time of sequencing, see [`format_ts`].
    pub ts: String,
    /// Leaf hash of entry `index - 1`; for index 0, [`genesis_prev`].
    pub prev: Hash,
    /// Event type.
    pub kind: String,
    /// Index of an earlier related entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<u64>,
    /// Producer identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// [`body_digest`] of the body.
    pub body: Hash,
}

const ENVELOPE_FIELDS: &[&str] = &[
    "v", "origin", "index", "ts", "prev", "kind", "parent", "source", "body",
];

impl Envelope {
    /// The JCS canonical bytes (RFC 8785 §3.2: sorted names, no
    /// whitespace, shortest numbers). These are the leaf bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        view::write_envelope(self).unwrap_or_else(|| self.to_bytes_general())
    }

    /// The same bytes through the general RFC 8785 writer (the envelope as
    /// a JSON value, its members sorted at run time); the reference that
    /// the direct writer is tested against.
    pub fn to_bytes_general(&self) -> Vec<u8> {
        let value = serde_json::to_value(self)
            .expect("an envelope has only strings, integers and string-keyed objects");
        let mut out = Vec::with_capacity(256);
        jcs::write_value(&mut out, &value);
        out
    }

    /// Strict parse of stored or exported bytes: valid UTF-8 JSON object
    /// with exactly the envelope fields, `v == 1`, and the bytes must equal
    /// the canonical re-encoding (`entry.not_canonical`) — a verifier must
    /// not accept two spellings of one envelope, or two logs could disagree
    /// on bytes while agreeing on meaning.
    pub fn parse(bytes: &[u8]) -> Result<Envelope, EntryError> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(EntryError::TooLarge {
                what: "envelope",
                size: bytes.len(),
                limit: MAX_ENVELOPE_BYTES,
            });
        }
        let mut map = json::parse_object(bytes)?;
        reject_unknown(&map, ENVELOPE_FIELDS, "")?;
        let v = take_int(&mut map, "v")?.ok_or_else(|| missing("v"))?;
        if v != ENVELOPE_VERSION {
            return Err(bad_field("v", format_args!("unsupported version {v}")));
        }
        let origin = take_string(&mut map, "origin")?.ok_or_else(|| missing("origin"))?;
        check_origin(&origin)?;
        let index = take_int(&mut map, "index")?.ok_or_else(|| missing("index"))?;
        let ts = take_string(&mut map, "ts")?.ok_or_else(|| missing("ts"))?;
        parse_ts(&ts)?;
        let prev = take_hash(&mut map, "prev")?;
        let kind = take_string(&mut map, "kind")?.ok_or_else(|| missing("kind"))?;
        validate_kind(&kind)?;
        let parent = take_int(&mut map, "parent")?;
        if let Some(p) = parent
            && p >= index
        {
            return Err(bad_field(
                "parent",
                format_args!("parent {p} is not before index {index}"),
            ));
        }
        let source = take_source(&mut map)?;
        let body = take_hash(&mut map, "body")?;
        let env = Envelope {
            v,
            origin,
            index,
            ts,
            prev,
            kind,
            parent,
            source,
            body,
        };
        check_canonical(bytes, &env.to_bytes())?;
        Ok(env)
    }

    /// The RFC 6962 leaf hash of the canonical bytes.
    pub fn leaf_hash(&self) -> Hash {
        hash::leaf_hash(&self.to_bytes())
    }
}

/// The content of an event. It is stored beside the envelope and may be
/// erased; the envelope keeps only its salted digest.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    /// Idempotency key: a retried request with the same key is not logged
    /// twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Who acted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// What they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// To what.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// With what result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Client-side time of the event, any RFC 3339 date-time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<String>,
    /// Free-form JSON. A JSON `null` here is kept as `Some(Value::Null)`:
    /// the client sent it, so the body records it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub data: Option<Value>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// The body's members, in the order their checks run.
const BODY_FIELDS: &[&str; 7] = &[
    "request_id",
    "actor",
    "action",
    "resource",
    "outcome",
    "occurred_at",
    "data",
];

impl Body {
    /// The JCS canonical bytes (RFC 8785 §3.2). These are what the digest
    /// covers and what is stored.
    pub fn to_bytes(&self) -> Vec<u8> {
        jcs::body_bytes(self)
    }

    /// Strict parse of stored bytes: the same checks as client input
    /// (unique keys, exact numbers, field types), and the bytes must be the
    /// canonical encoding, so a stored body has one spelling and its digest
    /// can be recomputed from its value.
    pub fn parse(bytes: &[u8]) -> Result<Body, EntryError> {
        // The one-pass reader for the common case; anything it does not
        // accept, the strict reader decides (and words the error).
        if let Some(fields) = one_pass::read_fields(bytes, BODY_FIELDS)
            && let Ok(body) = body_from_fields(fields)
            && body.to_bytes() == bytes
        {
            return Ok(body);
        }
        Body::parse_reference(bytes)
    }

    /// [`Body::parse`] by separate passes, without the one-pass reader:
    /// what decides every refusal, and what the fast path is tested
    /// against.
    fn parse_reference(bytes: &[u8]) -> Result<Body, EntryError> {
        let mut map = json::parse_object(bytes)?;
        reject_unknown(&map, BODY_FIELDS, "")?;
        let body = body_from_fields(BODY_FIELDS.map(|f| map.remove(f)))?;
        check_canonical(bytes, &body.to_bytes())?;
        Ok(body)
    }
}

/// `SHA-256(salt ‖ body bytes)`: the envelope's commitment to the body.
pub fn body_digest(salt: &[u8; SALT_SIZE], body_bytes: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(body_bytes);
    Hash(h.finalize().into())
}

/// `prev` of entry 0: SHA-256 of the origin string, which binds the first
/// entry to its log so it cannot be replayed into another.
pub fn genesis_prev(origin: &str) -> Hash {
    hash::sha256(origin.as_bytes())
}

/// Per-log limits on client input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest canonical body in bytes.
    pub max_body_bytes: usize,
    /// Whether kinds starting with `evident.` are accepted. Only the
    /// server's own entries should set this.
    pub allow_reserved_kinds: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            allow_reserved_kinds: false,
        }
    }
}

/// A validated client entry, not yet placed in a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryDraft {
    /// Event type, already validated.
    pub kind: String,
    /// Index of an earlier related entry.
    pub parent: Option<u64>,
    /// Producer identity.
    pub source: Option<Source>,
    /// The body.
    pub body: Body,
    /// `body.to_bytes()`, computed once. [`EntryDraft::seal`] digests these
    /// bytes as they are, so they must stay equal to the body's encoding.
    pub body_bytes: Vec<u8>,
    /// The body's salt and digest when drawn before sealing
    /// ([`EntryDraft::salt_with`]); `None` leaves both to the sealer. Set
    /// only after `body_bytes` is final.
    pub salted: Option<Salted>,
}

/// A body's salt and its [`body_digest`], made before the entry reaches
/// the sequencer. Hashing the body is the one part of sealing that does
/// not depend on the entry's place in the log, so a server can do it on
/// the threads that read the request instead of on its one writer, whose
/// time bounds the rate of appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Salted {
    /// The salt, as stored beside the body.
    pub salt: [u8; SALT_SIZE],
    /// `body_digest(salt, body_bytes)`.
    pub digest: Hash,
}

/// An envelope placed at its position, with its bytes and leaf hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedEntry {
    /// The envelope.
    pub envelope: Envelope,
    /// Its canonical bytes (the leaf data).
    pub envelope_bytes: Vec<u8>,
    /// RFC 6962 leaf hash of `envelope_bytes`.
    pub leaf_hash: Hash,
}

impl EntryDraft {
    /// The idempotency key, if the client sent one.
    pub fn request_id(&self) -> Option<&str> {
        self.body.request_id.as_deref()
    }

    /// Gives the body its salt and digests it now: sealing then uses both
    /// instead of a salt of its own. `salt` must be fresh randomness.
    pub fn salt_with(&mut self, salt: [u8; SALT_SIZE]) {
        self.salted = Some(Salted {
            salt,
            digest: body_digest(&salt, &self.body_bytes),
        });
    }

    /// Builds the envelope at a position. Fails with `entry.too_large` if
    /// the envelope exceeds [`MAX_ENVELOPE_BYTES`], `entry.bad_field` if
    /// `parent >= index` or a number exceeds [`MAX_SAFE_INTEGER`],
    /// `entry.bad_timestamp` / `entry.bad_name` / `entry.bad_kind` if `ts`,
    /// `origin` or `kind` would make an envelope that [`Envelope::parse`]
    /// refuses.
    pub fn seal(
        &self,
        origin: &str,
        index: u64,
        ts: &str,
        prev: Hash,
        salt: &[u8; SALT_SIZE],
    ) -> Result<SealedEntry, EntryError> {
        let mut envelope_bytes = Vec::with_capacity(256);
        let sealed =
            Sealer::new(origin, ts)?.seal_into(self, index, &prev, salt, &mut envelope_bytes)?;
        let envelope = Envelope {
            v: ENVELOPE_VERSION,
            origin: origin.to_owned(),
            index,
            ts: ts.to_owned(),
            prev,
            kind: self.kind.clone(),
            parent: self.parent,
            source: self.source.clone(),
            body: sealed.body_digest,
        };
        Ok(SealedEntry {
            envelope,
            envelope_bytes,
            leaf_hash: sealed.leaf_hash,
        })
    }
}

/// A client entry's members: the envelope's three, then the body's in
/// [`BODY_FIELDS`] order.
const INPUT_FIELDS: &[&str; 10] = &[
    "kind",
    "parent",
    "source",
    "request_id",
    "actor",
    "action",
    "resource",
    "outcome",
    "occurred_at",
    "data",
];

/// Parses and validates one client entry: one JSON object with `kind`
/// (required), `parent`, `source`, and the body fields.
///
/// Checks, in order: UTF-8, exact numbers (see [`check_numbers`]), JSON
/// syntax with unique names at every depth, object shape, field names and
/// types, kind, then the body size. The caller should also cap the request
/// size at the transport, since the body limit applies to canonical bytes.
///
/// Well-formed input takes a one-pass reader that checks syntax, names and
/// numbers while it builds the values, and the body is written straight
/// to RFC 8785 bytes. Input that reader does not accept, and input that
/// fails a later check, is read again by [`parse_entry_reference`], so
/// the result, error or draft, is always that function's.
pub fn parse_entry(input: &[u8], limits: &Limits) -> Result<EntryDraft, EntryError> {
    // The reader already holds the body as its canonical bytes read back
    // (see `one_pass`), so unlike the reference path it needs no re-read.
    if let Some(fields) = one_pass::read_fields(input, INPUT_FIELDS)
        && let Ok(draft) = draft_from_fields(fields, limits)
    {
        return Ok(draft);
    }
    parse_entry_reference(input, limits)
}

/// The reference reading of a client entry, by separate passes: the
/// literal scan of [`check_numbers`], serde_json's parse with duplicate
/// names refused, the field checks, the canonical bytes, and those bytes
/// read back. [`parse_entry`] answers exactly as this does; it is public
/// for the tests and the fuzz target that hold it to that.
#[doc(hidden)]
pub fn parse_entry_reference(input: &[u8], limits: &Limits) -> Result<EntryDraft, EntryError> {
    let mut map = json::parse_object(input)?;
    reject_unknown(&map, INPUT_FIELDS, "")?;
    let mut draft = draft_from_fields(INPUT_FIELDS.map(|f| map.remove(f)), limits)?;
    // Keep the body as the stored bytes will read back (`1.0` becomes the
    // integer `1`, `-0` becomes `0`), so that `Body::parse(&body_bytes)`
    // equals `body` and nothing downstream sees a value the log never held.
    draft.body = json::reread_body(&draft.body_bytes)?;
    Ok(draft)
}

/// The checks of [`parse_entry`] after the syntax: the members' values by
/// their place in [`INPUT_FIELDS`], absent ones `None`.
fn draft_from_fields(
    fields: [Option<Value>; 10],
    limits: &Limits,
) -> Result<EntryDraft, EntryError> {
    let [kind, parent, source, body @ ..] = fields;
    let kind = match kind {
        None | Some(Value::Null) => return Err(EntryError::MissingKind),
        Some(Value::String(s)) => s,
        Some(other) => return Err(bad_field("kind", type_error("a string", &other))),
    };
    validate_kind(&kind)?;
    if !limits.allow_reserved_kinds && is_reserved_kind(&kind) {
        return Err(EntryError::ReservedKind { kind });
    }
    let parent = int_field("parent", parent)?;
    let source = source_field(source)?;
    let body = body_from_fields(body)?;
    check_request_id_input(body.request_id.as_deref())?;
    let body_bytes = body.to_bytes();
    if body_bytes.len() > limits.max_body_bytes {
        return Err(EntryError::TooLarge {
            what: "body",
            size: body_bytes.len(),
            limit: limits.max_body_bytes,
        });
    }
    Ok(EntryDraft {
        kind,
        parent,
        source,
        body,
        body_bytes,
        salted: None,
    })
}

/// Whether `kind` is in the server's reserved namespace. Compared without
/// regard to ASCII case, so `Evident.redaction` cannot pass for the
/// server's own kind in a case-insensitive viewer.
pub fn is_reserved_kind(kind: &str) -> bool {
    kind.len() >= RESERVED_KIND_PREFIX.len()
        && kind.as_bytes()[..RESERVED_KIND_PREFIX.len()]
            .eq_ignore_ascii_case(RESERVED_KIND_PREFIX.as_bytes())
}

fn check_origin(origin_str: &str) -> Result<(), EntryError> {
    let mut parts = origin_str.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(i), Some(t), Some(l), None) => origin(i, t, l).map(|_| ()),
        _ => Err(EntryError::BadName {
            name: clip(origin_str, 64),
            reason: "origin must be <instance>/<tenant>/<log>",
        }),
    }
}

fn check_safe(field: &str, n: u64) -> Result<(), EntryError> {
    if n > MAX_SAFE_INTEGER {
        return Err(bad_field(
            field,
            format_args!("{n} is above 2^53, the largest exact integer in canonical json"),
        ));
    }
    Ok(())
}

fn check_source(s: &Source) -> Result<(), EntryError> {
    if s.id.is_empty() {
        return Err(bad_field("source.id", "must not be empty"));
    }
    check_safe("source.seq", s.seq)
}

fn check_canonical(bytes: &[u8], canonical: &[u8]) -> Result<(), EntryError> {
    if bytes == canonical {
        return Ok(());
    }
    let offset = bytes
        .iter()
        .zip(canonical)
        .position(|(a, b)| a != b)
        .unwrap_or(bytes.len().min(canonical.len()));
    Err(EntryError::NotCanonical { offset })
}

fn missing(field: &str) -> EntryError {
    bad_field(field, "missing required field")
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn type_error(expected: &str, got: &Value) -> String {
    format!("expected {expected}, got {}", type_name(got))
}

fn reject_unknown(
    map: &Map<String, Value>,
    known: &[&str],
    prefix: &str,
) -> Result<(), EntryError> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(EntryError::UnknownField {
            field: format!("{prefix}{}", clip(k, 64)),
        }),
        None => Ok(()),
    }
}

/// An optional string field. Null is refused: absent fields are omitted,
/// never null, so that a value has one spelling.
fn take_string(map: &mut Map<String, Value>, field: &str) -> Result<Option<String>, EntryError> {
    string_field(field, map.remove(field))
}

/// [`take_string`] of a value already taken out of its object.
fn string_field(field: &str, v: Option<Value>) -> Result<Option<String>, EntryError> {
    match v {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(bad_field(field, type_error("a string", &other))),
    }
}

/// An optional non-negative integer field, at most 2^53. An integral
/// number written with a fraction or exponent (`3.0`, `3e0`) is accepted:
/// canonicalisation only changes its spelling.
fn take_int(map: &mut Map<String, Value>, field: &str) -> Result<Option<u64>, EntryError> {
    int_field(field, map.remove(field))
}

/// [`take_int`] of a value already taken out of its object.
fn int_field(field: &str, v: Option<Value>) -> Result<Option<u64>, EntryError> {
    match v {
        None => Ok(None),
        Some(Value::Number(n)) => {
            let v = if let Some(u) = n.as_u64() {
                Some(u)
            } else if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && (0.0..=9_007_199_254_740_992.0).contains(&f)
            {
                // Exact: f is integral and within 0..=2^53.
                #[allow(clippy::cast_possible_truncation)]
                Some(f as u64)
            } else {
                None
            };
            match v {
                Some(u) if u <= MAX_SAFE_INTEGER => Ok(Some(u)),
                _ => Err(bad_field(
                    field,
                    format_args!("expected an integer from 0 to 2^53, got {n}"),
                )),
            }
        }
        Some(other) => Err(bad_field(field, type_error("an integer", &other))),
    }
}

fn take_hash(map: &mut Map<String, Value>, field: &str) -> Result<Hash, EntryError> {
    let s = take_string(map, field)?.ok_or_else(|| missing(field))?;
    Hash::from_base64(&s).map_err(|e| bad_field(field, e))
}

fn take_source(map: &mut Map<String, Value>) -> Result<Option<Source>, EntryError> {
    source_field(map.remove("source"))
}

/// [`take_source`] of a value already taken out of its object.
fn source_field(v: Option<Value>) -> Result<Option<Source>, EntryError> {
    let mut obj = match v {
        None => return Ok(None),
        Some(Value::Object(o)) => o,
        Some(other) => return Err(bad_field("source", type_error("an object", &other))),
    };
    reject_unknown(&obj, &["id", "seq"], "source.")?;
    let id = take_string(&mut obj, "id")
        .map_err(|_| bad_field("source.id", "expected a string"))?
        .ok_or_else(|| missing("source.id"))?;
    let seq = match take_int(&mut obj, "seq") {
        Ok(Some(s)) => s,
        Ok(None) => return Err(missing("source.seq")),
        Err(EntryError::BadField { reason, .. }) => return Err(bad_field("source.seq", reason)),
        Err(e) => return Err(e),
    };
    let s = Source { id, seq };
    check_source(&s)?;
    Ok(Some(s))
}

/// Refuses a new entry's `request_id` holding U+0000. The store keeps
/// request ids as text for their unique index, and PostgreSQL's text
/// cannot hold NUL, so without this the same input would be stored by
/// SQLite and fail as a database error on PostgreSQL. Checked on input
/// only, not in [`Body::parse`]: a body stored before this rule still
/// reads back and verifies.
fn check_request_id_input(request_id: Option<&str>) -> Result<(), EntryError> {
    match request_id {
        Some(r) if r.contains('\0') => {
            Err(bad_field("request_id", "must not contain U+0000 (NUL)"))
        }
        _ => Ok(()),
    }
}

/// A body from its members' values, by their place in [`BODY_FIELDS`].
fn body_from_fields(fields: [Option<Value>; 7]) -> Result<Body, EntryError> {
    let [
        request_id,
        actor,
        action,
        resource,
        outcome,
        occurred_at,
        data,
    ] = fields;
    let request_id = string_field("request_id", request_id)?;
    if let Some(r) = &request_id {
        if r.is_empty() {
            return Err(bad_field("request_id", "must not be empty"));
        }
        if r.len() > MAX_REQUEST_ID_BYTES {
            return Err(bad_field(
                "request_id",
                format_args!(
                    "{} bytes, over the limit of {MAX_REQUEST_ID_BYTES}",
                    r.len()
                ),
            ));
        }
    }
    let occurred_at = string_field("occurred_at", occurred_at)?;
    if let Some(t) = &occurred_at
        && !time::is_rfc3339(t)
    {
        return Err(bad_field(
            "occurred_at",
            format_args!("{:?} is not an RFC 3339 date-time", clip(t, 64)),
        ));
    }
    Ok(Body {
        request_id,
        actor: string_field("actor", actor)?,
        action: string_field("action", action)?,
        resource: string_field("resource", resource)?,
        outcome: string_field("outcome", outcome)?,
        occurred_at,
        data,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn clip_respects_char_boundaries() {
        assert_eq!(clip("abc", 5), "abc");
        assert_eq!(clip("ééé", 3), "é…");
    }

    #[test]
    fn reserved_prefix_ignores_case() {
        assert!(is_reserved_kind("evident.redaction"));
        assert!(is_reserved_kind("EVIDENT.x"));
        assert!(!is_reserved_kind("evident"));
        assert!(!is_reserved_kind("evidentx.y"));
    }

    /// NUL is refused in a new entry's request id by both readers (the
    /// one-pass and the reference), and only there: elsewhere in the body
    /// it is an ordinary character, and a stored body with it still
    /// parses.
    #[test]
    fn nul_in_request_id_is_refused_on_input_only() {
        let limits = Limits::default();
        let bad = br#"{"kind":"a.b","request_id":"x\u0000y"}"#;
        let want = EntryError::BadField {
            field: "request_id".into(),
            reason: "must not contain U+0000 (NUL)".into(),
        };
        assert_eq!(parse_entry(bad, &limits).map(|_| ()), Err(want.clone()));
        assert_eq!(
            parse_entry_reference(bad, &limits).map(|_| ()),
            Err(want.clone())
        );
        assert_eq!(
            want.to_string(),
            r#"bad field "request_id": must not contain U+0000 (NUL)"#
        );

        let ok = br#"{"kind":"a.b","actor":"x\u0000y","request_id":"x\u0001y"}"#;
        let draft = parse_entry(ok, &limits).unwrap();
        assert_eq!(draft.body.actor.as_deref(), Some("x\0y"));

        // Bodies stored before the rule read back unchanged.
        let stored = Body {
            request_id: Some("x\0y".into()),
            ..Body::default()
        };
        let bytes = stored.to_bytes();
        assert_eq!(Body::parse(&bytes).unwrap(), stored);
    }
}
