//! The parsed form of a query.

use crate::time::Period;
use regex::Regex;

#[derive(Debug, Clone)]
pub(crate) enum Command {
    Fields(Vec<Item>),
    Filter(Expr),
    Stats(Stats),
    Sort(Vec<SortKey>),
    Limit(usize),
    Parse(ParseSpec),
    /// Only shapes the output; see `Query::output`.
    Display(Vec<String>),
    Dedup(Vec<String>),
}

/// `expr [as name]`; `name` is the alias, or the expression as written.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub expr: Expr,
    pub name: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Stats {
    /// Output columns; their expressions refer to `aggs` through `Expr::Agg`.
    pub items: Vec<Item>,
    pub aggs: Vec<Agg>,
    pub by: Vec<Item>,
}

#[derive(Debug, Clone)]
pub(crate) struct Agg {
    pub func: AggFunc,
    /// `None` for `count(*)` and `count()`.
    pub arg: Option<Expr>,
    /// The percentile of `pct`.
    pub percent: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggFunc {
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
    Pct,
    Stddev,
    Earliest,
    Latest,
    SortsFirst,
    SortsLast,
}

impl AggFunc {
    pub fn by_name(lower: &str) -> Option<AggFunc> {
        Some(match lower {
            "count" => AggFunc::Count,
            "count_distinct" => AggFunc::CountDistinct,
            "sum" => AggFunc::Sum,
            "avg" => AggFunc::Avg,
            "min" => AggFunc::Min,
            "max" => AggFunc::Max,
            "pct" => AggFunc::Pct,
            "stddev" => AggFunc::Stddev,
            "earliest" => AggFunc::Earliest,
            "latest" => AggFunc::Latest,
            "sortsfirst" => AggFunc::SortsFirst,
            "sortslast" => AggFunc::SortsLast,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct SortKey {
    pub field: String,
    pub descending: bool,
}

/// `parse <source> "glob"` or `parse <source> /regex/`, both compiled to one regex whose groups
/// fill the fields.
#[derive(Debug, Clone)]
pub(crate) struct ParseSpec {
    pub source: String,
    pub regex: Regex,
    /// Capture group index and the field it fills.
    pub outputs: Vec<(usize, String)>,
}

#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Field(String),
    Str(String),
    Num(f64),
    /// Only as an argument of the time functions.
    Period(Period),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Like {
        expr: Box<Expr>,
        pattern: Pattern,
        negated: bool,
    },
    In {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    Call(Func, Vec<Expr>),
    /// The result of `Stats::aggs[i]`.
    Agg(usize),
}

#[derive(Debug, Clone)]
pub(crate) enum Pattern {
    Regex(Regex),
    /// A quoted string matches as a substring.
    Substring(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Pow,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    Strlen,
    Toupper,
    Tolower,
    Concat,
    Trim,
    Ltrim,
    Rtrim,
    Substr,
    Replace,
    Strcontains,
    Abs,
    Ceil,
    Floor,
    Round,
    Sqrt,
    Log,
    Greatest,
    Least,
    Ispresent,
    Isempty,
    Isblank,
    Coalesce,
    Bin,
    Datefloor,
    Dateceil,
    FromMillis,
    ToMillis,
}

impl Func {
    /// The function called `lower` (names are case-insensitive), with its least and greatest
    /// argument counts.
    pub fn by_name(lower: &str) -> Option<(Func, usize, usize)> {
        const MANY: usize = usize::MAX;
        Some(match lower {
            "strlen" => (Func::Strlen, 1, 1),
            "toupper" => (Func::Toupper, 1, 1),
            "tolower" => (Func::Tolower, 1, 1),
            "concat" => (Func::Concat, 1, MANY),
            "trim" => (Func::Trim, 1, 2),
            "ltrim" => (Func::Ltrim, 1, 2),
            "rtrim" => (Func::Rtrim, 1, 2),
            "substr" => (Func::Substr, 2, 3),
            "replace" => (Func::Replace, 3, 3),
            "strcontains" => (Func::Strcontains, 2, 2),
            "abs" => (Func::Abs, 1, 1),
            "ceil" => (Func::Ceil, 1, 1),
            "floor" => (Func::Floor, 1, 1),
            "round" => (Func::Round, 1, 2),
            "sqrt" => (Func::Sqrt, 1, 1),
            "log" => (Func::Log, 1, 1),
            "greatest" => (Func::Greatest, 1, MANY),
            "least" => (Func::Least, 1, MANY),
            "ispresent" => (Func::Ispresent, 1, 1),
            "isempty" => (Func::Isempty, 1, 1),
            "isblank" => (Func::Isblank, 1, 1),
            "coalesce" => (Func::Coalesce, 1, MANY),
            "bin" => (Func::Bin, 1, 1),
            "datefloor" => (Func::Datefloor, 2, 2),
            "dateceil" => (Func::Dateceil, 2, 2),
            "frommillis" => (Func::FromMillis, 1, 1),
            "tomillis" => (Func::ToMillis, 1, 1),
            _ => return None,
        })
    }

    /// Which argument, if any, is a time period (`bin(5m)`, `datefloor(@timestamp, 1h)`).
    pub fn period_arg(self) -> Option<usize> {
        match self {
            Func::Bin => Some(0),
            Func::Datefloor | Func::Dateceil => Some(1),
            _ => None,
        }
    }
}
