//! The `dynamodbstreams` API: ListStreams, DescribeStream, GetShardIterator, GetRecords.
//!
//! Every stream has one shard. Shard iterators are tokens ([`super::iterator`]); GetRecords
//! reads the shard's range of the store from the iterator's position, only below the read
//! horizon (now − [`SETTLE_MS`]) while the stream is open. When that finds nothing but newer
//! records exist, it waits for them to settle (at most [`SETTLE_MS`]) instead of answering
//! an empty page, so a reader that stops at the first empty page still sees every write that
//! was acknowledged before it asked.

use basalt_core::{AwsError, Output, RequestContext, Service};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

use super::SETTLE_MS;
use super::format_seq;
use super::iterator::{Iterator, Start, StartError, next_position, parse_seq, position, read_from};
use super::locate::{Located, invalid_arn, label_ms, locate, parse_arn, shard_id};
use super::records::{self, now_micros};
use super::retention::retention_ms;
use crate::DynamoDb;
use crate::model::{StreamRec, TABLES, TableRec, now_ms};
use crate::params::str_of;

const MAX_LIST: i64 = 100;
const MAX_RECORDS: i64 = 1000;

pub struct DynamoDbStreams {
    db: Arc<DynamoDb>,
}

impl DynamoDbStreams {
    pub fn new(db: Arc<DynamoDb>) -> Arc<DynamoDbStreams> {
        Arc::new(DynamoDbStreams { db })
    }
}

#[async_trait::async_trait]
impl Service for DynamoDbStreams {
    fn name(&self) -> &'static str {
        "dynamodbstreams"
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: Value,
    ) -> Result<Output, AwsError> {
        let d = self.db.as_ref();
        let out = match operation {
            "ListStreams" => list_streams(d, ctx, &input),
            "DescribeStream" => describe_stream(d, &input),
            "GetShardIterator" => get_shard_iterator(d, &input),
            "GetRecords" => get_records(d, &input).await,
            _ => return Err(AwsError::not_implemented("dynamodbstreams", operation)),
        }?;
        Ok(Output::new(out))
    }
}

fn trimmed() -> AwsError {
    AwsError::new(
        400,
        "TrimmedDataAccessException",
        "The operation attempted to read past the oldest stream record in a shard.",
    )
}

/// An integer member within `1..=max` (the model's minimum is also checked at the gateway;
/// the maximum is DynamoDB's own).
fn limit(input: &Value, max: i64) -> Result<i64, AwsError> {
    let Some(v) = input.get("Limit").filter(|v| !v.is_null()) else {
        return Ok(max);
    };
    let n = v
        .as_i64()
        .ok_or_else(|| AwsError::serialization("Limit must be an integer"))?;
    if n < 1 {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
        )));
    }
    if n > max {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value less than or equal to {max}"
        )));
    }
    Ok(n)
}

// --- ListStreams ---------------------------------------------------------------------------

fn summary(t: &TableRec, s: &StreamRec) -> Value {
    json!({"StreamArn": t.stream_arn(s), "TableName": t.name, "StreamLabel": s.label})
}

/// A table's streams, oldest first.
fn streams_of(t: &TableRec) -> Vec<&StreamRec> {
    let mut v: Vec<&StreamRec> = t.old_streams.iter().chain(&t.stream).collect();
    v.sort_by(|a, b| a.label.cmp(&b.label));
    v
}

fn list_streams(d: &DynamoDb, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let limit = limit(input, MAX_LIST)? as usize;
    let start = match str_of(input, "ExclusiveStartStreamArn") {
        Some(a) => Some(parse_arn(a).ok_or_else(|| invalid_arn(a))?),
        None => None,
    };
    let after = |t: &TableRec, s: &StreamRec| match &start {
        None => true,
        Some(st) => (t.name.as_str(), s.label.as_str()) > (st.table.as_str(), st.label.as_str()),
    };
    // One more than shown, to know whether to say where the next page starts.
    let mut found: Vec<Value> = Vec::new();
    if let Some(name) = str_of(input, "TableName") {
        crate::params::check_name(name, "TableName")?;
        let t = d.table(ctx, name)?;
        found.extend(
            streams_of(&t)
                .into_iter()
                .filter(|s| after(&t, s))
                .map(|s| summary(&t, s)),
        );
    } else {
        let prefix = format!("{}/{}/", ctx.account_id, ctx.region);
        // Resume at the start table: it may have streams after the start label.
        let mut cursor = start
            .as_ref()
            .map(|st| TableRec::key(&ctx.account_id, &ctx.region, &st.table));
        if let Some(st) = &start
            && let Some(t) = d.load(&ctx.account_id, &ctx.region, &st.table)?
        {
            found.extend(
                streams_of(&t)
                    .into_iter()
                    .filter(|s| after(&t, s))
                    .map(|s| summary(&t, s)),
            );
        }
        while found.len() <= limit {
            let rows = d.state.scan(TABLES, &prefix, cursor.as_deref(), 100)?;
            let Some((last, _)) = rows.last() else { break };
            cursor = Some(last.clone());
            for (_, raw) in &rows {
                let Ok(t) = serde_json::from_slice::<TableRec>(raw) else {
                    continue;
                };
                found.extend(
                    streams_of(&t)
                        .into_iter()
                        .filter(|s| after(&t, s))
                        .map(|s| summary(&t, s)),
                );
            }
        }
    }
    let more = found.len() > limit;
    found.truncate(limit);
    let mut out = json!({ "Streams": found });
    if more && let Some(last) = out["Streams"].as_array().and_then(|v| v.last()).cloned() {
        out["LastEvaluatedStreamArn"] = last["StreamArn"].clone();
    }
    Ok(out)
}

// --- DescribeStream ------------------------------------------------------------------------

fn stream_arn_of(input: &Value) -> Result<&str, AwsError> {
    str_of(input, "StreamArn").ok_or_else(|| {
        AwsError::validation(
            "1 validation error detected: Value null at 'streamArn' failed to satisfy constraint: Member must not be null",
        )
    })
}

/// The shard as DescribeStream shows it.
fn shard(d: &DynamoDb, loc: &Located) -> Result<Value, AwsError> {
    let now = now_micros();
    let trim = records::trim_point(now, retention_ms());
    let (first, newest) = records::bounds(d.state.as_ref(), &loc.stream.uid, trim)?;
    let created = label_ms(&loc.stream.label).unwrap_or(0).max(0) as u64 * 1000;
    // With no record kept, the shard starts where its next record will be: at its creation,
    // or now when that was before the trim horizon (an iterator at that number then stays
    // valid for the whole retention period).
    let start = first.unwrap_or(if created >= trim { created } else { now });
    let mut range = json!({"StartingSequenceNumber": format_seq(start)});
    if !loc.open {
        range["EndingSequenceNumber"] = json!(format_seq(newest.unwrap_or(start).max(start)));
    }
    Ok(json!({"ShardId": shard_id(&loc.stream), "SequenceNumberRange": range}))
}

fn describe_stream(d: &DynamoDb, input: &Value) -> Result<Value, AwsError> {
    let arn = stream_arn_of(input)?;
    limit(input, MAX_LIST)?;
    let loc = locate(d, arn)?;
    let id = shard_id(&loc.stream);
    // Shards come in id order after `ExclusiveStartShardId`; ours has no children.
    let listed = str_of(input, "ExclusiveStartShardId").is_none_or(|s| id.as_str() > s)
        && input.get("ShardFilter").is_none_or(Value::is_null);
    let shards = if listed {
        vec![shard(d, &loc)?]
    } else {
        Vec::new()
    };
    let created = label_ms(&loc.stream.label).unwrap_or(0) as f64 / 1000.0;
    let mut desc = Map::new();
    desc.insert("StreamArn".into(), loc.arn.clone().into());
    desc.insert("StreamLabel".into(), loc.stream.label.clone().into());
    desc.insert(
        "StreamStatus".into(),
        if loc.open { "ENABLED" } else { "DISABLED" }.into(),
    );
    desc.insert("StreamViewType".into(), loc.stream.view_type.clone().into());
    desc.insert("CreationRequestDateTime".into(), json!(created));
    desc.insert("TableName".into(), loc.table.name.clone().into());
    desc.insert("KeySchema".into(), loc.table.key.to_json());
    desc.insert("Shards".into(), Value::Array(shards));
    Ok(json!({ "StreamDescription": Value::Object(desc) }))
}

// --- GetShardIterator ----------------------------------------------------------------------

fn start_of(input: &Value) -> Result<Start, AwsError> {
    let kind = str_of(input, "ShardIteratorType").unwrap_or_default();
    let seq = str_of(input, "SequenceNumber");
    let needs_seq = matches!(kind, "AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER");
    if seq.is_some() && !needs_seq {
        return Err(AwsError::validation(format!(
            "Invalid SequenceNumber for ShardIteratorType {kind}: a sequence number is only valid with AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER"
        )));
    }
    let number = || -> Result<u64, AwsError> {
        let s = seq.ok_or_else(|| {
            AwsError::validation(format!(
                "Must specify a SequenceNumber for ShardIteratorType {kind}"
            ))
        })?;
        parse_seq(s).ok_or_else(|| AwsError::validation(format!("Invalid SequenceNumber: {s}")))
    };
    Ok(match kind {
        "TRIM_HORIZON" => Start::TrimHorizon,
        "LATEST" => Start::Latest,
        "AT_SEQUENCE_NUMBER" => Start::At(number()?),
        "AFTER_SEQUENCE_NUMBER" => Start::After(number()?),
        "AT_TIMESTAMP" => {
            let ts = input
                .get("Timestamp")
                .and_then(Value::as_f64)
                .ok_or_else(|| {
                    AwsError::validation(
                        "Must specify a Timestamp for ShardIteratorType AT_TIMESTAMP",
                    )
                })?;
            Start::AtTimestamp((ts.max(0.0) * 1e6) as u64)
        }
        other => {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{other}' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, AT_SEQUENCE_NUMBER, AT_TIMESTAMP, LATEST, TRIM_HORIZON]"
            )));
        }
    })
}

fn get_shard_iterator(d: &DynamoDb, input: &Value) -> Result<Value, AwsError> {
    let arn = stream_arn_of(input)?;
    let start = start_of(input)?;
    let loc = locate(d, arn)?;
    if str_of(input, "ShardId") != Some(shard_id(&loc.stream).as_str()) {
        return Err(AwsError::resource_not_found(
            "Requested resource not found: Shard does not exist",
        ));
    }
    let view = records::view(
        d.state.as_ref(),
        &loc.stream.uid,
        loc.open,
        now_micros(),
        retention_ms(),
    )?;
    let pos = position(start, &view).map_err(|StartError::Trimmed| trimmed())?;
    let it = Iterator {
        arn: loc.arn,
        uid: loc.stream.uid,
        pos,
        issued_ms: now_ms(),
    };
    Ok(json!({ "ShardIterator": it.encode() }))
}

// --- GetRecords ----------------------------------------------------------------------------

async fn get_records(d: &DynamoDb, input: &Value) -> Result<Value, AwsError> {
    let token = str_of(input, "ShardIterator").unwrap_or_default();
    let it = Iterator::decode(token)
        .ok_or_else(|| AwsError::validation(format!("Invalid ShardIterator: {token}")))?;
    let limit = limit(input, MAX_RECORDS)? as usize;
    if it.expired(now_ms()) {
        return Err(AwsError::new(
            400,
            "ExpiredIteratorException",
            "The provided iterator exceeds the maximum age allowed.",
        ));
    }
    let arn = parse_arn(&it.arn).ok_or_else(|| AwsError::validation("Invalid ShardIterator"))?;
    let mut waited = false;
    loop {
        let open = super::locate::is_open(d, &arn, &it.uid)?;
        let now = now_micros();
        let trim = records::trim_point(now, retention_ms());
        let lo = read_from(it.pos, trim).map_err(|StartError::Trimmed| trimmed())?;
        // An open shard is read only below the horizon; a closed one is final.
        let hi = open.then(|| now.saturating_sub(SETTLE_MS * 1000));
        let page = records::read(d.state.as_ref(), &it.uid, lo, hi, limit)?;
        if page.records.is_empty()
            && !waited
            && let Some(h) = hi
            && let (_, Some(newest)) = records::bounds(d.state.as_ref(), &it.uid, lo.max(h))?
        {
            // Newer records exist but may still have companions committing below them: wait
            // until the newest has settled, then read again.
            let settle_at = newest / 1000 + SETTLE_MS;
            let wait = settle_at.saturating_sub(now / 1000).min(SETTLE_MS) + 1;
            tokio::time::sleep(Duration::from_millis(wait)).await;
            waited = true;
            continue;
        }
        let mut out = json!({ "Records": page.records });
        let next = match hi {
            Some(h) => Some(next_position(lo, page.last, page.complete, h)),
            // A closed shard read to its end has no next iterator.
            None if page.complete => None,
            None => Some(next_position(lo, page.last, false, lo)),
        };
        if let Some(pos) = next {
            let next_it = Iterator {
                pos,
                issued_ms: now_ms(),
                ..it.clone()
            };
            out["NextShardIterator"] = json!(next_it.encode());
        }
        return Ok(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_store::Store;

    #[test]
    fn limits_are_checked_against_dynamodb_maxima() {
        assert_eq!(limit(&json!({}), 100).unwrap(), 100);
        assert_eq!(limit(&json!({"Limit": 7}), 100).unwrap(), 7);
        let e = limit(&json!({"Limit": 101}), 100).unwrap_err();
        assert_eq!(e.code, "ValidationException");
        assert!(
            e.message.contains("less than or equal to 100"),
            "{}",
            e.message
        );
        assert_eq!(
            limit(&json!({"Limit": 0}), 1000).unwrap_err().code,
            "ValidationException"
        );
    }

    #[test]
    fn iterator_types_and_their_members() {
        assert_eq!(
            start_of(&json!({"ShardIteratorType": "TRIM_HORIZON"})).unwrap(),
            Start::TrimHorizon
        );
        assert_eq!(
            start_of(&json!({"ShardIteratorType": "LATEST"})).unwrap(),
            Start::Latest
        );
        assert_eq!(
            start_of(&json!({"ShardIteratorType": "AT_SEQUENCE_NUMBER", "SequenceNumber": "000000000000000000042"})).unwrap(),
            Start::At(42)
        );
        assert_eq!(
            start_of(
                &json!({"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": "42"})
            )
            .unwrap(),
            Start::After(42)
        );
        assert_eq!(
            start_of(&json!({"ShardIteratorType": "AT_TIMESTAMP", "Timestamp": 2.5})).unwrap(),
            Start::AtTimestamp(2_500_000)
        );
        for bad in [
            json!({"ShardIteratorType": "AT_SEQUENCE_NUMBER"}),
            json!({"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": "12x"}),
            json!({"ShardIteratorType": "LATEST", "SequenceNumber": "42"}),
            json!({"ShardIteratorType": "TRIM_HORIZON", "SequenceNumber": "42"}),
            json!({"ShardIteratorType": "bulle"}),
            json!({"ShardIteratorType": "AT_TIMESTAMP"}),
        ] {
            assert_eq!(
                start_of(&bad).unwrap_err().code,
                "ValidationException",
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn records_of_an_unknown_or_garbage_iterator() {
        let d = DynamoDb::new(Store::ephemeral().state);
        let e = get_records(
            &d,
            &json!({"ShardIterator": "sdfsdfsgagaddafgagasgasgasdfasdfasdfa"}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "ValidationException");
        let old = Iterator {
            arn: "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/2026-12-06T08:42:44.123"
                .into(),
            uid: "u".into(),
            pos: 0,
            issued_ms: now_ms() - 16 * 60 * 1000,
        };
        let e = get_records(&d, &json!({"ShardIterator": old.encode()}))
            .await
            .unwrap_err();
        assert_eq!(e.code, "ExpiredIteratorException");
        // The table is gone: its stream is closed and, read to the end, has no next iterator.
        let fresh = Iterator {
            issued_ms: now_ms(),
            ..old
        };
        let out = get_records(&d, &json!({"ShardIterator": fresh.encode()}))
            .await
            .unwrap();
        assert_eq!(out["Records"], json!([]));
        assert!(out.get("NextShardIterator").is_none());
    }
}
