//! Metric math: the expression language of GetMetricData and metric-math alarms.
//!
//! Values are scalars, time series, arrays of time series (`METRICS()`) or strings (function
//! arguments). Arithmetic between two series keeps the timestamps both have; between a
//! series and a scalar, every point. Supported: `+ - * / ^`, comparisons (`== != < <= > >=`),
//! `AND`/`&&`, `OR`/`||`, and the functions `ABS`, `AVG`, `CEIL`, `DIFF`, `DIFF_TIME`, `EXP`,
//! `FILL`, `FIRST`, `FLOOR`, `IF`, `LAST`, `LOG`, `LOG10`, `MAX`, `METRICS`, `MIN`, `PERIOD`,
//! `RATE`, `RUNNING_SUM`, `SEARCH` (through [`Env::search`]), `STDDEV`, `SUM`, `TIME_SERIES`.

use std::collections::BTreeMap;

/// One time series: points by timestamp (ms), and the period it was computed at (s).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    pub label: String,
    pub period: i64,
    pub points: BTreeMap<i64, f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Scalar(f64),
    Series(Series),
    Array(Vec<Series>),
    Str(String),
}

/// What an expression refers to: other queries' values and the time grid.
pub(crate) trait Env {
    /// The value of query `id` (a metric or another expression).
    fn lookup(&mut self, id: &str) -> Result<Val, String>;
    /// The series of every metric query (`METRICS()`).
    fn metrics(&mut self) -> Result<Vec<Series>, String>;
    /// Timestamps (ms) of the request's periods, for `FILL` and scalar results.
    fn grid(&self) -> Vec<i64>;
    fn period(&self) -> i64;
    /// The series of every metric a `SEARCH` query finds, at `stat` and `period` seconds
    /// (the request's period when absent).
    fn search(
        &mut self,
        _query: &str,
        _stat: &str,
        _period: Option<i64>,
    ) -> Result<Vec<Series>, String> {
        Err("SEARCH is not available here".into())
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Ident(String),
    Str(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                i += 1;
                if i < chars.len() && (chars[i] == '+' || chars[i] == '-') {
                    i += 1;
                }
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let text: String = chars[start..i].iter().collect();
            out.push(Tok::Num(
                text.parse().map_err(|_| format!("invalid number {text}"))?,
            ));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            match word.as_str() {
                "AND" => out.push(Tok::Op("&&")),
                "OR" => out.push(Tok::Op("||")),
                _ => out.push(Tok::Ident(word)),
            }
        } else if c == '"' || c == '\'' {
            let mut j = i + 1;
            let mut text = String::new();
            while j < chars.len() && chars[j] != c {
                // `\'` is the quote itself; other escapes stay for the function that reads
                // the string (SEARCH's exact matches escape `" \ ( )`).
                if chars[j] == '\\' && j + 1 < chars.len() {
                    if chars[j + 1] != c {
                        text.push('\\');
                    }
                    j += 1;
                }
                text.push(chars[j]);
                j += 1;
            }
            if j >= chars.len() {
                return Err("unterminated string".into());
            }
            out.push(Tok::Str(text));
            i = j + 1;
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let op2 = ["==", "!=", "<=", ">=", "&&", "||"]
                .into_iter()
                .find(|o| *o == two);
            if let Some(op) = op2 {
                out.push(Tok::Op(op));
                i += 2;
                continue;
            }
            out.push(match c {
                '(' => Tok::LParen,
                ')' => Tok::RParen,
                ',' => Tok::Comma,
                '+' => Tok::Op("+"),
                '-' => Tok::Op("-"),
                '*' => Tok::Op("*"),
                '/' => Tok::Op("/"),
                '^' => Tok::Op("^"),
                '<' => Tok::Op("<"),
                '>' => Tok::Op(">"),
                _ => return Err(format!("unexpected character '{c}'")),
            });
            i += 1;
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Num(f64),
    Str(String),
    Id(String),
    Neg(Box<Expr>),
    Bin(&'static str, Box<Expr>, Box<Expr>),
    Call(String, Vec<Expr>),
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn binary(
        &mut self,
        ops: &[&'static str],
        sub: fn(&mut Parser) -> Result<Expr, String>,
    ) -> Result<Expr, String> {
        let mut left = sub(self)?;
        while let Some(Tok::Op(op)) = self.peek() {
            let Some(op) = ops.iter().find(|o| *o == op).copied() else {
                break;
            };
            self.pos += 1;
            let right = sub(self)?;
            left = Expr::Bin(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn or(&mut self) -> Result<Expr, String> {
        self.binary(&["||"], Parser::and)
    }
    fn and(&mut self) -> Result<Expr, String> {
        self.binary(&["&&"], Parser::cmp)
    }
    fn cmp(&mut self) -> Result<Expr, String> {
        self.binary(&["==", "!=", "<", "<=", ">", ">="], Parser::add)
    }
    fn add(&mut self) -> Result<Expr, String> {
        self.binary(&["+", "-"], Parser::mul)
    }
    fn mul(&mut self) -> Result<Expr, String> {
        self.binary(&["*", "/"], Parser::pow)
    }
    fn pow(&mut self) -> Result<Expr, String> {
        let base = self.unary()?;
        if self.peek() == Some(&Tok::Op("^")) {
            self.pos += 1;
            let exp = self.pow()?;
            return Ok(Expr::Bin("^", Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }
    fn unary(&mut self) -> Result<Expr, String> {
        if self.peek() == Some(&Tok::Op("-")) {
            self.pos += 1;
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        self.primary()
    }
    fn primary(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Tok::Num(n)) => Ok(Expr::Num(n)),
            Some(Tok::Str(s)) => Ok(Expr::Str(s)),
            Some(Tok::LParen) => {
                let e = self.or()?;
                match self.next() {
                    Some(Tok::RParen) => Ok(e),
                    _ => Err("missing closing parenthesis".into()),
                }
            }
            Some(Tok::Ident(name)) => {
                if self.peek() != Some(&Tok::LParen) {
                    return Ok(Expr::Id(name));
                }
                self.pos += 1;
                let mut args = Vec::new();
                if self.peek() == Some(&Tok::RParen) {
                    self.pos += 1;
                    return Ok(Expr::Call(name.to_ascii_uppercase(), args));
                }
                loop {
                    args.push(self.or()?);
                    match self.next() {
                        Some(Tok::Comma) => continue,
                        Some(Tok::RParen) => break,
                        _ => return Err(format!("missing closing parenthesis after {name}(")),
                    }
                }
                Ok(Expr::Call(name.to_ascii_uppercase(), args))
            }
            Some(t) => Err(format!("unexpected token {t:?}")),
            None => Err("unexpected end of expression".into()),
        }
    }
}

pub(crate) fn parse(s: &str) -> Result<Expr, String> {
    let mut p = Parser {
        toks: lex(s)?,
        pos: 0,
    };
    let e = p.or()?;
    if p.pos < p.toks.len() {
        return Err(format!("unexpected token {:?}", p.toks[p.pos]));
    }
    Ok(e)
}

/// The ids an expression refers to.
pub(crate) fn references(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::Id(id) => out.push(id.clone()),
        Expr::Neg(x) => references(x, out),
        Expr::Bin(_, a, b) => {
            references(a, out);
            references(b, out);
        }
        Expr::Call(_, args) => args.iter().for_each(|a| references(a, out)),
        Expr::Num(_) | Expr::Str(_) => {}
    }
}

fn apply(op: &str, a: f64, b: f64) -> f64 {
    let t = |c: bool| if c { 1.0 } else { 0.0 };
    match op {
        "+" => a + b,
        "-" => a - b,
        "*" => a * b,
        "/" => a / b,
        "^" => a.powf(b),
        "==" => t(a == b),
        "!=" => t(a != b),
        "<" => t(a < b),
        "<=" => t(a <= b),
        ">" => t(a > b),
        ">=" => t(a >= b),
        "&&" => t(a != 0.0 && b != 0.0),
        "||" => t(a != 0.0 || b != 0.0),
        _ => f64::NAN,
    }
}

fn map_series(s: &Series, f: impl Fn(f64) -> f64) -> Series {
    Series {
        label: s.label.clone(),
        period: s.period,
        points: s
            .points
            .iter()
            .map(|(t, v)| (*t, f(*v)))
            .filter(|(_, v)| v.is_finite())
            .collect(),
    }
}

fn zip(a: &Series, b: &Series, op: &str) -> Series {
    Series {
        label: a.label.clone(),
        period: a.period.min(b.period),
        points: a
            .points
            .iter()
            .filter_map(|(t, x)| b.points.get(t).map(|y| (*t, apply(op, *x, *y))))
            .filter(|(_, v)| v.is_finite())
            .collect(),
    }
}

fn binop(op: &'static str, a: Val, b: Val) -> Result<Val, String> {
    use Val::*;
    Ok(match (a, b) {
        (Scalar(x), Scalar(y)) => Scalar(apply(op, x, y)),
        (Series(s), Scalar(y)) => Series(map_series(&s, |x| apply(op, x, y))),
        (Scalar(x), Series(s)) => Series(map_series(&s, |y| apply(op, x, y))),
        (Series(a), Series(b)) => Series(zip(&a, &b, op)),
        (Array(v), Scalar(y)) => Array(
            v.iter()
                .map(|s| map_series(s, |x| apply(op, x, y)))
                .collect(),
        ),
        (Scalar(x), Array(v)) => Array(
            v.iter()
                .map(|s| map_series(s, |y| apply(op, x, y)))
                .collect(),
        ),
        (Array(v), Series(b)) => Array(v.iter().map(|s| zip(s, &b, op)).collect()),
        (Series(a), Array(v)) => Array(v.iter().map(|s| zip(&a, s, op)).collect()),
        (Array(_), Array(_)) => {
            return Err("arithmetic between two arrays of time series is not supported".into());
        }
        (Str(_), _) | (_, Str(_)) => return Err("a string cannot be used in arithmetic".into()),
    })
}

/// Aggregates `values` with `f` (SUM, AVG, MIN, MAX, STDDEV).
fn reduce(name: &str, values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let sum: f64 = values.iter().sum();
    Some(match name {
        "SUM" => sum,
        "AVG" => sum / n,
        "MIN" => values.iter().copied().fold(f64::INFINITY, f64::min),
        "MAX" => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        "STDDEV" => {
            let mean = sum / n;
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt()
        }
        _ => return None,
    })
}

fn one_series(v: Val, f: &str) -> Result<Series, String> {
    match v {
        Val::Series(s) => Ok(s),
        _ => Err(format!("{f} expects a time series")),
    }
}

/// Applies `f` to a series, or to each series of an array.
fn each(v: Val, name: &str, f: impl Fn(&Series) -> Series) -> Result<Val, String> {
    match v {
        Val::Series(s) => Ok(Val::Series(f(&s))),
        Val::Array(a) => Ok(Val::Array(a.iter().map(f).collect())),
        Val::Scalar(x) if matches!(name, "ABS" | "CEIL" | "FLOOR" | "LOG" | "LOG10" | "EXP") => {
            let s = Series {
                label: String::new(),
                period: 0,
                points: BTreeMap::from([(0, x)]),
            };
            Ok(Val::Scalar(
                f(&s).points.get(&0).copied().unwrap_or(f64::NAN),
            ))
        }
        _ => Err(format!("{name} expects a time series")),
    }
}

pub(crate) fn eval(e: &Expr, env: &mut dyn Env) -> Result<Val, String> {
    match e {
        Expr::Num(n) => Ok(Val::Scalar(*n)),
        Expr::Str(s) => Ok(Val::Str(s.clone())),
        Expr::Id(id) => env.lookup(id),
        Expr::Neg(x) => binop("*", eval(x, env)?, Val::Scalar(-1.0)),
        Expr::Bin(op, a, b) => {
            let a = eval(a, env)?;
            let b = eval(b, env)?;
            binop(op, a, b)
        }
        Expr::Call(name, args) => call(name, args, env),
    }
}

fn arity(name: &str, args: &[Expr], n: std::ops::RangeInclusive<usize>) -> Result<(), String> {
    if n.contains(&args.len()) {
        Ok(())
    } else {
        Err(format!("wrong number of arguments to {name}"))
    }
}

fn call(name: &str, args: &[Expr], env: &mut dyn Env) -> Result<Val, String> {
    match name {
        "METRICS" => {
            arity(name, args, 0..=1)?;
            let filter = match args.first() {
                Some(a) => match eval(a, env)? {
                    Val::Str(s) => Some(s),
                    _ => return Err("METRICS expects a string".into()),
                },
                None => None,
            };
            let all = env.metrics()?;
            Ok(Val::Array(
                all.into_iter()
                    .filter(|s| filter.as_ref().is_none_or(|f| s.label.contains(f.as_str())))
                    .collect(),
            ))
        }
        "SEARCH" => {
            arity(name, args, 2..=3)?;
            let (Expr::Str(query), Expr::Str(stat)) = (&args[0], &args[1]) else {
                return Err("SEARCH expects a query and a statistic in single quotes".into());
            };
            let period = match args.get(2) {
                Some(Expr::Num(p)) => Some(*p as i64),
                Some(_) => return Err("the period of SEARCH must be a number".into()),
                None => None,
            };
            Ok(Val::Array(env.search(query, stat, period)?))
        }
        "SUM" | "AVG" | "MIN" | "MAX" | "STDDEV" => {
            arity(name, args, 1..=usize::MAX)?;
            let mut series = Vec::new();
            for a in args {
                match eval(a, env)? {
                    Val::Array(v) => series.extend(v),
                    Val::Series(s) if args.len() > 1 => series.push(s),
                    // One series: the statistic of all its points, a scalar.
                    Val::Series(s) => {
                        let values: Vec<f64> = s.points.values().copied().collect();
                        return Ok(Val::Scalar(reduce(name, &values).unwrap_or(f64::NAN)));
                    }
                    Val::Scalar(x) => return Ok(Val::Scalar(x)),
                    Val::Str(_) => return Err(format!("{name} expects time series")),
                }
            }
            let mut by_time: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
            for s in &series {
                for (t, v) in &s.points {
                    by_time.entry(*t).or_default().push(*v);
                }
            }
            Ok(Val::Series(Series {
                label: String::new(),
                period: series
                    .iter()
                    .map(|s| s.period)
                    .min()
                    .unwrap_or(env.period()),
                points: by_time
                    .into_iter()
                    .filter_map(|(t, vs)| reduce(name, &vs).map(|v| (t, v)))
                    .collect(),
            }))
        }
        "ABS" | "CEIL" | "FLOOR" | "LOG" | "LOG10" | "EXP" => {
            arity(name, args, 1..=1)?;
            let f: fn(f64) -> f64 = match name {
                "ABS" => f64::abs,
                "CEIL" => f64::ceil,
                "FLOOR" => f64::floor,
                "LOG" => f64::ln,
                "LOG10" => f64::log10,
                _ => f64::exp,
            };
            let v = eval(&args[0], env)?;
            each(v, name, |s| map_series(s, f))
        }
        "RATE" | "DIFF" | "DIFF_TIME" => {
            arity(name, args, 1..=1)?;
            let v = eval(&args[0], env)?;
            each(v, name, |s| {
                let mut points = BTreeMap::new();
                let mut prev: Option<(i64, f64)> = None;
                for (t, v) in &s.points {
                    if let Some((pt, pv)) = prev {
                        let dt = (*t - pt) as f64 / 1000.0;
                        let r = match name {
                            "RATE" => (v - pv) / dt,
                            "DIFF" => v - pv,
                            _ => dt,
                        };
                        if r.is_finite() {
                            points.insert(*t, r);
                        }
                    }
                    prev = Some((*t, *v));
                }
                Series {
                    label: s.label.clone(),
                    period: s.period,
                    points,
                }
            })
        }
        "RUNNING_SUM" => {
            arity(name, args, 1..=1)?;
            let v = eval(&args[0], env)?;
            each(v, name, |s| {
                let mut acc = 0.0;
                Series {
                    label: s.label.clone(),
                    period: s.period,
                    points: s
                        .points
                        .iter()
                        .map(|(t, v)| {
                            acc += v;
                            (*t, acc)
                        })
                        .collect(),
                }
            })
        }
        "FIRST" | "LAST" => {
            arity(name, args, 1..=1)?;
            match eval(&args[0], env)? {
                Val::Array(v) => {
                    let s = if name == "FIRST" {
                        v.into_iter().next()
                    } else {
                        v.into_iter().last()
                    };
                    s.map(Val::Series)
                        .ok_or_else(|| format!("{name} of an empty array"))
                }
                Val::Series(s) => Ok(Val::Series(s)),
                _ => Err(format!("{name} expects an array of time series")),
            }
        }
        "PERIOD" => {
            arity(name, args, 1..=1)?;
            match eval(&args[0], env)? {
                Val::Series(s) => Ok(Val::Scalar(s.period as f64)),
                Val::Array(v) => Ok(Val::Scalar(
                    v.first().map_or(env.period(), |s| s.period) as f64
                )),
                _ => Err("PERIOD expects a time series".into()),
            }
        }
        "TIME_SERIES" => {
            arity(name, args, 1..=1)?;
            match eval(&args[0], env)? {
                Val::Scalar(x) => Ok(Val::Series(Series {
                    label: String::new(),
                    period: env.period(),
                    points: env.grid().into_iter().map(|t| (t, x)).collect(),
                })),
                Val::Series(s) => Ok(Val::Series(s)),
                _ => Err("TIME_SERIES expects a scalar".into()),
            }
        }
        "FILL" => {
            arity(name, args, 2..=2)?;
            let v = eval(&args[0], env)?;
            let how = match &args[1] {
                Expr::Id(w) if w.eq_ignore_ascii_case("REPEAT") => Fill::Repeat,
                Expr::Id(w) if w.eq_ignore_ascii_case("LINEAR") => Fill::Linear,
                other => Fill::With(eval(other, env)?),
            };
            let grid = env.grid();
            match v {
                Val::Series(s) => Ok(Val::Series(fill(&s, &how, &grid)?)),
                Val::Array(a) => Ok(Val::Array(
                    a.iter()
                        .map(|s| fill(s, &how, &grid))
                        .collect::<Result<_, _>>()?,
                )),
                _ => Err("FILL expects a time series".into()),
            }
        }
        "IF" => {
            arity(name, args, 2..=3)?;
            let cond = one_series(eval(&args[0], env)?, "IF")?;
            let yes = eval(&args[1], env)?;
            let no = match args.get(2) {
                Some(a) => Some(eval(a, env)?),
                None => None,
            };
            let at = |v: &Val, t: i64| -> Option<f64> {
                match v {
                    Val::Scalar(x) => Some(*x),
                    Val::Series(s) => s.points.get(&t).copied(),
                    _ => None,
                }
            };
            let points = cond
                .points
                .iter()
                .filter_map(|(t, c)| {
                    let v = if *c != 0.0 {
                        at(&yes, *t)
                    } else {
                        no.as_ref().and_then(|n| at(n, *t))
                    };
                    v.map(|v| (*t, v))
                })
                .collect();
            Ok(Val::Series(Series {
                label: cond.label,
                period: cond.period,
                points,
            }))
        }
        other => Err(format!("Unrecognized function {other}")),
    }
}

enum Fill {
    With(Val),
    Repeat,
    Linear,
}

fn fill(s: &Series, how: &Fill, grid: &[i64]) -> Result<Series, String> {
    let mut points = s.points.clone();
    for &t in grid {
        if points.contains_key(&t) {
            continue;
        }
        let v = match how {
            Fill::With(Val::Scalar(x)) => Some(*x),
            Fill::With(Val::Series(f)) => f.points.get(&t).copied(),
            Fill::With(_) => {
                return Err("FILL expects a number, a time series, REPEAT or LINEAR".into());
            }
            Fill::Repeat => s.points.range(..t).next_back().map(|(_, v)| *v),
            Fill::Linear => {
                let before = s.points.range(..t).next_back();
                let after = s.points.range(t..).next();
                match (before, after) {
                    (Some((t0, v0)), Some((t1, v1))) => {
                        Some(v0 + (v1 - v0) * (t - t0) as f64 / (t1 - t0) as f64)
                    }
                    _ => None,
                }
            }
        };
        if let Some(v) = v {
            points.insert(t, v);
        }
    }
    Ok(Series {
        label: s.label.clone(),
        period: s.period,
        points,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TestEnv(BTreeMap<String, Series>);

    impl Env for TestEnv {
        fn lookup(&mut self, id: &str) -> Result<Val, String> {
            self.0
                .get(id)
                .cloned()
                .map(Val::Series)
                .ok_or_else(|| format!("unknown {id}"))
        }
        fn metrics(&mut self) -> Result<Vec<Series>, String> {
            Ok(self.0.values().cloned().collect())
        }
        fn grid(&self) -> Vec<i64> {
            vec![0, 60_000, 120_000]
        }
        fn period(&self) -> i64 {
            60
        }
    }

    fn series(label: &str, pts: &[(i64, f64)]) -> Series {
        Series {
            label: label.into(),
            period: 60,
            points: pts.iter().copied().collect(),
        }
    }

    fn run(expr: &str) -> Val {
        let mut env = TestEnv(BTreeMap::from([
            (
                "m1".into(),
                series("a", &[(0, 1.0), (60_000, 2.0), (120_000, 3.0)]),
            ),
            ("m2".into(), series("b", &[(0, 10.0), (120_000, 30.0)])),
        ]));
        eval(&parse(expr).unwrap(), &mut env).unwrap()
    }

    fn pts(v: Val) -> Vec<(i64, f64)> {
        match v {
            Val::Series(s) => s.points.into_iter().collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn arithmetic_and_functions() {
        assert_eq!(pts(run("m1 + m2")), [(0, 11.0), (120_000, 33.0)]);
        assert_eq!(
            pts(run("m1 * 2 - 1")),
            [(0, 1.0), (60_000, 3.0), (120_000, 5.0)]
        );
        assert_eq!(
            pts(run("SUM(METRICS())")),
            [(0, 11.0), (60_000, 2.0), (120_000, 33.0)]
        );
        assert_eq!(
            pts(run("MAX(m1, m2)")),
            [(0, 10.0), (60_000, 2.0), (120_000, 30.0)]
        );
        assert_eq!(run("AVG(m1)"), Val::Scalar(2.0));
        assert_eq!(
            pts(run("FILL(m2, 0)")),
            [(0, 10.0), (60_000, 0.0), (120_000, 30.0)]
        );
        assert_eq!(pts(run("FILL(m2, LINEAR)"))[1], (60_000, 20.0));
        assert_eq!(pts(run("FILL(m2, REPEAT)"))[1], (60_000, 10.0));
        assert_eq!(
            pts(run("RATE(m1)")),
            [(60_000, 1.0 / 60.0), (120_000, 1.0 / 60.0)]
        );
        assert_eq!(
            pts(run("IF(m1 > 1, m1, 0)")),
            [(0, 0.0), (60_000, 2.0), (120_000, 3.0)]
        );
        assert_eq!(pts(run("IF(m1 >= 2 AND m1 < 3, 1)")), [(60_000, 1.0)]);
        assert_eq!(pts(run("m1 ^ 2"))[2], (120_000, 9.0));
        assert_eq!(pts(run("-m1"))[2], (120_000, -3.0));
        assert!(parse("m1 +").is_err());
        assert!(parse("FOO(m1").is_err());
    }
}
