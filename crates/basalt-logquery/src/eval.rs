//! Evaluating expressions against a row. Evaluation never fails: what cannot be computed (a
//! missing field, text where a number is needed, division by zero) is absent, and a comparison
//! with an absent side is false, so `filter` drops the row.

use crate::ast::{BinOp, Expr, Func, Pattern};
use crate::row::Row;
use crate::time::Period;
use crate::value::{Value, f64_to_i64, loose_cmp, loose_eq, natural_cmp};

/// Evaluates `e` on `row`; `aggs` holds the aggregate results `Expr::Agg` refers to.
pub(crate) fn eval(e: &Expr, row: &Row, aggs: &[Value]) -> Value {
    match e {
        Expr::Field(name) => row.get(name).clone(),
        Expr::Str(s) => Value::Str(s.clone()),
        Expr::Num(n) => Value::num(*n),
        // A period only has meaning to the time functions, which read it themselves.
        Expr::Period(_) => Value::Null,
        Expr::Agg(i) => aggs.get(*i).cloned().unwrap_or(Value::Null),
        Expr::Neg(inner) => match eval(inner, row, aggs).as_num() {
            Some(n) => Value::num(-n),
            None => Value::Null,
        },
        Expr::Not(inner) => Value::Bool(!eval(inner, row, aggs).truthy()),
        Expr::Binary(op, l, r) => binary(*op, l, r, row, aggs),
        Expr::Like {
            expr,
            pattern,
            negated,
        } => {
            let v = eval(expr, row, aggs);
            let Some(text) = v.text() else {
                return Value::Bool(false);
            };
            let found = match pattern {
                Pattern::Regex(re) => re.is_match(&text),
                Pattern::Substring(s) => text.contains(s.as_str()),
            };
            Value::Bool(found != *negated)
        }
        Expr::In {
            expr,
            list,
            negated,
        } => {
            let v = eval(expr, row, aggs);
            if v.is_null() {
                return Value::Bool(false);
            }
            let found = list
                .iter()
                .any(|item| loose_eq(&v, &eval(item, row, aggs)) == Some(true));
            Value::Bool(found != *negated)
        }
        Expr::Call(func, args) => call(*func, args, row, aggs),
    }
}

fn binary(op: BinOp, l: &Expr, r: &Expr, row: &Row, aggs: &[Value]) -> Value {
    match op {
        BinOp::And => {
            return Value::Bool(eval(l, row, aggs).truthy() && eval(r, row, aggs).truthy());
        }
        BinOp::Or => {
            return Value::Bool(eval(l, row, aggs).truthy() || eval(r, row, aggs).truthy());
        }
        _ => {}
    }
    let a = eval(l, row, aggs);
    let b = eval(r, row, aggs);
    let compared =
        |f: fn(std::cmp::Ordering) -> bool| Value::Bool(loose_cmp(&a, &b).is_some_and(f));
    match op {
        BinOp::Eq => Value::Bool(loose_eq(&a, &b) == Some(true)),
        BinOp::Ne => Value::Bool(loose_eq(&a, &b) == Some(false)),
        BinOp::Lt => compared(std::cmp::Ordering::is_lt),
        BinOp::Le => compared(std::cmp::Ordering::is_le),
        BinOp::Gt => compared(std::cmp::Ordering::is_gt),
        BinOp::Ge => compared(std::cmp::Ordering::is_ge),
        _ => {
            let (Some(x), Some(y)) = (a.as_num(), b.as_num()) else {
                return Value::Null;
            };
            match op {
                BinOp::Add => Value::num(x + y),
                BinOp::Sub => Value::num(x - y),
                BinOp::Mul => Value::num(x * y),
                BinOp::Div if y != 0.0 => Value::num(x / y),
                BinOp::Rem if y != 0.0 => Value::num(x % y),
                BinOp::Pow => Value::num(x.powf(y)),
                _ => Value::Null,
            }
        }
    }
}

fn text_arg(args: &[Expr], i: usize, row: &Row, aggs: &[Value]) -> Option<String> {
    args.get(i)
        .map(|a| eval(a, row, aggs))
        .and_then(|v| v.text().map(|t| t.into_owned()))
}

fn num_arg(args: &[Expr], i: usize, row: &Row, aggs: &[Value]) -> Option<f64> {
    args.get(i).and_then(|a| eval(a, row, aggs).as_num())
}

fn period_arg(args: &[Expr], i: usize) -> Option<Period> {
    match args.get(i) {
        Some(Expr::Period(p)) => Some(*p),
        _ => None,
    }
}

fn call(func: Func, args: &[Expr], row: &Row, aggs: &[Value]) -> Value {
    let text = |i| text_arg(args, i, row, aggs);
    let num = |i| num_arg(args, i, row, aggs);
    let str_fn = |f: &dyn Fn(String) -> Value| text(0).map_or(Value::Null, f);
    let num_fn = |f: fn(f64) -> f64| num(0).map_or(Value::Null, |n| Value::num(f(n)));
    match func {
        // "Returns the length of the string in Unicode code points."
        #[allow(clippy::cast_precision_loss)]
        Func::Strlen => str_fn(&|s| Value::Num(s.chars().count() as f64)),
        Func::Toupper => str_fn(&|s| Value::Str(s.to_uppercase())),
        Func::Tolower => str_fn(&|s| Value::Str(s.to_lowercase())),
        Func::Concat => {
            let parts: Vec<Value> = args.iter().map(|a| eval(a, row, aggs)).collect();
            if parts.iter().all(Value::is_null) {
                return Value::Null;
            }
            Value::Str(
                parts
                    .iter()
                    .filter_map(|v| v.text().map(|t| t.into_owned()))
                    .collect(),
            )
        }
        Func::Trim | Func::Ltrim | Func::Rtrim => {
            let Some(s) = text(0) else {
                return Value::Null;
            };
            let set: Option<Vec<char>> = if args.len() > 1 {
                match text(1) {
                    Some(t) => Some(t.chars().collect()),
                    None => return Value::Null,
                }
            } else {
                None
            };
            let strip = |c: char| {
                set.as_ref()
                    .map_or(c.is_whitespace(), |set| set.contains(&c))
            };
            Value::Str(
                match func {
                    Func::Ltrim => s.trim_start_matches(strip),
                    Func::Rtrim => s.trim_end_matches(strip),
                    _ => s.trim_matches(strip),
                }
                .to_string(),
            )
        }
        Func::Substr => substr(text(0), num(1), args.get(2).map(|_| num(2))),
        Func::Replace => match (text(0), text(1), text(2)) {
            (Some(s), Some(from), Some(to)) if !from.is_empty() => {
                Value::Str(s.replace(from.as_str(), &to))
            }
            (Some(s), Some(_), Some(_)) => Value::Str(s),
            _ => Value::Null,
        },
        // "Returns 1 if string1 contains string2 and 0 otherwise."
        Func::Strcontains => match (text(0), text(1)) {
            (Some(s), Some(sub)) => Value::Num(if s.contains(sub.as_str()) { 1.0 } else { 0.0 }),
            _ => Value::Null,
        },
        Func::Abs => num_fn(f64::abs),
        Func::Ceil => num_fn(f64::ceil),
        Func::Floor => num_fn(f64::floor),
        Func::Sqrt => num_fn(f64::sqrt),
        Func::Log => num_fn(f64::ln),
        Func::Round => {
            let Some(x) = num(0) else {
                return Value::Null;
            };
            let digits = if args.len() > 1 { num(1) } else { Some(0.0) };
            match digits.and_then(f64_to_i64) {
                Some(0) => Value::num(x.round()),
                Some(d) => {
                    let scale = 10f64.powi(i32::try_from(d.clamp(-300, 300)).unwrap_or(0));
                    Value::num((x * scale).round() / scale)
                }
                None => Value::Null,
            }
        }
        Func::Greatest | Func::Least => args
            .iter()
            .map(|a| eval(a, row, aggs))
            .filter(|v| !v.is_null())
            .reduce(|best, v| {
                let ord = natural_cmp(&v, &best);
                let better = if func == Func::Greatest {
                    ord.is_gt()
                } else {
                    ord.is_lt()
                };
                if better { v } else { best }
            })
            .unwrap_or(Value::Null),
        Func::Ispresent => Value::Bool(args.first().is_some_and(|a| !eval(a, row, aggs).is_null())),
        Func::Isempty => Value::Bool(text(0).is_none_or(|s| s.is_empty())),
        Func::Isblank => Value::Bool(text(0).is_none_or(|s| s.trim().is_empty())),
        Func::Coalesce => args
            .iter()
            .map(|a| eval(a, row, aggs))
            .find(|v| !v.is_null())
            .unwrap_or(Value::Null),
        // "Rounds the value of @timestamp to the given period and then truncates."
        Func::Bin => match (row.get("@timestamp").as_time(), period_arg(args, 0)) {
            (Some(t), Some(p)) => p.floor(t).map_or(Value::Null, Value::Time),
            _ => Value::Null,
        },
        Func::Datefloor | Func::Dateceil => {
            let t = args.first().and_then(|a| eval(a, row, aggs).as_time());
            match (t, period_arg(args, 1)) {
                (Some(t), Some(p)) => {
                    let r = if func == Func::Datefloor {
                        p.floor(t)
                    } else {
                        p.ceil(t)
                    };
                    r.map_or(Value::Null, Value::Time)
                }
                _ => Value::Null,
            }
        }
        // "Interprets the input field as the number of milliseconds since the Unix epoch and
        // converts it to a timestamp."
        Func::FromMillis => num(0)
            .map(f64::trunc)
            .and_then(f64_to_i64)
            .map_or(Value::Null, Value::Time),
        #[allow(clippy::cast_precision_loss)]
        Func::ToMillis => match args.first().map(|a| eval(a, row, aggs)) {
            Some(v) => v.as_time().map_or(Value::Null, |ms| Value::Num(ms as f64)),
            None => Value::Null,
        },
    }
}

/// `substr(s, start[, length])`, counted in characters from 0: the docs' example
/// `substr("xyZfooxyZ", 3, 3)` is `"foo"`. Indexes past either end are clamped.
fn substr(s: Option<String>, start: Option<f64>, len: Option<Option<f64>>) -> Value {
    let (Some(s), Some(start)) = (s, start) else {
        return Value::Null;
    };
    let clamp = |f: f64| -> usize {
        if f <= 0.0 {
            0
        } else {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let n = f.min(1e15) as usize;
            n
        }
    };
    let start = clamp(start.trunc());
    let chars = s.chars().skip(start);
    Value::Str(match len {
        None => chars.collect(),
        Some(Some(n)) => chars.take(clamp(n.trunc())).collect(),
        Some(None) => return Value::Null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::Command;

    /// Evaluates `fields <expr>` against a row with the given fields.
    fn ev(expr: &str, fields: &[(&str, Value)]) -> Value {
        let cmds = crate::parser::parse(&format!("fields {expr}"))
            .unwrap_or_else(|e| panic!("{expr:?}: {e}"));
        let Command::Fields(items) = &cmds[0] else {
            panic!()
        };
        let mut row = Row::default();
        for (k, v) in fields {
            row.set(k, v.clone());
        }
        eval(&items[0].expr, &row, &[])
    }

    fn s(x: &str) -> Value {
        Value::Str(x.to_string())
    }

    fn r(expr: &str) -> Option<String> {
        ev(expr, &[]).render()
    }

    #[test]
    fn examples_from_the_functions_page() {
        // https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax-operations-functions.html
        assert_eq!(r("2 ^ 3").as_deref(), Some("8"));
        assert_eq!(r("10 % 3").as_deref(), Some("1"));
        assert_eq!(r("ltrim(\"xyZfooxyZ\",\"xyZ\")").as_deref(), Some("fooxyZ"));
        assert_eq!(r("rtrim(\"xyZfooxyZ\",\"xyZ\")").as_deref(), Some("xyZfoo"));
        assert_eq!(r("trim(\"xyZfooxyZ\",\"xyZ\")").as_deref(), Some("foo"));
        assert_eq!(r("substr(\"xyZfooxyZ\",3, 3)").as_deref(), Some("foo"));
        assert_eq!(r("replace(\"foo\",\"o\",\"0\")").as_deref(), Some("f00"));
        assert_eq!(r("strcontains(\"foo\",\"oo\")").as_deref(), Some("1"));
        assert_eq!(r("strcontains(\"foo\",\"x\")").as_deref(), Some("0"));
    }

    #[test]
    fn string_functions() {
        assert_eq!(r("strlen(\"héllo\")").as_deref(), Some("5"));
        assert_eq!(r("toupper(\"abc\")").as_deref(), Some("ABC"));
        assert_eq!(r("tolower(\"ABC\")").as_deref(), Some("abc"));
        assert_eq!(r("trim(\"  a b \")").as_deref(), Some("a b"));
        assert_eq!(r("substr(\"abc\", 1)").as_deref(), Some("bc"));
        assert_eq!(r("substr(\"abc\", -5, 99)").as_deref(), Some("abc"));
        assert_eq!(r("substr(\"abc\", 9)").as_deref(), Some(""));
        assert_eq!(
            ev(
                "concat(a, \"-\", b, missing)",
                &[("a", s("x")), ("b", Value::Num(2.0))]
            ),
            s("x-2")
        );
        assert_eq!(ev("concat(m1, m2)", &[]), Value::Null);
        assert_eq!(ev("strlen(missing)", &[]), Value::Null);
    }

    #[test]
    fn numeric_functions() {
        assert_eq!(r("abs(3 - 5)").as_deref(), Some("2"));
        assert_eq!(r("ceil(1.2)").as_deref(), Some("2"));
        assert_eq!(r("floor(-1.2)").as_deref(), Some("-2"));
        assert_eq!(r("round(2.5)").as_deref(), Some("3"));
        assert_eq!(r("round(3.14159, 2)").as_deref(), Some("3.14"));
        assert_eq!(r("greatest(1, 7, 3)").as_deref(), Some("7"));
        assert_eq!(r("least(4, 2, 9)").as_deref(), Some("2"));
        assert_eq!(r("sqrt(16)").as_deref(), Some("4"));
        assert_eq!(r("sqrt(-1)"), None);
        assert_eq!(r("log(1)").as_deref(), Some("0"));
        assert_eq!(r("1 / 0"), None);
        assert_eq!(r("1 % 0"), None);
        assert_eq!(r("7 / 2").as_deref(), Some("3.5"));
        assert_eq!(ev("a + 1", &[("a", s("41"))]), Value::Num(42.0));
        assert_eq!(ev("a + 1", &[("a", s("x"))]), Value::Null);
        assert_eq!(ev("-a", &[("a", s("3"))]), Value::Num(-3.0));
    }

    #[test]
    fn general_functions() {
        let f = [("e", s("")), ("b", s("  ")), ("x", s("v"))];
        assert_eq!(ev("ispresent(x)", &f), Value::Bool(true));
        assert_eq!(ev("ispresent(nope)", &f), Value::Bool(false));
        assert_eq!(ev("isempty(e)", &f), Value::Bool(true));
        assert_eq!(ev("isempty(nope)", &f), Value::Bool(true));
        assert_eq!(ev("isempty(b)", &f), Value::Bool(false));
        assert_eq!(ev("isblank(b)", &f), Value::Bool(true));
        assert_eq!(ev("isblank(x)", &f), Value::Bool(false));
        assert_eq!(ev("coalesce(nope, e, x)", &f), s(""));
        assert_eq!(ev("coalesce(nope, x)", &f), s("v"));
    }

    #[test]
    fn time_functions() {
        let t = [("@timestamp", Value::Time(1_704_164_645_678))];
        assert_eq!(
            ev("bin(5m)", &t).render().unwrap(),
            "2024-01-02 03:00:00.000"
        );
        assert_eq!(
            ev("datefloor(@timestamp, 1h)", &t).render().unwrap(),
            "2024-01-02 03:00:00.000"
        );
        assert_eq!(
            ev("dateceil(@timestamp, 1h)", &t).render().unwrap(),
            "2024-01-02 04:00:00.000"
        );
        // The toMillis example on the functions page: 2022-01-14T13:18:031.000-08:00.
        assert_eq!(
            ev("toMillis(fromMillis(1642195111000))", &[]),
            Value::Num(1_642_195_111_000.0)
        );
        assert_eq!(
            r("fromMillis(1642195111000)").as_deref(),
            Some("2022-01-14 21:18:31.000")
        );
        assert_eq!(
            ev("toMillis(@timestamp)", &t),
            Value::Num(1_704_164_645_678.0)
        );
        assert_eq!(ev("bin(1h)", &[]), Value::Null);
        assert_eq!(r("fromMillis(99999999999999999999)"), None);
    }

    #[test]
    fn comparisons_and_logic() {
        let f = [("statusCode", s("204")), ("f1", s("Exception: x"))];
        assert_eq!(ev("statusCode = 204", &f), Value::Bool(true));
        assert_eq!(ev("statusCode != \"204\"", &f), Value::Bool(false));
        assert_eq!(
            ev("statusCode >= 200 and statusCode < 300", &f),
            Value::Bool(true)
        );
        assert_eq!(ev("statusCode like /2\\d\\d/", &f), Value::Bool(true));
        assert_eq!(ev("statusCode in [200, 204]", &f), Value::Bool(true));
        assert_eq!(ev("statusCode not in [200, 204]", &f), Value::Bool(false));
        assert_eq!(ev("f1 like \"Exception\"", &f), Value::Bool(true));
        assert_eq!(ev("f1 like /(?i)exception/", &f), Value::Bool(true));
        assert_eq!(ev("f1 =~ /^(?i)Exception$/", &f), Value::Bool(false));
        assert_eq!(ev("f1 not like /x$/", &f), Value::Bool(false));
        // Absent fields satisfy no comparison, negated ones included.
        assert_eq!(ev("nope = 1", &f), Value::Bool(false));
        assert_eq!(ev("nope != 1", &f), Value::Bool(false));
        assert_eq!(ev("nope not like /a/", &f), Value::Bool(false));
        assert_eq!(ev("nope not in [1]", &f), Value::Bool(false));
        assert_eq!(ev("not ispresent(nope) or nope", &f), Value::Bool(true));
    }
}
