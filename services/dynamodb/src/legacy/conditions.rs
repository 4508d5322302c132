//! The legacy condition maps (`QueryFilter`, `ScanFilter`, `KeyConditions`, `Expected`): one
//! entry per attribute, each a ComparisonOperator with its AttributeValueList (or, in
//! `Expected`, the older `Value`/`Exists` pair), checked as DynamoDB checks them and written
//! as a condition expression.
//!
//! Each operator has its expression twin with the same typing: an item value of another type
//! never matches, a missing attribute satisfies only NE, NULL and NOT_CONTAINS
//! (<https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Condition.html>,
//! <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/LegacyConditionalParameters.Conditions.html>).

use basalt_core::AwsError;
use basalt_dynamodb_expr::{AttributeValue, compare_scalars};
use serde_json::{Map, Value};
use std::cmp::Ordering;

use super::{Placeholders, at, constraint};

/// DynamoDB's listing of the ComparisonOperator enum in its constraint messages.
const OPERATOR_ENUM: &str = "Member must satisfy enum value set: [IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]";

/// Which shape the map's entries have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `Condition`: ComparisonOperator required (QueryFilter, ScanFilter, KeyConditions).
    Filter,
    /// `ExpectedAttributeValue`: ComparisonOperator or Value/Exists.
    Expected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Le,
    Lt,
    Ge,
    Gt,
    NotNull,
    Null,
    Contains,
    NotContains,
    BeginsWith,
    In,
    Between,
}

impl Op {
    const ALL: [Op; 13] = [
        Op::Eq,
        Op::Ne,
        Op::Le,
        Op::Lt,
        Op::Ge,
        Op::Gt,
        Op::NotNull,
        Op::Null,
        Op::Contains,
        Op::NotContains,
        Op::BeginsWith,
        Op::In,
        Op::Between,
    ];

    fn parse(s: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|o| o.name() == s)
    }

    fn name(self) -> &'static str {
        match self {
            Op::Eq => "EQ",
            Op::Ne => "NE",
            Op::Le => "LE",
            Op::Lt => "LT",
            Op::Ge => "GE",
            Op::Gt => "GT",
            Op::NotNull => "NOT_NULL",
            Op::Null => "NULL",
            Op::Contains => "CONTAINS",
            Op::NotContains => "NOT_CONTAINS",
            Op::BeginsWith => "BEGINS_WITH",
            Op::In => "IN",
            Op::Between => "BETWEEN",
        }
    }

    fn arity_ok(self, n: usize) -> bool {
        match self {
            Op::NotNull | Op::Null => n == 0,
            Op::In => n >= 1,
            Op::Between => n == 2,
            _ => n == 1,
        }
    }

    /// Whether a value of type `ty` may stand in the AttributeValueList.
    fn takes(self, ty: &str) -> bool {
        match self {
            Op::Eq | Op::Ne | Op::NotNull | Op::Null => true,
            Op::Le | Op::Lt | Op::Ge | Op::Gt | Op::In | Op::Between => {
                matches!(ty, "S" | "N" | "B")
            }
            // A list may contain a scalar, never a set, list or map.
            Op::Contains | Op::NotContains => !matches!(ty, "SS" | "NS" | "BS" | "M" | "L"),
            Op::BeginsWith => matches!(ty, "S" | "B"),
        }
    }

    /// Whether a key condition can use it (the others would need a scan of the partition).
    fn indexable(self) -> bool {
        matches!(
            self,
            Op::Eq | Op::Le | Op::Lt | Op::Ge | Op::Gt | Op::BeginsWith | Op::Between
        )
    }
}

fn invalid(detail: impl std::fmt::Display) -> AwsError {
    AwsError::validation(format!(
        "One or more parameter values were invalid: {detail}"
    ))
}

/// One legacy map as read from the request, its operators known but nothing else checked.
pub(crate) struct Legacy {
    kind: Kind,
    entries: Vec<(String, Option<Op>, Map<String, Value>)>,
}

/// One checked condition.
#[derive(Debug, PartialEq)]
struct Cond {
    attr: String,
    op: Op,
    values: Vec<Value>,
}

/// A checked map, ready to be written as an expression.
#[derive(Debug)]
pub(crate) struct Checked {
    conds: Vec<Cond>,
}

impl Legacy {
    /// Reads `member` with the model's constraints (an operator from the enum; required in a
    /// `Condition`); `None` when the request has no such member.
    pub fn read(input: &Value, member: &str, kind: Kind) -> Result<Option<Legacy>, AwsError> {
        let Some(raw) = input.get(member).filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let Some(map) = raw.as_object() else {
            return Err(AwsError::serialization("Expected map or null"));
        };
        let mut entries = Vec::new();
        for (attr, c) in map {
            let Some(c) = c.as_object() else {
                return Err(AwsError::serialization("Expected null"));
            };
            let path = format!("{}.{attr}.member.comparisonOperator", at("", member));
            let op = match c.get("ComparisonOperator").filter(|v| !v.is_null()) {
                None if kind == Kind::Filter => {
                    return Err(constraint(None, &path, "Member must not be null"));
                }
                None => None,
                Some(v) => {
                    let s = v.as_str().unwrap_or_default();
                    Some(Op::parse(s).ok_or_else(|| constraint(Some(s), &path, OPERATOR_ENUM))?)
                }
            };
            entries.push((attr.clone(), op, c.clone()));
        }
        Ok(Some(Legacy { kind, entries }))
    }

    /// Checks every entry as DynamoDB does, in the request's order.
    pub fn validate(self) -> Result<Checked, AwsError> {
        let mut conds = Vec::with_capacity(self.entries.len());
        for (attr, op, c) in self.entries {
            conds.push(match self.kind {
                Kind::Filter => {
                    let op = op.unwrap_or(Op::Eq);
                    let values = list(&c, "AttributeValueList");
                    check_values(op, &values)?;
                    Cond { attr, op, values }
                }
                Kind::Expected => expected(attr, op, &c)?,
            });
        }
        Ok(Checked { conds })
    }
}

fn list(c: &Map<String, Value>, member: &str) -> Vec<Value> {
    c.get(member)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn has(c: &Map<String, Value>, member: &str) -> bool {
    c.get(member).is_some_and(|v| !v.is_null())
}

/// An `ExpectedAttributeValue`, with the errors for the combinations DynamoDB refuses.
fn expected(attr: String, op: Option<Op>, c: &Map<String, Value>) -> Result<Cond, AwsError> {
    let (has_list, has_value) = (has(c, "AttributeValueList"), has(c, "Value"));
    if has_list && has_value {
        return Err(invalid(format!(
            "Value and AttributeValueList cannot be used together for Attribute: {attr}"
        )));
    }
    if let Some(op) = op {
        if has(c, "Exists") {
            return Err(invalid(format!(
                "Exists and ComparisonOperator cannot be used together for Attribute: {attr}"
            )));
        }
        if !matches!(op, Op::Null | Op::NotNull) && !has_list && !has_value {
            return Err(invalid(format!(
                "Value or AttributeValueList must be used with ComparisonOperator: {} for Attribute: {attr}",
                op.name()
            )));
        }
        let values = match c.get("Value").filter(|v| !v.is_null()) {
            Some(v) => vec![v.clone()],
            None => list(c, "AttributeValueList"),
        };
        check_values(op, &values)?;
        return Ok(Cond { attr, op, values });
    }
    if has_list {
        return Err(invalid(format!(
            "AttributeValueList can only be used with a ComparisonOperator for Attribute: {attr}"
        )));
    }
    let exists = c.get("Exists").and_then(Value::as_bool);
    match (exists, c.get("Value").filter(|v| !v.is_null())) {
        (Some(false), None) => Ok(Cond {
            attr,
            op: Op::Null,
            values: Vec::new(),
        }),
        (Some(false), Some(_)) => Err(invalid(format!(
            "Value cannot be used when Exists is false for Attribute: {attr}"
        ))),
        (_, Some(v)) => {
            attribute_value(v)?;
            Ok(Cond {
                attr,
                op: Op::Eq,
                values: vec![v.clone()],
            })
        }
        (e, None) => Err(invalid(format!(
            "Value must be provided when Exists is {} for Attribute: {attr}",
            if e.is_some() { "true" } else { "null" }
        ))),
    }
}

fn attribute_value(v: &Value) -> Result<AttributeValue, AwsError> {
    AttributeValue::from_json(v).map_err(|e| AwsError::validation(e.0))
}

/// The values' own validity, their count for the operator, one type for all, a type the
/// operator takes, and BETWEEN's bounds in order.
fn check_values(op: Op, values: &[Value]) -> Result<(), AwsError> {
    let parsed: Vec<AttributeValue> = values
        .iter()
        .map(attribute_value)
        .collect::<Result<_, _>>()?;
    if !op.arity_ok(parsed.len()) {
        return Err(invalid(format!(
            "Invalid number of argument(s) for the {} ComparisonOperator",
            op.name()
        )));
    }
    let Some(first) = parsed.first() else {
        return Ok(());
    };
    let ty = first.type_name();
    if parsed.iter().any(|v| v.type_name() != ty) {
        return Err(invalid(
            "AttributeValues inside AttributeValueList must be of same type",
        ));
    }
    if !op.takes(ty) {
        return Err(invalid(format!(
            "ComparisonOperator {} is not valid for {ty} AttributeValue type",
            op.name()
        )));
    }
    if op == Op::Between && compare_scalars(&parsed[0], &parsed[1]) == Some(Ordering::Greater) {
        return Err(AwsError::validation(
            "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound",
        ));
    }
    Ok(())
}

impl Cond {
    fn expression(&self, ph: &mut Placeholders) -> String {
        let a = ph.name(&self.attr);
        let v: Vec<String> = self.values.iter().map(|v| ph.value(v)).collect();
        let compare = |sym: &str| format!("{a} {sym} {}", v[0]);
        match self.op {
            Op::Eq => compare("="),
            Op::Ne => compare("<>"),
            Op::Le => compare("<="),
            Op::Lt => compare("<"),
            Op::Ge => compare(">="),
            Op::Gt => compare(">"),
            Op::NotNull => format!("attribute_exists({a})"),
            Op::Null => format!("attribute_not_exists({a})"),
            Op::Contains => format!("contains({a}, {})", v[0]),
            Op::NotContains => format!("NOT contains({a}, {})", v[0]),
            Op::BeginsWith => format!("begins_with({a}, {})", v[0]),
            Op::In => format!("{a} IN ({})", v.join(", ")),
            Op::Between => format!("{a} BETWEEN {} AND {}", v[0], v[1]),
        }
    }
}

impl Checked {
    /// The conditions joined by `conditional_operator` (AND or OR); `None` for an empty map,
    /// which asks for nothing.
    pub fn expression(&self, conditional_operator: &str, ph: &mut Placeholders) -> Option<String> {
        match self.conds.as_slice() {
            [] => None,
            [one] => Some(one.expression(ph)),
            many => Some(
                many.iter()
                    .map(|c| format!("({})", c.expression(ph)))
                    .collect::<Vec<_>>()
                    .join(&format!(" {conditional_operator} ")),
            ),
        }
    }

    /// KeyConditions as a KeyConditionExpression: one or two conditions, each one a key
    /// condition can use. Which attributes are keys is the query's to check, against the
    /// table it reads.
    pub fn key_expression(&self, ph: &mut Placeholders) -> Result<String, AwsError> {
        if !matches!(self.conds.len(), 1 | 2) {
            return Err(AwsError::validation(
                "Conditions can be of length 1 or 2 only",
            ));
        }
        if self.conds.iter().any(|c| !c.op.indexable()) {
            return Err(AwsError::validation(
                "Attempted conditional constraint is not an indexable operation",
            ));
        }
        Ok(self
            .conds
            .iter()
            .map(|c| c.expression(ph))
            .collect::<Vec<_>>()
            .join(" AND "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn checked(kind: Kind, map: Value) -> Result<Checked, AwsError> {
        let input = json!({ "M": map });
        Legacy::read(&input, "M", kind)?.unwrap().validate()
    }

    fn filter(map: Value, op: &str) -> Result<(String, Value), AwsError> {
        let c = checked(Kind::Filter, map)?;
        let mut ph = Placeholders::new(&json!({}));
        let e = c.expression(op, &mut ph).unwrap_or_default();
        Ok((e, Value::Object(ph.new_values)))
    }

    fn message(r: Result<impl std::fmt::Debug, AwsError>) -> String {
        r.expect_err("should be refused").message
    }

    #[test]
    fn every_operator_has_its_expression() {
        let s = json!({"S": "x"});
        let cases = [
            ("EQ", json!([s]), "#legacy0 = :legacy0"),
            ("NE", json!([s]), "#legacy0 <> :legacy0"),
            ("LE", json!([s]), "#legacy0 <= :legacy0"),
            ("LT", json!([s]), "#legacy0 < :legacy0"),
            ("GE", json!([s]), "#legacy0 >= :legacy0"),
            ("GT", json!([s]), "#legacy0 > :legacy0"),
            ("NOT_NULL", json!([]), "attribute_exists(#legacy0)"),
            ("NULL", json!([]), "attribute_not_exists(#legacy0)"),
            ("CONTAINS", json!([s]), "contains(#legacy0, :legacy0)"),
            (
                "NOT_CONTAINS",
                json!([s]),
                "NOT contains(#legacy0, :legacy0)",
            ),
            ("BEGINS_WITH", json!([s]), "begins_with(#legacy0, :legacy0)"),
            (
                "IN",
                json!([s, {"S": "y"}]),
                "#legacy0 IN (:legacy0, :legacy1)",
            ),
            (
                "BETWEEN",
                json!([{"S": "a"}, {"S": "b"}]),
                "#legacy0 BETWEEN :legacy0 AND :legacy1",
            ),
        ];
        for (op, values, want) in cases {
            let map = json!({"a.b": {"ComparisonOperator": op, "AttributeValueList": values}});
            let (e, _) = filter(map, "AND").unwrap();
            assert_eq!(e, want, "{op}");
        }
    }

    #[test]
    fn conditions_join_with_the_conditional_operator() {
        let map = json!({
            "ProductCategory": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "Book"}]},
            "PageCount": {"ComparisonOperator": "GE", "AttributeValueList": [{"N": "600"}]}
        });
        let (and, values) = filter(map.clone(), "AND").unwrap();
        assert_eq!(and, "(#legacy0 = :legacy0) AND (#legacy1 >= :legacy1)");
        assert_eq!(
            values,
            json!({":legacy0": {"S": "Book"}, ":legacy1": {"N": "600"}})
        );
        let (or, _) = filter(map, "OR").unwrap();
        assert_eq!(or, "(#legacy0 = :legacy0) OR (#legacy1 >= :legacy1)");
        assert!(filter(json!({}), "AND").unwrap().0.is_empty());
    }

    #[test]
    fn argument_counts() {
        for (op, values) in [
            ("EQ", json!([])),
            ("NE", json!([{"S": "a"}, {"S": "a"}])),
            ("NULL", json!([{"S": "a"}])),
            ("NOT_NULL", json!([{"S": "a"}])),
            ("IN", json!([])),
            ("BETWEEN", json!([{"S": "a"}])),
            ("BEGINS_WITH", json!([])),
        ] {
            let map = json!({"a": {"ComparisonOperator": op, "AttributeValueList": values}});
            assert_eq!(
                message(filter(map, "AND")),
                format!(
                    "One or more parameter values were invalid: Invalid number of argument(s) for the {op} ComparisonOperator"
                )
            );
        }
        let map = json!({"a": {"ComparisonOperator": "GT"}});
        assert_eq!(
            message(filter(map, "AND")),
            "One or more parameter values were invalid: Invalid number of argument(s) for the GT ComparisonOperator"
        );
    }

    #[test]
    fn value_types_per_operator() {
        for (op, value, ty) in [
            ("LT", json!({"BOOL": true}), "BOOL"),
            ("GE", json!({"SS": ["a"]}), "SS"),
            ("IN", json!({"NULL": true}), "NULL"),
            ("CONTAINS", json!({"NS": ["1"]}), "NS"),
            ("NOT_CONTAINS", json!({"L": []}), "L"),
            ("BEGINS_WITH", json!({"N": "1"}), "N"),
        ] {
            let map = json!({"a": {"ComparisonOperator": op, "AttributeValueList": [value]}});
            assert_eq!(
                message(filter(map, "AND")),
                format!(
                    "One or more parameter values were invalid: ComparisonOperator {op} is not valid for {ty} AttributeValue type"
                )
            );
        }
        // EQ and NE take every type (API_Condition: "supported for all data types").
        for v in [
            json!({"SS": ["a"]}),
            json!({"M": {}}),
            json!({"BOOL": false}),
        ] {
            let map = json!({"a": {"ComparisonOperator": "EQ", "AttributeValueList": [v]}});
            assert!(filter(map, "AND").is_ok());
        }
        let mixed = json!({"a": {"ComparisonOperator": "IN", "AttributeValueList": [{"S": "1"}, {"N": "1"}]}});
        assert_eq!(
            message(filter(mixed, "AND")),
            "One or more parameter values were invalid: AttributeValues inside AttributeValueList must be of same type"
        );
    }

    #[test]
    fn values_are_checked_and_between_bounds_ordered() {
        let bad = json!({"a": {"ComparisonOperator": "EQ", "AttributeValueList": [{"SS": []}]}});
        assert!(message(filter(bad, "AND")).contains("set"));
        let empty = json!({"a": {"ComparisonOperator": "EQ", "AttributeValueList": [{}]}});
        assert_eq!(
            message(filter(empty, "AND")),
            "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
        );
        let reversed = json!({"a": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "10"}, {"N": "9"}]}});
        assert_eq!(
            message(filter(reversed, "AND")),
            "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound"
        );
        let equal = json!({"a": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "1"}, {"N": "1.0"}]}});
        assert!(filter(equal, "AND").is_ok());
    }

    #[test]
    fn operators_are_required_and_from_the_enum() {
        let input = json!({"ScanFilter": {"a": {"AttributeValueList": []}}});
        assert_eq!(
            message(Legacy::read(&input, "ScanFilter", Kind::Filter).map(|_| ())),
            "1 validation error detected: Value null at 'scanFilter.a.member.comparisonOperator' failed to satisfy constraint: Member must not be null"
        );
        let input = json!({"Expected": {"a": {"ComparisonOperator": "EQUALS"}}});
        assert_eq!(
            message(Legacy::read(&input, "Expected", Kind::Expected).map(|_| ())),
            format!(
                "1 validation error detected: Value 'EQUALS' at 'expected.a.member.comparisonOperator' failed to satisfy constraint: {OPERATOR_ENUM}"
            )
        );
    }

    fn expected_expr(map: Value) -> Result<String, AwsError> {
        let c = checked(Kind::Expected, map)?;
        let mut ph = Placeholders::new(&json!({}));
        Ok(c.expression("AND", &mut ph).unwrap_or_default())
    }

    #[test]
    fn expected_value_and_exists_forms() {
        // LegacyConditionalParameters.Conditions: "Other conditional operators".
        assert_eq!(
            expected_expr(json!({"Id": {"Exists": false}})).unwrap(),
            "attribute_not_exists(#legacy0)"
        );
        assert_eq!(
            expected_expr(json!({"InPublication": {"Exists": true, "Value": {"BOOL": false}}}))
                .unwrap(),
            "#legacy0 = :legacy0"
        );
        assert_eq!(
            expected_expr(json!({"a": {"Value": {"S": "x"}}})).unwrap(),
            "#legacy0 = :legacy0"
        );
        assert_eq!(
            expected_expr(json!({"Id": {"ComparisonOperator": "NULL"}})).unwrap(),
            "attribute_not_exists(#legacy0)"
        );
        // A Value stands in for a one-element list beside a ComparisonOperator.
        assert_eq!(
            expected_expr(json!({"n": {"ComparisonOperator": "GT", "Value": {"N": "1"}}})).unwrap(),
            "#legacy0 > :legacy0"
        );
    }

    #[test]
    fn expected_refuses_mixed_forms() {
        let p = "One or more parameter values were invalid: ";
        for (map, want) in [
            (
                json!({"a": {"Exists": true}}),
                "Value must be provided when Exists is true for Attribute: a",
            ),
            (
                json!({"a": {}}),
                "Value must be provided when Exists is null for Attribute: a",
            ),
            (
                json!({"a": {"Exists": false, "Value": {"S": "x"}}}),
                "Value cannot be used when Exists is false for Attribute: a",
            ),
            (
                json!({"a": {"ComparisonOperator": "NULL", "Exists": false}}),
                "Exists and ComparisonOperator cannot be used together for Attribute: a",
            ),
            (
                json!({"a": {"ComparisonOperator": "EQ"}}),
                "Value or AttributeValueList must be used with ComparisonOperator: EQ for Attribute: a",
            ),
            (
                json!({"a": {"AttributeValueList": [{"S": "x"}]}}),
                "AttributeValueList can only be used with a ComparisonOperator for Attribute: a",
            ),
            (
                json!({"a": {"ComparisonOperator": "EQ", "Value": {"S": "x"}, "AttributeValueList": [{"S": "x"}]}}),
                "Value and AttributeValueList cannot be used together for Attribute: a",
            ),
        ] {
            assert_eq!(message(expected_expr(map)), format!("{p}{want}"));
        }
    }

    #[test]
    fn key_conditions() {
        let c = checked(
            Kind::Filter,
            json!({
                "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]},
                "sk": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"S": "a"}]}
            }),
        )
        .unwrap();
        let mut ph = Placeholders::new(&json!({}));
        assert_eq!(
            c.key_expression(&mut ph).unwrap(),
            "#legacy0 = :legacy0 AND begins_with(#legacy1, :legacy1)"
        );
        for op in ["NE", "CONTAINS", "NOT_CONTAINS", "IN"] {
            let c = checked(
                Kind::Filter,
                json!({"pk": {"ComparisonOperator": op, "AttributeValueList": [{"S": "p"}]}}),
            )
            .unwrap();
            assert_eq!(
                message(c.key_expression(&mut ph)),
                "Attempted conditional constraint is not an indexable operation"
            );
        }
        let c = checked(Kind::Filter, json!({"pk": {"ComparisonOperator": "NULL"}})).unwrap();
        assert_eq!(
            message(c.key_expression(&mut ph)),
            "Attempted conditional constraint is not an indexable operation"
        );
        let three = checked(
            Kind::Filter,
            json!({
                "a": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]},
                "b": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]},
                "c": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]}
            }),
        )
        .unwrap();
        assert_eq!(
            message(three.key_expression(&mut ph)),
            "Conditions can be of length 1 or 2 only"
        );
        let none = checked(Kind::Filter, json!({})).unwrap();
        assert_eq!(
            message(none.key_expression(&mut ph)),
            "Conditions can be of length 1 or 2 only"
        );
    }
}
