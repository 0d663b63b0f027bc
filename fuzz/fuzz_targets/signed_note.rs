//! Signed notes: parsing never panics; a parsed note's text ends in a
//! newline and has at least one signature; with no trusted key, opening
//! never succeeds.
#![no_main]

use evident_core::note::{Verifiers, open_note, parse_note};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((text, sigs)) = parse_note(data) {
        assert!(text.ends_with('\n'));
        assert!(!sigs.is_empty());
    }
    // No trusted key: opening must fail, never panic or succeed.
    assert!(open_note(data, &Verifiers::default()).is_err());
});
