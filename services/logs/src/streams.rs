//! Log streams: create, delete, describe.

use crate::model::{self, STREAMS, StreamRec};
use crate::{Logs, group_name, invalid, not_found, now_ms, str_of, token, untoken};
use basalt_core::{AwsError, RequestContext};
use basalt_store::WriteOp;
use serde_json::{Value, json};

pub(crate) fn stream_missing() -> AwsError {
    not_found("The specified log stream does not exist.")
}

/// Every record under `prefix` in the streams table.
pub(crate) fn scan_all(logs: &Logs, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, AwsError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = logs.state.scan(STREAMS, prefix, after.as_deref(), 1000)?;
        let done = page.len() < 1000;
        after = page.last().map(|(k, _)| k.clone());
        out.extend(page);
        if done {
            return Ok(out);
        }
    }
}

/// The streams of a group: (name, record), by name.
pub(crate) fn of_group(
    logs: &Logs,
    scope: &str,
    group: &str,
) -> Result<Vec<(String, StreamRec)>, AwsError> {
    let prefix = model::stream_key(scope, group, "");
    Ok(scan_all(logs, &prefix)?
        .into_iter()
        .filter_map(|(k, raw)| {
            let rec = serde_json::from_slice(&raw).ok()?;
            Some((k[prefix.len()..].to_owned(), rec))
        })
        .collect())
}

pub(crate) fn stored_bytes(logs: &Logs, scope: &str, group: &str) -> Result<i64, AwsError> {
    Ok(of_group(logs, scope, group)?
        .iter()
        .map(|(_, s)| s.stored_bytes)
        .sum())
}

pub(crate) fn load(
    logs: &Logs,
    scope: &str,
    group: &str,
    stream: &str,
) -> Result<(StreamRec, Vec<u8>), AwsError> {
    let raw = logs
        .state
        .get(STREAMS, &model::stream_key(scope, group, stream))?
        .ok_or_else(stream_missing)?;
    let rec = serde_json::from_slice(&raw).map_err(|e| AwsError::internal(e.to_string()))?;
    Ok((rec, raw))
}

pub(crate) fn new_stream() -> StreamRec {
    StreamRec {
        id: basalt_core::ids::upper_alnum(12).to_lowercase(),
        creation_time: now_ms(),
        ..Default::default()
    }
}

fn insert(logs: &Logs, key: String, rec: &StreamRec) -> Result<(), basalt_store::StoreError> {
    let bytes =
        serde_json::to_vec(rec).map_err(|e| basalt_store::StoreError::Other(e.to_string()))?;
    logs.state.batch(&[
        WriteOp::Check {
            table: STREAMS.into(),
            key: key.clone(),
            expected: None,
        },
        WriteOp::Put {
            table: STREAMS.into(),
            key,
            value: bytes,
        },
    ])
}

pub(crate) fn create(logs: &Logs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let group = group_name(input)?;
    let stream = str_of(input, "logStreamName").unwrap_or_default();
    let scope = ctx.scope();
    crate::groups::load(logs, &scope, &group)?;
    match insert(
        logs,
        model::stream_key(&scope, &group, stream),
        &new_stream(),
    ) {
        Ok(()) => Ok(json!({})),
        Err(basalt_store::StoreError::Conflict) => Err(AwsError::new(
            400,
            "ResourceAlreadyExistsException",
            "The specified log stream already exists",
        )),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn delete(logs: &Logs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let group = group_name(input)?;
    let stream = str_of(input, "logStreamName").unwrap_or_default();
    let scope = ctx.scope();
    crate::groups::load(logs, &scope, &group)?;
    let (rec, _) = load(logs, &scope, &group, stream)?;
    logs.state
        .delete(STREAMS, &model::stream_key(&scope, &group, stream))?;
    crate::groups::delete_events(logs, &model::events_prefix(&scope, &group, &rec.id))?;
    Ok(json!({}))
}

fn describe_one(ctx: &RequestContext, group: &str, name: &str, s: &StreamRec) -> Value {
    let mut v = json!({
        "logStreamName": name,
        "creationTime": s.creation_time,
        "arn": format!("{}:log-stream:{name}", model::group_arn(&ctx.region, &ctx.account_id, group)),
        "storedBytes": s.stored_bytes,
        "uploadSequenceToken": s.seq.to_string(),
    });
    if let Some(t) = s.first_event {
        v["firstEventTimestamp"] = json!(t);
    }
    if let Some(t) = s.last_event {
        v["lastEventTimestamp"] = json!(t);
    }
    if let Some(t) = s.last_ingestion {
        v["lastIngestionTime"] = json!(t);
    }
    v
}

pub(crate) fn describe(
    logs: &Logs,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let group = group_name(input)?;
    let scope = ctx.scope();
    crate::groups::load(logs, &scope, &group)?;
    let prefix = str_of(input, "logStreamNamePrefix").unwrap_or_default();
    let by_time = match str_of(input, "orderBy").unwrap_or("LogStreamName") {
        "LogStreamName" => false,
        "LastEventTime" => true,
        other => {
            return Err(invalid(format!(
                "1 validation error detected: Value '{other}' at 'orderBy' failed to satisfy constraint: Member must satisfy enum value set: [LogStreamName, LastEventTime]"
            )));
        }
    };
    if by_time && !prefix.is_empty() {
        return Err(invalid(
            "Cannot order by LastEventTime with a logStreamNamePrefix.",
        ));
    }
    let descending = input
        .get("descending")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let limit = input.get("limit").and_then(Value::as_u64).unwrap_or(50) as usize;
    let mut all: Vec<(String, StreamRec)> = of_group(logs, &scope, &group)?
        .into_iter()
        .filter(|(n, _)| n.starts_with(prefix))
        .collect();
    // Sort keys are strings so that the token (the last key returned) orders the same way.
    let sort_key = |(n, s): &(String, StreamRec)| -> String {
        if by_time {
            format!("{:015}{n}", s.last_event.unwrap_or(0))
        } else {
            n.clone()
        }
    };
    all.sort_by_key(sort_key);
    if descending {
        all.reverse();
    }
    let start = match str_of(input, "nextToken") {
        Some(t) => {
            let after = untoken(t)?;
            all.iter()
                .position(|s| {
                    let k = sort_key(s);
                    if descending { k < after } else { k > after }
                })
                .unwrap_or(all.len())
        }
        None => 0,
    };
    let page: Vec<&(String, StreamRec)> = all[start..].iter().take(limit).collect();
    let mut resp = json!({
        "logStreams": page.iter().map(|(n, s)| describe_one(ctx, &group, n, s)).collect::<Vec<_>>()
    });
    if start + page.len() < all.len()
        && let Some(last) = page.last()
    {
        resp["nextToken"] = json!(token(&sort_key(last)));
    }
    Ok(resp)
}
