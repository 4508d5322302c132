//! Which items a WHERE clause names: the full primary key for UPDATE, DELETE and the reads of
//! ExecuteTransaction and BatchExecuteStatement, and the partitions (with a sort key range) a
//! SELECT can Query instead of Scan (ql-reference.select: "equality or IN condition with a
//! partition key").
//!
//! Only conjuncts are read: a key condition under OR (other than whole OR branches of a
//! SELECT), NOT, or inside a function does not name a key, as in DynamoDB.

use crate::error::{INCOMPLETE_KEY, PartiqlError};
use basalt_dynamodb_expr::ast::{Comparator, Condition, Function, Operand};
use basalt_dynamodb_expr::{AttributeValue, Item, Path, RangeCondition, ResolvedKey};

/// Beyond this many OR branches (after distributing AND over OR) a SELECT scans.
const MAX_BRANCHES: usize = 100;

/// The top-level conjuncts of a condition.
pub(crate) fn conjuncts(c: &Condition) -> Vec<&Condition> {
    match c {
        Condition::And(a, b) => {
            let mut out = conjuncts(a);
            out.extend(conjuncts(b));
            out
        }
        other => vec![other],
    }
}

/// `name = value` (either way round) on a top-level attribute.
fn equality(c: &Condition) -> Option<(&str, &AttributeValue)> {
    let Condition::Compare {
        left,
        op: Comparator::Eq,
        right,
    } = c
    else {
        return None;
    };
    match (left, right) {
        (Operand::Path(p), Operand::Value(v)) | (Operand::Value(v), Operand::Path(p)) => {
            top_level(p).map(|n| (n, v))
        }
        _ => None,
    }
}

fn top_level(p: &Path) -> Option<&str> {
    (p.elements.len() == 1).then(|| p.top())
}

/// The primary key from `key = value` conjuncts, for a statement that names one item.
/// A key given two different values is DynamoDB's "Multiple conditions on same key" error;
/// a key not given is "Where clause does not contain a mandatory equality on all key
/// attributes".
pub(crate) fn full_key(
    condition: Option<&Condition>,
    hash: &str,
    range: Option<&str>,
) -> Result<Item, PartiqlError> {
    let mut key = Item::new();
    if let Some(c) = condition {
        for term in conjuncts(c) {
            let Some((name, v)) = equality(term) else {
                continue;
            };
            if name != hash && Some(name) != range {
                continue;
            }
            if let Some(previous) = key.get(name) {
                if previous != v {
                    return Err(PartiqlError(format!(
                        "Multiple conditions on same key {name}. Only single item Update/Insert/Delete are supported"
                    )));
                }
                continue;
            }
            key.insert(name.to_string(), v.clone());
        }
    }
    let complete = key.contains_key(hash) && range.is_none_or(|r| key.contains_key(r));
    if complete {
        Ok(key)
    } else {
        Err(PartiqlError::msg(INCOMPLETE_KEY))
    }
}

/// Whether every conjunct is a key equality (a plain GetItem, as the reads of
/// ExecuteTransaction and BatchExecuteStatement must be).
pub(crate) fn only_key_equalities(condition: &Condition, hash: &str, range: Option<&str>) -> bool {
    conjuncts(condition)
        .iter()
        .all(|t| equality(t).is_some_and(|(n, _)| n == hash || Some(n) == range))
}

/// The partitions a SELECT reads, each with an optional sort key condition, or `None` when
/// some OR branch has no equality (or IN) on the partition key and the table must be
/// scanned. The keys narrow the read only: the service still filters every item read with
/// the whole WHERE clause.
pub(crate) fn query_keys(
    condition: Option<&Condition>,
    hash: &str,
    range: Option<&str>,
) -> Option<Vec<ResolvedKey>> {
    let branches = branches(condition?)?;
    let mut out: Vec<ResolvedKey> = Vec::new();
    for branch in branches {
        let hashes = branch_hashes(&branch, hash)?;
        let ranges = range.map(|r| branch_ranges(&branch, r)).unwrap_or_default();
        for h in hashes {
            if ranges.is_empty() {
                out.push(ResolvedKey {
                    hash: h.clone(),
                    range: None,
                });
            }
            for r in &ranges {
                out.push(ResolvedKey {
                    hash: h.clone(),
                    range: Some(r.clone()),
                });
            }
        }
    }
    Some(merge(out))
}

/// The condition as OR branches of conjuncts (AND distributed over OR), or `None` if there
/// would be too many.
fn branches(c: &Condition) -> Option<Vec<Vec<&Condition>>> {
    match c {
        Condition::Or(a, b) => {
            let mut out = branches(a)?;
            out.extend(branches(b)?);
            (out.len() <= MAX_BRANCHES).then_some(out)
        }
        Condition::And(a, b) => {
            let (left, right) = (branches(a)?, branches(b)?);
            if left.len() * right.len() > MAX_BRANCHES {
                return None;
            }
            let mut out = Vec::new();
            for l in &left {
                for r in &right {
                    let mut both = l.clone();
                    both.extend(r.iter().copied());
                    out.push(both);
                }
            }
            Some(out)
        }
        other => Some(vec![vec![other]]),
    }
}

/// The partition key values one branch allows: from `hash = v` or `hash IN (...)`; several
/// such conjuncts intersect. `None` when the branch does not pin the partition key.
fn branch_hashes<'a>(branch: &[&'a Condition], hash: &str) -> Option<Vec<&'a AttributeValue>> {
    let mut allowed: Option<Vec<&AttributeValue>> = None;
    for term in branch {
        let values: Vec<&AttributeValue> = if let Some((n, v)) = equality(term) {
            if n != hash {
                continue;
            }
            vec![v]
        } else if let Condition::In {
            value: Operand::Path(p),
            list,
        } = term
        {
            if top_level(p) != Some(hash) {
                continue;
            }
            let Some(vs) = list
                .iter()
                .map(|o| match o {
                    Operand::Value(v) => Some(v),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
            else {
                continue;
            };
            vs
        } else {
            continue;
        };
        allowed = Some(match allowed {
            None => values,
            Some(prev) => prev.into_iter().filter(|v| values.contains(v)).collect(),
        });
    }
    allowed.map(|mut vs| {
        let mut distinct: Vec<&AttributeValue> = Vec::new();
        vs.retain(|v| {
            let fresh = !distinct.contains(v);
            distinct.push(v);
            fresh
        });
        vs
    })
}

/// The sort key conditions one branch puts on `range`: the first comparison, BETWEEN or
/// begins_with found, or one equality per member of `range IN (...)`. Empty for none.
fn branch_ranges(branch: &[&Condition], range: &str) -> Vec<RangeCondition> {
    for term in branch {
        match term {
            Condition::Compare { left, op, right } => {
                let (p, v, op) = match (left, right) {
                    (Operand::Path(p), Operand::Value(v)) => (p, v, *op),
                    (Operand::Value(v), Operand::Path(p)) => (p, v, flip(*op)),
                    _ => continue,
                };
                if top_level(p) != Some(range) {
                    continue;
                }
                let v = v.clone();
                let rc = match op {
                    Comparator::Eq => RangeCondition::Eq(v),
                    Comparator::Lt => RangeCondition::Lt(v),
                    Comparator::Le => RangeCondition::Le(v),
                    Comparator::Gt => RangeCondition::Gt(v),
                    Comparator::Ge => RangeCondition::Ge(v),
                    Comparator::Ne => continue,
                };
                return vec![rc];
            }
            Condition::Between {
                value: Operand::Path(p),
                low: Operand::Value(lo),
                high: Operand::Value(hi),
            } if top_level(p) == Some(range) => {
                return vec![RangeCondition::Between(lo.clone(), hi.clone())];
            }
            Condition::Function(Function::BeginsWith(Operand::Path(p), Operand::Value(v)))
                if top_level(p) == Some(range) =>
            {
                return vec![RangeCondition::BeginsWith(v.clone())];
            }
            Condition::In {
                value: Operand::Path(p),
                list,
            } if top_level(p) == Some(range) => {
                let eqs: Option<Vec<RangeCondition>> = list
                    .iter()
                    .map(|o| match o {
                        Operand::Value(v) => Some(RangeCondition::Eq(v.clone())),
                        _ => None,
                    })
                    .collect();
                if let Some(eqs) = eqs {
                    return eqs;
                }
            }
            _ => {}
        }
    }
    Vec::new()
}

/// `5 < sk` is `sk > 5`.
fn flip(op: Comparator) -> Comparator {
    match op {
        Comparator::Lt => Comparator::Gt,
        Comparator::Le => Comparator::Ge,
        Comparator::Gt => Comparator::Lt,
        Comparator::Ge => Comparator::Le,
        other => other,
    }
}

/// One read per partition unless the partition's sort key conditions are distinct
/// equalities: reads that could overlap are merged into one read of the whole partition, so
/// that no item comes back twice.
fn merge(keys: Vec<ResolvedKey>) -> Vec<ResolvedKey> {
    let mut out: Vec<ResolvedKey> = Vec::new();
    for k in keys {
        let same: Vec<usize> = (0..out.len()).filter(|&i| out[i].hash == k.hash).collect();
        if same.is_empty() {
            out.push(k);
            continue;
        }
        if same.iter().any(|&i| out[i] == k) {
            continue;
        }
        let all_eq = same
            .iter()
            .all(|&i| matches!(out[i].range, Some(RangeCondition::Eq(_))))
            && matches!(k.range, Some(RangeCondition::Eq(_)));
        if all_eq {
            out.push(k);
            continue;
        }
        let first = same[0];
        out[first].range = None;
        for &i in same[1..].iter().rev() {
            out.remove(i);
        }
    }
    out
}
