//! API-key lookups kept between requests, for as long as nothing about
//! tenants or keys has changed.
//!
//! Looking the key up in SQLite on every request cost about a fifth of the
//! HTTP worker's CPU under single-entry load: the writer's commits make
//! each read transaction start from an empty page cache (see
//! `evident_store::sqlite::auth_stamp`). A kept lookup is used only while
//! the database's auth stamp still reads as it did *before* that lookup,
//! so a revocation or suspension committed by anyone who goes through the
//! store — this server, the CLI, another server on the same data
//! directory — applies to the next request, as before.
//!
//! Two cases the stamp cannot see are bounded by [`MAX_AGE`]: a process
//! that died between committing a change and writing the stamp, and rows
//! edited by hand. Only keys that were found are kept (an unknown key id
//! is looked up every time, so a key issued a moment ago works at once),
//! and at most [`MAX_KEYS`] of them. On PostgreSQL there is no stamp and
//! nothing is kept: each node looks the key up on every request.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use evident_store::sqlite::auth_stamp::{AuthStamp, STAMP_LEN};
use evident_store::{ApiKeyRecord, TenantStatus};

/// How long a lookup is kept even when the stamp has not changed.
pub const MAX_AGE: Duration = Duration::from_secs(1);

/// At most this many keys are kept; past it the oldest half is dropped.
pub const MAX_KEYS: usize = 4096;

/// What a lookup found: the key and its tenant's status.
pub type Found = (ApiKeyRecord, TenantStatus);

/// A stamp as read before a lookup, to keep that lookup under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp([u8; STAMP_LEN]);

#[derive(Debug)]
struct Kept {
    stamp: Stamp,
    at: Instant,
    found: Found,
}

/// The kept lookups (see the module documentation).
#[derive(Debug)]
pub struct KeyCache {
    stamp: Option<AuthStamp>,
    max_age: Duration,
    kept: Mutex<HashMap<String, Kept>>,
}

impl KeyCache {
    /// Keeps lookups while `stamp` is unchanged, each at most `max_age`.
    pub fn new(stamp: AuthStamp, max_age: Duration) -> Self {
        KeyCache {
            stamp: Some(stamp),
            max_age,
            kept: Mutex::new(HashMap::new()),
        }
    }

    /// The server's cache: kept under the stamp of the SQLite database at
    /// `db`; keeping nothing on PostgreSQL (`None`), or when the stamp
    /// file cannot be opened (logged).
    pub fn open(db: Option<&Path>) -> Self {
        let Some(db) = db else {
            return Self::disabled();
        };
        match AuthStamp::open(db) {
            Ok(stamp) => Self::new(stamp, MAX_AGE),
            Err(e) => {
                tracing::warn!(event = "auth_stamp_unavailable", error = %e);
                Self::disabled()
            }
        }
    }

    /// Keeps nothing: every request looks its key up.
    pub fn disabled() -> Self {
        KeyCache {
            stamp: None,
            max_age: Duration::ZERO,
            kept: Mutex::new(HashMap::new()),
        }
    }

    /// The stamp now, to be read before a lookup. `None` (no stamp, or it
    /// could not be read) means: look up, and keep nothing.
    pub fn stamp(&self) -> Option<Stamp> {
        self.stamp.as_ref()?.read().ok().map(Stamp)
    }

    /// The lookup of `id` kept under `now`, the stamp just read.
    pub fn get(&self, id: &str, now: Stamp) -> Option<Found> {
        let kept = self.kept.lock().ok()?;
        let k = kept.get(id)?;
        (k.stamp == now && k.at.elapsed() < self.max_age).then(|| k.found.clone())
    }

    /// Keeps `found`, the lookup of `id` made after reading `before`.
    pub fn put(&self, id: &str, before: Stamp, found: &Found) {
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        if kept.len() >= MAX_KEYS && !kept.contains_key(id) {
            let max_age = self.max_age;
            kept.retain(|_, k| k.at.elapsed() < max_age);
            if kept.len() >= MAX_KEYS {
                // All recent: drop the older half rather than refuse to keep.
                let mut ages: Vec<Instant> = kept.values().map(|k| k.at).collect();
                ages.sort_unstable();
                let cut = ages[ages.len() / 2];
                kept.retain(|_, k| k.at > cut);
            }
        }
        kept.insert(
            id.to_owned(),
            Kept {
                stamp: before,
                at: Instant::now(),
                found: found.clone(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use evident_store::sqlite::auth_stamp::bump;

    fn found(id: &str) -> Found {
        (
            ApiKeyRecord {
                id: id.to_owned(),
                tenant: "acme".to_owned(),
                scopes: vec!["append".to_owned()],
                key_hash: [7; 32],
                created_at: "2026-11-23T00:00:00.000000Z".to_owned(),
                revoked_at: None,
            },
            TenantStatus::Active,
        )
    }

    fn cache(max_age: Duration) -> (tempfile::TempDir, std::path::PathBuf, KeyCache) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("evident.db");
        let c = KeyCache::new(AuthStamp::open(&db).unwrap(), max_age);
        (dir, db, c)
    }

    #[test]
    fn a_lookup_is_kept_until_the_stamp_changes() {
        let (_dir, db, c) = cache(Duration::from_secs(3600));
        let before = c.stamp().unwrap();
        assert_eq!(c.get("k1", before), None, "nothing kept yet");
        c.put("k1", before, &found("k1"));
        assert_eq!(c.get("k1", c.stamp().unwrap()), Some(found("k1")));
        assert_eq!(c.get("k2", c.stamp().unwrap()), None, "only that key");
        bump(&db).unwrap();
        assert_eq!(c.get("k1", c.stamp().unwrap()), None, "a change was made");
    }

    #[test]
    fn a_change_during_the_lookup_is_not_missed() {
        // The lookup read the old rows; the change committed and stamped
        // before it was kept. It is kept under the stamp read before, so
        // the next request looks again.
        let (_dir, db, c) = cache(Duration::from_secs(3600));
        let before = c.stamp().unwrap();
        bump(&db).unwrap();
        c.put("k1", before, &found("k1"));
        assert_eq!(c.get("k1", c.stamp().unwrap()), None);
    }

    #[test]
    fn a_lookup_is_kept_no_longer_than_its_age_limit() {
        let (_dir, _db, c) = cache(Duration::from_millis(30));
        let s = c.stamp().unwrap();
        c.put("k1", s, &found("k1"));
        assert!(c.get("k1", s).is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.get("k1", s), None, "past its age, though unchanged");
    }

    #[test]
    fn without_a_stamp_nothing_is_kept() {
        let c = KeyCache::disabled();
        assert_eq!(c.stamp(), None);
    }

    #[test]
    fn the_number_kept_is_bounded() {
        let (_dir, _db, c) = cache(Duration::from_secs(3600));
        let s = c.stamp().unwrap();
        for i in 0..MAX_KEYS + 10 {
            c.put(&format!("k{i}"), s, &found("k"));
        }
        let kept = c.kept.lock().unwrap().len();
        assert!(kept <= MAX_KEYS, "{kept}");
        assert!(kept > MAX_KEYS / 4, "{kept}");
        let last = format!("k{}", MAX_KEYS + 9);
        assert!(c.get(&last, s).is_some(), "the newest is kept");
    }
}
