//! Higher-order functions: `$map`, `$filter`, `$single`, `$reduce`, `$sift`, `$each`, `$sort`.

use super::{Focus, arg};
use crate::error::{Inserts, JsonataError};
use crate::eval::{apply, arity};
use crate::value::{Object, Value};

type R = Result<Value, JsonataError>;

fn call(f: &Focus, func: &Value, value: Value, index: Value, whole: &Value) -> R {
    let n = arity(func);
    let mut args = vec![value];
    if n >= 2 {
        args.push(index);
    }
    if n >= 3 {
        args.push(whole.clone());
    }
    apply(f.ctx, func, args, f.input, f.env)
}

fn truthy(v: &Value) -> bool {
    super::boolean::truthy(v) == Some(true)
}

pub(crate) fn map(f: &Focus, args: Vec<Value>) -> R {
    let arr = arg(&args, 0);
    if arr.is_undefined() {
        return Ok(Value::Undefined);
    }
    let func = arg(&args, 1);
    let mut out = Vec::new();
    for (i, v) in arr.members().into_iter().enumerate() {
        let r = call(f, &func, v, Value::Number(i as f64), &arr)?;
        if !r.is_undefined() {
            out.push(r);
        }
    }
    Ok(Value::sequence(out))
}

pub(crate) fn filter(f: &Focus, args: Vec<Value>) -> R {
    let arr = arg(&args, 0);
    if arr.is_undefined() {
        return Ok(Value::Undefined);
    }
    let func = arg(&args, 1);
    let mut out = Vec::new();
    for (i, v) in arr.members().into_iter().enumerate() {
        if truthy(&call(f, &func, v.clone(), Value::Number(i as f64), &arr)?) {
            out.push(v);
        }
    }
    Ok(Value::sequence(out))
}

pub(crate) fn single(f: &Focus, args: Vec<Value>) -> R {
    let arr = arg(&args, 0);
    if arr.is_undefined() {
        return Ok(Value::Undefined);
    }
    let func = arg(&args, 1);
    let mut found = None;
    for (i, v) in arr.members().into_iter().enumerate() {
        let ok = func.is_undefined()
            || truthy(&call(f, &func, v.clone(), Value::Number(i as f64), &arr)?);
        if ok {
            if found.is_some() {
                return Err(JsonataError::with(
                    "D3138",
                    None,
                    Inserts {
                        index: Some(i),
                        ..Inserts::default()
                    },
                ));
            }
            found = Some(v);
        }
    }
    found.ok_or_else(|| JsonataError::new("D3139", None))
}

pub(crate) fn reduce(f: &Focus, args: Vec<Value>) -> R {
    let seq = arg(&args, 0);
    if seq.is_undefined() {
        return Ok(Value::Undefined);
    }
    let func = arg(&args, 1);
    let n = arity(&func);
    if n < 2 {
        return Err(JsonataError::with(
            "D3050",
            None,
            Inserts {
                index: Some(1),
                ..Inserts::default()
            },
        ));
    }
    let items = seq.members();
    let init = arg(&args, 2);
    let (mut acc, start) = if init.is_undefined() && !items.is_empty() {
        (items[0].clone(), 1)
    } else {
        (init, 0)
    };
    for (i, item) in items.iter().enumerate().skip(start) {
        let mut call_args = vec![acc, item.clone()];
        if n >= 3 {
            call_args.push(Value::Number(i as f64));
        }
        if n >= 4 {
            call_args.push(seq.clone());
        }
        acc = apply(f.ctx, &func, call_args, f.input, f.env)?;
    }
    Ok(acc)
}

pub(crate) fn sift(f: &Focus, args: Vec<Value>) -> R {
    let obj = arg(&args, 0);
    let func = arg(&args, 1);
    let mut out = Object::new();
    if let Value::Object(o) = &obj {
        for (k, v) in o.iter() {
            if truthy(&call(f, &func, v.clone(), Value::string(k), &obj)?) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(if out.is_empty() {
        Value::Undefined
    } else {
        Value::object(out)
    })
}

pub(crate) fn each(f: &Focus, args: Vec<Value>) -> R {
    let obj = arg(&args, 0);
    let func = arg(&args, 1);
    let mut out = Vec::new();
    if let Value::Object(o) = &obj {
        for (k, v) in o.iter() {
            let r = call(f, &func, v.clone(), Value::string(k), &obj)?;
            if !r.is_undefined() {
                out.push(r);
            }
        }
    }
    Ok(Value::sequence(out))
}

pub(crate) fn sort(f: &Focus, args: Vec<Value>) -> R {
    let arr = arg(&args, 0);
    let items = match &arr {
        Value::Undefined => return Ok(Value::Undefined),
        Value::Array(items, _) => items.as_ref().clone(),
        other => vec![other.clone()],
    };
    if items.len() <= 1 {
        return Ok(arr);
    }
    let comparator = arg(&args, 1);
    if comparator.is_undefined() {
        let all_num = items.iter().all(|v| matches!(v, Value::Number(_)));
        let all_str = items.iter().all(|v| matches!(v, Value::String(_)));
        if !all_num && !all_str {
            return Err(JsonataError::with(
                "D3070",
                None,
                Inserts {
                    index: Some(1),
                    ..Inserts::default()
                },
            ));
        }
        let mut sorted = items;
        sorted.sort_by(|a, b| match (a, b) {
            (Value::Number(x), Value::Number(y)) => {
                x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal)
            }
            (Value::String(x), Value::String(y)) => super::string::js_cmp(x, y),
            _ => std::cmp::Ordering::Equal,
        });
        return Ok(Value::array(sorted));
    }
    // Merge sort with the user's "a should come after b" predicate, stable as jsonata-js.
    fn msort(f: &Focus, cmp: &Value, items: Vec<Value>) -> Result<Vec<Value>, JsonataError> {
        if items.len() <= 1 {
            return Ok(items);
        }
        let mut left = items;
        let right = left.split_off(left.len() / 2);
        let left = msort(f, cmp, left)?;
        let right = msort(f, cmp, right)?;
        let mut out = Vec::with_capacity(left.len() + right.len());
        let (mut i, mut j) = (0, 0);
        while i < left.len() && j < right.len() {
            let swap = apply(
                f.ctx,
                cmp,
                vec![left[i].clone(), right[j].clone()],
                f.input,
                f.env,
            )?;
            if super::boolean::truthy(&swap) == Some(true) {
                out.push(right[j].clone());
                j += 1;
            } else {
                out.push(left[i].clone());
                i += 1;
            }
        }
        out.extend_from_slice(&left[i..]);
        out.extend_from_slice(&right[j..]);
        Ok(out)
    }
    Ok(Value::array(msort(f, &comparator, items)?))
}
