//! Client entry input: parsing never panics; the one-pass reader answers
//! exactly as the reference path does, errors included; an accepted
//! draft's body bytes parse back to its body; and the draft seals into an
//! envelope that parses back to itself.
#![no_main]

use evident_core::entry::{
    Body, Envelope, Limits, genesis_prev, parse_entry, parse_entry_reference,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let parsed = parse_entry(data, &limits);
    assert_eq!(parsed, parse_entry_reference(data, &limits));
    if let Ok(draft) = parsed {
        assert_eq!(Body::parse(&draft.body_bytes).as_ref(), Ok(&draft.body));
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
