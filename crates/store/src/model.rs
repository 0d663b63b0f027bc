//! What the store holds, as plain values shared by every backend.

use evident_core::Hash;
use evident_core::entry::EntryError;
use evident_core::tile::TileId;

use crate::error::StoreError;

/// A log's row id inside one database. Stable for the database's life;
/// never shown to clients (they name logs `tenant/log`).
pub type LogId = i64;

/// One log: a tenant's append-only sequence with its own tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogInfo {
    /// Row id.
    pub id: LogId,
    /// Tenant name.
    pub tenant: String,
    /// Log name inside the tenant.
    pub name: String,
    /// `<instance>/<tenant>/<log>`: the checkpoint origin.
    pub origin: String,
    /// When the log was created (the canonical timestamp spelling).
    pub created_at: String,
}

impl LogInfo {
    /// `tenant/log`, as operators type it.
    pub fn path(&self) -> String {
        format!("{}/{}", self.tenant, self.name)
    }
}

/// A public key the data directory has signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// Row id, in order of creation.
    pub id: i64,
    /// The C2SP verifier key, `<name>+<hex id>+<base64>`.
    pub vkey: String,
    /// When it was added.
    pub created_at: String,
    /// The first checkpoint (by global `seq`) it may sign: the first
    /// transition checkpoint of the rotation that made it current. `None`
    /// for a key not made by a rotation (the first key): from the start.
    pub first_seq: Option<i64>,
    /// The last checkpoint it may sign: the last transition checkpoint of
    /// the rotation that retired it. `None` while it is current.
    pub last_seq: Option<i64>,
    /// When a rotation retired it.
    pub retired_at: Option<String>,
}

/// A key rotation for [`crate::Store::rotate_key`]: the new key and, for
/// every log that has a checkpoint, a transition checkpoint that re-signs
/// that log's latest checkpoint (same size and root) with both keys.
#[derive(Debug, Clone, Copy)]
pub struct KeyRotation<'a> {
    /// The current key's verifier key, which the rotation retires.
    pub old_vkey: &'a str,
    /// The new key's verifier key.
    pub new_vkey: &'a str,
    /// One per log with a checkpoint.
    pub transitions: &'a [Transition<'a>],
    /// The rotation time.
    pub now: &'a str,
}

/// One log's transition checkpoint.
#[derive(Debug, Clone, Copy)]
pub struct Transition<'a> {
    /// The log.
    pub log: LogId,
    /// `seq` of the checkpoint it re-signs, which must still be the log's
    /// latest when the rotation commits.
    pub after_seq: i64,
    /// Tree size (that checkpoint's).
    pub size: u64,
    /// Root hash (that checkpoint's).
    pub root: &'a Hash,
    /// The note signed by the old and the new key.
    pub note: &'a str,
}

/// The stored bytes a repair puts back into one entry row.
#[derive(Debug, Clone, Copy)]
pub struct Restore<'a> {
    /// The entry's index.
    pub index: u64,
    /// The row as it is stored now (it must still be exactly this when the
    /// repair commits), moved to quarantine; `None` when the row is gone,
    /// and then it is inserted.
    pub current: Option<&'a StoredEntry>,
    /// The original envelope bytes.
    pub envelope: &'a [u8],
    /// Their leaf hash.
    pub leaf_hash: &'a Hash,
    /// The original salt, `None` for a redacted entry.
    pub salt: Option<&'a [u8]>,
    /// The original body, `None` for a redacted entry.
    pub body: Option<&'a [u8]>,
}

/// A stored signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// Row id, in order of storage.
    pub seq: i64,
    /// Tree size, as written by the sequencer (a cache: verification reads
    /// the signed note, never this column).
    pub size: u64,
    /// Root hash, as written by the sequencer (a cache, like `size`).
    pub root: Hash,
    /// The signed note, byte for byte as signed.
    pub note: String,
}

/// One stored entry, borrowed from the backend's row buffer while a scan
/// runs.
#[derive(Debug, Clone, Copy)]
pub struct EntryRef<'a> {
    /// The row's index column.
    pub index: u64,
    /// Envelope bytes (RFC 8785 JSON), as stored.
    pub envelope: &'a [u8],
    /// The stored leaf hash, if the column holds 32 bytes.
    pub leaf_hash: Option<Hash>,
    /// The body's salt, absent after a redaction (or a deletion).
    pub salt: Option<&'a [u8]>,
    /// Canonical body bytes, absent after a redaction (or a deletion).
    pub body: Option<&'a [u8]>,
}

/// Scanned rows copied out of the backend's row buffers into one buffer,
/// to use after the read that produced them ended or on another thread:
/// a verification hands them to its verifying thread, an export writes
/// them out once its short read is over. Cleared and refilled, the
/// buffers are reused.
#[derive(Debug, Default)]
pub struct CopiedRows {
    bytes: Vec<u8>,
    rows: Vec<CopiedRow>,
}

/// One row of [`CopiedRows`]: byte ranges into its buffer.
#[derive(Debug)]
struct CopiedRow {
    index: u64,
    leaf_hash: Option<Hash>,
    envelope: std::ops::Range<usize>,
    salt: Option<std::ops::Range<usize>>,
    body: Option<std::ops::Range<usize>>,
}

impl CopiedRows {
    fn put(&mut self, b: &[u8]) -> std::ops::Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(b);
        start..self.bytes.len()
    }

    /// Copies `e` in after the rows already held.
    pub fn push(&mut self, e: &EntryRef<'_>) {
        let row = CopiedRow {
            index: e.index,
            leaf_hash: e.leaf_hash,
            envelope: self.put(e.envelope),
            salt: e.salt.map(|b| self.put(b)),
            body: e.body.map(|b| self.put(b)),
        };
        self.rows.push(row);
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row is held.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Forgets the rows, keeping the buffers.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.rows.clear();
    }

    /// The rows, in the order pushed.
    pub fn iter(&self) -> impl Iterator<Item = EntryRef<'_>> {
        let at = |r: &std::ops::Range<usize>| &self.bytes[r.clone()];
        self.rows.iter().map(move |r| EntryRef {
            index: r.index,
            envelope: at(&r.envelope),
            leaf_hash: r.leaf_hash,
            salt: r.salt.as_ref().map(at),
            body: r.body.as_ref().map(at),
        })
    }
}

/// An owned copy of [`EntryRef`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// The row's index column.
    pub index: u64,
    /// Envelope bytes, as stored.
    pub envelope: Vec<u8>,
    /// The stored leaf hash, if the column holds 32 bytes.
    pub leaf_hash: Option<Hash>,
    /// The body's salt.
    pub salt: Option<Vec<u8>>,
    /// Canonical body bytes.
    pub body: Option<Vec<u8>>,
}

impl From<EntryRef<'_>> for StoredEntry {
    fn from(e: EntryRef<'_>) -> Self {
        StoredEntry {
            index: e.index,
            envelope: e.envelope.to_vec(),
            leaf_hash: e.leaf_hash,
            salt: e.salt.map(<[u8]>::to_vec),
            body: e.body.map(<[u8]>::to_vec),
        }
    }
}

/// A sealed entry ready to be written by [`crate::AppendTxn::insert_entries`].
#[derive(Debug, Clone, Copy)]
pub struct NewEntry<'a> {
    /// Position in the log.
    pub index: u64,
    /// Envelope bytes.
    pub envelope: &'a [u8],
    /// Leaf hash of the envelope.
    pub leaf_hash: &'a Hash,
    /// The body's random salt.
    pub salt: &'a [u8],
    /// Canonical body bytes.
    pub body: &'a [u8],
    /// The idempotency key, unique per log.
    pub request_id: Option<&'a str>,
}

/// A hash tile to write (or overwrite, when it grows).
#[derive(Debug, Clone, Copy)]
pub struct NewTile<'a> {
    /// Which tile, at its new width.
    pub id: TileId,
    /// `width × 32` bytes of hashes.
    pub data: &'a [u8],
}

/// A log's head as stored: its latest checkpoint and last entry. This is
/// what the sequencer continues from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Head {
    /// Size of the latest checkpoint (0 for a new log).
    pub size: u64,
    /// Its root hash.
    pub root: Option<Hash>,
    /// Leaf hash of entry `size - 1`, if it is stored.
    pub last_leaf: Option<Hash>,
    /// Envelope bytes of entry `size - 1`, for its timestamp.
    pub last_envelope: Option<Vec<u8>>,
    /// The latest checkpoint's signed note, which the sequencer opens with
    /// its own keys before trusting the `size` and `root` columns.
    pub note: Option<String>,
    /// Whether any entry row sits at or past `size`: rows no checkpoint
    /// covers, which a writer must not build on.
    pub rows_past_head: bool,
    /// The newest key of the key table (its verifier key), read inside the
    /// append's transaction: a sequencer holding another key must not sign,
    /// because a rotation retired it. `None` when the table is empty.
    pub current_key: Option<String>,
}

/// What an existing request id points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    /// The entry's index.
    pub index: u64,
    /// Its stored leaf hash.
    pub leaf_hash: Hash,
    /// Its envelope bytes (for `ts`).
    pub envelope: Vec<u8>,
}

/// Appends are paused: the containment switch of `evident writes pause`
/// and `POST /v1/admin/writes`. Kept in the database, not in a process,
/// so every server on the database and every CLI on the data directory
/// sees the same answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WritesPause {
    /// Who paused: an operator's name, an API key id.
    pub by: String,
    /// Why, for whoever finds writes refused.
    pub reason: String,
    /// When (the canonical timestamp spelling).
    pub since: String,
}

/// Where a database's schema stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// The highest migration applied (0 for an empty database).
    pub current: u32,
    /// The head this binary expects.
    pub expected: u32,
    /// Every applied migration: version, name and when.
    pub applied: Vec<(u32, String, String)>,
    /// Migrations this binary has that the database lacks.
    pub pending: Vec<(u32, String)>,
}

/// Whether a tenant's API keys are honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TenantStatus {
    /// Its keys work (within their scopes, until revoked).
    Active,
    /// Every one of its keys is refused; nothing is deleted, and resuming
    /// the tenant makes its unrevoked keys work again.
    Suspended,
}

impl TenantStatus {
    /// `active` or `suspended`, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
        }
    }
}

impl std::fmt::Display for TenantStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TenantStatus {
    type Err = StoreError;

    /// Exactly `active` or `suspended`; anything else is
    /// [`StoreError::BadTenantStatus`].
    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "active" => Ok(TenantStatus::Active),
            "suspended" => Ok(TenantStatus::Suspended),
            _ => Err(StoreError::BadTenantStatus {
                status: s.chars().take(64).collect(),
            }),
        }
    }
}

/// A tenant: the owner of logs and API keys, named as the tenant part of
/// its logs' paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantInfo {
    /// Name, `[a-z0-9][a-z0-9_-]{0,62}`.
    pub name: String,
    /// Whether its keys are honoured.
    pub status: TenantStatus,
    /// When it was created.
    pub created_at: String,
    /// When its status last changed (its creation, if never).
    pub updated_at: String,
}

/// A stored API key: everything but the token, of which only the SHA-256
/// is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// The public key id (the token's middle part), shown in lists.
    pub id: String,
    /// The tenant the key acts for.
    pub tenant: String,
    /// What the key may do, e.g. `["append", "read"]`.
    pub scopes: Vec<String>,
    /// SHA-256 of the whole token.
    pub key_hash: [u8; 32],
    /// When it was issued.
    pub created_at: String,
    /// When it was revoked; `None` while it is valid.
    pub revoked_at: Option<String>,
}

/// An API key to store with [`crate::Store::insert_api_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewApiKey<'a> {
    /// The public key id.
    pub id: &'a str,
    /// The tenant, which must exist.
    pub tenant: &'a str,
    /// What the key may do.
    pub scopes: &'a [String],
    /// SHA-256 of the whole token.
    pub key_hash: &'a [u8; 32],
    /// The issue time.
    pub now: &'a str,
}

/// Checks a tenant name: names starting with `_` are the system's
/// ([`StoreError::TenantReserved`]), and the only one the store accepts is
/// [`SYSTEM_TENANT`](evident_core::entry::SYSTEM_TENANT), which the server
/// creates for its event log and admin credential; any other must follow
/// the rule of a
/// log path's tenant part, `[a-z0-9][a-z0-9_-]{0,62}`
/// ([`StoreError::BadTenantName`]).
pub fn check_tenant_name(name: &str) -> Result<(), StoreError> {
    if name == evident_core::entry::SYSTEM_TENANT {
        return Ok(());
    }
    if name.starts_with('_') {
        return Err(StoreError::TenantReserved {
            name: name.chars().take(64).collect(),
        });
    }
    // The rule lives with the origin, whose tenant part this is; the
    // instance and log names here are fixed and valid.
    match evident_core::entry::origin(crate::datadir::DEFAULT_INSTANCE, name, "l") {
        Ok(_) => Ok(()),
        Err(EntryError::BadName { name, reason }) => {
            Err(StoreError::BadTenantName { name, reason })
        }
        Err(e) => Err(e.into()),
    }
}
