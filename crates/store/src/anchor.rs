//! Anchors: where seals are published, outside the database, and the
//! checks of a log against them (see `evident_core::seal`).
//!
//! An anchor is named by a location: a directory (`/var/lib/evident-seals`
//! or `file:///var/lib/evident-seals`) or an S3-compatible bucket
//! (`s3://bucket/prefix`, see [`s3`]). Each log's seals are objects
//! `<anchor>/<origin>/seal-<seq, 12 digits>.json`, created once (never
//! overwritten: a second sealer racing for the same number fails with
//! `anchor.conflict`) and durable before the seal is reported. The anchor
//! should live where the database's host cannot rewrite it: another
//! machine's mount, a WORM volume, a bucket with object lock.
//!
//! Other object stores (`gs://`, `az://`) answer `anchor.unsupported`.
//! `memory:` is refused: a seal must outlive the process.

mod s3;

use std::path::{Path, PathBuf};

use evident_core::ErrorCode;
use evident_core::checkpoint::Checkpoint;
use evident_core::hash::Hash;
use evident_core::note::Verifiers;
use evident_core::seal::{AnchorViolation, Seal, check_chain, check_extends};
use serde::Serialize;

use crate::backend::Store;
use crate::error::StoreError;
use crate::model::LogInfo;
use crate::reader;

/// Why an anchor could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnchorError {
    /// The location is not one this version can use.
    #[error("anchor location {location:?}: {reason}")]
    BadLocation {
        /// As given.
        location: String,
        /// Why.
        reason: &'static str,
    },
    /// An object store this build does not include.
    #[error(
        "anchor location {0:?}: only s3:// object stores are built into this version; use s3://bucket/prefix or a directory"
    )]
    Unsupported(String),
    /// The object store could not be configured from the location and
    /// the AWS environment.
    #[error("anchor {location:?}: {source}")]
    ObjectStoreConfig {
        /// As given.
        location: String,
        /// Why.
        source: object_store::Error,
    },
    /// A request to the object store failed.
    #[error("anchor {object}: {source}")]
    ObjectStore {
        /// The object or prefix (`s3://bucket/key`).
        object: String,
        /// Why.
        source: object_store::Error,
    },
    /// The object store does not refuse a put over an existing object, so
    /// it cannot keep seals from being replaced.
    #[error(
        "anchor {location:?}: the object store does not support conditional puts (If-None-Match: *), so a seal there could be overwritten; use a store that does (AWS S3, MinIO, Cloudflare R2) or a directory"
    )]
    NoConditionalPut {
        /// As given.
        location: String,
    },
    /// Reading or writing the anchor failed.
    #[error("anchor {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another sealer published this seal number first.
    #[error("seal {seq} of {origin} was published meanwhile by another sealer")]
    Conflict {
        /// The log.
        origin: String,
        /// The seal number.
        seq: u64,
    },
    /// The log disagrees with its published seals; sealing it would
    /// extend the chain from a rolled-back or forked log.
    #[error("{origin} is inconsistent with its seals ({}): not sealed", violations.iter().map(|v| v.reason.code()).collect::<Vec<_>>().join(", "))]
    Inconsistent {
        /// The log.
        origin: String,
        /// What disagrees.
        violations: Vec<AnchorViolation>,
    },
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ErrorCode for AnchorError {
    fn code(&self) -> &'static str {
        match self {
            AnchorError::BadLocation { .. } => "anchor.bad_location",
            AnchorError::Unsupported(_) => "anchor.unsupported",
            AnchorError::ObjectStoreConfig { .. } => "anchor.bad_location",
            AnchorError::Io { .. } | AnchorError::ObjectStore { .. } => "anchor.io",
            AnchorError::NoConditionalPut { .. } => "anchor.no_conditional_put",
            AnchorError::Conflict { .. } => "anchor.conflict",
            AnchorError::Inconsistent { .. } => "anchor.inconsistent",
            AnchorError::Store(e) => e.code(),
        }
    }
}

/// An anchor: a directory or an object store, behind one API.
#[derive(Debug, Clone)]
pub struct Anchor {
    kind: Kind,
    location: String,
}

#[derive(Debug, Clone)]
enum Kind {
    Dir(PathBuf),
    S3(s3::S3Anchor),
}

impl Anchor {
    /// The anchor at `location` (see the module docs).
    pub fn open(location: &str) -> Result<Anchor, AnchorError> {
        let bad = |reason| AnchorError::BadLocation {
            location: location.to_owned(),
            reason,
        };
        let path = if let Some(p) = location.strip_prefix("file://") {
            if !p.starts_with('/') {
                return Err(bad("a file:// URL needs an absolute path (file:///dir)"));
            }
            PathBuf::from(p)
        } else if location.starts_with("s3://") {
            return Ok(Anchor {
                kind: Kind::S3(s3::S3Anchor::open(location, &[])?),
                location: location.to_owned(),
            });
        } else if ["gs://", "az://", "azure://", "abfs://", "abfss://"]
            .iter()
            .any(|s| location.starts_with(s))
        {
            return Err(AnchorError::Unsupported(location.to_owned()));
        } else if location.starts_with("memory:") {
            return Err(bad(
                "memory is not an anchor: a seal must outlive the process",
            ));
        } else if location.contains("://") {
            return Err(bad("unknown scheme; use a directory path or file:///dir"));
        } else if location.is_empty() {
            return Err(bad("empty"));
        } else {
            PathBuf::from(location)
        };
        Ok(Anchor {
            kind: Kind::Dir(path),
            location: location.to_owned(),
        })
    }

    /// The object-store anchor at `location` (`s3://bucket/prefix`) with
    /// explicit settings, named as the AWS environment variables are
    /// (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, …), which override the
    /// environment: for a program that holds its S3 credentials somewhere
    /// other than its environment, or several anchors with different ones.
    pub fn open_s3_with(location: &str, settings: &[(&str, &str)]) -> Result<Anchor, AnchorError> {
        Ok(Anchor {
            kind: Kind::S3(s3::S3Anchor::open(location, settings)?),
            location: location.to_owned(),
        })
    }

    /// The location as given.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Every seal record of the log `origin`, in seal-number order, as
    /// stored bytes.
    pub fn seals(&self, origin: &str) -> Result<Vec<Vec<u8>>, AnchorError> {
        match &self.kind {
            Kind::Dir(root) => dir_seals(&root.join(origin)),
            Kind::S3(s3) => s3.seals(origin),
        }
    }

    /// Publishes seal `seq` of `origin`; fails with
    /// [`AnchorError::Conflict`] if that number exists. Returns where the
    /// seal was written (a path or an `s3://` URL).
    pub fn publish(&self, origin: &str, seq: u64, bytes: &[u8]) -> Result<String, AnchorError> {
        match &self.kind {
            Kind::Dir(root) => {
                dir_publish(&root.join(origin), origin, seq, bytes).map(|p| p.display().to_string())
            }
            Kind::S3(s3) => s3.publish(origin, seq, bytes),
        }
    }
}

fn dir_seals(dir: &Path) -> Result<Vec<Vec<u8>>, AnchorError> {
    let io = |path: &Path, source| AnchorError::Io {
        path: path.to_owned(),
        source,
    };
    let listing = match std::fs::read_dir(dir) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir, e)),
    };
    let mut names = Vec::new();
    for item in listing {
        let item = item.map_err(|e| io(dir, e))?;
        let name = item.file_name().to_string_lossy().into_owned();
        if name.starts_with("seal-") && name.ends_with(".json") {
            names.push(name);
        }
    }
    names.sort();
    names
        .iter()
        .map(|n| {
            let p = dir.join(n);
            std::fs::read(&p).map_err(|e| io(&p, e))
        })
        .collect()
}

fn dir_publish(dir: &Path, origin: &str, seq: u64, bytes: &[u8]) -> Result<PathBuf, AnchorError> {
    use std::io::Write;
    let io = |path: &Path, source| AnchorError::Io {
        path: path.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let path = dir.join(format!("seal-{seq:012}.json"));
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(AnchorError::Conflict {
                origin: origin.to_owned(),
                seq,
            });
        }
        Err(e) => return Err(io(&path, e)),
    };
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| io(&path, e))?;
    // The new name is durable too.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(path)
}

/// A log checked against its seals: what `verify --anchors` reports.
#[derive(Debug, Clone, Serialize)]
pub struct AnchorReport {
    /// The anchor's location.
    pub location: String,
    /// Seal records found for the log.
    pub seals_checked: u64,
    /// The largest size a verified seal covers.
    pub last_sealed_size: Option<u64>,
    /// Every disagreement.
    pub violations: Vec<AnchorViolation>,
}

/// The log's latest stored checkpoint, parsed (its signature is the full
/// verification's concern); the empty tree when it has none.
fn current(store: &mut dyn Store, log: &LogInfo) -> Result<Checkpoint, StoreError> {
    match reader::latest(store, log) {
        Ok((_, cp)) => Ok(cp),
        Err(StoreError::NoSuchEntry { .. }) => Ok(Checkpoint {
            origin: log.origin.clone(),
            size: 0,
            root: evident_core::hash::sha256(b""),
            extensions: Vec::new(),
        }),
        Err(e) => Err(e),
    }
}

/// Checks `log` against every seal `anchor` holds for it: the seal chain,
/// each seal's signature (by `verifiers`), and that the stored log extends
/// each sealed checkpoint (same root at that size, a consistency proof
/// from stored tiles beyond it).
pub fn check_log(
    store: &mut dyn Store,
    log: &LogInfo,
    anchor: &Anchor,
    verifiers: &Verifiers,
) -> Result<AnchorReport, AnchorError> {
    let records = anchor.seals(&log.origin)?;
    let (good, mut violations) = check_chain(&log.origin, &records, verifiers);
    let now = current(store, log)?;
    for sealed in &good {
        let mut proof = |from: u64, to: u64| -> Result<Vec<Hash>, String> {
            reader::consistency(store, log, from, to).map_err(|e| e.to_string())
        };
        if let Some(v) = check_extends(sealed, &now, &mut proof) {
            violations.push(v);
        }
    }
    Ok(AnchorReport {
        location: anchor.location().to_owned(),
        seals_checked: records.len() as u64,
        last_sealed_size: good.iter().map(|s| s.checkpoint.size).max(),
        violations,
    })
}

/// A seal just published.
#[derive(Debug, Clone, Serialize)]
pub struct Sealed {
    /// `tenant/log`.
    pub log: String,
    /// The seal's number.
    pub seq: u64,
    /// The size it covers.
    pub size: u64,
    /// The root it covers (base64).
    pub root: String,
    /// Where it was written.
    pub object: String,
}

/// Seals `log`: checks it against its published seals first (refusing
/// with [`AnchorError::Inconsistent`] when it disagrees, so a rolled-back
/// log is never sealed over), then publishes its latest signed checkpoint
/// as the next seal. `None` for a log without a checkpoint yet.
pub fn seal_log(
    store: &mut dyn Store,
    log: &LogInfo,
    anchor: &Anchor,
    verifiers: &Verifiers,
    now: &str,
) -> Result<Option<Sealed>, AnchorError> {
    let report = check_log(store, log, anchor, verifiers)?;
    if !report.violations.is_empty() {
        return Err(AnchorError::Inconsistent {
            origin: log.origin.clone(),
            violations: report.violations,
        });
    }
    let (stored, cp) = match reader::latest(store, log) {
        Ok(x) => x,
        Err(StoreError::NoSuchEntry { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let records = anchor.seals(&log.origin)?;
    let prev = match records.last() {
        Some(bytes) => Some((
            Seal::parse(bytes)
                .map_err(|e| StoreError::Corrupt(format!("last seal of {}: {e}", log.origin)))?,
            bytes.as_slice(),
        )),
        None => None,
    };
    let seal = Seal::next(
        &log.origin,
        prev.as_ref().map(|(s, b)| (s, *b)),
        &stored.note,
        now,
    );
    let path = anchor.publish(&log.origin, seal.seq, &seal.to_bytes())?;
    Ok(Some(Sealed {
        log: log.path(),
        seq: seal.seq,
        size: cp.size,
        root: cp.root.to_base64(),
        object: path,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn locations() {
        assert!(Anchor::open("/tmp/seals").is_ok());
        assert!(Anchor::open("file:///tmp/seals").is_ok());
        let code = |l: &str| Anchor::open(l).unwrap_err().code();
        assert!(Anchor::open("s3://bucket/prefix").is_ok());
        assert_eq!(code("gs://bucket/prefix"), "anchor.unsupported");
        assert_eq!(code("s3://"), "anchor.bad_location");
        assert_eq!(code("memory:"), "anchor.bad_location");
        assert_eq!(code("file://relative"), "anchor.bad_location");
        assert_eq!(code("gopher://x"), "anchor.bad_location");
        assert_eq!(code(""), "anchor.bad_location");
    }

    #[test]
    fn publish_once_and_list_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let a = Anchor::open(tmp.path().to_str().unwrap()).unwrap();
        assert!(a.seals("x.example/t/l").unwrap().is_empty());
        for seq in [1u64, 0, 10] {
            a.publish("x.example/t/l", seq, format!("{seq}").as_bytes())
                .unwrap();
        }
        assert_eq!(
            a.seals("x.example/t/l").unwrap(),
            [b"0".to_vec(), b"1".to_vec(), b"10".to_vec()]
        );
        let e = a.publish("x.example/t/l", 1, b"again").unwrap_err();
        assert_eq!(e.code(), "anchor.conflict");
        assert_eq!(a.seals("x.example/t/l").unwrap()[1], b"1");
    }
}
