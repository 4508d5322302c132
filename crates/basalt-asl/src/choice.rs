//! Choice rules: the comparison operators of the spec (and their `Path` variants), `And`,
//! `Or`, `Not`, and JSONata `Condition`s.
//! <https://docs.aws.amazon.com/step-functions/latest/dg/state-choice.html>

use crate::path::Path;
use crate::scope::Scope;
use serde_json::{Map, Value};

#[derive(Clone, Debug)]
pub(crate) enum Rule {
    And(Vec<Rule>),
    Or(Vec<Rule>),
    Not(Box<Rule>),
    Cmp {
        variable: Path,
        op: Op,
        operand: Operand,
    },
    /// JSONata: `{% expression %}` or a literal boolean.
    Condition(crate::template::Template),
}

#[derive(Clone, Debug)]
pub(crate) enum Operand {
    Lit(Value),
    Path(Path),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Op {
    StrEq,
    StrLt,
    StrGt,
    StrLe,
    StrGe,
    StrMatches,
    NumEq,
    NumLt,
    NumGt,
    NumLe,
    NumGe,
    BoolEq,
    TsEq,
    TsLt,
    TsGt,
    TsLe,
    TsGe,
    IsNull,
    IsPresent,
    IsNumeric,
    IsString,
    IsBoolean,
    IsTimestamp,
}

const OPS: &[(&str, Op)] = &[
    ("StringEquals", Op::StrEq),
    ("StringLessThan", Op::StrLt),
    ("StringGreaterThan", Op::StrGt),
    ("StringLessThanEquals", Op::StrLe),
    ("StringGreaterThanEquals", Op::StrGe),
    ("StringMatches", Op::StrMatches),
    ("NumericEquals", Op::NumEq),
    ("NumericLessThan", Op::NumLt),
    ("NumericGreaterThan", Op::NumGt),
    ("NumericLessThanEquals", Op::NumLe),
    ("NumericGreaterThanEquals", Op::NumGe),
    ("BooleanEquals", Op::BoolEq),
    ("TimestampEquals", Op::TsEq),
    ("TimestampLessThan", Op::TsLt),
    ("TimestampGreaterThan", Op::TsGt),
    ("TimestampLessThanEquals", Op::TsLe),
    ("TimestampGreaterThanEquals", Op::TsGe),
    ("IsNull", Op::IsNull),
    ("IsPresent", Op::IsPresent),
    ("IsNumeric", Op::IsNumeric),
    ("IsString", Op::IsString),
    ("IsBoolean", Op::IsBoolean),
    ("IsTimestamp", Op::IsTimestamp),
];

/// Parse one rule object (a Choices entry without its Next, or a nested rule). Errors are
/// (message, location suffix).
pub(crate) fn parse_rule(obj: &Map<String, Value>, loc: &str) -> Result<Rule, (String, String)> {
    let err = |m: String, l: String| Err((m, l));
    if let Some(v) = obj.get("And").or_else(|| obj.get("Or")) {
        let key = if obj.contains_key("And") { "And" } else { "Or" };
        let Some(items) = v.as_array().filter(|a| !a.is_empty()) else {
            return err(
                format!("'{key}' must be a non-empty array"),
                format!("{loc}/{key}"),
            );
        };
        let mut rules = Vec::new();
        for (i, it) in items.iter().enumerate() {
            let Some(o) = it.as_object() else {
                return err(
                    "a rule must be an object".into(),
                    format!("{loc}/{key}[{i}]"),
                );
            };
            rules.push(parse_rule(o, &format!("{loc}/{key}[{i}]"))?);
        }
        return Ok(if key == "And" {
            Rule::And(rules)
        } else {
            Rule::Or(rules)
        });
    }
    if let Some(v) = obj.get("Not") {
        let Some(o) = v.as_object() else {
            return err("'Not' must be an object".into(), format!("{loc}/Not"));
        };
        return Ok(Rule::Not(Box::new(parse_rule(o, &format!("{loc}/Not"))?)));
    }
    let Some(var) = obj.get("Variable") else {
        return err(
            "A Choice Rule must have a 'Variable' field, or be an And, Or or Not rule".into(),
            loc.into(),
        );
    };
    let Some(var_text) = var.as_str() else {
        return err(
            "'Variable' must be a string".into(),
            format!("{loc}/Variable"),
        );
    };
    let variable = Path::parse(var_text).map_err(|e| {
        (
            format!("invalid JSONPath in 'Variable': {e}"),
            format!("{loc}/Variable"),
        )
    })?;
    let mut found = None;
    for (k, v) in obj {
        if matches!(
            k.as_str(),
            "Variable" | "Next" | "Comment" | "Assign" | "Output"
        ) {
            continue;
        }
        let (name, is_path) = match k.strip_suffix("Path") {
            Some(b) if OPS.iter().any(|(n, _)| *n == b) => (b, true),
            _ => (k.as_str(), false),
        };
        let Some((_, op)) = OPS.iter().find(|(n, _)| *n == name) else {
            return err(
                format!("The field '{k}' is not supported for a Choice Rule"),
                format!("{loc}/{k}"),
            );
        };
        if found.is_some() {
            return err(
                "A Choice Rule must have exactly one comparison operator".into(),
                format!("{loc}/{k}"),
            );
        }
        let operand = if is_path {
            let Some(p) = v.as_str() else {
                return err(format!("'{k}' must be a path"), format!("{loc}/{k}"));
            };
            Operand::Path(Path::parse(p).map_err(|e| {
                (
                    format!("invalid JSONPath in '{k}': {e}"),
                    format!("{loc}/{k}"),
                )
            })?)
        } else {
            let ok = match op {
                Op::StrEq | Op::StrLt | Op::StrGt | Op::StrLe | Op::StrGe | Op::StrMatches => {
                    v.is_string()
                }
                Op::NumEq | Op::NumLt | Op::NumGt | Op::NumLe | Op::NumGe => v.is_number(),
                Op::BoolEq
                | Op::IsNull
                | Op::IsPresent
                | Op::IsNumeric
                | Op::IsString
                | Op::IsBoolean
                | Op::IsTimestamp => v.is_boolean(),
                Op::TsEq | Op::TsLt | Op::TsGt | Op::TsLe | Op::TsGe => {
                    v.as_str().is_some_and(|s| parse_ts(s).is_some())
                }
            };
            if !ok {
                return err(
                    format!("The value of '{k}' has the wrong type"),
                    format!("{loc}/{k}"),
                );
            }
            Operand::Lit(v.clone())
        };
        found = Some((*op, operand));
    }
    let Some((op, operand)) = found else {
        return err(
            "A Choice Rule must have a comparison operator".into(),
            loc.into(),
        );
    };
    Ok(Rule::Cmp {
        variable,
        op,
        operand,
    })
}

/// Evaluates a JSONata Condition to a boolean; errors are (error, cause).
pub(crate) type ConditionFn<'a> =
    dyn FnMut(&crate::template::Template) -> Result<bool, (String, String)> + 'a;

/// Evaluate a JSONPath rule. `jsonata` evaluates Condition rules.
pub(crate) fn eval(
    rule: &Rule,
    scope: &Scope,
    jsonata: &mut ConditionFn,
) -> Result<bool, (String, String)> {
    Ok(match rule {
        Rule::And(rs) => {
            for r in rs {
                if !eval(r, scope, jsonata)? {
                    return Ok(false);
                }
            }
            true
        }
        Rule::Or(rs) => {
            for r in rs {
                if eval(r, scope, jsonata)? {
                    return Ok(true);
                }
            }
            false
        }
        Rule::Not(r) => !eval(r, scope, jsonata)?,
        Rule::Condition(c) => jsonata(c)?,
        Rule::Cmp {
            variable,
            op,
            operand,
        } => {
            let value = scope.read(variable);
            let want = match operand {
                Operand::Lit(v) => v.clone(),
                Operand::Path(p) => match scope.read(p) {
                    Some(v) => v,
                    None => {
                        return Err((
                            "States.Runtime".into(),
                            format!(
                                "Invalid path '{}': The choice state's condition path references an invalid value.",
                                path_text(p)
                            ),
                        ));
                    }
                },
            };
            if *op == Op::IsPresent {
                return Ok(value.is_some() == want.as_bool().unwrap_or(false));
            }
            let Some(value) = value else {
                return Err((
                    "States.Runtime".into(),
                    format!(
                        "Invalid path '{}': The choice state's condition path references an invalid value.",
                        path_text(variable)
                    ),
                ));
            };
            compare(*op, &value, &want)
        }
    })
}

fn path_text(p: &Path) -> String {
    p.text.clone()
}

fn compare(op: Op, v: &Value, want: &Value) -> bool {
    use std::cmp::Ordering::*;
    let flag = || want.as_bool().unwrap_or(false);
    match op {
        Op::IsNull => v.is_null() == flag(),
        Op::IsNumeric => v.is_number() == flag(),
        Op::IsString => v.is_string() == flag(),
        Op::IsBoolean => v.is_boolean() == flag(),
        Op::IsTimestamp => v.as_str().and_then(parse_ts).is_some() == flag(),
        Op::IsPresent => unreachable!("handled by the caller"),
        Op::BoolEq => v.is_boolean() && v == want,
        Op::StrMatches => match (v.as_str(), want.as_str()) {
            (Some(s), Some(p)) => matches(s, p),
            _ => false,
        },
        Op::StrEq | Op::StrLt | Op::StrGt | Op::StrLe | Op::StrGe => {
            let (Some(a), Some(b)) = (v.as_str(), want.as_str()) else {
                return false;
            };
            ord_ok(op, a.cmp(b))
        }
        Op::NumEq | Op::NumLt | Op::NumGt | Op::NumLe | Op::NumGe => {
            let (Some(a), Some(b)) = (v.as_f64(), want.as_f64()) else {
                return false;
            };
            a.partial_cmp(&b).is_some_and(|o| ord_ok(op, o))
        }
        Op::TsEq | Op::TsLt | Op::TsGt | Op::TsLe | Op::TsGe => {
            let (Some(a), Some(b)) = (
                v.as_str().and_then(parse_ts),
                want.as_str().and_then(parse_ts),
            ) else {
                return false;
            };
            let _ = (Less, Equal, Greater);
            ord_ok(op, a.cmp(&b))
        }
    }
}

fn ord_ok(op: Op, o: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match op {
        Op::StrEq | Op::NumEq | Op::TsEq => o == Equal,
        Op::StrLt | Op::NumLt | Op::TsLt => o == Less,
        Op::StrGt | Op::NumGt | Op::TsGt => o == Greater,
        Op::StrLe | Op::NumLe | Op::TsLe => o != Greater,
        _ => o != Less,
    }
}

/// RFC 3339 timestamps as epoch nanoseconds.
pub(crate) fn parse_ts(s: &str) -> Option<i128> {
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    // The spec demands an uppercase T and Z/offset; chrono accepts lowercase and spaces.
    if s.contains(' ') || s.contains('t') || s.contains('z') {
        return None;
    }
    Some(t.timestamp() as i128 * 1_000_000_000 + t.timestamp_subsec_nanos() as i128)
}

/// StringMatches: `*` is any run of characters; `\*` a literal star and `\\` a backslash.
pub(crate) fn matches(s: &str, pattern: &str) -> bool {
    #[derive(PartialEq)]
    enum T {
        Star,
        C(char),
    }
    let mut toks = Vec::new();
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        match c {
            '\\' => match it.next() {
                Some(n) => toks.push(T::C(n)),
                None => toks.push(T::C('\\')),
            },
            '*' => toks.push(T::Star),
            c => toks.push(T::C(c)),
        }
    }
    let s: Vec<char> = s.chars().collect();
    // Greedy matcher with backtracking to the last star.
    let (mut i, mut j) = (0usize, 0usize);
    let (mut star, mut mark) = (None, 0usize);
    while i < s.len() {
        if j < toks.len() && toks[j] == T::C(s[i]) {
            i += 1;
            j += 1;
        } else if j < toks.len() && toks[j] == T::Star {
            star = Some(j);
            mark = i;
            j += 1;
        } else if let Some(sj) = star {
            j = sj + 1;
            mark += 1;
            i = mark;
        } else {
            return false;
        }
    }
    while j < toks.len() && toks[j] == T::Star {
        j += 1;
    }
    j == toks.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_matches() {
        assert!(matches("log-2024.txt", "log-*.txt"));
        assert!(matches("anything", "*"));
        assert!(!matches("log.csv", "log-*.txt"));
        assert!(matches("a*b", "a\\*b"));
        assert!(!matches("axb", "a\\*b"));
        assert!(matches("a\\b", "a\\\\b"));
        assert!(matches("abcbc", "*bc"));
    }

    #[test]
    fn timestamps() {
        assert!(parse_ts("2016-03-14T01:59:00Z").is_some());
        assert!(parse_ts("2016-03-14T01:59:00.123+01:00").is_some());
        assert!(parse_ts("2016-03-14 01:59:00Z").is_none());
        assert!(parse_ts("2016-03-14").is_none());
        assert!(parse_ts("2016-03-14T01:59:00Z") < parse_ts("2016-03-14T01:59:01Z"));
    }
}
