//! Stream retention: records are kept 24 hours, as on AWS. A recurring work item of the
//! store's leases deletes every stream's records older than that, one node at a time, and
//! forgets a disabled stream once it is past the retention period and holds no records.
//!
//! Readers never depend on the sweep: GetRecords treats anything older than the retention
//! period as trimmed whether or not it was deleted yet. `BASALT_DYNAMODB_STREAM_RETENTION_SECS`
//! shortens the period (tests).

use basalt_store::{Claim, StoreError, WriteOp};
use std::sync::Arc;

use super::locate::label_ms;
use super::records::{now_micros, trim_point};
use super::seq_at;
use crate::DynamoDb;
use crate::model::{STREAM, StreamRec, TABLES, TableRec};

const QUEUE: &str = "dynamodb.stream-retention";
const ID: &str = "trim";
const LEASE_MS: i64 = 120_000;
const CHUNK: usize = 256;
const DEFAULT_RETENTION_MS: i64 = 24 * 3600 * 1000;

/// How long stream records are kept.
pub fn retention_ms() -> i64 {
    basalt_store::ms_from_secs_env(
        "BASALT_DYNAMODB_STREAM_RETENTION_SECS",
        DEFAULT_RETENTION_MS,
    )
}

/// How often the sweep runs: often enough that a stream is never much more than its
/// retention period long, at most once a minute.
fn period_ms() -> i64 {
    (retention_ms() / 4).clamp(200, 60_000)
}

pub fn start_worker(d: Arc<DynamoDb>) {
    let state = d.state.clone();
    basalt_store::leases::spawn_recurring(state, QUEUE, ID, LEASE_MS, period_ms, move |claim| {
        sweep(&d, claim)
    });
}

fn sweep(d: &DynamoDb, claim: &Claim) -> Result<(), StoreError> {
    let cutoff = trim_point(now_micros(), retention_ms());
    let mut after: Option<String> = None;
    loop {
        let tables = d.state.scan(TABLES, "", after.as_deref(), 100)?;
        let Some((last, _)) = tables.last() else {
            return Ok(());
        };
        after = Some(last.clone());
        for (key, raw) in &tables {
            let Ok(mut t) = serde_json::from_slice::<TableRec>(raw) else {
                continue;
            };
            t.stored = raw.clone();
            for s in t.stream.iter().chain(&t.old_streams) {
                trim(d, &s.uid, cutoff)?;
                d.state.renew(claim, d.state.clock_ms()?, LEASE_MS)?;
            }
            forget_expired(d, key, &t, cutoff)?;
        }
    }
}

/// Deletes the records of stream `uid` older than `cutoff` (microseconds).
fn trim(d: &DynamoDb, uid: &str, cutoff: u64) -> Result<(), StoreError> {
    let lo = format!("{uid}/");
    let hi = format!("{uid}/{}", seq_at(cutoff));
    loop {
        let rows = d.state.range(STREAM, &lo, &hi, false, CHUNK)?;
        if rows.is_empty() {
            return Ok(());
        }
        let ops: Vec<WriteOp> = rows
            .into_iter()
            .map(|(key, _)| WriteOp::Delete {
                table: STREAM.into(),
                key,
            })
            .collect();
        d.state.batch(&ops)?;
    }
}

/// A disabled stream is listed until its records are gone: once it was created before the
/// cutoff and has no records left, the table stops naming it (but for the last one of a table
/// without a stream, which DescribeTable still shows as its latest).
fn gone(d: &DynamoDb, s: &StreamRec, cutoff: u64) -> Result<bool, StoreError> {
    let created = label_ms(&s.label).unwrap_or(0).max(0) as u64 * 1000;
    if s.enabled || created >= cutoff {
        return Ok(false);
    }
    let prefix = format!("{}/", s.uid);
    Ok(d.state
        .range(STREAM, &prefix, &crate::keys::upper(&prefix), false, 1)?
        .is_empty())
}

fn forget_expired(d: &DynamoDb, key: &str, t: &TableRec, cutoff: u64) -> Result<(), StoreError> {
    let mut keep = Vec::with_capacity(t.old_streams.len());
    let n = t.old_streams.len();
    for (i, s) in t.old_streams.iter().enumerate() {
        let latest = t.stream.is_none() && i + 1 == n;
        if latest || !gone(d, s, cutoff)? {
            keep.push(s.clone());
        }
    }
    if keep.len() == t.old_streams.len() {
        return Ok(());
    }
    let mut updated = t.clone();
    updated.old_streams = keep;
    let raw = serde_json::to_vec(&updated).map_err(|e| StoreError::Other(e.to_string()))?;
    match d.state.batch(&[
        t.unchanged(),
        WriteOp::Put {
            table: TABLES.into(),
            key: key.to_owned(),
            value: raw,
        },
    ]) {
        // Changed meanwhile: the next sweep looks again.
        Ok(()) | Err(StoreError::Conflict) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::format_seq;
    use basalt_store::Store;

    fn seeded(uid: &str, seqs: &[u64]) -> Arc<DynamoDb> {
        let s = Store::ephemeral();
        for seq in seqs {
            s.state
                .put(STREAM, &format!("{uid}/{}", format_seq(*seq)), b"{}")
                .unwrap();
        }
        DynamoDb::new(s.state)
    }

    fn left(d: &DynamoDb, uid: &str) -> Vec<String> {
        d.state
            .scan(STREAM, &format!("{uid}/"), None, 100)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    #[test]
    fn trimming_deletes_only_what_is_older_than_the_cutoff() {
        let d = seeded("u", &[10, 20, 30, 40]);
        d.state
            .put(STREAM, &format!("w/{}", format_seq(5)), b"{}")
            .unwrap();
        trim(&d, "u", 30).unwrap();
        assert_eq!(
            left(&d, "u"),
            [
                format!("u/{}", format_seq(30)),
                format!("u/{}", format_seq(40))
            ]
        );
        // Another stream is untouched.
        assert_eq!(left(&d, "w").len(), 1);
    }

    #[test]
    fn a_disabled_stream_is_forgotten_once_empty_and_expired() {
        let d = seeded("old", &[]);
        let s = |enabled, label: &str| StreamRec {
            enabled,
            view_type: "KEYS_ONLY".into(),
            label: label.into(),
            uid: "old".into(),
        };
        let created = label_ms("2020-01-01T00:00:00.000").unwrap() as u64 * 1000;
        assert!(gone(&d, &s(false, "2020-01-01T00:00:00.000"), created + 1).unwrap());
        // Not yet past the cutoff, or still enabled: kept.
        assert!(!gone(&d, &s(false, "2020-01-01T00:00:00.000"), created).unwrap());
        assert!(!gone(&d, &s(true, "2020-01-01T00:00:00.000"), created + 1).unwrap());
        // Records left: kept until they are trimmed.
        d.state
            .put(STREAM, &format!("old/{}", format_seq(created + 5)), b"{}")
            .unwrap();
        assert!(!gone(&d, &s(false, "2020-01-01T00:00:00.000"), created + 1).unwrap());
    }

    #[test]
    fn retention_comes_from_the_environment_for_tests() {
        // Read each time, so a test can set it; the default is AWS's 24 hours.
        if std::env::var("BASALT_DYNAMODB_STREAM_RETENTION_SECS").is_err() {
            assert_eq!(retention_ms(), 24 * 3600 * 1000);
        }
        assert!((200..=60_000).contains(&period_ms()));
    }
}
