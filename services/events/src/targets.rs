//! PutTargets, RemoveTargets and ListTargetsByRule.

use crate::model::bus_name;
use crate::rules::{self, Edited, present, update};
use crate::{Events, limit, required, str_of, token, untoken, validation};
use basalt_core::{AwsError, RequestContext};
use serde_json::{Map, Value, json};

/// At most this many targets per rule.
const MAX_TARGETS: usize = 5;

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// Checks one target; the error is its `FailedEntries` entry's (code, message).
fn check(target: &Value) -> Result<(), (String, String)> {
    let fail = |m: &str| Err(("ValidationException".to_owned(), m.to_owned()));
    let arn = str_of(target, "Arn").unwrap_or("");
    if !arn.starts_with("arn:") || arn.split(':').count() < 6 {
        return fail(&format!(
            "Parameter {arn} is not valid. Reason: Provided Arn is not in correct format."
        ));
    }
    let given = ["Input", "InputPath", "InputTransformer"]
        .iter()
        .filter(|m| target.get(**m).is_some())
        .count();
    if given > 1 {
        return fail("Only one of Input, InputPath, or InputTransformer must be provided.");
    }
    if let Some(input) = str_of(target, "Input")
        && serde_json::from_str::<Value>(input).is_err()
    {
        return fail("Input is not valid JSON text.");
    }
    if let Some(path) = str_of(target, "InputPath")
        && crate::transform::JsonPath::parse(path).is_none()
    {
        return fail(&format!("InputPath {path} is not a valid JSONPath."));
    }
    if let Some(t) = target.get("InputTransformer") {
        crate::transform::Transformer::parse(t)
            .map_err(|m| ("ValidationException".to_owned(), m))?;
    }
    if let Some(r) = target.get("RetryPolicy") {
        let attempts = r.get("MaximumRetryAttempts").and_then(Value::as_i64);
        let age = r.get("MaximumEventAgeInSeconds").and_then(Value::as_i64);
        if attempts.is_some_and(|a| !(0..=185).contains(&a))
            || age.is_some_and(|a| !(60..=86_400).contains(&a))
        {
            return fail(
                "RetryPolicy is not valid: MaximumRetryAttempts must be between 0 and 185, MaximumEventAgeInSeconds between 60 and 86400.",
            );
        }
    }
    if let Some(d) = target.get("DeadLetterConfig")
        && str_of(d, "Arn").is_some_and(|a| !a.starts_with("arn:aws:sqs:"))
    {
        return fail("The dead-letter queue must be an SQS queue.");
    }
    Ok(())
}

pub fn put(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let bus = bus_name(str_of(input, "EventBusName"));
    let name = required(input, "Rule")?;
    rules::must_load(events, ctx, &bus, name)?;
    let given = input
        .get("Targets")
        .and_then(Value::as_array)
        .filter(|t| !t.is_empty() && t.len() <= 10)
        .ok_or_else(|| validation("1 validation error detected: Value at 'targets' failed to satisfy constraint: Member must have length between 1 and 10"))?;
    for t in given {
        let id = str_of(t, "Id").unwrap_or("");
        if !valid_id(id) {
            return Err(validation(format!(
                "1 validation error detected: Value '{id}' at 'targets.member.id' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+"
            )));
        }
    }
    let failed = update(events, ctx, &bus, name, |rule| {
        let mut rule = present(rule, &bus, name)?;
        rules::unmanaged(&rule, false)?;
        let mut failed = Vec::new();
        for t in given {
            let id = str_of(t, "Id").unwrap_or("");
            if let Err((code, message)) = check(t) {
                failed.push(json!({"TargetId": id, "ErrorCode": code, "ErrorMessage": message}));
                continue;
            }
            let count = rule.targets.len();
            match rule
                .targets
                .iter_mut()
                .find(|x| str_of(x, "Id") == Some(id))
            {
                Some(existing) => *existing = t.clone(),
                None if count >= MAX_TARGETS => {
                    return Err(AwsError::new(
                        400,
                        "LimitExceededException",
                        format!(
                            "The requested resource exceeds the maximum number allowed. Rule {name} can have at most {MAX_TARGETS} targets."
                        ),
                    ));
                }
                None => rule.targets.push(t.clone()),
            }
        }
        Ok(Edited {
            rule: Some(rule),
            extra: Vec::new(),
            out: failed,
        })
    })?;
    Ok(json!({"FailedEntryCount": failed.len(), "FailedEntries": failed}))
}

pub fn remove(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let bus = bus_name(str_of(input, "EventBusName"));
    let name = required(input, "Rule")?;
    let ids: Vec<&str> = input
        .get("Ids")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if ids.is_empty() {
        return Err(validation(
            "1 validation error detected: Value at 'ids' failed to satisfy constraint: Member must have length greater than or equal to 1",
        ));
    }
    let force = input.get("Force").and_then(Value::as_bool) == Some(true);
    rules::must_load(events, ctx, &bus, name)?;
    update(events, ctx, &bus, name, |rule| {
        let mut rule = present(rule, &bus, name)?;
        rules::unmanaged(&rule, force)?;
        rule.targets
            .retain(|t| !ids.contains(&str_of(t, "Id").unwrap_or("")));
        Ok(Edited {
            rule: Some(rule),
            extra: Vec::new(),
            out: (),
        })
    })?;
    // Ids that name no target are not failures, as AWS answers them.
    Ok(json!({"FailedEntryCount": 0, "FailedEntries": []}))
}

pub fn list(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let bus = bus_name(str_of(input, "EventBusName"));
    let rule = rules::must_load(events, ctx, &bus, required(input, "Rule")?)?;
    let limit = limit(input, 100)?;
    let start = match str_of(input, "NextToken") {
        Some(t) => untoken(t)?
            .parse::<usize>()
            .map_err(|_| validation("The nextToken provided is invalid."))?,
        None => 0,
    };
    let page: Vec<Value> = rule
        .targets
        .iter()
        .skip(start)
        .take(limit)
        .cloned()
        .collect();
    let mut out = Map::new();
    let end = start + page.len();
    out.insert("Targets".into(), Value::Array(page));
    if end < rule.targets.len() {
        out.insert("NextToken".into(), token(&end.to_string()).into());
    }
    Ok(Value::Object(out))
}
