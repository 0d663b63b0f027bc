//! The data directory: where an embedded Evident keeps its database and,
//! by default, its signing key.
//!
//! ```text
//! evident-data/
//!   evident.db          SQLite database (WAL: also evident.db-wal, -shm)
//!   signing-key.pem     Ed25519 private key, PKCS#8 PEM, mode 0600
//! ```
//!
//! The private key never enters the database: a copy of the database (a
//! backup, a stolen disk image) cannot sign checkpoints. Only its public
//! verifier key is stored, in the append-only `keys` table, so every
//! checkpoint can be checked against the keys the log has used.
//!
//! With a PostgreSQL database URL the database is there instead of
//! `evident.db`, and the directory keeps only the signing key (and the
//! server's admin credential). Several server nodes share one database
//! by each naming it and a copy of the same key file.
//!
//! # Key rotation
//!
//! [`DataDir::rotate`] makes a new key and, in one database transaction,
//! re-signs every log's latest checkpoint with the old and the new key (the
//! transition checkpoints that link trust from one to the other), adds the
//! new key and records the old one's retirement with the range of
//! checkpoints it signed. The new key is written to `<key file>.next`
//! (mode 0600) before that transaction and renamed over the key file after
//! it, so the retired private key is destroyed as soon as its one remaining
//! use, co-signing the transitions, is done: a retired key that still
//! exists is one that can be stolen. Should the process stop between the
//! commit and the rename, the next [`DataDir::signer`] finishes the rename.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};
use evident_core::checkpoint::{open_checkpoint, sign_checkpoint};
use evident_core::entry::{format_ts, origin};
use evident_core::note::{NoteSigner, VerifierKey, Verifiers};

use crate::backend::Store;
use crate::error::{Result, StoreError};
use crate::model::{KeyRotation, LogInfo, Transition};
use crate::postgres::PgStore;
use crate::sequencer::system_clock;
use crate::sqlite::SqliteStore;

/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "evident-data";
/// The database file inside the data directory.
pub const DB_FILE: &str = "evident.db";
/// The default signing key file inside the data directory.
pub const KEY_FILE: &str = "signing-key.pem";
/// Instance name when none is given: the first part of every origin.
pub const DEFAULT_INSTANCE: &str = "evident.local";

/// A data directory and where its signing key lives.
#[derive(Debug, Clone)]
pub struct DataDir {
    dir: PathBuf,
    key_file: PathBuf,
    /// A PostgreSQL database instead of `dir/evident.db`.
    database_url: Option<String>,
}

/// What `init` created.
#[derive(Debug, Clone)]
pub struct Initialized {
    /// The instance name (origin prefix and key name).
    pub instance: String,
    /// The new key's verifier key.
    pub vkey: VerifierKey,
    /// Where the private key was written.
    pub key_file: PathBuf,
    /// Where the database was created (the data directory's file; for
    /// PostgreSQL, where it would have been).
    pub db_path: PathBuf,
}

/// An opened, initialised data directory.
pub struct Opened {
    /// The database.
    pub store: Box<dyn Store>,
    /// The instance name.
    pub instance: String,
}

impl DataDir {
    /// The data directory `dir`, with its key at `key_file` or, by
    /// default, `dir/signing-key.pem`.
    pub fn new(dir: impl Into<PathBuf>, key_file: Option<PathBuf>) -> Self {
        let dir = dir.into();
        let key_file = key_file.unwrap_or_else(|| dir.join(KEY_FILE));
        DataDir {
            dir,
            key_file,
            database_url: None,
        }
    }

    /// The same, with its database in PostgreSQL at `url` (when `Some`).
    #[must_use]
    pub fn with_database_url(mut self, url: Option<String>) -> Self {
        self.database_url = url.filter(|u| !u.is_empty());
        self
    }

    /// The PostgreSQL database URL, if the database is not the directory's
    /// SQLite file.
    pub fn database_url(&self) -> Option<&str> {
        self.database_url.as_deref()
    }

    /// Connects to the database without checking its migration head or
    /// initialisation: for `evident migrate`. A SQLite file must exist.
    pub fn connect(&self) -> Result<Box<dyn Store>> {
        if let Some(url) = &self.database_url {
            return Ok(Box::new(PgStore::connect(url)?));
        }
        let db_path = self.db_path();
        if !db_path.exists() {
            return Err(StoreError::NotInitialized {
                dir: self.dir.clone(),
            });
        }
        Ok(Box::new(SqliteStore::open(&db_path, false)?))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        self.dir.join(DB_FILE)
    }

    /// The signing key file.
    pub fn key_path(&self) -> &Path {
        &self.key_file
    }

    /// Whether `init` has run here (for SQLite: the database file
    /// exists; a PostgreSQL database is asked by [`DataDir::open`]).
    pub fn is_initialized(&self) -> bool {
        self.db_path().exists()
    }

    /// Creates the directory, a new signing key and the database. Refuses
    /// to touch a directory that already has either.
    ///
    /// With a PostgreSQL URL, the database is migrated and initialised
    /// instead, with the key file's key when that file exists already (a
    /// node joining with the shared key) or a new one.
    pub fn init(&self, instance: &str) -> Result<Initialized> {
        // Validates the instance name by the origin rules.
        origin(instance, "t", "l")?;
        if let Some(url) = &self.database_url {
            return self.init_postgres(url, instance);
        }
        let db_path = self.db_path();
        for existing in [&db_path, &self.key_file] {
            if existing.exists() {
                return Err(StoreError::AlreadyInitialized {
                    path: existing.clone(),
                });
            }
        }
        self.create_dirs()?;

        let key = new_signing_key()?;
        let signer = NoteSigner::new(instance, key.clone())?;
        write_key(&self.key_file, &key)?;

        let result = (|| {
            let mut store = SqliteStore::open(&db_path, true)?;
            store.migrate_up()?;
            store.initialize(
                instance,
                &signer.verifier_key().to_string(),
                &format_ts(system_clock()),
            )
        })();
        if let Err(e) = result {
            // Leave nothing half-made behind: a later `init` must succeed.
            let _ = fs::remove_file(&self.key_file);
            for suffix in ["", "-wal", "-shm"] {
                let _ = fs::remove_file(format!("{}{suffix}", db_path.display()));
            }
            return Err(e);
        }
        Ok(Initialized {
            instance: instance.to_owned(),
            vkey: signer.verifier_key(),
            key_file: self.key_file.clone(),
            db_path,
        })
    }

    /// Creates the data directory and the key file's directory (mode
    /// 0700), for a new key.
    fn create_dirs(&self) -> Result<()> {
        create_private_dir(&self.dir)?;
        if let Some(parent) = self.key_file.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dir(parent)?;
        }
        Ok(())
    }

    fn init_postgres(&self, url: &str, instance: &str) -> Result<Initialized> {
        let mut store = PgStore::connect(url)?;
        store.migrate_up()?;
        if store.instance()?.is_some() {
            return Err(StoreError::AlreadyInitialized {
                path: PathBuf::from("the PostgreSQL database"),
            });
        }
        let (key, wrote) = if self.key_file.exists() {
            (read_key(&self.key_file)?, false)
        } else {
            self.create_dirs()?;
            let key = new_signing_key()?;
            write_key(&self.key_file, &key)?;
            (key, true)
        };
        let signer = NoteSigner::new(instance, key)?;
        let done = store.initialize(
            instance,
            &signer.verifier_key().to_string(),
            &format_ts(system_clock()),
        );
        if let Err(e) = done {
            if wrote {
                let _ = fs::remove_file(&self.key_file);
            }
            return Err(e);
        }
        Ok(Initialized {
            instance: instance.to_owned(),
            vkey: signer.verifier_key(),
            key_file: self.key_file.clone(),
            db_path: self.db_path(),
        })
    }

    /// Opens the database, checking it is initialised and at this binary's
    /// migration head. Needs no key: reading and verifying never sign.
    pub fn open(&self) -> Result<Opened> {
        let mut store = self.connect()?;
        check_head(&mut *store)?;
        let instance = store
            .instance()?
            .ok_or_else(|| StoreError::NotInitialized {
                dir: self.dir.clone(),
            })?;
        Ok(Opened { store, instance })
    }

    /// Loads the signing key and checks that it is the database's current
    /// key ([`StoreError::KeyUnknown`] for a key the database never had,
    /// [`StoreError::KeyRetired`] for one a rotation retired).
    pub fn signer(&self, opened: &mut Opened) -> Result<NoteSigner> {
        let key = read_key(&self.key_file)?;
        let signer = NoteSigner::new(&opened.instance, key)?;
        let vkey = signer.verifier_key().to_string();
        let keys = opened.store.keys()?;
        if !keys.iter().any(|k| k.vkey == vkey) {
            return Err(StoreError::KeyUnknown { vkey });
        }
        let current = keys.last().map(|k| k.vkey.clone()).unwrap_or_default();
        if current == vkey {
            return Ok(signer);
        }
        // A rotation committed but stopped before its rename: finish it.
        let next = self.next_key_path();
        if let Ok(key) = read_key(&next) {
            let next_signer = NoteSigner::new(&opened.instance, key)?;
            if next_signer.verifier_key().to_string() == current {
                fs::rename(&next, &self.key_file).map_err(|source| StoreError::Io {
                    path: self.key_file.clone(),
                    source,
                })?;
                return Ok(next_signer);
            }
        }
        Err(StoreError::KeyRetired { vkey, current })
    }

    /// Where a rotation writes the new key before it commits.
    pub fn next_key_path(&self) -> PathBuf {
        let mut name = self.key_file.clone().into_os_string();
        name.push(".next");
        PathBuf::from(name)
    }

    /// Rotates the signing key (see the module docs): returns the retired
    /// and the new verifier key and the number of transition checkpoints.
    /// On any error before the commit nothing changes; the new key file is
    /// removed.
    pub fn rotate(&self, opened: &mut Opened) -> Result<Rotated> {
        let old = self.signer(opened)?;
        let next = self.next_key_path();
        // Left by a rotation that never committed (the current key is not
        // it, or `signer` would have finished the rename).
        if next.exists() {
            fs::remove_file(&next).map_err(|source| StoreError::Io {
                path: next.clone(),
                source,
            })?;
        }
        let key = new_signing_key()?;
        let new = NoteSigner::new(&opened.instance, key.clone())?;
        write_key(&next, &key)?;
        let committed = self.rotate_in_db(opened, &old, &new);
        let transitions = match committed {
            Ok(n) => n,
            Err(e) => {
                let _ = fs::remove_file(&next);
                return Err(e);
            }
        };
        fs::rename(&next, &self.key_file).map_err(|source| StoreError::Io {
            path: self.key_file.clone(),
            source,
        })?;
        Ok(Rotated {
            old: old.verifier_key(),
            new: new.verifier_key(),
            transitions,
            key_file: self.key_file.clone(),
        })
    }

    fn rotate_in_db(
        &self,
        opened: &mut Opened,
        old: &NoteSigner,
        new: &NoteSigner,
    ) -> Result<usize> {
        let own = Verifiers::new([old.verifier_key()]);
        let mut signed = Vec::new();
        for log in opened.store.logs()? {
            let Some(latest) = opened.store.latest_checkpoint(log.id)? else {
                continue;
            };
            // Re-sign only what this key really signed for this log.
            let (cp, _) = open_checkpoint(latest.note.as_bytes(), &own, Some(&log.origin))
                .map_err(|e| StoreError::Inconsistent {
                    origin: log.origin.clone(),
                    reason: format!(
                        "the latest checkpoint does not verify with the current key: {e}"
                    ),
                })?;
            let note = sign_checkpoint(&cp, &[old, new])
                .map_err(|e| StoreError::Signing(e.to_string()))?;
            signed.push((log.id, latest.seq, cp, note));
        }
        let transitions: Vec<Transition<'_>> = signed
            .iter()
            .map(|(log, seq, cp, note)| Transition {
                log: *log,
                after_seq: *seq,
                size: cp.size,
                root: &cp.root,
                note,
            })
            .collect();
        opened.store.rotate_key(&KeyRotation {
            old_vkey: &old.verifier_key().to_string(),
            new_vkey: &new.verifier_key().to_string(),
            transitions: &transitions,
            now: &format_ts(system_clock()),
        })?;
        Ok(transitions.len())
    }
}

/// What a key rotation did.
#[derive(Debug, Clone)]
pub struct Rotated {
    /// The retired key.
    pub old: VerifierKey,
    /// The new current key.
    pub new: VerifierKey,
    /// Logs that got a transition checkpoint.
    pub transitions: usize,
    /// Where the new private key is.
    pub key_file: PathBuf,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("backend", &self.store.backend())
            .field("instance", &self.instance)
            .finish()
    }
}

impl Opened {
    /// The verifier keys of every key this data directory has signed with.
    pub fn verifiers(&mut self) -> Result<Verifiers> {
        stored_verifiers(&mut *self.store)
    }

    /// The log named `tenant/log`, which must exist.
    pub fn log(&mut self, path: &str) -> Result<LogInfo> {
        let (tenant, name) = split_log_path(path)?;
        self.store
            .find_log(tenant, name)?
            .ok_or_else(|| StoreError::LogNotFound(path.to_owned()))
    }

    /// The log named `tenant/log`, if it exists.
    pub fn find_log(&mut self, path: &str) -> Result<Option<LogInfo>> {
        let (tenant, name) = split_log_path(path)?;
        self.store.find_log(tenant, name)
    }

    /// The log named `tenant/log`, created if it does not exist yet.
    pub fn log_or_create(&mut self, path: &str) -> Result<LogInfo> {
        let (tenant, name) = split_log_path(path)?;
        if let Some(log) = self.store.find_log(tenant, name)? {
            return Ok(log);
        }
        let origin = origin(&self.instance, tenant, name)?;
        self.store
            .create_log(tenant, name, &origin, &format_ts(system_clock()))
    }
}

/// Fails with [`StoreError::MigrationHeadMismatch`] (expected and actual
/// in its message) unless the database is at this binary's head.
pub fn check_head(store: &mut dyn Store) -> Result<()> {
    let status = store.migration_status()?;
    if status.current == status.expected {
        return Ok(());
    }
    Err(StoreError::MigrationHeadMismatch {
        expected: status.expected,
        actual: status.current,
        hint: if status.current < status.expected {
            "; run `evident migrate up` (or start the server with --migrate)"
        } else {
            "; the database was migrated by a newer Evident"
        },
    })
}

/// The verifier keys of every key in a store's key table: what a
/// verification trusts when the caller pins no keys of its own.
pub fn stored_verifiers(store: &mut dyn Store) -> Result<Verifiers> {
    let mut keys = Vec::new();
    for k in store.keys()? {
        keys.push(
            k.vkey
                .parse::<VerifierKey>()
                .map_err(|e| StoreError::Corrupt(format!("stored key {:?}: {e}", k.vkey)))?,
        );
    }
    Ok(Verifiers::new(keys))
}

/// Splits `tenant/log`, checking both names.
pub fn split_log_path(path: &str) -> Result<(&str, &str)> {
    let bad = || StoreError::BadLogName {
        name: path.to_owned(),
    };
    let (tenant, name) = path.split_once('/').ok_or_else(bad)?;
    origin(DEFAULT_INSTANCE, tenant, name)?;
    Ok((tenant, name))
}

/// A new Ed25519 signing key from the operating system's randomness.
fn new_signing_key() -> Result<SigningKey> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| StoreError::Signing(format!("no randomness for a key: {e}")))?;
    Ok(SigningKey::from_bytes(&seed))
}

fn create_private_dir(dir: &Path) -> Result<()> {
    let io = |source| StoreError::Io {
        path: dir.to_owned(),
        source,
    };
    if dir.exists() {
        return Ok(());
    }
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir).map_err(io)
}

/// Writes the key as PKCS#8 PEM, creating the file with mode 0600 so it is
/// never readable by others, not even for an instant.
fn write_key(path: &Path, key: &SigningKey) -> Result<()> {
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| StoreError::Signing(format!("cannot encode the key: {e}")))?;
    write_private_file(path, pem.as_bytes()).map_err(io)
}

/// Creates `path` (never overwriting) with mode 0600 from the first
/// instant, writes `bytes` and syncs: for secrets (signing keys, the
/// admin credential).
pub fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Reads a PKCS#8 PEM Ed25519 key.
pub fn read_key(path: &Path) -> Result<SigningKey> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StoreError::KeyMissing {
                path: path.to_owned(),
            });
        }
        Err(source) => {
            return Err(StoreError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    SigningKey::from_pkcs8_pem(&text).map_err(|e| StoreError::KeyInvalid {
        path: path.to_owned(),
        reason: format!("not an Ed25519 PKCS#8 PEM private key ({e})"),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn init_then_open() {
        let tmp = tempfile::tempdir().unwrap();
        let dd = DataDir::new(tmp.path().join("data"), None);
        assert!(matches!(dd.open(), Err(StoreError::NotInitialized { .. })));
        let init = dd.init("test.example").unwrap();
        assert_eq!(init.vkey.name(), "test.example");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dd.key_path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let pem = fs::read_to_string(dd.key_path()).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
        let mut opened = dd.open().unwrap();
        assert_eq!(opened.instance, "test.example");
        let signer = dd.signer(&mut opened).unwrap();
        assert_eq!(signer.verifier_key(), init.vkey);
        assert!(matches!(
            dd.init("test.example"),
            Err(StoreError::AlreadyInitialized { .. })
        ));
    }

    #[test]
    fn foreign_key_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let a = DataDir::new(tmp.path().join("a"), None);
        let b = DataDir::new(tmp.path().join("b"), None);
        a.init("a.example").unwrap();
        b.init("a.example").unwrap();
        let crossed = DataDir::new(tmp.path().join("a"), Some(b.key_path().to_owned()));
        let mut opened = crossed.open().unwrap();
        assert!(matches!(
            crossed.signer(&mut opened),
            Err(StoreError::KeyUnknown { .. })
        ));
    }

    #[test]
    fn bad_instance_and_log_names() {
        let tmp = tempfile::tempdir().unwrap();
        let dd = DataDir::new(tmp.path().join("data"), None);
        assert!(matches!(dd.init("Bad Name"), Err(StoreError::Entry(_))));
        assert!(!dd.dir().exists() || !dd.db_path().exists());
        assert!(matches!(
            split_log_path("nolog"),
            Err(StoreError::BadLogName { .. })
        ));
        assert!(matches!(split_log_path("a/B"), Err(StoreError::Entry(_))));
        assert_eq!(split_log_path("acme/audit").unwrap(), ("acme", "audit"));
    }
}
