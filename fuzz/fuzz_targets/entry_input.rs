//! Client entry input: parsing never panics, and an accepted draft seals
//! into an envelope that parses back to itself.
#![no_main]

use evident_core::entry::{Envelope, Limits, genesis_prev, parse_entry};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(draft) = parse_entry(data, &Limits::default()) {
        let origin = "evident.local/fuzz/log";
        if let Ok(sealed) = draft.seal(
            origin,
            7,
            "2026-11-22T18:03:07.123456Z",
            genesis_prev(origin),
            &[9u8; 16],
        ) {
            let back = Envelope::parse(&sealed.envelope_bytes).expect("sealed envelopes parse");
            assert_eq!(back, sealed.envelope);
        }
    }
});
