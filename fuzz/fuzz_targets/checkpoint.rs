//! Checkpoint bodies: parse never panics; what parses formats back to the
//! same bytes (the format has exactly one spelling).
#![no_main]

use evident_core::checkpoint::Checkpoint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(cp) = Checkpoint::parse(text) {
            assert_eq!(cp.to_text(), text);
        }
    }
});
