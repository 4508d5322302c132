//! SNS subscription filter policies: the EventBridge matching engine with SNS's operator set,
//! limits and wording.
//! <https://docs.aws.amazon.com/sns/latest/dg/subscription-filter-policy-constraints.html>

use serde_json::{Map, Value};

use crate::ast::ObjNode;
use crate::error::PatternError;
use crate::eval::{self, Ctx};
use crate::parse::{Dialect, parse_root};

/// What a subscription's policy is matched against (`FilterPolicyScope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FilterPolicyScope {
    /// The message attributes, given to `matches` as one object (`String` as a string, `Number`
    /// as a number, `String.Array` as an array). `exists` asks whether the attribute is set.
    #[default]
    MessageAttributes,
    /// The message body, parsed as JSON; policies may nest.
    MessageBody,
}

const MAX_KEYS: usize = 5;
const MAX_COMBINATIONS: u64 = 150;

/// One compiled SNS filter policy.
#[derive(Debug, Clone)]
pub struct FilterPolicy {
    /// `None` for `{}`, which SNS accepts and which lets every message through.
    root: Option<ObjNode>,
    scope: Option<FilterPolicyScope>,
}

impl FilterPolicy {
    /// Parses and validates a policy without knowing its scope: nesting is allowed and `exists`
    /// looks at leaf values, which is right for message bodies and agrees with key presence for
    /// attribute objects except on an empty `String.Array`. Use [`FilterPolicy::parse_scoped`]
    /// when the subscription's scope is known.
    pub fn parse(json: &str) -> Result<FilterPolicy, PatternError> {
        Self::parse_inner(json, None)
    }

    /// Parses for a known scope: `MessageAttributes` refuses nested policies, as SNS does.
    pub fn parse_scoped(
        json: &str,
        scope: FilterPolicyScope,
    ) -> Result<FilterPolicy, PatternError> {
        Self::parse_inner(json, Some(scope))
    }

    fn parse_inner(
        json: &str,
        scope: Option<FilterPolicyScope>,
    ) -> Result<FilterPolicy, PatternError> {
        let v: Value = serde_json::from_str(json)
            .map_err(|e| PatternError::policy(format!("failed to parse JSON. {e}")))?;
        let Value::Object(m) = &v else {
            return Err(PatternError::policy("Filter is not an object"));
        };
        if m.is_empty() {
            return Ok(FilterPolicy { root: None, scope });
        }
        if m.len() > MAX_KEYS {
            return Err(PatternError::policy(
                "Filter policy can not have more than 5 keys",
            ));
        }
        if scope == Some(FilterPolicyScope::MessageAttributes)
            && m.iter().any(|(k, v)| k != "$or" && v.is_object())
        {
            return Err(PatternError::policy_bare(
                "Filter policy scope MessageAttributes does not support nested filter policy",
            ));
        }
        let root = parse_root(&v, Dialect::Sns)?;
        if combinations(m, 1, 1) > MAX_COMBINATIONS {
            return Err(PatternError::policy("Filter policy is too complex"));
        }
        Ok(FilterPolicy {
            root: Some(root),
            scope,
        })
    }

    /// Whether the message is delivered. `doc` is the body (`MessageBody` scope) or the object
    /// the SNS service builds from the attributes (`MessageAttributes` scope).
    pub fn matches(&self, doc: &Value) -> bool {
        match &self.root {
            None => true,
            Some(root) => eval::matches(
                root,
                Ctx {
                    root: doc,
                    key_presence: self.scope == Some(FilterPolicyScope::MessageAttributes),
                },
            ),
        }
    }

    /// The scope given to `parse_scoped`, if any.
    pub fn scope(&self) -> Option<FilterPolicyScope> {
        self.scope
    }
}

/// SNS's complexity measure: the product over leaf arrays of (values x nesting depth), with
/// `$or` alternatives adding up. The constraints page works its nested example this way
/// ("3 x 4 x 2 x 3 = 72").
fn combinations(m: &Map<String, Value>, depth: u64, mut acc: u64) -> u64 {
    for (k, v) in m {
        match v {
            Value::Object(inner) => acc = combinations(inner, depth + 1, acc),
            Value::Array(items) if k == "$or" => {
                acc = items
                    .iter()
                    .filter_map(Value::as_object)
                    .fold(0u64, |sum, alt| {
                        sum.saturating_add(combinations(alt, depth, acc))
                    });
            }
            Value::Array(items) => {
                acc = acc.saturating_mul(items.len() as u64).saturating_mul(depth)
            }
            _ => {}
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn limits() {
        let six = r#"{"a":[1],"b":[1],"c":[1],"d":[1],"e":[1],"f":[1]}"#;
        assert_eq!(
            FilterPolicy::parse(six).unwrap_err().to_string(),
            "Invalid parameter: FilterPolicy: Filter policy can not have more than 5 keys"
        );
        let values: Vec<u32> = (0..151).collect();
        let big = json!({ "a": values }).to_string();
        assert_eq!(
            FilterPolicy::parse(&big).unwrap_err().to_string(),
            "Invalid parameter: FilterPolicy: Filter policy is too complex"
        );
        let ok = json!({ "a": (0..150).collect::<Vec<_>>() }).to_string();
        assert!(FilterPolicy::parse(&ok).is_ok());
    }

    #[test]
    fn nested_example_from_the_constraints_page_counts_72() {
        let p = json!({
            "key_a": { "key_b": { "key_c": ["value_one", "value_two", "value_three", "value_four"] } },
            "key_d": { "key_e": ["value_one", "value_two", "value_three"] }
        });
        assert_eq!(combinations(p.as_object().unwrap(), 1, 1), 72);
    }

    #[test]
    fn attribute_scope_refuses_nesting_and_checks_presence() {
        let e = FilterPolicy::parse_scoped(
            r#"{"a": {"b": ["x"]}}"#,
            FilterPolicyScope::MessageAttributes,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Invalid parameter: Filter policy scope MessageAttributes does not support nested filter policy"
        );
        let p = FilterPolicy::parse_scoped(
            r#"{"tags": [{"exists": true}]}"#,
            FilterPolicyScope::MessageAttributes,
        )
        .unwrap();
        assert!(p.matches(&json!({"tags": []})));
        let p = FilterPolicy::parse(r#"{"tags": [{"exists": true}]}"#).unwrap();
        assert!(!p.matches(&json!({"tags": []})));
    }

    #[test]
    fn empty_policy_matches_everything() {
        let p = FilterPolicy::parse("{}").unwrap();
        assert!(p.matches(&json!({})));
        assert!(p.matches(&json!("not even an object")));
    }

    #[test]
    fn numeric_accepts_numeric_strings() {
        let p = FilterPolicy::parse(r#"{"price": [{"numeric": [">", 100]}]}"#).unwrap();
        assert!(p.matches(&json!({"price": 101})));
        assert!(p.matches(&json!({"price": "101.5"})));
        assert!(!p.matches(&json!({"price": "cheap"})));
        // An exact numeric value still wants a number.
        let p = FilterPolicy::parse(r#"{"price": [100]}"#).unwrap();
        assert!(!p.matches(&json!({"price": "100"})));
    }
}
