//! The PartiQL examples of the DynamoDB Developer Guide (`tests/guide/cases.json`, each
//! citing its page) run against sample items, the way the service runs them: WHERE through
//! `Condition::eval`, SET/REMOVE through `Update::apply`, keys through the statement's own
//! key methods. The table of cases, not this runner, is the specification.

use basalt_dynamodb_expr::ast::Projection;
use basalt_dynamodb_expr::{AttributeValue, Item, item_from_json, item_to_json};
use basalt_partiql::{Returning, Statement, parse};
use serde_json::{Value, json};

struct Table {
    hash: String,
    range: Option<String>,
    items: Vec<Item>,
}

impl Table {
    fn key_of(&self, item: &Item) -> Item {
        let mut key = Item::new();
        for name in std::iter::once(&self.hash).chain(self.range.as_ref()) {
            if let Some(v) = item.get(name) {
                key.insert(name.clone(), v.clone());
            }
        }
        key
    }

    fn find(&self, key: &Item) -> Option<&Item> {
        self.items.iter().find(|i| &self.key_of(i) == key)
    }
}

/// What running one case gave, in the vocabulary of the table.
#[derive(Default)]
struct Outcome {
    select: Option<Vec<Value>>,
    query: Option<Value>,
    write: Option<Value>,
    returning: Option<Value>,
    failure: Option<String>,
    exists: Option<bool>,
    error: Option<String>,
}

fn run(case: &Value, tables: &Value) -> Outcome {
    let statement = case["statement"].as_str().unwrap();
    let params: Vec<AttributeValue> = case
        .get("params")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .map(|p| AttributeValue::from_json(p).unwrap())
                .collect()
        })
        .unwrap_or_default();
    let stmt = match parse(statement, &params) {
        Ok(s) => s,
        Err(e) => {
            return Outcome {
                error: Some(e.0),
                ..Outcome::default()
            };
        }
    };
    let t = &tables[stmt.table()];
    assert!(t.is_object(), "no sample table {}", stmt.table());
    let items = case.get("given").unwrap_or(&t["items"]);
    let table = Table {
        hash: t["hash"].as_str().unwrap().to_string(),
        range: t.get("range").and_then(Value::as_str).map(str::to_string),
        items: items
            .as_array()
            .unwrap()
            .iter()
            .map(|i| item_from_json(i).unwrap())
            .collect(),
    };
    let (hash, range) = (table.hash.as_str(), table.range.as_deref());
    let mut out = Outcome::default();
    let fail = |out: &mut Outcome, msg: String| out.error = Some(msg);
    match stmt {
        Statement::Select(s) => {
            let selected = table
                .items
                .iter()
                .filter(|i| s.condition.as_ref().is_none_or(|c| c.eval(i)))
                .map(|i| item_to_json(&s.project(i)))
                .collect();
            out.select = Some(selected);
            out.query = Some(match s.key_condition(hash, range) {
                None => json!("scan"),
                Some(keys) => Value::Array(keys.iter().map(|k| k.hash.to_json()).collect()),
            });
        }
        Statement::Insert(i) => {
            if table.find(&table.key_of(&i.item)).is_some() {
                out.failure = Some("DuplicateItem".into());
            } else {
                out.write = Some(item_to_json(&i.item));
            }
        }
        Statement::Update(u) => {
            let key = match u.key(hash, range) {
                Ok(k) => k,
                Err(e) => {
                    fail(&mut out, e.0);
                    return out;
                }
            };
            let old = table.find(&key).cloned();
            let seen = old.clone().unwrap_or_default();
            if !u.condition.as_ref().is_none_or(|c| c.eval(&seen)) {
                out.failure = Some("ConditionalCheckFailed".into());
                return out;
            }
            let mut new = seen.clone();
            let paths = match u.update.apply(&mut new) {
                Ok(p) => p,
                Err(e) => {
                    fail(&mut out, e.0);
                    return out;
                }
            };
            out.write = Some(item_to_json(&new));
            out.returning = u.returning.map(|r| {
                let touched = Projection::from_paths(paths.clone());
                item_to_json(&match r {
                    Returning::AllOld => seen.clone(),
                    Returning::AllNew => new.clone(),
                    Returning::ModifiedOld => touched.apply(&seen),
                    Returning::ModifiedNew => touched.apply(&new),
                })
            });
        }
        Statement::Delete(d) => {
            let key = match d.key(hash, range) {
                Ok(k) => k,
                Err(e) => {
                    fail(&mut out, e.0);
                    return out;
                }
            };
            let Some(old) = table.find(&key) else {
                out.write = Some(Value::Null);
                return out;
            };
            if !d.condition.as_ref().is_none_or(|c| c.eval(old)) {
                out.failure = Some("ConditionalCheckFailed".into());
                return out;
            }
            out.write = Some(Value::Null);
            out.returning = d.returning.map(|_| item_to_json(old));
        }
        Statement::Exists(e) => match e.check(hash, range) {
            Ok((key, cond)) => out.exists = Some(table.find(&key).is_some_and(|i| cond.eval(i))),
            Err(err) => fail(&mut out, err.0),
        },
    }
    out
}

#[test]
fn developer_guide_examples() {
    let doc: Value =
        serde_json::from_str(include_str!("guide/cases.json")).expect("cases.json is JSON");
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 60, "the table holds {} cases", cases.len());
    let mut failures = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        assert!(case["source"].is_string(), "case {n} cites no page");
        let got = run(case, &doc["tables"]);
        let checks: [(&str, Option<Value>); 7] = [
            ("select", got.select.map(Value::Array)),
            ("query", got.query),
            ("write", got.write),
            ("returning", got.returning),
            ("failure", got.failure.map(Value::String)),
            ("exists", got.exists.map(Value::Bool)),
            ("error", got.error.map(Value::String)),
        ];
        let mut expected_any = false;
        for (field, value) in checks {
            match case.get(field) {
                Some(want) => {
                    expected_any = true;
                    if value.as_ref() != Some(want) {
                        failures.push(format!(
                            "case {n} ({}): {}\n  {field}: want {want}\n  {field}: got  {}",
                            case["source"],
                            case["statement"],
                            value.map_or("nothing".to_string(), |v| v.to_string())
                        ));
                    }
                }
                // An outcome the case does not expect is a failure too (except the Query
                // plan, which only some SELECT cases pin).
                None if field != "query" && value.is_some() => failures.push(format!(
                    "case {n} ({}): {}\n  unexpected {field}: {}",
                    case["source"],
                    case["statement"],
                    value.unwrap()
                )),
                None => {}
            }
        }
        assert!(expected_any, "case {n} expects nothing");
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
