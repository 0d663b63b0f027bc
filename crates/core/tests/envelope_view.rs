//! The fast canonical-envelope reader must agree with the JCS crate: it
//! reads back every envelope `serde_json_canonicalizer` writes, and what it
//! accepts re-encodes to exactly the input bytes.
#![allow(clippy::unwrap_used)]

use evident_core::entry::{Envelope, EnvelopeView, Source, format_ts, genesis_prev};
use proptest::prelude::*;

fn envelope() -> impl Strategy<Value = Envelope> {
    (
        "\\PC{1,30}",
        0u64..(1 << 53),
        any::<i64>().prop_map(|t| t.rem_euclid(253_402_300_799_000_000)),
        "[ -~\\x00-\\x1f\u{7f}\u{2028}é😀]{1,20}",
        proptest::option::of(0u64..(1 << 53)),
        proptest::option::of(("[ -~\\x00-\\x1f\u{7f}\u{2028}é😀]{1,20}", 0u64..(1 << 53))),
        any::<[u8; 8]>(),
    )
        .prop_map(|(origin, index, ts, kind, parent, source, seed)| Envelope {
            v: 1,
            prev: genesis_prev(&format!("{seed:?}")),
            body: genesis_prev(&origin),
            origin,
            index,
            ts: format_ts(ts),
            kind,
            parent,
            source: source.map(|(id, seq)| Source { id, seq }),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn reads_every_canonical_envelope(e in envelope()) {
        let bytes = e.to_bytes();
        let v = EnvelopeView::parse(&bytes).unwrap();
        prop_assert_eq!(v.to_envelope(), e);
    }

    #[test]
    fn accepts_only_canonical_bytes(e in envelope(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = e.to_bytes();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        if let Ok(v) = EnvelopeView::parse(&bytes) {
            prop_assert_eq!(v.to_envelope().to_bytes(), bytes);
        }
    }

    #[test]
    fn accepts_only_canonical_bytes_after_insertion(e in envelope(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = e.to_bytes();
        let i = at.index(bytes.len());
        bytes.insert(i, byte);
        if let Ok(v) = EnvelopeView::parse(&bytes) {
            prop_assert_eq!(v.to_envelope().to_bytes(), bytes);
        }
    }

    #[test]
    fn direct_writer_matches_the_jcs_crate(e in envelope(), big in proptest::option::of((1u64 << 53)..u64::MAX)) {
        let mut e = e;
        prop_assert_eq!(e.to_bytes(), e.to_bytes_general());
        if let Some(big) = big {
            // Out of the safe range the writer defers to the crate.
            e.index = big;
            prop_assert_eq!(e.to_bytes(), e.to_bytes_general());
        }
    }

    #[test]
    fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = EnvelopeView::parse(&bytes);
    }
}
