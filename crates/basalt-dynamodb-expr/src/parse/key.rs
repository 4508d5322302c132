//! Key condition expressions: the condition grammar, restricted to `AND`-joined comparisons,
//! `BETWEEN` and `begins_with` on top-level key attributes.
//! Reference: <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.KeyConditionExpressions.html>

use super::parse_condition;
use crate::ast::{
    Comparator, Condition, Function, KeyCondition, KeyOp, KeyTerm, Operand, PathElement,
};
use crate::error::{ExprError, ExprKind};
use crate::params::Params;
use crate::value::AttributeValue;

/// Parses a key condition expression; check it against the key schema with
/// [`KeyCondition::resolve`].
pub fn parse_key_condition(expr: &str, params: &mut Params) -> Result<KeyCondition, ExprError> {
    let cond = parse_condition(expr, ExprKind::KeyCondition, params)?;
    let mut terms = Vec::new();
    collect(&cond, &mut terms)?;
    Ok(KeyCondition { terms })
}

/// The `KeyConditionExpressions ...` family, which DynamoDB prefixes like parse errors.
fn key_error(detail: &str) -> ExprError {
    ExprKind::KeyCondition.error(detail)
}

fn invalid_op(op: &str) -> ExprError {
    ExprError(format!(
        "Invalid operator used in KeyConditionExpression: {op}"
    ))
}

fn invalid_cond(detail: &str) -> ExprError {
    ExprError(format!(
        "Invalid condition in KeyConditionExpression: {detail}"
    ))
}

fn collect(c: &Condition, terms: &mut Vec<KeyTerm>) -> Result<(), ExprError> {
    let (cmp, args): (Option<Comparator>, Vec<&Operand>) = match c {
        Condition::And(a, b) => {
            collect(a, terms)?;
            return collect(b, terms);
        }
        Condition::Or(..) => return Err(invalid_op("OR")),
        Condition::Not(_) => return Err(invalid_op("NOT")),
        Condition::In { .. } => return Err(invalid_op("IN")),
        Condition::Compare {
            op: Comparator::Ne, ..
        } => return Err(invalid_op("<>")),
        Condition::Compare { left, op, right } => (Some(*op), vec![left, right]),
        Condition::Between { value, low, high } => {
            if !matches!(value, Operand::Path(_)) {
                return Err(invalid_cond(
                    "BETWEEN operator must have the key attribute as its first operand",
                ));
            }
            (None, vec![value, low, high])
        }
        Condition::Function(Function::BeginsWith(a, b)) => {
            if !matches!(a, Operand::Path(_)) {
                return Err(invalid_cond(
                    "begins_with operator must have the key attribute as its first operand",
                ));
            }
            (None, vec![a, b])
        }
        Condition::Function(f) => {
            return Err(invalid_op(match f {
                Function::AttributeExists(_) => "attribute_exists",
                Function::AttributeNotExists(_) => "attribute_not_exists",
                Function::AttributeType(..) => "attribute_type",
                _ => "contains",
            }));
        }
    };
    let mut name: Option<(String, usize)> = None;
    let mut values: Vec<AttributeValue> = Vec::new();
    for (i, a) in args.iter().enumerate() {
        match a {
            Operand::Size(_) => {
                return Err(key_error(
                    "KeyConditionExpressions cannot contain nested operations",
                ));
            }
            Operand::Path(p) => {
                if name.is_some() {
                    return Err(invalid_cond(
                        "Multiple attribute names used in one condition",
                    ));
                }
                let [PathElement::Attr(n)] = p.elements.as_slice() else {
                    return Err(key_error(
                        "KeyConditionExpressions cannot have conditions on nested attributes",
                    ));
                };
                name = Some((n.clone(), i));
            }
            Operand::Value(v) => values.push(v.clone()),
        }
    }
    let Some((name, at)) = name else {
        return Err(invalid_cond("No key attribute specified"));
    };
    if terms.iter().any(|t| t.name == name) {
        return Err(key_error(
            "KeyConditionExpressions must only contain one condition per key",
        ));
    }
    let op = match (cmp, c) {
        // `:v < k` reads as `k > :v`.
        (Some(op), _) if at != 0 => KeyOp::Compare(flip(op), values.remove(0)),
        (Some(op), _) => KeyOp::Compare(op, values.remove(0)),
        (None, Condition::Between { .. }) => {
            let hi = values.pop().unwrap_or(AttributeValue::Null);
            KeyOp::Between(values.pop().unwrap_or(AttributeValue::Null), hi)
        }
        (None, _) => KeyOp::BeginsWith(values.remove(0)),
    };
    terms.push(KeyTerm { name, op });
    Ok(())
}

fn flip(op: Comparator) -> Comparator {
    match op {
        Comparator::Lt => Comparator::Gt,
        Comparator::Le => Comparator::Ge,
        Comparator::Gt => Comparator::Lt,
        Comparator::Ge => Comparator::Le,
        o => o,
    }
}
