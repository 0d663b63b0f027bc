//! Tile paths: parse never panics; what parses formats back to itself.
#![no_main]

use evident_core::tile::TileId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(path) = std::str::from_utf8(data) {
        if let Ok(tile) = TileId::parse_path(path) {
            assert_eq!(tile.path(), path);
        }
    }
});
