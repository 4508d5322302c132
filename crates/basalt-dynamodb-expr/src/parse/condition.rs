//! Condition and filter expressions (also the grammar of key conditions).
//! Reference: <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.OperatorsAndFunctions.html>
//!
//! Precedence, lowest first: `OR`, `AND`, `NOT`, then comparisons, `BETWEEN`, `IN` and
//! functions. Parentheses group conditions or operands; two around one thing are an error
//! ("redundant parentheses"), as in DynamoDB.

use super::lexer::Tok;
use super::raw::{is_ident, path_tail, resolve_path, resolve_value};
use super::{Cat, Cursor, Errors, RawPath};
use crate::ast::{Comparator, Condition, Function, Operand};
use crate::error::{ExprError, ExprKind};
use crate::number::Number;
use crate::params::Params;
use crate::value::{AttributeValue, compare_scalars};
use base64::Engine as _;

const KEYWORDS: &[&str] = &["AND", "OR", "NOT", "BETWEEN", "IN"];
const MAX_IN: usize = 100;
const VALID_TYPES: [&str; 10] = ["S", "N", "B", "NULL", "SS", "BOOL", "L", "BS", "NS", "M"];

/// An operand as written.
#[derive(Debug, Clone)]
pub(crate) enum ROp {
    Path(RawPath),
    Value(String),
    Call { name: String, args: Vec<ROp> },
}

/// A condition as written.
#[derive(Debug, Clone)]
pub(crate) enum RCond {
    Cmp(ROp, Comparator, ROp),
    Between(ROp, ROp, ROp),
    In(ROp, Vec<ROp>),
    Call { name: String, args: Vec<ROp> },
    Not(Box<RCond>),
    And(Box<RCond>, Box<RCond>),
    Or(Box<RCond>, Box<RCond>),
}

/// What a parenthesized group turned out to hold. An operand remembers the token after it,
/// where the syntax error goes if a condition was needed.
enum Node {
    Cond(RCond, bool),
    Op(ROp, usize, bool),
}

impl Node {
    fn wrapped(&self) -> bool {
        match self {
            Node::Cond(_, w) | Node::Op(_, _, w) => *w,
        }
    }
}

struct Parser<'a, 'b> {
    c: &'b mut Cursor<'a>,
    errs: &'b mut Errors,
}

impl Parser<'_, '_> {
    fn redundant(&mut self) {
        self.errs
            .set(Cat::Parens, "The expression has redundant parentheses;");
    }

    fn need_cond(&self, n: Node) -> Result<RCond, ExprError> {
        match n {
            Node::Cond(c, _) => Ok(c),
            Node::Op(ROp::Call { name, args }, _, _) => Ok(RCond::Call { name, args }),
            Node::Op(_, follow, _) => Err(self.c.error_at(follow)),
        }
    }

    fn or(&mut self) -> Result<Node, ExprError> {
        let mut left = self.and()?;
        while self.c.is_keyword("OR") {
            let l = self.need_cond(left)?;
            self.c.bump();
            let r = self.and()?;
            let r = self.need_cond(r)?;
            left = Node::Cond(RCond::Or(Box::new(l), Box::new(r)), false);
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Node, ExprError> {
        let mut left = self.not()?;
        while self.c.is_keyword("AND") {
            let l = self.need_cond(left)?;
            self.c.bump();
            let r = self.not()?;
            let r = self.need_cond(r)?;
            left = Node::Cond(RCond::And(Box::new(l), Box::new(r)), false);
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Node, ExprError> {
        if self.c.eat_keyword("NOT") {
            let inner = self.not()?;
            let inner = self.need_cond(inner)?;
            return Ok(Node::Cond(RCond::Not(Box::new(inner)), false));
        }
        self.comparison()
    }

    fn comparator(&self) -> Option<Comparator> {
        match self.c.peek() {
            Tok::Punct("=") => Some(Comparator::Eq),
            Tok::Punct("<>") => Some(Comparator::Ne),
            Tok::Punct("<") => Some(Comparator::Lt),
            Tok::Punct("<=") => Some(Comparator::Le),
            Tok::Punct(">") => Some(Comparator::Gt),
            Tok::Punct(">=") => Some(Comparator::Ge),
            _ => None,
        }
    }

    fn comparison(&mut self) -> Result<Node, ExprError> {
        let left = self.primary()?;
        let op = match left {
            Node::Cond(..) => {
                if self.comparator().is_some()
                    || self.c.is_keyword("BETWEEN")
                    || self.c.is_keyword("IN")
                {
                    return Err(self.c.error());
                }
                return Ok(left);
            }
            Node::Op(op, _, w) => (op, w),
        };
        let (op, wrapped) = op;
        if let Some(cmp) = self.comparator() {
            self.c.bump();
            let right = self.operand()?;
            return Ok(Node::Cond(RCond::Cmp(op, cmp, right), false));
        }
        if self.c.eat_keyword("BETWEEN") {
            let lo = self.operand()?;
            if !self.c.eat_keyword("AND") {
                return Err(self.c.error());
            }
            let hi = self.operand()?;
            return Ok(Node::Cond(RCond::Between(op, lo, hi), false));
        }
        if self.c.eat_keyword("IN") {
            self.c.expect_punct("(")?;
            let list = self.operand_list()?;
            self.c.expect_punct(")")?;
            return Ok(Node::Cond(RCond::In(op, list), false));
        }
        // A bare operand: a function used as a condition, or the inside of `( )` that a
        // comparison follows; anything else needs a comparator here.
        let follow = self.c.pos();
        if self.c.is_punct(")") {
            return Ok(Node::Op(op, follow, wrapped));
        }
        match op {
            ROp::Call { name, args } => Ok(Node::Cond(RCond::Call { name, args }, wrapped)),
            _ => Err(self.c.error()),
        }
    }

    /// A condition-level primary: a parenthesized group (condition or operand) or an operand.
    fn primary(&mut self) -> Result<Node, ExprError> {
        if self.c.eat_punct("(") {
            let inner = self.or()?;
            self.c.expect_punct(")")?;
            if inner.wrapped() {
                self.redundant();
            }
            return Ok(match inner {
                Node::Op(ROp::Path(mut p), _, _)
                    if self.c.is_punct(".") || self.c.is_punct("[") =>
                {
                    path_tail(self.c, &mut p.elems, KEYWORDS)?;
                    Node::Op(ROp::Path(p), self.c.pos(), false)
                }
                Node::Op(op, _, _) => Node::Op(op, self.c.pos(), true),
                Node::Cond(c, _) => Node::Cond(c, true),
            });
        }
        let op = self.plain_operand()?;
        Ok(Node::Op(op, self.c.pos(), false))
    }

    /// An operand in operand position, parentheses allowed.
    fn operand(&mut self) -> Result<ROp, ExprError> {
        Ok(self.operand_wrapped()?.0)
    }

    fn operand_wrapped(&mut self) -> Result<(ROp, bool), ExprError> {
        if self.c.eat_punct("(") {
            let (inner, w) = self.operand_wrapped()?;
            self.c.expect_punct(")")?;
            if w {
                self.redundant();
            }
            if let ROp::Path(mut p) = inner {
                if self.c.is_punct(".") || self.c.is_punct("[") {
                    path_tail(self.c, &mut p.elems, KEYWORDS)?;
                    return Ok((ROp::Path(p), false));
                }
                return Ok((ROp::Path(p), true));
            }
            return Ok((inner, true));
        }
        Ok((self.plain_operand()?, false))
    }

    fn operand_list(&mut self) -> Result<Vec<ROp>, ExprError> {
        let mut list = vec![self.operand()?];
        while self.c.eat_punct(",") {
            list.push(self.operand()?);
        }
        Ok(list)
    }

    /// A function call, a path or a `:value`.
    fn plain_operand(&mut self) -> Result<ROp, ExprError> {
        match self.c.peek().clone() {
            Tok::Value(v) => {
                self.c.bump();
                Ok(ROp::Value(v))
            }
            Tok::Word(w)
                if is_ident(self.c.peek(), KEYWORDS) && *self.c.peek_at(1) == Tok::Punct("(") =>
            {
                self.c.bump();
                self.c.bump();
                let args = self.operand_list()?;
                self.c.expect_punct(")")?;
                Ok(ROp::Call { name: w, args })
            }
            _ => Ok(ROp::Path(super::raw::path(self.c, KEYWORDS)?)),
        }
    }
}

/// Parses the raw tree: syntax errors only (and redundant parentheses, recorded in `errs`).
pub(crate) fn parse_raw(expr: &str, kind: ExprKind, errs: &mut Errors) -> Result<RCond, ExprError> {
    let mut c = Cursor::new(expr, kind)?;
    let mut p = Parser { c: &mut c, errs };
    let node = p.or()?;
    if !p.c.at_eof() {
        return Err(p.c.error());
    }
    p.need_cond(node)
}

/// Parses a condition (`kind` = `Condition`) or filter (`kind` = `Filter`) expression.
pub fn parse_condition(
    expr: &str,
    kind: ExprKind,
    params: &mut Params,
) -> Result<Condition, ExprError> {
    let mut errs = Errors::default();
    let raw = parse_raw(expr, kind, &mut errs)?;
    let mut ck = Checker { params, errs };
    let cond = ck.cond(&raw);
    if ck.cond_is_size(&raw) {
        ck.misused("size");
    }
    let order = [
        Cat::Parens,
        Cat::UnknownFunction,
        Cat::MisusedFunction,
        Cat::Reserved,
        Cat::Condition,
    ];
    if let Some(msg) = ck.errs.first(&order) {
        return Err(kind.error(msg));
    }
    cond.ok_or_else(|| kind.error("Syntax error; token: \"<EOF>\", near: \"\""))
}

/// A resolved operand with what the checks need to know about it.
enum Arg {
    Path(Option<crate::ast::Path>),
    Value(Option<AttributeValue>),
    Call {
        name: String,
        ty: Option<&'static str>,
        op: Option<Operand>,
    },
}

impl Arg {
    /// The operand's type when known before evaluation (values and function results).
    fn ty(&self) -> Option<&'static str> {
        match self {
            Arg::Path(_) => None,
            Arg::Value(v) => v.as_ref().map(AttributeValue::type_name),
            Arg::Call { ty, .. } => *ty,
        }
    }

    fn operand(&self) -> Option<Operand> {
        match self {
            Arg::Path(p) => p.clone().map(Operand::Path),
            Arg::Value(v) => v.clone().map(Operand::Value),
            Arg::Call { op, .. } => op.clone(),
        }
    }
}

struct Checker<'p> {
    params: &'p mut Params,
    errs: Errors,
}

impl Checker<'_> {
    fn cond_is_size(&self, c: &RCond) -> bool {
        matches!(c, RCond::Call { name, .. } if name == "size")
    }

    fn misused(&mut self, name: &str) {
        self.errs.set(
            Cat::MisusedFunction,
            format!(
                "The function is not allowed to be used this way in an expression; function: {name}"
            ),
        );
    }

    fn check_misused(&mut self, args: &[&Arg]) {
        if let Some(Arg::Call { name, .. }) = args
            .iter()
            .find(|a| matches!(a, Arg::Call { name, .. } if name != "size"))
        {
            let name = name.clone();
            self.misused(&name);
        }
    }

    /// Fixes the condition-level error when the first leaf condition completes.
    fn leaf_done(&mut self) {
        if self.errs.has(Cat::Condition) {
            return;
        }
        for cat in [Cat::AttrName, Cat::Operand, Cat::Distinct, Cat::Function] {
            if let Some(m) = self.errs.get(cat) {
                let m = m.to_string();
                self.errs.set(Cat::Condition, m);
                return;
            }
        }
    }

    fn arg(&mut self, raw: &ROp) -> Arg {
        match raw {
            ROp::Path(p) => Arg::Path(resolve_path(p, self.params, &mut self.errs, Cat::AttrName)),
            ROp::Value(v) => {
                Arg::Value(resolve_value(v, self.params, &mut self.errs, Cat::AttrName))
            }
            ROp::Call { name, args } => {
                let args: Vec<Arg> = args.iter().map(|a| self.arg(a)).collect();
                self.check_misused(&args.iter().collect::<Vec<_>>());
                let (ty, _) = self.function(name, &args);
                let op = match (name.as_str(), args.first()) {
                    ("size", Some(Arg::Path(Some(p)))) if args.len() == 1 => {
                        Some(Operand::Size(p.clone()))
                    }
                    // size of a literal is a constant.
                    ("size", Some(Arg::Value(Some(v)))) if args.len() == 1 => {
                        crate::eval::size_of(v)
                            .map(|n| Operand::Value(AttributeValue::N(Number::from_i64(n as i64))))
                    }
                    _ => None,
                };
                Arg::Call {
                    name: name.clone(),
                    ty,
                    op,
                }
            }
        }
    }

    fn distinct(&mut self, op: &str, args: &[&Arg]) {
        if let [Arg::Path(Some(a)), Arg::Path(Some(b))] = args
            && a == b
        {
            self.errs.set(
                    Cat::Distinct,
                    format!(
                        "The first operand must be distinct from the remaining operands for this operator or function; operator: {op}, first operand: {}",
                        a.bracketed()
                    ),
                );
        }
    }

    /// DynamoDB's checks of one function call; returns its result type and, for functions
    /// usable as conditions, the built function.
    fn function(&mut self, name: &str, args: &[Arg]) -> (Option<&'static str>, Option<Function>) {
        if self.errs.has(Cat::UnknownFunction) {
            return (None, None);
        }
        let arity = match name {
            "attribute_exists" | "attribute_not_exists" | "size" => 1,
            "attribute_type" | "begins_with" | "contains" => 2,
            _ => {
                self.errs.set(
                    Cat::UnknownFunction,
                    format!("Invalid function name; function: {name}"),
                );
                return (None, None);
            }
        };
        if self.errs.has(Cat::Operand) {
            return (None, None);
        }
        if args.len() != arity {
            self.errs.set(
                Cat::Operand,
                format!(
                    "Incorrect number of operands for operator or function; operator or function: {name}, number of operands: {}",
                    args.len()
                ),
            );
            return (None, None);
        }
        self.distinct(name, &args.iter().collect::<Vec<_>>());
        if self.errs.has(Cat::Function) {
            return (None, None);
        }
        let bad_type = |t: &str| {
            format!(
                "Incorrect operand type for operator or function; operator or function: {name}, operand type: {t}"
            )
        };
        let op = |i: usize| args[i].operand();
        match name {
            "attribute_exists" | "attribute_not_exists" => {
                let Arg::Path(p) = &args[0] else {
                    self.errs.set(
                        Cat::Function,
                        format!("Operator or function requires a document path; operator or function: {name}"),
                    );
                    return (None, None);
                };
                let f = p.clone().map(|p| {
                    if name == "attribute_exists" {
                        Function::AttributeExists(p)
                    } else {
                        Function::AttributeNotExists(p)
                    }
                });
                (None, f)
            }
            "begins_with" => {
                if let Some(t) = args
                    .iter()
                    .filter_map(Arg::ty)
                    .find(|t| *t != "S" && *t != "B")
                {
                    self.errs.set(Cat::Function, bad_type(t));
                    return (None, None);
                }
                (
                    Some("BOOL"),
                    op(0).zip(op(1)).map(|(a, b)| Function::BeginsWith(a, b)),
                )
            }
            "attribute_type" => {
                match (&args[1], args[1].ty()) {
                    (Arg::Value(Some(AttributeValue::S(t))), _) => {
                        if !VALID_TYPES.contains(&t.as_str()) {
                            self.errs.set(
                                Cat::Function,
                                format!("Invalid attribute type name found; type: {t}, valid types: {{B,NULL,SS,BOOL,L,BS,N,NS,S,M}}"),
                            );
                            return (None, None);
                        }
                    }
                    (_, t) => {
                        self.errs.set(
                            Cat::Function,
                            bad_type(t.unwrap_or("{NS,SS,L,BS,N,M,B,BOOL,NULL,S}")),
                        );
                        return (None, None);
                    }
                }
                (
                    Some("BOOL"),
                    op(0).zip(op(1)).map(|(a, b)| Function::AttributeType(a, b)),
                )
            }
            "size" => {
                if let Some(t) = args[0].ty().filter(|t| matches!(*t, "N" | "BOOL" | "NULL")) {
                    self.errs.set(Cat::Function, bad_type(t));
                    return (None, None);
                }
                (Some("N"), None)
            }
            _ => (
                Some("BOOL"),
                op(0).zip(op(1)).map(|(a, b)| Function::Contains(a, b)),
            ),
        }
    }

    /// Ordering needs strings, numbers or binaries: a literal (or `size()`) of another type is
    /// rejected before evaluation; a path of another type just compares false.
    fn orderable(&mut self, op: &str, args: &[&Arg]) {
        if self.errs.has(Cat::Function) {
            return;
        }
        if let Some(t) = args
            .iter()
            .filter_map(|a| a.ty())
            .find(|t| !matches!(*t, "S" | "N" | "B"))
        {
            self.errs.set(
                Cat::Function,
                format!("Incorrect operand type for operator or function; operator or function: {op}, operand type: {t}"),
            );
        }
    }

    fn between_bounds(&mut self, lo: &Arg, hi: &Arg) {
        if self.errs.has(Cat::Function) {
            return;
        }
        let (Arg::Value(Some(a)), Arg::Value(Some(b))) = (lo, hi) else {
            return;
        };
        let render = |v: &AttributeValue| {
            format!("AttributeValue: {{{}:{}}}", v.type_name(), scalar_text(v))
        };
        if a.type_name() != b.type_name() {
            self.errs.set(
                Cat::Function,
                format!(
                    "The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: {}, upper bound operand: {}",
                    render(a),
                    render(b)
                ),
            );
        } else if compare_scalars(a, b) == Some(std::cmp::Ordering::Greater) {
            self.errs.set(
                Cat::Function,
                format!(
                    "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: {}, upper bound operand: {}",
                    render(a),
                    render(b)
                ),
            );
        }
    }

    fn cond(&mut self, raw: &RCond) -> Option<Condition> {
        match raw {
            RCond::And(a, b) | RCond::Or(a, b) => {
                let (x, y) = (self.cond(a), self.cond(b));
                for side in [a, b] {
                    if self.cond_is_size(side) {
                        self.misused("size");
                    }
                }
                let (x, y) = (x?, y?);
                Some(if matches!(raw, RCond::And(..)) {
                    Condition::and(x, y)
                } else {
                    Condition::or(x, y)
                })
            }
            RCond::Not(a) => {
                let x = self.cond(a);
                if self.cond_is_size(a) {
                    self.misused("size");
                }
                Some(Condition::not(x?))
            }
            RCond::Cmp(l, op, r) => {
                let (a, b) = (self.arg(l), self.arg(r));
                self.check_misused(&[&a, &b]);
                self.distinct(op.symbol(), &[&a, &b]);
                if !matches!(op, Comparator::Eq | Comparator::Ne) {
                    self.orderable(op.symbol(), &[&a, &b]);
                }
                self.leaf_done();
                Some(Condition::compare(a.operand()?, *op, b.operand()?))
            }
            RCond::Between(v, lo, hi) => {
                let (a, b, c) = (self.arg(v), self.arg(lo), self.arg(hi));
                self.check_misused(&[&a, &b, &c]);
                self.orderable("BETWEEN", &[&a, &b, &c]);
                self.between_bounds(&b, &c);
                self.leaf_done();
                Some(Condition::between(a.operand()?, b.operand()?, c.operand()?))
            }
            RCond::In(v, list) => {
                let a = self.arg(v);
                let items: Vec<Arg> = list.iter().map(|x| self.arg(x)).collect();
                let mut all: Vec<&Arg> = vec![&a];
                all.extend(items.iter());
                self.check_misused(&all);
                if items.len() > MAX_IN && !self.errs.has(Cat::Function) {
                    self.errs.set(
                        Cat::Function,
                        format!("The IN operator is provided with too many operands; number of operands: {}", items.len()),
                    );
                }
                self.leaf_done();
                let list = items.iter().map(Arg::operand).collect::<Option<Vec<_>>>()?;
                Some(Condition::is_in(a.operand()?, list))
            }
            RCond::Call { name, args } => {
                let args: Vec<Arg> = args.iter().map(|a| self.arg(a)).collect();
                self.check_misused(&args.iter().collect::<Vec<_>>());
                let (_, f) = self.function(name, &args);
                self.leaf_done();
                f.map(Condition::Function)
            }
        }
    }
}

/// A scalar as DynamoDB prints it inside `AttributeValue: {T:v}` in BETWEEN messages.
fn scalar_text(v: &AttributeValue) -> String {
    match v {
        AttributeValue::S(s) => s.clone(),
        AttributeValue::N(n) => n.to_string(),
        AttributeValue::B(b) => base64::engine::general_purpose::STANDARD.encode(b),
        AttributeValue::Bool(b) => b.to_string(),
        AttributeValue::Null => "true".to_string(),
        AttributeValue::Ss(s) => s.join(","),
        AttributeValue::Ns(s) => s
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
        AttributeValue::Bs(s) => s
            .iter()
            .map(|b| base64::engine::general_purpose::STANDARD.encode(b))
            .collect::<Vec<_>>()
            .join(","),
        AttributeValue::M(_) | AttributeValue::L(_) => String::new(),
    }
}
