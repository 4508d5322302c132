//! Copies a data directory's SQLite state into another state store (`basalt migrate`), for a
//! team moving from one node to PostgreSQL. Offline: run it while no server uses either store.
//!
//! Records are upserted in batches, so a migration that was interrupted can simply be run
//! again. Work items keep their payload and due time; leases are not carried over (no claimer
//! survives the move), so every item is claimable again at its due time.

use crate::{SqliteState, StateStore, StoreError, WriteOp};
use rusqlite::params;

/// Records per target transaction.
const BATCH: usize = 500;

/// What a migration copied.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Copied {
    pub records: u64,
    pub work_items: u64,
    pub bytes: u64,
}

/// Copies every record and work item of `from` into `to`.
pub fn copy_state(from: &SqliteState, to: &dyn StateStore) -> Result<Copied, StoreError> {
    let mut copied = Copied::default();
    let mut ops: Vec<WriteOp> = Vec::with_capacity(BATCH);
    let flush = |ops: &mut Vec<WriteOp>| -> Result<(), StoreError> {
        if !ops.is_empty() {
            to.batch(ops)?;
            ops.clear();
        }
        Ok(())
    };
    // Keyset pagination over the primary key: bounded memory whatever the store's size.
    let mut after: Option<(String, Vec<u8>)> = None;
    loop {
        let page: Vec<(String, Vec<u8>, Vec<u8>)> = from.read(|c| {
            let map = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, r.get(1)?, r.get(2)?));
            let rows = match &after {
                None => c
                    .prepare("SELECT tbl, key, value FROM kv ORDER BY tbl, key LIMIT ?1")?
                    .query_map(params![BATCH as i64], map)?
                    .collect::<Result<Vec<_>, _>>()?,
                Some((t, k)) => c
                    .prepare(
                        "SELECT tbl, key, value FROM kv WHERE (tbl, key) > (?1, ?2) \
                         ORDER BY tbl, key LIMIT ?3",
                    )?
                    .query_map(params![t, k, BATCH as i64], map)?
                    .collect::<Result<Vec<_>, _>>()?,
            };
            Ok(rows)
        })?;
        let Some(last) = page.last() else { break };
        after = Some((last.0.clone(), last.1.clone()));
        for (table, key, value) in page {
            let key = String::from_utf8(key)
                .map_err(|_| StoreError::Other(format!("a key of table {table} is not UTF-8")))?;
            copied.records += 1;
            copied.bytes += value.len() as u64;
            ops.push(WriteOp::Put { table, key, value });
        }
        flush(&mut ops)?;
    }
    let work: Vec<(String, String, Vec<u8>, i64)> = from.read(|c| {
        Ok(
            c.prepare("SELECT queue, id, payload, due FROM work ORDER BY queue, id")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<Vec<_>, _>>()?,
        )
    })?;
    for (queue, id, payload, due_ms) in work {
        copied.work_items += 1;
        ops.push(WriteOp::Enqueue {
            queue,
            id,
            payload,
            due_ms,
        });
        if ops.len() >= BATCH {
            flush(&mut ops)?;
        }
    }
    flush(&mut ops)?;
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryState;

    fn fill(s: &SqliteState, n: usize) {
        for i in 0..n {
            s.put(
                &format!("t{}", i % 3),
                &format!("k\u{1}{i:05}"),
                format!("v{i}").as_bytes(),
            )
            .unwrap();
        }
        s.enqueue("q", "a", b"job", 42).unwrap();
        s.enqueue("q", "b", b"job2", 7).unwrap();
        s.claim("q", 100, 1_000, 1).unwrap();
    }

    fn assert_same(from: &SqliteState, to: &dyn StateStore, n: usize) {
        for t in ["t0", "t1", "t2"] {
            assert_eq!(
                from.scan(t, "", None, n + 1).unwrap(),
                to.scan(t, "", None, n + 1).unwrap(),
                "table {t}"
            );
        }
        assert_eq!(to.pending("q").unwrap(), 2);
        // Leases are not carried over: both items are claimable at their due times.
        let claimed = to.claim("q", 42, 1_000, 5).unwrap();
        assert_eq!(
            claimed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            vec!["b", "a"]
        );
    }

    #[test]
    fn copies_every_record_and_work_item_and_can_run_again() {
        let dir = tempfile::tempdir().unwrap();
        let from = SqliteState::open(&dir.path().join("s.db")).unwrap();
        fill(&from, 1_234);
        let to = MemoryState::default();
        let copied = copy_state(&from, &to).unwrap();
        assert_eq!((copied.records, copied.work_items), (1_234, 2));
        // Interrupted or not, a second run converges to the same state.
        copy_state(&from, &to).unwrap();
        assert_same(&from, &to, 1_234);
    }

    #[test]
    fn copies_into_postgres() {
        let Some(admin) = crate::pg::testing::admin_url() else {
            return;
        };
        let (_schema, url) = crate::pg::testing::fresh_schema(&admin);
        let dir = tempfile::tempdir().unwrap();
        let from = SqliteState::open(&dir.path().join("s.db")).unwrap();
        fill(&from, 1_234);
        let to = crate::PgState::open(&url).unwrap();
        let copied = copy_state(&from, &to).unwrap();
        assert_eq!(copied.records, 1_234);
        assert_same(&from, &to, 1_234);
    }
}
