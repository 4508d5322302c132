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
    /// Checks the condition against the key schema, with DynamoDB's errors.
    pub fn resolve(
        &self,
        hash_key: &str,
        range_key: Option<&str>,
    ) -> Result<ResolvedKey, ExprError> {
        let _ = (hash_key, range_key);
        todo!("step 2")
    }
}
