//! The bridge to `basalt-jsonata` for JSONata states: `$states` and the workflow variables
//! as bindings, the functions AWS adds (`$partition`, `$range`, `$hash`, `$random`, `$uuid`,
//! `$parse`), and a clock and random source drawn from the run so a replayed step evaluates
//! the same way.
//! <https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html>

use basalt_jsonata::{Expression, Functions, JsonataError};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) const QUERY_ERROR: &str = "States.QueryEvaluationError";

/// Parse only (validation): the parser's message when the expression is malformed.
pub(crate) fn check(expr: &str) -> Result<(), String> {
    Expression::parse(expr).map(|_| ()).map_err(|e| e.message)
}

/// Evaluate `expr` with `$states` bound to `states` and each variable bound by name.
/// `Ok(None)` is JSONata's undefined.
pub(crate) fn evaluate(
    expr: &str,
    states: &Value,
    vars: &Map<String, Value>,
    rand: &mut dyn FnMut() -> u64,
) -> Result<Option<Value>, (String, String)> {
    let e = Expression::parse(expr).map_err(|e| fail(expr, &e))?;
    let mut bindings = vars.clone();
    bindings.insert("states".into(), states.clone());
    let f = functions(rand(), states);
    // Step Functions gives JSONata no input document: data comes through `$states`.
    e.evaluate_without_input(&bindings, &f)
        .map_err(|e| fail(expr, &e))
}

fn fail(expr: &str, e: &JsonataError) -> (String, String) {
    (
        QUERY_ERROR.into(),
        format!(
            "An error occurred while executing the JSONata expression '{expr}': {}: {}",
            e.code, e.message
        ),
    )
}

fn err(message: &str) -> JsonataError {
    JsonataError::custom("States.QueryEvaluationError", message)
}

fn functions(seed: u64, states: &Value) -> Functions {
    let mut f = Functions::new();
    let counter = Arc::new(AtomicU64::new(0));
    let next = move || {
        crate::rng::mix(seed ^ crate::rng::mix(counter.fetch_add(1, Ordering::Relaxed) + 1))
    };
    let next = Arc::new(next);
    let n1 = next.clone();
    f.random(move || (n1() >> 11) as f64 / (1u64 << 53) as f64);
    let entered = states
        .pointer("/context/State/EnteredTime")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis())
        .unwrap_or(0);
    f.clock(move || entered);
    let n2 = next.clone();
    f.register("uuid", move |_| {
        Ok(Value::String(crate::rng::uuid(n2(), n2())))
    });
    let n3 = next.clone();
    f.register("random", move |args| {
        // `$random(seed)` is repeatable; `$random()` draws from the run.
        let r = match args.first().and_then(Value::as_f64) {
            Some(s) => crate::rng::mix(s.to_bits()),
            None => n3(),
        };
        Ok(json!((r >> 11) as f64 / (1u64 << 53) as f64))
    });
    f.register("partition", |args| {
        let (Some(Value::Array(a)), Some(n)) = (args.first(), args.get(1).and_then(Value::as_f64))
        else {
            return Err(err("$partition takes an array and a chunk size"));
        };
        if n < 1.0 || n.fract() != 0.0 {
            return Err(err("$partition: the chunk size must be a positive integer"));
        }
        Ok(Value::Array(
            a.chunks(n as usize)
                .map(|c| Value::Array(c.to_vec()))
                .collect(),
        ))
    });
    f.register("range", |args| {
        let nums: Vec<Option<f64>> = (0..3)
            .map(|i| args.get(i).and_then(Value::as_f64))
            .collect();
        let (Some(start), Some(end), Some(step)) = (nums[0], nums[1], nums[2]) else {
            return Err(err("$range takes a start, an end and a step"));
        };
        if step == 0.0 {
            return Err(err("$range: the step must not be 0"));
        }
        let mut out = Vec::new();
        let mut x = start;
        while (step > 0.0 && x <= end) || (step < 0.0 && x >= end) {
            out.push(json!(x));
            if out.len() > 1000 {
                return Err(err("$range: the array would have more than 1000 items"));
            }
            x += step;
        }
        Ok(Value::Array(out))
    });
    f.register("hash", |args| {
        let data = match args.first() {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => return Err(err("$hash takes the data and an algorithm")),
        };
        let alg = args.get(1).and_then(Value::as_str).unwrap_or("SHA-256");
        crate::intrinsics::hash(&data, alg)
            .map(Value::String)
            .map_err(|e| err(&e))
    });
    f.register("parse", |args| match args.first() {
        Some(Value::String(s)) => serde_json::from_str(s).map_err(|e| err(&format!("$parse: {e}"))),
        _ => Err(err("$parse takes a JSON string")),
    });
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(expr: &str, states: Value) -> Result<Option<Value>, (String, String)> {
        let mut r = || 7u64;
        evaluate(expr, &states, &Map::new(), &mut r)
    }

    #[test]
    fn states_and_aws_functions() {
        assert_eq!(
            eval("$states.input.a + 1", json!({"input": {"a": 2}})).unwrap(),
            Some(json!(3))
        );
        assert_eq!(
            eval("$partition([1,2,3], 2)", json!({})).unwrap(),
            Some(json!([[1, 2], [3]]))
        );
        assert_eq!(
            eval("$range(0, 10, 5)", json!({})).unwrap(),
            Some(json!([0, 5, 10]))
        );
        assert_eq!(
            eval("$parse('{\"x\": 1}').x", json!({})).unwrap(),
            Some(json!(1))
        );
        assert_eq!(
            eval("$hash('input data', 'SHA-1')", json!({})).unwrap(),
            Some(json!("aaff4a450a104cd177d28d18d74485e8cae074b7"))
        );
        assert_eq!(
            eval("$length($uuid())", json!({})).unwrap(),
            Some(json!(36))
        );
        assert_eq!(
            eval("$random(3) = $random(3)", json!({})).unwrap(),
            Some(json!(true))
        );
        assert_eq!(
            eval("$states.input.missing", json!({"input": {}})).unwrap(),
            None
        );
        assert_eq!(eval("1 +", json!({})).unwrap_err().0, QUERY_ERROR);
        assert!(check("a[1,2)").is_err());
    }
}
