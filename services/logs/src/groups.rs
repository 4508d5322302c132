//! Log groups: create, delete, describe, retention, tags.

use crate::model::{self, EVENTS, GROUPS, GroupRec, STREAMS};
use crate::{Logs, group_name, invalid, not_found, now_ms, str_of, token, untoken};
use basalt_core::{AwsError, RequestContext};
use basalt_store::WriteOp;
use serde_json::{Map, Value, json};

/// The retention periods CloudWatch Logs accepts.
const RETENTION_DAYS: &[i64] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

fn group_missing() -> AwsError {
    not_found("The specified log group does not exist.")
}

pub(crate) fn load(logs: &Logs, scope: &str, group: &str) -> Result<GroupRec, AwsError> {
    let raw = logs
        .state
        .get(GROUPS, &model::group_key(scope, group))?
        .ok_or_else(group_missing)?;
    serde_json::from_slice(&raw).map_err(|e| AwsError::internal(e.to_string()))
}

fn save(logs: &Logs, scope: &str, group: &str, rec: &GroupRec) -> Result<(), AwsError> {
    let bytes = serde_json::to_vec(rec).map_err(|e| AwsError::internal(e.to_string()))?;
    Ok(logs
        .state
        .put(GROUPS, &model::group_key(scope, group), &bytes)?)
}

fn tags_of(input: &Value, name: &str) -> Result<Vec<(String, String)>, AwsError> {
    let Some(map) = input.get(name).and_then(Value::as_object) else {
        return Ok(Vec::new());
    };
    map.iter()
        .map(|(k, v)| {
            v.as_str()
                .map(|v| (k.clone(), v.to_owned()))
                .ok_or_else(|| invalid("Tag values must be strings."))
        })
        .collect()
}

pub(crate) fn create(logs: &Logs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = str_of(input, "logGroupName").unwrap_or_default();
    let scope = ctx.scope();
    let mut rec = GroupRec {
        creation_time: now_ms(),
        kms_key_id: str_of(input, "kmsKeyId").map(str::to_owned),
        class: str_of(input, "logGroupClass").map(str::to_owned),
        deletion_protection: input
            .get("deletionProtectionEnabled")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        ..Default::default()
    };
    rec.tags.extend(tags_of(input, "tags")?);
    let key = model::group_key(&scope, name);
    let bytes = serde_json::to_vec(&rec).map_err(|e| AwsError::internal(e.to_string()))?;
    match logs.state.batch(&[
        WriteOp::Check {
            table: GROUPS.into(),
            key: key.clone(),
            expected: None,
        },
        WriteOp::Put {
            table: GROUPS.into(),
            key,
            value: bytes,
        },
    ]) {
        Ok(()) => Ok(json!({})),
        Err(basalt_store::StoreError::Conflict) => Err(AwsError::new(
            400,
            "ResourceAlreadyExistsException",
            "The specified log group already exists",
        )),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn delete(logs: &Logs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = group_name(input)?;
    let scope = ctx.scope();
    let rec = load(logs, &scope, &name)?;
    if rec.deletion_protection {
        return Err(AwsError::new(
            400,
            "OperationAbortedException",
            "Log group deletion protection is enabled.",
        ));
    }
    // The group goes first, so that a failure half-way leaves only unreachable records.
    logs.state
        .delete(GROUPS, &model::group_key(&scope, &name))?;
    let stream_prefix = model::stream_key(&scope, &name, "");
    for (_, raw) in crate::streams::scan_all(logs, &stream_prefix)? {
        if let Ok(s) = serde_json::from_slice::<model::StreamRec>(&raw) {
            delete_events(logs, &model::events_prefix(&scope, &name, &s.id))?;
        }
    }
    loop {
        let page = logs.state.scan(STREAMS, &stream_prefix, None, 500)?;
        if page.is_empty() {
            break;
        }
        let ops: Vec<WriteOp> = page
            .into_iter()
            .map(|(key, _)| WriteOp::Delete {
                table: STREAMS.into(),
                key,
            })
            .collect();
        logs.state.batch(&ops)?;
    }
    Ok(json!({}))
}

/// Deletes every event under `prefix`, 500 at a time.
pub(crate) fn delete_events(logs: &Logs, prefix: &str) -> Result<(), AwsError> {
    loop {
        let page = logs.state.scan(EVENTS, prefix, None, 500)?;
        if page.is_empty() {
            return Ok(());
        }
        let ops: Vec<WriteOp> = page
            .into_iter()
            .map(|(key, _)| WriteOp::Delete {
                table: EVENTS.into(),
                key,
            })
            .collect();
        logs.state.batch(&ops)?;
    }
}

fn describe_one(ctx: &RequestContext, name: &str, rec: &GroupRec, stored: i64) -> Value {
    let arn = model::group_arn(&ctx.region, &ctx.account_id, name);
    let mut g = json!({
        "logGroupName": name,
        "creationTime": rec.creation_time,
        "metricFilterCount": 0,
        "arn": format!("{arn}:*"),
        "logGroupArn": arn,
        "storedBytes": stored,
        "logGroupClass": rec.class.as_deref().unwrap_or("STANDARD"),
        "deletionProtectionEnabled": rec.deletion_protection,
    });
    if let Some(d) = rec.retention_days {
        g["retentionInDays"] = json!(d);
    }
    if let Some(k) = &rec.kms_key_id {
        g["kmsKeyId"] = json!(k);
    }
    g
}

pub(crate) fn describe(
    logs: &Logs,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let scope = ctx.scope();
    let prefix = str_of(input, "logGroupNamePrefix").unwrap_or_default();
    let pattern = str_of(input, "logGroupNamePattern").map(str::to_lowercase);
    if !prefix.is_empty() && pattern.is_some() {
        return Err(invalid(
            "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.",
        ));
    }
    let limit = input.get("limit").and_then(Value::as_u64).unwrap_or(50) as usize;
    let identifiers: Option<Vec<String>> = input
        .get("logGroupIdentifiers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|id| match id.split_once(":log-group:") {
                    Some((_, rest)) => rest.trim_end_matches(":*").to_owned(),
                    None => id.to_owned(),
                })
                .collect()
        });
    let mut after = match str_of(input, "nextToken") {
        Some(t) => Some(model::group_key(&scope, &untoken(t)?)),
        None => None,
    };
    let key_prefix = model::group_key(&scope, prefix);
    let mut out = Vec::new();
    let mut next = None;
    'pages: loop {
        let page = logs
            .state
            .scan(GROUPS, &key_prefix, after.as_deref(), 200)?;
        if page.is_empty() {
            break;
        }
        after = page.last().map(|(k, _)| k.clone());
        for (key, raw) in page {
            let name = &key[scope.len() + 1..];
            if pattern
                .as_ref()
                .is_some_and(|p| !name.to_lowercase().contains(p))
                || identifiers
                    .as_ref()
                    .is_some_and(|ids| !ids.iter().any(|i| i == name))
            {
                continue;
            }
            if out.len() == limit {
                next = out
                    .last()
                    .and_then(|g: &Value| g["logGroupName"].as_str())
                    .map(token);
                break 'pages;
            }
            let Ok(rec) = serde_json::from_slice::<GroupRec>(&raw) else {
                continue;
            };
            let stored = crate::streams::stored_bytes(logs, &scope, name)?;
            out.push(describe_one(ctx, name, &rec, stored));
        }
    }
    let mut resp = json!({ "logGroups": out });
    if let Some(t) = next {
        resp["nextToken"] = json!(t);
    }
    Ok(resp)
}

pub(crate) fn put_retention(
    logs: &Logs,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let name = group_name(input)?;
    let days = input
        .get("retentionInDays")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if !RETENTION_DAYS.contains(&days) {
        let set: Vec<String> = RETENTION_DAYS.iter().map(i64::to_string).collect();
        return Err(invalid(format!(
            "1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            set.join(", ")
        )));
    }
    let scope = ctx.scope();
    let mut rec = load(logs, &scope, &name)?;
    rec.retention_days = Some(days);
    save(logs, &scope, &name, &rec)?;
    Ok(json!({}))
}

pub(crate) fn delete_retention(
    logs: &Logs,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let name = group_name(input)?;
    let scope = ctx.scope();
    let mut rec = load(logs, &scope, &name)?;
    rec.retention_days = None;
    save(logs, &scope, &name, &rec)?;
    Ok(json!({}))
}

/// The group a tagging call names: `resourceArn` (TagResource) or `logGroupName` (the older
/// TagLogGroup).
fn tagged_group(input: &Value) -> Result<String, AwsError> {
    if let Some(arn) = str_of(input, "resourceArn") {
        return match arn.split_once(":log-group:") {
            Some((_, rest)) => Ok(rest.trim_end_matches(":*").to_owned()),
            None => Err(invalid(format!("Invalid resource ARN: {arn}"))),
        };
    }
    str_of(input, "logGroupName")
        .map(str::to_owned)
        .ok_or_else(|| invalid("A log group must be named."))
}

pub(crate) fn tag(logs: &Logs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = tagged_group(input)?;
    let scope = ctx.scope();
    let mut rec = load(logs, &scope, &name)?;
    rec.tags.extend(tags_of(input, "tags")?);
    if rec.tags.len() > 50 {
        return Err(invalid("A log group can have at most 50 tags."));
    }
    save(logs, &scope, &name, &rec)?;
    Ok(json!({}))
}

pub(crate) fn untag(logs: &Logs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = tagged_group(input)?;
    let scope = ctx.scope();
    let mut rec = load(logs, &scope, &name)?;
    let keys = input
        .get("tagKeys")
        .or_else(|| input.get("tags"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for k in keys.iter().filter_map(Value::as_str) {
        rec.tags.remove(k);
    }
    save(logs, &scope, &name, &rec)?;
    Ok(json!({}))
}

pub(crate) fn list_tags(
    logs: &Logs,
    ctx: &RequestContext,
    _operation: &str,
    input: &Value,
) -> Result<Value, AwsError> {
    let name = tagged_group(input)?;
    let rec = load(logs, &ctx.scope(), &name)?;
    let tags: Map<String, Value> = rec.tags.into_iter().map(|(k, v)| (k, json!(v))).collect();
    Ok(json!({ "tags": tags }))
}
