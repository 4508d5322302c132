//! Object construction and grouping (`{k: v}` and `path{k: v}`), order-by (`^(...)`), and the
//! transform operator (`| pattern | update, delete |`).

use super::{Ctx, Env, Result, evaluate, frame_from_tuple, tuple_at};
use crate::ast::{Kind, Node};
use crate::error::{Inserts, JsonataError};
use crate::functions::array::append;
use crate::value::{Object, Value};
use indexmap::IndexMap;
use std::rc::Rc;

pub(crate) fn group_expression(
    ctx: &Ctx,
    pairs: &[(Node, Node)],
    position: usize,
    input: Value,
    env: &Env,
) -> Result<Value> {
    let reduce = input.flags().tuple_stream;
    let mut items = match &input {
        Value::Array(items, _) => items.as_ref().clone(),
        other => vec![other.clone()],
    };
    if items.is_empty() && !reduce {
        items.push(Value::Undefined);
    }
    // key -> (data, index of the pair that produced it)
    let mut groups: IndexMap<String, (Value, usize)> = IndexMap::new();
    for item in &items {
        let item_env = if reduce {
            frame_from_tuple(env, item)
        } else {
            env.clone()
        };
        let context = if reduce { tuple_at(item) } else { item.clone() };
        for (pair_index, (k, _)) in pairs.iter().enumerate() {
            let key = evaluate(ctx, k, &context, &item_env)?;
            let key = match key {
                Value::Undefined => continue,
                Value::String(s) => s,
                other => {
                    return Err(JsonataError::value(
                        "T1003",
                        Some(position),
                        super::ops::render(&other),
                    ));
                }
            };
            match groups.get_mut(key.as_ref()) {
                Some((data, idx)) => {
                    if *idx != pair_index {
                        return Err(JsonataError::value(
                            "D1009",
                            Some(position),
                            serde_json::Value::String(key.to_string()).to_string(),
                        ));
                    }
                    *data = append(std::mem::take(data), item.clone());
                }
                None => {
                    groups.insert(key.to_string(), (item.clone(), pair_index));
                }
            }
        }
    }
    let mut result = Object::new();
    for (key, (data, idx)) in groups {
        let (context, value_env) = if reduce {
            let mut tuple = reduce_tuple_stream(&data);
            let at = tuple.shift_remove("@").unwrap_or_default();
            (at, frame_from_tuple(env, &Value::object(tuple)))
        } else {
            (data, env.clone())
        };
        let value = evaluate(ctx, &pairs[idx].1, &context, &value_env)?;
        if !value.is_undefined() {
            result.insert(key, value);
        }
    }
    Ok(Value::object(result))
}

fn reduce_tuple_stream(stream: &Value) -> Object {
    let tuples = match stream {
        Value::Array(items, _) => items.as_ref().clone(),
        other => vec![other.clone()],
    };
    let mut result = match tuples.first() {
        Some(Value::Object(o)) => o.as_ref().clone(),
        _ => Object::new(),
    };
    for t in tuples.iter().skip(1) {
        if let Value::Object(o) = t {
            for (k, v) in o.iter() {
                let prev = result.shift_remove(k).unwrap_or_default();
                result.insert(k.clone(), append(prev, v.clone()));
            }
        }
    }
    result
}

pub(crate) fn sort_expression(ctx: &Ctx, expr: &Node, input: Value, env: &Env) -> Result<Value> {
    let Kind::Sort(terms) = &expr.kind else {
        return Ok(input);
    };
    let is_tuple = input.flags().tuple_stream;
    let flags = input.flags();
    let items = match &input {
        Value::Undefined => return Ok(Value::Undefined),
        Value::Array(items, _) => items.as_ref().clone(),
        other => vec![other.clone()],
    };
    if items.len() <= 1 {
        return Ok(input);
    }
    // Evaluate every sort key once, then merge-sort stably on the keys.
    let mut keyed = Vec::with_capacity(items.len());
    for item in items {
        let (context, item_env) = if is_tuple {
            (tuple_at(&item), frame_from_tuple(env, &item))
        } else {
            (item.clone(), env.clone())
        };
        let mut keys = Vec::with_capacity(terms.len());
        for term in terms {
            keys.push(evaluate(ctx, &term.expression, &context, &item_env)?);
        }
        keyed.push((keys, item));
    }
    let mut error = None;
    let compare = |a: &Vec<Value>,
                   b: &Vec<Value>,
                   error: &mut Option<JsonataError>|
     -> std::cmp::Ordering {
        use std::cmp::Ordering;
        for (i, term) in terms.iter().enumerate() {
            let (aa, bb) = (&a[i], &b[i]);
            let ord = match (aa, bb) {
                (Value::Undefined, Value::Undefined) => Ordering::Equal,
                (Value::Undefined, _) => return Ordering::Greater,
                (_, Value::Undefined) => return Ordering::Less,
                (Value::Number(x), Value::Number(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
                (Value::String(x), Value::String(y)) => crate::functions::string::js_cmp(x, y),
                (x, y) => {
                    let sortable = |v: &Value| matches!(v, Value::Number(_) | Value::String(_));
                    if error.is_none() {
                        *error = Some(if !sortable(x) || !sortable(y) {
                            let bad = if sortable(x) { y } else { x };
                            JsonataError::value(
                                "T2008",
                                Some(expr.position),
                                super::ops::render(bad),
                            )
                        } else {
                            JsonataError::with(
                                "T2007",
                                Some(expr.position),
                                Inserts {
                                    value: Some(super::ops::render(x)),
                                    value2: Some(super::ops::render(y)),
                                    ..Inserts::default()
                                },
                            )
                        });
                    }
                    Ordering::Equal
                }
            };
            let ord = if term.descending { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    };
    keyed.sort_by(|a, b| compare(&a.0, &b.0, &mut error));
    if let Some(e) = error {
        return Err(e);
    }
    let sorted: Vec<Value> = keyed.into_iter().map(|(_, v)| v).collect();
    let mut flags = flags;
    flags.sequence = true;
    Ok(Value::Array(Rc::new(sorted), flags))
}

/// Applies a transform (`|pattern|update,delete|`) to `obj`: a deep copy whose matched
/// objects get the update's keys merged in and the deleted keys removed.
pub(crate) fn transform(
    ctx: &Ctx,
    (pattern, update, delete): (&Node, &Node, Option<&Node>),
    position: usize,
    env: &Env,
    obj: &Value,
) -> Result<Value> {
    if obj.is_undefined() {
        return Ok(Value::Undefined);
    }
    if !matches!(obj, Value::Object(_) | Value::Array(..)) {
        return Err(JsonataError::with(
            "T0410",
            Some(position),
            Inserts {
                index: Some(1),
                ..Inserts::default()
            },
        ));
    }
    // The pattern runs over a fresh deep copy; the objects it matches are identified by the
    // address of their shared allocation, and the copy is then rebuilt with the edits applied
    // (values are immutable here, where jsonata-js mutates its clone in place).
    let copy = deep_copy(obj);
    let matches = evaluate(ctx, pattern, &copy, env)?;
    let mut edits: Vec<(*const Object, Object, Vec<String>)> = Vec::new();
    for m in matches.members() {
        let Value::Object(o) = &m else { continue };
        let upd = evaluate(ctx, update, &m, env)?;
        let merged = match &upd {
            Value::Undefined => Object::new(),
            Value::Object(u) => u.as_ref().clone(),
            other => {
                return Err(JsonataError::value(
                    "T2011",
                    Some(update.position),
                    super::ops::render(other),
                ));
            }
        };
        let mut deletions = Vec::new();
        if let Some(d) = delete {
            // the delete clause sees the object after the update
            let mut after = o.as_ref().clone();
            for (k, v) in merged.iter() {
                after.insert(k.clone(), v.clone());
            }
            let dels = evaluate(ctx, d, &Value::object(after), env)?;
            for name in dels.members() {
                match name {
                    Value::String(s) => deletions.push(s.to_string()),
                    _ => {
                        return Err(JsonataError::value(
                            "T2012",
                            Some(d.position),
                            super::ops::render(&dels),
                        ));
                    }
                }
            }
        }
        edits.push((Rc::as_ptr(o), merged, deletions));
    }
    Ok(apply_edits(&copy, &edits))
}

fn deep_copy(v: &Value) -> Value {
    match v {
        Value::Array(items, f) => Value::Array(Rc::new(items.iter().map(deep_copy).collect()), *f),
        Value::Object(o) => {
            Value::object(o.iter().map(|(k, v)| (k.clone(), deep_copy(v))).collect())
        }
        other => other.clone(),
    }
}

fn apply_edits(v: &Value, edits: &[(*const Object, Object, Vec<String>)]) -> Value {
    match v {
        Value::Array(items, f) => Value::Array(
            Rc::new(items.iter().map(|i| apply_edits(i, edits)).collect()),
            *f,
        ),
        Value::Object(o) => {
            let id = Rc::as_ptr(o);
            let mut out: Object = o
                .iter()
                .map(|(k, v)| (k.clone(), apply_edits(v, edits)))
                .collect();
            for (eid, merged, dels) in edits {
                if std::ptr::eq(*eid, id) {
                    for (k, val) in merged.iter() {
                        out.insert(k.clone(), val.clone());
                    }
                    for d in dels {
                        out.shift_remove(d);
                    }
                }
            }
            Value::object(out)
        }
        other => other.clone(),
    }
}
