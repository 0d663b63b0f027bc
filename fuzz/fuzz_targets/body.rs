//! Stored bodies: parsing never panics, and what parses is canonical: it
//! re-encodes to exactly the input bytes (the one-pass reader and the
//! strict one must agree on that, whichever answers).
#![no_main]

use evident_core::entry::Body;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = Body::parse(data) {
        assert_eq!(body.to_bytes(), data);
    }
});
