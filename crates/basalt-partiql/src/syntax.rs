//! The statement as written: what the parser produces before parameters are bound and
//! literals become DynamoDB values. Positions are kept where DynamoDB's messages cite them.

/// Where a token starts and how long it is, for DynamoDB's `at line:column:length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    pub line: u32,
    pub col: u32,
    pub len: u32,
}

impl Pos {
    pub fn at(self) -> String {
        format!("{}:{}:{}", self.line, self.col, self.len)
    }
}

/// One step after the first name of a path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// `.name`, `."name"` or `['name']`.
    Attr(String),
    /// `[3]`.
    Index(u64),
}

/// A document path: `a.b[1]."c"`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SynPath {
    pub root: String,
    pub steps: Vec<Step>,
    pub pos: Pos,
}

/// Binary operators of the WHERE and SET grammars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    And,
    Or,
}

impl BinOp {
    /// The operator as DynamoDB names it in messages.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Eq => "=",
            BinOp::Ne => "<>",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::And => "AND",
            BinOp::Or => "OR",
        }
    }
}

/// An expression of a WHERE clause, a SET value, a projection item or a literal.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Path(SynPath),
    /// `?`, numbered from 0 in the order they appear in the statement.
    Param(usize, Pos),
    Str(String, Pos),
    /// A number literal as written, with a leading `-` folded in.
    Num(String, Pos),
    Bool(bool, Pos),
    Null(Pos),
    Missing(Pos),
    List(Vec<Expr>, Pos),
    /// `{'k': v, ...}`: keys are expressions so that a non-string key can be refused by name.
    Map(Vec<(Expr, Expr)>, Pos),
    /// `<<a, b>>`: a DynamoDB set.
    Bag(Vec<Expr>, Pos),
    Binary(BinOp, Box<Expr>, Box<Expr>, Pos),
    Not(Box<Expr>, Pos),
    Between {
        subject: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
        pos: Pos,
    },
    In {
        subject: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
        pos: Pos,
    },
    /// `x IS [NOT] <type>`: the type name as written, upper-cased.
    Is {
        subject: Box<Expr>,
        type_name: String,
        negated: bool,
        pos: Pos,
    },
    /// `name(args)`: the name as written (functions are case-insensitive).
    Call(String, Vec<Expr>, Pos),
}

impl Expr {
    /// Where the expression starts.
    pub fn pos(&self) -> Pos {
        match self {
            Expr::Path(p) => p.pos,
            Expr::Param(_, p)
            | Expr::Str(_, p)
            | Expr::Num(_, p)
            | Expr::Bool(_, p)
            | Expr::Null(p)
            | Expr::Missing(p)
            | Expr::List(_, p)
            | Expr::Map(_, p)
            | Expr::Bag(_, p)
            | Expr::Not(_, p)
            | Expr::Call(_, _, p) => *p,
            Expr::Binary(_, l, _, _) => l.pos(),
            Expr::Between { pos, .. } | Expr::In { pos, .. } | Expr::Is { pos, .. } => *pos,
        }
    }
}

/// `FROM "table"` or `FROM "table"."index"`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Source {
    pub table: String,
    pub index: Option<String>,
    pub pos: Pos,
}

/// One SET or REMOVE of an UPDATE, in the order written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Assignment {
    Set(SynPath, Expr),
    Remove(SynPath),
}

/// `RETURNING (ALL|MODIFIED) (OLD|NEW) *`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReturningSyn {
    pub all: bool,
    pub new: bool,
}

/// A whole statement as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SynStatement {
    Select {
        /// `None` for `*`.
        projection: Option<Vec<Expr>>,
        source: Source,
        where_: Option<Expr>,
        /// `(key, descending)` in the order written.
        order_by: Vec<(SynPath, bool)>,
    },
    Insert {
        source: Source,
        item: Expr,
    },
    Update {
        source: Source,
        assignments: Vec<Assignment>,
        where_: Option<Expr>,
        returning: Option<ReturningSyn>,
    },
    Delete {
        source: Source,
        where_: Option<Expr>,
        returning: Option<ReturningSyn>,
    },
    /// `EXISTS(SELECT ...)`: a condition check inside ExecuteTransaction.
    Exists(Box<SynStatement>),
}
