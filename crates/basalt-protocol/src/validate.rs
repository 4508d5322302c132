//! Server-side input validation against the model's constraints (required members, length
//! and range bounds, enums), with AWS's message format:
//! `1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null`.

use basalt_spec::{ServiceModel, ShapeRef, ShapeType};
use serde_json::Value;

/// Returns AWS's validation message, or `None` when the input is valid.
pub fn validate(model: &ServiceModel, input: &ShapeRef, value: &Value) -> Option<String> {
    let mut errors = Vec::new();
    check(model, input, value, "", &mut errors, 0);
    if errors.is_empty() {
        return None;
    }
    let n = errors.len();
    let plural = if n == 1 { "error" } else { "errors" };
    Some(format!(
        "{n} validation {plural} detected: {}",
        errors.join("; ")
    ))
}

/// Enums a service takes beyond its model's values, checking them itself with its own error:
/// SQS's ReceiveMessage takes message attribute names (`SentTimestamp`, as AWS's own examples
/// send) in `AttributeNames`, typed as queue attribute names, and GetQueueAttributes answers
/// an unknown name with `InvalidAttributeName`, not a validation error.
const OPEN_ENUMS: &[(&str, &str)] = &[("SQS", "QueueAttributeName")];

fn open_enum(model: &ServiceModel, shape: &str) -> bool {
    let service = model.metadata.service_id.as_deref().unwrap_or("");
    OPEN_ENUMS.iter().any(|(s, n)| *s == service && *n == shape)
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn check(
    model: &ServiceModel,
    r: &ShapeRef,
    v: &Value,
    path: &str,
    errors: &mut Vec<String>,
    depth: usize,
) {
    let Some(shape) = model.shape(&r.shape) else {
        return;
    };
    if depth > 32 || errors.len() >= 10 {
        return;
    }
    let shown = |v: &Value| match v {
        Value::String(s) => format!("'{s}'"),
        other => format!("'{other}'"),
    };
    match (shape.kind, v) {
        (ShapeType::Structure, Value::Object(obj)) if !shape.document => {
            for req in &shape.required {
                if obj.get(req).is_none_or(Value::is_null) {
                    let p = if path.is_empty() {
                        lower_first(req)
                    } else {
                        format!("{path}.{}", lower_first(req))
                    };
                    errors.push(format!(
                        "Value null at '{p}' failed to satisfy constraint: Member must not be null"
                    ));
                }
            }
            for (name, mref) in &shape.members {
                if let Some(mv) = obj.get(name).filter(|v| !v.is_null()) {
                    let p = if path.is_empty() {
                        lower_first(name)
                    } else {
                        format!("{path}.{}", lower_first(name))
                    };
                    check(model, mref, mv, &p, errors, depth + 1);
                }
            }
        }
        (ShapeType::List, Value::Array(items)) => {
            bounds(
                shape.min,
                shape.max,
                items.len() as f64,
                "length",
                path,
                &shown(v),
                errors,
            );
            if let Some(m) = shape.member.as_deref() {
                for (i, item) in items.iter().enumerate() {
                    check(
                        model,
                        m,
                        item,
                        &format!("{path}.{}", i + 1),
                        errors,
                        depth + 1,
                    );
                }
            }
        }
        (ShapeType::Map, Value::Object(obj)) => {
            bounds(
                shape.min,
                shape.max,
                obj.len() as f64,
                "length",
                path,
                &shown(v),
                errors,
            );
            if let Some(m) = shape.value.as_deref() {
                for (k, item) in obj {
                    check(model, m, item, &format!("{path}.{k}"), errors, depth + 1);
                }
            }
        }
        (ShapeType::String, Value::String(s)) => {
            bounds(
                shape.min,
                shape.max,
                s.chars().count() as f64,
                "length",
                path,
                &shown(v),
                errors,
            );
            if let Some(pattern) = &shape.pattern
                && !matches_pattern(pattern, s)
            {
                errors.push(format!(
                        "Value {} at '{path}' failed to satisfy constraint: Member must satisfy regular expression pattern: {pattern}",
                        shown(v)
                    ));
            }
            if let Some(values) = &shape.enum_values
                && !values.iter().any(|e| e == s)
                && !open_enum(model, &r.shape)
            {
                errors.push(format!(
                        "Value {} at '{path}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                        shown(v),
                        values.join(", ")
                    ));
            }
        }
        (
            ShapeType::Integer | ShapeType::Long | ShapeType::Float | ShapeType::Double,
            Value::Number(n),
        ) => {
            if let Some(f) = n.as_f64() {
                bounds(shape.min, shape.max, f, "value", path, &shown(v), errors);
            }
        }
        _ => {}
    }
}

fn bounds(
    min: Option<f64>,
    max: Option<f64>,
    actual: f64,
    what: &str,
    path: &str,
    shown: &str,
    errors: &mut Vec<String>,
) {
    if let Some(min) = min.filter(|m| actual < *m) {
        let rel = if what == "length" {
            "Member must have length greater than or equal to"
        } else {
            "Member must have value greater than or equal to"
        };
        errors.push(format!(
            "Value {shown} at '{path}' failed to satisfy constraint: {rel} {min}"
        ));
    }
    if let Some(max) = max.filter(|m| actual > *m) {
        let rel = if what == "length" {
            "Member must have length less than or equal to"
        } else {
            "Member must have value less than or equal to"
        };
        errors.push(format!(
            "Value {shown} at '{path}' failed to satisfy constraint: {rel} {max}"
        ));
    }
}

/// Rewrites the Java-isms of the models' patterns for Rust's engine: UTF-16 surrogate ranges
/// (a pair of them means "any supplementary character") and Java's POSIX `\p{…}` classes.
/// Also mends a slip of some models (bedrock-agent's taggable ARNs), which write the account
/// id's `\d{12}` as `/d{12}`: taken literally, no real ARN would pass.
fn from_java(pattern: &str) -> String {
    pattern
        .replace(":/d{12}:", ":\\d{12}:")
        .replace("(?::/d+)", "(?::\\d+)")
        .replace("\\uD800\\uDC00-\\uDBFF\\uDFFF", "\\x{10000}-\\x{10FFFF}")
        .replace("\\uD7FF", "\\x{D7FF}")
        .replace("\\p{ASCII}", "[\\x00-\\x7F]")
        .replace("\\p{Print}", "[\\x20-\\x7E]")
        .replace("\\p{Alnum}", "[0-9A-Za-z]")
        .replace("\\p{Alpha}", "[A-Za-z]")
        .replace("\\p{Punct}", "[!-/:-@\\[-`{-~]")
        .replace("\\z", "$")
}

/// Whether `value` matches a model pattern, anchored as AWS's services apply them. Patterns our
/// regex engine cannot compile (look-around, surrogate ranges) are not enforced.
fn matches_pattern(pattern: &str, value: &str) -> bool {
    use parking_lot::Mutex;
    use std::collections::HashMap;
    use std::sync::OnceLock;
    static CACHE: OnceLock<Mutex<HashMap<String, Option<regex::Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock();
    let re = cache.entry(pattern.to_owned()).or_insert_with(|| {
        regex::RegexBuilder::new(&format!("^(?:{})$", from_java(pattern)))
            .size_limit(1 << 20)
            .build()
            .ok()
    });
    re.as_ref().is_none_or(|re| re.is_match(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_lengths_enums_and_patterns() {
        let m = basalt_spec::model("sts").unwrap();
        let input = m.operation("AssumeRole").unwrap().input.clone().unwrap();
        assert_eq!(
            validate(&m, &input, &serde_json::json!({"RoleSessionName": "s1"})).unwrap(),
            "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null"
        );
        let bad = serde_json::json!({"RoleArn": "arn:aws:iam::000000000000:role/r", "RoleSessionName": "bad session name!"});
        let msg = validate(&m, &input, &bad).unwrap();
        assert!(msg.contains("at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern"), "{msg}");
        let ok = serde_json::json!({"RoleArn": "arn:aws:iam::000000000000:role/r", "RoleSessionName": "good-session@x.y"});
        assert_eq!(validate(&m, &input, &ok), None);
        let short = serde_json::json!({"RoleArn": "arn:aws:iam::000000000000:role/r", "RoleSessionName": "s"});
        assert!(
            validate(&m, &input, &short)
                .unwrap()
                .contains("Member must have length greater than or equal to 2")
        );
    }

    #[test]
    fn sqs_checks_attribute_names_itself() {
        for name in ["sqs", "sqs-query"] {
            let m = basalt_spec::model(name).unwrap();
            let input = m
                .operation("ReceiveMessage")
                .unwrap()
                .input
                .clone()
                .unwrap();
            let v = serde_json::json!({"QueueUrl": "u", "AttributeNames": ["SentTimestamp"]});
            assert_eq!(validate(&m, &input, &v), None, "{name}");
            // Other enums stay closed.
            let bad = serde_json::json!({"QueueUrl": "u", "MessageSystemAttributeNames": ["Nope"]});
            if name == "sqs" {
                assert!(
                    validate(&m, &input, &bad)
                        .unwrap()
                        .contains("enum value set")
                );
            }
        }
    }

    #[test]
    fn slashed_digit_classes_of_arn_patterns_mean_digits() {
        let p = ".*(^arn:aws:bedrock:[a-zA-Z0-9-]+:/d{12}:(agent|knowledge-base)/[A-Z0-9]{10}$).*";
        assert!(matches_pattern(
            p,
            "arn:aws:bedrock:us-east-1:000000000000:knowledge-base/ABCDE12345"
        ));
        assert!(!matches_pattern(
            p,
            "arn:aws:bedrock:us-east-1:0000:knowledge-base/ABCDE12345"
        ));
    }

    #[test]
    fn every_model_pattern_is_handled() {
        // Compiling every pattern of every vendored model must not panic, and the share we
        // cannot enforce stays small.
        let (mut total, mut skipped) = (0, 0);
        for svc in basalt_spec::SERVICES {
            let m = basalt_spec::model(svc).unwrap();
            for shape in m.shapes.values() {
                if let Some(p) = &shape.pattern {
                    total += 1;
                    if regex::Regex::new(&format!("^(?:{})$", from_java(p))).is_err() {
                        skipped += 1;
                    }
                    let _ = matches_pattern(p, "x");
                }
            }
        }
        assert!(
            skipped * 20 < total,
            "{skipped} of {total} patterns unenforceable"
        );
    }
}
