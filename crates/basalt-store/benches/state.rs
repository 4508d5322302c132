//! The state engine decision, measured on Basalt's access patterns: durable single-key
//! writes (every acknowledged PUT/SendMessage), point reads (GET/HEAD, lookups) and ordered
//! prefix scans of 100 keys out of 10,000 (listings, queue and history pages).
//!
//! `cargo bench -p basalt-store --bench state` compares `SqliteState` (what Basalt uses) with
//! redb, a pure-Rust B-tree KV, behind the same operations, both fully durable.

use basalt_store::{SqliteState, StateStore};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use redb::{Database, TableDefinition};
use std::hint::black_box;

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");

fn redb_put(db: &Database, key: &str, value: &[u8]) {
    let tx = db.begin_write().unwrap();
    tx.open_table(TABLE).unwrap().insert(key, value).unwrap();
    tx.commit().unwrap();
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteState::open(&dir.path().join("state.sqlite")).unwrap();
    let redb = Database::create(dir.path().join("state.redb")).unwrap();
    let value = vec![7u8; 1024];
    for i in 0..10_000 {
        let key = format!("acct/region/bucket/{:02}/obj{i:05}", i % 100);
        sqlite.put("objects", &key, &value).unwrap();
        redb_put(&redb, &key, &value);
    }

    let mut g = c.benchmark_group("durable_put_1KiB");
    let mut n = 0u64;
    g.bench_function(BenchmarkId::new("sqlite", ""), |b| {
        b.iter(|| {
            n += 1;
            sqlite.put("objects", &format!("new/{n}"), &value).unwrap()
        })
    });
    g.bench_function(BenchmarkId::new("redb", ""), |b| {
        b.iter(|| {
            n += 1;
            redb_put(&redb, &format!("new/{n}"), &value)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("point_get");
    g.bench_function(BenchmarkId::new("sqlite", ""), |b| {
        b.iter(|| {
            black_box(
                sqlite
                    .get("objects", "acct/region/bucket/42/obj04242")
                    .unwrap(),
            )
        })
    });
    g.bench_function(BenchmarkId::new("redb", ""), |b| {
        b.iter(|| {
            let tx = redb.begin_read().unwrap();
            let t = tx.open_table(TABLE).unwrap();
            black_box(
                t.get("acct/region/bucket/42/obj04242")
                    .unwrap()
                    .map(|v| v.value().to_vec()),
            )
        })
    });
    g.finish();

    let mut g = c.benchmark_group("prefix_scan_100");
    g.bench_function(BenchmarkId::new("sqlite", ""), |b| {
        b.iter(|| {
            black_box(
                sqlite
                    .scan("objects", "acct/region/bucket/42/", None, 1000)
                    .unwrap()
                    .len(),
            )
        })
    });
    g.bench_function(BenchmarkId::new("redb", ""), |b| {
        b.iter(|| {
            let tx = redb.begin_read().unwrap();
            let t = tx.open_table(TABLE).unwrap();
            let out: Vec<(String, Vec<u8>)> = t
                .range("acct/region/bucket/42/".."acct/region/bucket/420")
                .unwrap()
                .map(|r| {
                    let (k, v) = r.unwrap();
                    (k.value().to_owned(), v.value().to_vec())
                })
                .collect();
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
