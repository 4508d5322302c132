//! UpdateItem's legacy `AttributeUpdates`: per attribute an Action (PUT, the default; ADD;
//! DELETE) and a Value, written as an UpdateExpression.
//!
//! - PUT sets the attribute (`SET #a = :v`).
//! - ADD adds a number to a number (a missing one counting as 0) or elements to a set, which
//!   is the expression ADD; for a list it appends (`SET #a = list_append(if_not_exists(#a,
//!   :empty), :v)`), which the expression ADD does not do.
//! - DELETE without a value removes the attribute (`REMOVE #a`); with a set it removes those
//!   elements (`DELETE #a :v`).
//!
//! <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/LegacyConditionalParameters.AttributeUpdates.html>

use basalt_core::AwsError;
use basalt_dynamodb_expr::AttributeValue;
use serde_json::{Value, json};

use super::{Placeholders, constraint};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Put,
    Add,
    Delete,
}

/// AttributeUpdates as read from the request, actions known.
pub(crate) struct Updates {
    entries: Vec<(String, Action, Option<Value>)>,
}

/// A value with its type descriptor (`N`, `SS`, ...).
type Typed = (Value, &'static str);

/// AttributeUpdates checked, each value's type known.
pub(crate) struct Checked {
    entries: Vec<(String, Action, Option<Typed>)>,
}

fn invalid(detail: impl std::fmt::Display) -> AwsError {
    AwsError::validation(format!(
        "One or more parameter values were invalid: {detail}"
    ))
}

impl Updates {
    /// Reads the member with the model's constraint on Action; `None` without the member.
    pub fn read(input: &Value) -> Result<Option<Updates>, AwsError> {
        let Some(raw) = input.get("AttributeUpdates").filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let Some(map) = raw.as_object() else {
            return Err(AwsError::serialization("Expected map or null"));
        };
        let mut entries = Vec::new();
        for (attr, u) in map {
            let Some(u) = u.as_object() else {
                return Err(AwsError::serialization("Expected null"));
            };
            let action = match u.get("Action").filter(|v| !v.is_null()) {
                None => Action::Put,
                Some(v) => match v.as_str() {
                    Some("PUT") => Action::Put,
                    Some("ADD") => Action::Add,
                    Some("DELETE") => Action::Delete,
                    other => {
                        return Err(constraint(
                            Some(other.unwrap_or_default()),
                            &format!("attributeUpdates.{attr}.member.action"),
                            "Member must satisfy enum value set: [ADD, PUT, DELETE]",
                        ));
                    }
                },
            };
            let value = u.get("Value").filter(|v| !v.is_null()).cloned();
            entries.push((attr.clone(), action, value));
        }
        Ok(Some(Updates { entries }))
    }

    /// DynamoDB's checks, in the request's order: a valid value, a value for every action
    /// but DELETE, a set for DELETE, a number, set or list for ADD.
    pub fn validate(self) -> Result<Checked, AwsError> {
        let mut entries = Vec::with_capacity(self.entries.len());
        for (attr, action, value) in self.entries {
            let typed = match value {
                Some(v) => {
                    let ty = AttributeValue::from_json(&v)
                        .map_err(|e| AwsError::validation(e.0))?
                        .type_name();
                    Some((v, ty))
                }
                None => None,
            };
            match (action, typed.as_ref().map(|t| t.1)) {
                (Action::Put | Action::Add, None) => {
                    return Err(invalid(
                        "Only DELETE action is allowed when no attribute value is specified",
                    ));
                }
                (Action::Delete, Some(ty)) if !matches!(ty, "SS" | "NS" | "BS") => {
                    return Err(invalid(format!(
                        "DELETE action with value is not supported for the type {ty}"
                    )));
                }
                (Action::Add, Some(ty)) if !matches!(ty, "N" | "SS" | "NS" | "BS" | "L") => {
                    return Err(invalid(format!(
                        "ADD action is not supported for the type {ty}"
                    )));
                }
                _ => {}
            }
            entries.push((attr, action, typed));
        }
        Ok(Checked { entries })
    }
}

impl Checked {
    /// The UpdateExpression; `None` for an empty map (the update then only makes sure the
    /// item exists, as an UpdateItem without an expression does).
    pub fn expression(self, ph: &mut Placeholders) -> Option<String> {
        let (mut set, mut remove, mut add, mut delete) = (vec![], vec![], vec![], vec![]);
        for (attr, action, value) in self.entries {
            let a = ph.name(&attr);
            match (action, value) {
                (Action::Put, Some((v, _))) => set.push(format!("{a} = {}", ph.value(&v))),
                (Action::Add, Some((v, "L"))) => {
                    let empty = ph.value(&json!({"L": []}));
                    let v = ph.value(&v);
                    set.push(format!(
                        "{a} = list_append(if_not_exists({a}, {empty}), {v})"
                    ));
                }
                (Action::Add, Some((v, _))) => add.push(format!("{a} {}", ph.value(&v))),
                (Action::Delete, Some((v, _))) => delete.push(format!("{a} {}", ph.value(&v))),
                (Action::Delete, None) => remove.push(a),
                // validate() refused these.
                (Action::Put | Action::Add, None) => {}
            }
        }
        let clauses: Vec<String> = [
            ("SET", set),
            ("REMOVE", remove),
            ("ADD", add),
            ("DELETE", delete),
        ]
        .into_iter()
        .filter(|(_, items)| !items.is_empty())
        .map(|(kw, items)| format!("{kw} {}", items.join(", ")))
        .collect();
        (!clauses.is_empty()).then(|| clauses.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(updates: Value) -> Result<(Option<String>, Value), AwsError> {
        let input = json!({ "AttributeUpdates": updates });
        let checked = Updates::read(&input)?.unwrap().validate()?;
        let mut ph = Placeholders::new(&json!({}));
        let e = checked.expression(&mut ph);
        Ok((e, Value::Object(ph.new_values)))
    }

    fn message(r: Result<impl std::fmt::Debug, AwsError>) -> String {
        r.expect_err("should be refused").message
    }

    #[test]
    fn each_action_becomes_its_clause() {
        let (e, values) = rewrite(json!({
            "name": {"Action": "PUT", "Value": {"S": "new"}},
            "plain": {"Value": {"S": "put by default"}},
            "count": {"Action": "ADD", "Value": {"N": "9"}},
            "tags": {"Action": "ADD", "Value": {"SS": ["c"]}},
            "extra": {"Action": "DELETE"},
            "old": {"Action": "DELETE", "Value": {"SS": ["b"]}}
        }))
        .unwrap();
        assert_eq!(
            e.unwrap(),
            "SET #legacy0 = :legacy0, #legacy1 = :legacy1 REMOVE #legacy4 ADD #legacy2 :legacy2, #legacy3 :legacy3 DELETE #legacy5 :legacy4"
        );
        assert_eq!(values[":legacy4"], json!({"SS": ["b"]}));
    }

    #[test]
    fn add_of_a_list_appends() {
        let (e, values) =
            rewrite(json!({"l": {"Action": "ADD", "Value": {"L": [{"S": "x"}]}}})).unwrap();
        assert_eq!(
            e.unwrap(),
            "SET #legacy0 = list_append(if_not_exists(#legacy0, :legacy0), :legacy1)"
        );
        assert_eq!(values[":legacy0"], json!({"L": []}));
    }

    #[test]
    fn an_empty_map_asks_for_nothing() {
        assert_eq!(rewrite(json!({})).unwrap().0, None);
    }

    #[test]
    fn refused_actions() {
        let p = "One or more parameter values were invalid: ";
        for (u, want) in [
            (
                json!({"a": {"Action": "PUT"}}),
                "Only DELETE action is allowed when no attribute value is specified".to_owned(),
            ),
            (
                json!({"a": {"Action": "ADD"}}),
                "Only DELETE action is allowed when no attribute value is specified".to_owned(),
            ),
            (
                json!({"a": {"Action": "DELETE", "Value": {"N": "1"}}}),
                "DELETE action with value is not supported for the type N".to_owned(),
            ),
            (
                json!({"a": {"Action": "DELETE", "Value": {"L": []}}}),
                "DELETE action with value is not supported for the type L".to_owned(),
            ),
            (
                json!({"a": {"Action": "ADD", "Value": {"S": "x"}}}),
                "ADD action is not supported for the type S".to_owned(),
            ),
            (
                json!({"a": {"Action": "ADD", "Value": {"M": {}}}}),
                "ADD action is not supported for the type M".to_owned(),
            ),
        ] {
            assert_eq!(message(rewrite(u)), format!("{p}{want}"));
        }
        assert_eq!(
            message(rewrite(
                json!({"a": {"Action": "APPEND", "Value": {"S": "x"}}})
            )),
            "1 validation error detected: Value 'APPEND' at 'attributeUpdates.a.member.action' failed to satisfy constraint: Member must satisfy enum value set: [ADD, PUT, DELETE]"
        );
        assert_eq!(
            message(rewrite(
                json!({"a": {"Action": "PUT", "Value": {"NS": []}}})
            )),
            AttributeValue::from_json(&json!({"NS": []})).unwrap_err().0
        );
    }
}
