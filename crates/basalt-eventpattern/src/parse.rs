//! Pattern JSON to `ObjNode`, with the validation and wording of EventBridge's rule compiler
//! (aws/event-ruler's `JsonRuleCompiler`, which EventBridge and SNS both run). Checks happen in
//! the order that compiler meets them while streaming tokens, so that the first error reported
//! is the one AWS reports.

use serde_json::{Map, Value};

use crate::ast::{AnythingBut, Child, Field, Leaf, Leaves, ObjNode, Range};
use crate::cidr::Cidr;
use crate::error::PatternError;
use crate::scalar::{NumKey, Scalar};
use crate::wildcard::Wildcard;

/// Where the two dialects part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    EventBridge,
    Sns,
}

/// EventBridge refuses numbers it cannot place on its fixed-point scale.
const NUMERIC_LIMIT: f64 = 5.0e9;

/// Match-type keywords, which may not be used as field names inside `$or` (they would be
/// ambiguous with a match expression there).
const RESERVED_IN_OR: &[&str] = &[
    "anything-but",
    "cidr",
    "equals-ignore-case",
    "exists",
    "numeric",
    "prefix",
    "suffix",
    "wildcard",
];

struct Parser {
    dialect: Dialect,
    path: Vec<String>,
}

type R<T> = Result<T, String>;

/// Parses a pattern (EventBridge) or a non-empty filter policy (SNS) that is already JSON.
pub(crate) fn parse_root(v: &Value, dialect: Dialect) -> Result<ObjNode, PatternError> {
    let mut p = Parser {
        dialect,
        path: Vec::new(),
    };
    let res = match v {
        Value::Object(m) => p.object(m, false),
        _ => Err("Filter is not an object".to_string()),
    };
    res.map_err(|reason| match dialect {
        Dialect::EventBridge => PatternError::pattern(reason),
        Dialect::Sns => PatternError::policy(reason),
    })
}

/// The text Jackson gives for the token at `v`, which several messages quote.
fn token_text(v: Option<&Value>) -> String {
    match v {
        None => "]".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Null) => "null".into(),
        Some(Value::Array(_)) => "[".into(),
        Some(Value::Object(_)) => "{".into(),
    }
}

fn number(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64)
}

impl Parser {
    fn object(&mut self, m: &Map<String, Value>, in_or: bool) -> R<ObjNode> {
        if m.is_empty() {
            return Err("Empty objects are not allowed".into());
        }
        let mut node = ObjNode::default();
        for (key, value) in m {
            if key == "$or" {
                node.ors.push(self.or(value)?);
                continue;
            }
            if in_or && RESERVED_IN_OR.contains(&key.as_str()) {
                return Err(format!(
                    "{key} is Ruler reserved fieldName which cannot be used inside $or."
                ));
            }
            self.path.push(key.clone());
            let child = match value {
                Value::Object(inner) => self.object(inner, in_or).map(Child::Obj),
                Value::Array(items) => self.leaves(items).map(Child::Leaves),
                _ => Err(format!("\"{key}\" must be an object or an array")),
            };
            let path = self.path.clone();
            self.path.pop();
            node.fields.push(Field {
                key: key.clone(),
                path,
                child: child?,
            });
        }
        Ok(node)
    }

    fn or(&mut self, v: &Value) -> R<Vec<ObjNode>> {
        let Value::Array(items) = v else {
            return Err("It must be an Array followed with $or.".into());
        };
        let mut alts = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Value::Object(m) => alts.push(self.object(m, true)?),
                _ => return Err("Only JSON object is allowed in array of $or relationship.".into()),
            }
        }
        if alts.len() < 2 {
            return Err("There must have at least 2 Objects in $or relationship.".into());
        }
        Ok(alts)
    }

    fn leaves(&mut self, items: &[Value]) -> R<Leaves> {
        let mut out = Leaves::default();
        for item in items {
            match item {
                Value::Object(m) => self.expression(m, &mut out)?,
                Value::String(s) => out.matchers.push(Leaf::Exact(Scalar::str(s))),
                Value::Number(n) => out.matchers.push(Leaf::Exact(Scalar::Num(NumKey::of(n)))),
                Value::Bool(b) => out.matchers.push(Leaf::Exact(Scalar::Bool(*b))),
                Value::Null => out.matchers.push(Leaf::Exact(Scalar::Null)),
                Value::Array(_) => {
                    return Err("Match value must be String, number, true, false, or null".into());
                }
            }
        }
        if items.is_empty() {
            return Err("Empty arrays are not allowed".into());
        }
        Ok(out)
    }

    fn check_number(&self, x: f64) -> R<f64> {
        if self.dialect == Dialect::EventBridge && !(-NUMERIC_LIMIT..=NUMERIC_LIMIT).contains(&x) {
            return Err("Value must be between -5000000000 and 5000000000, inclusive".into());
        }
        Ok(x)
    }

    /// One `{ "<match type>": ... }` entry of a leaf array.
    fn expression(&mut self, m: &Map<String, Value>, out: &mut Leaves) -> R<()> {
        let Some((name, value)) = m.iter().next() else {
            return Err("Match expression name not found".into());
        };
        let one_key = || -> R<()> {
            if m.len() > 1 {
                Err("Only one key allowed in match expression".into())
            } else {
                Ok(())
            }
        };
        let too_many = || -> R<()> {
            if m.len() > 1 {
                Err("Too many elements in numeric expression".into())
            } else {
                Ok(())
            }
        };
        let eb = self.dialect == Dialect::EventBridge;
        let leaf = match (name.as_str(), value) {
            ("prefix", Value::Object(inner)) if eb => {
                let s = ignore_case_operand(inner, "Prefix")?;
                one_key()?;
                Leaf::PrefixIc(s)
            }
            ("prefix", Value::String(s)) => {
                one_key()?;
                Leaf::Prefix(s.clone())
            }
            ("prefix", _) => return Err("prefix match pattern must be a string".into()),
            ("suffix", Value::Object(inner)) if eb => {
                let s = ignore_case_operand(inner, "Suffix")?;
                one_key()?;
                Leaf::SuffixIc(s)
            }
            ("suffix", Value::String(s)) => {
                one_key()?;
                Leaf::Suffix(s.clone())
            }
            ("suffix", _) => return Err("suffix match pattern must be a string".into()),
            ("equals-ignore-case", Value::String(s)) => {
                one_key()?;
                Leaf::EqualsIc(s.to_lowercase())
            }
            ("equals-ignore-case", _) => {
                return Err("equals-ignore-case match pattern must be a string".into());
            }
            ("wildcard", Value::String(s)) if eb => {
                let w = Wildcard::parse(s)?;
                one_key()?;
                Leaf::Wildcard(w)
            }
            ("wildcard", _) if eb => return Err("wildcard match pattern must be a string".into()),
            ("numeric", Value::Array(items)) => {
                let r = self.numeric(items)?;
                too_many()?;
                Leaf::Numeric(r)
            }
            ("numeric", _) => return Err("Value of numeric must be an array.".into()),
            ("anything-but", v) => {
                let a = self.anything_but(v)?;
                too_many()?;
                Leaf::AnythingBut(a)
            }
            ("exists", Value::Bool(b)) => {
                one_key()?;
                if *b {
                    out.exists_true = true;
                } else {
                    out.exists_false = true;
                }
                return Ok(());
            }
            ("exists", _) => {
                return Err("exists match pattern must be either true or false.".into());
            }
            // The compiler really says "prefix" here: its cidr branch reuses the prefix message.
            ("cidr", Value::String(s)) => {
                let c = Cidr::parse(s)?;
                one_key()?;
                Leaf::Cidr(c)
            }
            ("cidr", _) => return Err("prefix match pattern must be a string".into()),
            (other, _) => return Err(format!("Unrecognized match type {other}")),
        };
        out.matchers.push(leaf);
        Ok(())
    }

    fn numeric(&self, items: &[Value]) -> R<Range> {
        let op = match items.first() {
            Some(Value::String(s)) => s.as_str(),
            other => {
                return Err(format!(
                    "Invalid member in numeric match: {}",
                    token_text(other)
                ));
            }
        };
        let strings = self.dialect == Dialect::Sns;
        let operand = |op_name: &str, v: Option<&Value>| -> R<f64> {
            match number(v) {
                Some(x) => self.check_number(x),
                None => Err(format!("Value of {op_name} must be numeric")),
            }
        };
        let single_end = |items: &[Value]| -> R<()> {
            if items.len() > 2 {
                Err("Too many elements in numeric expression".into())
            } else {
                Ok(())
            }
        };
        match op {
            "=" => {
                let x = operand("equals", items.get(1))?;
                single_end(items)?;
                Ok(Range {
                    lo: Some((x, true)),
                    hi: Some((x, true)),
                    strings,
                })
            }
            "<" | "<=" => {
                let x = operand(op, items.get(1))?;
                single_end(items)?;
                Ok(Range {
                    lo: None,
                    hi: Some((x, op == "<=")),
                    strings,
                })
            }
            ">" | ">=" => {
                let bottom = operand(op, items.get(1))?;
                let lo = Some((bottom, op == ">="));
                if items.len() == 2 {
                    return Ok(Range {
                        lo,
                        hi: None,
                        strings,
                    });
                }
                let op2 = match items.get(2) {
                    Some(Value::String(s)) => s.as_str(),
                    other => {
                        return Err(format!("Bad value in numeric range: {}", token_text(other)));
                    }
                };
                if op2 != "<" && op2 != "<=" {
                    return Err(format!("Bad numeric range operator: {op2}"));
                }
                let top = operand(op2, items.get(3))?;
                if items.len() > 4 {
                    return Err("Too many terms in numeric range expression".into());
                }
                if bottom >= top {
                    return Err("Bottom must be less than top".into());
                }
                Ok(Range {
                    lo,
                    hi: Some((top, op2 == "<=")),
                    strings,
                })
            }
            other => Err(format!("Unrecognized numeric range operator: {other}")),
        }
    }

    fn anything_but(&self, v: &Value) -> R<AnythingBut> {
        #[derive(PartialEq, Clone, Copy)]
        enum Kind {
            IgnoreCase,
            Prefix,
            Suffix,
            Wildcard,
        }
        let (kind, operand) = match v {
            Value::Object(m) => {
                let Some((name, inner)) = m.iter().next() else {
                    return Err("Anything-But expression name not found".into());
                };
                let kind = match (name.as_str(), self.dialect) {
                    ("prefix", _) => Kind::Prefix,
                    ("equals-ignore-case", Dialect::EventBridge) => Kind::IgnoreCase,
                    ("suffix", Dialect::EventBridge) => Kind::Suffix,
                    ("wildcard", Dialect::EventBridge) => Kind::Wildcard,
                    _ => return Err(format!("Unsupported anything-but pattern: {name}")),
                };
                if m.len() > 1 {
                    return Err("Too many elements in numeric expression".into());
                }
                (Some(kind), inner)
            }
            other => (None, other),
        };
        if !matches!(
            operand,
            Value::Array(_) | Value::String(_) | Value::Number(_)
        ) {
            return Err(
                "Value of anything-but must be an array or single string/number value.".into(),
            );
        }
        let Some(kind) = kind else {
            return match operand {
                Value::Array(items) => {
                    let mut values = Vec::with_capacity(items.len());
                    let (mut strs, mut nums) = (false, false);
                    for item in items {
                        match item {
                            Value::String(s) => {
                                strs = true;
                                values.push(Scalar::str(s));
                            }
                            Value::Number(n) => {
                                nums = true;
                                self.check_number(n.as_f64().unwrap_or(f64::NAN))?;
                                values.push(Scalar::Num(NumKey::of(n)));
                            }
                            _ => return Err(
                                "Inside anything but list, start|null|boolean is not supported."
                                    .into(),
                            ),
                        }
                    }
                    if strs == nums {
                        return Err("Inside anything but list, either all values are number or string, mixed type is not supported".into());
                    }
                    Ok(AnythingBut::Values(values))
                }
                Value::String(s) => Ok(AnythingBut::Values(vec![Scalar::str(s)])),
                Value::Number(n) => {
                    self.check_number(n.as_f64().unwrap_or(f64::NAN))?;
                    Ok(AnythingBut::Values(vec![Scalar::Num(NumKey::of(n))]))
                }
                _ => unreachable!("checked above"),
            };
        };
        let singleton;
        let items: &[Value] = match operand {
            Value::Array(items) => items,
            one => {
                singleton = [one.clone()];
                &singleton
            }
        };
        let mut strings = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Value::String(s) => {
                    if matches!(kind, Kind::Prefix | Kind::Suffix) && s.is_empty() {
                        return Err("Null prefix/suffix not allowed".into());
                    }
                    strings.push(s.clone());
                }
                _ => {
                    return Err(match kind {
                        Kind::IgnoreCase => {
                            "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."
                        }
                        Kind::Wildcard => "wildcard match pattern must be a string",
                        Kind::Prefix | Kind::Suffix => "prefix/suffix match pattern must be a string",
                    }
                    .into());
                }
            }
        }
        Ok(match kind {
            Kind::Prefix => AnythingBut::Prefix(strings),
            Kind::Suffix => AnythingBut::Suffix(strings),
            Kind::IgnoreCase => {
                AnythingBut::EqualsIc(strings.iter().map(|s| s.to_lowercase()).collect())
            }
            Kind::Wildcard => AnythingBut::Wildcard(
                strings
                    .iter()
                    .map(|s| Wildcard::parse(s))
                    .collect::<R<_>>()?,
            ),
        })
    }
}

/// The `{"equals-ignore-case": "..."}` inside `prefix` / `suffix`; `what` is `Prefix` or
/// `Suffix`, as the messages spell it.
fn ignore_case_operand(m: &Map<String, Value>, what: &str) -> R<String> {
    let Some((name, v)) = m.iter().next() else {
        return Err(format!("{what} expression name not found"));
    };
    if name != "equals-ignore-case" {
        return Err(format!(
            "Unsupported {} pattern: {name}",
            what.to_lowercase()
        ));
    }
    let Value::String(s) = v else {
        return Err("equals-ignore-case match pattern must be a string".into());
    };
    if m.len() > 1 {
        return Err("Only one key allowed in match expression".into());
    }
    Ok(s.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(p: &str) -> String {
        let v: Value = serde_json::from_str(p).unwrap();
        parse_root(&v, Dialect::EventBridge)
            .unwrap_err()
            .reason()
            .to_owned()
    }

    #[test]
    fn structure_errors() {
        assert_eq!(err("[]"), "Filter is not an object");
        assert_eq!(err("{}"), "Empty objects are not allowed");
        assert_eq!(err(r#"{"a": {}}"#), "Empty objects are not allowed");
        assert_eq!(err(r#"{"a": "x"}"#), "\"a\" must be an object or an array");
        assert_eq!(err(r#"{"a": []}"#), "Empty arrays are not allowed");
        assert_eq!(
            err(r#"{"a": [[1]]}"#),
            "Match value must be String, number, true, false, or null"
        );
        assert_eq!(err(r#"{"a": [{}]}"#), "Match expression name not found");
        assert_eq!(
            err(r#"{"a": [{"regex": "x"}]}"#),
            "Unrecognized match type regex"
        );
    }

    #[test]
    fn or_errors() {
        assert_eq!(
            err(r#"{"$or": {}}"#),
            "It must be an Array followed with $or."
        );
        assert_eq!(
            err(r#"{"$or": [1, 2]}"#),
            "Only JSON object is allowed in array of $or relationship."
        );
        assert_eq!(
            err(r#"{"$or": [{"a": [1]}]}"#),
            "There must have at least 2 Objects in $or relationship."
        );
        assert_eq!(
            err(r#"{"$or": [{"numeric": [1]}, {"a": [1]}]}"#),
            "numeric is Ruler reserved fieldName which cannot be used inside $or."
        );
    }

    #[test]
    fn numeric_errors() {
        assert_eq!(
            err(r#"{"a": [{"numeric": 5}]}"#),
            "Value of numeric must be an array."
        );
        assert_eq!(
            err(r#"{"a": [{"numeric": []}]}"#),
            "Invalid member in numeric match: ]"
        );
        assert_eq!(
            err(r#"{"a": [{"numeric": [5]}]}"#),
            "Invalid member in numeric match: 5"
        );
        assert_eq!(
            err(r#"{"a": [{"numeric": ["!=", 5]}]}"#),
            "Unrecognized numeric range operator: !="
        );
        assert_eq!(
            err(r#"{"a": [{"numeric": ["=", "5"]}]}"#),
            "Value of equals must be numeric"
        );
        assert_eq!(
            err(r#"{"a": [{"numeric": ["<", 5, ">", 1]}]}"#),
            "Too many elements in numeric expression"
        );
        assert_eq!(
            err(r#"{"a": [{"numeric": [">", 5, 6]}]}"#),
            "Bad value in numeric range: 6"
        );
        assert_eq!(
            err(r#"{"a": [{"numeric": [">", 5, ">", 6]}]}"#),
            "Bad numeric range operator: >"
        );
        assert_eq!(
            err(r#"{"a": [{"numeric": [">", 5, "<"]}]}"#),
            "Value of < must be numeric"
        );
        assert_eq!(
            err(r#"{"a": [{"numeric": [">", 5, "<", 6, 7]}]}"#),
            "Too many terms in numeric range expression"
        );
        assert_eq!(
            err(r#"{"a": [{"numeric": [">", 6, "<", 5]}]}"#),
            "Bottom must be less than top"
        );
        assert_eq!(
            err(r#"{"a": [{"numeric": [">", 6e9]}]}"#),
            "Value must be between -5000000000 and 5000000000, inclusive"
        );
        assert_eq!(
            err(r#"{"a": [{"numeric": [">", 1], "x": 1}]}"#),
            "Too many elements in numeric expression"
        );
    }

    #[test]
    fn anything_but_errors() {
        assert_eq!(
            err(r#"{"a": [{"anything-but": true}]}"#),
            "Value of anything-but must be an array or single string/number value."
        );
        assert_eq!(
            err(r#"{"a": [{"anything-but": ["a", 1]}]}"#),
            "Inside anything but list, either all values are number or string, mixed type is not supported"
        );
        assert_eq!(
            err(r#"{"a": [{"anything-but": [null]}]}"#),
            "Inside anything but list, start|null|boolean is not supported."
        );
        assert_eq!(
            err(r#"{"a": [{"anything-but": {}}]}"#),
            "Anything-But expression name not found"
        );
        assert_eq!(
            err(r#"{"a": [{"anything-but": {"numeric": 1}}]}"#),
            "Unsupported anything-but pattern: numeric"
        );
        assert_eq!(
            err(r#"{"a": [{"anything-but": {"prefix": ""}}]}"#),
            "Null prefix/suffix not allowed"
        );
        assert_eq!(
            err(r#"{"a": [{"anything-but": {"prefix": 1}}]}"#),
            "prefix/suffix match pattern must be a string"
        );
        assert_eq!(
            err(r#"{"a": [{"anything-but": {"equals-ignore-case": [1]}}]}"#),
            "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."
        );
        assert_eq!(
            err(r#"{"a": [{"anything-but": {"wildcard": "a**"}}]}"#),
            "Consecutive wildcard characters at pos 2"
        );
    }

    #[test]
    fn operand_errors() {
        assert_eq!(
            err(r#"{"a": [{"prefix": 1}]}"#),
            "prefix match pattern must be a string"
        );
        assert_eq!(
            err(r#"{"a": [{"prefix": "a", "suffix": "b"}]}"#),
            "Only one key allowed in match expression"
        );
        assert_eq!(
            err(r#"{"a": [{"prefix": {"x": "a"}}]}"#),
            "Unsupported prefix pattern: x"
        );
        assert_eq!(
            err(r#"{"a": [{"prefix": {}}]}"#),
            "Prefix expression name not found"
        );
        assert_eq!(
            err(r#"{"a": [{"suffix": {"equals-ignore-case": 1}}]}"#),
            "equals-ignore-case match pattern must be a string"
        );
        assert_eq!(
            err(r#"{"a": [{"exists": "yes"}]}"#),
            "exists match pattern must be either true or false."
        );
        assert_eq!(
            err(r#"{"a": [{"cidr": 1}]}"#),
            "prefix match pattern must be a string"
        );
        assert_eq!(
            err(r#"{"a": [{"wildcard": 1}]}"#),
            "wildcard match pattern must be a string"
        );
        assert_eq!(
            err(r#"{"a": [{"wildcard": "a\\b"}]}"#),
            "Invalid escape character at pos 2"
        );
    }

    #[test]
    fn sns_dialect_refuses_eventbridge_only_operators() {
        let v: Value = serde_json::from_str(r#"{"a": [{"wildcard": "a*"}]}"#).unwrap();
        assert_eq!(
            parse_root(&v, Dialect::Sns).unwrap_err().reason(),
            "Unrecognized match type wildcard"
        );
        let v: Value =
            serde_json::from_str(r#"{"a": [{"anything-but": {"suffix": "a"}}]}"#).unwrap();
        assert_eq!(
            parse_root(&v, Dialect::Sns).unwrap_err().reason(),
            "Unsupported anything-but pattern: suffix"
        );
    }
}
