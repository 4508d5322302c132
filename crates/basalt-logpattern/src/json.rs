//! `{ … }` patterns: conditions on the properties of JSON events, from the syntax page's "Using
//! filter patterns to match terms in JSON log events". Events that are not JSON objects never
//! match.

use crate::PatternError;
use crate::expr::{self, Cursor, Expr};
use crate::lex::{self, Mode, Token};
use crate::value::{self, Literal, Scalar};
use serde_json::Value;

/// Syntax page quotas: "You can only use up to one wildcard selector in a property selector,
/// and up to three wildcard selectors in a filter pattern with compound expressions", and "a
/// limit of 2 regex for each filter pattern when creating a delimited or JSON filter pattern".
const MAX_WILDCARDS_PER_SELECTOR: usize = 1;
const MAX_WILDCARDS: usize = 3;
pub(crate) const MAX_REGEXES: usize = 2;

#[derive(Debug, Clone)]
pub(crate) struct JsonPattern {
    expr: Expr<Cond>,
}

#[derive(Debug, Clone)]
struct Cond {
    selector: Vec<Step>,
    test: Test,
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
    /// `[*]` or `.*`: "any array element or any JSON object field".
    Any,
}

#[derive(Debug, Clone)]
enum Test {
    Compare(lex::CmpOp, Literal),
    IsNull,
    IsTrue,
    IsFalse,
    NotExists,
}

pub(crate) fn parse(inner: &str) -> Result<JsonPattern, PatternError> {
    let toks = lex::tokenize(inner, Mode::Json)?;
    let expr = expr::parse(&toks, &mut cond)?;
    let leaves = expr.leaves();
    let wildcards: usize = leaves
        .iter()
        .map(|c| c.selector.iter().filter(|s| **s == Step::Any).count())
        .sum();
    if wildcards > MAX_WILDCARDS {
        return Err(PatternError::invalid("more than three wildcard selectors"));
    }
    let regexes = leaves
        .iter()
        .filter(|c| matches!(&c.test, Test::Compare(_, l) if l.is_regex()))
        .count();
    if regexes > MAX_REGEXES {
        return Err(PatternError::invalid("more than two regular expressions"));
    }
    Ok(JsonPattern { expr })
}

fn keyword(tok: Option<&Token>) -> Option<String> {
    match tok {
        Some(Token::Word(w)) => Some(w.to_ascii_uppercase()),
        _ => None,
    }
}

fn cond(c: &mut Cursor<'_>) -> Result<Cond, PatternError> {
    let selector = match c.next() {
        Some(Token::Selector(raw)) => selector(raw)?,
        // The AWS CDK once emitted `{ status = "401" }` and the service refused it
        // (aws/aws-cdk#15047): properties are always reached from `$`.
        _ => {
            return Err(PatternError::invalid(
                "a condition must start with a $. selector",
            ));
        }
    };
    let test = match c.next() {
        Some(Token::Op(op)) => Test::Compare(*op, Literal::from_token(c.next(), *op)?),
        tok => match keyword(tok).as_deref() {
            Some("IS") => match keyword(c.next()).as_deref() {
                Some("NULL") => Test::IsNull,
                Some("TRUE") => Test::IsTrue,
                Some("FALSE") => Test::IsFalse,
                // "The variables IS NOT and EXISTS currently aren't supported."
                _ => return Err(PatternError::invalid("IS takes NULL, TRUE or FALSE")),
            },
            Some("NOT") => match keyword(c.next()).as_deref() {
                Some("EXISTS") => Test::NotExists,
                _ => return Err(PatternError::invalid("NOT takes EXISTS")),
            },
            _ => {
                return Err(PatternError::invalid(
                    "expected an operator after the selector",
                ));
            }
        },
    };
    Ok(Cond { selector, test })
}

/// Parses `$.a.b[0]['c.d'][*].*`. Property names are "alphanumeric strings that support hyphen
/// and underscore characters"; other names go in brackets (`$.['cluster.name']`). A bad
/// character is reported with the selector up to it: the service answered
/// "Invalid character(s) in term '$.\"'" for `$."sc-status"`.
fn selector(raw: &str) -> Result<Vec<Step>, PatternError> {
    let chars: Vec<char> = raw.chars().collect();
    let bad_at = |i: usize| PatternError::InvalidCharacters(chars[..=i].iter().collect());
    let is_name = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    let mut steps = Vec::new();
    // chars[0] is `$`.
    let mut i = 1;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                match chars.get(i) {
                    Some('*') => {
                        steps.push(Step::Any);
                        i += 1;
                    }
                    // `.['key']`, the syntax page's spelling of bracket notation.
                    Some('[') => {}
                    Some(&c) if is_name(c) => {
                        let len = chars[i..].iter().take_while(|&&c| is_name(c)).count();
                        steps.push(Step::Key(chars[i..i + len].iter().collect()));
                        i += len;
                    }
                    Some(_) => return Err(bad_at(i)),
                    None => return Err(PatternError::invalid("selector ends with .")),
                }
            }
            '[' => {
                let close = chars[i..]
                    .iter()
                    .position(|&c| c == ']')
                    .ok_or(PatternError::invalid("unclosed [ in selector"))?;
                let body: String = chars[i + 1..i + close].iter().collect();
                steps.push(bracket(&body)?);
                i += close + 1;
            }
            _ => return Err(bad_at(i)),
        }
    }
    if steps.is_empty() {
        return Err(PatternError::invalid("a selector needs a property after $"));
    }
    if steps.iter().filter(|s| **s == Step::Any).count() > MAX_WILDCARDS_PER_SELECTOR {
        return Err(PatternError::invalid(
            "more than one wildcard in a selector",
        ));
    }
    Ok(steps)
}

fn bracket(body: &str) -> Result<Step, PatternError> {
    if body == "*" {
        return Ok(Step::Any);
    }
    if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) {
        return body
            .parse()
            .map(Step::Index)
            .map_err(|_| PatternError::invalid("index too large"));
    }
    for q in ['\'', '"'] {
        if let Some(key) = body.strip_prefix(q).and_then(|b| b.strip_suffix(q)) {
            return Ok(Step::Key(key.to_owned()));
        }
    }
    Err(PatternError::invalid(
        "brackets take an index, * or a quoted key",
    ))
}

/// A property selector (`$.a.b[0]`) on its own, as metric filters name the values they publish
/// and their dimensions (`metricValue: $.latency`).
#[derive(Debug, Clone, PartialEq)]
pub struct JsonSelector {
    steps: Vec<Step>,
}

impl JsonSelector {
    /// Parses a selector with the syntax of those in `{ … }` patterns.
    pub fn parse(raw: &str) -> Result<JsonSelector, PatternError> {
        let raw = raw.trim();
        if !raw.starts_with('$') {
            return Err(PatternError::invalid("a selector starts with $"));
        }
        Ok(JsonSelector {
            steps: selector(raw)?,
        })
    }

    /// The text of the first string, number or boolean the selector reaches in the JSON object
    /// `message`; `None` when it is not JSON or reaches none.
    pub fn scalar_text(&self, message: &str) -> Option<String> {
        let root = serde_json::from_str::<Value>(message).ok()?;
        self.scalar_in(&root)
    }

    /// As [`JsonSelector::scalar_text`], on an already parsed event.
    pub fn scalar_in(&self, root: &Value) -> Option<String> {
        select(root, &self.steps).into_iter().find_map(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        })
    }
}

/// The values `steps` reach from `root`; several only through a wildcard.
fn select<'v>(root: &'v Value, steps: &[Step]) -> Vec<&'v Value> {
    let mut current = vec![root];
    for step in steps {
        let mut next = Vec::new();
        for v in current {
            match (step, v) {
                (Step::Key(k), Value::Object(o)) => next.extend(o.get(k)),
                (Step::Index(n), Value::Array(a)) => next.extend(a.get(*n)),
                (Step::Any, Value::Object(o)) => next.extend(o.values()),
                (Step::Any, Value::Array(a)) => next.extend(a),
                _ => {}
            }
        }
        current = next;
    }
    current
}

impl Cond {
    /// Through a wildcard the condition holds when it holds for any selected value.
    fn holds(&self, root: &Value) -> bool {
        let selected = select(root, &self.selector);
        match &self.test {
            Test::NotExists => selected.is_empty(),
            Test::IsNull => selected.iter().any(|v| v.is_null()),
            Test::IsTrue => selected.iter().any(|v| v.as_bool() == Some(true)),
            Test::IsFalse => selected.iter().any(|v| v.as_bool() == Some(false)),
            Test::Compare(op, lit) => selected.iter().any(|v| match v {
                Value::String(s) => value::compare(*op, lit, Scalar::Text(s)),
                Value::Number(n) => value::compare(*op, lit, Scalar::Number(n)),
                _ => false,
            }),
        }
    }
}

impl JsonPattern {
    pub(crate) fn matches(&self, message: &str) -> bool {
        match serde_json::from_str::<Value>(message) {
            Ok(root @ Value::Object(_)) => self.expr.eval(&mut |c: &Cond| c.holds(&root)),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::PatternError;
    use crate::test_util::{err, m};

    /// The syntax page's "JSON log event", plus the old syntax page's `ThisFlag`.
    const EVENT: &str = r#"{
        "eventType": "UpdateTrail",
        "sourceIPAddress": "111.111.111.111",
        "arrayKey": ["value", "another value"],
        "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}],
        "SomeObject": null,
        "cluster.name": "c",
        "ThisFlag": true
    }"#;

    /// The syntax page's "JSON object" for compound expressions.
    const USERS: &str = r#"{
        "user": {"id": 1, "email": "John.Stiles@example.com"},
        "users": [
            {"id": 2, "email": "John.Doe@example.com"},
            {"id": 3, "email": "Jane.Doe@example.com"}
        ],
        "actions": ["GET", "PUT", "DELETE"],
        "coordinates": [[0, 1, 2], [4, 5, 6], [7, 8, 9]]
    }"#;

    #[test]
    fn selectors_on_their_own_pick_scalars() {
        use super::JsonSelector;
        let sel = JsonSelector::parse("$.objectList[1].id").unwrap();
        assert_eq!(sel.scalar_text(EVENT).as_deref(), Some("2"));
        let sel = JsonSelector::parse("$.['cluster.name']").unwrap();
        assert_eq!(sel.scalar_text(EVENT).as_deref(), Some("c"));
        assert_eq!(
            JsonSelector::parse("$.eventType")
                .unwrap()
                .scalar_text(EVENT)
                .as_deref(),
            Some("UpdateTrail")
        );
        // Objects, arrays and null are not values; nor is a non-JSON event.
        assert_eq!(
            JsonSelector::parse("$.SomeObject")
                .unwrap()
                .scalar_text(EVENT),
            None
        );
        assert_eq!(
            JsonSelector::parse("$.arrayKey")
                .unwrap()
                .scalar_text(EVENT),
            None
        );
        assert_eq!(
            JsonSelector::parse("$.a").unwrap().scalar_text("not json"),
            None
        );
        assert!(JsonSelector::parse("latency").is_err());
        assert!(JsonSelector::parse("$").is_err());
        assert!(JsonSelector::parse("$.a b").is_err());
    }

    #[test]
    fn documented_examples_on_the_json_event() {
        assert!(m(r#"{ $.eventType = "UpdateTrail" }"#, EVENT));
        assert!(m("{ $.sourceIPAddress != 123.123.* }", EVENT));
        assert!(m(r#"{ $.arrayKey[0] = "value" }"#, EVENT));
        assert!(m("{ $.eventType = %Trail% }", EVENT));
        assert!(m("{ $.arrayKey[*] = %val.{2}% }", EVENT));
        assert!(m(r"{ $.* = %111\.111\.111\.1[0-9]{1,2}% }", EVENT));
        assert!(m(r#"{ $.['cluster.name'] = "c" }"#, EVENT));
        assert!(m("{ $.SomeObject IS NULL }", EVENT));
        assert!(m("{ $.SomeOtherObject NOT EXISTS }", EVENT));
        // Old syntax page.
        assert!(m("{ $.objectList[1].id = 2 }", EVENT));
        assert!(m("{ $.ThisFlag IS TRUE }", EVENT));
    }

    #[test]
    fn documented_examples_negated() {
        assert!(!m(r#"{ $.eventType = "CreateTrail" }"#, EVENT));
        assert!(!m("{ $.sourceIPAddress != 111.111.* }", EVENT));
        assert!(!m(r#"{ $.arrayKey[1] = "value" }"#, EVENT));
        assert!(!m("{ $.eventType = %^Trail% }", EVENT));
        assert!(!m("{ $.objectList[1].id = 1 }", EVENT));
        assert!(!m("{ $.eventType IS NULL }", EVENT));
        // "This will only be true if the specified object is set to null": absent is not null.
        assert!(!m("{ $.Missing IS NULL }", EVENT));
        assert!(!m("{ $.SomeObject NOT EXISTS }", EVENT));
        assert!(!m("{ $.ThisFlag IS FALSE }", EVENT));
        assert!(!m("{ $.eventType IS TRUE }", EVENT));
        assert!(m(r#"{ $.ThisFlag IS FALSE }"#, r#"{"ThisFlag": false}"#));
    }

    #[test]
    fn or_pattern_matching() {
        // Old syntax page, "OR Pattern Matching".
        let bar = r#"{"foo": "bar"}"#;
        let baz = r#"{"foo": "baz"}"#;
        assert!(m("{$.foo = bar}", bar) && !m("{$.foo = bar}", baz));
        assert!(m("{$.foo = baz }", baz) && !m("{$.foo = baz }", bar));
        assert!(m("{$.foo = bar || $.foo = baz }", bar));
        assert!(m("{$.foo = bar || $.foo = baz }", baz));
        assert!(!m("{$.foo = bar || $.foo = baz }", r#"{"foo": "qux"}"#));
    }

    #[test]
    fn compound_expressions() {
        // Syntax page: two expressions that match and two that do not.
        assert!(m(
            r#"{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }"#,
            USERS
        ));
        assert!(m(
            r#"{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = "nonmatch" && $.actions[2] = "nonmatch" }"#,
            USERS
        ));
        assert!(!m(
            r#"{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = "nonmatch") && $.actions[2] = "nonmatch" }"#,
            USERS
        ));
        assert!(!m(
            r#"{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }"#,
            USERS
        ));
        // Old syntax page, unquoted values.
        assert!(m(
            r#"{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch && $.actions[2] = nomatch }"#,
            USERS
        ));
        assert!(m(
            "{ $.coordinates[1][2] = 6 && $.actions[2] = DELETE }",
            USERS
        ));
    }

    #[test]
    fn numeric_comparisons() {
        let e = r#"{"bandwidth": 80, "latency": 40, "refreshRate": 60, "responseTime": 5,
                    "errorCode": 400, "number": [1000, 0.0009], "averageRuntime": 55.5}"#;
        // Syntax page, "Writing filter patterns that match numeric values".
        for p in [
            "{ $.bandwidth > 75 }",
            "{ $.latency < 50 }",
            "{ $.refreshRate >= 60 }",
            "{ $.responseTime <= 5 }",
            "{ $.errorCode = 400}",
            "{ $.errorCode != 500 }",
            "{ $.number[0] = 1e+3 }",
            "{ $.number[0] != 1e-3 }",
            // Old syntax page.
            "{ $.number[1] < 10e-3 }",
            "{ $.number[0] < 10e3 }",
            "{ $.averageRuntime <= 55.5 }",
            "{ $.number[0] > +999 }",
            "{ $.errorCode = 4* }",
        ] {
            assert!(m(p, e), "{p}");
        }
        for p in [
            "{ $.bandwidth > 80 }",
            "{ $.latency >= 41 }",
            "{ $.errorCode != 400 }",
            "{ $.errorCode = 5* }",
            "{ $.number[1] > 10e-3 }",
        ] {
            assert!(!m(p, e), "{p}");
        }
    }

    #[test]
    fn numbers_held_as_strings_compare_as_numbers() {
        assert!(m("{ $.status >= 400 }", r#"{"status": "404"}"#));
        assert!(m("{ $.status = 404 }", r#"{"status": "404"}"#));
        assert!(!m("{ $.status > 400 }", r#"{"status": "n/a"}"#));
        assert!(m("{ $.status != 404 }", r#"{"status": "n/a"}"#));
    }

    #[test]
    fn wildcards_in_strings() {
        let e = r#"{"eventName": "PutEvent", "latency": 12}"#;
        assert!(m("{ $.eventName = *Event }", e));
        assert!(m(r#"{ $.eventName = "Put*" }"#, e));
        assert!(!m("{ $.eventName = Get* }", e));
        // Old syntax page, "metricFilter: { $.latency = * }".
        assert!(m("{ $.latency = * }", e));
        assert!(!m("{ $.missing = * }", e));
    }

    #[test]
    fn selectors_must_reach_strings_or_numbers() {
        // Old syntax page: "both {$.users = 1} and {$.users != 1} will fail to match a log
        // event where users is an array".
        let e = r#"{"users": [1, 2, 3], "obj": {"a": 1}, "n": null, "b": true}"#;
        for p in [
            "{$.users = 1}",
            "{$.users != 1}",
            "{$.obj != 1}",
            "{$.n != 1}",
            "{$.b = true}",
        ] {
            assert!(!m(p, e), "{p}");
        }
        // "If arrayKey is not an array this will be false."
        assert!(!m("{ $.obj[0] = 1 }", e));
        assert!(!m("{ $.missing != 1 }", e));
    }

    #[test]
    fn wildcard_selectors_match_any_element() {
        let e = r#"{"a": [{"id": 1}, {"id": 7}], "o": {"x": "p", "y": "q"}, "empty": []}"#;
        assert!(m("{ $.a[*].id = 7 }", e));
        assert!(!m("{ $.a[*].id = 9 }", e));
        assert!(m("{ $.o.* = q }", e));
        assert!(m("{ $.o[*] = p }", e));
        assert!(m("{ $.empty[*] NOT EXISTS }", e));
        assert!(!m("{ $.a[*] NOT EXISTS }", e));
    }

    #[test]
    fn bracket_notation() {
        let e = r#"{"a.b": {"c d": 1}, "detail-type": "Scheduled Event", "@t": "x"}"#;
        assert!(m("{ $.['a.b'][\"c d\"] = 1 }", e));
        assert!(m("{ $['a.b'].['c d'] = 1 }", e));
        assert!(m("{ $.['@t'] = x }", e));
        // Hyphens need no brackets.
        assert!(m(r#"{ $.detail-type = "Scheduled Event" }"#, e));
    }

    #[test]
    fn operators_need_no_spaces() {
        // jorgebastida/awslogs#210 used this form against the service.
        let e = r#"{"kubernetes": {"namespace_name": "abc", "container_name": "def"}}"#;
        assert!(m(
            r#"{$.kubernetes.namespace_name="abc" && $.kubernetes.container_name="def"}"#,
            e
        ));
        assert!(m(
            "{$.kubernetes.namespace_name!=x&&($.kubernetes.container_name=def)}",
            e
        ));
    }

    #[test]
    fn keywords_ignore_case() {
        assert!(m("{ $.n is null }", r#"{"n": null}"#));
        assert!(m("{ $.x not exists }", r#"{"n": null}"#));
    }

    #[test]
    fn non_json_events_never_match() {
        for e in [
            "ERROR not json",
            "",
            "[1, 2]",
            "\"s\"",
            "{\"a\": 1",
            "{'a': 1}",
        ] {
            assert!(!m("{ $.a NOT EXISTS }", e), "{e:?}");
            assert!(!m("{ $.a != 1 }", e), "{e:?}");
        }
    }

    #[test]
    fn unsupported_and_malformed_patterns_are_refused() {
        // "The variables IS NOT and EXISTS currently aren't supported."
        for p in [
            "{ $.a IS NOT NULL }",
            "{ $.a EXISTS }",
            "{ $.a IS }",
            "{ $.a NOT NULL }",
            "{ }",
            "{ $.a }",
            "{ $.a = }",
            "{ $.a == 1 }",
            "{ $ = 1 }",
            "{ $. = 1 }",
            "{ $.a[x] = 1 }",
            "{ $.a[ = 1 }",
            "{ $.a > abc }",
            "{ $.a > %1% }",
            "{ $.a = 1 $.b = 2 }",
            "{ ($.a = 1 }",
            "{ $.a = 1 && }",
            // aws/aws-cdk#15047: a property without `$.`.
            r#"{ status = "401" }"#,
        ] {
            assert!(matches!(err(p), PatternError::Invalid { .. }), "{p}");
        }
    }

    #[test]
    fn unquoted_symbols_are_refused() {
        // "Strings that have unicode and other characters such as '@', '$', '\' etc. must be
        // enclosed in double quotes to be valid."
        assert_eq!(
            err("{ $.a = x@y }"),
            PatternError::InvalidCharacters("@".into())
        );
        assert_eq!(
            err("{ $.a = /api }"),
            PatternError::InvalidCharacters("/".into())
        );
        assert_eq!(
            err("{ $.a = caf\u{e9} }"),
            PatternError::InvalidCharacters("\u{e9}".into())
        );
        assert!(m(r#"{ $.a = "x@y" }"#, r#"{"a": "x@y"}"#));
        assert!(m("{ $.a = \"caf\u{e9}\" }", "{\"a\": \"caf\u{e9}\"}"));
        // The service's answer for a quoted property name (a report against filter-log-events).
        assert_eq!(
            err(r#"{ $."sc-status" = 5* }"#),
            PatternError::InvalidCharacters("$.\"".into())
        );
    }

    #[test]
    fn quotas() {
        assert!(matches!(
            err("{ $.a[*].b[*] = 1 }"),
            PatternError::Invalid { .. }
        ));
        assert!(m(
            "{ $.a[*] = 1 || $.b[*] = 1 || $.c.* = 1 }",
            r#"{"c": {"x": 1}}"#
        ));
        assert!(
            err("{ $.a[*] = 1 || $.b[*] = 1 || $.c.* = 1 || $.d[*] = 1 }")
                .to_string()
                .contains("Invalid filter pattern")
        );
        assert!(m("{ $.a = %x% || $.b = %y% }", r#"{"b": "y"}"#));
        assert!(matches!(
            err("{ $.a = %x% || $.b = %y% || $.c = %z% }"),
            PatternError::Invalid { .. }
        ));
    }
}
