//! Logs Insights: StartQuery, GetQueryResults, StopQuery, DescribeQueries, on the query
//! engine of `basalt-logquery`.
//!
//! A query runs when it is started (so a node that dies cannot leave one running forever),
//! over at most [`SCAN_LIMIT`] events, and its results are stored: any node answers
//! GetQueryResults with `Complete` and the rows.

use crate::model::{self, EVENTS};
use crate::{Logs, invalid, not_found, str_of};
use basalt_core::{AwsError, RequestContext};
use basalt_logquery::{Event, Query};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const QUERIES: &str = "logs.queries";
/// Events one query examines at most.
const SCAN_LIMIT: usize = 2_000_000;
/// Log groups one query may name.
const MAX_GROUPS: usize = 50;

#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    query: String,
    groups: Vec<String>,
    status: String,
    created: i64,
    duration_ms: i64,
    rows: Vec<Vec<(String, String)>>,
    matched: f64,
    scanned: f64,
    bytes: f64,
}

fn groups_of(input: &Value) -> Vec<String> {
    let mut groups: Vec<String> = Vec::new();
    if let Some(g) = str_of(input, "logGroupName") {
        groups.push(g.to_owned());
    }
    for key in ["logGroupNames", "logGroupIdentifiers"] {
        for g in input
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(g) = g.as_str() {
                groups.push(match g.split_once(":log-group:") {
                    Some((_, rest)) => rest.trim_end_matches(":*").to_owned(),
                    None => g.to_owned(),
                });
            }
        }
    }
    groups
}

pub(crate) fn start(logs: &Logs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let text = str_of(input, "queryString").unwrap_or_default();
    let query = Query::parse(text).map_err(|e| {
        let mut err = AwsError::new(400, "MalformedQueryException", e.message().to_owned());
        let mut compile = json!({"message": e.message()});
        if let Some((start, end)) = e.span() {
            compile["location"] = json!({"startCharOffset": start, "endCharOffset": end});
        }
        err = err.with_field("queryCompileError", compile);
        err
    })?;
    let groups = groups_of(input);
    if groups.is_empty() {
        return Err(invalid(
            "Specify either logGroupName, logGroupNames or logGroupIdentifiers.",
        ));
    }
    if groups.len() > MAX_GROUPS {
        return Err(invalid(format!(
            "A query can name at most {MAX_GROUPS} log groups."
        )));
    }
    let start_ms = input.get("startTime").and_then(Value::as_i64).unwrap_or(0) * 1000;
    let end_ms = input.get("endTime").and_then(Value::as_i64).unwrap_or(0) * 1000;
    if end_ms < start_ms {
        return Err(invalid("End time cannot be less than start time."));
    }
    let scope = ctx.scope();
    let began = crate::now_ms();
    // (stream, timestamp, ingestion, message, group) of every event in the window.
    let mut owned: Vec<(String, i64, i64, String, String)> = Vec::new();
    for group in &groups {
        let floor = crate::groups::load(logs, &scope, group)
            .map_err(|_| {
                not_found(format!(
                    "Log group '{group}' does not exist for account ID '{}'",
                    ctx.account_id
                ))
            })?
            .retention_days
            .map_or(i64::MIN, |d| crate::now_ms() - d * 86_400_000);
        let from = start_ms.max(floor).max(0);
        for (stream, rec) in crate::streams::of_group(logs, &scope, group)? {
            let prefix = model::events_prefix(&scope, group, &rec.id);
            let mut after =
                (from > 0).then(|| format!("{prefix}{}", model::position(from - 1, 9_999_999_999)));
            'scan: loop {
                let page = logs.state.scan(EVENTS, &prefix, after.as_deref(), 1000)?;
                let done = page.len() < 1000;
                after = page.last().map(|(k, _)| k.clone());
                for (key, raw) in page {
                    let Some((ts, _)) = model::parse_position(&key[prefix.len()..]) else {
                        continue;
                    };
                    // endTime is inclusive, to the second.
                    if ts > end_ms + 999 || owned.len() >= SCAN_LIMIT {
                        break 'scan;
                    }
                    if let Ok(e) = serde_json::from_slice::<model::EventRec>(&raw) {
                        owned.push((stream.clone(), ts, e.i, e.m, group.clone()));
                    }
                }
                if done {
                    break;
                }
            }
        }
    }
    let out = query.run_in_account(
        &ctx.account_id,
        owned.iter().map(|(stream, ts, ing, msg, group)| Event {
            timestamp_ms: *ts,
            ingestion_ms: *ing,
            message: msg,
            log_stream: stream,
            log_group: group,
        }),
    );
    let mut rows = out.rows;
    if let Some(limit) = input.get("limit").and_then(Value::as_u64) {
        rows.truncate(limit as usize);
    }
    let id = uuid_like();
    let stored = Stored {
        query: text.to_owned(),
        groups,
        status: "Complete".into(),
        created: began,
        duration_ms: crate::now_ms() - began,
        rows,
        matched: out.records_matched,
        scanned: out.records_scanned,
        bytes: out.bytes_scanned,
    };
    let bytes = serde_json::to_vec(&stored).map_err(|e| AwsError::internal(e.to_string()))?;
    logs.state.put(QUERIES, &format!("{scope}/{id}"), &bytes)?;
    Ok(json!({ "queryId": id }))
}

fn uuid_like() -> String {
    let hex = basalt_core::ids::request_id()
        .replace('-', "")
        .to_lowercase();
    let h = format!("{hex:0<32}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn load(logs: &Logs, ctx: &RequestContext, id: &str) -> Result<Stored, AwsError> {
    let raw = logs
        .state
        .get(QUERIES, &format!("{}/{id}", ctx.scope()))?
        .ok_or_else(|| not_found(format!("Query does not exist: {id}")))?;
    serde_json::from_slice(&raw).map_err(|e| AwsError::internal(e.to_string()))
}

pub(crate) fn results(logs: &Logs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let q = load(logs, ctx, str_of(input, "queryId").unwrap_or_default())?;
    let results: Vec<Value> = q
        .rows
        .iter()
        .map(|row| {
            json!(
                row.iter()
                    .map(|(f, v)| json!({"field": f, "value": v}))
                    .collect::<Vec<_>>()
            )
        })
        .collect();
    Ok(json!({
        "queryLanguage": "CWLI",
        "results": results,
        "statistics": {
            "recordsMatched": q.matched,
            "recordsScanned": q.scanned,
            "bytesScanned": q.bytes,
            "logGroupsScanned": q.groups.len() as f64,
            "estimatedRecordsSkipped": 0.0,
            "estimatedBytesSkipped": 0.0,
        },
        "status": q.status,
    }))
}

pub(crate) fn stop(logs: &Logs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let id = str_of(input, "queryId").unwrap_or_default();
    load(logs, ctx, id)?;
    // Queries finish before StartQuery answers: there is never one to stop.
    Err(invalid(format!("Query {id} is not running.")))
}

pub(crate) fn describe(
    logs: &Logs,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let scope = ctx.scope();
    let group = str_of(input, "logGroupName");
    let status = str_of(input, "status");
    let max = input
        .get("maxResults")
        .and_then(Value::as_u64)
        .unwrap_or(1000) as usize;
    let mut all: Vec<(String, Stored)> = logs
        .state
        .scan(QUERIES, &format!("{scope}/"), None, 100_000)?
        .into_iter()
        .filter_map(|(k, raw)| {
            Some((
                k[scope.len() + 1..].to_owned(),
                serde_json::from_slice(&raw).ok()?,
            ))
        })
        .filter(|(_, q): &(String, Stored)| group.is_none_or(|g| q.groups.iter().any(|x| x == g)))
        .filter(|(_, q)| status.is_none_or(|s| q.status == s))
        .collect();
    all.sort_by_key(|(_, q)| std::cmp::Reverse(q.created));
    let queries: Vec<Value> = all
        .iter()
        .take(max)
        .map(|(id, q)| {
            json!({
                "queryLanguage": "CWLI",
                "queryId": id,
                "queryString": q.query,
                "status": q.status,
                "createTime": q.created,
                "logGroupName": q.groups.first(),
                "queryDuration": q.duration_ms,
                "bytesScanned": q.bytes,
            })
        })
        .collect();
    Ok(json!({ "queries": queries }))
}
