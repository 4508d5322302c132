//! The expression conformance table: every `tests/conformance/*.json` file holds cases written
//! from the DynamoDB Developer Guide (each names its page in `source`), with DynamoDB's exact
//! messages for the error cases.
//!
//! A case has an `item` (DynamoDB JSON, default `{}`, or the name of one in `_items.json`), optional `names` and `values` (the
//! request's ExpressionAttributeNames/Values) and one expression:
//! - `condition` or `filter`: `result` is the boolean the item gives;
//! - `update`: `result` is the item after the update; `updated_new` / `updated_old`
//!   optionally the item projected through the updated paths;
//! - `projection`: `result` is the projected item;
//! - `key` with `schema` (`[hash]` or `[hash, range]`): `result` is
//!   `{"hash": <value>, "range": [<OP>, <values>...]}` and `matches` optionally lists sort
//!   key values with whether the range condition accepts them;
//! - `value`: `result` is the canonical DynamoDB JSON of the item.
//!
//! Or `error`: the exact message, from parsing, from the unused-names check, or from
//! applying the update.

use basalt_dynamodb_expr::{
    AttributeValue, ExprKind, Params, Projection, RangeCondition, item_from_json, item_to_json,
    parse_condition, parse_key_condition, parse_projection, parse_update,
};
use serde_json::{Value, json};
use std::path::Path;

fn range_json(r: &RangeCondition) -> Value {
    let (op, vals): (&str, Vec<&AttributeValue>) = match r {
        RangeCondition::Eq(v) => ("EQ", vec![v]),
        RangeCondition::Lt(v) => ("LT", vec![v]),
        RangeCondition::Le(v) => ("LE", vec![v]),
        RangeCondition::Gt(v) => ("GT", vec![v]),
        RangeCondition::Ge(v) => ("GE", vec![v]),
        RangeCondition::Between(a, b) => ("BETWEEN", vec![a, b]),
        RangeCondition::BeginsWith(v) => ("BEGINS_WITH", vec![v]),
    };
    let mut out = vec![json!(op)];
    out.extend(vals.into_iter().map(AttributeValue::to_json));
    Value::Array(out)
}

/// Runs one case; `Err` describes a mismatch. A string `item` names one in `_items.json`.
fn run(case: &Value, items: &Value) -> Result<(), String> {
    let item = match case.get("item") {
        Some(Value::String(name)) => items.get(name).ok_or(format!("no item {name}"))?,
        Some(v) => v,
        None => &json!({}),
    };
    let item = item_from_json(item).map_err(|e| format!("bad item: {e}"))?;
    let expected_error = case.get("error").and_then(Value::as_str);
    let outcome: Result<Value, String> = (|| {
        if let Some(v) = case.get("value") {
            return item_from_json(v).map(|i| item_to_json(&i)).map_err(|e| e.0);
        }
        let mut params = Params::new(case.get("names"), case.get("values")).map_err(|e| e.0)?;
        let out = if let Some(e) = case.get("condition").or(case.get("filter")) {
            let kind = if case.get("condition").is_some() {
                ExprKind::Condition
            } else {
                ExprKind::Filter
            };
            let c = parse_condition(e.as_str().unwrap(), kind, &mut params).map_err(|e| e.0)?;
            params.finish().map_err(|e| e.0)?;
            json!(c.eval(&item))
        } else if let Some(e) = case.get("update") {
            let u = parse_update(e.as_str().unwrap(), &mut params).map_err(|e| e.0)?;
            params.finish().map_err(|e| e.0)?;
            let mut new = item.clone();
            let paths = u.apply(&mut new).map_err(|e| e.0)?;
            let proj = Projection::from_paths(paths);
            if let Some(want) = case.get("updated_new") {
                let got = item_to_json(&proj.apply(&new));
                if &got != want {
                    return Err(format!("updated_new: got {got}, want {want}"));
                }
            }
            if let Some(want) = case.get("updated_old") {
                let got = item_to_json(&proj.apply(&item));
                if &got != want {
                    return Err(format!("updated_old: got {got}, want {want}"));
                }
            }
            item_to_json(&new)
        } else if let Some(e) = case.get("projection") {
            let p = parse_projection(e.as_str().unwrap(), &mut params).map_err(|e| e.0)?;
            params.finish().map_err(|e| e.0)?;
            item_to_json(&p.apply(&item))
        } else if let Some(e) = case.get("key") {
            let k = parse_key_condition(e.as_str().unwrap(), &mut params).map_err(|e| e.0)?;
            params.finish().map_err(|e| e.0)?;
            let schema: Vec<&str> = case["schema"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect();
            let r = k
                .resolve(schema[0], schema.get(1).copied())
                .map_err(|e| e.0)?;
            if let Some(list) = case.get("matches").and_then(Value::as_array) {
                for m in list {
                    let v = AttributeValue::from_json(&m[0]).unwrap();
                    let got = r.range.as_ref().is_none_or(|rc| rc.matches(&v));
                    if json!(got) != m[1] {
                        return Err(format!("range match of {} gave {got}", m[0]));
                    }
                }
            }
            json!({"hash": r.hash.to_json(), "range": r.range.as_ref().map(range_json)})
        } else {
            return Err("case has no expression".into());
        };
        Ok(out)
    })();
    match (outcome, expected_error) {
        (Ok(got), None) => match case.get("result") {
            Some(want) if &got == want => Ok(()),
            Some(want) => Err(format!("got {got}, want {want}")),
            None => Err("case has no result".into()),
        },
        (Ok(got), Some(e)) => Err(format!("got {got}, want error {e:?}")),
        (Err(msg), Some(e)) if msg == e => Ok(()),
        (Err(msg), Some(e)) => Err(format!("got error {msg:?}, want {e:?}")),
        (Err(msg), None) => Err(format!("unexpected error {msg:?}")),
    }
}

#[test]
fn conformance_table() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let items: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("_items.json")).unwrap()).unwrap();
    let (mut total, mut failures) = (0, Vec::new());
    let is_table = |f: &&std::path::PathBuf| {
        f.extension().is_some_and(|e| e == "json")
            && !f.file_name().unwrap().to_string_lossy().starts_with('_')
    };
    for f in files.iter().filter(is_table) {
        let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(f).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for (i, case) in cases.iter().enumerate() {
            total += 1;
            let source = case.get("source").and_then(Value::as_str).unwrap_or("");
            assert!(
                source.starts_with("https://docs.aws.amazon.com/amazondynamodb/"),
                "{}#{i}: every case cites its Developer Guide page",
                f.display()
            );
            if let Err(e) = run(case, &items) {
                let name = case.get("name").and_then(Value::as_str).unwrap_or("?");
                failures.push(format!(
                    "{}#{i} ({name}): {e}",
                    f.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(total >= 120, "only {total} cases");
}
