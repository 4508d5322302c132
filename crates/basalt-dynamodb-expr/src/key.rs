//! Key conditions checked against a table's key schema, and the range conditions a Query
//! applies to sort keys.

use crate::ast::{Comparator, KeyCondition, KeyOp};
use crate::error::ExprError;
use crate::value::{AttributeValue, compare_scalars};
use std::cmp::Ordering;

/// A key condition resolved against the key schema: the partition key's value and the
/// optional sort key condition.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedKey {
    pub hash: AttributeValue,
    pub range: Option<RangeCondition>,
}

/// A condition on the sort key.
#[derive(Debug, Clone, PartialEq)]
pub enum RangeCondition {
    Eq(AttributeValue),
    Lt(AttributeValue),
    Le(AttributeValue),
    Gt(AttributeValue),
    Ge(AttributeValue),
    Between(AttributeValue, AttributeValue),
    BeginsWith(AttributeValue),
}

impl RangeCondition {
    /// Whether a sort key value satisfies the condition, in DynamoDB's key order (numbers
    /// numerically, strings and binary by bytes). Values of another type never match.
    pub fn matches(&self, v: &AttributeValue) -> bool {
        let cmp = |bound: &AttributeValue| compare_scalars(v, bound);
        match self {
            RangeCondition::Eq(b) => cmp(b) == Some(Ordering::Equal),
            RangeCondition::Lt(b) => cmp(b) == Some(Ordering::Less),
            RangeCondition::Le(b) => matches!(cmp(b), Some(Ordering::Less | Ordering::Equal)),
            RangeCondition::Gt(b) => cmp(b) == Some(Ordering::Greater),
            RangeCondition::Ge(b) => matches!(cmp(b), Some(Ordering::Greater | Ordering::Equal)),
            RangeCondition::Between(lo, hi) => {
                matches!(cmp(lo), Some(Ordering::Greater | Ordering::Equal))
                    && matches!(cmp(hi), Some(Ordering::Less | Ordering::Equal))
            }
            RangeCondition::BeginsWith(p) => match (v, p) {
                (AttributeValue::S(s), AttributeValue::S(p)) => {
                    s.as_bytes().starts_with(p.as_bytes())
                }
                (AttributeValue::B(s), AttributeValue::B(p)) => s.starts_with(p),
                _ => false,
            },
        }
    }

    pub(crate) fn from_op(op: &KeyOp) -> RangeCondition {
        match op.clone() {
            KeyOp::Compare(Comparator::Eq, v) => RangeCondition::Eq(v),
            KeyOp::Compare(Comparator::Lt, v) => RangeCondition::Lt(v),
            KeyOp::Compare(Comparator::Le, v) => RangeCondition::Le(v),
            KeyOp::Compare(Comparator::Gt, v) => RangeCondition::Gt(v),
            KeyOp::Compare(Comparator::Ge, v) => RangeCondition::Ge(v),
            // The parser refuses `<>` in key conditions.
            KeyOp::Compare(Comparator::Ne, v) => RangeCondition::Eq(v),
            KeyOp::Between(a, b) => RangeCondition::Between(a, b),
            KeyOp::BeginsWith(p) => RangeCondition::BeginsWith(p),
        }
    }
}

impl KeyCondition {
    /// Checks the condition against the key schema (the partition key's name and the sort
    /// key's, if the table or index has one), with DynamoDB's errors. Whether each value has
    /// the key attribute's type is for the caller, which knows the attribute definitions.
    pub fn resolve(
        &self,
        hash_key: &str,
        range_key: Option<&str>,
    ) -> Result<ResolvedKey, ExprError> {
        let n = self.terms.len();
        if n != 1 && n != 2 {
            return Err(ExprError::new("Conditions can be of length 1 or 2 only"));
        }
        if range_key.is_none() && n > 1 {
            return Err(ExprError::new("Query key condition not supported"));
        }
        let find = |k: &str| self.terms.iter().find(|t| t.name == k);
        let missed = |k: &str| ExprError(format!("Query condition missed key schema element: {k}"));
        let hash = find(hash_key).ok_or_else(|| missed(hash_key))?;
        let KeyOp::Compare(Comparator::Eq, hash_value) = &hash.op else {
            return Err(ExprError::new("Query key condition not supported"));
        };
        check_not_empty(hash_key, hash_value)?;
        let range = match range_key.and_then(|r| find(r).map(|t| (r, t))) {
            Some((r, t)) => {
                let cond = RangeCondition::from_op(&t.op);
                for v in cond.values() {
                    check_not_empty(r, v)?;
                }
                Some(cond)
            }
            None if n > 1 => return Err(missed(range_key.unwrap_or_default())),
            None => None,
        };
        Ok(ResolvedKey {
            hash: hash_value.clone(),
            range,
        })
    }
}

/// Key values may not be empty strings or binaries.
fn check_not_empty(key: &str, v: &AttributeValue) -> Result<(), ExprError> {
    let empty = matches!(v, AttributeValue::S(s) if s.is_empty())
        || matches!(v, AttributeValue::B(b) if b.is_empty());
    if empty {
        return Err(ExprError(format!(
            "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty {} value. Key: {key}",
            if matches!(v, AttributeValue::S(_)) {
                "string"
            } else {
                "binary"
            }
        )));
    }
    Ok(())
}

impl RangeCondition {
    fn values(&self) -> Vec<&AttributeValue> {
        match self {
            RangeCondition::Eq(v)
            | RangeCondition::Lt(v)
            | RangeCondition::Le(v)
            | RangeCondition::Gt(v)
            | RangeCondition::Ge(v)
            | RangeCondition::BeginsWith(v) => vec![v],
            RangeCondition::Between(a, b) => vec![a, b],
        }
    }
}
