//! State and blob storage behind narrow traits.
//!
//! * [`StateStore`]: small keyed records (metadata), grouped in logical tables, with ordered
//!   prefix scans and atomic batches. Embedded backend: [`SqliteState`] (WAL, `synchronous=FULL`,
//!   so an acknowledged write survives `kill -9` and power loss); networked backend: [`PgState`]
//!   (PostgreSQL, shared by several nodes); test backend: [`MemoryState`].
//! * [`BlobStore`]: opaque byte objects (object bodies, artifacts). Embedded backend: [`FsBlobs`]
//!   (temp file + fsync + rename + fsync dir); networked backend: [`S3Blobs`] (any
//!   S3-compatible store, shared by several nodes); test backend: [`MemoryBlobs`].
//!
//! * Views ([`views`]): a node's in-memory copy of what it derives from records (a search
//!   index), kept current across nodes by a generation number.
//! * Leases ([`leases`]): durable work items with due times, claimed under expiring leases,
//!   completed atomically with their results: the timers and queues of every service.
//!
//! Keys are chosen by services and are never used as filesystem paths: [`FsBlobs`] stores a
//! blob under the SHA-256 of its key, fanned out into 256 directories.
//!
//! The traits are deliberately narrow so that networked backends (PostgreSQL state, an
//! S3-compatible blob store) stand behind them without touching services. Every state backend
//! runs one contract suite (`contract.rs`), every blob backend another (in `blobs.rs`).

mod blobs;
#[cfg(test)]
mod contract;
mod group;
#[cfg(test)]
mod lease_nodes;
pub mod leases;
pub mod metrics;
pub mod migrate;
pub mod paging;
mod pg;
mod s3blobs;
mod state;
pub mod vectors;
pub mod views;

pub use blobs::{BlobStore, BlobWriter, FsBlobs, MemoryBlobs};
pub use leases::{Claim, Counts, Saved, Worker, lease_ms_from_env, ms_from_secs_env, save_leased};
pub use pg::{PgState, redact as redact_url};
pub use s3blobs::{S3Blobs, S3Location};
pub use state::{MemoryState, SqliteState, StateStore, WriteOp, batch_async};
pub use vectors::{VectorEntry, VectorHit, VectorOp, VectorQuery, VectorStore};

use std::path::Path;
use std::sync::Arc;

/// Storage failure. Services map it to an AWS `InternalError`/`ServiceUnavailable`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("invalid byte range")]
    InvalidRange,
    /// A batch's [`WriteOp::Check`] did not hold.
    #[error("the record changed concurrently")]
    Conflict,
    /// The backend cannot be reached now (a networked database refused or lost the
    /// connection); the request may succeed later. Services answer `ServiceUnavailable`.
    #[error("state store unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Other(String),
}

/// The storage handles a service receives.
#[derive(Clone)]
pub struct Store {
    pub state: Arc<dyn StateStore>,
    pub blobs: Arc<dyn BlobStore>,
}

impl Store {
    /// Opens (creating if needed) durable storage under `data_dir`:
    /// `data_dir/state.sqlite3` and `data_dir/blobs/`. Cheap: no scans.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(data_dir, None, None)
    }

    /// Like [`Store::open`], with the state in the database at `state_url` when given
    /// (`postgres://user[:password]@host[:port]/db`, see [`PgState::open`]) instead of
    /// `data_dir/state.sqlite3`, and the blobs in the S3-compatible store at `blobs_url`
    /// (`s3://bucket/prefix?endpoint=...`, see [`S3Blobs::open`]) instead of `data_dir/blobs/`.
    pub fn open_with(
        data_dir: &Path,
        state_url: Option<&str>,
        blobs_url: Option<&str>,
    ) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir)?;
        let state: Arc<dyn StateStore> = match state_url {
            Some(url) => Arc::new(PgState::open(url)?),
            None => Arc::new(SqliteState::open(&data_dir.join("state.sqlite3"))?),
        };
        let blobs: Arc<dyn BlobStore> = match blobs_url {
            Some(url) => Arc::new(S3Blobs::open(url)?),
            None => Arc::new(FsBlobs::open(&data_dir.join("blobs"))?),
        };
        Ok(Store { state, blobs })
    }

    /// Purely in-memory storage (tests, `--ephemeral`).
    pub fn ephemeral() -> Store {
        Store {
            state: Arc::new(MemoryState::default()),
            blobs: Arc::new(MemoryBlobs::default()),
        }
    }
}

/// A store failure as the services answer it: 503 `ServiceUnavailableException` while the
/// backend cannot be reached (clients retry), else 500 `ServiceException`.
impl From<StoreError> for basalt_core::AwsError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(why) => {
                tracing::warn!("state store unavailable: {why}");
                basalt_core::AwsError::new(
                    503,
                    "ServiceUnavailableException",
                    "The service is unavailable. Try again later.",
                )
            }
            e => {
                basalt_core::AwsError::new(500, "ServiceException", format!("Internal error: {e}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_reopen_store() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            s.state.put("t", "k", b"v").unwrap();
            s.blobs.put("b", b"hello").unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.state.get("t", "k").unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(s.blobs.get("b").unwrap().as_deref(), Some(&b"hello"[..]));
    }

    #[test]
    fn open_with_a_state_url() {
        let dir = tempfile::tempdir().unwrap();
        let e = Store::open_with(dir.path(), Some("sqlite:///x"), None)
            .err()
            .unwrap();
        assert!(e.to_string().contains("unsupported state URL"), "{e}");
        let Some(admin) = pg::testing::admin_url() else {
            return;
        };
        let (_schema, url) = pg::testing::fresh_schema(&admin);
        {
            let s = Store::open_with(dir.path(), Some(&url), None).unwrap();
            s.state.put("t", "k", b"v").unwrap();
            s.blobs.put("b", b"hello").unwrap();
        }
        assert!(!dir.path().join("state.sqlite3").exists());
        let s = Store::open_with(dir.path(), Some(&url), None).unwrap();
        assert_eq!(s.state.get("t", "k").unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(s.blobs.get("b").unwrap().as_deref(), Some(&b"hello"[..]));
    }

    #[test]
    fn open_is_fast() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let t = std::time::Instant::now();
        drop(Store::open(dir.path()).unwrap());
        assert!(
            t.elapsed() < std::time::Duration::from_millis(200),
            "{:?}",
            t.elapsed()
        );
    }
}
