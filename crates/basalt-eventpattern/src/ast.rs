//! The compiled form of a pattern. It keeps the pattern's tree shape (rather than flattening to
//! dotted paths) because EventBridge matches the fields of one object inside an event array
//! against one array element: `{"a": {"b": [1], "c": [2]}}` does not match
//! `{"a": [{"b": 1}, {"c": 2}]}`. Walking the tree alongside the event gives that for free.

use crate::cidr::Cidr;
use crate::scalar::Scalar;
use crate::wildcard::Wildcard;

/// One object level of a pattern: every field must match, and in each `$or` group one of the
/// alternatives must match (at this same level of the event).
#[derive(Debug, Clone, Default)]
pub(crate) struct ObjNode {
    pub(crate) fields: Vec<Field>,
    pub(crate) ors: Vec<Vec<ObjNode>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub(crate) key: String,
    /// The path from the event root, needed only by `exists: false`, which asks whether the
    /// field is absent from the whole event rather than from one array element.
    pub(crate) path: Vec<String>,
    pub(crate) child: Child,
}

#[derive(Debug, Clone)]
pub(crate) enum Child {
    Obj(ObjNode),
    Leaves(Leaves),
}

/// The array of a leaf field: the field matches when any entry matches.
#[derive(Debug, Clone, Default)]
pub(crate) struct Leaves {
    pub(crate) matchers: Vec<Leaf>,
    pub(crate) exists_true: bool,
    pub(crate) exists_false: bool,
}

impl Leaves {
    /// The exact values, when the field holds nothing else: the `Matcher` can then index the
    /// rule by them, since the rule cannot match without one of them being in the event.
    pub(crate) fn exact_only(&self) -> Option<Vec<&Scalar>> {
        if self.exists_true || self.exists_false || self.matchers.is_empty() {
            return None;
        }
        self.matchers
            .iter()
            .map(|m| match m {
                Leaf::Exact(s) => Some(s),
                _ => None,
            })
            .collect()
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Leaf {
    Exact(Scalar),
    Prefix(String),
    /// Lower-cased at parse time.
    PrefixIc(String),
    Suffix(String),
    SuffixIc(String),
    EqualsIc(String),
    Wildcard(Wildcard),
    Numeric(Range),
    Cidr(Cidr),
    AnythingBut(AnythingBut),
}

/// `anything-but`: matches a present value that none of the listed conditions match.
#[derive(Debug, Clone)]
pub(crate) enum AnythingBut {
    Values(Vec<Scalar>),
    Prefix(Vec<String>),
    Suffix(Vec<String>),
    /// Lower-cased at parse time.
    EqualsIc(Vec<String>),
    Wildcard(Vec<Wildcard>),
}

/// A numeric interval; each end is `(value, inclusive)`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Range {
    pub(crate) lo: Option<(f64, bool)>,
    pub(crate) hi: Option<(f64, bool)>,
    /// SNS also compares strings that read as numbers; EventBridge only JSON numbers.
    pub(crate) strings: bool,
}

impl Range {
    pub(crate) fn contains(&self, x: f64) -> bool {
        let lo_ok = match self.lo {
            None => true,
            Some((b, true)) => x >= b,
            Some((b, false)) => x > b,
        };
        let hi_ok = match self.hi {
            None => true,
            Some((t, true)) => x <= t,
            Some((t, false)) => x < t,
        };
        lo_ok && hi_ok
    }
}
