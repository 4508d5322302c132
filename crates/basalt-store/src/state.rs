//! Keyed state: [`StateStore`] with SQLite and in-memory backends.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::StoreError;
use crate::leases::{Claim, Counts, Item, new_token};

/// One write in an atomic [`StateStore::batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    Put {
        table: String,
        key: String,
        value: Vec<u8>,
    },
    Delete {
        table: String,
        key: String,
    },
    /// A precondition: the batch applies only if the record is exactly `expected` (`None`:
    /// absent) before the batch; otherwise it fails with [`StoreError::Conflict`] and writes
    /// nothing. Every check sees the state before any of the batch's writes.
    Check {
        table: String,
        key: String,
        expected: Option<Vec<u8>>,
    },
    /// Schedules work item `id` of `queue` for `due_ms` (see [`crate::leases`]), replacing an
    /// item of the same id and ending any lease on it.
    Enqueue {
        queue: String,
        id: String,
        payload: Vec<u8>,
        due_ms: i64,
    },
}

/// Small keyed records in logical tables, ordered by key bytes.
///
/// Every method is synchronous and short; a write that returned `Ok` is durable.
pub trait StateStore: Send + Sync + 'static {
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn put(&self, table: &str, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Returns whether the key existed.
    fn delete(&self, table: &str, key: &str) -> Result<bool, StoreError>;
    /// Keys with `prefix`, strictly after `start_after` if given, ascending byte order, at most
    /// `limit`.
    fn scan(
        &self,
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Keys `k` with `lo <= k < hi`, ascending (or descending when `reverse`), at most
    /// `limit`: the ranges of ordered key encodings (DynamoDB's sort keys), read from either
    /// end without touching what lies outside them.
    fn range(
        &self,
        table: &str,
        lo: &str,
        hi: &str,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// All-or-nothing.
    fn batch(&self, ops: &[WriteOp]) -> Result<(), StoreError>;

    /// The store's own vector collections, where its engine has a vector index
    /// ([`crate::vectors`]); `None` for the embedded stores.
    fn vectors(&self) -> Option<&dyn crate::VectorStore> {
        None
    }
    /// Whether a write waits on I/O (a disk's fsync, a database's round trip). Async callers
    /// move such writes to a blocking thread ([`batch_async`]); an in-memory write is done
    /// inline, where the hand-off and the wake-up of the request's worker would cost more.
    fn writes_block(&self) -> bool {
        true
    }
    /// Commits `ops` on the calling thread if that costs no waiting on other writers (nothing
    /// is being committed); `None` when the caller should use [`StateStore::batch`] on a
    /// blocking thread instead.
    fn try_batch_alone(&self, _ops: &[WriteOp]) -> Option<Result<(), StoreError>> {
        None
    }

    // Leases for background work (crate::leases has the contract).

    /// Schedules work item `id` of `queue`, due at `due_ms`; replaces an item of the same id
    /// and ends any lease on it.
    fn enqueue(
        &self,
        queue: &str,
        id: &str,
        payload: &[u8],
        due_ms: i64,
    ) -> Result<(), StoreError> {
        self.batch(&[WriteOp::Enqueue {
            queue: queue.to_owned(),
            id: id.to_owned(),
            payload: payload.to_vec(),
            due_ms,
        }])
    }
    /// Leases up to `max` items of `queue` that are due at `now_ms` and not leased (or whose
    /// lease has expired), earliest due first, for `lease_ms`.
    fn claim(
        &self,
        queue: &str,
        now_ms: i64,
        lease_ms: i64,
        max: usize,
    ) -> Result<Vec<Claim>, StoreError>;
    /// Extends a claim's lease to `now_ms + lease_ms` (returned); `Conflict` if the claim is
    /// no longer the item's current one.
    fn renew(&self, claim: &Claim, now_ms: i64, lease_ms: i64) -> Result<i64, StoreError>;
    /// Removes the item and applies `ops` in one transaction, if `claim` is still current and
    /// every check in `ops` holds; `Conflict` otherwise, and nothing changes.
    fn complete(&self, claim: &Claim, ops: &[WriteOp]) -> Result<(), StoreError>;
    /// Gives the item back, due again at `due_ms`; `Conflict` if the claim is not current.
    fn release(&self, claim: &Claim, due_ms: i64) -> Result<(), StoreError>;
    /// Items in `queue`, leased or not.
    fn pending(&self, queue: &str) -> Result<usize, StoreError>;
    /// Items in `queue` by how they stand at `now_ms`.
    fn counts(&self, queue: &str, now_ms: i64) -> Result<Counts, StoreError>;
    /// Removes every item of `queue`, leased or not; returns how many there were.
    fn purge(&self, queue: &str) -> Result<usize, StoreError>;

    /// The store's clock, in milliseconds since the epoch: the `now_ms` that workers of every
    /// node sharing this store should pass to `claim` and `renew`, so that lease expiry never
    /// depends on one node's clock being right. The database's clock for a networked store;
    /// this machine's for an embedded one.
    fn clock_ms(&self) -> Result<i64, StoreError> {
        Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64))
    }

    /// The store's clock for timestamps on records (creation and update times); this
    /// machine's when the store cannot be read, since a timestamp is no reason to fail.
    fn now_ms(&self) -> i64 {
        self.clock_ms().unwrap_or_else(|_| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64)
        })
    }
}

/// Keys read as bytes back to strings (every key was written as one).
pub(crate) fn utf8_keys(
    rows: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    rows.into_iter()
        .map(|(k, v)| {
            String::from_utf8(k)
                .map(|k| (k, v))
                .map_err(|_| StoreError::Other("non-UTF-8 key".into()))
        })
        .collect()
}

/// Smallest byte string greater than every string that starts with `prefix`
/// (`None` when there is none, e.g. empty prefix or all 0xFF).
pub(crate) fn prefix_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut v = prefix.to_vec();
    while let Some(last) = v.pop() {
        if last != 0xFF {
            v.push(last + 1);
            return Some(v);
        }
    }
    None
}

/// Inclusive lower bound for a scan: max(prefix, start_after + "\0").
pub(crate) fn scan_lower_bound(prefix: &str, start_after: Option<&str>) -> Vec<u8> {
    match start_after {
        Some(s) if s.as_bytes() >= prefix.as_bytes() => {
            let mut v = Vec::with_capacity(s.len() + 1);
            v.extend_from_slice(s.as_bytes());
            v.push(0);
            v
        }
        _ => prefix.as_bytes().to_vec(),
    }
}

// ---------------------------------------------------------------------------------------------
// SQLite

/// [`StateStore::batch`] from async code: inline when the store's writes do not block, on a
/// blocking thread otherwise.
pub async fn batch_async(state: &Arc<dyn StateStore>, ops: Vec<WriteOp>) -> Result<(), StoreError> {
    if !state.writes_block() {
        return state.batch(&ops);
    }
    // A lone writer commits on its own worker: the hand-off to a blocking thread and the
    // wake-up back cost a boto3 PutObject more CPU than its fsync. Only with a second worker
    // to serve the others meanwhile, and only when no group is being committed: batches that
    // come meanwhile queue behind it and commit on blocking threads. (The worker may still
    // wait for a lease operation's commit, which holds the writer connection briefly.)
    let spare_worker =
        tokio::runtime::Handle::try_current().is_ok_and(|h| h.metrics().num_workers() > 1);
    if spare_worker && let Some(r) = state.try_batch_alone(&ops) {
        return r;
    }
    let state = state.clone();
    tokio::task::spawn_blocking(move || state.batch(&ops))
        .await
        .map_err(|e| StoreError::Other(format!("write task failed: {e}")))?
}

/// SQLite backend: one `kv(tbl, key, value)` table with a `(tbl, key)` primary key (keys stored
/// as BLOBs, so ordering is plain byte order), WAL journal, `synchronous=FULL`.
///
/// One writer connection and a few reader connections (WAL readers do not block the writer).
pub struct SqliteState {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    /// Concurrent batches share a transaction and its fsync.
    group: crate::group::GroupCommit,
}

const READERS: usize = 3;

const SQL_GET: &str = "SELECT value FROM kv WHERE tbl = ?1 AND key = ?2";
const SQL_PUT: &str = "INSERT INTO kv (tbl, key, value) VALUES (?1, ?2, ?3) \
                       ON CONFLICT (tbl, key) DO UPDATE SET value = excluded.value";
const SQL_DEL: &str = "DELETE FROM kv WHERE tbl = ?1 AND key = ?2";
const SQL_SCAN_BOUNDED: &str = "SELECT key, value FROM kv WHERE tbl = ?1 AND key >= ?2 AND key < ?3 \
                                ORDER BY key LIMIT ?4";
const SQL_ENQUEUE: &str = "INSERT INTO work (queue, id, payload, due, token, expires, attempts) \
                           VALUES (?1, ?2, ?3, ?4, NULL, NULL, 0) ON CONFLICT (queue, id) DO UPDATE \
                           SET payload = excluded.payload, due = excluded.due, token = NULL, \
                           expires = NULL, attempts = 0";
const SQL_CLAIMABLE: &str = "SELECT id, payload, attempts FROM work WHERE queue = ?1 AND due <= ?2 \
                             AND (expires IS NULL OR expires <= ?2) ORDER BY due, id LIMIT ?3";
const SQL_LEASE: &str = "UPDATE work SET token = ?3, expires = ?4, attempts = attempts + 1 \
                         WHERE queue = ?1 AND id = ?2";
/// Total, leased and delayed items of a queue (`?2`: now); the rest are ready.
const SQL_COUNTS: &str = "SELECT COUNT(*), \
     COALESCE(SUM(CASE WHEN expires > ?2 THEN 1 ELSE 0 END), 0), \
     COALESCE(SUM(CASE WHEN (expires IS NULL OR expires <= ?2) AND due > ?2 THEN 1 ELSE 0 END), 0) \
     FROM work WHERE queue = ?1";
const SQL_SCAN_OPEN: &str =
    "SELECT key, value FROM kv WHERE tbl = ?1 AND key >= ?2 ORDER BY key LIMIT ?3";
const SQL_RANGE_DESC: &str = "SELECT key, value FROM kv WHERE tbl = ?1 AND key >= ?2 AND key < ?3 \
                              ORDER BY key DESC LIMIT ?4";

impl SqliteState {
    /// Opens or creates the database file. Cheap: a few pragmas, no scans.
    pub fn open(path: &Path) -> Result<SqliteState, StoreError> {
        let mut writer = Connection::open(path)?;
        writer.busy_timeout(std::time::Duration::from_secs(10))?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        writer.pragma_update(None, "synchronous", "FULL")?;
        migrate_schema(&mut writer)?;
        writer.set_prepared_statement_cache_capacity(32);
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let r = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )?;
            r.busy_timeout(std::time::Duration::from_secs(10))?;
            // No mmap: SQLite drops a reader's whole mapping (munmap, TLB shootdowns on every
            // core, page faults to map it again) at the first read after any commit, a cost
            // that grows with the database and exceeds the read(2)s it saves as soon as
            // writes mix with reads.
            r.set_prepared_statement_cache_capacity(32);
            readers.push(Mutex::new(r));
        }
        Ok(SqliteState {
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
            group: Default::default(),
        })
    }

    /// Runs `f` on a reader connection (the migration reads the tables directly).
    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_reader(f)
    }

    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // Prefer a free reader; otherwise wait on one chosen round-robin.
        for r in &self.readers {
            if let Some(c) = r.try_lock() {
                return f(&c);
            }
        }
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        let c = self.readers[i].lock();
        f(&c)
    }
}

/// The schema of version [`SCHEMA_VERSION`] (`PRAGMA user_version`).
///
/// Rowid tables with a unique index on the key, not `WITHOUT ROWID` ones: values are often
/// larger than a page's local payload (an S3 object of 1 KiB with its metadata, a function's
/// configuration), and SQLite compares an index b-tree key against a cell that overflows by
/// reading the whole cell, overflow pages included, from the file (one `pread` per overflow
/// page, past the page cache). In a `WITHOUT ROWID` table every step of every key search paid
/// that; here the key index holds only keys, and a value's overflow pages are read only when
/// the value is.
const SCHEMA: &str = "CREATE TABLE kv (tbl TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, \
                      PRIMARY KEY (tbl, key)); \
                      CREATE TABLE work (queue TEXT NOT NULL, id TEXT NOT NULL, \
                      payload BLOB NOT NULL, due INTEGER NOT NULL, token TEXT, expires INTEGER, \
                      attempts INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (queue, id)); \
                      CREATE INDEX work_due ON work (queue, due);";

const SCHEMA_VERSION: i64 = 1;

/// Creates the schema in a new database, or brings an older one to [`SCHEMA_VERSION`] in one
/// transaction (version 0: the same tables `WITHOUT ROWID`), so that a crash mid-way leaves the
/// old schema whole.
fn migrate_schema(c: &mut Connection) -> Result<(), StoreError> {
    let version = |c: &Connection| -> Result<i64, StoreError> {
        let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if v > SCHEMA_VERSION {
            return Err(StoreError::Other(format!(
                "the state database has schema version {v}, newer than this build's \
                 {SCHEMA_VERSION}: use a newer Basalt"
            )));
        }
        Ok(v)
    };
    if version(c)? == SCHEMA_VERSION {
        return Ok(());
    }
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Another process may have migrated it while this one waited for the lock.
    if version(&tx)? == SCHEMA_VERSION {
        return Ok(());
    }
    let exists = |name: &str| -> Result<bool, StoreError> {
        Ok(tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            [name],
            |r| r.get(0),
        )?)
    };
    // Version 0 may predate the work table.
    let (old_kv, old_work) = (exists("kv")?, exists("work")?);
    if old_kv {
        tx.execute_batch("ALTER TABLE kv RENAME TO kv_v0;")?;
    }
    if old_work {
        tx.execute_batch("ALTER TABLE work RENAME TO work_v0; DROP INDEX IF EXISTS work_due;")?;
    }
    tx.execute_batch(SCHEMA)?;
    if old_kv {
        tx.execute_batch(
            "INSERT INTO kv (tbl, key, value) SELECT tbl, key, value FROM kv_v0 ORDER BY tbl, key; \
             DROP TABLE kv_v0;",
        )?;
    }
    if old_work {
        tx.execute_batch(
            "INSERT INTO work (queue, id, payload, due, token, expires, attempts) \
             SELECT queue, id, payload, due, token, expires, attempts FROM work_v0 ORDER BY queue, id; \
             DROP TABLE work_v0;",
        )?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    if old_kv || old_work {
        // The copy went through the WAL: fold it into the database and empty the WAL.
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    }
    Ok(())
}

/// Commits a group of batches in one transaction (one fsync), each in a savepoint: a batch that
/// fails (a precondition) is rolled back alone and gets its error; the others commit.
fn commit_group(c: &mut Connection, group: &[&[WriteOp]]) -> Vec<Result<(), StoreError>> {
    if let [ops] = group {
        let r = (|| {
            // IMMEDIATE: the write lock is taken (waiting up to the busy timeout) before the
            // batch's reads, never by upgrading a read lock, which SQLite refuses at once
            // with "database is locked".
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            apply_ops(&tx, ops)?;
            tx.commit()?;
            Ok(())
        })();
        return vec![r];
    }
    let run = |c: &mut Connection| -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let mut tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut out = Vec::with_capacity(group.len());
        for ops in group {
            let sp = tx.savepoint()?;
            match apply_ops(&sp, ops) {
                Ok(()) => {
                    sp.commit()?;
                    out.push(Ok(()));
                }
                // Dropping the savepoint rolls it back.
                Err(e) => out.push(Err(e)),
            }
        }
        tx.commit()?;
        Ok(out)
    };
    run(c).unwrap_or_else(|e| {
        let msg = e.to_string();
        group
            .iter()
            .map(|_| Err(StoreError::Other(format!("group commit failed: {msg}"))))
            .collect()
    })
}

/// Applies a batch inside a transaction: checks first, so that they see the state before the
/// batch's writes (as `MemoryState` does).
fn apply_ops(c: &Connection, ops: &[WriteOp]) -> Result<(), StoreError> {
    let (checks, writes): (Vec<&WriteOp>, Vec<&WriteOp>) = ops
        .iter()
        .partition(|op| matches!(op, WriteOp::Check { .. }));
    for op in checks.into_iter().chain(writes) {
        apply_op(c, op)?;
    }
    Ok(())
}

fn apply_op(c: &Connection, op: &WriteOp) -> Result<(), StoreError> {
    match op {
        WriteOp::Put { table, key, value } => {
            c.prepare_cached(SQL_PUT)?
                .execute(params![table, key.as_bytes(), value])?;
        }
        WriteOp::Delete { table, key } => {
            c.prepare_cached(SQL_DEL)?
                .execute(params![table, key.as_bytes()])?;
        }
        WriteOp::Enqueue {
            queue,
            id,
            payload,
            due_ms,
        } => {
            c.prepare_cached(SQL_ENQUEUE)?
                .execute(params![queue, id, payload, due_ms])?;
        }
        WriteOp::Check {
            table,
            key,
            expected,
        } => {
            let current = c
                .prepare_cached(SQL_GET)?
                .query_row(params![table, key.as_bytes()], |r| r.get::<_, Vec<u8>>(0))
                .optional()?;
            if current != *expected {
                return Err(StoreError::Conflict);
            }
        }
    }
    Ok(())
}

impl StateStore for SqliteState {
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.with_reader(|c| {
            Ok(c.prepare_cached(SQL_GET)?
                .query_row(params![table, key.as_bytes()], |r| r.get::<_, Vec<u8>>(0))
                .optional()?)
        })
    }

    fn put(&self, table: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let c = self.writer.lock();
        c.prepare_cached(SQL_PUT)?
            .execute(params![table, key.as_bytes(), value])?;
        Ok(())
    }

    fn delete(&self, table: &str, key: &str) -> Result<bool, StoreError> {
        let c = self.writer.lock();
        let n = c
            .prepare_cached(SQL_DEL)?
            .execute(params![table, key.as_bytes()])?;
        Ok(n > 0)
    }

    fn scan(
        &self,
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let lower = scan_lower_bound(prefix, start_after);
        let upper = prefix_upper_bound(prefix.as_bytes());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_reader(|c| {
            let map = |r: &rusqlite::Row<'_>| -> rusqlite::Result<(Vec<u8>, Vec<u8>)> {
                Ok((r.get(0)?, r.get(1)?))
            };
            let rows: Vec<(Vec<u8>, Vec<u8>)> = match &upper {
                Some(u) => c
                    .prepare_cached(SQL_SCAN_BOUNDED)?
                    .query_map(params![table, lower, u, limit], map)?
                    .collect::<Result<_, _>>()?,
                None => c
                    .prepare_cached(SQL_SCAN_OPEN)?
                    .query_map(params![table, lower, limit], map)?
                    .collect::<Result<_, _>>()?,
            };
            rows.into_iter()
                .map(|(k, v)| {
                    String::from_utf8(k)
                        .map(|k| (k, v))
                        .map_err(|_| StoreError::Other("non-UTF-8 key".into()))
                })
                .collect()
        })
    }

    fn range(
        &self,
        table: &str,
        lo: &str,
        hi: &str,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        if limit == 0 || lo >= hi {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = if reverse {
            SQL_RANGE_DESC
        } else {
            SQL_SCAN_BOUNDED
        };
        self.with_reader(|c| {
            let rows: Vec<(Vec<u8>, Vec<u8>)> = c
                .prepare_cached(sql)?
                .query_map(params![table, lo.as_bytes(), hi.as_bytes(), limit], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<Result<_, _>>()?;
            utf8_keys(rows)
        })
    }

    fn batch(&self, ops: &[WriteOp]) -> Result<(), StoreError> {
        self.group
            .submit(ops, |group| commit_group(&mut self.writer.lock(), group))
    }

    fn try_batch_alone(&self, ops: &[WriteOp]) -> Option<Result<(), StoreError>> {
        self.group
            .try_lead(ops, |group| commit_group(&mut self.writer.lock(), group))
    }

    fn claim(
        &self,
        queue: &str,
        now_ms: i64,
        lease_ms: i64,
        max: usize,
    ) -> Result<Vec<Claim>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut c = self.writer.lock();
        let tx = c.transaction()?;
        let rows: Vec<(String, Vec<u8>, u32)> = tx
            .prepare_cached(SQL_CLAIMABLE)?
            .query_map(
                params![queue, now_ms, i64::try_from(max).unwrap_or(i64::MAX)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?
            .collect::<Result<_, _>>()?;
        let expires_ms = now_ms.saturating_add(lease_ms);
        let mut claims = Vec::with_capacity(rows.len());
        for (id, payload, attempts) in rows {
            let token = new_token();
            tx.prepare_cached(SQL_LEASE)?
                .execute(params![queue, id, token, expires_ms])?;
            claims.push(Claim {
                queue: queue.to_owned(),
                id,
                payload,
                attempt: attempts + 1,
                token,
                expires_ms,
            });
        }
        tx.commit()?;
        Ok(claims)
    }

    fn renew(&self, claim: &Claim, now_ms: i64, lease_ms: i64) -> Result<i64, StoreError> {
        let c = self.writer.lock();
        let expires = now_ms.saturating_add(lease_ms);
        let n = c
            .prepare_cached(
                "UPDATE work SET expires = ?4 WHERE queue = ?1 AND id = ?2 AND token = ?3",
            )?
            .execute(params![claim.queue, claim.id, claim.token, expires])?;
        if n == 0 {
            return Err(StoreError::Conflict);
        }
        Ok(expires)
    }

    fn complete(&self, claim: &Claim, ops: &[WriteOp]) -> Result<(), StoreError> {
        let mut c = self.writer.lock();
        let tx = c.transaction()?;
        let n = tx
            .prepare_cached("DELETE FROM work WHERE queue = ?1 AND id = ?2 AND token = ?3")?
            .execute(params![claim.queue, claim.id, claim.token])?;
        if n == 0 {
            return Err(StoreError::Conflict);
        }
        apply_ops(&tx, ops)?;
        tx.commit()?;
        Ok(())
    }

    fn release(&self, claim: &Claim, due_ms: i64) -> Result<(), StoreError> {
        let c = self.writer.lock();
        let n = c
            .prepare_cached(
                "UPDATE work SET token = NULL, expires = NULL, due = ?4 \
                 WHERE queue = ?1 AND id = ?2 AND token = ?3",
            )?
            .execute(params![claim.queue, claim.id, claim.token, due_ms])?;
        if n == 0 {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    fn pending(&self, queue: &str) -> Result<usize, StoreError> {
        self.with_reader(|c| {
            let n: i64 = c
                .prepare_cached("SELECT COUNT(*) FROM work WHERE queue = ?1")?
                .query_row(params![queue], |r| r.get(0))?;
            Ok(n as usize)
        })
    }

    fn counts(&self, queue: &str, now_ms: i64) -> Result<Counts, StoreError> {
        self.with_reader(|c| {
            let (total, leased, delayed): (i64, i64, i64) = c
                .prepare_cached(SQL_COUNTS)?
                .query_row(params![queue, now_ms], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
            Ok(Counts::from_totals(total, leased, delayed))
        })
    }

    fn purge(&self, queue: &str) -> Result<usize, StoreError> {
        let c = self.writer.lock();
        let n = c
            .prepare_cached("DELETE FROM work WHERE queue = ?1")?
            .execute(params![queue])?;
        Ok(n)
    }
}

// ---------------------------------------------------------------------------------------------
// Memory

/// In-memory backend (tests, ephemeral mode).
#[derive(Default)]
pub struct MemoryState {
    tables: RwLock<BTreeMap<String, BTreeMap<String, Vec<u8>>>>,
    /// Work items by (queue, id). Lock order: `tables`, then `work`.
    work: Mutex<BTreeMap<(String, String), Item>>,
}

type Tables = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

/// Applies a batch to the memory backend's maps (checks first, all or nothing).
fn apply_memory(
    g: &mut Tables,
    work: &mut BTreeMap<(String, String), Item>,
    ops: &[WriteOp],
) -> Result<(), StoreError> {
    for op in ops {
        if let WriteOp::Check {
            table,
            key,
            expected,
        } = op
            && g.get(table).and_then(|t| t.get(key)) != expected.as_ref()
        {
            return Err(StoreError::Conflict);
        }
    }
    for op in ops {
        match op {
            WriteOp::Put { table, key, value } => {
                g.entry(table.clone())
                    .or_default()
                    .insert(key.clone(), value.clone());
            }
            WriteOp::Delete { table, key } => {
                if let Some(t) = g.get_mut(table) {
                    t.remove(key);
                }
            }
            WriteOp::Enqueue {
                queue,
                id,
                payload,
                due_ms,
            } => {
                work.insert(
                    (queue.clone(), id.clone()),
                    Item {
                        payload: payload.clone(),
                        due_ms: *due_ms,
                        attempts: 0,
                        lease: None,
                    },
                );
            }
            WriteOp::Check { .. } => {}
        }
    }
    Ok(())
}

impl StateStore for MemoryState {
    fn writes_block(&self) -> bool {
        false
    }

    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .tables
            .read()
            .get(table)
            .and_then(|t| t.get(key))
            .cloned())
    }

    fn put(&self, table: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let mut g = self.tables.write();
        match g.get_mut(table) {
            Some(t) => {
                t.insert(key.to_owned(), value.to_vec());
            }
            None => {
                g.entry(table.to_owned())
                    .or_default()
                    .insert(key.to_owned(), value.to_vec());
            }
        }
        Ok(())
    }

    fn delete(&self, table: &str, key: &str) -> Result<bool, StoreError> {
        Ok(self
            .tables
            .write()
            .get_mut(table)
            .is_some_and(|t| t.remove(key).is_some()))
    }

    fn scan(
        &self,
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let g = self.tables.read();
        let Some(t) = g.get(table) else {
            return Ok(Vec::new());
        };
        let lower: Bound<&str> = match start_after {
            Some(s) if s >= prefix => Bound::Excluded(s),
            _ => Bound::Included(prefix),
        };
        Ok(t.range::<str, _>((lower, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn range(
        &self,
        table: &str,
        lo: &str,
        hi: &str,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        if lo >= hi {
            return Ok(Vec::new());
        }
        let g = self.tables.read();
        let Some(t) = g.get(table) else {
            return Ok(Vec::new());
        };
        let r = t.range::<str, _>((Bound::Included(lo), Bound::Excluded(hi)));
        let pair = |(k, v): (&String, &Vec<u8>)| (k.clone(), v.clone());
        Ok(if reverse {
            r.rev().take(limit).map(pair).collect()
        } else {
            r.take(limit).map(pair).collect()
        })
    }

    fn batch(&self, ops: &[WriteOp]) -> Result<(), StoreError> {
        let mut g = self.tables.write();
        let mut work = self.work.lock();
        apply_memory(&mut g, &mut work, ops)
    }

    fn claim(
        &self,
        queue: &str,
        now_ms: i64,
        lease_ms: i64,
        max: usize,
    ) -> Result<Vec<Claim>, StoreError> {
        let mut work = self.work.lock();
        let mut due: Vec<(i64, String)> = work
            .range((queue.to_owned(), String::new())..)
            .take_while(|((q, _), _)| q == queue)
            .filter(|(_, item)| item.claimable(now_ms))
            .map(|((_, id), item)| (item.due_ms, id.clone()))
            .collect();
        due.sort();
        due.truncate(max);
        let expires_ms = now_ms.saturating_add(lease_ms);
        let mut claims = Vec::with_capacity(due.len());
        for (_, id) in due {
            let Some(item) = work.get_mut(&(queue.to_owned(), id.clone())) else {
                continue;
            };
            item.attempts += 1;
            let token = new_token();
            item.lease = Some((token.clone(), expires_ms));
            claims.push(Claim {
                queue: queue.to_owned(),
                id,
                payload: item.payload.clone(),
                attempt: item.attempts,
                token,
                expires_ms,
            });
        }
        Ok(claims)
    }

    fn renew(&self, claim: &Claim, now_ms: i64, lease_ms: i64) -> Result<i64, StoreError> {
        let mut work = self.work.lock();
        let item = held(&mut work, claim)?;
        let expires = now_ms.saturating_add(lease_ms);
        item.lease = Some((claim.token.clone(), expires));
        Ok(expires)
    }

    fn complete(&self, claim: &Claim, ops: &[WriteOp]) -> Result<(), StoreError> {
        let mut g = self.tables.write();
        let mut work = self.work.lock();
        held(&mut work, claim)?;
        let key = (claim.queue.clone(), claim.id.clone());
        let item = work.remove(&key);
        let applied = apply_memory(&mut g, &mut work, ops);
        if applied.is_err()
            && let Some(item) = item
        {
            // Nothing changes on a failed check: the claim stands.
            work.entry(key).or_insert(item);
        }
        applied
    }

    fn release(&self, claim: &Claim, due_ms: i64) -> Result<(), StoreError> {
        let mut work = self.work.lock();
        let item = held(&mut work, claim)?;
        item.lease = None;
        item.due_ms = due_ms;
        Ok(())
    }

    fn pending(&self, queue: &str) -> Result<usize, StoreError> {
        Ok(self
            .work
            .lock()
            .range((queue.to_owned(), String::new())..)
            .take_while(|((q, _), _)| q == queue)
            .count())
    }

    fn counts(&self, queue: &str, now_ms: i64) -> Result<Counts, StoreError> {
        let work = self.work.lock();
        let mut counts = Counts::default();
        for (_, item) in work
            .range((queue.to_owned(), String::new())..)
            .take_while(|((q, _), _)| q == queue)
        {
            match &item.lease {
                Some((_, exp)) if *exp > now_ms => counts.leased += 1,
                _ if item.due_ms > now_ms => counts.delayed += 1,
                _ => counts.ready += 1,
            }
        }
        Ok(counts)
    }

    fn purge(&self, queue: &str) -> Result<usize, StoreError> {
        let mut work = self.work.lock();
        let before = work.len();
        work.retain(|(q, _), _| q != queue);
        Ok(before - work.len())
    }
}

/// The item `claim` holds, if its lease is still the current one.
fn held<'a>(
    work: &'a mut BTreeMap<(String, String), Item>,
    claim: &Claim,
) -> Result<&'a mut Item, StoreError> {
    work.get_mut(&(claim.queue.clone(), claim.id.clone()))
        .filter(|i| i.lease.as_ref().is_some_and(|(t, _)| *t == claim.token))
        .ok_or(StoreError::Conflict)
}

#[cfg(test)]
mod tests {
    use super::*;

    mod memory_contract {
        use crate::contract::{Backend, state_contract_tests};
        state_contract_tests!(|| Some(Backend::new(crate::MemoryState::default(), ())));
    }

    mod sqlite_contract {
        use crate::contract::{Backend, state_contract_tests};
        fn open() -> Option<Backend> {
            let dir = tempfile::tempdir().unwrap();
            let s = crate::SqliteState::open(&dir.path().join("s.db")).unwrap();
            Some(Backend::new(s, dir))
        }
        state_contract_tests!(open);
    }

    /// Inline on memory, on a blocking thread for SQLite: the same outcome either way, a
    /// failed precondition included.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batch_async_applies_on_every_backend() {
        let dir = tempfile::tempdir().unwrap();
        let stores: [Arc<dyn StateStore>; 2] = [
            Arc::new(MemoryState::default()),
            Arc::new(SqliteState::open(&dir.path().join("s.db")).unwrap()),
        ];
        assert!(!stores[0].writes_block() && stores[1].writes_block());
        for s in &stores {
            let put = |v: &str| WriteOp::Put {
                table: "t".into(),
                key: "k".into(),
                value: v.as_bytes().to_vec(),
            };
            batch_async(s, vec![put("1")]).await.unwrap();
            let stale = WriteOp::Check {
                table: "t".into(),
                key: "k".into(),
                expected: None,
            };
            let r = batch_async(s, vec![stale, put("2")]).await;
            assert!(matches!(r, Err(StoreError::Conflict)), "{r:?}");
            assert_eq!(s.get("t", "k").unwrap().as_deref(), Some(&b"1"[..]));
        }
    }

    #[test]
    fn sqlite_leases_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.db");
        let claim = {
            let s = SqliteState::open(&p).unwrap();
            s.enqueue("q", "a", b"1", 0).unwrap();
            s.enqueue("q", "b", b"2", 0).unwrap();
            s.claim("q", 0, 1_000, 1).unwrap().remove(0)
        };
        let s = SqliteState::open(&p).unwrap();
        assert_eq!(s.pending("q").unwrap(), 2);
        // The lease held across the restart; the claim is still good.
        assert_eq!(s.claim("q", 500, 1_000, 5).unwrap().len(), 1);
        s.complete(&claim, &[]).unwrap();
        assert_eq!(s.pending("q").unwrap(), 1);
    }

    /// Batches committed in one group (one transaction, one fsync) keep their own outcome: a
    /// batch whose precondition fails is rolled back alone, the others of its group commit.
    #[test]
    fn sqlite_group_commit_isolates_failed_batches() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteState::open(&dir.path().join("s.sqlite3")).unwrap();
        std::thread::scope(|scope| {
            for t in 0..8 {
                let s = &s;
                scope.spawn(move || {
                    for i in 0..100u32 {
                        let key = format!("k{t}");
                        let cur = s.get("c", &key).unwrap();
                        let n: u32 = cur
                            .as_deref()
                            .map_or(0, |v| std::str::from_utf8(v).unwrap().parse().unwrap());
                        // Every third batch carries a stale precondition and must fail alone.
                        let expected = if i % 3 == 2 {
                            Some(b"stale".to_vec())
                        } else {
                            cur
                        };
                        let r = s.batch(&[
                            WriteOp::Check {
                                table: "c".into(),
                                key: key.clone(),
                                expected,
                            },
                            WriteOp::Put {
                                table: "c".into(),
                                key,
                                value: (n + 1).to_string().into_bytes(),
                            },
                            WriteOp::Put {
                                table: "log".into(),
                                key: format!("{t}-{i:03}"),
                                value: vec![],
                            },
                        ]);
                        assert_eq!(r.is_ok(), i % 3 != 2, "{t}/{i}: {r:?}");
                    }
                });
            }
        });
        for t in 0..8 {
            let v = s.get("c", &format!("k{t}")).unwrap().unwrap();
            assert_eq!(v, b"67");
        }
        assert_eq!(s.scan("log", "", None, 10_000).unwrap().len(), 8 * 67);
    }

    /// A database of schema version 0 (`WITHOUT ROWID` tables) opens with every record, every
    /// work item and its lease intact, and is version 1 afterwards.
    #[test]
    fn sqlite_migrates_schema_v0() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.sqlite3");
        {
            let c = Connection::open(&p).unwrap();
            c.execute_batch(
                "PRAGMA journal_mode = WAL; \
                 CREATE TABLE kv (tbl TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, \
                 PRIMARY KEY (tbl, key)) WITHOUT ROWID; \
                 CREATE TABLE work (queue TEXT NOT NULL, id TEXT NOT NULL, \
                 payload BLOB NOT NULL, due INTEGER NOT NULL, token TEXT, expires INTEGER, \
                 attempts INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (queue, id)) WITHOUT ROWID; \
                 CREATE INDEX work_due ON work (queue, due);",
            )
            .unwrap();
            for (k, v) in [("b", vec![2u8; 5000]), ("a", b"1".to_vec()), ("c", vec![])] {
                c.execute(
                    "INSERT INTO kv VALUES ('t', ?1, ?2)",
                    params![k.as_bytes(), v],
                )
                .unwrap();
            }
            c.execute(
                "INSERT INTO work VALUES ('q', 'x', X'01', 5, 'tok', 99, 1), \
                 ('q', 'y', X'02', 7, NULL, NULL, 0)",
                [],
            )
            .unwrap();
        }
        let s = SqliteState::open(&p).unwrap();
        let rows = s.scan("t", "", None, 10).unwrap();
        assert_eq!(
            rows,
            vec![
                ("a".to_string(), b"1".to_vec()),
                ("b".to_string(), vec![2u8; 5000]),
                ("c".to_string(), vec![]),
            ]
        );
        // x is leased until 99: only y is claimable at 50, x again after its lease.
        let claimed = s.claim("q", 50, 1_000, 5).unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].payload, b"\x02");
        assert_eq!(s.claim("q", 100, 1_000, 5).unwrap().len(), 1);
        let version: i64 = s
            .read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        drop(s);
        // Opening again is a no-op.
        let s = SqliteState::open(&p).unwrap();
        assert_eq!(s.scan("t", "", None, 10).unwrap().len(), 3);
    }

    /// A version-0 database from before the work table opens too.
    #[test]
    fn sqlite_migrates_schema_v0_without_work() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.sqlite3");
        {
            let c = Connection::open(&p).unwrap();
            c.execute_batch(
                "CREATE TABLE kv (tbl TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, \
                 PRIMARY KEY (tbl, key)) WITHOUT ROWID; \
                 INSERT INTO kv VALUES ('t', X'61', X'31');",
            )
            .unwrap();
        }
        let s = SqliteState::open(&p).unwrap();
        assert_eq!(s.get("t", "a").unwrap(), Some(b"1".to_vec()));
        s.enqueue("q", "x", b"p", 0).unwrap();
        assert_eq!(s.pending("q").unwrap(), 1);
    }

    #[test]
    fn sqlite_reopen_after_drop() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.db");
        {
            let s = SqliteState::open(&p).unwrap();
            s.put("t", "k", b"v").unwrap();
            s.batch(&[WriteOp::Put {
                table: "t".into(),
                key: "k2".into(),
                value: b"v2".to_vec(),
            }])
            .unwrap();
            // Simulate a crash: no orderly close of the connections.
            std::mem::forget(s);
        }
        let s = SqliteState::open(&p).unwrap();
        assert_eq!(s.get("t", "k").unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(s.get("t", "k2").unwrap().as_deref(), Some(&b"v2"[..]));
    }

    #[test]
    fn sqlite_batch_is_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteState::open(&dir.path().join("s.db")).unwrap();
        s.put("t", "a", b"1").unwrap();
        // A failing batch (a write to the read-only reader is impossible here, so force an error
        // via an invalid table value type is not possible either): check rollback by dropping a tx.
        {
            let mut c = s.writer.lock();
            let tx = c.transaction().unwrap();
            apply_op(
                &tx,
                &WriteOp::Delete {
                    table: "t".into(),
                    key: "a".into(),
                },
            )
            .unwrap();
            drop(tx); // rolls back
        }
        assert_eq!(s.get("t", "a").unwrap().as_deref(), Some(&b"1"[..]));
    }

    #[test]
    fn bounds() {
        assert_eq!(prefix_upper_bound(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_upper_bound(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_upper_bound(b""), None);
        assert_eq!(scan_lower_bound("a", Some("b")), b"b\0".to_vec());
        assert_eq!(scan_lower_bound("b", Some("a")), b"b".to_vec());
    }
}
