//! The export directory: which files it holds, where they go, and how it is
//! put in place in one step.
//!
//! ```text
//! DIR/
//!   checkpoint                   the latest signed checkpoint, byte for byte
//!   tile/<L>/<N>[.p/<W>]         every hash tile of the tree of that size
//!   tile/entries/<N>[.p/<W>]     entry bundles (envelope bytes)
//!   bodies.ndjson                bodies and salts, one line per entry, by index
//!   keys                         verifier keys, one per line, oldest first
//!   key-history.json             each key's checkpoint range, and the log's
//!                                transition checkpoints that link them
//! ```
//!
//! `key-history.json` is `{"checkpoint_seq": S, "keys": [{"vkey",
//! "first_seq", "last_seq", "created_at", "retired_at"}], "transitions":
//! [{"seq", "note"}]}`: S is the storage number of `checkpoint`, and each
//! transition is a checkpoint of this log that a rotation signed with both
//! the old and the new key. With it, `verify-export --vkey OLD` follows a
//! rotation to the new key, and a checkpoint signed only by a retired key
//! is refused. An export without it is checked as before: every trusted
//! key may sign its one checkpoint.
//!
//! The tile names are C2SP tlog-tiles' (<https://c2sp.org/tlog-tiles>), so
//! any tool written for that spec reads the directory as a static log.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use evident_core::tile::{TILE_HEIGHT, TILE_WIDTH, TileId, TileKind};

use crate::common::CmdError;

/// The signed checkpoint note.
pub(crate) const CHECKPOINT: &str = "checkpoint";
/// Bodies and salts, NDJSON in index order.
pub(crate) const BODIES: &str = "bodies.ndjson";
/// Verifier keys, one per line.
pub(crate) const KEYS: &str = "keys";
/// The key history and transition checkpoints (JSON).
pub(crate) const KEY_HISTORY: &str = "key-history.json";
/// The root of the tile tree.
pub(crate) const TILE_DIR: &str = "tile";

/// Number of hashes (or, for bundles, entries) at a tile's level in a tree
/// of `size` leaves.
pub(crate) fn items_at(kind: TileKind, size: u64) -> u64 {
    match kind {
        TileKind::Entries => size,
        TileKind::Hashes { level } => size
            .checked_shr(u32::from(level) * u32::from(TILE_HEIGHT))
            .unwrap_or(0),
    }
}

/// Whether `id` is one of the tiles (or bundles) of the tree of `size`, at
/// exactly the width that size gives it: full tiles below the last, and the
/// partial one only when its width is not zero.
/// <https://c2sp.org/tlog-tiles#partial-tiles>
pub(crate) fn is_tile_of(id: &TileId, size: u64) -> bool {
    let count = items_at(id.kind, size);
    let w = u64::from(TILE_WIDTH);
    let (full, rem) = (count / w, count % w);
    (id.index < full && id.is_full())
        || (id.index == full && rem != 0 && u64::from(id.width) == rem)
}

/// The partial tile a tree of `size` has at `id`'s level, if any: the one
/// a streaming rebuild of that many leaves ends with.
pub(crate) fn partial_at(kind: TileKind, size: u64) -> Option<TileId> {
    let count = items_at(kind, size);
    let w = u64::from(TILE_WIDTH);
    let width = u16::try_from(count % w).ok().filter(|w| *w > 0)?;
    Some(TileId {
        kind,
        index: count / w,
        width,
    })
}

/// Whether a streaming rebuild of the first `rebuilt` leaves produced
/// `id`: every full tile it completed, and its partial tiles.
pub(crate) fn rebuilt_by(id: &TileId, rebuilt: u64) -> bool {
    let count = items_at(id.kind, rebuilt);
    id.index < count / u64::from(TILE_WIDTH) || partial_at(id.kind, rebuilt) == Some(*id)
}

/// Reads a file of the export, `None` if it does not exist.
pub(crate) fn read_opt(dir: &Path, rel: &str) -> Result<Option<Vec<u8>>, CmdError> {
    match fs::read(dir.join(rel)) {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CmdError::new(
            "io.read_failed",
            format!("{}: {e}", dir.join(rel).display()),
        )),
    }
}

/// An export being written: a hidden sibling of the destination that is
/// renamed into place by [`Staging::commit`], and removed if the export
/// fails first, so no half-written export is ever left under the
/// destination's name.
#[derive(Debug)]
pub(crate) struct Staging {
    tmp: tempfile::TempDir,
    out: PathBuf,
    /// The last directory created, to skip re-creating it for every tile.
    made: Option<PathBuf>,
}

fn io_err(code: &str, path: &Path, e: &std::io::Error) -> CmdError {
    CmdError::new(code, format!("{}: {e}", path.display()))
}

impl Staging {
    /// Checks that `out` is absent or an empty directory and creates the
    /// staging directory beside it (creating `out`'s parents if needed).
    pub(crate) fn new(out: &Path) -> Result<Self, CmdError> {
        match fs::symlink_metadata(out) {
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("io.read_failed", out, &e)),
            Ok(m) if !m.is_dir() => {
                return Err(CmdError::new(
                    "export.out_not_empty",
                    format!("{} exists and is not a directory", out.display()),
                ));
            }
            Ok(_) => {
                let mut entries =
                    fs::read_dir(out).map_err(|e| io_err("io.read_failed", out, &e))?;
                if entries.next().is_some() {
                    return Err(CmdError::new(
                        "export.out_not_empty",
                        format!(
                            "{} is not empty; export writes a new directory and never mixes with old files",
                            out.display()
                        ),
                    ));
                }
            }
        }
        let name = out.file_name().ok_or_else(|| {
            CmdError::new(
                "export.bad_out",
                format!("--out {} does not name a directory", out.display()),
            )
        })?;
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).map_err(|e| io_err("io.write_failed", &parent, &e))?;
        let prefix = format!(".{}.partial-", name.to_string_lossy());
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix);
        // Bodies may hold personal data: the export is its owner's until
        // they choose to share it.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700));
        let tmp = builder
            .tempdir_in(&parent)
            .map_err(|e| io_err("io.write_failed", &parent, &e))?;
        Ok(Staging {
            tmp,
            out: out.to_owned(),
            made: None,
        })
    }

    /// Writes one file, `rel` being its path inside the export.
    pub(crate) fn write(&mut self, rel: &str, data: &[u8]) -> Result<(), CmdError> {
        let path = self.tmp.path().join(rel);
        if let Some(parent) = path.parent()
            && self.made.as_deref() != Some(parent)
        {
            fs::create_dir_all(parent).map_err(|e| io_err("io.write_failed", parent, &e))?;
            self.made = Some(parent.to_owned());
        }
        fs::write(&path, data).map_err(|e| io_err("io.write_failed", &path, &e))
    }

    /// Where a file of the export is being written.
    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// Moves the finished export to its destination. A destination that
    /// appeared meanwhile (and is not an empty directory) makes this fail,
    /// and the staging directory is removed.
    pub(crate) fn commit(self) -> Result<PathBuf, CmdError> {
        let tmp = self.tmp.keep();
        if let Err(e) = fs::rename(&tmp, &self.out) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(io_err("export.out_not_empty", &self.out, &e));
        }
        Ok(self.out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use evident_core::tile::{entry_bundles_for_size, hash_tiles_for_size};

    /// `is_tile_of` accepts exactly the tiles the core enumerates.
    #[test]
    fn expected_tiles_match_core() {
        for size in [0, 1, 255, 256, 257, 600, 65_536, 65_537, 70_000] {
            let all: Vec<TileId> = hash_tiles_for_size(size)
                .chain(entry_bundles_for_size(size))
                .collect();
            for id in &all {
                assert!(is_tile_of(id, size), "{} of {size}", id.path());
                assert!(rebuilt_by(id, size), "{} of {size}", id.path());
            }
            // Near misses: every other width at the same index, and the next
            // index.
            for id in &all {
                for width in [1, 2, 88, 255, 256] {
                    let other = TileId { width, ..*id };
                    assert_eq!(is_tile_of(&other, size), all.contains(&other));
                }
                let next = TileId {
                    index: id.index + 1,
                    ..*id
                };
                assert_eq!(is_tile_of(&next, size), all.contains(&next));
            }
        }
    }

    #[test]
    fn rebuilt_prefix() {
        // 600 leaves rebuilt: tile/0/000, 001 and 002.p/88, tile/1/000.p/2.
        assert!(rebuilt_by(&TileId::hashes(0, 1, 256), 600));
        assert!(rebuilt_by(&TileId::hashes(0, 2, 88), 600));
        assert!(!rebuilt_by(&TileId::hashes(0, 2, 256), 600));
        assert!(rebuilt_by(&TileId::hashes(1, 0, 2), 600));
        assert!(!rebuilt_by(&TileId::hashes(1, 0, 3), 600));
        assert!(!rebuilt_by(&TileId::hashes(2, 0, 1), 600));
    }
}
