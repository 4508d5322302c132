//! Numeric and aggregation functions.

use super::{Focus, arg};
use crate::error::{Inserts, JsonataError};
use crate::eval::Ctx;
use crate::value::{Value, js_number_string};

type R = Result<Value, JsonataError>;

fn numbers(v: &Value) -> Option<Vec<f64>> {
    if v.is_undefined() {
        return None;
    }
    Some(v.members().iter().filter_map(Value::as_number).collect())
}

pub(crate) fn sum(_: &Focus, args: Vec<Value>) -> R {
    Ok(numbers(&arg(&args, 0))
        .map(|ns| Value::Number(ns.iter().sum()))
        .unwrap_or_default())
}

pub(crate) fn max(_: &Focus, args: Vec<Value>) -> R {
    Ok(match numbers(&arg(&args, 0)) {
        Some(ns) if !ns.is_empty() => {
            Value::Number(ns.iter().copied().fold(f64::NEG_INFINITY, f64::max))
        }
        _ => Value::Undefined,
    })
}

pub(crate) fn min(_: &Focus, args: Vec<Value>) -> R {
    Ok(match numbers(&arg(&args, 0)) {
        Some(ns) if !ns.is_empty() => {
            Value::Number(ns.iter().copied().fold(f64::INFINITY, f64::min))
        }
        _ => Value::Undefined,
    })
}

pub(crate) fn average(_: &Focus, args: Vec<Value>) -> R {
    Ok(match numbers(&arg(&args, 0)) {
        Some(ns) if !ns.is_empty() => Value::Number(ns.iter().sum::<f64>() / ns.len() as f64),
        _ => Value::Undefined,
    })
}

fn cast_error(v: &Value) -> JsonataError {
    JsonataError::with(
        "D3030",
        None,
        Inserts {
            value: Some(crate::eval::render(v)),
            index: Some(1),
            ..Inserts::default()
        },
    )
}

pub(crate) fn number(_: &Focus, args: Vec<Value>) -> R {
    let v = arg(&args, 0);
    Ok(match &v {
        Value::Undefined => Value::Undefined,
        Value::Number(_) => v.clone(),
        Value::Bool(b) => Value::Number(if *b { 1.0 } else { 0.0 }),
        Value::String(s) => Value::Number(parse_number(s).ok_or_else(|| cast_error(&v))?),
        _ => return Err(cast_error(&v)),
    })
}

/// `$number` on a string: JSON number syntax, or 0x / 0o / 0b integers.
fn parse_number(s: &str) -> Option<f64> {
    let radix = |p: &str, r: u32| -> Option<f64> {
        let digits = s.get(2..)?;
        if s.len() > 2 && s[..2].eq_ignore_ascii_case(p) && !digits.is_empty() {
            return i128::from_str_radix(digits, r).ok().map(|n| n as f64);
        }
        None
    };
    if let Some(n) = radix("0x", 16)
        .or_else(|| radix("0o", 8))
        .or_else(|| radix("0b", 2))
    {
        return Some(n);
    }
    let b = s.as_bytes();
    let mut i = 0;
    if b.first() == Some(&b'-') {
        i += 1;
    }
    let start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i == start {
        return None;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let f = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == f {
            return None;
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let e = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == e {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

fn unary(args: &[Value], f: impl Fn(f64) -> f64) -> R {
    Ok(match arg(args, 0) {
        Value::Number(n) => Value::Number(f(n)),
        _ => Value::Undefined,
    })
}

pub(crate) fn floor(_: &Focus, args: Vec<Value>) -> R {
    unary(&args, f64::floor)
}

pub(crate) fn ceil(_: &Focus, args: Vec<Value>) -> R {
    unary(&args, f64::ceil)
}

pub(crate) fn abs(_: &Focus, args: Vec<Value>) -> R {
    unary(&args, f64::abs)
}

pub(crate) fn sqrt(_: &Focus, args: Vec<Value>) -> R {
    match arg(&args, 0) {
        Value::Number(n) if n < 0.0 => Err(JsonataError::with(
            "D3060",
            None,
            Inserts {
                value: Some(js_number_string(n)),
                index: Some(1),
                ..Inserts::default()
            },
        )),
        _ => unary(&args, f64::sqrt),
    }
}

pub(crate) fn power(_: &Focus, args: Vec<Value>) -> R {
    let Value::Number(base) = arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    let exp = arg(&args, 1).as_number().unwrap_or(f64::NAN);
    let r = base.powf(exp);
    if !r.is_finite() {
        let mut e = JsonataError::with(
            "D3061",
            None,
            Inserts {
                value: Some(js_number_string(base)),
                ..Inserts::default()
            },
        );
        e.message = e
            .message
            .replace("exponent=", &format!("exponent={}", js_number_string(exp)));
        return Err(e);
    }
    Ok(Value::Number(r))
}

pub(crate) fn random(f: &Focus, _: Vec<Value>) -> R {
    Ok(Value::Number(next_random(f.ctx)))
}

pub(crate) fn next_random(ctx: &Ctx) -> f64 {
    (ctx.random)()
}

/// Shifts the decimal point by `places` through the decimal text, as jsonata-js does, so
/// rounding is not thrown off by binary representation error.
fn shift(n: f64, places: i32) -> f64 {
    let s = js_number_string(n);
    let (m, e) = match s.split_once('e') {
        Some((m, e)) => (m.to_string(), e.parse::<i32>().unwrap_or(0)),
        None => (s, 0),
    };
    format!("{m}e{}", e + places).parse().unwrap_or(n)
}

/// Round half to even at `precision` decimal places.
pub(crate) fn round_half_even(n: f64, precision: i32) -> f64 {
    let x = if precision != 0 {
        shift(n, precision)
    } else {
        n
    };
    let mut r = (x + 0.5).floor();
    if (r - x).abs() == 0.5 && (r % 2.0).abs() == 1.0 {
        r -= 1.0;
    }
    let mut out = if precision != 0 {
        shift(r, -precision)
    } else {
        r
    };
    if out == 0.0 {
        out = 0.0;
    }
    out
}

pub(crate) fn round(_: &Focus, args: Vec<Value>) -> R {
    let Value::Number(n) = arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    let precision = arg(&args, 1).as_number().unwrap_or(0.0) as i32;
    Ok(Value::Number(round_half_even(n, precision)))
}

pub(crate) fn format_base(_: &Focus, args: Vec<Value>) -> R {
    let Value::Number(n) = arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    let n = round_half_even(n, 0);
    let radix = match arg(&args, 1) {
        Value::Number(r) => round_half_even(r, 0),
        _ => 10.0,
    };
    if !(2.0..=36.0).contains(&radix) {
        return Err(JsonataError::value("D3100", None, js_number_string(radix)));
    }
    Ok(Value::string(&to_radix(n as i128, radix as u32)))
}

pub(crate) fn to_radix(n: i128, radix: u32) -> String {
    if n == 0 {
        return "0".into();
    }
    let mut digits = Vec::new();
    let mut m = n.unsigned_abs();
    while m > 0 {
        digits.push(std::char::from_digit((m % radix as u128) as u32, radix).unwrap_or('0'));
        m /= radix as u128;
    }
    if n < 0 {
        digits.push('-');
    }
    digits.iter().rev().collect()
}
