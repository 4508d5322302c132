//! Execution history to CloudWatch Logs, as a state machine's `loggingConfiguration` asks
//! (the Developer Guide's "Using CloudWatch Logs to log execution history" and "Log levels"):
//! the events of the level (`ALL`, `ERROR`, `FATAL`), without `input`/`output` unless
//! `includeExecutionData`, to each destination log group, in a stream per execution. This
//! is the only history an EXPRESS execution has. Delivery is best effort and never holds
//! the execution back, as AWS says of its own: it runs after the step is committed, and an
//! absent log group drops the events.

use basalt_asl::HistoryEvent;
use basalt_core::RequestContext;
use serde_json::{Value, json};

use crate::StepFunctions;

/// What one step of an execution has to log.
#[derive(Debug, Default)]
pub struct LogBatch {
    /// Log group names, with their account and region.
    groups: Vec<(String, String, String)>,
    stream: String,
    events: Vec<(i64, String)>,
}

/// Whether an event of `kind` is logged at `level` (the guide's table: ERROR adds failures,
/// timeouts and aborts of every kind; FATAL only the execution's own end without success).
fn logged(level: &str, kind: &str) -> bool {
    match level {
        "ALL" => true,
        "FATAL" => matches!(
            kind,
            "ExecutionFailed" | "ExecutionAborted" | "ExecutionTimedOut"
        ),
        "ERROR" => {
            kind.ends_with("Failed")
                || kind.ends_with("Aborted")
                || kind.ends_with("TimedOut")
                || kind == "FailStateEntered"
        }
        _ => false,
    }
}

/// The log stream of an execution: `states/<machine>/<start, to the minute>/<execution id>`.
fn stream_name(machine: &str, start_ms: i64, execution_arn: &str) -> String {
    let minute = chrono::DateTime::from_timestamp_millis(start_ms)
        .map(|t| t.format("%Y-%m-%d-%H-%M").to_string())
        .unwrap_or_default();
    let id = execution_arn.rsplit(':').next().unwrap_or_default();
    format!("states/{machine}/{minute}/{id}")
}

/// The log message of one history event, in Step Functions' log format.
fn message(
    h: &HistoryEvent,
    execution_arn: &str,
    redrive_count: u32,
    include_data: bool,
) -> String {
    let mut details = h.details.as_ref().map_or(json!({}), |(_, d)| d.clone());
    if !include_data && let Some(d) = details.as_object_mut() {
        d.retain(|k, _| k != "input" && k != "output");
    }
    json!({
        "id": h.id.to_string(),
        "type": h.kind,
        "details": details,
        "previous_event_id": h.previous_event_id.to_string(),
        "event_timestamp": h.timestamp_ms.to_string(),
        "execution_arn": execution_arn,
        "redrive_count": redrive_count.to_string(),
    })
    .to_string()
}

/// The batch for `history` under `config` (a `loggingConfiguration`); `None` when nothing is
/// to be logged.
pub fn batch(
    config: Option<&Value>,
    machine: &str,
    execution_arn: &str,
    start_ms: i64,
    redrive_count: u32,
    history: &[HistoryEvent],
) -> Option<LogBatch> {
    let config = config?;
    let level = config.get("level").and_then(Value::as_str).unwrap_or("OFF");
    let include_data = config
        .get("includeExecutionData")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let groups: Vec<(String, String, String)> = config
        .get("destinations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| d.pointer("/cloudWatchLogsLogGroup/logGroupArn")?.as_str())
        .filter_map(group_of)
        .collect();
    let events: Vec<(i64, String)> = history
        .iter()
        .filter(|h| logged(level, &h.kind))
        .map(|h| {
            (
                h.timestamp_ms,
                message(h, execution_arn, redrive_count, include_data),
            )
        })
        .collect();
    (!groups.is_empty() && !events.is_empty()).then(|| LogBatch {
        groups,
        stream: stream_name(machine, start_ms, execution_arn),
        events,
    })
}

/// (name, account, region) of `arn:aws:logs:<region>:<account>:log-group:<name>[:*]`.
fn group_of(arn: &str) -> Option<(String, String, String)> {
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    if parts.len() < 7 || parts[2] != "logs" || parts[5] != "log-group" {
        return None;
    }
    let name = parts[6].strip_suffix(":*").unwrap_or(parts[6]);
    Some((name.to_owned(), parts[4].to_owned(), parts[3].to_owned()))
}

/// Sends `batch` to its log groups in the background.
pub fn deliver(sf: &StepFunctions, batch: LogBatch) {
    let Ok(registry) = sf.registry().cloned() else {
        return;
    };
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    rt.spawn(async move {
        for (group, account, region) in &batch.groups {
            let ctx = RequestContext::internal(account, region, "");
            // A stream per execution, in a group that must exist (else the events are dropped).
            let written = basalt_core::logs::append(
                &registry,
                &ctx,
                group,
                &batch.stream,
                basalt_core::logs::Create::Stream,
                &batch.events,
            )
            .await;
            if let Err(e) = written {
                tracing::debug!(group, error = %e.message, "execution logs dropped");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: u64, kind: &str, details: Value) -> HistoryEvent {
        HistoryEvent {
            id,
            previous_event_id: id - 1,
            timestamp_ms: 1_700_000_000_000 + id as i64,
            kind: kind.into(),
            details: Some((format!("{kind}Details"), details)),
        }
    }

    #[test]
    fn levels_filter_and_data_is_left_out_unless_included() {
        let history = [
            event(
                1,
                "ExecutionStarted",
                json!({"input": "{\"a\":1}", "roleArn": "r"}),
            ),
            event(2, "TaskFailed", json!({"error": "E", "cause": "c"})),
            event(3, "ExecutionFailed", json!({"error": "E", "cause": "c"})),
        ];
        let cfg = |level: &str, data: bool| {
            json!({"level": level, "includeExecutionData": data, "destinations": [
                {"cloudWatchLogsLogGroup": {"logGroupArn": "arn:aws:logs:us-east-1:123456789012:log-group:/sfn/x:*"}}]})
        };
        let kinds = |level: &str| {
            batch(
                Some(&cfg(level, false)),
                "M",
                "arn:aws:states:us-east-1:123456789012:express:M:e1",
                0,
                0,
                &history,
            )
            .map(|b| b.events.len())
            .unwrap_or(0)
        };
        assert_eq!(
            (kinds("ALL"), kinds("ERROR"), kinds("FATAL"), kinds("OFF")),
            (3, 2, 1, 0)
        );
        let b = batch(
            Some(&cfg("ALL", false)),
            "M",
            "arn:aws:states:us-east-1:123456789012:express:M:e1",
            0,
            0,
            &history,
        )
        .unwrap();
        assert_eq!(
            b.groups,
            vec![("/sfn/x".into(), "123456789012".into(), "us-east-1".into())]
        );
        assert_eq!(b.stream, "states/M/1970-01-01-00-00/e1");
        let first: Value = serde_json::from_str(&b.events[0].1).unwrap();
        assert_eq!(first["details"], json!({"roleArn": "r"}));
        assert_eq!(
            (first["id"].as_str(), first["previous_event_id"].as_str()),
            (Some("1"), Some("0"))
        );
        let b = batch(
            Some(&cfg("ALL", true)),
            "M",
            "arn:aws:states:us-east-1:123456789012:express:M:e1",
            0,
            0,
            &history,
        )
        .unwrap();
        let first: Value = serde_json::from_str(&b.events[0].1).unwrap();
        assert_eq!(first["details"]["input"], "{\"a\":1}");
        assert!(batch(None, "M", "x", 0, 0, &history).is_none());
    }
}
