//! A borrowed, single-pass reader for canonical envelope bytes.
//!
//! Verification reads every envelope of a log, so reading one must cost
//! about what hashing it costs. [`Envelope::parse`](super::Envelope::parse)
//! builds a generic JSON tree and re-canonicalises it to compare — exact,
//! but several times the cost of the SHA-256 it accompanies. An envelope
//! has one fixed shape, and its RFC 8785 encoding has exactly one spelling:
//! keys in a known order (RFC 8785 §3.2.3), no whitespace, integers in
//! plain decimal (§3.2.2.3), and strings escaped in exactly one way
//! (§3.2.2.2). So this reader walks that one spelling and refuses any byte
//! that differs from it; what it accepts re-encodes to the same bytes
//! (property tests check this, and the writer against
//! `serde_json_canonicalizer`).
//!
//! Hand-written because no JSON crate reads a value *and* proves it
//! canonical in one pass; the general path stays in `Envelope::parse`.
//!
//! The reader checks form, not meaning: it does not check that `parent`
//! precedes `index` or that `origin` is well formed, because the verifier
//! reports those as their own violations.

use std::borrow::Cow;

use super::{EntryError, Envelope, MAX_ENVELOPE_BYTES, MAX_SAFE_INTEGER, Source, jcs, parse_ts};
use crate::hash::Hash;

/// An envelope read from canonical bytes, borrowing its strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeView<'a> {
    /// The log's origin.
    pub origin: Cow<'a, str>,
    /// Position in the log.
    pub index: u64,
    /// Sequencing time, `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    pub ts: Cow<'a, str>,
    /// Leaf hash of the previous entry.
    pub prev: Hash,
    /// Event type.
    pub kind: Cow<'a, str>,
    /// Optional causal parent.
    pub parent: Option<u64>,
    /// Optional producer id and sequence number.
    pub source: Option<(Cow<'a, str>, u64)>,
    /// Salted body digest.
    pub body: Hash,
}

impl<'a> EnvelopeView<'a> {
    /// Reads canonical envelope bytes. Anything but the one canonical
    /// spelling of a v1 envelope is `entry.not_canonical` at the offset of
    /// the first unexpected byte.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, EntryError> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(EntryError::TooLarge {
                what: "envelope",
                size: bytes.len(),
                limit: MAX_ENVELOPE_BYTES,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|e| EntryError::InvalidUtf8 {
            offset: e.valid_up_to(),
        })?;
        let mut r = Reader { s: text, pos: 0 };
        r.lit("{\"body\":")?;
        let body = r.hash()?;
        r.lit(",\"index\":")?;
        let index = r.int()?;
        r.lit(",\"kind\":")?;
        let kind = r.string()?;
        r.lit(",\"origin\":")?;
        let origin = r.string()?;
        let parent = if r.peek_lit(",\"parent\":") {
            Some(r.int()?)
        } else {
            None
        };
        r.lit(",\"prev\":")?;
        let prev = r.hash()?;
        let source = if r.peek_lit(",\"source\":{\"id\":") {
            let id = r.string()?;
            r.lit(",\"seq\":")?;
            let seq = r.int()?;
            r.lit("}")?;
            Some((id, seq))
        } else {
            None
        };
        r.lit(",\"ts\":")?;
        let ts_at = r.pos;
        let ts = r.string()?;
        parse_ts(&ts).map_err(|_| EntryError::NotCanonical { offset: ts_at })?;
        r.lit(",\"v\":1}")?;
        if r.pos != text.len() {
            return Err(r.err());
        }
        Ok(EnvelopeView {
            origin,
            index,
            ts,
            prev,
            kind,
            parent,
            source,
            body,
        })
    }

    /// The owned envelope.
    pub fn to_envelope(&self) -> Envelope {
        Envelope {
            v: super::ENVELOPE_VERSION,
            origin: self.origin.clone().into_owned(),
            index: self.index,
            ts: self.ts.clone().into_owned(),
            prev: self.prev,
            kind: self.kind.clone().into_owned(),
            parent: self.parent,
            source: self.source.as_ref().map(|(id, seq)| Source {
                id: id.clone().into_owned(),
                seq: *seq,
            }),
            body: self.body,
        }
    }
}

/// Writes the RFC 8785 bytes of an envelope whose integers are at most
/// [`MAX_SAFE_INTEGER`]; `None` otherwise (the caller falls back to the
/// general writer, which writes larger integers as the double nearest
/// them, as JavaScript reads them).
///
/// The mirror of [`EnvelopeView::parse`]: keys in RFC 8785 §3.2.3 order,
/// integers in plain decimal (§3.2.2.3), strings escaped per §3.2.2.2.
/// Sealing writes one envelope per appended entry, and going through a
/// generic JSON value costs several times the hashing; property tests
/// check that this, the general writer and `serde_json_canonicalizer`
/// produce the same bytes.
pub(super) fn write_envelope(e: &Envelope) -> Option<Vec<u8>> {
    let ints = [
        Some(e.index),
        e.parent,
        e.source.as_ref().map(|s| s.seq),
        Some(e.v),
    ];
    if ints.into_iter().flatten().any(|n| n > MAX_SAFE_INTEGER) || e.v != 1 {
        return None;
    }
    let mut out = Vec::with_capacity(
        200 + e.origin.len() + e.kind.len() + e.source.as_ref().map_or(0, |s| s.id.len()),
    );
    write_fields(
        &mut out,
        &Fields {
            body: &e.body,
            index: e.index,
            kind: &e.kind,
            origin: &e.origin,
            parent: e.parent,
            prev: &e.prev,
            source: e.source.as_ref(),
            ts: &e.ts,
        },
    );
    Some(out)
}

/// An envelope's fields, borrowed: what [`write_fields`] encodes (as
/// version 1).
pub(super) struct Fields<'a> {
    pub body: &'a Hash,
    pub index: u64,
    pub kind: &'a str,
    pub origin: &'a str,
    pub parent: Option<u64>,
    pub prev: &'a Hash,
    pub source: Option<&'a Source>,
    pub ts: &'a str,
}

/// Appends the canonical bytes of a version-1 envelope of `f` to `out`,
/// allocating nothing else (the sequencer writes one envelope per entry,
/// back to back). Its integers must be at most [`MAX_SAFE_INTEGER`]: the
/// callers check them first (the general writer spells larger ones as
/// doubles).
pub(super) fn write_fields(out: &mut Vec<u8>, f: &Fields<'_>) {
    out.extend_from_slice(b"{\"body\":\"");
    push_base64(out, f.body);
    out.extend_from_slice(b"\",\"index\":");
    jcs::write_u64(out, f.index);
    out.extend_from_slice(b",\"kind\":");
    jcs::write_str(out, f.kind);
    out.extend_from_slice(b",\"origin\":");
    jcs::write_str(out, f.origin);
    if let Some(p) = f.parent {
        out.extend_from_slice(b",\"parent\":");
        jcs::write_u64(out, p);
    }
    out.extend_from_slice(b",\"prev\":\"");
    push_base64(out, f.prev);
    out.push(b'"');
    if let Some(src) = f.source {
        out.extend_from_slice(b",\"source\":{\"id\":");
        jcs::write_str(out, &src.id);
        out.extend_from_slice(b",\"seq\":");
        jcs::write_u64(out, src.seq);
        out.push(b'}');
    }
    out.extend_from_slice(b",\"ts\":");
    jcs::write_str(out, f.ts);
    out.extend_from_slice(b",\"v\":1}");
}

/// Standard base64 of a hash, padded: always 44 bytes.
fn push_base64(out: &mut Vec<u8>, h: &Hash) {
    use base64::Engine as _;
    let mut buf = [0u8; 44];
    let n = base64::engine::general_purpose::STANDARD
        .encode_slice(h.as_bytes(), &mut buf)
        .expect("44 bytes hold the base64 of 32");
    out.extend_from_slice(&buf[..n]);
}

struct Reader<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn err(&self) -> EntryError {
        EntryError::NotCanonical { offset: self.pos }
    }

    fn rest(&self) -> &'a [u8] {
        &self.s.as_bytes()[self.pos..]
    }

    fn lit(&mut self, lit: &str) -> Result<(), EntryError> {
        if self.peek_lit(lit) {
            Ok(())
        } else {
            Err(self.err())
        }
    }

    /// Consumes `lit` if the input continues with it.
    fn peek_lit(&mut self, lit: &str) -> bool {
        if self.rest().starts_with(lit.as_bytes()) {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }

    /// A non-negative integer as RFC 8785 §3.2.2.3 writes one below 2^53:
    /// plain decimal, no sign, no leading zero, no fraction or exponent.
    fn int(&mut self) -> Result<u64, EntryError> {
        let digits = self
            .rest()
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let text = &self.s[self.pos..self.pos + digits];
        let ok = digits > 0 && digits <= 16 && (digits == 1 || !text.starts_with('0'));
        let value = text
            .parse::<u64>()
            .ok()
            .filter(|v| ok && *v <= MAX_SAFE_INTEGER);
        match value {
            Some(v) => {
                self.pos += digits;
                Ok(v)
            }
            None => Err(self.err()),
        }
    }

    /// A hash: a string of canonical base64 of 32 bytes (no escapes can
    /// occur in base64).
    fn hash(&mut self) -> Result<Hash, EntryError> {
        let at = self.pos;
        let rest = self.rest();
        if rest.len() < 46 || rest[0] != b'"' || rest[45] != b'"' {
            return Err(self.err());
        }
        let h = Hash::from_base64(&self.s[at + 1..at + 45])
            .map_err(|_| EntryError::NotCanonical { offset: at })?;
        self.pos += 46;
        Ok(h)
    }

    /// A string as RFC 8785 §3.2.2.2 writes it: `"` and `\` escaped as
    /// `\"` and `\\`; U+0008, U+0009, U+000A, U+000C, U+000D as `\b`, `\t`,
    /// `\n`, `\f`, `\r`; other controls below U+0020 as `\u00xx` with
    /// lowercase hex; every other character as itself.
    fn string(&mut self) -> Result<Cow<'a, str>, EntryError> {
        if self.rest().first() != Some(&b'"') {
            return Err(self.err());
        }
        self.pos += 1;
        let start = self.pos;
        // Fast path: no escapes before the closing quote.
        let plain = self
            .rest()
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20);
        match plain {
            Some(n) if self.rest()[n] == b'"' => {
                self.pos += n + 1;
                return Ok(Cow::Borrowed(&self.s[start..start + n]));
            }
            Some(_) => {}
            None => return Err(self.err()),
        }
        let mut out = String::new();
        loop {
            let rest = self.rest();
            let n = rest
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .ok_or_else(|| self.err())?;
            out.push_str(&self.s[self.pos..self.pos + n]);
            self.pos += n;
            match rest[n] {
                b'"' => {
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
                b'\\' => {
                    let esc = self.rest().get(1).copied().ok_or_else(|| self.err())?;
                    let ch = match esc {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'b' => '\u{8}',
                        b't' => '\t',
                        b'n' => '\n',
                        b'f' => '\u{c}',
                        b'r' => '\r',
                        b'u' => {
                            let hex = self.rest().get(2..6).ok_or_else(|| self.err())?;
                            let lower_hex =
                                |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
                            if !hex.starts_with(b"00") || !hex.iter().all(lower_hex) {
                                return Err(self.err());
                            }
                            let v = u8::from_str_radix(&self.s[self.pos + 4..self.pos + 6], 16)
                                .map_err(|_| self.err())?;
                            // Only controls without a short escape take \u.
                            if v >= 0x20 || matches!(v, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                                return Err(self.err());
                            }
                            self.pos += 4;
                            char::from(v)
                        }
                        _ => return Err(self.err()),
                    };
                    self.pos += 2;
                    out.push(ch);
                }
                // A raw control character must have been escaped.
                _ => return Err(self.err()),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::entry::genesis_prev;

    fn sample() -> Envelope {
        Envelope {
            v: 1,
            origin: "evident.local/acme/audit".into(),
            index: 42,
            ts: "2026-11-22T18:03:07.123456Z".into(),
            prev: genesis_prev("x"),
            kind: "access.granted".into(),
            parent: Some(41),
            source: Some(Source {
                id: "app\n\"1\"\u{1f}é".into(),
                seq: 9,
            }),
            body: genesis_prev("y"),
        }
    }

    #[test]
    fn reads_what_jcs_writes() {
        let e = sample();
        let bytes = e.to_bytes();
        let v = EnvelopeView::parse(&bytes).unwrap();
        assert_eq!(v.to_envelope(), e);
        let mut plain = sample();
        plain.parent = None;
        plain.source = None;
        let bytes = plain.to_bytes();
        assert_eq!(EnvelopeView::parse(&bytes).unwrap().to_envelope(), plain);
    }

    #[test]
    fn refuses_other_spellings() {
        let good = String::from_utf8(sample().to_bytes()).unwrap();
        let variants = [
            good.replace("\"index\":42", "\"index\":042"),
            good.replace("\"index\":42", "\"index\":42.0"),
            good.replace("\"index\":42", "\"index\": 42"),
            good.replace("\\n", "\\u000a"),
            good.replace("\\u001f", "\\u001F"),
            good.replace("é", "\\u00e9"),
            good.replace("\"v\":1}", "\"v\":2}"),
            good.replace("\"v\":1}", "\"v\":1} "),
            good.replace("{\"body\"", "{ \"body\""),
            good.replace("2026-11-22T18:03:07.123456Z", "2026-11-22T18:03:07Z"),
            good.replace("\"index\":42", "\"index\":9007199254740993"),
        ];
        for v in variants {
            assert_ne!(v, good);
            assert!(
                matches!(
                    EnvelopeView::parse(v.as_bytes()),
                    Err(EntryError::NotCanonical { .. })
                ),
                "accepted {v}"
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]

        /// Envelope bytes, from the direct writer and (for integers above
        /// 2^53) the general one, equal those of `serde_json_canonicalizer`,
        /// the independent RFC 8785 implementation.
        #[test]
        fn envelope_bytes_match_serde_json_canonicalizer(
            origin in crate::entry::testgen::string(),
            kind in crate::entry::testgen::string(),
            id in crate::entry::testgen::string(),
            ints in proptest::array::uniform3(proptest::prop_oneof![
                0u64..1000,
                0u64..=MAX_SAFE_INTEGER,
                proptest::prelude::any::<u64>(),
            ]),
            parent in proptest::prelude::any::<bool>(),
            source in proptest::prelude::any::<bool>(),
        ) {
            let e = Envelope {
                v: 1,
                origin,
                index: ints[0],
                ts: "2026-11-22T18:03:07.123456Z".into(),
                prev: genesis_prev("p"),
                kind,
                parent: parent.then_some(ints[1]),
                source: source.then(|| Source { id, seq: ints[2] }),
                body: genesis_prev("b"),
            };
            proptest::prop_assert_eq!(e.to_bytes(), serde_json_canonicalizer::to_vec(&e).unwrap());
        }
    }

    #[test]
    fn raw_control_character_is_refused() {
        let mut e = sample();
        e.kind = "a".into();
        let good = String::from_utf8(e.to_bytes()).unwrap();
        let bad = good.replace("\"kind\":\"a\"", "\"kind\":\"a\u{1}\"");
        assert!(EnvelopeView::parse(bad.as_bytes()).is_err());
    }
}
