//! Evaluation of conditions against an item, with DynamoDB's typing: only values of the same
//! type compare, ordering exists for S, N and B only, and a missing attribute makes every
//! test false except `<>` (a missing value is "not equal") and `attribute_not_exists`.
//! Reference: <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.OperatorsAndFunctions.html>

use crate::ast::{Comparator, Condition, Function, Operand, Path, PathElement};
use crate::number::Number;
use crate::value::{AttributeValue, Item, compare_scalars};
use std::borrow::Cow;
use std::cmp::Ordering;

/// The value at `path`, if every step exists and has the right container type.
pub(crate) fn get<'a>(item: &'a Item, path: &Path) -> Option<&'a AttributeValue> {
    let mut elems = path.elements.iter();
    let mut cur = match elems.next()? {
        PathElement::Attr(a) => item.get(a)?,
        PathElement::Index(_) => return None,
    };
    for e in elems {
        cur = match (e, cur) {
            (PathElement::Attr(a), AttributeValue::M(m)) => m.get(a)?,
            (PathElement::Index(i), AttributeValue::L(l)) => l.get(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// `size()`: characters of a string (UTF-16 code units, as DynamoDB's Java strings count
/// them), bytes of a binary, elements of a set, list or map; none for other types.
pub(crate) fn size_of(v: &AttributeValue) -> Option<usize> {
    Some(match v {
        AttributeValue::S(s) => s.encode_utf16().count(),
        AttributeValue::B(b) => b.len(),
        AttributeValue::Ss(s) => s.len(),
        AttributeValue::Ns(s) => s.len(),
        AttributeValue::Bs(s) => s.len(),
        AttributeValue::L(l) => l.len(),
        AttributeValue::M(m) => m.len(),
        AttributeValue::N(_) | AttributeValue::Bool(_) | AttributeValue::Null => return None,
    })
}

fn resolve<'a>(op: &'a Operand, item: &'a Item) -> Option<Cow<'a, AttributeValue>> {
    match op {
        Operand::Path(p) => get(item, p).map(Cow::Borrowed),
        Operand::Value(v) => Some(Cow::Borrowed(v)),
        Operand::Size(p) => {
            let n = size_of(get(item, p)?)?;
            Some(Cow::Owned(AttributeValue::N(Number::from_i64(n as i64))))
        }
    }
}

fn ordered(a: &AttributeValue, b: &AttributeValue, ok: impl Fn(Ordering) -> bool) -> bool {
    compare_scalars(a, b).is_some_and(ok)
}

fn contains(hay: &AttributeValue, needle: &AttributeValue) -> bool {
    use AttributeValue as V;
    match (hay, needle) {
        (V::S(s), V::S(n)) => s.contains(n.as_str()),
        (V::B(b), V::B(n)) => n.is_empty() || b.windows(n.len()).any(|w| w == n.as_slice()),
        (V::Ss(s), V::S(n)) => s.contains(n),
        (V::Ns(s), V::N(n)) => s.contains(n),
        (V::Bs(s), V::B(n)) => s.contains(n),
        (V::L(l), n) => l.contains(n),
        _ => false,
    }
}

impl Condition {
    /// Whether the item satisfies the condition.
    pub fn eval(&self, item: &Item) -> bool {
        match self {
            Condition::And(a, b) => a.eval(item) && b.eval(item),
            Condition::Or(a, b) => a.eval(item) || b.eval(item),
            Condition::Not(a) => !a.eval(item),
            Condition::Compare { left, op, right } => {
                let (a, b) = (resolve(left, item), resolve(right, item));
                match op {
                    Comparator::Eq => matches!((&a, &b), (Some(x), Some(y)) if x == y),
                    Comparator::Ne => match (&a, &b) {
                        (Some(x), Some(y)) => x != y,
                        (None, None) => false,
                        _ => true,
                    },
                    _ => {
                        let (Some(x), Some(y)) = (a, b) else {
                            return false;
                        };
                        ordered(&x, &y, |o| match op {
                            Comparator::Lt => o == Ordering::Less,
                            Comparator::Le => o != Ordering::Greater,
                            Comparator::Gt => o == Ordering::Greater,
                            _ => o != Ordering::Less,
                        })
                    }
                }
            }
            Condition::Between { value, low, high } => {
                let (Some(v), Some(lo), Some(hi)) = (
                    resolve(value, item),
                    resolve(low, item),
                    resolve(high, item),
                ) else {
                    return false;
                };
                ordered(&v, &lo, |o| o != Ordering::Less)
                    && ordered(&v, &hi, |o| o != Ordering::Greater)
            }
            Condition::In { value, list } => {
                let Some(v) = resolve(value, item) else {
                    return false;
                };
                list.iter()
                    .any(|x| resolve(x, item).is_some_and(|x| x == v))
            }
            Condition::Function(f) => match f {
                Function::AttributeExists(p) => get(item, p).is_some(),
                Function::AttributeNotExists(p) => get(item, p).is_none(),
                Function::AttributeType(v, t) => match (resolve(v, item), resolve(t, item)) {
                    (Some(v), Some(t)) => matches!(&*t, AttributeValue::S(t) if t == v.type_name()),
                    _ => false,
                },
                Function::BeginsWith(a, p) => match (resolve(a, item), resolve(p, item)) {
                    (Some(a), Some(p)) => match (&*a, &*p) {
                        (AttributeValue::S(s), AttributeValue::S(p)) => s.starts_with(p.as_str()),
                        (AttributeValue::B(s), AttributeValue::B(p)) => s.starts_with(p),
                        _ => false,
                    },
                    _ => false,
                },
                Function::Contains(a, n) => match (resolve(a, item), resolve(n, item)) {
                    (Some(a), Some(n)) => contains(&a, &n),
                    _ => false,
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::item_from_json;
    use serde_json::json;

    fn item() -> Item {
        item_from_json(&json!({
            "s": {"S": "héllo"}, "n": {"N": "10"}, "l": {"L": [{"S": "x"}, {"M": {"k": {"N": "1"}}}]},
            "ss": {"SS": ["a", "b"]}, "b": {"B": "AAECAw=="}, "nul": {"NULL": true}
        }))
        .unwrap()
    }

    fn p(s: &str) -> Operand {
        let mut path = None::<Path>;
        for part in s.split('.') {
            let (name, idx) = match part.split_once('[') {
                Some((n, i)) => (n, Some(i.trim_end_matches(']').parse().unwrap())),
                None => (part, None),
            };
            path = Some(match path {
                None => Path::attr(name),
                Some(p) => p.child(name),
            });
            if let Some(i) = idx {
                path = path.map(|p| p.index(i));
            }
        }
        Operand::Path(path.unwrap())
    }

    fn v(j: serde_json::Value) -> Operand {
        Operand::Value(AttributeValue::from_json(&j).unwrap())
    }

    #[test]
    fn paths_and_sizes() {
        let it = item();
        assert_eq!(
            get(&it, &Path::attr("l").index(1).child("k")),
            Some(&AttributeValue::N(Number::from_i64(1)))
        );
        assert_eq!(get(&it, &Path::attr("l").index(2)), None);
        assert_eq!(get(&it, &Path::attr("s").child("x")), None);
        assert_eq!(size_of(&it["s"]), Some(5));
        assert_eq!(size_of(&it["b"]), Some(4));
        assert_eq!(size_of(&it["n"]), None);
    }

    #[test]
    fn comparisons_need_one_type() {
        let it = item();
        let c = |l, op, r| Condition::compare(l, op, r).eval(&it);
        assert!(c(p("n"), Comparator::Eq, v(json!({"N": "10.0"}))));
        assert!(!c(p("n"), Comparator::Eq, v(json!({"S": "10"}))));
        assert!(c(p("n"), Comparator::Ne, v(json!({"S": "10"}))));
        assert!(c(p("missing"), Comparator::Ne, v(json!({"S": "10"}))));
        assert!(!c(p("missing"), Comparator::Ne, p("other_missing")));
        assert!(!c(p("n"), Comparator::Lt, v(json!({"S": "99"}))));
        assert!(c(p("n"), Comparator::Gt, v(json!({"N": "9"}))));
        assert!(c(
            Operand::Size(Path::attr("ss")),
            Comparator::Eq,
            v(json!({"N": "2"}))
        ));
        assert!(!c(p("nul"), Comparator::Lt, p("nul")));
    }

    #[test]
    fn functions() {
        let it = item();
        let f = |f: Function| Condition::Function(f).eval(&it);
        assert!(f(Function::Contains(p("s"), v(json!({"S": "éll"})))));
        assert!(f(Function::Contains(p("ss"), v(json!({"S": "b"})))));
        assert!(f(Function::Contains(p("l"), v(json!({"S": "x"})))));
        assert!(!f(Function::Contains(p("ss"), v(json!({"S": "z"})))));
        assert!(f(Function::Contains(p("b"), v(json!({"B": "AQI="})))));
        assert!(f(Function::BeginsWith(p("s"), v(json!({"S": "hé"})))));
        assert!(!f(Function::BeginsWith(p("n"), v(json!({"S": "1"})))));
        assert!(f(Function::AttributeType(p("ss"), v(json!({"S": "SS"})))));
        assert!(!f(Function::AttributeType(
            p("missing"),
            v(json!({"S": "NULL"}))
        )));
        assert!(f(Function::AttributeNotExists(Path::attr("l").index(5))));
        let between = Condition::between(p("n"), v(json!({"N": "10"})), v(json!({"N": "11"})));
        assert!(between.eval(&it));
        let within = Condition::is_in(p("s"), vec![v(json!({"N": "1"})), v(json!({"S": "héllo"}))]);
        assert!(within.eval(&it));
        assert!(!Condition::not(within).eval(&it));
    }
}
