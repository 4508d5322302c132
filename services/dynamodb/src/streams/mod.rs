//! DynamoDB Streams: the records a write commits with its item, and the `dynamodbstreams`
//! API that reads them ([`api`]).
//!
//! A table's stream is one shard whose records are `{stream uid}/{sequence number}` in
//! [`STREAM`]. Sequence numbers come from the writer's clock in microseconds, made strictly
//! increasing within a process; two writes of one item are ordered by the item's own
//! precondition (the second is decided after the first committed), so records of one key
//! appear in commit order. Readers stay [`SETTLE_MS`] behind the clock, so a record whose
//! batch was still committing when a later one was read is never skipped.

pub mod api;
mod iterator;
mod locate;
mod records;
pub(crate) mod retention;

use basalt_dynamodb_expr::{Item, item_size, item_to_json};
use basalt_store::WriteOp;
use serde_json::{Map, Value, json};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::model::{STREAM, TableRec, now_secs};

pub use api::DynamoDbStreams;

/// How far behind the clock readers stay (see the module documentation).
pub const SETTLE_MS: u64 = 1000;

/// Digits of a sequence number, as DynamoDB Streams writes them.
const SEQ_DIGITS: usize = 21;

static LAST_SEQ: AtomicU64 = AtomicU64::new(0);

/// A fresh sequence number: microseconds since the epoch, strictly increasing in this process.
fn next_seq() -> u64 {
    let now = (now_secs() * 1e6) as u64;
    let mut last = LAST_SEQ.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST_SEQ.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

pub fn format_seq(seq: u64) -> String {
    format!("{seq:0SEQ_DIGITS$}")
}

/// The sequence number of the first record written at or after `micros`.
pub fn seq_at(micros: u64) -> String {
    format_seq(micros)
}

/// The record a write of one item adds to its table's stream, if the table has one and the
/// item changed. `ttl`: the write is TTL's expiry (its record names DynamoDB as the actor).
pub fn record(
    t: &TableRec,
    key: &Item,
    old: Option<&Item>,
    new: Option<&Item>,
    region: &str,
    ttl: bool,
) -> Option<WriteOp> {
    let s = t.stream.as_ref().filter(|s| s.enabled)?;
    let name = match (old, new) {
        (None, Some(_)) => "INSERT",
        (Some(o), Some(n)) if o != n => "MODIFY",
        (Some(_), None) => "REMOVE",
        _ => return None,
    };
    let seq = format_seq(next_seq());
    let mut body = Map::new();
    body.insert(
        "ApproximateCreationDateTime".into(),
        json!(now_secs().floor()),
    );
    body.insert("Keys".into(), item_to_json(key));
    let mut size = crate::keys::key_size(key);
    if matches!(s.view_type.as_str(), "NEW_IMAGE" | "NEW_AND_OLD_IMAGES")
        && let Some(n) = new
    {
        size += item_size(n);
        body.insert("NewImage".into(), item_to_json(n));
    }
    if matches!(s.view_type.as_str(), "OLD_IMAGE" | "NEW_AND_OLD_IMAGES")
        && let Some(o) = old
    {
        size += item_size(o);
        body.insert("OldImage".into(), item_to_json(o));
    }
    body.insert("SequenceNumber".into(), seq.clone().into());
    body.insert("SizeBytes".into(), size.into());
    body.insert("StreamViewType".into(), s.view_type.clone().into());
    let mut rec = json!({
        "eventID": uuid::Uuid::new_v4().simple().to_string(),
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": Value::Object(body),
    });
    if ttl {
        rec["userIdentity"] = json!({"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"});
    }
    Some(WriteOp::Put {
        table: STREAM.into(),
        key: format!("{}/{seq}", s.uid),
        value: serde_json::to_vec(&rec).unwrap_or_default(),
    })
}
