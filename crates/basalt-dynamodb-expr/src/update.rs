//! Applying update expressions with DynamoDB's semantics.
//! Reference: <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.UpdateExpressions.html>
//!
//! Every right-hand side reads the item as it was before the update, and every list index
//! names a position in the original list: an update first changes elements and map keys in
//! place, then removes list elements (highest index first) and finally appends the elements
//! written past a list's end, in index order. Nothing changes when any action fails.

use crate::ast::{Path, PathElement, SetValue, Update, UpdateAction, UpdateOperand};
use crate::error::ExprError;
use crate::eval::get;
use crate::value::{AttributeValue, Item};

const MISSING: &str =
    "The provided expression refers to an attribute that does not exist in the item";
const BAD_TYPE: &str = "An operand in the update expression has an incorrect data type";
const BAD_PATH: &str = "The document path provided in the update expression is invalid for update";

/// Where an action lands: the parent container and the last step.
enum Slot<'a> {
    Map(&'a mut Item, &'a str),
    List(&'a mut Vec<AttributeValue>, usize),
}

/// Walks to the parent of `path`'s last element; DynamoDB's "invalid for update" when a step is
/// missing or has the wrong container type.
fn slot<'a>(item: &'a mut Item, path: &'a Path) -> Result<Slot<'a>, ExprError> {
    let (last, parents) = path
        .elements
        .split_last()
        .ok_or_else(|| ExprError::new(BAD_PATH))?;
    let PathElement::Attr(top) = &path.elements[0] else {
        return Err(ExprError::new(BAD_PATH));
    };
    if parents.is_empty() {
        return Ok(Slot::Map(item, top));
    }
    let mut cur = item.get_mut(top).ok_or_else(|| ExprError::new(BAD_PATH))?;
    for e in &parents[1..] {
        cur = match (e, cur) {
            (PathElement::Attr(a), AttributeValue::M(m)) => m.get_mut(a),
            (PathElement::Index(i), AttributeValue::L(l)) => l.get_mut(*i),
            _ => None,
        }
        .ok_or_else(|| ExprError::new(BAD_PATH))?;
    }
    match (last, cur) {
        (PathElement::Attr(a), AttributeValue::M(m)) => Ok(Slot::Map(m, a)),
        (PathElement::Index(i), AttributeValue::L(l)) => Ok(Slot::List(l, *i)),
        _ => Err(ExprError::new(BAD_PATH)),
    }
}

/// List edits that wait until every in-place change is done, keyed by the list's path.
#[derive(Default)]
struct Deferred {
    removals: Vec<(Path, usize)>,
    appends: Vec<(Path, usize, AttributeValue)>,
}

fn parent(path: &Path) -> Path {
    Path {
        elements: path.elements[..path.elements.len() - 1].to_vec(),
    }
}

fn operand(op: &UpdateOperand, original: &Item) -> Result<AttributeValue, ExprError> {
    match op {
        UpdateOperand::Path(p) => get(original, p)
            .cloned()
            .ok_or_else(|| ExprError::new(MISSING)),
        UpdateOperand::Value(v) => Ok(v.clone()),
        UpdateOperand::IfNotExists(p, d) => match get(original, p) {
            Some(v) => Ok(v.clone()),
            None => operand(d, original),
        },
        UpdateOperand::ListAppend(a, b) => match (operand(a, original)?, operand(b, original)?) {
            (AttributeValue::L(mut a), AttributeValue::L(b)) => {
                a.extend(b);
                Ok(AttributeValue::L(a))
            }
            _ => Err(ExprError::new(BAD_TYPE)),
        },
    }
}

fn set_value(v: &SetValue, original: &Item) -> Result<AttributeValue, ExprError> {
    match v {
        SetValue::Operand(o) => operand(o, original),
        SetValue::Plus(a, b) | SetValue::Minus(a, b) => {
            match (operand(a, original)?, operand(b, original)?) {
                (AttributeValue::N(x), AttributeValue::N(y)) => {
                    let r = if matches!(v, SetValue::Plus(..)) {
                        x.checked_add(&y)
                    } else {
                        x.checked_sub(&y)
                    };
                    r.map(AttributeValue::N).map_err(|e| ExprError(e.0))
                }
                _ => Err(ExprError::new(BAD_TYPE)),
            }
        }
    }
}

/// `ADD`: a number added to a number, a set unioned into a set of its type.
fn add(existing: Option<&AttributeValue>, v: &AttributeValue) -> Result<AttributeValue, ExprError> {
    use AttributeValue as V;
    fn union<T: PartialEq + Clone>(a: &[T], b: &[T]) -> Vec<T> {
        let mut out = a.to_vec();
        out.extend(b.iter().filter(|x| !a.contains(x)).cloned());
        out
    }
    Ok(match (existing, v) {
        (None, V::N(_) | V::Ss(_) | V::Ns(_) | V::Bs(_)) => v.clone(),
        (Some(V::N(a)), V::N(b)) => V::N(a.checked_add(b).map_err(|e| ExprError(e.0))?),
        (Some(V::Ss(a)), V::Ss(b)) => V::Ss(union(a, b)),
        (Some(V::Ns(a)), V::Ns(b)) => V::Ns(union(a, b)),
        (Some(V::Bs(a)), V::Bs(b)) => V::Bs(union(a, b)),
        _ => return Err(ExprError::new(BAD_TYPE)),
    })
}

/// `DELETE`: the set less the given elements; `None` when nothing is left.
fn delete(
    existing: &AttributeValue,
    v: &AttributeValue,
) -> Result<Option<AttributeValue>, ExprError> {
    use AttributeValue as V;
    fn minus<T: PartialEq + Clone>(a: &[T], b: &[T]) -> Vec<T> {
        a.iter().filter(|x| !b.contains(x)).cloned().collect()
    }
    let out = match (existing, v) {
        (V::Ss(a), V::Ss(b)) => V::Ss(minus(a, b)),
        (V::Ns(a), V::Ns(b)) => V::Ns(minus(a, b)),
        (V::Bs(a), V::Bs(b)) => V::Bs(minus(a, b)),
        _ => return Err(ExprError::new(BAD_TYPE)),
    };
    let empty = matches!(&out, V::Ss(s) if s.is_empty())
        || matches!(&out, V::Ns(s) if s.is_empty())
        || matches!(&out, V::Bs(s) if s.is_empty());
    Ok((!empty).then_some(out))
}

/// What an action does at its slot.
enum Edit {
    Put(AttributeValue),
    Remove,
    Add(AttributeValue),
    Delete(AttributeValue),
}

fn edit(work: &mut Item, path: &Path, e: Edit, deferred: &mut Deferred) -> Result<(), ExprError> {
    match slot(work, path)? {
        Slot::Map(m, k) => match e {
            Edit::Put(v) => {
                m.insert(k.to_string(), v);
            }
            Edit::Remove => {
                m.remove(k);
            }
            Edit::Add(v) => {
                let new = add(m.get(k), &v)?;
                m.insert(k.to_string(), new);
            }
            Edit::Delete(v) => {
                if let Some(cur) = m.get(k) {
                    match delete(cur, &v)? {
                        Some(new) => m.insert(k.to_string(), new),
                        None => m.remove(k),
                    };
                }
            }
        },
        Slot::List(l, i) => match e {
            Edit::Put(v) if i < l.len() => l[i] = v,
            Edit::Put(v) => deferred.appends.push((parent(path), i, v)),
            Edit::Remove if i < l.len() => deferred.removals.push((parent(path), i)),
            Edit::Remove => {}
            Edit::Add(v) if i < l.len() => l[i] = add(Some(&l[i]), &v)?,
            Edit::Add(v) => deferred.appends.push((parent(path), i, add(None, &v)?)),
            Edit::Delete(v) if i < l.len() => match delete(&l[i], &v)? {
                Some(new) => l[i] = new,
                None => deferred.removals.push((parent(path), i)),
            },
            Edit::Delete(_) => {}
        },
    }
    Ok(())
}

fn list_at<'a>(work: &'a mut Item, path: &Path) -> Option<&'a mut Vec<AttributeValue>> {
    let mut elems = path.elements.iter();
    let PathElement::Attr(top) = elems.next()? else {
        return None;
    };
    let mut cur = work.get_mut(top)?;
    for e in elems {
        cur = match (e, cur) {
            (PathElement::Attr(a), AttributeValue::M(m)) => m.get_mut(a)?,
            (PathElement::Index(i), AttributeValue::L(l)) => l.get_mut(*i)?,
            _ => return None,
        };
    }
    match cur {
        AttributeValue::L(l) => Some(l),
        _ => None,
    }
}

impl Update {
    /// Applies the actions to `item`; on error the item is left as it was. Returns the paths
    /// the update wrote, as written: project the old and new items through them
    /// ([`crate::Projection::from_paths`]) for `UPDATED_OLD` / `UPDATED_NEW`.
    pub fn apply(&self, item: &mut Item) -> Result<Vec<Path>, ExprError> {
        let original: &Item = item;
        // Right-hand sides first, all against the original item.
        let mut edits = Vec::with_capacity(self.actions.len());
        for a in &self.actions {
            edits.push(match a {
                UpdateAction::Set { path, value } => (path, Edit::Put(set_value(value, original)?)),
                UpdateAction::Remove(path) => (path, Edit::Remove),
                UpdateAction::Add { path, value } => (path, Edit::Add(value.clone())),
                UpdateAction::Delete { path, value } => (path, Edit::Delete(value.clone())),
            });
        }
        let mut work = item.clone();
        let mut deferred = Deferred::default();
        for (path, e) in edits {
            edit(&mut work, path, e, &mut deferred)?;
        }
        // Deeper lists first, so that removals in an outer list do not move them.
        let mut lists: Vec<Path> = deferred
            .removals
            .iter()
            .map(|(p, _)| p.clone())
            .chain(deferred.appends.iter().map(|(p, _, _)| p.clone()))
            .collect();
        lists.sort_by(|a, b| {
            b.elements
                .len()
                .cmp(&a.elements.len())
                .then_with(|| a.cmp(b))
        });
        lists.dedup();
        for lp in lists {
            let Some(list) = list_at(&mut work, &lp) else {
                continue;
            };
            let mut gone: Vec<usize> = deferred
                .removals
                .iter()
                .filter(|(p, _)| *p == lp)
                .map(|(_, i)| *i)
                .collect();
            gone.sort_unstable();
            gone.dedup();
            for i in gone.into_iter().rev() {
                list.remove(i);
            }
            let mut adds: Vec<(usize, AttributeValue)> = deferred
                .appends
                .iter()
                .filter(|(p, _, _)| *p == lp)
                .map(|(_, i, v)| (*i, v.clone()))
                .collect();
            adds.sort_by_key(|(i, _)| *i);
            list.extend(adds.into_iter().map(|(_, v)| v));
        }
        *item = work;
        Ok(self.actions.iter().map(|a| a.path().clone()).collect())
    }

    /// The top-level attributes this update writes or removes, in first-mention order.
    pub fn top_level_names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for a in &self.actions {
            let top = a.path().top();
            if !out.iter().any(|n| n == top) {
                out.push(top.to_string());
            }
        }
        out
    }
}

impl UpdateAction {
    /// The path the action writes.
    pub fn path(&self) -> &Path {
        match self {
            UpdateAction::Set { path, .. }
            | UpdateAction::Remove(path)
            | UpdateAction::Add { path, .. }
            | UpdateAction::Delete { path, .. } => path,
        }
    }
}
