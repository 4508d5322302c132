//! Intrinsic functions (`States.Format(...)` and friends) for JSONPath states: a parser that
//! runs at validation time, and an evaluator whose failures are `States.IntrinsicFailure`.
//! <https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html>

use crate::path::Path;
use crate::scope::Scope;
use base64::Engine;
use serde_json::{Map, Value, json};

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Arg {
    Lit(Value),
    Path(Path),
    Call(Call),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Call {
    pub name: String,
    pub args: Vec<Arg>,
}

const FUNCTIONS: &[&str] = &[
    "States.Format",
    "States.StringToJson",
    "States.JsonToString",
    "States.Array",
    "States.ArrayPartition",
    "States.ArrayContains",
    "States.ArrayRange",
    "States.ArrayGetItem",
    "States.ArrayLength",
    "States.ArrayUnique",
    "States.Base64Encode",
    "States.Base64Decode",
    "States.Hash",
    "States.JsonMerge",
    "States.MathRandom",
    "States.MathAdd",
    "States.StringSplit",
    "States.UUID",
];

/// Does this `.$` value look like an intrinsic call rather than a path?
pub(crate) fn looks_like_call(s: &str) -> bool {
    s.trim_start().starts_with("States.")
}

pub(crate) fn parse(text: &str) -> Result<Call, String> {
    let mut p = P {
        s: text.as_bytes(),
        i: 0,
        t: text,
    };
    p.ws();
    let c = p.call()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!(
            "unexpected text after the call: '{}'",
            &text[p.i..]
        ));
    }
    Ok(c)
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
    t: &'a str,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }
    fn call(&mut self) -> Result<Call, String> {
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'.')
        {
            self.i += 1;
        }
        let name = self.t[start..self.i].to_string();
        if !FUNCTIONS.contains(&name.as_str()) {
            return Err(format!("unknown intrinsic function '{name}'"));
        }
        self.ws();
        if self.s.get(self.i) != Some(&b'(') {
            return Err(format!("expected '(' after {name}"));
        }
        self.i += 1;
        let mut args = Vec::new();
        self.ws();
        if self.s.get(self.i) == Some(&b')') {
            self.i += 1;
            return Ok(Call { name, args });
        }
        loop {
            self.ws();
            args.push(self.arg()?);
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b')') => {
                    self.i += 1;
                    return Ok(Call { name, args });
                }
                _ => return Err(format!("expected ',' or ')' in the arguments of {name}")),
            }
        }
    }
    fn arg(&mut self) -> Result<Arg, String> {
        match self.s.get(self.i) {
            Some(b'\'') => {
                self.i += 1;
                let mut out = String::new();
                let rest = &self.t[self.i..];
                let mut chars = rest.char_indices();
                while let Some((k, c)) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            // `\{` and `\}` stay escaped for States.Format's template.
                            Some((_, e @ ('{' | '}'))) => {
                                out.push('\\');
                                out.push(e)
                            }
                            Some((_, e)) => out.push(e),
                            None => break,
                        },
                        '\'' => {
                            self.i += k + 1;
                            return Ok(Arg::Lit(Value::String(out)));
                        }
                        c => out.push(c),
                    }
                }
                Err("unterminated string literal".into())
            }
            Some(b'$') => {
                let start = self.i;
                let mut depth = 0i32;
                let mut quote = None;
                while let Some(&c) = self.s.get(self.i) {
                    match (quote, c) {
                        (Some(q), c) if c == q => quote = None,
                        (Some(_), _) => {}
                        (None, b'\'' | b'"') => quote = Some(c),
                        (None, b'[' | b'(') => depth += 1,
                        (None, b']') => depth -= 1,
                        (None, b')') if depth == 0 => break,
                        (None, b')') => depth -= 1,
                        (None, b',') if depth == 0 => break,
                        _ => {}
                    }
                    self.i += 1;
                }
                let text = self.t[start..self.i].trim_end();
                Path::parse(text).map(Arg::Path)
            }
            Some(b'S') => Ok(Arg::Call(self.call()?)),
            _ => {
                let start = self.i;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|c| !matches!(c, b',' | b')') && !c.is_ascii_whitespace())
                {
                    self.i += 1;
                }
                let word = &self.t[start..self.i];
                match serde_json::from_str::<Value>(word) {
                    Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => Ok(Arg::Lit(v)),
                    _ => Err(format!("invalid argument '{word}'")),
                }
            }
        }
    }
}

/// Evaluate a parsed call. `rand` draws from the run's reproducible random stream.
pub(crate) fn eval(
    c: &Call,
    scope: &Scope,
    rand: &mut dyn FnMut() -> u64,
) -> Result<Value, String> {
    let mut a = Vec::with_capacity(c.args.len());
    for arg in &c.args {
        a.push(match arg {
            Arg::Lit(v) => v.clone(),
            Arg::Path(p) => scope
                .read(p)
                .ok_or_else(|| format!("the JSONPath argument of {} could not be found", c.name))?,
            Arg::Call(inner) => eval(inner, scope, rand)?,
        });
    }
    let f = c.name.as_str();
    let n = |k: usize| -> Result<(), String> {
        if a.len() == k {
            Ok(())
        } else {
            Err(format!("{f} takes {k} arguments, got {}", a.len()))
        }
    };
    let s = |v: &Value| -> Result<String, String> {
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("{f}: expected a string, got {v}"))
    };
    let arr = |v: &Value| -> Result<Vec<Value>, String> {
        v.as_array()
            .cloned()
            .ok_or_else(|| format!("{f}: expected an array, got {v}"))
    };
    let int = |v: &Value| -> Result<i64, String> {
        match v.as_f64() {
            Some(x) if x.fract() == 0.0 => Ok(x as i64),
            _ => Err(format!("{f}: expected an integer, got {v}")),
        }
    };
    Ok(match f {
        "States.Format" => {
            if a.is_empty() {
                return Err("States.Format needs a template".into());
            }
            format(&s(&a[0])?, &a[1..])?
        }
        "States.StringToJson" => {
            n(1)?;
            serde_json::from_str(&s(&a[0])?).map_err(|e| format!("States.StringToJson: {e}"))?
        }
        "States.JsonToString" => {
            n(1)?;
            Value::String(a[0].to_string())
        }
        "States.Array" => Value::Array(a),
        "States.ArrayPartition" => {
            n(2)?;
            let size = int(&a[1])?;
            if size <= 0 {
                return Err("States.ArrayPartition: the chunk size must be positive".into());
            }
            let items = arr(&a[0])?;
            Value::Array(
                items
                    .chunks(size as usize)
                    .map(|c| Value::Array(c.to_vec()))
                    .collect(),
            )
        }
        "States.ArrayContains" => {
            n(2)?;
            Value::Bool(arr(&a[0])?.iter().any(|v| json_eq(v, &a[1])))
        }
        "States.ArrayRange" => {
            n(3)?;
            let (start, end, step) = (int(&a[0])?, int(&a[1])?, int(&a[2])?);
            if step == 0 {
                return Err("States.ArrayRange: the step must not be 0".into());
            }
            let mut out = Vec::new();
            let mut x = start;
            while (step > 0 && x <= end) || (step < 0 && x >= end) {
                out.push(json!(x));
                if out.len() > 1000 {
                    return Err(
                        "States.ArrayRange: the array would have more than 1000 items".into(),
                    );
                }
                x += step;
            }
            Value::Array(out)
        }
        "States.ArrayGetItem" => {
            n(2)?;
            let items = arr(&a[0])?;
            let i = int(&a[1])?;
            items
                .get(
                    usize::try_from(i)
                        .map_err(|_| "States.ArrayGetItem: negative index".to_string())?,
                )
                .cloned()
                .ok_or_else(|| format!("States.ArrayGetItem: index {i} is out of bounds"))?
        }
        "States.ArrayLength" => {
            n(1)?;
            json!(arr(&a[0])?.len())
        }
        "States.ArrayUnique" => {
            n(1)?;
            let mut out: Vec<Value> = Vec::new();
            for v in arr(&a[0])? {
                if !out.iter().any(|o| json_eq(o, &v)) {
                    out.push(v);
                }
            }
            Value::Array(out)
        }
        "States.Base64Encode" => {
            n(1)?;
            let text = s(&a[0])?;
            if text.len() > 10_000 {
                return Err("States.Base64Encode: the input exceeds 10000 characters".into());
            }
            Value::String(base64::engine::general_purpose::STANDARD.encode(text))
        }
        "States.Base64Decode" => {
            n(1)?;
            let text = s(&a[0])?;
            if text.len() > 10_000 {
                return Err("States.Base64Decode: the input exceeds 10000 characters".into());
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .map_err(|e| format!("States.Base64Decode: {e}"))?;
            Value::String(
                String::from_utf8(bytes).map_err(|e| format!("States.Base64Decode: {e}"))?,
            )
        }
        "States.Hash" => {
            n(2)?;
            let data = match &a[0] {
                Value::String(t) => t.clone(),
                other => other.to_string(),
            };
            Value::String(hash(&data, &s(&a[1])?)?)
        }
        "States.JsonMerge" => {
            n(3)?;
            if a[2] != Value::Bool(false) {
                return Err("States.JsonMerge: only shallow merging (false) is supported".into());
            }
            let (Value::Object(l), Value::Object(r)) = (&a[0], &a[1]) else {
                return Err("States.JsonMerge: both inputs must be objects".into());
            };
            let mut m: Map<String, Value> = l.clone();
            for (k, v) in r {
                m.insert(k.clone(), v.clone());
            }
            Value::Object(m)
        }
        "States.MathRandom" => {
            if a.len() != 2 && a.len() != 3 {
                return Err("States.MathRandom takes 2 or 3 arguments".into());
            }
            let (lo, hi) = (int(&a[0])?, int(&a[1])?);
            if hi <= lo {
                return Err("States.MathRandom: the end must be greater than the start".into());
            }
            let r = match a.get(2) {
                Some(seed) => crate::rng::mix(int(seed)? as u64),
                None => rand(),
            };
            json!(lo + (r % (hi - lo) as u64) as i64)
        }
        "States.MathAdd" => {
            n(2)?;
            let (x, y) = (int(&a[0])?, int(&a[1])?);
            json!(x.checked_add(y).ok_or("States.MathAdd: overflow")?)
        }
        "States.StringSplit" => {
            n(2)?;
            let (text, delims) = (s(&a[0])?, s(&a[1])?);
            // Java's StringTokenizer semantics: every character of the second argument is a
            // delimiter and empty tokens are dropped.
            Value::Array(
                text.split(|c| delims.contains(c))
                    .filter(|t| !t.is_empty())
                    .map(|t| Value::String(t.into()))
                    .collect(),
            )
        }
        "States.UUID" => {
            n(0)?;
            Value::String(crate::rng::uuid(rand(), rand()))
        }
        _ => return Err(format!("unknown intrinsic function '{f}'")),
    })
}

/// Numbers compare by value (1 == 1.0), everything else structurally.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn format(template: &str, args: &[Value]) -> Result<Value, String> {
    let mut out = String::new();
    let mut used = 0;
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n)
                }
            }
            '{' if chars.peek() == Some(&'}') => {
                chars.next();
                let v = args
                    .get(used)
                    .ok_or("States.Format: more placeholders than arguments")?;
                used += 1;
                match v {
                    Value::String(s) => out.push_str(s),
                    // Arrays and objects are interpolated as their compact JSON text (the
                    // seed's video workflow formats `$.labels`, a list, this way).
                    other => out.push_str(&other.to_string()),
                }
            }
            c => out.push(c),
        }
    }
    if used != args.len() {
        return Err("States.Format: more arguments than placeholders".into());
    }
    Ok(Value::String(out))
}

pub(crate) fn hash(data: &str, algorithm: &str) -> Result<String, String> {
    use sha2::Digest;
    Ok(match algorithm {
        "MD5" => hex::encode(md5::Md5::digest(data.as_bytes())),
        "SHA-1" => hex::encode(sha1::Sha1::digest(data.as_bytes())),
        "SHA-256" => hex::encode(sha2::Sha256::digest(data.as_bytes())),
        "SHA-384" => hex::encode(sha2::Sha384::digest(data.as_bytes())),
        "SHA-512" => hex::encode(sha2::Sha512::digest(data.as_bytes())),
        other => return Err(format!("States.Hash: unsupported algorithm '{other}'")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, input: Value) -> Result<Value, String> {
        let vars = Map::new();
        let ctx = json!({"Execution": {"Id": "arn:x"}});
        let scope = Scope {
            input: &input,
            ctx: &ctx,
            vars: &vars,
        };
        let mut k = 0u64;
        let mut r = || {
            k += 1;
            crate::rng::mix(k)
        };
        eval(&parse(text)?, &scope, &mut r)
    }

    #[test]
    fn format_and_escapes() {
        assert_eq!(
            run(
                "States.Format('Hello, my name is {}.', $.name)",
                json!({"name": "Arnav"})
            )
            .unwrap(),
            json!("Hello, my name is Arnav.")
        );
        assert_eq!(
            run("States.Format('a \\{\\} {}', 1)", json!({})).unwrap(),
            json!("a {} 1")
        );
        assert_eq!(
            run("States.Format('it\\'s {}', true)", json!({})).unwrap(),
            json!("it's true")
        );
        assert!(run("States.Format('{} {}', 1)", json!({})).is_err());
    }

    #[test]
    fn arrays() {
        assert_eq!(
            run(
                "States.ArrayPartition($.a, 4)",
                json!({"a": [1, 2, 3, 4, 5, 6, 7, 8, 9]})
            )
            .unwrap(),
            json!([[1, 2, 3, 4], [5, 6, 7, 8], [9]])
        );
        assert_eq!(
            run("States.ArrayRange(1, 9, 2)", json!({})).unwrap(),
            json!([1, 3, 5, 7, 9])
        );
        assert_eq!(
            run("States.ArrayGetItem(States.Array(1,2,3), 1)", json!({})).unwrap(),
            json!(2)
        );
        assert_eq!(
            run("States.ArrayUnique(States.Array(1,2,1,3))", json!({})).unwrap(),
            json!([1, 2, 3])
        );
        assert_eq!(
            run("States.ArrayLength($.a)", json!({"a": [1, 2]})).unwrap(),
            json!(2)
        );
        assert_eq!(
            run("States.ArrayContains($.a, 2)", json!({"a": [1, 2]})).unwrap(),
            json!(true)
        );
        assert!(run("States.ArrayRange(1, 2000, 1)", json!({})).is_err());
    }

    #[test]
    fn strings_and_hashes() {
        assert_eq!(
            run("States.Base64Encode('Data to encode')", json!({})).unwrap(),
            json!("RGF0YSB0byBlbmNvZGU=")
        );
        assert_eq!(
            run("States.Base64Decode('RGF0YSB0byBlbmNvZGU=')", json!({})).unwrap(),
            json!("Data to encode")
        );
        assert_eq!(
            run("States.Hash('input data', 'SHA-1')", json!({})).unwrap(),
            json!("aaff4a450a104cd177d28d18d74485e8cae074b7")
        );
        assert_eq!(
            run(
                "States.StringSplit('This.is+a,test=string', '.+,=')",
                json!({})
            )
            .unwrap(),
            json!(["This", "is", "a", "test", "string"])
        );
        assert_eq!(
            run("States.JsonToString($.a)", json!({"a": {"x": 1}})).unwrap(),
            json!("{\"x\":1}")
        );
        assert_eq!(
            run("States.StringToJson('{\"x\": 1}')", json!({})).unwrap(),
            json!({"x": 1})
        );
        assert_eq!(
            run("States.MathAdd(111, -1)", json!({})).unwrap(),
            json!(110)
        );
        assert!(parse("States.Nope(1)").is_err());
    }

    #[test]
    fn random_is_in_range_and_seeded() {
        let a = run("States.MathRandom(1, 999, 7)", json!({})).unwrap();
        let b = run("States.MathRandom(1, 999, 7)", json!({})).unwrap();
        assert_eq!(a, b);
        let x = a.as_i64().unwrap();
        assert!((1..999).contains(&x));
        let u = run("States.UUID()", json!({})).unwrap();
        assert_eq!(u.as_str().unwrap().len(), 36);
    }
}
