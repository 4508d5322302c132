//! Object functions, `$type`, `$error`/`$assert`, `$eval` and `$clone`.

use super::{Focus, arg};
use crate::error::{Inserts, JsonataError};
use crate::value::{Object, Value};

type R = Result<Value, JsonataError>;

/// Field lookup over a value or (flattening) an array of values.
pub(crate) fn lookup(input: &Value, key: &str) -> Value {
    match input {
        Value::Array(items, _) => {
            let mut out = Vec::new();
            for item in items.iter() {
                match lookup(item, key) {
                    Value::Undefined => {}
                    Value::Array(vals, _) => out.extend(vals.iter().cloned()),
                    v => out.push(v),
                }
            }
            Value::sequence(out)
        }
        Value::Object(o) => o.get(key).cloned().unwrap_or_default(),
        _ => Value::Undefined,
    }
}

pub(crate) fn lookup_fn(_: &Focus, args: Vec<Value>) -> R {
    let key = arg(&args, 1);
    Ok(lookup(&arg(&args, 0), key.as_str().unwrap_or_default()))
}

fn collect_keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Array(items, _) => items.iter().for_each(|i| collect_keys(i, out)),
        Value::Object(o) => {
            for k in o.keys() {
                if !out.contains(k) {
                    out.push(k.clone());
                }
            }
        }
        _ => {}
    }
}

pub(crate) fn keys(_: &Focus, args: Vec<Value>) -> R {
    let mut out = Vec::new();
    collect_keys(&arg(&args, 0), &mut out);
    Ok(Value::sequence(
        out.iter().map(|k| Value::string(k)).collect(),
    ))
}

pub(crate) fn spread(_: &Focus, args: Vec<Value>) -> R {
    fn go(v: &Value) -> Value {
        match v {
            Value::Array(items, _) => {
                let mut acc = Value::sequence(Vec::new());
                for i in items.iter() {
                    acc = super::array::append(acc, go(i));
                }
                acc
            }
            Value::Object(o) => Value::sequence(
                o.iter()
                    .map(|(k, v)| {
                        let mut single = Object::new();
                        single.insert(k.clone(), v.clone());
                        Value::object(single)
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    Ok(go(&arg(&args, 0)))
}

pub(crate) fn merge(_: &Focus, args: Vec<Value>) -> R {
    let v = arg(&args, 0);
    if v.is_undefined() {
        return Ok(Value::Undefined);
    }
    let mut out = Object::new();
    for o in v.members() {
        if let Value::Object(o) = o {
            for (k, v) in o.iter() {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(Value::object(out))
}

pub(crate) fn error(_: &Focus, args: Vec<Value>) -> R {
    let message = match arg(&args, 0) {
        Value::String(s) if !s.is_empty() => s.to_string(),
        _ => "$error() function evaluated".to_string(),
    };
    Err(JsonataError::with(
        "D3137",
        None,
        Inserts {
            message: Some(message),
            ..Inserts::default()
        },
    ))
}

pub(crate) fn assert(_: &Focus, args: Vec<Value>) -> R {
    if matches!(arg(&args, 0), Value::Bool(true)) {
        return Ok(Value::Undefined);
    }
    let message = match arg(&args, 1) {
        Value::String(s) if !s.is_empty() => s.to_string(),
        _ => "$assert() statement failed".to_string(),
    };
    Err(JsonataError::with(
        "D3141",
        None,
        Inserts {
            message: Some(message),
            ..Inserts::default()
        },
    ))
}

pub(crate) fn type_of(_: &Focus, args: Vec<Value>) -> R {
    let v = arg(&args, 0);
    Ok(match v {
        Value::Undefined => Value::Undefined,
        other => Value::string(other.type_name()),
    })
}

pub(crate) fn clone(_: &Focus, args: Vec<Value>) -> R {
    let v = arg(&args, 0);
    Ok(v.to_json()
        .map(|j| Value::from_json(&j))
        .unwrap_or_default())
}

pub(crate) fn eval(f: &Focus, args: Vec<Value>) -> R {
    let Value::String(src) = arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    let mut input = f.input.clone();
    let focus = arg(&args, 1);
    if !focus.is_undefined() {
        input = match focus {
            Value::Array(items, flags) if !flags.sequence => Value::Array(
                std::rc::Rc::new(vec![Value::Array(items, flags)]),
                crate::value::Flags {
                    sequence: true,
                    outer_wrapper: true,
                    ..Default::default()
                },
            ),
            other => other,
        };
    }
    let ast = crate::compile(&src).map_err(|e| {
        JsonataError::with(
            "D3120",
            None,
            Inserts {
                value: Some(e.message.to_string()),
                ..Inserts::default()
            },
        )
    })?;
    crate::eval::evaluate(f.ctx, &ast, &input, f.env).map_err(|e| {
        JsonataError::with(
            "D3121",
            None,
            Inserts {
                value: Some(e.message.to_string()),
                ..Inserts::default()
            },
        )
    })
}
