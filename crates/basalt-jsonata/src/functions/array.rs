//! Array functions and the `append` that path flattening and grouping share.

use super::{Focus, arg};
use crate::error::JsonataError;
use crate::value::{Value, deep_equal};
use std::rc::Rc;

type R = Result<Value, JsonataError>;

/// jsonata-js `fn.append`: undefined is the identity; otherwise both sides become arrays and
/// are concatenated (the result is a sequence when the left side was not already an array).
pub(crate) fn append(a: Value, b: Value) -> Value {
    if a.is_undefined() {
        return b;
    }
    if b.is_undefined() {
        return a;
    }
    let (mut items, flags) = match a {
        Value::Array(items, f) => (items.as_ref().clone(), f),
        other => (
            vec![other],
            crate::value::Flags {
                sequence: true,
                ..Default::default()
            },
        ),
    };
    match b {
        Value::Array(more, _) => items.extend(more.iter().cloned()),
        other => items.push(other),
    }
    Value::Array(
        Rc::new(items),
        crate::value::Flags {
            cons: false,
            ..flags
        },
    )
}

pub(crate) fn count(_: &Focus, args: Vec<Value>) -> R {
    Ok(Value::Number(match arg(&args, 0) {
        Value::Undefined => 0.0,
        Value::Array(items, _) => items.len() as f64,
        _ => 1.0,
    }))
}

pub(crate) fn append_fn(_: &Focus, args: Vec<Value>) -> R {
    Ok(append(arg(&args, 0), arg(&args, 1)))
}

pub(crate) fn zip(_: &Focus, args: Vec<Value>) -> R {
    let arrays: Vec<Vec<Value>> = args
        .iter()
        .map(|a| a.as_array().map(|s| s.to_vec()).unwrap_or_default())
        .collect();
    let len = arrays.iter().map(Vec::len).min().unwrap_or(0);
    Ok(Value::array(
        (0..len)
            .map(|i| Value::array(arrays.iter().map(|a| a[i].clone()).collect()))
            .collect(),
    ))
}

pub(crate) fn reverse(_: &Focus, args: Vec<Value>) -> R {
    Ok(match arg(&args, 0) {
        Value::Array(items, f) if items.len() > 1 => Value::Array(
            Rc::new(items.iter().rev().cloned().collect()),
            crate::value::Flags {
                sequence: f.sequence,
                ..Default::default()
            },
        ),
        other => other,
    })
}

pub(crate) fn shuffle(f: &Focus, args: Vec<Value>) -> R {
    let v = arg(&args, 0);
    let Value::Array(items, _) = &v else {
        return Ok(v);
    };
    if items.len() <= 1 {
        return Ok(v);
    }
    let mut out = items.as_ref().clone();
    for i in (1..out.len()).rev() {
        let j = (super::numeric::next_random(f.ctx) * (i + 1) as f64).floor() as usize;
        out.swap(i, j.min(i));
    }
    Ok(Value::array(out))
}

pub(crate) fn distinct(_: &Focus, args: Vec<Value>) -> R {
    let v = arg(&args, 0);
    let Value::Array(items, f) = &v else {
        return Ok(v);
    };
    if items.len() <= 1 {
        return Ok(v);
    }
    let mut out: Vec<Value> = Vec::new();
    for item in items.iter() {
        if !out.iter().any(|o| deep_equal(o, item)) {
            out.push(item.clone());
        }
    }
    Ok(Value::Array(
        Rc::new(out),
        crate::value::Flags {
            sequence: f.sequence,
            ..Default::default()
        },
    ))
}
