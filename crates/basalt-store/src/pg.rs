//! PostgreSQL state backend: [`PgState`], with exactly the semantics of [`crate::SqliteState`].
//!
//! # Shape
//!
//! [`StateStore`] is synchronous: services call reads on tokio worker threads and writes in
//! `spawn_blocking`. The `postgres` crate's client drives its connection with its own
//! current-thread runtime, which panics when entered from inside another runtime, so every
//! client lives on a small pool of dedicated OS threads. A call sends a job over a channel and
//! blocks on its answer, as long as a SQLite call blocks today.
//!
//! # Schema
//!
//! `kv(tbl, key BYTEA, value BYTEA)` keyed by `(tbl, key)`: BYTEA compares bytewise, so scans
//! come back in byte order whatever the database's collation, and the text columns are
//! `COLLATE "C"` for the same reason. `work(queue, id, payload, due, token, expires,
//! attempts)` holds lease items. Migrations are versioned in `basalt_schema_migrations`,
//! applied at start in one transaction under an advisory lock, so nodes starting together
//! apply each exactly once.
//!
//! # Preconditions under concurrency
//!
//! Transactions run at READ COMMITTED. A [`WriteOp::Check`] must hold until its batch commits,
//! against every other writer, including for a key that is absent (a check that "this record
//! does not exist yet" is the compare-and-set of every create-if-absent). `SELECT ... FOR
//! UPDATE` alone locks only rows that exist, so:
//!
//! * every batch first takes a transaction-scoped advisory lock on each `(table, key)` it
//!   checks or writes (a 64-bit hash of the pair), all in one statement in ascending order, so
//!   two batches can never wait on each other in a cycle;
//! * a plain `put` takes its key's advisory lock in the same statement as its upsert; a plain
//!   `delete` needs none: it row-locks an existing record, and a record absent from its
//!   snapshot makes it a no-op that serializes before whoever creates the record;
//! * checks then read with `SELECT ... FOR UPDATE`, each a fresh READ COMMITTED snapshot taken
//!   after the locks, so they see every write committed before and none can intervene;
//! * checks run before the batch's writes, as on SQLite, so they see the state before the
//!   batch.
//!
//! Writers of different keys never wait for each other (a hash collision only serializes two
//! unrelated writers). SERIALIZABLE would give the same guarantees but aborts on conflicts
//! that are false positives (page-level predicate locks) and would make every statement
//! retryable; these locks instead make conflicting writers wait, and a deadlock, possible
//! only between batches that enqueue the same work items in different orders, is retried.
//!
//! # Failures
//!
//! A connection that is refused, lost or closed by the server gives
//! [`StoreError::Unavailable`], never a panic, and the next job reconnects. A connection that
//! sat idle for [`IDLE_CHECK`] or longer (as idle connections do across a database restart),
//! or that has not been used since another worker of the pool lost its connection, is
//! validated with an empty query before a job uses it, and replaced if the server closed it,
//! so the first requests after an outage do not fail on stale connections. A read whose connection breaks mid-way is retried once on a fresh one; a write
//! is not (it may have committed) and reports `Unavailable`. (The client library cannot tell
//! without a round trip that the server closed a connection: its socket is only polled while
//! a request runs.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use postgres::{Client, Config, NoTls, Statement};

mod vectors;

use crate::leases::{Claim, Counts, new_token};
use crate::state::{prefix_upper_bound, scan_lower_bound};
use crate::{StateStore, StoreError, WriteOp};

/// Connections (and worker threads) per [`PgState`] unless the URL says `pool_size=N`.
pub const DEFAULT_POOL_SIZE: usize = 8;

/// Oldest supported server (`server_version_num`).
const MIN_SERVER_VERSION: i32 = 120_000;

/// Versioned schema migrations, applied in order; never edit one that has shipped.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "CREATE TABLE kv (tbl TEXT COLLATE \"C\" NOT NULL, key BYTEA NOT NULL, \
     value BYTEA NOT NULL, PRIMARY KEY (tbl, key)); \
     CREATE TABLE work (queue TEXT COLLATE \"C\" NOT NULL, id TEXT COLLATE \"C\" NOT NULL, \
     payload BYTEA NOT NULL, due BIGINT NOT NULL, token TEXT, expires BIGINT, \
     attempts INT NOT NULL DEFAULT 0, PRIMARY KEY (queue, id)); \
     CREATE INDEX work_due ON work (queue, due, id);",
    ),
    (
        2,
        // Vector collections (pg/vectors.rs), and the comparisons of their metadata filters
        // with `basalt_vector::Filter::matches`' semantics: numbers by value, strings
        // bytewise, a list equal to a scalar it holds (recursively); NULL where a pair does
        // not compare. plpgsql, since a SQL function cannot call itself.
        "CREATE TABLE basalt_vector_collections (collection TEXT COLLATE \"C\" PRIMARY KEY, \
         tbl TEXT NOT NULL, dim INT, docs BIGINT NOT NULL DEFAULT 0, \
         total_len BIGINT NOT NULL DEFAULT 0); \
         CREATE FUNCTION basalt_json_eq(m JSONB, v JSONB) RETURNS BOOLEAN \
         LANGUAGE plpgsql IMMUTABLE AS $f$ BEGIN \
         IF m IS NULL OR v IS NULL THEN RETURN false; END IF; \
         IF jsonb_typeof(m) = 'number' AND jsonb_typeof(v) = 'number' THEN \
           RETURN (m #>> '{}')::float8 = (v #>> '{}')::float8; END IF; \
         IF jsonb_typeof(m) = 'array' AND jsonb_typeof(v) <> 'array' THEN \
           RETURN EXISTS (SELECT 1 FROM jsonb_array_elements(m) e WHERE basalt_json_eq(e, v)); \
         END IF; \
         IF jsonb_typeof(m) IN ('array', 'object') THEN RETURN m::text = v::text; END IF; \
         RETURN m = v; END $f$; \
         CREATE FUNCTION basalt_json_cmp(m JSONB, v JSONB) RETURNS INT \
         LANGUAGE plpgsql IMMUTABLE AS $f$ BEGIN \
         IF jsonb_typeof(m) = 'number' AND jsonb_typeof(v) = 'number' THEN \
           RETURN CASE WHEN (m #>> '{}')::float8 < (v #>> '{}')::float8 THEN -1 \
             WHEN (m #>> '{}')::float8 = (v #>> '{}')::float8 THEN 0 ELSE 1 END; END IF; \
         IF jsonb_typeof(m) = 'string' AND jsonb_typeof(v) = 'string' THEN \
           RETURN CASE WHEN (m #>> '{}') COLLATE \"C\" < (v #>> '{}') COLLATE \"C\" THEN -1 \
             WHEN (m #>> '{}') = (v #>> '{}') THEN 0 ELSE 1 END; END IF; \
         RETURN NULL; END $f$;",
    ),
];

/// Advisory-lock key (two-int space, apart from the per-key bigint locks) for migrations.
const MIGRATION_LOCK: (i32, i32) = (0x6261_7361, 1);

/// A connection idle this long is validated (one round trip) before its next job.
pub const IDLE_CHECK: Duration = Duration::from_millis(100);

/// How often a write that lost a deadlock is retried.
const DEADLOCK_RETRIES: u32 = 10;

const SQL_GET: &str = "SELECT value FROM kv WHERE tbl = $1 AND key = $2";
const SQL_CHECK: &str = "SELECT value FROM kv WHERE tbl = $1 AND key = $2 FOR UPDATE";
/// A plain put: its key's advisory lock and the upsert in one statement (see the module doc).
const SQL_PUT_LOCKING: &str = "INSERT INTO kv (tbl, key, value) \
     SELECT $1::text, $2::bytea, $3::bytea FROM (SELECT pg_advisory_xact_lock($4::int8)) AS l \
     ON CONFLICT (tbl, key) DO UPDATE SET value = excluded.value";
/// A put inside a batch, whose locks are already held.
const SQL_PUT: &str = "INSERT INTO kv (tbl, key, value) VALUES ($1, $2, $3) \
     ON CONFLICT (tbl, key) DO UPDATE SET value = excluded.value";
const SQL_DEL: &str = "DELETE FROM kv WHERE tbl = $1 AND key = $2";
/// Function scans emit rows in array order, so the locks are taken in ascending order.
const SQL_LOCK: &str = "SELECT pg_advisory_xact_lock(h) FROM unnest($1::int8[]) AS h";
const SQL_SCAN_BOUNDED: &str = "SELECT key, value FROM kv WHERE tbl = $1 AND key >= $2 \
     AND key < $3 ORDER BY key LIMIT $4";
const SQL_SCAN_OPEN: &str =
    "SELECT key, value FROM kv WHERE tbl = $1 AND key >= $2 ORDER BY key LIMIT $3";
const SQL_RANGE_DESC: &str = "SELECT key, value FROM kv WHERE tbl = $1 AND key >= $2 \
     AND key < $3 ORDER BY key DESC LIMIT $4";
const SQL_ENQUEUE: &str = "INSERT INTO work (queue, id, payload, due, token, expires, attempts) \
     VALUES ($1, $2, $3, $4, NULL, NULL, 0) ON CONFLICT (queue, id) DO UPDATE \
     SET payload = excluded.payload, due = excluded.due, token = NULL, expires = NULL, \
     attempts = 0";
/// Due, unleased (or expired) items, earliest first, locked without waiting for items that
/// another claimer is taking right now, and leased, in one statement. The CTE is
/// materialized so that the locking `LIMIT` runs exactly once, whatever the plan.
const SQL_CLAIM: &str = "WITH c AS MATERIALIZED (SELECT id FROM work WHERE queue = $1 \
     AND due <= $2 AND (expires IS NULL OR expires <= $2) \
     ORDER BY due, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
     UPDATE work w SET token = $4, expires = $5, attempts = w.attempts + 1 FROM c \
     WHERE w.queue = $1 AND w.id = c.id RETURNING w.id, w.payload, w.attempts, w.due";
const SQL_RENEW: &str = "UPDATE work SET expires = $4 WHERE queue = $1 AND id = $2 AND token = $3";
const SQL_COMPLETE: &str = "DELETE FROM work WHERE queue = $1 AND id = $2 AND token = $3";
const SQL_RELEASE: &str = "UPDATE work SET token = NULL, expires = NULL, due = $4 \
     WHERE queue = $1 AND id = $2 AND token = $3";
const SQL_PENDING: &str = "SELECT COUNT(*) FROM work WHERE queue = $1";

/// The statements of one connection, prepared once when it opens.
struct Statements {
    get: Statement,
    check: Statement,
    put_locking: Statement,
    put: Statement,
    del: Statement,
    lock: Statement,
    scan_bounded: Statement,
    scan_open: Statement,
    range_desc: Statement,
    enqueue: Statement,
    claim: Statement,
    renew: Statement,
    complete: Statement,
    release: Statement,
    pending: Statement,
}

impl Statements {
    fn prepare(c: &mut Client) -> Result<Statements, postgres::Error> {
        Ok(Statements {
            get: c.prepare(SQL_GET)?,
            check: c.prepare(SQL_CHECK)?,
            put_locking: c.prepare(SQL_PUT_LOCKING)?,
            put: c.prepare(SQL_PUT)?,
            del: c.prepare(SQL_DEL)?,
            lock: c.prepare(SQL_LOCK)?,
            scan_bounded: c.prepare(SQL_SCAN_BOUNDED)?,
            scan_open: c.prepare(SQL_SCAN_OPEN)?,
            range_desc: c.prepare(SQL_RANGE_DESC)?,
            enqueue: c.prepare(SQL_ENQUEUE)?,
            claim: c.prepare(SQL_CLAIM)?,
            renew: c.prepare(SQL_RENEW)?,
            complete: c.prepare(SQL_COMPLETE)?,
            release: c.prepare(SQL_RELEASE)?,
            pending: c.prepare(SQL_PENDING)?,
        })
    }
}

/// One open connection with its prepared statements.
struct Conn {
    client: Client,
    st: Statements,
    /// When its last job ended.
    used: Instant,
    /// The pool's loss count when this connection was last known good.
    epoch: u64,
}

/// Why a job failed: a store answer (`Conflict`), or a database error to classify.
enum Fail {
    Store(StoreError),
    Pg(postgres::Error),
}

impl From<postgres::Error> for Fail {
    fn from(e: postgres::Error) -> Fail {
        Fail::Pg(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Fail {
        Fail::Store(e)
    }
}

/// Whether a failed job may run again on a fresh connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Reads: retried once after a lost connection.
    Read,
    /// Writes: a lost connection may have lost the commit's answer, not the commit.
    Write,
}

type Job = Box<dyn FnOnce(&mut Worker) + Send>;

/// One pool thread's state.
struct Worker {
    config: Arc<Config>,
    target: Arc<str>,
    /// Connection losses seen by any worker of the pool: one worker's loss makes every other
    /// connection suspect (the server may have restarted), so each is validated once.
    losses: Arc<AtomicU64>,
    conn: Option<Conn>,
    /// Set after a lost connection, so that the reconnection is logged.
    lost: bool,
}

impl Worker {
    /// The worker's connection, reopened if the server closed it.
    fn connection(&mut self) -> Result<&mut Conn, StoreError> {
        let losses = self.losses.load(Ordering::Acquire);
        if let Some(c) = &mut self.conn {
            let suspect = c.used.elapsed() >= IDLE_CHECK || c.epoch < losses;
            if c.client.is_closed()
                || (suspect && c.client.is_valid(Duration::from_secs(2)).is_err())
            {
                // A server that restarted or ended this session closed it meanwhile.
                self.conn = None;
                self.lost = true;
            } else {
                c.epoch = losses;
            }
        }
        if self.conn.is_none() {
            let conn = open_conn(&self.config, &self.target, losses).inspect_err(|_| {
                self.losses.fetch_add(1, Ordering::AcqRel);
            })?;
            if self.lost {
                tracing::warn!(target = %self.target, "reconnected to PostgreSQL");
                self.lost = false;
            }
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("connection just opened"))
    }

    fn execute<T>(
        &mut self,
        kind: Kind,
        mut f: impl FnMut(&mut Conn) -> Result<T, Fail>,
    ) -> Result<T, StoreError> {
        let mut reconnects = u32::from(kind == Kind::Read);
        let mut deadlocks = 0;
        loop {
            let conn = self.connection()?;
            let result = f(conn);
            conn.used = Instant::now();
            let err = match result {
                Ok(v) => return Ok(v),
                Err(Fail::Store(e)) => return Err(e),
                Err(Fail::Pg(e)) => e,
            };
            if conn.client.is_closed() || is_connection_error(&err) {
                self.conn = None;
                self.lost = true;
                self.losses.fetch_add(1, Ordering::AcqRel);
                if reconnects > 0 {
                    reconnects -= 1;
                    continue;
                }
                return Err(StoreError::Unavailable(format!(
                    "PostgreSQL at {}: connection lost: {}",
                    self.target,
                    describe(&err)
                )));
            }
            if is_retryable(&err) && deadlocks < DEADLOCK_RETRIES {
                deadlocks += 1;
                std::thread::sleep(Duration::from_millis(u64::from(deadlocks)));
                continue;
            }
            return Err(StoreError::Other(format!("postgres: {}", describe(&err))));
        }
    }
}

/// PostgreSQL [`StateStore`]: a pool of connections on dedicated threads (module docs).
pub struct PgState {
    jobs: mpsc::Sender<Job>,
    target: Arc<str>,
    pool_size: usize,
    /// pgvector, once found in the database ([`crate::vectors`]); looked for again when a
    /// collection needs it (a DBA may install it after the node started).
    vector: std::sync::OnceLock<vectors::Extension>,
}

impl PgState {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/db[?param=value...]`, any
    /// libpq-style parameter the `postgres` crate knows, plus `pool_size=N`), checks the
    /// server's version, applies pending migrations and starts the pool.
    ///
    /// Fails with [`StoreError::Unavailable`] when the server cannot be reached and
    /// [`StoreError::Other`] when it is too old or the URL is invalid. May be called from
    /// inside a tokio runtime.
    pub fn open(url: &str) -> Result<PgState, StoreError> {
        let (config, pool_size) = parse_url(url)?;
        let target: Arc<str> = describe_target(&config).into();
        let config = Arc::new(config);
        // The first connection migrates, on a plain thread (the caller may be a runtime's).
        let first = {
            let (config, target) = (config.clone(), target.clone());
            std::thread::spawn(
                move || -> Result<(Conn, Option<vectors::Extension>), StoreError> {
                    let mut client = connect(&config, &target)?;
                    check_version(&mut client, &target)?;
                    migrate(&mut client).map_err(|e| match e {
                        Fail::Store(e) => e,
                        Fail::Pg(e) => pg_error(&e, &target, "migrating the schema"),
                    })?;
                    let vector = vectors::detect(&mut client);
                    let st = Statements::prepare(&mut client)
                        .map_err(|e| pg_error(&e, &target, "preparing statements"))?;
                    let conn = Conn {
                        client,
                        st,
                        used: Instant::now(),
                        epoch: 0,
                    };
                    Ok((conn, vector))
                },
            )
            .join()
            .map_err(|_| StoreError::Other("the PostgreSQL connection thread panicked".into()))??
        };
        let (first, vector) = first;
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut first = Some(first);
        let losses = Arc::new(AtomicU64::new(0));
        for i in 0..pool_size {
            let mut worker = Worker {
                config: config.clone(),
                target: target.clone(),
                losses: losses.clone(),
                conn: first.take(),
                lost: false,
            };
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("basalt-pg-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        let run = std::panic::AssertUnwindSafe(|| job(&mut worker));
                        if std::panic::catch_unwind(run).is_err() {
                            // The caller sees its answer channel close; start afresh.
                            worker.conn = None;
                        }
                    }
                })
                .map_err(StoreError::Io)?;
        }
        Ok(PgState {
            jobs: tx,
            target,
            pool_size,
            vector: vector.map(std::sync::OnceLock::from).unwrap_or_default(),
        })
    }

    /// `host:port/db` of the server (no credentials), for messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Connections in the pool.
    pub fn pool_size(&self) -> usize {
        self.pool_size
    }

    /// Runs `f` on a pool connection and waits for its answer.
    fn run<T: Send + 'static>(
        &self,
        kind: Kind,
        f: impl FnMut(&mut Conn) -> Result<T, Fail> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |w: &mut Worker| {
            let _ = tx.send(w.execute(kind, f));
        });
        self.jobs.send(job).map_err(|_| {
            StoreError::Unavailable("the PostgreSQL connection pool stopped".into())
        })?;
        // No answer: the job panicked (the worker caught it and carries on).
        rx.recv()
            .map_err(|_| StoreError::Other("a PostgreSQL worker failed during the call".into()))?
    }
}

/// Splits Basalt's own `pool_size` parameter off the URL and parses the rest.
fn parse_url(url: &str) -> Result<(Config, usize), StoreError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(StoreError::Other(format!(
            "unsupported state URL (expected postgres://...): {}",
            redact(url)
        )));
    }
    let mut pool_size = DEFAULT_POOL_SIZE;
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept = Vec::new();
    for param in query.split('&').filter(|p| !p.is_empty()) {
        match param.split_once('=') {
            Some(("pool_size", n)) => {
                pool_size = n
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=256).contains(n))
                    .ok_or_else(|| {
                        StoreError::Other(format!("pool_size must be 1 to 256, not {n}"))
                    })?;
            }
            _ => kept.push(param),
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mut config: Config = rest.parse().map_err(|e: postgres::Error| {
        StoreError::Other(format!(
            "invalid PostgreSQL URL {}: {}",
            redact(url),
            describe(&e)
        ))
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    if config.get_tcp_user_timeout().is_none() {
        // Unacknowledged data for this long means the server is gone (no RST ever came).
        config.tcp_user_timeout(Duration::from_secs(30));
    }
    if config.get_application_name().is_none() {
        config.application_name("basalt");
    }
    Ok((config, pool_size))
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

fn describe_target(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

/// An error and its causes on one line.
fn describe(e: &postgres::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s.replace('\n', " ")
}

fn pg_error(e: &postgres::Error, target: &str, doing: &str) -> StoreError {
    if is_connection_error(e) {
        StoreError::Unavailable(format!("PostgreSQL at {target}: {doing}: {}", describe(e)))
    } else {
        StoreError::Other(format!("PostgreSQL at {target}: {doing}: {}", describe(e)))
    }
}

/// Refused, lost, timed out, or ended by the server (shutdown, restart, terminated session).
fn is_connection_error(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        let c = code.code();
        return c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03" | "53300");
    }
    // No SQLSTATE: I/O, connect and timeout errors (and a few client-side ones that cannot
    // happen with fixed statements); an I/O cause marks the connection ones.
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        if c.is::<std::io::Error>() {
            return true;
        }
        src = c.source();
    }
    let text = e.to_string();
    text.starts_with("error connecting") || text.starts_with("timeout")
}

/// A deadlock or serialization failure: the transaction rolled back and may simply rerun.
fn is_retryable(e: &postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| matches!(c.code(), "40P01" | "40001"))
}

fn connect(config: &Config, target: &str) -> Result<Client, StoreError> {
    config.connect(NoTls).map_err(|e| {
        if e.code()
            .is_some_and(|c| !c.code().starts_with("08") && !c.code().starts_with("57"))
        {
            // The server answered and refused us (authentication, no such database).
            StoreError::Other(format!("PostgreSQL at {target}: {}", describe(&e)))
        } else {
            StoreError::Unavailable(format!(
                "PostgreSQL at {target} is unreachable: {}",
                describe(&e)
            ))
        }
    })
}

fn open_conn(config: &Config, target: &str, epoch: u64) -> Result<Conn, StoreError> {
    let mut client = connect(config, target)?;
    let st = Statements::prepare(&mut client).map_err(|e| pg_error(&e, target, "preparing"))?;
    Ok(Conn {
        client,
        st,
        used: Instant::now(),
        epoch,
    })
}

fn check_version(client: &mut Client, target: &str) -> Result<(), StoreError> {
    let row = client
        .query_one(
            "SELECT current_setting('server_version_num')::int, current_setting('server_version')",
            &[],
        )
        .map_err(|e| pg_error(&e, target, "reading the server version"))?;
    let num: i32 = row.get(0);
    let text: String = row.get(1);
    version_supported(num, &text, target)
}

fn version_supported(num: i32, text: &str, target: &str) -> Result<(), StoreError> {
    if num < MIN_SERVER_VERSION {
        return Err(StoreError::Other(format!(
            "PostgreSQL {text} at {target} is not supported: Basalt needs PostgreSQL 12 or newer"
        )));
    }
    Ok(())
}

/// Applies the migrations this database lacks, in one transaction, under an advisory lock:
/// nodes starting together wait for each other and apply each migration once.
fn migrate(client: &mut Client) -> Result<(), Fail> {
    let mut tx = client.transaction()?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&MIGRATION_LOCK.0, &MIGRATION_LOCK.1],
    )?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS basalt_schema_migrations (version INT PRIMARY KEY, \
         applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM basalt_schema_migrations", &[])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let latest = MIGRATIONS.last().map_or(0, |m| m.0);
    if let Some(newer) = applied.iter().copied().filter(|v| *v > latest).max() {
        return Err(Fail::Store(StoreError::Other(format!(
            "the database's schema (version {newer}) is newer than this Basalt knows \
             (version {latest}); upgrade Basalt"
        ))));
    }
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO basalt_schema_migrations (version) VALUES ($1)",
            &[version],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Advisory-lock id of a record: the first 8 bytes of SHA-256 over the table's length, the
/// table and the key. A fixed function, so that every node (and every Basalt version)
/// computes the same id.
fn lock_id(table: &str, key: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update((table.len() as u64).to_le_bytes());
    h.update(table.as_bytes());
    h.update(key.as_bytes());
    let d = h.finalize();
    i64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
}

/// The lock ids of every record `ops` check or write, ascending, without duplicates.
fn lock_ids(ops: &[WriteOp]) -> Vec<i64> {
    let mut ids: Vec<i64> = ops
        .iter()
        .filter_map(|op| match op {
            WriteOp::Put { table, key, .. }
            | WriteOp::Delete { table, key }
            | WriteOp::Check { table, key, .. } => Some(lock_id(table, key)),
            WriteOp::Enqueue { .. } => None,
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Applies a batch inside `tx`: locks, then (for `complete`) the claim, then every check,
/// then the writes in order.
fn apply_batch(
    tx: &mut postgres::Transaction<'_>,
    st: &Statements,
    ops: &[WriteOp],
    claim: Option<&Claim>,
) -> Result<(), Fail> {
    let ids = lock_ids(ops);
    if !ids.is_empty() {
        tx.execute(&st.lock, &[&ids])?;
    }
    if let Some(c) = claim
        && tx.execute(&st.complete, &[&c.queue, &c.id, &c.token])? == 0
    {
        return Err(Fail::Store(StoreError::Conflict));
    }
    for op in ops {
        if let WriteOp::Check {
            table,
            key,
            expected,
        } = op
        {
            let current: Option<Vec<u8>> = tx
                .query_opt(&st.check, &[table, &key.as_bytes()])?
                .map(|r| r.try_get(0))
                .transpose()?;
            if current != *expected {
                return Err(Fail::Store(StoreError::Conflict));
            }
        }
    }
    for op in ops {
        match op {
            WriteOp::Put { table, key, value } => {
                tx.execute(&st.put, &[table, &key.as_bytes(), value])?;
            }
            WriteOp::Delete { table, key } => {
                tx.execute(&st.del, &[table, &key.as_bytes()])?;
            }
            WriteOp::Enqueue {
                queue,
                id,
                payload,
                due_ms,
            } => {
                tx.execute(&st.enqueue, &[queue, id, payload, due_ms])?;
            }
            WriteOp::Check { .. } => {}
        }
    }
    Ok(())
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl StateStore for PgState {
    fn vectors(&self) -> Option<&dyn crate::VectorStore> {
        Some(self)
    }

    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let (table, key) = (table.to_owned(), key.as_bytes().to_vec());
        self.run(Kind::Read, move |c| {
            Ok(c.client
                .query_opt(&c.st.get, &[&table, &key])?
                .map(|r| r.try_get(0))
                .transpose()?)
        })
    }

    fn put(&self, table: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let lock = lock_id(table, key);
        let (table, key, value) = (table.to_owned(), key.as_bytes().to_vec(), value.to_vec());
        self.run(Kind::Write, move |c| {
            c.client
                .execute(&c.st.put_locking, &[&table, &key, &value, &lock])?;
            Ok(())
        })
    }

    fn delete(&self, table: &str, key: &str) -> Result<bool, StoreError> {
        let (table, key) = (table.to_owned(), key.as_bytes().to_vec());
        self.run(Kind::Write, move |c| {
            Ok(c.client.execute(&c.st.del, &[&table, &key])? > 0)
        })
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
        let limit = limit_param(limit);
        let table = table.to_owned();
        let rows = self.run(Kind::Read, move |c| {
            let rows = match &upper {
                Some(u) => c
                    .client
                    .query(&c.st.scan_bounded, &[&table, &lower, u, &limit])?,
                None => c.client.query(&c.st.scan_open, &[&table, &lower, &limit])?,
            };
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push((r.try_get::<_, Vec<u8>>(0)?, r.try_get::<_, Vec<u8>>(1)?));
            }
            Ok(out)
        })?;
        rows.into_iter()
            .map(|(k, v)| {
                String::from_utf8(k)
                    .map(|k| (k, v))
                    .map_err(|_| StoreError::Other("non-UTF-8 key".into()))
            })
            .collect()
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
        let limit = limit_param(limit);
        let (table, lo, hi) = (
            table.to_owned(),
            lo.as_bytes().to_vec(),
            hi.as_bytes().to_vec(),
        );
        let rows = self.run(Kind::Read, move |c| {
            let st = if reverse {
                &c.st.range_desc
            } else {
                &c.st.scan_bounded
            };
            let mut out = Vec::new();
            for r in c.client.query(st, &[&table, &lo, &hi, &limit])? {
                out.push((r.try_get::<_, Vec<u8>>(0)?, r.try_get::<_, Vec<u8>>(1)?));
            }
            Ok(out)
        })?;
        crate::state::utf8_keys(rows)
    }

    fn batch(&self, ops: &[WriteOp]) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let ops = ops.to_vec();
        self.run(Kind::Write, move |c| {
            let mut tx = c.client.transaction()?;
            apply_batch(&mut tx, &c.st, &ops, None)?;
            tx.commit()?;
            Ok(())
        })
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
        let queue = queue.to_owned();
        let expires_ms = now_ms.saturating_add(lease_ms);
        let max = limit_param(max);
        self.run(Kind::Write, move |c| {
            // One token for this call's items: (queue, id, token) names each claim.
            let token = new_token();
            let rows = c
                .client
                .query(&c.st.claim, &[&queue, &now_ms, &max, &token, &expires_ms])?;
            let mut claims = Vec::with_capacity(rows.len());
            for r in rows {
                let attempts: i32 = r.try_get(2)?;
                let due: i64 = r.try_get(3)?;
                claims.push((
                    due,
                    Claim {
                        queue: queue.clone(),
                        id: r.try_get(0)?,
                        payload: r.try_get(1)?,
                        attempt: u32::try_from(attempts).unwrap_or(0),
                        token: token.clone(),
                        expires_ms,
                    },
                ));
            }
            // RETURNING has no order: earliest due first, then by id's bytes.
            claims.sort_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
            Ok(claims.into_iter().map(|(_, c)| c).collect())
        })
    }

    fn renew(&self, claim: &Claim, now_ms: i64, lease_ms: i64) -> Result<i64, StoreError> {
        let expires = now_ms.saturating_add(lease_ms);
        let claim = claim.clone();
        self.run(Kind::Write, move |c| {
            let n = c.client.execute(
                &c.st.renew,
                &[&claim.queue, &claim.id, &claim.token, &expires],
            )?;
            if n == 0 {
                return Err(Fail::Store(StoreError::Conflict));
            }
            Ok(expires)
        })
    }

    fn complete(&self, claim: &Claim, ops: &[WriteOp]) -> Result<(), StoreError> {
        let claim = claim.clone();
        let ops = ops.to_vec();
        self.run(Kind::Write, move |c| {
            let mut tx = c.client.transaction()?;
            apply_batch(&mut tx, &c.st, &ops, Some(&claim))?;
            tx.commit()?;
            Ok(())
        })
    }

    fn release(&self, claim: &Claim, due_ms: i64) -> Result<(), StoreError> {
        let claim = claim.clone();
        self.run(Kind::Write, move |c| {
            let n = c.client.execute(
                &c.st.release,
                &[&claim.queue, &claim.id, &claim.token, &due_ms],
            )?;
            if n == 0 {
                return Err(Fail::Store(StoreError::Conflict));
            }
            Ok(())
        })
    }

    fn pending(&self, queue: &str) -> Result<usize, StoreError> {
        let queue = queue.to_owned();
        self.run(Kind::Read, move |c| {
            let n: i64 = c.client.query_one(&c.st.pending, &[&queue])?.try_get(0)?;
            Ok(usize::try_from(n).unwrap_or(0))
        })
    }

    fn counts(&self, queue: &str, now_ms: i64) -> Result<Counts, StoreError> {
        let queue = queue.to_owned();
        self.run(Kind::Read, move |c| {
            let row = c.client.query_one(
                "SELECT COUNT(*), \
                 COALESCE(SUM(CASE WHEN expires > $2 THEN 1 ELSE 0 END), 0)::bigint, \
                 COALESCE(SUM(CASE WHEN (expires IS NULL OR expires <= $2) AND due > $2 \
                 THEN 1 ELSE 0 END), 0)::bigint FROM work WHERE queue = $1",
                &[&queue, &now_ms],
            )?;
            Ok(Counts::from_totals(
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
            ))
        })
    }

    fn purge(&self, queue: &str) -> Result<usize, StoreError> {
        let queue = queue.to_owned();
        self.run(Kind::Write, move |c| {
            let n = c
                .client
                .execute("DELETE FROM work WHERE queue = $1", &[&queue])?;
            Ok(usize::try_from(n).unwrap_or(0))
        })
    }

    /// The database server's clock: every node sharing the database reads the same one.
    fn clock_ms(&self) -> Result<i64, StoreError> {
        self.run(Kind::Read, |c| {
            let ms: i64 = c
                .client
                .query_one(
                    "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
                    &[],
                )?
                .try_get(0)?;
            Ok(ms)
        })
    }
}

/// Test support: PostgreSQL from `BASALT_TEST_POSTGRES` (`make test-rust` and
/// `scripts/postgres.sh start` provide one), a fresh schema per store.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    static SCHEMA_SEQ: AtomicU64 = AtomicU64::new(0);

    /// The admin URL, or `None` with the reason printed (the test then passes, skipped).
    pub fn admin_url() -> Option<String> {
        match std::env::var("BASALT_TEST_POSTGRES") {
            Ok(u) if !u.is_empty() => Some(u),
            _ => {
                eprintln!(
                    "skipped: BASALT_TEST_POSTGRES is not set (`make test-rust` starts a \
                     PostgreSQL; or `eval $(scripts/postgres.sh env)`)"
                );
                None
            }
        }
    }

    /// Drops its schema when dropped (after the store using it).
    pub struct Schema {
        pub admin: String,
        pub name: String,
    }

    impl Drop for Schema {
        fn drop(&mut self) {
            if let Ok(mut c) = Client::connect(&self.admin, NoTls) {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
            }
        }
    }

    /// A fresh, empty schema; the URL that makes it the connections' search path.
    pub fn fresh_schema(admin: &str) -> (Schema, String) {
        let name = format!(
            "basalt_test_{}_{}_{}",
            std::process::id(),
            SCHEMA_SEQ.fetch_add(1, Ordering::Relaxed),
            &new_token()[..8]
        );
        let mut c = Client::connect(admin, NoTls).expect("connecting to BASALT_TEST_POSTGRES");
        c.batch_execute(&format!("CREATE SCHEMA {name}")).unwrap();
        let sep = if admin.contains('?') { '&' } else { '?' };
        let url = format!("{admin}{sep}options=-csearch_path%3D{name}");
        (
            Schema {
                admin: admin.to_owned(),
                name,
            },
            url,
        )
    }

    /// A store on a fresh schema, or `None` (skipped) without a configured server.
    pub fn open() -> Option<crate::contract::Backend> {
        let admin = admin_url()?;
        let (schema, url) = fresh_schema(&admin);
        let s = PgState::open(&url).expect("opening PgState");
        Some(crate::contract::Backend::new(s, schema))
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{admin_url, fresh_schema};
    use super::*;
    use std::io::{Read, Write};
    use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};

    mod postgres_contract {
        use crate::contract::state_contract_tests;
        state_contract_tests!(super::super::testing::open);
    }

    #[test]
    fn url_parsing() {
        let (c, n) = parse_url("postgres://u:secret@db.example:6543/basalt?pool_size=3").unwrap();
        assert_eq!(n, 3);
        assert_eq!(describe_target(&c), "db.example:6543/basalt");
        assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(5)));
        let (c, n) =
            parse_url("postgresql://u@h/db?connect_timeout=2&pool_size=2&application_name=x")
                .unwrap();
        assert_eq!((n, c.get_application_name()), (2, Some("x")));
        assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(2)));
        assert!(parse_url("mysql://h/db").is_err());
        assert!(parse_url("postgres://h/db?pool_size=0").is_err());
        let e = parse_url("postgres://u:secret@h/db?bogus=1").err().unwrap();
        assert!(!e.to_string().contains("secret"), "{e}");
        assert_eq!(
            redact("postgres://u:secret@h/db"),
            "postgres://u:***@h/db".to_owned()
        );
    }

    #[test]
    fn old_servers_are_refused() {
        let e = version_supported(110_022, "11.22", "h:5432/db").unwrap_err();
        assert_eq!(
            e.to_string(),
            "PostgreSQL 11.22 at h:5432/db is not supported: Basalt needs PostgreSQL 12 or newer"
        );
        version_supported(120_000, "12.0", "h").unwrap();
        version_supported(170_002, "17.2", "h").unwrap();
    }

    #[test]
    fn lock_ids_are_stable_sorted_and_distinct() {
        // Fixed across builds and nodes: a changed function would let two versions of Basalt
        // sharing one database skip each other's locks.
        assert_eq!(lock_id("t", "k"), lock_id("t", "k"));
        assert_ne!(lock_id("t", "k"), lock_id("tk", ""));
        assert_ne!(lock_id("t", "k"), lock_id("u", "k"));
        let put = |k: &str| WriteOp::Put {
            table: "t".into(),
            key: k.into(),
            value: vec![],
        };
        let ids = lock_ids(&[put("b"), put("a"), put("b")]);
        assert_eq!(ids.len(), 2);
        assert!(ids[0] < ids[1]);
    }

    #[test]
    fn nothing_listening_is_unavailable() {
        // A port nobody listens on: start fails at once with one line, no panic.
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let t = std::time::Instant::now();
        let err = PgState::open(&format!("postgres://basalt@127.0.0.1:{port}/db"))
            .err()
            .expect("nothing listens there");
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        let msg = err.to_string();
        assert!(!msg.contains('\n'), "{msg}");
        assert!(msg.contains(&format!("127.0.0.1:{port}/db")), "{msg}");
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    /// A TCP proxy in front of the test server. Its "outage" closes every connection and
    /// drops each new one at once (as a server that is down or restarting does) until
    /// `restore`; it stays bound, so that no other socket can take its port meanwhile.
    struct Proxy {
        addr: SocketAddr,
        down: Arc<std::sync::atomic::AtomicBool>,
        conns: Arc<Mutex<Vec<TcpStream>>>,
    }

    impl Proxy {
        fn start(upstream: SocketAddr) -> Proxy {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let p = Proxy {
                addr: listener.local_addr().unwrap(),
                down: Arc::default(),
                conns: Arc::default(),
            };
            let (conns, down) = (p.conns.clone(), p.down.clone());
            // Runs until the test process ends.
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    let Ok(client) = client else { continue };
                    if down.load(Ordering::SeqCst) {
                        let _ = client.shutdown(Shutdown::Both);
                        continue;
                    }
                    let Ok(server) = TcpStream::connect(upstream) else {
                        continue;
                    };
                    let mut g = conns.lock().unwrap();
                    g.push(client.try_clone().unwrap());
                    g.push(server.try_clone().unwrap());
                    for (mut from, mut to) in [
                        (client.try_clone().unwrap(), server.try_clone().unwrap()),
                        (server, client),
                    ] {
                        std::thread::spawn(move || {
                            let mut buf = [0u8; 16384];
                            while let Ok(n) = from.read(&mut buf) {
                                if n == 0 || to.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                            let _ = to.shutdown(Shutdown::Both);
                            let _ = from.shutdown(Shutdown::Both);
                        });
                    }
                }
            });
            p
        }

        fn outage(&self) {
            self.down.store(true, Ordering::SeqCst);
            for s in self.conns.lock().unwrap().drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }

        fn restore(&self) {
            self.down.store(false, Ordering::SeqCst);
        }
    }

    /// The same database through `addr` instead of the server's own address.
    fn url_via(url: &str, addr: SocketAddr) -> String {
        let (config, _) = parse_url(url).unwrap();
        let user = config.get_user().unwrap_or("postgres");
        let db = config.get_dbname().unwrap_or(user);
        let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
        format!("postgres://{user}@{addr}/{db}?{query}&connect_timeout=2&pool_size=2")
    }

    fn server_addr(url: &str) -> SocketAddr {
        let (config, _) = parse_url(url).unwrap();
        let host = match config.get_hosts().first() {
            Some(postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".into(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
            .unwrap()
            .next()
            .unwrap()
    }

    #[test]
    fn outage_gives_unavailable_then_service_resumes() {
        let Some(admin) = admin_url() else { return };
        let (_schema, url) = fresh_schema(&admin);
        let proxy = Proxy::start(server_addr(&admin));
        let s = PgState::open(&url_via(&url, proxy.addr)).unwrap();
        s.put("t", "before", b"1").unwrap();
        // Every pool connection exists before the outage.
        std::thread::scope(|sc| {
            for _ in 0..4 {
                sc.spawn(|| s.get("t", "before").unwrap());
            }
        });
        proxy.outage();
        for _ in 0..3 {
            match s.get("t", "before") {
                Err(StoreError::Unavailable(m)) => assert!(!m.contains('\n'), "{m}"),
                other => panic!("expected Unavailable, got {other:?}"),
            }
            assert!(matches!(
                s.put("t", "during", b"2"),
                Err(StoreError::Unavailable(_))
            ));
            assert!(matches!(
                s.claim("q", 0, 10, 1),
                Err(StoreError::Unavailable(_))
            ));
        }
        proxy.restore();
        // Every connection comes back: the first request after the outage succeeds.
        assert_eq!(s.get("t", "before").unwrap().as_deref(), Some(&b"1"[..]));
        s.put("t", "after", b"3").unwrap();
        std::thread::scope(|sc| {
            for _ in 0..4 {
                sc.spawn(|| {
                    s.batch(&[WriteOp::Put {
                        table: "t".into(),
                        key: "b".into(),
                        value: vec![],
                    }])
                    .unwrap()
                });
            }
        });
        assert_eq!(s.get("t", "during").unwrap(), None);
        proxy.outage();
    }

    #[test]
    fn terminated_sessions_reconnect_without_failing_requests() {
        let Some(admin) = admin_url() else { return };
        let (_schema, url) = fresh_schema(&admin);
        let s = PgState::open(&format!("{url}&application_name=basalt_reconnect_test")).unwrap();
        s.put("t", "k", b"v").unwrap();
        let mut c = Client::connect(&admin, NoTls).unwrap();
        for _ in 0..3 {
            // What a server restart does to every session: each gets a FATAL and is closed.
            c.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = 'basalt_reconnect_test'",
                &[],
            )
            .unwrap();
            // Idle past IDLE_CHECK, as connections are across a restart.
            std::thread::sleep(IDLE_CHECK + Duration::from_millis(50));
            // Writes too: the closed connection is noticed before the request is sent.
            s.put("t", "k", b"w").unwrap();
            assert_eq!(s.get("t", "k").unwrap().as_deref(), Some(&b"w"[..]));
            s.batch(&[WriteOp::Delete {
                table: "t".into(),
                key: "x".into(),
            }])
            .unwrap();
        }
    }

    #[test]
    fn usable_from_inside_a_tokio_runtime() {
        let Some(admin) = admin_url() else { return };
        let (_schema, url) = fresh_schema(&admin);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            // Opening and calling on a runtime thread, as services do for reads.
            let s = PgState::open(&url).unwrap();
            s.put("t", "k", b"v").unwrap();
            assert_eq!(s.get("t", "k").unwrap().as_deref(), Some(&b"v"[..]));
        });
    }

    #[test]
    fn nodes_starting_together_migrate_once() {
        let Some(admin) = admin_url() else { return };
        let (schema, url) = fresh_schema(&admin);
        let stores: Vec<PgState> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..4)
                .map(|_| sc.spawn(|| PgState::open(&url).unwrap()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        stores[0].put("t", "k", b"v").unwrap();
        for s in &stores {
            assert_eq!(s.get("t", "k").unwrap().as_deref(), Some(&b"v"[..]));
        }
        let mut c = Client::connect(&admin, NoTls).unwrap();
        let versions: Vec<i32> = c
            .query(
                &format!(
                    "SELECT version FROM {}.basalt_schema_migrations",
                    schema.name
                ),
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(versions, vec![1, 2]);
        // A schema from a newer Basalt is refused with one line.
        c.execute(
            &format!(
                "INSERT INTO {}.basalt_schema_migrations (version) VALUES (999)",
                schema.name
            ),
            &[],
        )
        .unwrap();
        let e = PgState::open(&url).err().unwrap().to_string();
        assert!(e.contains("newer than this Basalt"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn writes_are_visible_to_another_node_at_once() {
        let Some(admin) = admin_url() else { return };
        let (_schema, url) = fresh_schema(&admin);
        let (a, b) = (PgState::open(&url).unwrap(), PgState::open(&url).unwrap());
        for i in 0..50 {
            let k = format!("k{i}");
            a.put("t", &k, k.as_bytes()).unwrap();
            assert_eq!(b.get("t", &k).unwrap(), Some(k.clone().into_bytes()));
            b.batch(&[WriteOp::Check {
                table: "t".into(),
                key: k.clone(),
                expected: Some(k.clone().into_bytes()),
            }])
            .unwrap();
        }
        a.enqueue("q", "x", b"", 0).unwrap();
        let c = b.claim("q", 0, 1_000, 1).unwrap().remove(0);
        assert!(a.claim("q", 0, 1_000, 1).unwrap().is_empty(), "leased by b");
        a.complete(&c, &[]).unwrap();
        assert_eq!(b.pending("q").unwrap(), 0);
    }
}
