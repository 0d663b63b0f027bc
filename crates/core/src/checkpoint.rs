//! C2SP tlog-checkpoints.
//!
//! A checkpoint is the log's signed statement "the tree of this size has
//! this root". Everything an auditor proves (inclusion, consistency) is
//! anchored in one, so we parse it strictly: one spelling per value, so
//! that two parties can never read different tree heads from the same
//! signed bytes.
//!
//! Spec: <https://c2sp.org/tlog-checkpoint>. The note text is the origin,
//! the decimal tree size, the base64 root hash, then optional non-empty
//! extension lines, each ending in a newline; the signatures are those of a
//! C2SP signed note ([`crate::note`]).

use crate::code::ErrorCode;
use crate::hash::{Hash, HashError};
use crate::note::{Note, NoteError, NoteSigner, Verifiers, open_note, sign_note};

/// Why a checkpoint could not be built, parsed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The signed note around the checkpoint is invalid.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The text does not end in a newline.
    #[error("checkpoint text does not end in a newline")]
    MissingFinalNewline,
    /// Fewer than the three mandatory lines.
    #[error("checkpoint has {lines} lines, needs at least 3")]
    TooFewLines {
        /// Number of lines found.
        lines: usize,
    },
    /// An ASCII control character other than newline.
    #[error("checkpoint has control character 0x{byte:02x} at byte {offset}")]
    ControlChar {
        /// Byte offset.
        offset: usize,
        /// The control character.
        byte: u8,
    },
    /// The origin line is empty (or, when building, contains a newline).
    #[error("checkpoint origin {origin:?} is invalid")]
    BadOrigin {
        /// The rejected origin.
        origin: String,
    },
    /// The size line is not plain decimal without leading zeros, or does
    /// not fit in a u64.
    #[error("checkpoint size {line:?} is not a canonical decimal u64")]
    BadSize {
        /// The rejected size line.
        line: String,
    },
    /// The root line is not canonical base64 of 32 bytes.
    #[error("checkpoint root is invalid: {0}")]
    BadRoot(HashError),
    /// Extension line `index` (0-based) is empty or contains a newline.
    #[error("checkpoint extension line {index} is empty or has a newline")]
    BadExtension {
        /// 0-based index among the extension lines.
        index: usize,
    },
    /// The origin is not the one the caller expected.
    #[error("checkpoint origin {got:?} does not match expected {expected:?}")]
    OriginMismatch {
        /// The origin the caller asked for.
        expected: String,
        /// The origin in the checkpoint.
        got: String,
    },
}

impl ErrorCode for CheckpointError {
    fn code(&self) -> &'static str {
        match self {
            CheckpointError::Note(e) => e.code(),
            CheckpointError::MissingFinalNewline
            | CheckpointError::TooFewLines { .. }
            | CheckpointError::ControlChar { .. }
            | CheckpointError::BadExtension { .. } => "checkpoint.malformed",
            CheckpointError::BadOrigin { .. } => "checkpoint.bad_origin",
            CheckpointError::BadSize { .. } => "checkpoint.bad_size",
            CheckpointError::BadRoot(_) => "checkpoint.bad_root",
            CheckpointError::OriginMismatch { .. } => "checkpoint.origin_mismatch",
        }
    }
}

/// A log's tree head: origin, tree size, root hash and extension lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Log identity, e.g. `example.com/log42`.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// RFC 6962 root hash of the first `size` leaves.
    pub root: Hash,
    /// Opaque extension lines, without newlines (NOT RECOMMENDED by the
    /// spec, carried through unchanged).
    pub extensions: Vec<String>,
}

/// Parses the size line: ASCII decimal, no sign, no leading zeros unless
/// the tree is empty, and within u64.
/// <https://c2sp.org/tlog-checkpoint#note-text>
fn parse_size(line: &str) -> Result<u64, CheckpointError> {
    let bad = || CheckpointError::BadSize {
        line: line.to_owned(),
    };
    let canonical = !line.is_empty()
        && line.bytes().all(|b| b.is_ascii_digit())
        && (line == "0" || !line.starts_with('0'));
    if !canonical {
        return Err(bad());
    }
    line.parse::<u64>().map_err(|_| bad())
}

impl Checkpoint {
    /// The note text: `origin\nsize\nroot\n` then each extension line and a
    /// newline. <https://c2sp.org/tlog-checkpoint#note-text>
    pub fn to_text(&self) -> String {
        let mut out = format!("{}\n{}\n{}\n", self.origin, self.size, self.root);
        for ext in &self.extensions {
            out.push_str(ext);
            out.push('\n');
        }
        out
    }

    /// Parses checkpoint text strictly per
    /// <https://c2sp.org/tlog-checkpoint#note-text>: at least three lines,
    /// each ending in a newline; a non-empty origin; the size in plain
    /// decimal with no sign and no leading zeros (except `0`), fitting a
    /// u64; the root as canonical padded base64 of exactly 32 bytes; any
    /// further lines non-empty. Control characters other than newline are
    /// refused as they are in signed notes.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        if let Some((offset, &byte)) = text
            .as_bytes()
            .iter()
            .enumerate()
            .find(|&(_, &b)| b < 0x20 && b != b'\n')
        {
            return Err(CheckpointError::ControlChar { offset, byte });
        }
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::MissingFinalNewline)?;
        let lines: Vec<&str> = body.split('\n').collect();
        let [origin, size, root, extensions @ ..] = lines.as_slice() else {
            return Err(CheckpointError::TooFewLines { lines: lines.len() });
        };
        if origin.is_empty() {
            return Err(CheckpointError::BadOrigin {
                origin: String::new(),
            });
        }
        let size = parse_size(size)?;
        let root = Hash::from_base64(root).map_err(CheckpointError::BadRoot)?;
        if let Some(index) = extensions.iter().position(|e| e.is_empty()) {
            return Err(CheckpointError::BadExtension { index });
        }
        Ok(Checkpoint {
            origin: (*origin).to_owned(),
            size,
            root,
            extensions: extensions.iter().map(|&e| e.to_owned()).collect(),
        })
    }

    /// Checks that [`Checkpoint::to_text`] will parse back to `self`:
    /// a newline inside the origin or an extension would shift every line
    /// after it.
    fn check_representable(&self) -> Result<(), CheckpointError> {
        if self.origin.is_empty() || self.origin.contains('\n') {
            return Err(CheckpointError::BadOrigin {
                origin: self.origin.clone(),
            });
        }
        if let Some(index) = self
            .extensions
            .iter()
            .position(|e| e.is_empty() || e.contains('\n'))
        {
            return Err(CheckpointError::BadExtension { index });
        }
        Ok(())
    }
}

/// Signs a checkpoint as a C2SP signed note with every signer (several for
/// key rotation or co-signing). <https://c2sp.org/tlog-checkpoint#signatures>
pub fn sign_checkpoint(
    cp: &Checkpoint,
    signers: &[&NoteSigner],
) -> Result<String, CheckpointError> {
    cp.check_representable()?;
    Ok(sign_note(&cp.to_text(), signers)?)
}

/// Opens the signed note (see [`open_note`]), then parses its text as a
/// checkpoint; if `expected_origin` is given the origin must equal it, so a
/// checkpoint of another log signed by a shared key is not mistaken for
/// ours. <https://c2sp.org/tlog-checkpoint>
pub fn open_checkpoint(
    msg: &[u8],
    verifiers: &Verifiers,
    expected_origin: Option<&str>,
) -> Result<(Checkpoint, Note), CheckpointError> {
    let note = open_note(msg, verifiers)?;
    let cp = Checkpoint::parse(&note.text)?;
    if let Some(expected) = expected_origin
        && cp.origin != expected
    {
        return Err(CheckpointError::OriginMismatch {
            expected: expected.to_owned(),
            got: cp.origin,
        });
    }
    Ok((cp, note))
}
