//! String functions and `$string`'s JSON rendering (JSON.stringify with numbers cut to 15
//! significant digits, functions as `""`).

use super::{Focus, arg};
use crate::error::JsonataError;
use crate::value::{Value, js_number_string, precision15};

type R = Result<Value, JsonataError>;

/// JavaScript string comparison: by UTF-16 code unit.
pub(crate) fn js_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

pub(crate) fn stringify(v: &Value, pretty: bool) -> Result<String, JsonataError> {
    match v {
        Value::String(s) => Ok(s.to_string()),
        Value::Function(_) => Ok(String::new()),
        Value::Number(n) if !n.is_finite() => {
            Err(JsonataError::value("D3001", None, js_number_string(*n)))
        }
        Value::Array(items, f) if f.outer_wrapper && !items.is_empty() => {
            let mut out = String::new();
            write_json(&items[0], pretty, 0, &mut out)?;
            Ok(out)
        }
        other => {
            let mut out = String::new();
            write_json(other, pretty, 0, &mut out)?;
            Ok(out)
        }
    }
}

/// Nested non-finite numbers fail as jsonata-js's `isNumeric` check in the replacer does.
fn number_json(n: f64) -> Result<String, JsonataError> {
    if !n.is_finite() {
        return Err(JsonataError::value("D1001", None, js_number_string(n)));
    }
    let n = if n.fract() == 0.0 { n } else { precision15(n) };
    Ok(js_number_string(n))
}

fn write_json(
    v: &Value,
    pretty: bool,
    indent: usize,
    out: &mut String,
) -> Result<(), JsonataError> {
    let nl = |out: &mut String, level: usize| {
        if pretty {
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', level * 2));
        }
    };
    match v {
        Value::Undefined | Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number_json(*n)?),
        Value::String(s) => out.push_str(&serde_json::Value::String(s.to_string()).to_string()),
        Value::Function(_) => out.push_str("\"\""),
        Value::Array(items, _) => {
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                nl(out, indent + 1);
                write_json(item, pretty, indent + 1, out)?;
            }
            nl(out, indent);
            out.push(']');
        }
        Value::Object(o) => {
            let entries: Vec<_> = o.iter().filter(|(_, v)| !v.is_undefined()).collect();
            if entries.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            for (i, (k, val)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                nl(out, indent + 1);
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push(':');
                if pretty {
                    out.push(' ');
                }
                write_json(val, pretty, indent + 1, out)?;
            }
            nl(out, indent);
            out.push('}');
        }
    }
    Ok(())
}

fn str_arg(args: &[Value], i: usize) -> Option<std::rc::Rc<str>> {
    match args.get(i) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

pub(crate) fn string(_: &Focus, args: Vec<Value>) -> R {
    let v = arg(&args, 0);
    if v.is_undefined() {
        return Ok(Value::Undefined);
    }
    let pretty = matches!(arg(&args, 1), Value::Bool(true));
    Ok(Value::string(&stringify(&v, pretty)?))
}

/// Characters as JavaScript's `Array.from(str)` sees them (code points).
fn chars(s: &str) -> Vec<char> {
    s.chars().collect()
}

pub(crate) fn substring(_: &Focus, args: Vec<Value>) -> R {
    let Some(s) = str_arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    let cs = chars(&s);
    let len = cs.len() as f64;
    let mut start = arg(&args, 1).as_number().unwrap_or(0.0);
    if len + start < 0.0 {
        start = 0.0;
    }
    let slice = |from: f64, to: f64| -> String {
        // Array.prototype.slice semantics (negative from the end, clamped, truncated)
        let norm = |x: f64| -> usize {
            let x = x.trunc();
            if x < 0.0 {
                (len + x).max(0.0) as usize
            } else {
                x.min(len) as usize
            }
        };
        let (a, b) = (norm(from), norm(to));
        if a >= b {
            String::new()
        } else {
            cs[a..b].iter().collect()
        }
    };
    if let Value::Number(length) = arg(&args, 2) {
        if length <= 0.0 {
            return Ok(Value::string(""));
        }
        let end = if start >= 0.0 {
            start + length
        } else {
            len + start + length
        };
        return Ok(Value::string(&slice(start, end)));
    }
    Ok(Value::string(&slice(start, len)))
}

pub(crate) fn substring_before(_: &Focus, args: Vec<Value>) -> R {
    let Some(s) = str_arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    let chars = str_arg(&args, 1).unwrap_or_default();
    Ok(Value::string(match s.find(chars.as_ref()) {
        Some(p) => &s[..p],
        None => &s,
    }))
}

pub(crate) fn substring_after(_: &Focus, args: Vec<Value>) -> R {
    let Some(s) = str_arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    let chars = str_arg(&args, 1).unwrap_or_default();
    Ok(Value::string(match s.find(chars.as_ref()) {
        Some(p) => &s[p + chars.len()..],
        None => &s,
    }))
}

pub(crate) fn lowercase(_: &Focus, args: Vec<Value>) -> R {
    Ok(str_arg(&args, 0)
        .map(|s| Value::string(&s.to_lowercase()))
        .unwrap_or_default())
}

pub(crate) fn uppercase(_: &Focus, args: Vec<Value>) -> R {
    Ok(str_arg(&args, 0)
        .map(|s| Value::string(&s.to_uppercase()))
        .unwrap_or_default())
}

pub(crate) fn length(_: &Focus, args: Vec<Value>) -> R {
    Ok(str_arg(&args, 0)
        .map(|s| Value::Number(s.chars().count() as f64))
        .unwrap_or_default())
}

pub(crate) fn trim(_: &Focus, args: Vec<Value>) -> R {
    let Some(s) = str_arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    let mut out = String::with_capacity(s.len());
    let mut in_space = false;
    for c in s.chars() {
        if matches!(c, ' ' | '\t' | '\n' | '\r') {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    let out = out.strip_prefix(' ').unwrap_or(&out);
    let out = out.strip_suffix(' ').unwrap_or(out);
    Ok(Value::string(out))
}

pub(crate) fn pad(_: &Focus, args: Vec<Value>) -> R {
    let Some(s) = str_arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    let width = arg(&args, 1).as_number().unwrap_or(0.0).trunc();
    let pad_char = match str_arg(&args, 2) {
        Some(c) if !c.is_empty() => c.to_string(),
        _ => " ".to_string(),
    };
    let pad_len = width.abs() as i64 - s.chars().count() as i64;
    if pad_len <= 0 {
        return Ok(Value::String(s));
    }
    let padding: String = pad_char.chars().cycle().take(pad_len as usize).collect();
    Ok(Value::string(&if width > 0.0 {
        format!("{s}{padding}")
    } else {
        format!("{padding}{s}")
    }))
}

pub(crate) fn join(_: &Focus, args: Vec<Value>) -> R {
    let strs = arg(&args, 0);
    if strs.is_undefined() {
        return Ok(Value::Undefined);
    }
    let sep = str_arg(&args, 1).unwrap_or_default();
    let parts: Vec<String> = strs
        .members()
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect();
    Ok(Value::string(&parts.join(&sep)))
}
