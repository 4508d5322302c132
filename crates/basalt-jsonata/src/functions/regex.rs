//! Regular expressions (`/.../flags` literals on the `regex` crate) and the functions that take
//! a string or a matcher: `$match`, `$contains`, `$replace`, `$split`. Match positions are in
//! characters, as JSONata reports them.

use super::{Focus, arg};
use crate::error::{Inserts, JsonataError};
use crate::eval::{Function, apply};
use crate::value::{Object, Value};
use std::rc::Rc;

type R = Result<Value, JsonataError>;

/// Compiles a JSONata regex literal; `g` is implied, `i` and `m` map to inline flags.
pub(crate) fn compile(
    pattern: &str,
    flags: &str,
    position: usize,
) -> Result<regex::Regex, JsonataError> {
    // JavaScript lets `/` be escaped inside a literal; the regex crate does not need it.
    let pattern = pattern.replace("\\/", "/");
    let mut prefix = String::new();
    if flags.contains('i') || flags.contains('m') {
        prefix.push_str("(?");
        if flags.contains('i') {
            prefix.push('i');
        }
        if flags.contains('m') {
            prefix.push('m');
        }
        prefix.push(')');
    }
    regex::RegexBuilder::new(&format!("{prefix}{pattern}"))
        .size_limit(1 << 22)
        .build()
        .map_err(|e| JsonataError {
            code: "S0303".into(),
            message: format!("Invalid regular expression: {e}"),
            position: Some(position),
        })
}

fn char_index(text: &str, byte: usize) -> usize {
    text[..byte].chars().count()
}

/// The match object a regex literal returns when applied: `{match, start, end, groups, next}`.
pub(crate) fn match_object(
    re: &std::sync::Arc<regex::Regex>,
    text: &Rc<str>,
    from: usize,
) -> Value {
    if from > text.len() || !text.is_char_boundary(from) {
        return Value::Undefined;
    }
    let Some(caps) = re.captures_at(text, from) else {
        return Value::Undefined;
    };
    let Some(m) = caps.get(0) else {
        return Value::Undefined;
    };
    let groups = (1..caps.len())
        .map(|i| {
            caps.get(i)
                .map(|g| Value::string(g.as_str()))
                .unwrap_or(Value::string(""))
        })
        .collect();
    let mut o = crate::eval::match_record(
        m.as_str(),
        char_index(text, m.start()),
        char_index(text, m.end()),
        groups,
    );
    o.insert(
        "next".into(),
        Value::Function(Rc::new(Function::RegexNext {
            re: re.clone(),
            text: text.clone(),
            from: m.end(),
        })),
    );
    Value::object(o)
}

struct Match {
    text: String,
    start: usize,
    groups: Vec<Value>,
    next: Value,
}

fn evaluate_matcher(
    f: &Focus,
    matcher: &Value,
    args: Vec<Value>,
) -> Result<Option<Match>, JsonataError> {
    let r = apply(f.ctx, matcher, args, f.input, f.env)?;
    let Value::Object(o) = &r else {
        if r.is_undefined() {
            return Ok(None);
        }
        return Err(JsonataError::new("T1010", None));
    };
    let start = o.get("start").and_then(Value::as_number);
    let groups = o
        .get("groups")
        .and_then(|g| g.as_array().map(|a| a.to_vec()));
    let next = o.get("next").cloned().unwrap_or_default();
    if start.is_none() && groups.is_none() && !next.is_function() {
        return Err(JsonataError::new("T1010", None));
    }
    Ok(Some(Match {
        text: o
            .get("match")
            .and_then(|m| m.as_str().map(str::to_string))
            .unwrap_or_default(),
        start: start.unwrap_or(0.0).max(0.0) as usize,
        groups: groups.unwrap_or_default(),
        next,
    }))
}

fn next_match(f: &Focus, m: &Match) -> Result<Option<Match>, JsonataError> {
    if !m.next.is_function() {
        return Ok(None);
    }
    evaluate_matcher(f, &m.next, Vec::new())
}

fn limit_arg(
    args: &[Value],
    i: usize,
    code: &str,
    index: usize,
) -> Result<Option<f64>, JsonataError> {
    match args.get(i) {
        Some(Value::Number(n)) if *n < 0.0 => Err(JsonataError::with(
            code,
            None,
            Inserts {
                value: Some(crate::value::js_number_string(*n)),
                index: Some(index),
                ..Inserts::default()
            },
        )),
        Some(Value::Number(n)) => Ok(Some(*n)),
        _ => Ok(None),
    }
}

pub(crate) fn match_fn(f: &Focus, args: Vec<Value>) -> R {
    let Value::String(s) = arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    let limit = limit_arg(&args, 2, "D3040", 3)?;
    let mut out = Vec::new();
    if limit.is_none_or(|l| l > 0.0) {
        let mut current = evaluate_matcher(f, &arg(&args, 1), vec![Value::String(s)])?;
        while let Some(m) = current {
            if limit.is_some_and(|l| out.len() as f64 >= l) {
                break;
            }
            let mut o = Object::new();
            o.insert("match".into(), Value::string(&m.text));
            o.insert("index".into(), Value::Number(m.start as f64));
            o.insert("groups".into(), Value::array(m.groups.clone()));
            out.push(Value::object(o));
            current = next_match(f, &m)?;
        }
    }
    Ok(Value::sequence(out))
}

pub(crate) fn contains(f: &Focus, args: Vec<Value>) -> R {
    let Value::String(s) = arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    Ok(match arg(&args, 1) {
        Value::Undefined => Value::Undefined,
        Value::String(t) => Value::Bool(s.contains(t.as_ref())),
        matcher => Value::Bool(evaluate_matcher(f, &matcher, vec![Value::String(s)])?.is_some()),
    })
}

fn substitute(replacement: &str, m: &Match) -> String {
    let mut out = String::new();
    let r: Vec<char> = replacement.chars().collect();
    let mut pos = 0;
    while pos < r.len() {
        let Some(rel) = r[pos..].iter().position(|&c| c == '$') else {
            break;
        };
        let index = pos + rel;
        out.extend(&r[pos..index]);
        pos = index + 1;
        match r.get(pos) {
            Some('$') => {
                out.push('$');
                pos += 1;
            }
            Some('0') => {
                out.push_str(&m.text);
                pos += 1;
            }
            _ => {
                let max_digits = if m.groups.is_empty() {
                    1
                } else {
                    (m.groups.len() as f64).log10().floor() as usize + 1
                };
                let digits = |n: usize| -> Option<usize> {
                    let s: String = r[pos..(pos + n).min(r.len())]
                        .iter()
                        .take_while(|c| c.is_ascii_digit())
                        .collect();
                    s.parse().ok()
                };
                let mut idx = digits(max_digits);
                if max_digits > 1 && idx.is_some_and(|i| i > m.groups.len()) {
                    idx = digits(max_digits - 1);
                }
                match idx {
                    Some(i) => {
                        if !m.groups.is_empty()
                            && i >= 1
                            && let Some(Value::String(g)) = m.groups.get(i - 1)
                        {
                            out.push_str(g);
                        }
                        pos += i.to_string().len();
                    }
                    None => out.push('$'),
                }
            }
        }
    }
    if pos < r.len() {
        out.extend(&r[pos..]);
    }
    out
}

pub(crate) fn replace(f: &Focus, args: Vec<Value>) -> R {
    let Value::String(s) = arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    let pattern = arg(&args, 1);
    if matches!(&pattern, Value::String(p) if p.is_empty()) {
        return Err(JsonataError::with(
            "D3010",
            None,
            Inserts {
                index: Some(2),
                ..Inserts::default()
            },
        ));
    }
    let limit = limit_arg(&args, 3, "D3011", 4)?;
    let replacement = arg(&args, 2);
    if limit.is_some_and(|l| l <= 0.0) {
        return Ok(Value::String(s));
    }
    let under_limit = |count: usize| limit.is_none_or(|l| (count as f64) < l);
    if let Value::String(p) = &pattern {
        let rep = replacement.as_str().unwrap_or_default().to_string();
        let mut out = String::new();
        let mut rest: &str = &s;
        let mut count = 0;
        while under_limit(count) {
            let Some(i) = rest.find(p.as_ref()) else {
                break;
            };
            out.push_str(&rest[..i]);
            out.push_str(&rep);
            rest = &rest[i + p.len()..];
            count += 1;
        }
        out.push_str(rest);
        return Ok(Value::string(&out));
    }
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut position = 0usize;
    let mut count = 0;
    let mut current = evaluate_matcher(f, &pattern, vec![Value::String(s.clone())])?;
    if current.is_none() {
        return Ok(Value::String(s));
    }
    while let Some(m) = current {
        if !under_limit(count) {
            break;
        }
        let start = m.start.min(chars.len());
        out.extend(&chars[position.min(start)..start]);
        let with = match &replacement {
            Value::String(r) => substitute(r, &m),
            func => {
                let mut record = crate::eval::match_record(
                    &m.text,
                    m.start,
                    m.start + m.text.chars().count(),
                    m.groups.clone(),
                );
                record.insert("next".into(), m.next.clone());
                match apply(f.ctx, func, vec![Value::object(record)], f.input, f.env)? {
                    Value::String(r) => r.to_string(),
                    other => {
                        return Err(JsonataError::value(
                            "D3012",
                            None,
                            crate::eval::render(&other),
                        ));
                    }
                }
            }
        };
        out.push_str(&with);
        position = start + m.text.chars().count();
        count += 1;
        current = next_match(f, &m)?;
    }
    out.extend(&chars[position.min(chars.len())..]);
    Ok(Value::string(&out))
}

pub(crate) fn split(f: &Focus, args: Vec<Value>) -> R {
    let Value::String(s) = arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    let limit = limit_arg(&args, 2, "D3020", 3)?;
    let cap = |v: Vec<String>| -> Value {
        let n = limit.map(|l| l as usize).unwrap_or(usize::MAX);
        Value::array(v.into_iter().take(n).map(|p| Value::string(&p)).collect())
    };
    if limit.is_some_and(|l| l <= 0.0) {
        return Ok(Value::array(Vec::new()));
    }
    match arg(&args, 1) {
        Value::String(sep) => {
            if sep.is_empty() {
                return Ok(cap(s.chars().map(|c| c.to_string()).collect()));
            }
            Ok(cap(s.split(sep.as_ref()).map(str::to_string).collect()))
        }
        matcher => {
            let chars: Vec<char> = s.chars().collect();
            let mut out = Vec::new();
            let mut start = 0usize;
            let mut current = evaluate_matcher(f, &matcher, vec![Value::String(s.clone())])?;
            if current.is_none() {
                return Ok(Value::array(vec![Value::String(s)]));
            }
            let under = |n: usize| limit.is_none_or(|l| (n as f64) < l);
            while let Some(m) = current {
                if !under(out.len()) {
                    break;
                }
                let ms = m.start.min(chars.len());
                out.push(chars[start.min(ms)..ms].iter().collect::<String>());
                start = ms + m.text.chars().count();
                current = next_match(f, &m)?;
            }
            if under(out.len()) {
                out.push(chars[start.min(chars.len())..].iter().collect());
            }
            Ok(Value::array(
                out.into_iter().map(|p| Value::string(&p)).collect(),
            ))
        }
    }
}
