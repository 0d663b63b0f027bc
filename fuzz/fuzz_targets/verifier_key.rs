//! Verifier keys: parsing never panics; what parses formats back to itself.
#![no_main]

use evident_core::note::VerifierKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(k) = s.parse::<VerifierKey>() {
            assert_eq!(k.to_string(), s);
        }
    }
});
