//! Leases per second on SQLite and (with `BASALT_TEST_POSTGRES`) PostgreSQL: how fast work
//! items are claimed, and claimed + completed, by 1 and 4 workers.
//!
//! `cargo bench -p basalt-store --bench leases` (`make bench-storage` runs it with a throwaway
//! PostgreSQL). Durable on both backends (SQLite `synchronous=FULL`, PostgreSQL `fsync=on`).

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use basalt_store::{PgState, SqliteState, StateStore, WriteOp};

const ITEMS: usize = 5_000;
const BATCH: usize = 32;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn fill(store: &dyn StateStore, queue: &str) {
    let due = now_ms();
    let ids: Vec<usize> = (0..ITEMS).collect();
    for chunk in ids.chunks(1000) {
        let ops: Vec<WriteOp> = chunk
            .iter()
            .map(|i| WriteOp::Enqueue {
                queue: queue.into(),
                id: format!("{i:06}"),
                payload: vec![0u8; 64],
                due_ms: due,
            })
            .collect();
        store.batch(&ops).unwrap();
    }
}

/// Items per second that `workers` threads claim (and complete, if `complete`).
fn run(store: &Arc<dyn StateStore>, queue: &str, workers: usize, complete: bool) -> f64 {
    fill(store.as_ref(), queue);
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let claims = store.claim(queue, now_ms(), 600_000, BATCH).unwrap();
                    if claims.is_empty() {
                        return;
                    }
                    if complete {
                        for c in &claims {
                            store.complete(c, &[]).unwrap();
                        }
                    }
                }
            });
        }
    });
    ITEMS as f64 / t.elapsed().as_secs_f64()
}

fn report(name: &str, store: Arc<dyn StateStore>) {
    for workers in [1, 4] {
        let claimed = run(&store, &format!("claim-{workers}"), workers, false);
        let done = run(&store, &format!("done-{workers}"), workers, true);
        println!(
            "{name:<10} {workers} worker(s): {claimed:>8.0} items claimed/s (batches of {BATCH}), \
             {done:>6.0} claimed+completed/s"
        );
    }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    report(
        "sqlite",
        Arc::new(SqliteState::open(&dir.path().join("state.sqlite3")).unwrap()),
    );
    match std::env::var("BASALT_TEST_POSTGRES") {
        Ok(admin) if !admin.is_empty() => {
            let schema = format!("basalt_bench_{}", std::process::id());
            let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
            c.batch_execute(&format!("CREATE SCHEMA {schema}")).unwrap();
            let sep = if admin.contains('?') { '&' } else { '?' };
            let url = format!("{admin}{sep}options=-csearch_path%3D{schema}");
            report("postgresql", Arc::new(PgState::open(&url).unwrap()));
            c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                .unwrap();
        }
        _ => println!("postgresql: BASALT_TEST_POSTGRES not set, skipped"),
    }
}
