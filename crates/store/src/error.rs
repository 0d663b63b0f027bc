//! The store's errors, each with a stable dotted code.

use std::path::PathBuf;

use evident_core::ErrorCode;
use evident_core::entry::EntryError;
use evident_core::merkle::MerkleError;
use evident_core::note::{KeyError, NoteError};

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The data directory has no database yet.
    #[error("no Evident data in {}: run `evident init` first (or point --data-dir / EVIDENT_DATA_DIR at an initialised directory)", dir.display())]
    NotInitialized {
        /// The data directory looked in.
        dir: PathBuf,
    },
    /// `init` on a directory that already holds a database or key.
    #[error("{} is already initialised; refusing to overwrite it", path.display())]
    AlreadyInitialized {
        /// The file that already exists.
        path: PathBuf,
    },
    /// The signing key file is missing.
    #[error("signing key file {} not found: run `evident init`, or set --key-file / EVIDENT_KEY_FILE", path.display())]
    KeyMissing {
        /// Where the key was looked for.
        path: PathBuf,
    },
    /// The signing key file exists but cannot be used.
    #[error("signing key file {}: {reason}", path.display())]
    KeyInvalid {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The signing key is not one this data directory knows.
    #[error("signing key {vkey} is not among this data directory's keys; wrong --key-file?")]
    KeyUnknown {
        /// The key file's verifier key.
        vkey: String,
    },
    /// The database schema is not the one this binary was built for.
    #[error("database schema is at migration {actual}, this binary expects {expected}{hint}")]
    MigrationHeadMismatch {
        /// The binary's migration head.
        expected: u32,
        /// The database's.
        actual: u32,
        /// What to do about it.
        hint: &'static str,
    },
    /// The database cannot be reached or written.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A database URL (`--database-url`, `EVIDENT_DATABASE_URL`) that
    /// cannot be parsed. The URL itself is not repeated: it may hold a
    /// password.
    #[error("bad database URL: {0}; expected postgres://USER@HOST:PORT/DATABASE")]
    BadDatabaseUrl(String),
    /// A database operation failed.
    #[error("database error: {0}")]
    Database(String),
    /// A write was refused by the append-only triggers.
    #[error("append-only violation: {0}")]
    AppendOnly(String),
    /// The named log does not exist.
    #[error("log {0} not found")]
    LogNotFound(String),
    /// `TENANT/LOG` was not given in that form.
    #[error("bad log name {name:?}: expected TENANT/LOG, e.g. acme/audit")]
    BadLogName {
        /// What was given.
        name: String,
    },
    /// An entry was rejected.
    #[error(transparent)]
    Entry(#[from] EntryError),
    /// The stored state of a log disagrees with its signed head, so
    /// appending to it would extend something unproven.
    #[error("log {origin} is inconsistent: {reason}; run `evident verify`")]
    Inconsistent {
        /// The log's origin.
        origin: String,
        /// What disagrees.
        reason: String,
    },
    /// Stored data could not be read back (e.g. a tile of the wrong size).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Signing a checkpoint failed.
    #[error("signing failed: {0}")]
    Signing(String),
    /// The entry asked for is not in the log.
    #[error("entry {index} is not in log {origin} (size {size})")]
    NoSuchEntry {
        /// The log's origin.
        origin: String,
        /// The index asked for.
        index: u64,
        /// The log's size.
        size: u64,
    },
    /// A tenant name breaks the naming rules (those of a log path's
    /// tenant part, `[a-z0-9][a-z0-9_-]{0,62}`).
    #[error("bad tenant name {name:?}: {reason}")]
    BadTenantName {
        /// The rejected name (cut to 64 bytes).
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A tenant name starting with `_`: those are kept for the system.
    #[error("tenant name {name:?} is reserved: names starting with '_' belong to the system")]
    TenantReserved {
        /// The rejected name (its first 64 characters).
        name: String,
    },
    /// A tenant status other than `active` or `suspended`.
    #[error("bad tenant status {status:?}: expected active or suspended")]
    BadTenantStatus {
        /// What was given (its first 64 characters).
        status: String,
    },
    /// `create_tenant` on a name that already exists.
    #[error("tenant {0} already exists")]
    TenantExists(String),
    /// The named tenant does not exist.
    #[error("tenant {0} not found")]
    TenantNotFound(String),
    /// An API key id that is already taken.
    #[error("API key {0} already exists")]
    ApiKeyExists(String),
    /// The API key id is unknown.
    #[error("API key {0} not found")]
    ApiKeyNotFound(String),
    /// A file or directory could not be read or written.
    /// The signing key is no longer the data directory's current key: it
    /// was rotated, and signing with it would make checkpoints no verifier
    /// accepts.
    #[error(
        "signing key {vkey} was retired by a key rotation; the current key is {current} (restart with the new key file)"
    )]
    KeyRetired {
        /// The retired key.
        vkey: String,
        /// The current key.
        current: String,
    },
    /// A key rotation raced with something that changed what it signed
    /// (an append, another rotation); nothing was changed.
    #[error("key rotation conflict: {0}; nothing was changed, try again")]
    RotationConflict(String),
    /// The entry cannot be redacted.
    #[error("cannot redact entry {index}: {reason}")]
    RedactRefused {
        /// The entry.
        index: u64,
        /// Why.
        reason: String,
    },
    /// A repair was refused: its source does not prove out, or the rows
    /// changed meanwhile; nothing was changed.
    #[error("repair refused: {0}; nothing was changed")]
    RepairRefused(String),
    /// An append's insert met a request id already stored in the log (a
    /// backend that lets its unique index find stored ids rather than
    /// looking them up first, see
    /// [`AppendTxn::refuses_stored_request_ids`](crate::AppendTxn::refuses_stored_request_ids));
    /// the batch was rolled back. The sequencer answers it by redoing the
    /// batch with the lookup, so it reaches no client.
    #[error("request id already stored: {0}; the batch was rolled back")]
    RequestIdTaken(String),
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl ErrorCode for StoreError {
    fn code(&self) -> &'static str {
        match self {
            StoreError::NotInitialized { .. } => "store.not_initialized",
            StoreError::AlreadyInitialized { .. } => "store.already_initialized",
            StoreError::KeyMissing { .. } => "key.missing",
            StoreError::KeyInvalid { .. } => "key.invalid",
            StoreError::KeyUnknown { .. } => "key.unknown",
            StoreError::MigrationHeadMismatch { .. } => "migration.head_mismatch",
            StoreError::Unavailable(_) => "db.unavailable",
            StoreError::BadDatabaseUrl(_) => "db.bad_url",
            StoreError::Database(_) => "db.error",
            StoreError::AppendOnly(_) => "db.append_only",
            StoreError::LogNotFound(_) => "log.not_found",
            StoreError::BadLogName { .. } => "log.bad_name",
            StoreError::Entry(e) => e.code(),
            StoreError::Inconsistent { .. } => "log.inconsistent",
            StoreError::Corrupt(_) => "store.corrupt",
            StoreError::Signing(_) => "key.signing_failed",
            StoreError::NoSuchEntry { .. } => "entry.not_found",
            StoreError::Io { .. } => "io.failed",
            StoreError::KeyRetired { .. } => "key.retired",
            StoreError::RotationConflict(_) => "key.rotation_conflict",
            StoreError::RedactRefused { .. } => "redact.refused",
            StoreError::RepairRefused(_) => "repair.refused",
            StoreError::RequestIdTaken(_) => "db.request_id_taken",
            StoreError::BadTenantName { .. } => "tenant.bad_name",
            StoreError::TenantReserved { .. } => "tenant.reserved",
            StoreError::BadTenantStatus { .. } => "tenant.bad_status",
            StoreError::TenantExists(_) => "tenant.exists",
            StoreError::TenantNotFound(_) => "tenant.not_found",
            StoreError::ApiKeyExists(_) => "api_key.exists",
            StoreError::ApiKeyNotFound(_) => "api_key.not_found",
        }
    }
}

impl From<MerkleError> for StoreError {
    fn from(e: MerkleError) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

impl From<NoteError> for StoreError {
    fn from(e: NoteError) -> Self {
        StoreError::Signing(e.to_string())
    }
}

impl From<KeyError> for StoreError {
    fn from(e: KeyError) -> Self {
        StoreError::Signing(e.to_string())
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Codes are a contract: these are the released spellings.
    #[test]
    fn tenant_and_api_key_codes_are_stable() {
        let name = || "acme".to_owned();
        for (e, code) in [
            (
                StoreError::BadTenantName {
                    name: name(),
                    reason: "empty",
                },
                "tenant.bad_name",
            ),
            (
                StoreError::TenantReserved { name: name() },
                "tenant.reserved",
            ),
            (
                StoreError::BadTenantStatus { status: name() },
                "tenant.bad_status",
            ),
            (StoreError::TenantExists(name()), "tenant.exists"),
            (StoreError::TenantNotFound(name()), "tenant.not_found"),
            (StoreError::ApiKeyExists(name()), "api_key.exists"),
            (StoreError::ApiKeyNotFound(name()), "api_key.not_found"),
        ] {
            assert_eq!(e.code(), code, "{e}");
        }
    }
}
