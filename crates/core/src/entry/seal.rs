//! Sealing drafts at their positions, a batch at a time.
//!
//! A batch's entries share their origin and timestamp, so those are
//! checked once ([`Sealer::new`]), and each envelope is written straight
//! into the caller's buffer: under batched appends, sealing runs on the
//! writer's thread, where checking the origin again and building an
//! [`Envelope`](super::Envelope) of owned strings per entry (eight
//! allocations) cost about as much as the two SHA-256 computations it
//! surrounds. [`EntryDraft::seal`] is the same code for one entry.

use super::view::{Fields, write_fields};
use super::{
    EntryDraft, EntryError, MAX_ENVELOPE_BYTES, SALT_SIZE, bad_field, body_digest, check_origin,
    check_safe, check_source, parse_ts, validate_kind,
};
use crate::hash::{self, Hash};

/// Seals drafts for one log at one timestamp.
#[derive(Debug, Clone, Copy)]
pub struct Sealer<'a> {
    origin: &'a str,
    ts: &'a str,
}

/// What [`Sealer::seal_into`] made of a draft.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sealed {
    /// RFC 6962 leaf hash of the envelope bytes.
    pub leaf_hash: Hash,
    /// The envelope's `body` field: [`body_digest`] of salt and body.
    pub body_digest: Hash,
}

impl<'a> Sealer<'a> {
    /// Checks `origin` and `ts` as an envelope needs them:
    /// `entry.bad_name` or `entry.bad_timestamp` otherwise.
    pub fn new(origin: &'a str, ts: &'a str) -> Result<Self, EntryError> {
        check_origin(origin)?;
        parse_ts(ts)?;
        Ok(Sealer { origin, ts })
    }

    /// Appends the canonical envelope of `draft` at `index` after the leaf
    /// `prev` to `out`. On error `out` is left as it was. Errors are those
    /// of [`EntryDraft::seal`] past its origin and timestamp checks. The
    /// body's digest is the draft's own when it was salted with `salt`
    /// ([`EntryDraft::salt_with`]), and computed here otherwise.
    pub fn seal_into(
        &self,
        draft: &EntryDraft,
        index: u64,
        prev: &Hash,
        salt: &[u8; SALT_SIZE],
        out: &mut Vec<u8>,
    ) -> Result<Sealed, EntryError> {
        validate_kind(&draft.kind)?;
        check_safe("index", index)?;
        if let Some(p) = draft.parent {
            check_safe("parent", p)?;
            if p >= index {
                return Err(bad_field(
                    "parent",
                    format_args!("parent {p} is not before index {index}"),
                ));
            }
        }
        if let Some(s) = &draft.source {
            check_source(s)?;
        }
        let body = match &draft.salted {
            Some(s) if s.salt == *salt => {
                debug_assert_eq!(s.digest, body_digest(salt, &draft.body_bytes));
                s.digest
            }
            _ => body_digest(salt, &draft.body_bytes),
        };
        let start = out.len();
        // Every integer was checked against 2^53 above.
        write_fields(
            out,
            &Fields {
                body: &body,
                index,
                kind: &draft.kind,
                origin: self.origin,
                parent: draft.parent,
                prev,
                source: draft.source.as_ref(),
                ts: self.ts,
            },
        );
        let size = out.len() - start;
        if size > MAX_ENVELOPE_BYTES {
            out.truncate(start);
            return Err(EntryError::TooLarge {
                what: "envelope",
                size,
                limit: MAX_ENVELOPE_BYTES,
            });
        }
        Ok(Sealed {
            leaf_hash: hash::leaf_hash(&out[start..]),
            body_digest: body,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use crate::code::ErrorCode as _;
    use crate::entry::{Envelope, Limits, Source, parse_entry};

    const ORIGIN: &str = "evident.local/acme/audit";
    const TS: &str = "2026-11-23T10:00:00.123456Z";

    fn draft(line: &str) -> EntryDraft {
        parse_entry(line.as_bytes(), &Limits::default()).unwrap()
    }

    /// Back-to-back envelopes in one buffer are each the bytes of the
    /// envelope built field by field and written by the general RFC 8785
    /// writer, and their leaf hashes chain.
    #[test]
    fn batch_envelopes_equal_the_general_writers() {
        let drafts = [
            draft(r#"{"kind":"a.b","actor":"ann"}"#),
            draft(
                r#"{"kind":"x:y-z_1","parent":0,"source":{"id":"p\u00e9\n\"1","seq":7},"data":{"k":[1,2.5,"\u2028"]}}"#,
            ),
            draft(
                r#"{"kind":"k","parent":1,"request_id":"r-1","occurred_at":"2026-01-01T00:00:00Z"}"#,
            ),
        ];
        let sealer = Sealer::new(ORIGIN, TS).unwrap();
        let mut out = Vec::new();
        let mut ends = Vec::new();
        let mut prev = crate::entry::genesis_prev(ORIGIN);
        for (i, d) in drafts.iter().enumerate() {
            let salt = [i as u8; SALT_SIZE];
            let sealed = sealer
                .seal_into(d, i as u64, &prev, &salt, &mut out)
                .unwrap();
            let start = ends.last().copied().unwrap_or(0);
            ends.push(out.len());
            let env = Envelope {
                v: 1,
                origin: ORIGIN.to_owned(),
                index: i as u64,
                ts: TS.to_owned(),
                prev,
                kind: d.kind.clone(),
                parent: d.parent,
                source: d.source.clone(),
                body: body_digest(&salt, &d.body_bytes),
            };
            assert_eq!(&out[start..], env.to_bytes_general().as_slice());
            assert_eq!(sealed.body_digest, env.body);
            assert_eq!(sealed.leaf_hash, hash::leaf_hash(&env.to_bytes_general()));
            assert_eq!(
                d.seal(ORIGIN, i as u64, TS, prev, &salt).unwrap().envelope,
                env
            );
            prev = sealed.leaf_hash;
        }
        assert_eq!(ends.len(), 3);
    }

    /// A draft salted ahead seals to the same bytes as one salted here;
    /// given another salt, the sealer digests the body with that one.
    #[test]
    fn a_draft_salted_ahead_seals_the_same() {
        let sealer = Sealer::new(ORIGIN, TS).unwrap();
        let plain = draft(r#"{"kind":"a.b","actor":"ann","data":{"n":1}}"#);
        let mut salted = plain.clone();
        salted.salt_with([9; SALT_SIZE]);
        assert_eq!(
            salted.salted.map(|s| s.digest),
            Some(body_digest(&[9; SALT_SIZE], &plain.body_bytes))
        );
        let prev = Hash::default();
        for salt in [[9; SALT_SIZE], [4; SALT_SIZE]] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let one = sealer.seal_into(&plain, 5, &prev, &salt, &mut a).unwrap();
            let two = sealer.seal_into(&salted, 5, &prev, &salt, &mut b).unwrap();
            assert_eq!((a, one), (b, two));
            assert_eq!(two.body_digest, body_digest(&salt, &plain.body_bytes));
        }
    }

    /// A refused draft leaves the buffer as it was, with the same error
    /// as sealing it alone.
    #[test]
    fn a_refused_draft_writes_nothing() {
        let sealer = Sealer::new(ORIGIN, TS).unwrap();
        let mut out = b"before".to_vec();
        let mut d = draft(r#"{"kind":"k","parent":3}"#);
        let err = sealer
            .seal_into(&d, 3, &Hash::default(), &[0; SALT_SIZE], &mut out)
            .unwrap_err();
        assert_eq!(err.code(), "entry.bad_field");
        assert_eq!(out, b"before");
        d.parent = None;
        d.source = Some(Source {
            id: "s".repeat(70_000),
            seq: 1,
        });
        let err = sealer
            .seal_into(&d, 3, &Hash::default(), &[0; SALT_SIZE], &mut out)
            .unwrap_err();
        assert_eq!(err.code(), "entry.too_large");
        assert_eq!(out, b"before");
        assert_eq!(
            d.seal(ORIGIN, 3, TS, Hash::default(), &[0; SALT_SIZE])
                .unwrap_err()
                .code(),
            "entry.too_large"
        );
    }

    #[test]
    fn origin_and_timestamp_are_checked_once_up_front() {
        assert_eq!(
            Sealer::new("no-slashes", TS).unwrap_err().code(),
            "entry.bad_name"
        );
        assert_eq!(
            Sealer::new(ORIGIN, "2026-11-23").unwrap_err().code(),
            "entry.bad_timestamp"
        );
    }
}
