//! Metadata filters, evaluated against an entry's metadata (a JSON object) during the search.
//! Two request languages parse into [`Filter`]: Bedrock's `RetrievalFilter`
//! ([`Filter::from_bedrock`]) and S3 Vectors' operators ([`Filter::from_s3vectors`]).

use serde_json::{Map, Value};
use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Equals(String, Value),
    NotEquals(String, Value),
    GreaterThan(String, Value),
    GreaterThanOrEquals(String, Value),
    LessThan(String, Value),
    LessThanOrEquals(String, Value),
    In(String, Vec<Value>),
    NotIn(String, Vec<Value>),
    StartsWith(String, String),
    /// A list attribute has the value as a member.
    ListContains(String, Value),
    /// A string attribute contains the text, or a list attribute has a member that does.
    StringContains(String, String),
    Exists(String, bool),
    And(Vec<Filter>),
    Or(Vec<Filter>),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct FilterError(pub String);

fn err<T>(m: impl Into<String>) -> Result<T, FilterError> {
    Err(FilterError(m.into()))
}

impl Filter {
    /// Bedrock's `RetrievalFilter`: exactly one member, `{"equals": {"key", "value"}}` or
    /// `{"andAll": [filters]}` and so on.
    pub fn from_bedrock(v: &Value) -> Result<Filter, FilterError> {
        let Some(obj) = v.as_object().filter(|o| o.len() == 1) else {
            return err("A retrieval filter must set exactly one of its members.");
        };
        let (op, arg) = obj.iter().next().expect("one member");
        if op == "andAll" || op == "orAll" {
            let Some(items) = arg.as_array().filter(|a| a.len() >= 2) else {
                return err(format!("{op} takes a list of at least 2 filters."));
            };
            let inner = items
                .iter()
                .map(Filter::from_bedrock)
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(if op == "andAll" {
                Filter::And(inner)
            } else {
                Filter::Or(inner)
            });
        }
        let (Some(key), Some(value)) = (arg.get("key").and_then(Value::as_str), arg.get("value"))
        else {
            return err(format!("The {op} filter needs a key and a value."));
        };
        let key = key.to_owned();
        let list = || match value.as_array() {
            Some(a) => Ok(a.clone()),
            None => err(format!(
                "The value of the {op} filter on {key} must be a list."
            )),
        };
        let text = || match value.as_str() {
            Some(s) => Ok(s.to_owned()),
            None => err(format!(
                "The value of the {op} filter on {key} must be a string."
            )),
        };
        Ok(match op.as_str() {
            "equals" => Filter::Equals(key, value.clone()),
            "notEquals" => Filter::NotEquals(key, value.clone()),
            "greaterThan" => Filter::GreaterThan(key, value.clone()),
            "greaterThanOrEquals" => Filter::GreaterThanOrEquals(key, value.clone()),
            "lessThan" => Filter::LessThan(key, value.clone()),
            "lessThanOrEquals" => Filter::LessThanOrEquals(key, value.clone()),
            "in" => Filter::In(key.clone(), list()?),
            "notIn" => Filter::NotIn(key.clone(), list()?),
            "startsWith" => Filter::StartsWith(key.clone(), text()?),
            "listContains" => Filter::ListContains(key, value.clone()),
            "stringContains" => Filter::StringContains(key.clone(), text()?),
            other => return err(format!("Unknown retrieval filter operator {other}.")),
        })
    }

    /// S3 Vectors' filter: `{"genre": "jazz"}` (equality), `{"year": {"$gte": 2019}}`,
    /// `{"$and": [...]}`, `{"$or": [...]}`; operators `$eq $ne $gt $gte $lt $lte $in $nin
    /// $exists`. Several keys in one object must all hold.
    pub fn from_s3vectors(v: &Value) -> Result<Filter, FilterError> {
        let Some(obj) = v.as_object() else {
            return err("The filter must be a JSON object.");
        };
        let mut all = Vec::new();
        for (k, arg) in obj {
            match k.as_str() {
                "$and" | "$or" => {
                    let Some(items) = arg.as_array().filter(|a| !a.is_empty()) else {
                        return err(format!("{k} takes a non-empty list of filters."));
                    };
                    let inner = items
                        .iter()
                        .map(Filter::from_s3vectors)
                        .collect::<Result<Vec<_>, _>>()?;
                    all.push(if k == "$and" {
                        Filter::And(inner)
                    } else {
                        Filter::Or(inner)
                    });
                }
                op if op.starts_with('$') => return err(format!("Invalid operator {op}.")),
                key => match arg.as_object() {
                    Some(ops) if ops.keys().any(|o| o.starts_with('$')) => {
                        for (op, val) in ops {
                            all.push(s3v_op(key, op, val)?);
                        }
                    }
                    _ => all.push(Filter::Equals(key.to_owned(), arg.clone())),
                },
            }
        }
        Ok(if all.len() == 1 {
            all.pop().expect("one")
        } else {
            Filter::And(all)
        })
    }

    /// Whether `meta` passes.
    pub fn matches(&self, meta: &Map<String, Value>) -> bool {
        match self {
            Filter::Equals(k, v) => meta.get(k).is_some_and(|m| equal(m, v)),
            Filter::NotEquals(k, v) => !meta.get(k).is_some_and(|m| equal(m, v)),
            Filter::GreaterThan(k, v) => cmp(meta.get(k), v) == Some(Ordering::Greater),
            Filter::GreaterThanOrEquals(k, v) => {
                matches!(
                    cmp(meta.get(k), v),
                    Some(Ordering::Greater | Ordering::Equal)
                )
            }
            Filter::LessThan(k, v) => cmp(meta.get(k), v) == Some(Ordering::Less),
            Filter::LessThanOrEquals(k, v) => {
                matches!(cmp(meta.get(k), v), Some(Ordering::Less | Ordering::Equal))
            }
            Filter::In(k, vs) => meta.get(k).is_some_and(|m| vs.iter().any(|v| equal(m, v))),
            Filter::NotIn(k, vs) => !meta.get(k).is_some_and(|m| vs.iter().any(|v| equal(m, v))),
            Filter::StartsWith(k, p) => meta
                .get(k)
                .and_then(Value::as_str)
                .is_some_and(|s| s.starts_with(p.as_str())),
            Filter::ListContains(k, v) => meta
                .get(k)
                .and_then(Value::as_array)
                .is_some_and(|items| items.iter().any(|i| equal(i, v))),
            Filter::StringContains(k, p) => match meta.get(k) {
                Some(Value::String(s)) => s.contains(p.as_str()),
                Some(Value::Array(items)) => items
                    .iter()
                    .any(|i| i.as_str().is_some_and(|s| s.contains(p.as_str()))),
                _ => false,
            },
            Filter::Exists(k, want) => meta.contains_key(k) == *want,
            Filter::And(fs) => fs.iter().all(|f| f.matches(meta)),
            Filter::Or(fs) => fs.iter().any(|f| f.matches(meta)),
        }
    }
}

fn s3v_op(key: &str, op: &str, val: &Value) -> Result<Filter, FilterError> {
    let key = key.to_owned();
    let list = || match val.as_array() {
        Some(a) if !a.is_empty() => Ok(a.clone()),
        _ => err(format!("{op} takes a non-empty array.")),
    };
    Ok(match op {
        "$eq" => Filter::Equals(key, val.clone()),
        "$ne" => Filter::NotEquals(key, val.clone()),
        "$gt" => Filter::GreaterThan(key, val.clone()),
        "$gte" => Filter::GreaterThanOrEquals(key, val.clone()),
        "$lt" => Filter::LessThan(key, val.clone()),
        "$lte" => Filter::LessThanOrEquals(key, val.clone()),
        "$in" => Filter::In(key, list()?),
        "$nin" => Filter::NotIn(key, list()?),
        "$exists" => match val.as_bool() {
            Some(b) => Filter::Exists(key, b),
            None => return err("$exists takes a boolean."),
        },
        other => return err(format!("Invalid operator {other}.")),
    })
}

/// Numbers compare by value (`2019` equals `2019.0`); a list attribute equals a scalar it
/// contains, as S3 Vectors and OpenSearch's term queries match arrays.
fn equal(meta: &Value, v: &Value) -> bool {
    match (meta, v) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Array(items), scalar) if !scalar.is_array() => {
            items.iter().any(|i| equal(i, scalar))
        }
        (a, b) => a == b,
    }
}

/// Numbers by value, strings lexically; other pairs do not compare.
fn cmp(meta: Option<&Value>, v: &Value) -> Option<Ordering> {
    match (meta?, v) {
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Value::String(a), Value::String(b)) => Some(a.as_str().cmp(b.as_str())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn bedrock_operators() {
        let m = meta(
            json!({"genre": "jazz", "year": 2019, "tags": ["live", "outdoor"], "city": "Port Wexley"}),
        );
        let t = |f: Value| Filter::from_bedrock(&f).unwrap().matches(&m);
        assert!(t(json!({"equals": {"key": "genre", "value": "jazz"}})));
        assert!(!t(json!({"equals": {"key": "genre", "value": "rock"}})));
        assert!(t(json!({"equals": {"key": "year", "value": 2019.0}})));
        assert!(t(json!({"notEquals": {"key": "genre", "value": "rock"}})));
        assert!(t(json!({"notEquals": {"key": "missing", "value": "x"}})));
        assert!(t(json!({"greaterThan": {"key": "year", "value": 2018}})));
        assert!(!t(json!({"greaterThan": {"key": "year", "value": 2019}})));
        assert!(t(
            json!({"greaterThanOrEquals": {"key": "year", "value": 2019}})
        ));
        assert!(t(json!({"lessThan": {"key": "year", "value": 2020}})));
        assert!(t(
            json!({"lessThanOrEquals": {"key": "year", "value": 2019}})
        ));
        assert!(!t(json!({"lessThan": {"key": "genre", "value": 5}})));
        assert!(t(json!({"in": {"key": "genre", "value": ["pop", "jazz"]}})));
        assert!(t(
            json!({"notIn": {"key": "genre", "value": ["pop", "rock"]}})
        ));
        assert!(t(json!({"startsWith": {"key": "city", "value": "Port"}})));
        assert!(t(json!({"listContains": {"key": "tags", "value": "live"}})));
        assert!(!t(
            json!({"listContains": {"key": "genre", "value": "jazz"}})
        ));
        assert!(t(
            json!({"stringContains": {"key": "city", "value": "Wex"}})
        ));
        assert!(t(
            json!({"stringContains": {"key": "tags", "value": "door"}})
        ));
        assert!(t(json!({"andAll": [
            {"equals": {"key": "genre", "value": "jazz"}},
            {"orAll": [{"equals": {"key": "year", "value": 1}}, {"listContains": {"key": "tags", "value": "live"}}]}
        ]})));
        assert!(!t(json!({"andAll": [
            {"equals": {"key": "genre", "value": "jazz"}},
            {"equals": {"key": "year", "value": 1}}
        ]})));
    }

    #[test]
    fn bedrock_errors() {
        assert!(Filter::from_bedrock(&json!({})).is_err());
        assert!(Filter::from_bedrock(&json!({"equals": {"key": "a"}})).is_err());
        assert!(
            Filter::from_bedrock(&json!({"andAll": [{"equals": {"key": "a", "value": 1}}]}))
                .is_err()
        );
        assert!(Filter::from_bedrock(&json!({"in": {"key": "a", "value": 1}})).is_err());
        assert!(Filter::from_bedrock(&json!({"near": {"key": "a", "value": 1}})).is_err());
    }

    #[test]
    fn s3vectors_operators() {
        let m = meta(json!({"genre": "jazz", "year": 2019, "tags": ["live"]}));
        let t = |f: Value| Filter::from_s3vectors(&f).unwrap().matches(&m);
        assert!(t(json!({"genre": "jazz"})));
        assert!(t(
            json!({"genre": "jazz", "year": {"$gte": 2019, "$lt": 2020}})
        ));
        assert!(!t(json!({"genre": "jazz", "year": {"$gt": 2019}})));
        assert!(t(json!({"tags": "live"})));
        assert!(t(
            json!({"$or": [{"genre": "rock"}, {"year": {"$in": [2019, 2020]}}]})
        ));
        assert!(t(
            json!({"genre": {"$nin": ["rock"]}, "author": {"$exists": false}})
        ));
        assert!(!t(json!({"genre": {"$ne": "jazz"}})));
        assert!(Filter::from_s3vectors(&json!({"genre": {"$regex": "j"}})).is_err());
        assert!(Filter::from_s3vectors(&json!({"$and": []})).is_err());
    }
}
