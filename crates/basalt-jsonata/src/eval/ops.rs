//! Binary operators and the array constructor.

use super::{Ctx, Env, Result, evaluate};
use crate::ast::{Kind, Node};
use crate::error::{Inserts, JsonataError};
use crate::functions::boolean::truthy;
use crate::value::{Value, deep_equal};

/// A value as JSONata's messages show it (JSON.stringify).
pub(crate) fn render(v: &Value) -> String {
    match v {
        Value::Undefined => String::new(),
        Value::Number(n) if !n.is_finite() => crate::value::js_number_string(*n),
        other => other.to_json().map(|j| j.to_string()).unwrap_or_default(),
    }
}

fn err2(code: &str, pos: usize, op: &str, a: &Value, b: &Value) -> JsonataError {
    JsonataError::with(
        code,
        Some(pos),
        Inserts {
            token: Some(op.to_string()),
            value: Some(render(a)),
            value2: Some(render(b)),
            ..Inserts::default()
        },
    )
}

fn numeric(v: &Value) -> Result<Option<f64>> {
    match v {
        Value::Number(n) if n.is_nan() => Ok(None),
        Value::Number(n) if n.is_infinite() => Err(JsonataError::value("D1001", None, render(v))),
        Value::Number(n) => Ok(Some(*n)),
        _ => Ok(None),
    }
}

pub(crate) fn binary(
    ctx: &Ctx,
    expr: &Node,
    op: &str,
    lhs: &Node,
    rhs: &Node,
    input: &Value,
    env: &Env,
) -> Result<Value> {
    let pos = expr.position;
    let l = evaluate(ctx, lhs, input, env)?;
    if op == "and" || op == "or" {
        let lb = truthy(&l).unwrap_or(false);
        if op == "and" && !lb {
            return Ok(Value::Bool(false));
        }
        if op == "or" && lb {
            return Ok(Value::Bool(true));
        }
        let r = evaluate(ctx, rhs, input, env)?;
        return Ok(Value::Bool(truthy(&r).unwrap_or(false)));
    }
    let r = evaluate(ctx, rhs, input, env)?;
    let with_token = |e: JsonataError| {
        let mut e = e.at(pos);
        if e.code == "D1001" {
            e.message = e.message.clone();
        }
        e
    };
    match op {
        "+" | "-" | "*" | "/" | "%" => {
            let a = numeric(&l).map_err(with_token)?;
            if !l.is_undefined() && a.is_none() {
                return Err(JsonataError::with(
                    "T2001",
                    Some(pos),
                    Inserts {
                        token: Some(op.into()),
                        value: Some(render(&l)),
                        ..Inserts::default()
                    },
                ));
            }
            let b = numeric(&r).map_err(with_token)?;
            if !r.is_undefined() && b.is_none() {
                return Err(JsonataError::with(
                    "T2002",
                    Some(pos),
                    Inserts {
                        token: Some(op.into()),
                        value: Some(render(&r)),
                        ..Inserts::default()
                    },
                ));
            }
            let (Some(a), Some(b)) = (a, b) else {
                return Ok(Value::Undefined);
            };
            Ok(Value::Number(match op {
                "+" => a + b,
                "-" => a - b,
                "*" => a * b,
                "/" => a / b,
                _ => a % b,
            }))
        }
        "=" | "!=" => {
            if l.is_undefined() || r.is_undefined() {
                return Ok(Value::Bool(false));
            }
            let eq = deep_equal(&l, &r);
            Ok(Value::Bool(if op == "=" { eq } else { !eq }))
        }
        "<" | "<=" | ">" | ">=" => {
            let comparable =
                |v: &Value| matches!(v, Value::Undefined | Value::String(_) | Value::Number(_));
            if !comparable(&l) || !comparable(&r) {
                let bad = if matches!(l, Value::String(_) | Value::Number(_)) {
                    &r
                } else {
                    &l
                };
                return Err(JsonataError::with(
                    "T2010",
                    Some(pos),
                    Inserts {
                        token: Some(op.into()),
                        value: Some(render(bad)),
                        ..Inserts::default()
                    },
                ));
            }
            if l.is_undefined() || r.is_undefined() {
                return Ok(Value::Undefined);
            }
            let ord = match (&l, &r) {
                (Value::Number(a), Value::Number(b)) => a.partial_cmp(b),
                (Value::String(a), Value::String(b)) => {
                    Some(crate::functions::string::js_cmp(a, b))
                }
                _ => return Err(err2("T2009", pos, op, &l, &r)),
            };
            let Some(ord) = ord else {
                return Ok(Value::Bool(false));
            };
            Ok(Value::Bool(match op {
                "<" => ord.is_lt(),
                "<=" => ord.is_le(),
                ">" => ord.is_gt(),
                _ => ord.is_ge(),
            }))
        }
        "&" => {
            let mut s = String::new();
            if !l.is_undefined() {
                s.push_str(&crate::functions::string::stringify(&l, false).map_err(with_token)?);
            }
            if !r.is_undefined() {
                s.push_str(&crate::functions::string::stringify(&r, false).map_err(with_token)?);
            }
            Ok(Value::string(&s))
        }
        ".." => range(&l, &r, pos),
        "in" => {
            if l.is_undefined() || r.is_undefined() {
                return Ok(Value::Bool(false));
            }
            let found = r.members().iter().any(|item| strict_equal(item, &l));
            Ok(Value::Bool(found))
        }
        _ => Err(JsonataError::token("S0201", Some(pos), op)),
    }
}

/// JavaScript's `===`: by value for scalars, by identity for objects and arrays.
fn strict_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x, _), Value::Array(y, _)) => std::rc::Rc::ptr_eq(x, y),
        (Value::Object(x), Value::Object(y)) => std::rc::Rc::ptr_eq(x, y),
        (Value::Array(..), _) | (Value::Object(_), _) => false,
        _ => deep_equal(a, b),
    }
}

fn range(l: &Value, r: &Value, pos: usize) -> Result<Value> {
    let is_int = |v: &Value| matches!(v, Value::Number(n) if n.fract() == 0.0 && n.is_finite());
    if !l.is_undefined() && !is_int(l) {
        return Err(JsonataError::value("T2003", Some(pos), render(l)));
    }
    if !r.is_undefined() && !is_int(r) {
        return Err(JsonataError::value("T2004", Some(pos), render(r)));
    }
    let (Value::Number(a), Value::Number(b)) = (l, r) else {
        return Ok(Value::Undefined);
    };
    if a > b {
        return Ok(Value::Undefined);
    }
    let size = b - a + 1.0;
    if size > 1e7 {
        return Err(JsonataError::value(
            "D2014",
            Some(pos),
            crate::value::js_number_string(size),
        ));
    }
    let (a, b) = (*a as i64, *b as i64);
    Ok(Value::sequence(
        (a..=b).map(|i| Value::Number(i as f64)).collect(),
    ))
}

pub(crate) fn array_constructor(
    ctx: &Ctx,
    expr: &Node,
    items: &[Node],
    input: &Value,
    env: &Env,
) -> Result<Value> {
    let mut result: Vec<Value> = Vec::new();
    for item in items {
        let value = evaluate(ctx, item, input, env)?;
        if value.is_undefined() {
            continue;
        }
        if matches!(item.kind, Kind::ArrayCons(_)) {
            result.push(value);
        } else {
            match value {
                Value::Array(vals, _) => result.extend(vals.iter().cloned()),
                other => result.push(other),
            }
        }
    }
    let mut out = Value::array(result);
    if expr.consarray {
        out = out.with_flags(|f| f.cons = true);
    }
    Ok(out)
}
