//! Stored envelopes: parsing never panics, and what parses is canonical:
//! it re-encodes to exactly the input bytes.
#![no_main]

use evident_core::entry::Envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = Envelope::parse(data) {
        assert_eq!(env.to_bytes(), data);
    }
});
