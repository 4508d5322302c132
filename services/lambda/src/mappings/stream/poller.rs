//! The poller of one stream mapping, run by the node that holds the mapping's lease.
//!
//! It reads the shard through the registry's `dynamodbstreams` (DescribeStream,
//! GetShardIterator, GetRecords), starting after the checkpoint (or at the mapping's starting
//! position before the first batch), gathers up to `BatchSize` records within
//! `MaximumBatchingWindowInSeconds`, drops what matches no filter, hands the rest to
//! [`batch::run`] and then moves the checkpoint past what was handled, in one transaction with
//! the on-failure records that handling produced. A closed shard (the stream was disabled or
//! its table deleted) is read to its end, after which the mapping has nothing left to do.

use super::super::{BACKOFF, Mapping, compile, load, passes};
use super::batch::{self, seq_of};
use super::{Position, forget_op, load_position, position_op, shard_of, streams_call};
use crate::Lambda;
use basalt_core::AwsError;
use basalt_store::Claim;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Between two reads that found nothing (AWS polls a shard four times a second).
const IDLE_POLL: Duration = Duration::from_millis(250);
/// A batch stops growing past this many bytes of records (the synchronous payload is 6 MB).
const MAX_BATCH_BYTES: usize = 5_500_000;
/// GetRecords returns at most this many records.
const MAX_PAGE: usize = 1000;
/// A saved starting iterator is used on restart while younger than this (iterators live 15
/// minutes); an idle mapping that has handled nothing yet saves its current one this often.
const START_MAX_AGE_MS: i64 = 10 * 60 * 1000;

/// Where the poller is in the shard.
struct Reader {
    shard: String,
    /// `None`: the shard is closed and was read to its end.
    iterator: Option<String>,
    position: Position,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn iterator(
    l: &Lambda,
    m: &Mapping,
    shard: &str,
    kind: &str,
    seq: Option<&str>,
) -> Result<String, AwsError> {
    let mut input = json!({"StreamArn": m.source_arn, "ShardId": shard, "ShardIteratorType": kind});
    if let Some(s) = seq {
        input["SequenceNumber"] = json!(s);
    }
    let out = streams_call(l, &m.source_arn, "GetShardIterator", input).await?;
    out["ShardIterator"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| AwsError::internal("GetShardIterator answered no iterator"))
}

/// Opens the shard where the mapping left off.
async fn open(l: &Lambda, m: &Mapping, key: &str) -> Result<Reader, AwsError> {
    let shard = shard_of(l, &m.source_arn).await?;
    let mut position = load_position(l, key)?;
    let start = m
        .stream
        .as_ref()
        .map_or("TRIM_HORIZON", |s| s.starting_position.as_str());
    let it = if let Some(seq) = position.after.clone() {
        match iterator(l, m, &shard, "AFTER_SEQUENCE_NUMBER", Some(&seq)).await {
            Ok(t) => t,
            // The records after the checkpoint expired while nothing read them: go on with
            // the oldest still there, as Lambda does.
            Err(e) if e.code == "TrimmedDataAccessException" => {
                tracing::warn!(mapping = %m.uuid, "records after the checkpoint expired unread");
                iterator(l, m, &shard, "TRIM_HORIZON", None).await?
            }
            Err(e) => return Err(e),
        }
    } else if let Some((t, _)) = position
        .start
        .clone()
        .filter(|(_, at)| now_ms() - at < START_MAX_AGE_MS)
    {
        t
    } else {
        let t = iterator(l, m, &shard, start, None).await?;
        if start == "LATEST" {
            position.start = Some((t.clone(), now_ms()));
            l.state.batch(&[position_op(key, &position)])?;
        }
        t
    };
    Ok(Reader {
        shard,
        iterator: Some(it),
        position,
    })
}

/// Up to `BatchSize` records from the reader's iterator, and the iterator after them.
async fn gather(
    l: &Lambda,
    m: &Mapping,
    from: &str,
) -> Result<(Vec<Value>, Option<String>), AwsError> {
    let want = m.batch_size.max(1) as usize;
    let window = Duration::from_secs(u64::from(m.window_s));
    let mut deadline: Option<tokio::time::Instant> = None;
    let mut out: Vec<Value> = Vec::new();
    let mut bytes = 0usize;
    let mut it = Some(from.to_owned());
    while let Some(current) = it.clone() {
        let ask = (want - out.len()).min(MAX_PAGE);
        let page = streams_call(
            l,
            &m.source_arn,
            "GetRecords",
            json!({"ShardIterator": current, "Limit": ask}),
        )
        .await?;
        let records = page["Records"].as_array().cloned().unwrap_or_default();
        let full = records.len() == ask;
        for mut r in records {
            bytes += r.to_string().len();
            r["eventSourceARN"] = json!(m.source_arn);
            out.push(r);
        }
        it = page["NextShardIterator"].as_str().map(str::to_owned);
        if out.is_empty() || out.len() >= want || bytes >= MAX_BATCH_BYTES {
            break;
        }
        if full {
            continue;
        }
        if window.is_zero() {
            break;
        }
        let until = *deadline.get_or_insert_with(|| tokio::time::Instant::now() + window);
        let now = tokio::time::Instant::now();
        if now >= until {
            break;
        }
        tokio::time::sleep(IDLE_POLL.min(until - now)).await;
    }
    Ok((out, it))
}

/// Keeps the lease while polling; `lost` says when it could not be renewed.
fn renew(l: &Lambda, claim: &Claim, lost: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    let (state, claim, lease_ms) = (l.state.clone(), claim.clone(), l.config.lease_ms);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis((lease_ms / 3).max(1) as u64)).await;
            let (state, claim) = (state.clone(), claim.clone());
            let ok = tokio::task::spawn_blocking(move || {
                let now = state.clock_ms()?;
                state.renew(&claim, now, lease_ms)
            })
            .await;
            if !matches!(ok, Ok(Ok(_))) {
                lost.store(true, Ordering::Relaxed);
                return;
            }
        }
    })
}

/// Polls the stream mapping `key` while this node holds its lease.
pub(crate) async fn poll(l: Arc<Lambda>, claim: Claim, key: String) {
    let lost = Arc::new(AtomicBool::new(false));
    let renewer = renew(&l, &claim, lost.clone());
    let mut reader: Option<Reader> = None;
    while !lost.load(Ordering::Relaxed) {
        let m = match load(&l, &key) {
            Ok(Some(m)) if m.enabled && m.stream.is_some() => m,
            Ok(None) => {
                // Deleted: its checkpoint goes with its work item.
                let _ = l.state.complete(&claim, &[forget_op(&key)]);
                break;
            }
            Ok(Some(_)) => {
                let _ = l.state.complete(&claim, &[]);
                break;
            }
            Err(e) => {
                tracing::warn!("reading event source mapping {key}: {}", e.message);
                tokio::time::sleep(BACKOFF).await;
                continue;
            }
        };
        let mut r = match reader.take() {
            Some(r) => r,
            None => match open(&l, &m, &key).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(mapping = %m.uuid, "opening {}: {}: {}", m.source_arn, e.code, e.message);
                    tokio::time::sleep(BACKOFF).await;
                    continue;
                }
            },
        };
        let Some(from) = r.iterator.clone() else {
            // A closed shard read to its end: nothing will ever come.
            reader = Some(r);
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let (records, next) = match gather(&l, &m, &from).await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(mapping = %m.uuid, "reading {}: {}: {}", m.source_arn, e.code, e.message);
                // An expired or trimmed iterator is simply opened again from the checkpoint.
                if !matches!(
                    e.code.as_str(),
                    "ExpiredIteratorException" | "TrimmedDataAccessException"
                ) {
                    tokio::time::sleep(BACKOFF).await;
                }
                continue;
            }
        };
        if records.is_empty() {
            r.iterator = next;
            if let Some(it) = &r.iterator {
                keep_start(&l, &key, &mut r.position, it);
            }
            reader = Some(r);
            tokio::time::sleep(IDLE_POLL).await;
            continue;
        }
        let keep_going = || {
            !lost.load(Ordering::Relaxed)
                && load(&l, &key).ok().flatten().is_some_and(|c| c.enabled)
        };
        let (handled, sends, failed) = handle(&l, &m, &r.shard, &records, keep_going).await;
        if let Some(i) = handled.checked_sub(1) {
            r.position.after = Some(seq_of(&records[i]).to_owned());
            r.position.start = None;
        }
        // Stopped before anything was tried: the last result stands.
        if handled > 0 || failed {
            let result = if failed {
                "PROBLEM: Function call failed"
            } else {
                "OK"
            };
            r.position.last_result = Some(result.to_owned());
        }
        let now = now_ms();
        let mut ops = vec![position_op(&key, &r.position)];
        for s in &sends {
            let id = uuid::Uuid::new_v4().to_string();
            ops.extend(crate::destinations::enqueue_op(s, &id, now));
        }
        if let Err(e) = l.state.batch(&ops) {
            // Not saved: the batch is read again from the last checkpoint (at least once).
            tracing::warn!(mapping = %m.uuid, "saving the checkpoint: {e}");
            tokio::time::sleep(BACKOFF).await;
            continue;
        }
        if !sends.is_empty()
            && let Some(n) = l.async_wake.get()
        {
            n.notify_one();
        }
        if handled == records.len() {
            r.iterator = next;
            reader = Some(r);
        }
        // Otherwise the mapping was stopped mid-batch: the next turn reopens after the
        // checkpoint (or finds the mapping gone).
    }
    renewer.abort();
}

/// Runs the records that pass the filters through the function. Returns how many records
/// (from the front) are handled — those filtered out count as handled — what to send to the
/// on-failure destination, and whether an invocation failed.
async fn handle(
    l: &Lambda,
    m: &Mapping,
    shard: &str,
    records: &[Value],
    keep_going: impl Fn() -> bool,
) -> (usize, Vec<crate::destinations::Send>, bool) {
    let filters = compile(&m.filters);
    let kept: Vec<usize> = (0..records.len())
        .filter(|&i| passes(&filters, &records[i]))
        .collect();
    if kept.is_empty() {
        return (records.len(), Vec::new(), false);
    }
    let batch: Vec<Value> = kept.iter().map(|&i| records[i].clone()).collect();
    let out = batch::run(l, m, shard, &batch, keep_going).await;
    // Up to the first kept record not handled; all of them handled: everything.
    let handled = kept.get(out.handled).copied().unwrap_or(records.len());
    (handled, out.sends, out.failed)
}

/// Before the first record is handled, a LATEST mapping remembers where it started, so that a
/// restart does not skip what was written meanwhile; the iterator is refreshed before it
/// expires.
fn keep_start(l: &Lambda, key: &str, p: &mut Position, it: &str) {
    let stale = p
        .start
        .as_ref()
        .is_some_and(|(_, at)| now_ms() - at >= START_MAX_AGE_MS / 2);
    if p.after.is_none() && stale {
        p.start = Some((it.to_owned(), now_ms()));
        if let Err(e) = l.state.batch(&[position_op(key, p)]) {
            tracing::debug!("saving a stream mapping's start: {e}");
        }
    }
}
