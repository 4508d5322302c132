//! `implicitFilterConfiguration`: the model reads the query and the metadata attributes'
//! descriptions and writes the filter the query implies ("jazz events in 2019" → year
//! equals 2019). Its answer is a tool call decoded under a schema that only allows the
//! given keys and Bedrock's operators, so it is always well-formed; each condition's value
//! is then typed by its attribute (a number that does not parse is dropped, never guessed).

use basalt_core::{AwsError, RequestContext};
use serde_json::{Value, json};

const OPERATORS: [&str; 8] = [
    "equals",
    "notEquals",
    "greaterThan",
    "greaterThanOrEquals",
    "lessThan",
    "lessThanOrEquals",
    "startsWith",
    "listContains",
];

/// Whether `op` applies to an attribute of `ty`.
fn applies(op: &str, ty: &str) -> bool {
    match ty {
        "NUMBER" => !matches!(op, "startsWith" | "listContains"),
        "BOOLEAN" => matches!(op, "equals" | "notEquals"),
        "STRING_LIST" => op == "listContains",
        _ => matches!(op, "equals" | "notEquals" | "startsWith"),
    }
}

/// The Bedrock filter of the model's `conditions` over `attributes`, or `None` when no
/// condition holds up.
pub fn filter_of(conditions: &Value, attributes: &[Value]) -> Option<Value> {
    let mut parts: Vec<Value> = Vec::new();
    for c in conditions.as_array().into_iter().flatten() {
        let (Some(key), Some(op), Some(raw)) = (
            c["key"].as_str(),
            c["operator"].as_str(),
            c["value"].as_str().map(str::trim),
        ) else {
            continue;
        };
        let Some(attr) = attributes.iter().find(|a| a["key"] == key) else {
            continue;
        };
        let ty = attr["type"].as_str().unwrap_or("STRING");
        if !applies(op, ty) || raw.is_empty() {
            continue;
        }
        let value = match ty {
            "NUMBER" => match raw.parse::<f64>() {
                Ok(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => json!(n as i64),
                Ok(n) => json!(n),
                Err(_) => continue,
            },
            "BOOLEAN" => match raw.to_ascii_lowercase().as_str() {
                "true" | "yes" => json!(true),
                "false" | "no" => json!(false),
                _ => continue,
            },
            _ => json!(raw),
        };
        let part = json!({ op: {"key": key, "value": value} });
        if !parts.contains(&part) {
            parts.push(part);
        }
    }
    match parts.len() {
        0 => None,
        1 => parts.pop(),
        _ => Some(json!({"andAll": parts})),
    }
}

/// Both filters when both are given.
pub fn and(explicit: Option<&Value>, implicit: Option<Value>) -> Option<Value> {
    match (explicit.filter(|f| !f.is_null()).cloned(), implicit) {
        (Some(a), Some(b)) => Some(json!({"andAll": [a, b]})),
        (a, b) => a.or(b),
    }
}

/// Asks the model for the filter `query` implies.
pub async fn infer(
    registry: &basalt_core::ServiceRegistry,
    ctx: &RequestContext,
    config: &Value,
    query: &str,
) -> Result<Option<Value>, AwsError> {
    let attributes = config["metadataAttributes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let keys: Vec<&str> = attributes
        .iter()
        .filter_map(|a| a["key"].as_str())
        .collect();
    let listing: String = attributes
        .iter()
        .map(|a| {
            format!(
                "- {} ({}): {}\n",
                a["key"].as_str().unwrap_or_default(),
                a["type"].as_str().unwrap_or("STRING"),
                a["description"].as_str().unwrap_or_default()
            )
        })
        .collect();
    let system = format!(
        "You turn a search query into conditions on the documents' metadata. The documents have these attributes:\n{listing}\nAdd a condition only for what the query itself states about an attribute; call filter with no conditions when it states nothing."
    );
    let schema = json!({"type": "object", "properties": {"conditions": {"type": "array", "items": {
        "type": "object",
        "properties": {
            "key": {"type": "string", "enum": keys},
            "operator": {"type": "string", "enum": OPERATORS},
            "value": {"type": "string"},
        },
        "required": ["key", "operator", "value"],
    }}}, "required": ["conditions"]});
    let mut input = json!({
        "modelId": config["modelArn"],
        "system": [{"text": system}],
        "messages": [{"role": "user", "content": [{"text": query}]}],
        "toolConfig": {
            "tools": [{"toolSpec": {"name": "filter", "description": "Filter the documents searched.", "inputSchema": {"json": schema}}}],
            "toolChoice": {"tool": {"name": "filter"}},
        },
        "inferenceConfig": {"temperature": 0.0, "maxTokens": 256},
    });
    // The agents' model: the small chat model writes poor filters.
    input[basalt_bedrock_runtime::LocalChat::MEMBER] = "agent".into();
    let out = registry
        .call(ctx, "bedrock-runtime", "Converse", input)
        .await?
        .body;
    let conditions = out["output"]["message"]["content"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|b| b.get("toolUse"))
        .map(|u| u["input"]["conditions"].clone())
        .unwrap_or(Value::Null);
    tracing::debug!(%conditions, "implicit filter");
    Ok(filter_of(&conditions, &attributes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs() -> Vec<Value> {
        vec![
            json!({"key": "year", "type": "NUMBER", "description": "year"}),
            json!({"key": "genre", "type": "STRING", "description": "genre"}),
            json!({"key": "tags", "type": "STRING_LIST", "description": "tags"}),
            json!({"key": "free", "type": "BOOLEAN", "description": "free entry"}),
        ]
    }

    #[test]
    fn conditions_become_a_typed_filter() {
        let c = json!([
            {"key": "year", "operator": "greaterThan", "value": "2019"},
            {"key": "genre", "operator": "equals", "value": "music"},
            {"key": "free", "operator": "equals", "value": "Yes"},
        ]);
        assert_eq!(
            filter_of(&c, &attrs()),
            Some(json!({"andAll": [
                {"greaterThan": {"key": "year", "value": 2019}},
                {"equals": {"key": "genre", "value": "music"}},
                {"equals": {"key": "free", "value": true}},
            ]}))
        );
    }

    #[test]
    fn conditions_that_do_not_hold_up_are_dropped() {
        let c = json!([
            {"key": "year", "operator": "equals", "value": "last year"},
            {"key": "genre", "operator": "greaterThan", "value": "music"},
            {"key": "nope", "operator": "equals", "value": "x"},
            {"key": "tags", "operator": "listContains", "value": "outdoor"},
            {"key": "tags", "operator": "listContains", "value": "outdoor"},
        ]);
        assert_eq!(
            filter_of(&c, &attrs()),
            Some(json!({"listContains": {"key": "tags", "value": "outdoor"}}))
        );
        assert_eq!(filter_of(&json!([]), &attrs()), None);
        assert_eq!(filter_of(&Value::Null, &attrs()), None);
    }

    #[test]
    fn explicit_and_implicit_filters_combine() {
        let e = json!({"equals": {"key": "genre", "value": "music"}});
        let i = json!({"equals": {"key": "year", "value": 2019}});
        assert_eq!(
            and(Some(&e), Some(i.clone())),
            Some(json!({"andAll": [e.clone(), i.clone()]}))
        );
        assert_eq!(and(None, Some(i.clone())), Some(i));
        assert_eq!(and(Some(&e), None), Some(e));
        assert_eq!(and(Some(&Value::Null), None), None);
    }
}
