//! A log event as the query engine sees it: its system fields and the fields discovered in
//! its message.

use std::collections::HashMap;

use crate::Event;
use crate::value::Value;

/// Most fields discovered in one JSON event; the discovered-fields page says Insights extracts
/// at most 200 and leaves the rest to `parse`.
const MAX_JSON_FIELDS: usize = 200;

#[derive(Debug, Clone, Default)]
pub(crate) struct Row {
    fields: HashMap<String, Value>,
    /// The event's timestamp, for `earliest`/`latest`; `None` for aggregated rows.
    pub ts: Option<i64>,
}

static NULL: Value = Value::Null;

impl Row {
    pub fn get(&self, name: &str) -> &Value {
        self.fields.get(name).unwrap_or(&NULL)
    }

    /// Sets a field; setting `Null` removes it.
    pub fn set(&mut self, name: &str, v: Value) {
        if v.is_null() {
            self.fields.remove(name);
        } else if let Some(slot) = self.fields.get_mut(name) {
            *slot = v;
        } else {
            self.fields.insert(name.to_string(), v);
        }
    }

    /// The row for one event: the five system fields the discovered-fields page lists
    /// (`@message`, `@timestamp`, `@ingestionTime`, `@logStream`, `@log`) and, for a JSON
    /// message, its fields.
    pub fn from_event(e: &Event<'_>, account_id: Option<&str>) -> Row {
        let mut row = Row {
            fields: HashMap::new(),
            ts: Some(e.timestamp_ms),
        };
        discover_json(e.message, &mut row);
        row.set("@message", Value::Str(e.message.to_string()));
        row.set("@timestamp", Value::Time(e.timestamp_ms));
        row.set("@ingestionTime", Value::Time(e.ingestion_ms));
        row.set("@logStream", Value::Str(e.log_stream.to_string()));
        // "@log is a log group identifier in the form of account-id:log-group-name".
        let log = match account_id {
            Some(a) => format!("{a}:{}", e.log_group),
            None => e.log_group.to_string(),
        };
        row.set("@log", Value::Str(log));
        row
    }
}

/// Adds the fields of a JSON object message: nested fields by dot notation (`userIdentity.type`)
/// and array items by index (`requestParameters.instancesSet.items.0.instanceId`). A top-level
/// name starting with `@` gets another `@` in front, as the discovered-fields page says, so a
/// message cannot overwrite a system field. Values keep their JSON text: a number shows as
/// written and `true` as `true`.
fn discover_json(message: &str, row: &mut Row) {
    let trimmed = message.trim();
    if !trimmed.starts_with('{') {
        return;
    }
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(trimmed)
    else {
        return;
    };
    let mut budget = MAX_JSON_FIELDS;
    for (k, v) in &map {
        let name = if k.starts_with('@') {
            format!("@{k}")
        } else {
            k.clone()
        };
        flatten(&name, v, row, &mut budget);
    }
}

fn flatten(name: &str, v: &serde_json::Value, row: &mut Row, budget: &mut usize) {
    if *budget == 0 {
        return;
    }
    let leaf = match v {
        serde_json::Value::Null => return,
        serde_json::Value::Bool(b) => b.to_string(),
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten(&format!("{name}.{i}"), item, row, budget);
            }
            return;
        }
        serde_json::Value::Object(map) => {
            for (k, item) in map {
                flatten(&format!("{name}.{k}"), item, row, budget);
            }
            return;
        }
    };
    *budget -= 1;
    row.set(name, Value::Str(leaf));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(message: &str) -> Event<'_> {
        Event {
            timestamp_ms: 1_704_164_645_678,
            ingestion_ms: 1_704_164_646_000,
            message,
            log_stream: "stream-1",
            log_group: "/aws/lambda/f",
        }
    }

    fn text(row: &Row, name: &str) -> Option<String> {
        row.get(name).render()
    }

    #[test]
    fn system_fields() {
        let row = Row::from_event(&event("hello"), Some("123456789012"));
        assert_eq!(text(&row, "@message").as_deref(), Some("hello"));
        assert_eq!(
            text(&row, "@timestamp").as_deref(),
            Some("2024-01-02 03:04:05.678")
        );
        assert_eq!(
            text(&row, "@ingestionTime").as_deref(),
            Some("2024-01-02 03:04:06.000")
        );
        assert_eq!(text(&row, "@logStream").as_deref(), Some("stream-1"));
        assert_eq!(
            text(&row, "@log").as_deref(),
            Some("123456789012:/aws/lambda/f")
        );
        let row = Row::from_event(&event("hello"), None);
        assert_eq!(text(&row, "@log").as_deref(), Some("/aws/lambda/f"));
    }

    #[test]
    fn cloudtrail_example_from_the_discovered_fields_page() {
        // https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_AnalyzeLogData-discoverable-fields.html
        let msg = r#"{ "eventVersion": "1.0",
            "userIdentity": { "type": "IAMUser", "accountId": "123456789012" },
            "eventName": "StartInstances",
            "requestParameters": { "instancesSet": { "items": [ { "instanceId": "i-abcde123" } ] } },
            "responseElements": { "instancesSet": { "items": [ {
                "instanceId": "i-abcde123",
                "currentState": { "code": 0, "name": "pending" } } ] } } }"#;
        let row = Row::from_event(&event(msg), None);
        assert_eq!(text(&row, "userIdentity.type").as_deref(), Some("IAMUser"));
        assert_eq!(
            text(&row, "requestParameters.instancesSet.items.0.instanceId").as_deref(),
            Some("i-abcde123")
        );
        assert_eq!(
            text(
                &row,
                "responseElements.instancesSet.items.0.currentState.code"
            )
            .as_deref(),
            Some("0")
        );
        assert_eq!(text(&row, "eventVersion").as_deref(), Some("1.0"));
        assert_eq!(text(&row, "@message").as_deref(), Some(msg));
    }

    #[test]
    fn json_edge_cases() {
        let row = Row::from_event(
            &event(r#"{"@timestamp": "x", "ok": true, "n": null, "tags": ["a", "b"], "f": 1.50}"#),
            None,
        );
        assert_eq!(text(&row, "@@timestamp").as_deref(), Some("x"));
        assert_eq!(
            text(&row, "@timestamp").as_deref(),
            Some("2024-01-02 03:04:05.678")
        );
        assert_eq!(text(&row, "ok").as_deref(), Some("true"));
        assert_eq!(text(&row, "n"), None);
        assert_eq!(text(&row, "tags.1").as_deref(), Some("b"));
        assert_eq!(text(&row, "f").as_deref(), Some("1.5"));
        // Not JSON objects: nothing discovered, nothing fails.
        for m in ["[1,2]", "{broken", "{\"a\":", "  plain text {\"a\":1}"] {
            let row = Row::from_event(&event(m), None);
            assert_eq!(text(&row, "a"), None, "{m}");
        }
    }

    #[test]
    fn at_most_200_fields_are_discovered() {
        let body: Vec<String> = (0..300).map(|i| format!("\"k{i}\": {i}")).collect();
        let msg = format!("{{{}}}", body.join(","));
        let row = Row::from_event(&event(&msg), None);
        assert_eq!(text(&row, "k199").as_deref(), Some("199"));
        assert_eq!(text(&row, "k200"), None);
    }
}
