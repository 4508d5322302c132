//! Background work on the store's leases: sweeping what a deleted table or index left behind,
//! and backfilling a global secondary index created on a table that already has items.
//!
//! Every job is idempotent, so a job whose node died is simply run again by whichever node
//! claims it next.

use basalt_store::{Claim, StoreError, WriteOp};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::sync::Notify;

use crate::DynamoDb;
use crate::keys::{self, upper};
use crate::model::{INDEXES, ITEMS, IndexRec, JOBS, STREAM, TABLES, TableRec, now_ms};
use crate::write::decode;

const LEASE_MS: i64 = 60_000;
/// Records deleted or entries written per batch.
const CHUNK: usize = 256;
/// A deleted table's stream stays readable this long, as on AWS.
const STREAM_RETENTION_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Job {
    /// Deletes every record of `store` under each prefix.
    Sweep { ranges: Vec<(String, String)> },
    /// Writes the index entries of every item of table `key` (a `TABLES` key) for `index`,
    /// then marks the index ACTIVE.
    Backfill {
        key: String,
        uid: String,
        index: String,
    },
}

static WAKE: LazyLock<Notify> = LazyLock::new(Notify::new);

/// Wakes this node's worker (new jobs were just committed).
pub fn wake() {
    WAKE.notify_one();
}

fn enqueue(id: String, job: &Job, due_ms: i64) -> WriteOp {
    WriteOp::Enqueue {
        queue: JOBS.into(),
        id,
        payload: serde_json::to_vec(job).unwrap_or_default(),
        due_ms,
    }
}

/// The jobs that clear a deleted table: items and index entries now, its streams a day later.
pub fn sweep_table(t: &TableRec) -> Vec<WriteOp> {
    let prefix = keys::table_prefix(t);
    let mut ops = vec![enqueue(
        format!("sweep/{}", t.uid),
        &Job::Sweep {
            ranges: vec![(ITEMS.into(), prefix.clone()), (INDEXES.into(), prefix)],
        },
        0,
    )];
    let streams: Vec<(String, String)> = t
        .stream
        .iter()
        .chain(&t.old_streams)
        .map(|s| (STREAM.to_owned(), format!("{}/", s.uid)))
        .collect();
    if !streams.is_empty() {
        ops.push(enqueue(
            format!("sweep-streams/{}", t.uid),
            &Job::Sweep { ranges: streams },
            now_ms() + STREAM_RETENTION_MS,
        ));
    }
    ops
}

/// The job that clears a dropped index's entries.
pub fn sweep_index(t: &TableRec, ix: &IndexRec) -> Vec<WriteOp> {
    vec![enqueue(
        format!("sweep/{}/{}", t.uid, ix.name),
        &Job::Sweep {
            ranges: vec![(INDEXES.into(), keys::index_prefix(t, ix))],
        },
        0,
    )]
}

/// The job that fills a new index from the table's items.
pub fn backfill(t: &TableRec, ix: &IndexRec) -> Vec<WriteOp> {
    vec![enqueue(
        format!("backfill/{}/{}", t.uid, ix.name),
        &Job::Backfill {
            key: TableRec::key(&t.account, &t.region, &t.name),
            uid: t.uid.clone(),
            index: ix.name.clone(),
        },
        0,
    )]
}

pub fn start_worker(d: Arc<DynamoDb>) {
    tokio::spawn(async move {
        loop {
            let claimed = d
                .state
                .clock_ms()
                .and_then(|now| d.state.claim(JOBS, now, LEASE_MS, 1))
                .unwrap_or_default();
            match claimed.into_iter().next() {
                Some(claim) => {
                    let d2 = d.clone();
                    let outcome =
                        tokio::task::spawn_blocking(move || run(&d2, &claim).map(|()| claim)).await;
                    match outcome {
                        Ok(Ok(claim)) => {
                            let _ = d.state.complete(&claim, &[]);
                        }
                        Ok(Err(e)) => {
                            tracing::warn!("dynamodb background job failed, will retry: {e}");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                        Err(e) => tracing::error!("dynamodb background job panicked: {e}"),
                    }
                }
                None => {
                    tokio::select! {
                        _ = WAKE.notified() => {}
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    }
                }
            }
        }
    });
}

fn run(d: &DynamoDb, claim: &Claim) -> Result<(), StoreError> {
    let job: Job = serde_json::from_slice(&claim.payload)
        .map_err(|e| StoreError::Other(format!("corrupt job: {e}")))?;
    match job {
        Job::Sweep { ranges } => {
            for (store, prefix) in ranges {
                let hi = upper(&prefix);
                loop {
                    let rows = d.state.range(&store, &prefix, &hi, false, CHUNK)?;
                    if rows.is_empty() {
                        break;
                    }
                    let ops: Vec<WriteOp> = rows
                        .into_iter()
                        .map(|(key, _)| WriteOp::Delete {
                            table: store.clone(),
                            key,
                        })
                        .collect();
                    d.state.batch(&ops)?;
                    d.state.renew(claim, d.state.clock_ms()?, LEASE_MS)?;
                }
            }
            Ok(())
        }
        Job::Backfill { key, uid, index } => backfill_index(d, claim, &key, &uid, &index),
    }
}

fn load_table(d: &DynamoDb, key: &str) -> Result<Option<TableRec>, StoreError> {
    let Some(raw) = d.state.get(TABLES, key)? else {
        return Ok(None);
    };
    let mut t: TableRec = serde_json::from_slice(&raw)
        .map_err(|e| StoreError::Other(format!("corrupt table: {e}")))?;
    t.stored = raw;
    Ok(Some(t))
}

fn backfill_index(
    d: &DynamoDb,
    claim: &Claim,
    key: &str,
    uid: &str,
    index: &str,
) -> Result<(), StoreError> {
    let creating =
        |t: &TableRec| t.uid == uid && t.index(index).is_some_and(|i| i.status == "CREATING");
    let Some(t) = load_table(d, key)?.filter(creating) else {
        return Ok(()); // the table or the index went away meanwhile
    };
    let Some(ix) = t.index(index).cloned() else {
        return Ok(());
    };
    let prefix = keys::table_prefix(&t);
    let hi = upper(&prefix);
    let mut lo = prefix;
    loop {
        let rows = d.state.range(ITEMS, &lo, &hi, false, CHUNK)?;
        let Some((last, _)) = rows.last() else { break };
        let next = format!("{last}\u{0}");
        // Each entry is written only if its item is still as read; writers that committed
        // after the index appeared keep their own entries, so a conflict only means reading
        // this chunk again.
        let mut ops = Vec::with_capacity(rows.len() * 2);
        for (k, raw) in &rows {
            let item = decode(raw).map_err(|e| StoreError::Other(e.message))?;
            if let Some(ik) = keys::index_key(&t, &ix, &item) {
                ops.push(WriteOp::Check {
                    table: ITEMS.into(),
                    key: k.clone(),
                    expected: Some(raw.clone()),
                });
                ops.push(WriteOp::Put {
                    table: INDEXES.into(),
                    key: ik,
                    value: crate::write::encode(&ix.project(&t.key, &item)),
                });
            }
        }
        match d.state.batch(&ops) {
            Ok(()) => lo = next,
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e),
        }
        d.state.renew(claim, d.state.clock_ms()?, LEASE_MS)?;
    }
    // Done: the index serves reads from now on.
    loop {
        let Some(mut t) = load_table(d, key)?.filter(creating) else {
            return Ok(());
        };
        let check = t.unchanged();
        for i in t.indexes.iter_mut().filter(|i| i.name == index) {
            i.status = "ACTIVE".into();
        }
        let raw = serde_json::to_vec(&t).map_err(|e| StoreError::Other(e.to_string()))?;
        match d.state.batch(&[
            check,
            WriteOp::Put {
                table: TABLES.into(),
                key: key.to_owned(),
                value: raw,
            },
        ]) {
            Ok(()) => return Ok(()),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e),
        }
    }
}
