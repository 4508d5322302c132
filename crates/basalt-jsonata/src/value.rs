//! The evaluator's values: JSON plus `undefined`, functions, and the sequence flags JSONata
//! hangs on arrays (a path result is a *sequence*; a one-item sequence collapses to its item
//! unless `keepSingleton` is set; `cons` marks arrays built by `[...]` so they are not flattened).

use crate::eval::Function;
use indexmap::IndexMap;
use std::rc::Rc;

pub(crate) type Object = IndexMap<String, Value>;

#[derive(Clone, Copy, Default, Debug, PartialEq)]
pub(crate) struct Flags {
    pub sequence: bool,
    pub keep_singleton: bool,
    pub cons: bool,
    pub outer_wrapper: bool,
    pub tuple_stream: bool,
}

#[derive(Clone, Default)]
pub(crate) enum Value {
    #[default]
    Undefined,
    Null,
    Bool(bool),
    Number(f64),
    String(Rc<str>),
    Array(Rc<Vec<Value>>, Flags),
    Object(Rc<Object>),
    Function(Rc<Function>),
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Undefined => write!(f, "undefined"),
            Value::Function(_) => write!(f, "<function>"),
            other => write!(
                f,
                "{}",
                other.to_json().map(|j| j.to_string()).unwrap_or_default()
            ),
        }
    }
}

impl Value {
    pub fn string(s: &str) -> Value {
        Value::String(Rc::from(s))
    }

    pub fn sequence(items: Vec<Value>) -> Value {
        Value::Array(
            Rc::new(items),
            Flags {
                sequence: true,
                ..Flags::default()
            },
        )
    }

    pub fn array(items: Vec<Value>) -> Value {
        Value::Array(Rc::new(items), Flags::default())
    }

    pub fn object(map: Object) -> Value {
        Value::Object(Rc::new(map))
    }

    pub fn is_undefined(&self) -> bool {
        matches!(self, Value::Undefined)
    }

    pub fn is_array(&self) -> bool {
        matches!(self, Value::Array(..))
    }

    pub fn is_sequence(&self) -> bool {
        matches!(self, Value::Array(_, f) if f.sequence)
    }

    pub fn is_function(&self) -> bool {
        matches!(self, Value::Function(_))
    }

    pub fn flags(&self) -> Flags {
        match self {
            Value::Array(_, f) => *f,
            _ => Flags::default(),
        }
    }

    pub fn with_flags(self, edit: impl FnOnce(&mut Flags)) -> Value {
        match self {
            Value::Array(items, mut f) => {
                edit(&mut f);
                Value::Array(items, f)
            }
            other => other,
        }
    }

    /// The items of an array, or the value as a one-item slice (JSONata treats a lone value
    /// as a singleton sequence almost everywhere); undefined is empty.
    pub fn members(&self) -> Vec<Value> {
        match self {
            Value::Undefined => Vec::new(),
            Value::Array(items, _) => items.as_ref().clone(),
            other => vec![other.clone()],
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items, _) => Some(items),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Undefined => "undefined",
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(..) => "array",
            Value::Object(_) => "object",
            Value::Function(_) => "function",
        }
    }

    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::string(s),
            serde_json::Value::Array(items) => {
                Value::array(items.iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(map) => Value::object(
                map.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// JSON for the caller: undefined disappears (from arrays and objects too, as
    /// JSON.stringify drops it), functions become `""` as JSONata's `$string` renders them.
    pub fn to_json(&self) -> Option<serde_json::Value> {
        Some(match self {
            Value::Undefined => return None,
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => number_to_json(*n),
            Value::String(s) => serde_json::Value::String(s.to_string()),
            Value::Array(items, _) => {
                serde_json::Value::Array(items.iter().filter_map(Value::to_json).collect())
            }
            Value::Object(map) => serde_json::Value::Object(
                map.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.to_json()?)))
                    .collect(),
            ),
            Value::Function(_) => serde_json::Value::String(String::new()),
        })
    }
}

/// Whole numbers within ±2^53 become JSON integers so callers see `5`, not `5.0`.
pub(crate) fn number_to_json(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        if n >= 0.0 {
            return serde_json::Value::from(n as u64);
        }
        return serde_json::Value::from(n as i64);
    }
    serde_json::Number::from_f64(n)
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}

/// JavaScript's `Number.prototype.toString()`: shortest round-trip digits, exponent notation
/// from 1e21 up and below 1e-6.
pub(crate) fn js_number_string(n: f64) -> String {
    if n.is_nan() {
        return "NaN".into();
    }
    if n.is_infinite() {
        return if n > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if n == 0.0 {
        return "0".into();
    }
    let sci = format!("{:e}", n.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let k = digits.len() as i32;
    let point = exp + 1; // position of the decimal point relative to the digits
    let mut out = String::new();
    if n < 0.0 {
        out.push('-');
    }
    if k <= point && point <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (point - k) as usize));
    } else if 0 < point && point <= 21 {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    } else if -6 < point && point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if point > 0 { '+' } else { '-' });
        out.push_str(&(point - 1).abs().to_string());
    }
    out
}

/// `Number(n.toPrecision(15))`, which `$string` and JSON rendering apply to hide binary noise.
pub(crate) fn precision15(n: f64) -> f64 {
    format!("{n:.14e}").parse().unwrap_or(n)
}

/// Deep equality as JSONata's `=` and `$distinct` use it.
pub(crate) fn deep_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Undefined, Value::Undefined) | (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Array(x, _), Value::Array(y, _)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| deep_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| deep_equal(v, w)))
        }
        (Value::Function(x), Value::Function(y)) => Rc::ptr_eq(x, y),
        _ => false,
    }
}
