//! DynamoDB's attribute values, their JSON wire form ("DynamoDB JSON") with DynamoDB's
//! validation messages, their stored size and the ordering of key values.
//! Reference: <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html>

use crate::number::Number;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// A validation failure; the message is the exact `ValidationException` message DynamoDB sends.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct ValueError(pub String);

/// An item, or the contents of an `M` value: attribute name to value.
pub type Item = BTreeMap<String, AttributeValue>;

/// One DynamoDB value. Sets keep the order they were given in; equality treats them as sets.
#[derive(Debug, Clone)]
pub enum AttributeValue {
    S(String),
    N(Number),
    B(Vec<u8>),
    Bool(bool),
    Null,
    M(Item),
    L(Vec<AttributeValue>),
    Ss(Vec<String>),
    Ns(Vec<Number>),
    Bs(Vec<Vec<u8>>),
}

const TYPE_KEYS: [&str; 10] = ["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"];

fn err(msg: impl Into<String>) -> ValueError {
    ValueError(msg.into())
}

fn invalid(msg: &str) -> ValueError {
    ValueError(format!("One or more parameter values were invalid: {msg}"))
}

impl AttributeValue {
    /// Reads DynamoDB JSON (`{"S": "x"}`, `{"N": "1"}`, `{"B": "<base64>"}`, `{"BOOL": true}`,
    /// `{"NULL": true}`, `{"M": {..}}`, `{"L": [..]}`, `{"SS": [..]}`, `{"NS": [..]}`,
    /// `{"BS": [..]}`), checking what DynamoDB checks.
    pub fn from_json(v: &Value) -> Result<AttributeValue, ValueError> {
        let Value::Object(obj) = v else {
            return Err(err(
                "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes",
            ));
        };
        // Unknown members are ignored, as AWS's JSON readers ignore them; a JSON null member
        // counts as absent, as the SDKs never send one.
        let mut present = TYPE_KEYS
            .iter()
            .filter_map(|k| obj.get(*k).filter(|v| !v.is_null()).map(|v| (*k, v)));
        let Some((ty, val)) = present.next() else {
            return Err(err(
                "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes",
            ));
        };
        if present.next().is_some() {
            return Err(err(
                "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
            ));
        }
        let shape = |what: &str| err(format!("Unexpected value type for {ty}: expected {what}"));
        Ok(match ty {
            "S" => AttributeValue::S(val.as_str().ok_or_else(|| shape("a string"))?.to_string()),
            "N" => AttributeValue::N(Number::parse(
                val.as_str().ok_or_else(|| shape("a string"))?,
            )?),
            "B" => AttributeValue::B(decode_b64(val.as_str().ok_or_else(|| shape("a string"))?)?),
            "BOOL" => AttributeValue::Bool(val.as_bool().ok_or_else(|| shape("a boolean"))?),
            "NULL" => {
                if val.as_bool() != Some(true) {
                    return Err(invalid(
                        "Null attribute value types must have the value of true",
                    ));
                }
                AttributeValue::Null
            }
            "M" => AttributeValue::M(item_from_json(val)?),
            "L" => {
                let arr = val.as_array().ok_or_else(|| shape("a list"))?;
                AttributeValue::L(
                    arr.iter()
                        .map(AttributeValue::from_json)
                        .collect::<Result<_, _>>()?,
                )
            }
            "SS" => {
                let raw = string_list(val, "string", &shape)?;
                check_set("string", &raw, &raw)?;
                AttributeValue::Ss(raw)
            }
            "NS" => {
                let raw = string_list(val, "number", &shape)?;
                let nums = raw
                    .iter()
                    .map(|s| Number::parse(s))
                    .collect::<Result<Vec<_>, _>>()?;
                check_set("number", &raw, &nums)?;
                AttributeValue::Ns(nums)
            }
            _ => {
                let raw = string_list(val, "binary", &shape)?;
                let bins = raw
                    .iter()
                    .map(|s| decode_b64(s))
                    .collect::<Result<Vec<_>, _>>()?;
                check_set("binary", &raw, &bins)?;
                AttributeValue::Bs(bins)
            }
        })
    }

    /// The DynamoDB JSON form, numbers in their canonical spelling.
    pub fn to_json(&self) -> Value {
        let (k, v) = match self {
            AttributeValue::S(s) => ("S", Value::String(s.clone())),
            AttributeValue::N(n) => ("N", Value::String(n.to_string())),
            AttributeValue::B(b) => ("B", Value::String(B64.encode(b))),
            AttributeValue::Bool(b) => ("BOOL", Value::Bool(*b)),
            AttributeValue::Null => ("NULL", Value::Bool(true)),
            AttributeValue::M(m) => ("M", item_to_json(m)),
            AttributeValue::L(l) => (
                "L",
                Value::Array(l.iter().map(AttributeValue::to_json).collect()),
            ),
            AttributeValue::Ss(s) => ("SS", s.iter().map(|s| Value::String(s.clone())).collect()),
            AttributeValue::Ns(s) => (
                "NS",
                s.iter().map(|n| Value::String(n.to_string())).collect(),
            ),
            AttributeValue::Bs(s) => (
                "BS",
                s.iter().map(|b| Value::String(B64.encode(b))).collect(),
            ),
        };
        let mut m = Map::with_capacity(1);
        m.insert(k.to_string(), v);
        Value::Object(m)
    }

    /// The type descriptor DynamoDB uses: `S`, `N`, `B`, `BOOL`, `NULL`, `M`, `L`, `SS`, `NS`, `BS`.
    pub fn type_name(&self) -> &'static str {
        match self {
            AttributeValue::S(_) => "S",
            AttributeValue::N(_) => "N",
            AttributeValue::B(_) => "B",
            AttributeValue::Bool(_) => "BOOL",
            AttributeValue::Null => "NULL",
            AttributeValue::M(_) => "M",
            AttributeValue::L(_) => "L",
            AttributeValue::Ss(_) => "SS",
            AttributeValue::Ns(_) => "NS",
            AttributeValue::Bs(_) => "BS",
        }
    }

    /// The value's size by DynamoDB's item-size rules
    /// (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html>):
    /// strings their UTF-8 length, numbers one byte per two significant digits plus one,
    /// binary its length, BOOL and NULL one byte, M and L three bytes plus one per element
    /// plus their contents (map keys included), sets the sum of their elements.
    pub fn size(&self) -> usize {
        match self {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => number_size(n),
            AttributeValue::B(b) => b.len(),
            AttributeValue::Bool(_) | AttributeValue::Null => 1,
            AttributeValue::M(m) => {
                3 + m.iter().map(|(k, v)| k.len() + v.size() + 1).sum::<usize>()
            }
            AttributeValue::L(l) => 3 + l.iter().map(|v| v.size() + 1).sum::<usize>(),
            AttributeValue::Ss(s) => s.iter().map(String::len).sum(),
            AttributeValue::Ns(s) => s.iter().map(number_size).sum(),
            AttributeValue::Bs(s) => s.iter().map(Vec::len).sum(),
        }
    }
}

fn number_size(n: &Number) -> usize {
    n.significant_digits().div_ceil(2) + 1
}

/// Sets compare as sets; every other type structurally (numbers numerically).
impl PartialEq for AttributeValue {
    fn eq(&self, other: &AttributeValue) -> bool {
        use AttributeValue::*;
        match (self, other) {
            (S(a), S(b)) => a == b,
            (N(a), N(b)) => a == b,
            (B(a), B(b)) => a == b,
            (Bool(a), Bool(b)) => a == b,
            (Null, Null) => true,
            (M(a), M(b)) => a == b,
            (L(a), L(b)) => a == b,
            (Ss(a), Ss(b)) => same_set(a, b),
            (Ns(a), Ns(b)) => same_set(a, b),
            (Bs(a), Bs(b)) => same_set(a, b),
            _ => false,
        }
    }
}

fn same_set<T: PartialEq>(a: &[T], b: &[T]) -> bool {
    // Set values hold no duplicates, so equal lengths and inclusion one way is equality.
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

fn decode_b64(s: &str) -> Result<Vec<u8>, ValueError> {
    B64.decode(s)
        .map_err(|_| err(format!("Invalid Base64 value for a binary attribute: {s}")))
}

/// The members of a set as given; a JSON null member is DynamoDB's "may not have a null"
/// error (`kind` is `string`, `number` or `binary`).
fn string_list(
    val: &Value,
    kind: &str,
    shape: &dyn Fn(&str) -> ValueError,
) -> Result<Vec<String>, ValueError> {
    val.as_array()
        .ok_or_else(|| shape("a list"))?
        .iter()
        .map(|v| {
            if v.is_null() {
                return Err(invalid(&format!(
                    "An {kind} set may not have a null {kind} as a member"
                )));
            }
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| shape("a list of strings"))
        })
        .collect()
}

/// DynamoDB's set checks: not empty, no duplicates (by value, so `1` and `1.0` collide).
fn check_set<T: PartialEq>(kind: &str, raw: &[String], values: &[T]) -> Result<(), ValueError> {
    if values.is_empty() {
        // DynamoDB's own message, double space included.
        return Err(invalid(&format!("An {kind} set  may not be empty")));
    }
    let dup = values
        .iter()
        .enumerate()
        .any(|(i, v)| values[..i].contains(v));
    if dup {
        return Err(invalid(&format!(
            "Input collection [{}] contains duplicates.",
            raw.join(", ")
        )));
    }
    Ok(())
}

/// Reads an item: a JSON object of attribute name to DynamoDB JSON value.
pub fn item_from_json(v: &Value) -> Result<Item, ValueError> {
    let Value::Object(obj) = v else {
        return Err(err("Start of structure or map found where not expected"));
    };
    obj.iter()
        .map(|(k, v)| Ok((k.clone(), AttributeValue::from_json(v)?)))
        .collect()
}

/// Writes an item as DynamoDB JSON.
pub fn item_to_json(item: &Item) -> Value {
    Value::Object(item.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
}

/// An item's size: its attribute names' UTF-8 lengths plus its values' sizes.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + v.size()).sum()
}

/// How DynamoDB orders key values: numbers numerically, strings by their UTF-8 bytes, binary by
/// unsigned bytes. `None` for different types or types that cannot be keys.
pub fn compare_scalars(a: &AttributeValue, b: &AttributeValue) -> Option<Ordering> {
    match (a, b) {
        (AttributeValue::S(x), AttributeValue::S(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (AttributeValue::N(x), AttributeValue::N(y)) => Some(x.cmp(y)),
        (AttributeValue::B(x), AttributeValue::B(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn av(v: Value) -> Result<AttributeValue, ValueError> {
        AttributeValue::from_json(&v)
    }

    fn msg(v: Value) -> String {
        av(v).unwrap_err().0
    }

    #[test]
    fn round_trips_every_type() {
        let v = json!({"M": {
            "s": {"S": "x"}, "n": {"N": "1.50"}, "b": {"B": "AAEC"}, "t": {"BOOL": true},
            "z": {"NULL": true}, "l": {"L": [{"S": "a"}, {"N": "2"}]},
            "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2.5"]}, "bs": {"BS": ["AA==", "AQ=="]}
        }});
        let parsed = av(v).unwrap();
        let back = parsed.to_json();
        assert_eq!(back["M"]["n"], json!({"N": "1.5"}));
        assert_eq!(back["M"]["b"], json!({"B": "AAEC"}));
        assert_eq!(av(back).unwrap(), parsed);
        let AttributeValue::M(m) = &parsed else {
            panic!()
        };
        assert_eq!(m["b"], AttributeValue::B(vec![0, 1, 2]));
        let names: Vec<_> = m.values().map(AttributeValue::type_name).collect();
        assert_eq!(
            names,
            ["B", "BS", "L", "N", "NS", "S", "SS", "BOOL", "NULL"]
        );
    }

    #[test]
    fn dynamodb_validation_messages() {
        assert_eq!(
            msg(json!({})),
            "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
        );
        assert_eq!(
            msg(json!({"S": "a", "N": "1"})),
            "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"
        );
        assert_eq!(
            msg(json!({"SS": []})),
            "One or more parameter values were invalid: An string set  may not be empty"
        );
        assert_eq!(
            msg(json!({"NS": []})),
            "One or more parameter values were invalid: An number set  may not be empty"
        );
        assert_eq!(
            msg(json!({"BS": []})),
            "One or more parameter values were invalid: An binary set  may not be empty"
        );
        assert_eq!(
            msg(json!({"SS": ["a", "a"]})),
            "One or more parameter values were invalid: Input collection [a, a] contains duplicates."
        );
        assert_eq!(
            msg(json!({"NS": ["1", "1.0"]})),
            "One or more parameter values were invalid: Input collection [1, 1.0] contains duplicates."
        );
        assert_eq!(
            msg(json!({"SS": ["a", null]})),
            "One or more parameter values were invalid: An string set may not have a null string as a member"
        );
        assert_eq!(
            msg(json!({"NULL": false})),
            "One or more parameter values were invalid: Null attribute value types must have the value of true"
        );
        assert_eq!(
            msg(json!({"N": "abc"})),
            "The parameter cannot be converted to a numeric value: abc"
        );
        assert_eq!(
            msg(json!({"L": [{"N": "1e200"}]})).split('.').next(),
            Some("Number overflow")
        );
        assert_eq!(
            msg(json!({"M": {"x": {"NS": []}}})),
            "One or more parameter values were invalid: An number set  may not be empty"
        );
    }

    #[test]
    fn sets_compare_as_sets() {
        assert_eq!(
            av(json!({"SS": ["a", "b"]})).unwrap(),
            av(json!({"SS": ["b", "a"]})).unwrap()
        );
        assert_eq!(
            av(json!({"NS": ["1", "2"]})).unwrap(),
            av(json!({"NS": ["2.0", "1"]})).unwrap()
        );
        assert_ne!(
            av(json!({"SS": ["a", "b"]})).unwrap(),
            av(json!({"SS": ["a"]})).unwrap()
        );
        assert_ne!(
            av(json!({"L": [{"S": "a"}, {"S": "b"}]})).unwrap(),
            av(json!({"L": [{"S": "b"}, {"S": "a"}]})).unwrap()
        );
        assert_ne!(
            av(json!({"S": "1"})).unwrap(),
            av(json!({"N": "1"})).unwrap()
        );
    }

    #[test]
    fn sizes_follow_the_capacity_rules() {
        let item = item_from_json(&json!({
            "s": {"S": "héllo"}, "n": {"N": "123.45"}, "b": {"B": "AAEC"}, "t": {"BOOL": false},
            "m": {"M": {"k": {"S": "v"}}}, "l": {"L": [{"NULL": true}]}, "ss": {"SS": ["ab", "c"]}
        }))
        .unwrap();
        assert_eq!(item["s"].size(), 6);
        assert_eq!(item["n"].size(), 4); // 5 digits -> 3 bytes + 1
        assert_eq!(item["b"].size(), 3);
        assert_eq!(item["t"].size(), 1);
        assert_eq!(item["m"].size(), 3 + 1 + 1 + 1);
        assert_eq!(item["l"].size(), 3 + 1 + 1);
        assert_eq!(item["ss"].size(), 3);
        assert_eq!(
            item_size(&item),
            6 + 1 + 4 + 1 + 3 + 1 + 1 + 1 + 6 + 1 + 5 + 1 + 3 + 2
        );
    }

    /// Write units (1 KB each) that DynamoDB reported for dense lists and maps, which pin the
    /// per-element and per-entry overheads.
    #[test]
    fn sizes_match_measured_write_units() {
        let wcu = |item: Value| item_size(&item_from_json(&item).unwrap()).div_ceil(1024);
        for (count, units) in [(500, 2), (1500, 5), (3000, 9), (130_000, 381)] {
            let list: Vec<Value> = vec![json!({"S": "aa"}); count];
            assert_eq!(
                wcu(json!({"pk": {"S": format!("l{count}")}, "data": {"L": list}})),
                units,
                "{count}"
            );
        }
        let map: Map<String, Value> = (0..800)
            .map(|i| (format!("k{i}"), json!({"S": "v"})))
            .collect();
        assert_eq!(wcu(json!({"pk": {"S": "m800"}, "data": {"M": map}})), 5);
        let nested: Vec<Value> = vec![json!({"M": {"a": {"S": "b"}}}); 500];
        assert_eq!(wcu(json!({"pk": {"S": "nest"}, "data": {"L": nested}})), 4);
        let lists: Map<String, Value> = (0..500)
            .map(|i| (format!("k{i}"), json!({"L": [{"S": "b"}]})))
            .collect();
        assert_eq!(wcu(json!({"pk": {"S": "mapl"}, "data": {"M": lists}})), 5);
    }

    #[test]
    fn key_ordering() {
        let s = |x: &str| AttributeValue::S(x.into());
        // Byte order, not code-point-insensitive or locale order: 'Z' < 'a' < 'é'.
        assert_eq!(compare_scalars(&s("Z"), &s("a")), Some(Ordering::Less));
        assert_eq!(compare_scalars(&s("é"), &s("z")), Some(Ordering::Greater));
        let n = |x: &str| AttributeValue::N(Number::parse(x).unwrap());
        assert_eq!(compare_scalars(&n("10"), &n("9")), Some(Ordering::Greater));
        assert_eq!(
            compare_scalars(
                &AttributeValue::B(vec![0x80]),
                &AttributeValue::B(vec![0x7f])
            ),
            Some(Ordering::Greater)
        );
        assert_eq!(compare_scalars(&s("1"), &n("1")), None);
        assert_eq!(
            compare_scalars(&AttributeValue::Bool(true), &AttributeValue::Bool(true)),
            None
        );
    }
}
