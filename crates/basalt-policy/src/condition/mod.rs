//! The `Condition` element: `{Operator: {Key: value-or-array}}`.
//!
//! Every operator of a block must hold, and every key under an operator (AND); a key holds
//! when any of its policy values matches (OR). Keys are case-insensitive and stored
//! lowercased; the request context is keyed the same way.
//!
//! A key absent from the request follows "IAM JSON policy elements: Condition operators":
//! "If the key that you specify in a policy condition is not present in the request context,
//! the values do not match and the condition is false. If the policy condition requires that
//! the key is not matched, such as StringNotLike or ArnNotLike, and the right key is not
//! present, the condition is true. This logic applies to all condition operators except
//! ...IfExists and Null check." Set operators have their own rule ("Set operators for
//! multivalued context keys"): `ForAllValues` holds for a missing key, `ForAnyValue` does not.

mod values;

use std::collections::HashMap;

use serde_json::Value;

use crate::error::PolicyError;
use crate::pattern::{Case, Pattern};
use values::Cidr;

/// The comparison an operator makes between one request value and one policy value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn test<T: PartialOrd>(self, req: T, pol: T) -> bool {
        match self {
            Cmp::Eq => req == pol,
            Cmp::Lt => req < pol,
            Cmp::Le => req <= pol,
            Cmp::Gt => req > pol,
            Cmp::Ge => req >= pol,
        }
    }
}

/// Policy values compiled for their operator.
#[derive(Debug, Clone)]
enum Values {
    /// `StringEquals`, `BinaryEquals` (base64 text compared as written).
    Exact(Vec<Box<str>>),
    /// `StringEqualsIgnoreCase`, lowercased per character.
    Folded(Vec<Box<str>>),
    /// `StringLike`.
    Like(Vec<Pattern>),
    /// `Numeric*`; an unparsable policy value matches nothing.
    Num(Cmp, Vec<Option<f64>>),
    /// `Date*`, in epoch nanoseconds; an unparsable policy value matches nothing.
    Date(Cmp, Vec<Option<i128>>),
    Bool(Vec<Option<bool>>),
    Ip(Vec<Cidr>),
    Arn(Vec<ArnPattern>),
    /// `Null`: `true` asks for the key to be absent, `false` for it to be present.
    Null(Vec<Option<bool>>),
}

/// How the request's values of a key are quantified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Set {
    /// No prefix: the key is treated as single-valued (any of its values may match).
    Single,
    ForAnyValue,
    ForAllValues,
}

/// One `Operator: {Key: values}` pair.
#[derive(Debug, Clone)]
pub(crate) struct Clause {
    key: Box<str>,
    set: Set,
    if_exists: bool,
    /// The `...Not...` operators: the positive test, inverted per request value.
    negated: bool,
    values: Values,
}

/// A statement's whole `Condition` block.
#[derive(Debug, Clone, Default)]
pub(crate) struct Block(Vec<Clause>);

impl Block {
    pub(crate) fn parse(v: &Value) -> Result<Block, PolicyError> {
        let Value::Object(ops) = v else {
            return Err(PolicyError::InvalidJson);
        };
        let mut clauses = Vec::new();
        for (op, keys) in ops {
            let Value::Object(keys) = keys else {
                return Err(PolicyError::InvalidJson);
            };
            let (set, if_exists, negated, kind) = operator(op)?;
            for (key, vals) in keys {
                if !valid_key(key) {
                    return Err(PolicyError::InvalidConditionKey);
                }
                let raw = scalars(vals).ok_or(PolicyError::InvalidJson)?;
                clauses.push(Clause {
                    key: key.to_lowercase().into(),
                    set,
                    if_exists,
                    negated,
                    values: compile(kind, &raw)?,
                });
            }
        }
        Ok(Block(clauses))
    }

    pub(crate) fn holds(&self, ctx: &HashMap<String, Vec<String>>) -> bool {
        self.0.iter().all(|c| c.holds(ctx))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether some clause pins the request to fixed values of a key that S3's "The meaning
    /// of public" accepts as limiting a grant to known parties. One such clause is enough,
    /// since every clause of a block must hold.
    pub(crate) fn narrows_to_fixed_values(&self) -> bool {
        self.0.iter().any(Clause::narrows)
    }
}

/// Keys that, pinned to fixed values, make a grant to `*` non-public ("The meaning of
/// public", S3 user guide; `aws:SourceIp` is handled apart, by block width).
const FIXED_KEYS: &[&str] = &[
    "aws:sourcearn",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:sourceowner",
    "aws:sourceaccount",
    "aws:sourceorgid",
    "aws:principalorgid",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:userid",
    "s3:x-amz-server-side-encryption-aws-kms-key-id",
    "s3:dataaccesspointarn",
    "s3:dataaccesspointaccount",
];

impl Clause {
    fn holds(&self, ctx: &HashMap<String, Vec<String>>) -> bool {
        let present = ctx.get(&*self.key).filter(|v| !v.is_empty());
        if let Values::Null(want) = &self.values {
            return want.iter().any(|w| *w == Some(present.is_none()));
        }
        let Some(req) = present else {
            return self.if_exists
                || match self.set {
                    Set::Single => self.negated,
                    Set::ForAllValues => true,
                    Set::ForAnyValue => false,
                };
        };
        let pos = |v: &String| self.values.any_matches(v);
        match (self.set, self.negated) {
            (Set::Single, false) | (Set::ForAnyValue, false) => req.iter().any(pos),
            (Set::Single, true) | (Set::ForAllValues, true) => !req.iter().any(pos),
            (Set::ForAnyValue, true) => !req.iter().all(pos),
            (Set::ForAllValues, false) => req.iter().all(pos),
        }
    }

    fn narrows(&self) -> bool {
        // A negation, an IfExists or a ForAllValues clause all hold for requests that carry
        // no such key or some other value, so none of them narrows anything.
        if self.negated || self.if_exists || self.set == Set::ForAllValues {
            return false;
        }
        let fixed = |s: &str| !s.contains(['*', '?']);
        if &*self.key == "aws:sourceip" {
            // An IPv4 block wider than /8 (or IPv6 wider than /32) covers so much of the
            // internet that it is treated as granting to anyone.
            return match &self.values {
                Values::Ip(blocks) => {
                    !blocks.is_empty()
                        && blocks
                            .iter()
                            .all(|c| c.prefix >= if c.is_v6() { 32 } else { 8 })
                }
                _ => false,
            };
        }
        if !FIXED_KEYS.contains(&&*self.key) {
            return false;
        }
        match &self.values {
            Values::Exact(v) | Values::Folded(v) => !v.is_empty() && v.iter().all(|s| fixed(s)),
            Values::Like(p) => !p.is_empty() && p.iter().all(|p| !p.has_wildcard()),
            Values::Arn(p) => !p.is_empty() && p.iter().all(|p| !p.has_wildcard()),
            _ => false,
        }
    }
}

impl Values {
    fn any_matches(&self, req: &str) -> bool {
        match self {
            Values::Exact(v) => v.iter().any(|p| **p == *req),
            Values::Folded(v) => v
                .iter()
                .any(|p| req.chars().flat_map(char::to_lowercase).eq(p.chars())),
            Values::Like(v) => v.iter().any(|p| p.matches(req, Case::Sensitive)),
            Values::Num(cmp, v) => {
                values::number(req).is_some_and(|r| v.iter().flatten().any(|&p| cmp.test(r, p)))
            }
            Values::Date(cmp, v) => {
                values::date(req).is_some_and(|r| v.iter().flatten().any(|&p| cmp.test(r, p)))
            }
            Values::Bool(v) => bool_value(req).is_some_and(|r| v.contains(&Some(r))),
            Values::Ip(v) => v.iter().any(|c| c.contains(req)),
            Values::Arn(v) => v.iter().any(|p| p.matches(req)),
            Values::Null(_) => false,
        }
    }
}

/// An `Arn*` operand: each of the six colon-separated parts is matched on its own, so a `*`
/// in the region cannot swallow the account. A value without any colon (`*`) is matched
/// whole; one with too few parts to be an ARN matches nothing.
#[derive(Debug, Clone)]
enum ArnPattern {
    Parts(Box<[Pattern; 6]>),
    Whole(Pattern),
    Never,
}

impl ArnPattern {
    fn new(s: &str) -> ArnPattern {
        if !s.contains(':') {
            return ArnPattern::Whole(Pattern::new(s, Case::Sensitive));
        }
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        match <[&str; 6]>::try_from(parts) {
            Ok(p) => ArnPattern::Parts(Box::new(p.map(|p| Pattern::new(p, Case::Sensitive)))),
            Err(_) => ArnPattern::Never,
        }
    }

    fn matches(&self, req: &str) -> bool {
        match self {
            ArnPattern::Never => false,
            ArnPattern::Whole(p) => p.matches(req, Case::Sensitive),
            ArnPattern::Parts(pats) => {
                let mut got = req.splitn(6, ':');
                pats.iter()
                    .all(|p| got.next().is_some_and(|g| p.matches(g, Case::Sensitive)))
            }
        }
    }

    fn has_wildcard(&self) -> bool {
        match self {
            ArnPattern::Never => false,
            ArnPattern::Whole(p) => p.has_wildcard(),
            ArnPattern::Parts(p) => p.iter().any(Pattern::has_wildcard),
        }
    }
}

/// The operator families, before values are compiled.
#[derive(Debug, Clone, Copy)]
enum Kind {
    String,
    StringIgnoreCase,
    StringLike,
    Numeric(Cmp),
    Date(Cmp),
    Bool,
    Binary,
    Ip,
    Arn,
    Null,
}

/// Splits an operator name into (set prefix, IfExists, negated, family). Names are
/// case-sensitive, as IAM treats them.
fn operator(name: &str) -> Result<(Set, bool, bool, Kind), PolicyError> {
    let bad = || PolicyError::InvalidConditionOperator(name.to_owned());
    let (set, rest) = if let Some(r) = name.strip_prefix("ForAnyValue:") {
        (Set::ForAnyValue, r)
    } else if let Some(r) = name.strip_prefix("ForAllValues:") {
        (Set::ForAllValues, r)
    } else {
        (Set::Single, name)
    };
    let (base, if_exists) = match rest.strip_suffix("IfExists") {
        Some(b) => (b, true),
        None => (rest, false),
    };
    let (negated, kind) = match base {
        "StringEquals" => (false, Kind::String),
        "StringNotEquals" => (true, Kind::String),
        "StringEqualsIgnoreCase" => (false, Kind::StringIgnoreCase),
        "StringNotEqualsIgnoreCase" => (true, Kind::StringIgnoreCase),
        "StringLike" => (false, Kind::StringLike),
        "StringNotLike" => (true, Kind::StringLike),
        "NumericEquals" => (false, Kind::Numeric(Cmp::Eq)),
        "NumericNotEquals" => (true, Kind::Numeric(Cmp::Eq)),
        "NumericLessThan" => (false, Kind::Numeric(Cmp::Lt)),
        "NumericLessThanEquals" => (false, Kind::Numeric(Cmp::Le)),
        "NumericGreaterThan" => (false, Kind::Numeric(Cmp::Gt)),
        "NumericGreaterThanEquals" => (false, Kind::Numeric(Cmp::Ge)),
        "DateEquals" => (false, Kind::Date(Cmp::Eq)),
        "DateNotEquals" => (true, Kind::Date(Cmp::Eq)),
        "DateLessThan" => (false, Kind::Date(Cmp::Lt)),
        "DateLessThanEquals" => (false, Kind::Date(Cmp::Le)),
        "DateGreaterThan" => (false, Kind::Date(Cmp::Gt)),
        "DateGreaterThanEquals" => (false, Kind::Date(Cmp::Ge)),
        "Bool" => (false, Kind::Bool),
        "BinaryEquals" => (false, Kind::Binary),
        "IpAddress" => (false, Kind::Ip),
        "NotIpAddress" => (true, Kind::Ip),
        "ArnEquals" | "ArnLike" => (false, Kind::Arn),
        "ArnNotEquals" | "ArnNotLike" => (true, Kind::Arn),
        // Null tests presence itself, so neither IfExists nor a set prefix means anything.
        "Null" if !if_exists && set == Set::Single => (false, Kind::Null),
        _ => return Err(bad()),
    };
    Ok((set, if_exists, negated, kind))
}

fn compile(kind: Kind, raw: &[String]) -> Result<Values, PolicyError> {
    let boxed = || raw.iter().map(|s| s.as_str().into()).collect();
    Ok(match kind {
        Kind::String | Kind::Binary => Values::Exact(boxed()),
        Kind::StringIgnoreCase => Values::Folded(
            raw.iter()
                .map(|s| {
                    s.chars()
                        .flat_map(char::to_lowercase)
                        .collect::<String>()
                        .into()
                })
                .collect(),
        ),
        Kind::StringLike => Values::Like(
            raw.iter()
                .map(|s| Pattern::new(s, Case::Sensitive))
                .collect(),
        ),
        Kind::Numeric(c) => Values::Num(c, raw.iter().map(|s| values::number(s)).collect()),
        Kind::Date(c) => Values::Date(c, raw.iter().map(|s| values::date(s)).collect()),
        Kind::Bool => Values::Bool(raw.iter().map(|s| bool_value(s)).collect()),
        Kind::Null => Values::Null(raw.iter().map(|s| bool_value(s)).collect()),
        Kind::Ip => Values::Ip(
            raw.iter()
                .map(|s| Cidr::parse(s).ok_or(PolicyError::InvalidIpAddress))
                .collect::<Result<_, _>>()?,
        ),
        Kind::Arn => Values::Arn(raw.iter().map(|s| ArnPattern::new(s)).collect()),
    })
}

fn bool_value(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// `<service>:<name>`, e.g. `aws:SourceIp`, `s3:prefix`, `aws:PrincipalTag/team`.
fn valid_key(k: &str) -> bool {
    match k.split_once(':') {
        Some((svc, name)) => {
            !svc.is_empty()
                && svc.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !name.is_empty()
                && !name.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

/// A condition value: a scalar or an array of scalars. IAM compares numbers and booleans as
/// the text they are written as, so they become strings here.
fn scalars(v: &Value) -> Option<Vec<String>> {
    fn one(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    match v {
        Value::Array(a) => a.iter().map(one).collect(),
        v => one(v).map(|s| vec![s]),
    }
}

#[cfg(test)]
mod tests;
