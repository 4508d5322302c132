//! ExpressionAttributeNames and ExpressionAttributeValues of one request: parsed once, shared
//! by every expression of the request, and checked at the end for members nothing used.

use crate::error::ExprError;
use crate::value::AttributeValue;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The longest `#name` / `:value` key, sigil included.
const MAX_KEY_BYTES: usize = 255;

/// `#name` / `:value` keys: the sigil then at least one of `[0-9A-Za-z_]`.
fn valid_key(k: &str, sigil: char) -> bool {
    k.strip_prefix(sigil).is_some_and(|rest| {
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

/// The substitution tables of one request and which of their entries the request's
/// expressions used.
#[derive(Debug, Clone, Default)]
pub struct Params {
    names: Option<BTreeMap<String, String>>,
    values: Option<BTreeMap<String, AttributeValue>>,
    used_names: BTreeSet<String>,
    used_values: BTreeSet<String>,
}

impl Params {
    /// Reads the two request members (either may be absent), with DynamoDB's checks: neither
    /// may be given empty, names start with `#` and values with `:`, values are valid
    /// DynamoDB JSON.
    pub fn new(names: Option<&Value>, values: Option<&Value>) -> Result<Params, ExprError> {
        let mut p = Params::default();
        if let Some(n) = names {
            let obj = n
                .as_object()
                .ok_or_else(|| ExprError::new("ExpressionAttributeNames must be a map"))?;
            if obj.is_empty() {
                return Err(ExprError::new("ExpressionAttributeNames must not be empty"));
            }
            let mut map = BTreeMap::new();
            for (k, v) in obj {
                if k.len() > MAX_KEY_BYTES {
                    return Err(ExprError(format!(
                        "ExpressionAttributeNames contains invalid key: The expression attribute map contains a key that is too long; size of key: {}",
                        k.len()
                    )));
                }
                if !valid_key(k, '#') {
                    return Err(ExprError(format!(
                        "ExpressionAttributeNames contains invalid key: Syntax error; key: \"{k}\""
                    )));
                }
                let v = v.as_str().ok_or_else(|| {
                    ExprError::new("ExpressionAttributeNames values must be strings")
                })?;
                if v.is_empty() {
                    return Err(ExprError(format!(
                        "ExpressionAttributeNames contains invalid value: Empty attribute name for key {k}"
                    )));
                }
                map.insert(k.clone(), v.to_string());
            }
            p.names = Some(map);
        }
        if let Some(v) = values {
            let obj = v
                .as_object()
                .ok_or_else(|| ExprError::new("ExpressionAttributeValues must be a map"))?;
            if obj.is_empty() {
                return Err(ExprError::new(
                    "ExpressionAttributeValues must not be empty",
                ));
            }
            let mut map = BTreeMap::new();
            for (k, v) in obj {
                if k.len() > MAX_KEY_BYTES {
                    // DynamoDB gives no size for values, unlike for names.
                    return Err(ExprError::new(
                        "ExpressionAttributeValues contains invalid key: The expression attribute map contains a key that is too long;",
                    ));
                }
                if !valid_key(k, ':') {
                    return Err(ExprError(format!(
                        "ExpressionAttributeValues contains invalid key: Syntax error; key: \"{k}\""
                    )));
                }
                let av = AttributeValue::from_json(v).map_err(|e| {
                    ExprError(format!(
                        "ExpressionAttributeValues contains invalid value: {e} for key {k}"
                    ))
                })?;
                map.insert(k.clone(), av);
            }
            p.values = Some(map);
        }
        Ok(p)
    }

    /// Params built in code (PartiQL, tests): the same checks are skipped, the tables taken as given.
    pub fn from_maps(
        names: BTreeMap<String, String>,
        values: BTreeMap<String, AttributeValue>,
    ) -> Params {
        Params {
            names: (!names.is_empty()).then_some(names),
            values: (!values.is_empty()).then_some(values),
            ..Params::default()
        }
    }

    /// After every expression of the request is parsed: DynamoDB's error for names or values
    /// that were given but never used. Names are checked first.
    pub fn finish(&self) -> Result<(), ExprError> {
        let unused = |given: Option<Vec<&String>>, used: &BTreeSet<String>| -> Vec<String> {
            given
                .unwrap_or_default()
                .into_iter()
                .filter(|k| !used.contains(*k))
                .cloned()
                .collect()
        };
        let names = unused(
            self.names.as_ref().map(|m| m.keys().collect()),
            &self.used_names,
        );
        if !names.is_empty() {
            return Err(ExprError(format!(
                "Value provided in ExpressionAttributeNames unused in expressions: keys: {{{}}}",
                names.join(", ")
            )));
        }
        let values = unused(
            self.values.as_ref().map(|m| m.keys().collect()),
            &self.used_values,
        );
        if !values.is_empty() {
            return Err(ExprError(format!(
                "Value provided in ExpressionAttributeValues unused in expressions: keys: {{{}}}",
                values.join(", ")
            )));
        }
        Ok(())
    }

    /// Substitutes `#name`, marking it used; `None` when the request does not define it.
    pub(crate) fn name(&mut self, token: &str) -> Option<String> {
        let v = self.names.as_ref()?.get(token)?.clone();
        self.used_names.insert(token.to_string());
        Some(v)
    }

    /// Substitutes `:value`, marking it used; `None` when the request does not define it.
    pub(crate) fn value(&mut self, token: &str) -> Option<AttributeValue> {
        let v = self.values.as_ref()?.get(token)?.clone();
        self.used_values.insert(token.to_string());
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rejects_empty_and_malformed_tables() {
        assert_eq!(
            Params::new(Some(&json!({})), None).unwrap_err().0,
            "ExpressionAttributeNames must not be empty"
        );
        assert_eq!(
            Params::new(None, Some(&json!({}))).unwrap_err().0,
            "ExpressionAttributeValues must not be empty"
        );
        assert_eq!(
            Params::new(None, Some(&json!({":v": {"NS": []}})))
                .unwrap_err()
                .0,
            "ExpressionAttributeValues contains invalid value: One or more parameter values were invalid: An number set  may not be empty for key :v"
        );
        assert_eq!(
            Params::new(Some(&json!({"n": "x"})), None).unwrap_err().0,
            "ExpressionAttributeNames contains invalid key: Syntax error; key: \"n\""
        );
        assert_eq!(
            Params::new(Some(&json!({"#a-b": "x"})), None)
                .unwrap_err()
                .0,
            "ExpressionAttributeNames contains invalid key: Syntax error; key: \"#a-b\""
        );
        assert_eq!(
            Params::new(None, Some(&json!({"v": {"S": "x"}})))
                .unwrap_err()
                .0,
            "ExpressionAttributeValues contains invalid key: Syntax error; key: \"v\""
        );
    }

    #[test]
    fn reports_unused_and_undefined() {
        let mut p = Params::new(
            Some(&json!({"#a": "a", "#b": "b"})),
            Some(&json!({":x": {"S": "1"}, ":y": {"N": "2"}})),
        )
        .unwrap();
        assert_eq!(p.name("#a").unwrap(), "a");
        assert_eq!(
            p.finish().unwrap_err().0,
            "Value provided in ExpressionAttributeNames unused in expressions: keys: {#b}"
        );
        p.name("#b").unwrap();
        assert_eq!(
            p.finish().unwrap_err().0,
            "Value provided in ExpressionAttributeValues unused in expressions: keys: {:x, :y}"
        );
        p.value(":x").unwrap();
        p.value(":y").unwrap();
        assert!(p.finish().is_ok());
        assert_eq!(p.name("#c"), None);
        assert_eq!(p.value(":z"), None);
    }
}
