//! Evident's storage.
//!
//! [`Store`] is the one storage trait; [`sqlite::SqliteStore`] is the
//! embedded default backend and [`postgres::PgStore`] the one for several
//! server nodes on one database. [`Sequencer`] turns parsed entries into
//! committed batches (one transaction and one signed checkpoint each), and
//! [`DataDir`] is the on-disk home of an embedded instance: its database
//! and signing key. [`conformance`] is the test suite every backend must
//! pass.
#![forbid(unsafe_code)]

pub mod anchor;
mod backend;
pub mod conformance;
pub mod datadir;
pub mod edge;
mod error;
pub mod migrate;
mod model;
pub mod postgres;
pub mod reader;
pub mod sequencer;
pub mod sqlite;

pub use backend::{AppendTxn, Store};
pub use datadir::{DataDir, Opened};
pub use error::{Result, StoreError};
pub use model::{
    ApiKeyRecord, CopiedRows, EntryRef, Existing, Head, KeyRecord, KeyRotation, LogId, LogInfo,
    MigrationStatus, NewApiKey, NewEntry, NewTile, Restore, StoredCheckpoint, StoredEntry,
    TenantInfo, TenantStatus, Transition, WritesPause, check_tenant_name,
};
pub use sequencer::{Appended, BatchOutcome, Sequencer};
