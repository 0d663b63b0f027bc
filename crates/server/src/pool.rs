//! Read connections for request handlers.
//!
//! The `Store` trait is synchronous (SQLite and the `postgres` crate both
//! block), so every database call runs on tokio's blocking pool, on a
//! connection taken from here and put back afterwards. A semaphore bounds
//! how many run at once; a connection that failed with `db.unavailable` is
//! dropped rather than put back, so the next call opens a fresh one and the
//! server recovers by itself when the database comes back.

use std::sync::{Arc, Mutex};

use evident_store::{Store, StoreError};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Opens one more connection to the database.
pub type Opener = Arc<dyn Fn() -> Result<Box<dyn Store>, StoreError> + Send + Sync>;

/// A bounded set of store connections.
pub struct Pool {
    idle: Mutex<Vec<Box<dyn Store>>>,
    open: Opener,
    permits: Semaphore,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("available", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool of at most `size` connections opened by `open`.
    pub fn new(open: Opener, size: usize) -> Arc<Pool> {
        Arc::new(Pool {
            idle: Mutex::new(Vec::new()),
            open,
            permits: Semaphore::new(size.max(1)),
        })
    }

    /// Runs `f` on a connection, on the blocking pool.
    pub async fn with<T, F>(self: &Arc<Self>, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Store) -> Result<T, ApiError> + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ApiError::internal("the connection pool is closed"))?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || pool.run(f))
            .await
            .map_err(|e| ApiError::internal(format!("database task failed: {e}")))?
    }

    fn run<T>(&self, f: impl FnOnce(&mut dyn Store) -> Result<T, ApiError>) -> Result<T, ApiError> {
        let taken = self.idle.lock().ok().and_then(|mut v| v.pop());
        let mut conn = match taken {
            Some(c) => c,
            None => (self.open)()?,
        };
        let out = f(conn.as_mut());
        let broken = matches!(&out, Err(e) if e.code == "db.unavailable");
        if !broken && let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
        out
    }
}
