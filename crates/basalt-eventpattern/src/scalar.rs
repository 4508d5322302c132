//! Leaf values as both dialects compare them: strings, numbers, booleans and null, with numbers
//! equal when their values are equal (`300`, `300.0` and `3.0e2` are one value).

use std::net::IpAddr;

use serde_json::{Number, Value};

/// A number reduced to a key that is equal exactly when the values are equal. Integers (and
/// floats with no fraction that fit) become `Int`, so `3.0e2` and `300` meet; other floats keep
/// their bits. Integers stay exact past f64's 2^53, which matters for account ids and the like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum NumKey {
    Int(i128),
    Float(u64),
}

impl NumKey {
    pub(crate) fn of(n: &Number) -> Self {
        if let Some(i) = n.as_i64() {
            return NumKey::Int(i128::from(i));
        }
        if let Some(u) = n.as_u64() {
            return NumKey::Int(i128::from(u));
        }
        Self::of_f64(n.as_f64().unwrap_or(f64::NAN))
    }

    pub(crate) fn of_f64(f: f64) -> Self {
        if f.fract() == 0.0 && f.abs() < 1.7e38 {
            NumKey::Int(f as i128)
        } else {
            // -0.0 has a fraction of 0.0, so it was folded above; NaN cannot come from JSON.
            NumKey::Float(f.to_bits())
        }
    }
}

/// An exact value from a pattern.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    /// The string, and the address when it reads as one: EventBridge compares IP literals as
    /// addresses, so `"2001:db8::1"` matches `"2001:0db8:0:0:0:0:0:1"`.
    Str(String, Option<IpAddr>),
    Num(NumKey),
    Bool(bool),
    Null,
}

impl Scalar {
    pub(crate) fn str(s: &str) -> Self {
        Scalar::Str(s.to_owned(), crate::cidr::parse_ip(s))
    }

    /// Whether an event leaf equals this value.
    pub(crate) fn eq_value(&self, v: &Value) -> bool {
        match (self, v) {
            (Scalar::Str(s, ip), Value::String(e)) => match ip {
                Some(ip) => crate::cidr::parse_ip(e) == Some(*ip),
                None => s == e,
            },
            (Scalar::Num(k), Value::Number(n)) => *k == NumKey::of(n),
            (Scalar::Bool(b), Value::Bool(e)) => b == e,
            (Scalar::Null, Value::Null) => true,
            _ => false,
        }
    }

    pub(crate) fn key(&self) -> Key {
        match self {
            Scalar::Str(_, Some(ip)) => Key::Ip(*ip),
            Scalar::Str(s, None) => Key::Str(s.as_str().into()),
            Scalar::Num(k) => Key::Num(*k),
            Scalar::Bool(b) => Key::Bool(*b),
            Scalar::Null => Key::Null,
        }
    }
}

/// The hash key of a leaf, for the `Matcher`'s exact-value index. Built so that
/// `Scalar::eq_value(v)` holds exactly when `scalar.key() == Key::of_value(v)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Str(Box<str>),
    Ip(IpAddr),
    Num(NumKey),
    Bool(bool),
    Null,
}

impl Key {
    pub(crate) fn of_value(v: &Value) -> Option<Key> {
        Some(match v {
            Value::String(s) => match crate::cidr::parse_ip(s) {
                Some(ip) => Key::Ip(ip),
                None => Key::Str(s.as_str().into()),
            },
            Value::Number(n) => Key::Num(NumKey::of(n)),
            Value::Bool(b) => Key::Bool(*b),
            Value::Null => Key::Null,
            Value::Array(_) | Value::Object(_) => return None,
        })
    }
}

/// Case-insensitive comparison against a pattern string that was lower-cased at parse time.
/// ASCII takes the allocation-free path; anything else folds with Unicode lower-casing, as
/// EventBridge does.
pub(crate) fn eq_ignore_case(value: &str, lower: &str) -> bool {
    if value.is_ascii() && lower.is_ascii() {
        value.eq_ignore_ascii_case(lower)
    } else {
        value.to_lowercase() == lower
    }
}

pub(crate) fn starts_with_ignore_case(value: &str, lower: &str) -> bool {
    if value.is_ascii() && lower.is_ascii() {
        value.len() >= lower.len()
            && value.as_bytes()[..lower.len()].eq_ignore_ascii_case(lower.as_bytes())
    } else {
        value.to_lowercase().starts_with(lower)
    }
}

pub(crate) fn ends_with_ignore_case(value: &str, lower: &str) -> bool {
    if value.is_ascii() && lower.is_ascii() {
        value.len() >= lower.len()
            && value.as_bytes()[value.len() - lower.len()..].eq_ignore_ascii_case(lower.as_bytes())
    } else {
        value.to_lowercase().ends_with(lower)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_equal_by_value() {
        let a: Value = serde_json::from_str("3.0e2").unwrap();
        let b = json!(300);
        let Value::Number(a) = a else { panic!() };
        let Value::Number(b) = b else { panic!() };
        assert_eq!(NumKey::of(&a), NumKey::of(&b));
        assert_ne!(NumKey::of_f64(0.1), NumKey::of_f64(0.2));
        assert_eq!(NumKey::of_f64(-0.0), NumKey::of_f64(0.0));
    }

    #[test]
    fn big_integers_stay_exact() {
        let a = json!(9007199254740993u64);
        let b = json!(9007199254740992u64);
        assert!(!Scalar::Num(NumKey::of(a.as_number().unwrap())).eq_value(&b));
    }

    #[test]
    fn ip_literals_compare_as_addresses() {
        let s = Scalar::str("2001:db8::1");
        assert!(s.eq_value(&json!("2001:0db8:0:0:0:0:0:1")));
        assert_eq!(
            s.key(),
            Key::of_value(&json!("2001:0db8:0:0:0:0:0:1")).unwrap()
        );
    }

    #[test]
    fn ignore_case_helpers() {
        assert!(eq_ignore_case("AlIcE", "alice"));
        assert!(starts_with_ignore_case("EventBridge", "eventb"));
        assert!(ends_with_ignore_case("EventBridge", "tbridge"));
        assert!(!ends_with_ignore_case("ge", "tbridge"));
        assert!(eq_ignore_case("ÉTÉ", "été"));
    }
}
