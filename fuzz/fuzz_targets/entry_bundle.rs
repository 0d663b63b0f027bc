//! Entry bundles: decoding never panics; what decodes re-encodes to the
//! same bytes.
#![no_main]

use evident_core::tile::{decode_bundle, encode_bundle};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u8, &[u8])| {
    let (w, data) = input;
    let width = u16::from(w) + 1;
    if let Ok(entries) = decode_bundle(data, width) {
        assert_eq!(entries.len(), usize::from(width));
        let again = encode_bundle(&entries).expect("decoded entries fit a bundle");
        assert_eq!(again, data);
    }
});
