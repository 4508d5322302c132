//! Update expressions: `SET`, `REMOVE`, `ADD` and `DELETE` clauses, each at most once, in any
//! order.
//! Reference: <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.UpdateExpressions.html>

use super::lexer::Tok;
use super::raw::{check_overlap, is_ident, path, resolve_path, resolve_value};
use super::{Cat, Cursor, Errors, RawPath};
use crate::ast::{Path, SetValue, Update, UpdateAction, UpdateOperand};
use crate::error::{ExprError, ExprKind};
use crate::params::Params;
use crate::value::AttributeValue;

const KEYWORDS: &[&str] = &["SET", "REMOVE", "ADD", "DELETE"];

#[derive(Debug)]
enum UOp {
    Path(RawPath),
    Value(String),
    Call { name: String, args: Vec<UOp> },
}

#[derive(Debug)]
enum USet {
    One(UOp),
    Arith(&'static str, UOp, UOp),
}

#[derive(Debug)]
enum UAction {
    Set(RawPath, USet),
    Remove(RawPath),
    Add(RawPath, String),
    Delete(RawPath, String),
}

fn operand(c: &mut Cursor<'_>) -> Result<UOp, ExprError> {
    if c.eat_punct("(") {
        let inner = operand(c)?;
        c.expect_punct(")")?;
        return Ok(inner);
    }
    match c.peek().clone() {
        Tok::Value(v) => {
            c.bump();
            Ok(UOp::Value(v))
        }
        Tok::Word(w) if is_ident(c.peek(), KEYWORDS) && *c.peek_at(1) == Tok::Punct("(") => {
            c.bump();
            c.bump();
            let mut args = vec![operand(c)?];
            while c.eat_punct(",") {
                args.push(operand(c)?);
            }
            c.expect_punct(")")?;
            Ok(UOp::Call { name: w, args })
        }
        _ => Ok(UOp::Path(path(c, KEYWORDS)?)),
    }
}

/// The right-hand side of `SET path =`, optionally in one pair of parentheses around the
/// whole of it (`(a + b)`), which is tried first.
fn set_value_parens(c: &mut Cursor<'_>) -> Result<USet, ExprError> {
    if c.is_punct("(") {
        let save = c.pos();
        c.bump();
        if let Ok(v) = set_value(c)
            && c.eat_punct(")")
            && !c.is_punct("+")
            && !c.is_punct("-")
        {
            return Ok(v);
        }
        c.reset(save);
    }
    set_value(c)
}

fn set_value(c: &mut Cursor<'_>) -> Result<USet, ExprError> {
    let first = operand(c)?;
    for op in ["+", "-"] {
        if c.eat_punct(op) {
            return Ok(USet::Arith(op, first, operand(c)?));
        }
    }
    Ok(USet::One(first))
}

fn value_token(c: &mut Cursor<'_>) -> Result<String, ExprError> {
    match c.peek().clone() {
        Tok::Value(v) => {
            c.bump();
            Ok(v)
        }
        _ => Err(c.error()),
    }
}

fn parse_raw(c: &mut Cursor<'_>) -> Result<Vec<(&'static str, Vec<UAction>)>, ExprError> {
    let mut sections = Vec::new();
    loop {
        let Some(kw) = KEYWORDS.iter().copied().find(|k| c.is_keyword(k)) else {
            return Err(c.error());
        };
        c.bump();
        let mut actions = Vec::new();
        loop {
            let p = path(c, KEYWORDS)?;
            actions.push(match kw {
                "SET" => {
                    c.expect_punct("=")?;
                    UAction::Set(p, set_value_parens(c)?)
                }
                "REMOVE" => UAction::Remove(p),
                "ADD" => UAction::Add(p, value_token(c)?),
                _ => UAction::Delete(p, value_token(c)?),
            });
            if !c.eat_punct(",") {
                break;
            }
        }
        sections.push((kw, actions));
        if c.at_eof() {
            return Ok(sections);
        }
    }
}

/// Parses an update expression.
pub fn parse_update(expr: &str, params: &mut Params) -> Result<Update, ExprError> {
    let kind = ExprKind::Update;
    let mut c = Cursor::new(expr, kind)?;
    let sections = parse_raw(&mut c)?;
    let mut ck = Checker {
        params,
        errs: Errors::default(),
        paths: Vec::new(),
    };
    let mut seen: Vec<&str> = Vec::new();
    let mut actions = Vec::new();
    let mut complete = true;
    for (kw, list) in &sections {
        for a in list {
            match ck.action(a) {
                Some(a) => actions.push(a),
                None => complete = false,
            }
        }
        if seen.contains(kw) {
            ck.errs.set(
                Cat::Section,
                format!("The \"{kw}\" section can only be used once in an update expression;"),
            );
        }
        seen.push(kw);
    }
    let order = [
        Cat::Reserved,
        Cat::UnknownFunction,
        Cat::Section,
        Cat::AttrName,
        Cat::AttrVal,
        Cat::PathOverlap,
        Cat::PathConflict,
        Cat::Operand,
        Cat::Function,
    ];
    if let Some(msg) = ck.errs.first(&order) {
        return Err(kind.error(msg));
    }
    if !complete {
        return Err(kind.error("Syntax error; token: \"<EOF>\", near: \"\""));
    }
    Ok(Update { actions })
}

struct Checker<'p> {
    params: &'p mut Params,
    errs: Errors,
    paths: Vec<Path>,
}

impl Checker<'_> {
    fn path(&mut self, raw: &RawPath) -> Option<Path> {
        resolve_path(raw, self.params, &mut self.errs, Cat::AttrName)
    }

    /// Written paths may not overlap or conflict with one written before.
    fn written(&mut self, p: &Option<Path>) {
        if let Some(p) = p {
            check_overlap(&self.paths, p, &mut self.errs);
            self.paths.push(p.clone());
        }
    }

    fn value(&mut self, token: &str) -> Option<AttributeValue> {
        resolve_value(token, self.params, &mut self.errs, Cat::AttrVal)
    }

    /// ADD takes a number or a set, DELETE only a set.
    fn add_delete_operand(&mut self, op: &str, v: &AttributeValue) {
        let human = match v {
            AttributeValue::S(_) => "STRING",
            AttributeValue::N(_) if op == "ADD" => return,
            AttributeValue::N(_) => "NUMBER",
            AttributeValue::B(_) => "BINARY",
            AttributeValue::Null => "NULL",
            AttributeValue::Bool(_) => "BOOLEAN",
            AttributeValue::L(_) => "LIST",
            AttributeValue::M(_) => "MAP",
            AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_) => return,
        };
        self.errs.set(
            Cat::Operand,
            format!("Incorrect operand type for operator or function; operator: {op}, operand type: {human}"),
        );
    }

    fn action(&mut self, a: &UAction) -> Option<UpdateAction> {
        match a {
            UAction::Set(p, v) => {
                let path = self.path(p);
                let value = self.set_value(v);
                self.written(&path);
                Some(UpdateAction::Set {
                    path: path?,
                    value: value?,
                })
            }
            UAction::Remove(p) => {
                let path = self.path(p);
                self.written(&path);
                Some(UpdateAction::Remove(path?))
            }
            UAction::Add(p, v) | UAction::Delete(p, v) => {
                let path = self.path(p);
                let value = self.value(v);
                self.written(&path);
                let op = if matches!(a, UAction::Add(..)) {
                    "ADD"
                } else {
                    "DELETE"
                };
                if let Some(v) = &value {
                    self.add_delete_operand(op, v);
                }
                let (path, value) = (path?, value?);
                Some(if op == "ADD" {
                    UpdateAction::Add { path, value }
                } else {
                    UpdateAction::Delete { path, value }
                })
            }
        }
    }

    fn set_value(&mut self, v: &USet) -> Option<SetValue> {
        match v {
            USet::One(op) => Some(SetValue::Operand(self.operand(op)?.0)),
            USet::Arith(sym, a, b) => {
                let (a, b) = (self.operand(a), self.operand(b));
                self.function(sym, &[a.as_ref().map(|x| &x.1), b.as_ref().map(|x| &x.1)]);
                let (a, b) = (a?.0, b?.0);
                Some(if *sym == "+" {
                    SetValue::Plus(a, b)
                } else {
                    SetValue::Minus(a, b)
                })
            }
        }
    }

    /// The operand and what the checks see of it: its immediate type (literals only) and
    /// whether it is a document path.
    fn operand(&mut self, op: &UOp) -> Option<(UpdateOperand, Seen)> {
        match op {
            UOp::Path(p) => {
                // Paths inside values are read, not written: no overlap check.
                let p = resolve_path(p, self.params, &mut self.errs, Cat::AttrName)?;
                Some((UpdateOperand::Path(p), Seen::Path))
            }
            UOp::Value(t) => {
                let v = self.value(t)?;
                let ty = v.type_name();
                Some((UpdateOperand::Value(v), Seen::Value(ty)))
            }
            UOp::Call { name, args } => {
                let resolved: Vec<Option<(UpdateOperand, Seen)>> =
                    args.iter().map(|a| self.operand(a)).collect();
                let seen: Vec<Option<&Seen>> =
                    resolved.iter().map(|r| r.as_ref().map(|x| &x.1)).collect();
                self.function(name, &seen);
                let mut it = resolved.into_iter();
                let (Some(Some(a)), Some(Some(b)), None) = (it.next(), it.next(), it.next()) else {
                    return None;
                };
                let built = match (name.as_str(), a.0) {
                    ("if_not_exists", UpdateOperand::Path(p)) => {
                        UpdateOperand::IfNotExists(p, Box::new(b.0))
                    }
                    ("list_append", a) => UpdateOperand::ListAppend(Box::new(a), Box::new(b.0)),
                    _ => return None,
                };
                Some((built, Seen::Call))
            }
        }
    }

    fn function(&mut self, name: &str, args: &[Option<&Seen>]) {
        if self.errs.has(Cat::UnknownFunction) {
            return;
        }
        if !matches!(name, "if_not_exists" | "list_append" | "+" | "-") {
            self.errs.set(
                Cat::UnknownFunction,
                format!("Invalid function name; function: {name}"),
            );
            return;
        }
        if self.errs.has(Cat::Function) {
            return;
        }
        if args.len() != 2 {
            self.errs.set(
                Cat::Function,
                format!(
                    "Incorrect number of operands for operator or function; operator or function: {name}, number of operands: {}",
                    args.len()
                ),
            );
            return;
        }
        let wanted = match name {
            "if_not_exists" => {
                if !matches!(args[0], Some(Seen::Path)) && args[0].is_some() {
                    self.errs.set(
                        Cat::Function,
                        format!("Operator or function requires a document path; operator or function: {name}"),
                    );
                }
                return;
            }
            "list_append" => "L",
            _ => "N",
        };
        for a in args.iter().flatten() {
            if let Seen::Value(t) = a
                && *t != wanted
            {
                self.errs.set(
                        Cat::Function,
                        format!("Incorrect operand type for operator or function; operator or function: {name}, operand type: {t}"),
                    );
                return;
            }
        }
    }
}

/// What the parse-time checks know of an operand.
enum Seen {
    Path,
    Value(&'static str),
    Call,
}
