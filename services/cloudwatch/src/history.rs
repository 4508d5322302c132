//! Alarm history: the items CloudWatch records on configuration changes, state changes and
//! actions (with the JSON `HistoryData` it writes), and DescribeAlarmHistory.

use crate::CloudWatch;
use crate::error::{corrupt, invalid_value};
use crate::model::{HISTORY, i64_of, iso, str_of, strings_of, time_ms, token, ts, untoken};
use basalt_core::{AwsError, RequestContext};
use basalt_store::WriteOp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::sync::atomic::{AtomicU64, Ordering};

static SEQ: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct HistoryRec {
    pub alarm: String,
    pub alarm_type: String,
    pub timestamp_ms: i64,
    pub item_type: String,
    pub summary: String,
    pub data: String,
}

fn prefix(scope: &str, alarm: Option<&str>) -> String {
    match alarm {
        Some(a) => format!("{scope}/{a}\u{1}"),
        None => format!("{scope}/"),
    }
}

/// The write that records `rec`.
pub(crate) fn record(scope: &str, rec: &HistoryRec) -> WriteOp {
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    WriteOp::Put {
        table: HISTORY.into(),
        key: format!(
            "{}{:014}-{}-{seq:010}",
            prefix(scope, Some(&rec.alarm)),
            rec.timestamp_ms.max(0),
            std::process::id()
        ),
        value: serde_json::to_vec(rec).unwrap_or_default(),
    }
}

/// A describe document with its keys in the lower camel case of history data
/// (`AlarmName` → `alarmName`, `Dimensions[].Name` → `name`).
pub(crate) fn camel(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let mut c = k.chars();
                    let key = match c.next() {
                        Some(f) => f.to_ascii_lowercase().to_string() + c.as_str(),
                        None => String::new(),
                    };
                    (key, camel(v))
                })
                .collect::<Map<_, _>>(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(camel).collect()),
        other => other.clone(),
    }
}

/// Timestamps of a describe document written as ISO strings (history data's form).
fn iso_times(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        for k in [
            "AlarmConfigurationUpdatedTimestamp",
            "StateUpdatedTimestamp",
            "StateTransitionedTimestamp",
        ] {
            if let Some(t) = m.get(k).and_then(|t| t.as_f64()) {
                m.insert(k.into(), json!(iso((t * 1000.0) as i64)));
            }
        }
    }
    v
}

pub(crate) fn config_created(
    name: &str,
    alarm_type: &str,
    describe: &Value,
    at: i64,
) -> HistoryRec {
    HistoryRec {
        alarm: name.to_owned(),
        alarm_type: alarm_type.to_owned(),
        timestamp_ms: at,
        item_type: "ConfigurationUpdate".into(),
        summary: format!("Alarm \"{name}\" created"),
        data: json!({"version": "1.0", "type": "Create", "createdAlarm": camel(&iso_times(describe.clone()))})
            .to_string(),
    }
}

pub(crate) fn config_updated(
    name: &str,
    alarm_type: &str,
    old: &Value,
    new: &Value,
    at: i64,
) -> HistoryRec {
    let mut original = Map::new();
    if let (Some(o), Some(n)) = (old.as_object(), new.as_object()) {
        for (k, v) in o {
            if n.get(k) != Some(v)
                && !k.starts_with("State")
                && k != "AlarmConfigurationUpdatedTimestamp"
            {
                original.insert(k.clone(), v.clone());
            }
        }
    }
    HistoryRec {
        alarm: name.to_owned(),
        alarm_type: alarm_type.to_owned(),
        timestamp_ms: at,
        item_type: "ConfigurationUpdate".into(),
        summary: format!("Alarm \"{name}\" updated"),
        data: json!({
            "version": "1.0",
            "type": "Update",
            "updatedAlarm": camel(&iso_times(new.clone())),
            "originalUpdatedFields": camel(&iso_times(Value::Object(original))),
        })
        .to_string(),
    }
}

pub(crate) fn config_deleted(
    name: &str,
    alarm_type: &str,
    describe: &Value,
    at: i64,
) -> HistoryRec {
    HistoryRec {
        alarm: name.to_owned(),
        alarm_type: alarm_type.to_owned(),
        timestamp_ms: at,
        item_type: "ConfigurationUpdate".into(),
        summary: format!("Alarm \"{name}\" deleted"),
        data: json!({"version": "1.0", "type": "Delete", "deletedAlarm": camel(&iso_times(describe.clone()))})
            .to_string(),
    }
}

/// A state's part of history data.
pub(crate) fn state_doc(value: &str, reason: &str, reason_data: Option<&str>) -> Value {
    let mut s = json!({"stateValue": value, "stateReason": reason});
    if let Some(d) = reason_data.and_then(|d| serde_json::from_str::<Value>(d).ok()) {
        s["stateReasonData"] = d;
    }
    s
}

pub(crate) fn state_update(
    name: &str,
    alarm_type: &str,
    old: Value,
    new: Value,
    at: i64,
) -> HistoryRec {
    let from = old["stateValue"].as_str().unwrap_or_default().to_owned();
    let to = new["stateValue"].as_str().unwrap_or_default().to_owned();
    HistoryRec {
        alarm: name.to_owned(),
        alarm_type: alarm_type.to_owned(),
        timestamp_ms: at,
        item_type: "StateUpdate".into(),
        summary: format!("Alarm updated from {from} to {to}"),
        data: json!({"version": "1.0", "oldState": old, "newState": new}).to_string(),
    }
}

pub(crate) fn action(
    name: &str,
    alarm_type: &str,
    arn: &str,
    ok: bool,
    detail: Value,
    at: i64,
) -> HistoryRec {
    HistoryRec {
        alarm: name.to_owned(),
        alarm_type: alarm_type.to_owned(),
        timestamp_ms: at,
        item_type: "Action".into(),
        summary: if ok {
            format!("Successfully executed action {arn}")
        } else {
            format!("Failed to execute action {arn}")
        },
        data: detail.to_string(),
    }
}

pub(crate) fn describe(
    cw: &CloudWatch,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let alarm = str_of(input, "AlarmName").filter(|a| !a.is_empty());
    let item_type = str_of(input, "HistoryItemType");
    let types = strings_of(input, "AlarmTypes");
    let start = time_ms(input, "StartDate");
    let end = time_ms(input, "EndDate");
    let max = i64_of(input, "MaxRecords").unwrap_or(100);
    if !(1..=100).contains(&max) {
        return Err(invalid_value(
            "The parameter MaxRecords must be between 1 and 100.",
        ));
    }
    let ascending = match str_of(input, "ScanBy") {
        None | Some("TimestampDescending") => false,
        Some("TimestampAscending") => true,
        Some(other) => {
            return Err(invalid_value(format!(
                "The value {other} for parameter ScanBy is invalid."
            )));
        }
    };
    let offset: usize = match str_of(input, "NextToken") {
        Some(t) => untoken(t)?
            .strip_prefix("hist:")
            .and_then(|n| n.parse().ok())
            .ok_or_else(crate::error::invalid_token)?,
        None => 0,
    };
    let prefix = prefix(&ctx.scope(), alarm);
    let mut items = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = cw.state.scan(HISTORY, &prefix, after.as_deref(), 1000)?;
        let done = page.len() < 1000;
        after = page.last().map(|(k, _)| k.clone());
        for (_, raw) in page {
            let rec: HistoryRec =
                serde_json::from_slice(&raw).map_err(|e| corrupt("alarm history", e))?;
            if alarm.is_some_and(|a| a != rec.alarm)
                || item_type.is_some_and(|t| t != rec.item_type)
                || (!types.is_empty() && !types.contains(&rec.alarm_type))
                || start.is_some_and(|s| rec.timestamp_ms < s)
                || end.is_some_and(|e| rec.timestamp_ms > e)
            {
                continue;
            }
            items.push(rec);
        }
        if done {
            break;
        }
    }
    // Stable: records of one millisecond keep their write order.
    items.sort_by_key(|r| r.timestamp_ms);
    if !ascending {
        items.reverse();
    }
    let total = items.len();
    let page: Vec<Value> = items
        .into_iter()
        .skip(offset)
        .take(max as usize)
        .map(|r| {
            json!({
                "AlarmName": r.alarm,
                "AlarmType": r.alarm_type,
                "Timestamp": ts(r.timestamp_ms),
                "HistoryItemType": r.item_type,
                "HistorySummary": r.summary,
                "HistoryData": r.data,
            })
        })
        .collect();
    let mut out = json!({"AlarmHistoryItems": page});
    if offset + (max as usize) < total {
        out["NextToken"] = json!(token(&format!("hist:{}", offset + max as usize)));
    }
    Ok(out)
}
