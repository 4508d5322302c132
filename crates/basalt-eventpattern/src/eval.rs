//! Matching a compiled pattern against an event. Event arrays are transparent (a field matches
//! when any element does), objects and arrays are never leaves, and the fields of one pattern
//! object are matched inside one element of an event array.

use serde_json::{Map, Value};

use crate::ast::{AnythingBut, Child, Leaf, Leaves, ObjNode};
use crate::scalar::{ends_with_ignore_case, eq_ignore_case, starts_with_ignore_case};

#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) root: &'a Value,
    /// SNS attribute scope: `exists` asks whether the attribute is there at all, whatever its
    /// value (an empty `String.Array` included), instead of whether the field has a leaf value.
    pub(crate) key_presence: bool,
}

pub(crate) fn matches(node: &ObjNode, ctx: Ctx<'_>) -> bool {
    matches_value(node, Some(ctx.root), ctx)
}

fn matches_value(node: &ObjNode, ev: Option<&Value>, ctx: Ctx<'_>) -> bool {
    match ev {
        Some(Value::Array(items)) if !items.is_empty() => {
            items.iter().any(|e| matches_value(node, Some(e), ctx))
        }
        Some(Value::Object(m)) => matches_here(node, Some(m), ctx),
        // Absent, a scalar, or an empty array: nothing below it exists, which only `exists:
        // false` fields can satisfy.
        _ => matches_here(node, None, ctx),
    }
}

fn matches_here(node: &ObjNode, m: Option<&Map<String, Value>>, ctx: Ctx<'_>) -> bool {
    node.fields.iter().all(|f| {
        let v = m.and_then(|m| m.get(&f.key));
        match &f.child {
            Child::Obj(o) => matches_value(o, v, ctx),
            Child::Leaves(l) => leaves_match(l, v, &f.path, ctx),
        }
    }) && node
        .ors
        .iter()
        .all(|alts| alts.iter().any(|a| matches_here(a, m, ctx)))
}

fn leaves_match(l: &Leaves, v: Option<&Value>, path: &[String], ctx: Ctx<'_>) -> bool {
    if !l.matchers.is_empty()
        && let Some(v) = v
        && any_leaf(v, &mut |leaf| {
            l.matchers.iter().any(|m| leaf_matches(m, leaf))
        })
    {
        return true;
    }
    if ctx.key_presence {
        return (l.exists_true && v.is_some()) || (l.exists_false && v.is_none());
    }
    if l.exists_true && v.is_some_and(|v| any_leaf(v, &mut |_| true)) {
        return true;
    }
    // Absence is a property of the whole event, not of one array element: a field that some
    // other element carries is present.
    l.exists_false && !path_has_leaf(ctx.root, path)
}

/// Calls `f` on each scalar under `v` (through nested arrays, never into objects) until it
/// returns true.
pub(crate) fn any_leaf(v: &Value, f: &mut dyn FnMut(&Value) -> bool) -> bool {
    match v {
        Value::Array(items) => items.iter().any(|i| any_leaf(i, f)),
        Value::Object(_) => false,
        scalar => f(scalar),
    }
}

fn path_has_leaf(v: &Value, path: &[String]) -> bool {
    match (v, path.split_first()) {
        (Value::Array(items), _) => items.iter().any(|i| path_has_leaf(i, path)),
        (Value::Object(m), Some((head, rest))) => {
            m.get(head).is_some_and(|c| path_has_leaf(c, rest))
        }
        (Value::Object(_), None) => false,
        (_, None) => true,
        (_, Some(_)) => false,
    }
}

fn as_number(v: &Value, strings: bool) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if strings => s.trim().parse::<f64>().ok().filter(|x| x.is_finite()),
        _ => None,
    }
}

pub(crate) fn leaf_matches(m: &Leaf, v: &Value) -> bool {
    let s = v.as_str();
    match m {
        Leaf::Exact(x) => x.eq_value(v),
        Leaf::Prefix(p) => s.is_some_and(|s| s.starts_with(p.as_str())),
        Leaf::PrefixIc(p) => s.is_some_and(|s| starts_with_ignore_case(s, p)),
        Leaf::Suffix(p) => s.is_some_and(|s| s.ends_with(p.as_str())),
        Leaf::SuffixIc(p) => s.is_some_and(|s| ends_with_ignore_case(s, p)),
        Leaf::EqualsIc(p) => s.is_some_and(|s| eq_ignore_case(s, p)),
        Leaf::Wildcard(w) => s.is_some_and(|s| w.matches(s)),
        Leaf::Numeric(r) => as_number(v, r.strings).is_some_and(|x| r.contains(x)),
        Leaf::Cidr(c) => s.is_some_and(|s| c.contains(s)),
        // The string forms exclude only strings: a number, boolean or null is "anything but"
        // a string prefix, as in EventBridge, where it never compares equal to a quoted string.
        Leaf::AnythingBut(a) => match a {
            AnythingBut::Values(vals) => !vals.iter().any(|x| x.eq_value(v)),
            AnythingBut::Prefix(ps) => {
                !s.is_some_and(|s| ps.iter().any(|p| s.starts_with(p.as_str())))
            }
            AnythingBut::Suffix(ps) => {
                !s.is_some_and(|s| ps.iter().any(|p| s.ends_with(p.as_str())))
            }
            AnythingBut::EqualsIc(ps) => {
                !s.is_some_and(|s| ps.iter().any(|p| eq_ignore_case(s, p)))
            }
            AnythingBut::Wildcard(ws) => !s.is_some_and(|s| ws.iter().any(|w| w.matches(s))),
        },
    }
}
