//! Recursive-descent parser: tokens to [`SynStatement`]. Only syntax is checked here; what
//! the statement means (keys, types, functions) is checked when it is bound to values.
//!
//! Precedence, loosest first, as PartiQL defines it: OR, AND, NOT, comparisons (`=`, `<>`,
//! `<`, `<=`, `>`, `>=`, BETWEEN, IN, IS), `+`/`-`, unary minus, terms.

use crate::error::{INCOMPLETE_KEY, PartiqlError};
use crate::keywords::is_keyword;
use crate::lexer::{Tok, Token, lex};
use crate::syntax::{
    Assignment, BinOp, Expr, Pos, ReturningSyn, Source, Step, SynPath, SynStatement,
};

/// Deeper nesting than this is refused rather than risking the stack on hostile input.
const MAX_DEPTH: usize = 200;

/// Function names that are also reserved words and still call (`size(a)`, `EXISTS(...)`).
const FUNCTION_KEYWORDS: &[&str] = &[
    "exists",
    "count",
    "avg",
    "max",
    "min",
    "sum",
    "substring",
    "char_length",
    "character_length",
    "octet_length",
    "bit_length",
    "upper",
    "lower",
    "size",
    "nullif",
    "coalesce",
    "sexp",
    "list",
    "bag",
];

/// A parsed statement and how many `?` it holds.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub stmt: SynStatement,
    pub params: usize,
}

pub(crate) fn parse(src: &str) -> Result<Parsed, PartiqlError> {
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        i: 0,
        params: 0,
        depth: 0,
    };
    let stmt = p.statement()?;
    p.finish()?;
    Ok(Parsed {
        stmt,
        params: p.params,
    })
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
    params: usize,
    depth: usize,
}

fn pos_of(t: &Token) -> Pos {
    Pos {
        line: t.line,
        col: t.col,
        len: t.len,
    }
}

fn unexpected_term() -> PartiqlError {
    PartiqlError::malformed("Unexpected term")
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.toks[self.i]
    }

    fn peek_at(&self, k: usize) -> &Token {
        &self.toks[(self.i + k).min(self.toks.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let t = self.toks[self.i].clone();
        if !matches!(t.tok, Tok::Eof) {
            self.i += 1;
        }
        t
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.peek().is_kw(kw) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        if self.peek().is_punct(p) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// `name` is PartiQL's token-type name, which DynamoDB's message carries.
    fn expect_punct(&mut self, p: &str, name: &str) -> Result<Token, PartiqlError> {
        if self.peek().is_punct(p) {
            Ok(self.bump())
        } else {
            Err(PartiqlError::malformed(&format!("Expected {name}")))
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), PartiqlError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(PartiqlError::malformed(&format!("Expected {kw}")))
        }
    }

    /// After the statement: an optional `;`, then nothing.
    fn finish(&mut self) -> Result<(), PartiqlError> {
        self.eat_punct(";");
        if matches!(self.peek().tok, Tok::Eof) {
            Ok(())
        } else {
            Err(PartiqlError::malformed("Unexpected token after expression"))
        }
    }

    fn statement(&mut self) -> Result<SynStatement, PartiqlError> {
        match self.peek().keyword().as_deref() {
            Some("SELECT") => self.select(),
            Some("INSERT") => self.insert(),
            Some("UPDATE") => self.update(),
            Some("DELETE") => self.delete(),
            Some("FROM") => self.from_first_update(),
            Some("EXISTS") => self.exists(),
            _ => Err(PartiqlError::malformed("Expected data manipulation")),
        }
    }

    fn select(&mut self) -> Result<SynStatement, PartiqlError> {
        self.bump();
        if self.peek().is_kw("VALUE") || self.peek().is_kw("PIVOT") {
            return Err(PartiqlError::msg(
                "Select projection doesn't support value or pivot keywords",
            ));
        }
        let mut items: Vec<Option<Expr>> = Vec::new();
        loop {
            if self.eat_punct("*") {
                items.push(None);
            } else {
                items.push(Some(self.expr()?));
            }
            if !self.eat_punct(",") {
                break;
            }
        }
        let projection = if items.len() == 1 && items[0].is_none() {
            None
        } else if items.iter().any(Option::is_none) {
            return Err(PartiqlError::msg(
                "Other attributes should not be present in the projection when '*' is used.",
            ));
        } else {
            Some(items.into_iter().flatten().collect())
        };
        self.expect_kw("FROM")?;
        let source = self.source(true)?;
        let where_ = if self.eat_kw("WHERE") {
            Some(self.expr()?)
        } else {
            None
        };
        let mut order_by = Vec::new();
        if self.eat_kw("ORDER") {
            self.expect_kw("BY")?;
            loop {
                let key = self.path_required()?;
                let desc = if self.eat_kw("DESC") {
                    true
                } else {
                    self.eat_kw("ASC");
                    false
                };
                order_by.push((key, desc));
                if !self.eat_punct(",") {
                    break;
                }
            }
        }
        Ok(SynStatement::Select {
            projection,
            source,
            where_,
            order_by,
        })
    }

    fn insert(&mut self) -> Result<SynStatement, PartiqlError> {
        self.bump();
        self.expect_kw("INTO")?;
        let source = self.source(false)?;
        if self.peek().is_kw("VALUES") {
            return Err(PartiqlError::unsupported(
                "Inserting multiple items in a single statement is not supported, use \"INSERT INTO tableName VALUE item\" instead",
            ));
        }
        if !self.eat_kw("VALUE") {
            return Err(PartiqlError::malformed("Unexpected token after expression"));
        }
        let item = self.expr()?;
        if self.peek().is_kw("RETURNING") {
            return Err(PartiqlError::msg("RETURNING is not supported in INSERT"));
        }
        Ok(SynStatement::Insert { source, item })
    }

    fn update(&mut self) -> Result<SynStatement, PartiqlError> {
        self.bump();
        let source = self.source(true)?;
        let assignments = self.assignments()?;
        let where_ = if self.eat_kw("WHERE") {
            Some(self.expr()?)
        } else {
            None
        };
        let returning = self.returning()?;
        Ok(SynStatement::Update {
            source,
            assignments,
            where_,
            returning,
        })
    }

    /// PartiQL's FROM-first UPDATE: `FROM "t" WHERE <key> SET ... [RETURNING ...]`.
    fn from_first_update(&mut self) -> Result<SynStatement, PartiqlError> {
        self.bump();
        let source = self.source(true)?;
        if !self.eat_kw("WHERE") {
            return Err(PartiqlError::msg(INCOMPLETE_KEY));
        }
        let where_ = Some(self.expr()?);
        let assignments = self.assignments()?;
        let returning = self.returning()?;
        Ok(SynStatement::Update {
            source,
            assignments,
            where_,
            returning,
        })
    }

    fn delete(&mut self) -> Result<SynStatement, PartiqlError> {
        self.bump();
        self.expect_kw("FROM")?;
        let source = self.source(true)?;
        let where_ = if self.eat_kw("WHERE") {
            Some(self.expr()?)
        } else {
            None
        };
        let returning = self.returning()?;
        Ok(SynStatement::Delete {
            source,
            where_,
            returning,
        })
    }

    fn exists(&mut self) -> Result<SynStatement, PartiqlError> {
        self.bump();
        self.expect_punct("(", "LEFT_PAREN")?;
        if !self.peek().is_kw("SELECT") {
            return Err(unexpected_term());
        }
        let inner = self.select()?;
        self.expect_punct(")", "RIGHT_PAREN")?;
        Ok(SynStatement::Exists(Box::new(inner)))
    }

    /// `SET a = v, b = w` and `REMOVE a, b`, as many clauses as written, at least one.
    fn assignments(&mut self) -> Result<Vec<Assignment>, PartiqlError> {
        let mut out = Vec::new();
        loop {
            if self.eat_kw("SET") {
                loop {
                    let path = self.path_required()?;
                    self.expect_punct("=", "EQ")?;
                    let value = self.expr()?;
                    out.push(Assignment::Set(path, value));
                    if !self.eat_punct(",") {
                        break;
                    }
                }
            } else if self.eat_kw("REMOVE") {
                loop {
                    out.push(Assignment::Remove(self.path_required()?));
                    if !self.eat_punct(",") {
                        break;
                    }
                }
            } else {
                break;
            }
        }
        if out.is_empty() {
            return Err(PartiqlError::malformed("Expected SET or REMOVE"));
        }
        Ok(out)
    }

    fn returning(&mut self) -> Result<Option<ReturningSyn>, PartiqlError> {
        if !self.eat_kw("RETURNING") {
            return Ok(None);
        }
        let all = if self.eat_kw("ALL") {
            true
        } else if self.eat_kw("MODIFIED") {
            false
        } else {
            return Err(unexpected_term());
        };
        let new = if self.eat_kw("NEW") {
            true
        } else if self.eat_kw("OLD") {
            false
        } else {
            return Err(unexpected_term());
        };
        if !self.eat_punct("*") {
            return Err(PartiqlError::msg(
                "Expected '*' after ( MODIFIED | ALL ) ( NEW | OLD ) in RETURNING clause",
            ));
        }
        if self.peek().is_punct(",") {
            return Err(PartiqlError::msg(
                "Invalid syntax with multiple returning elements in RETURNING clause",
            ));
        }
        Ok(Some(ReturningSyn { all, new }))
    }

    /// `table`, `"table"` or `"table"."index"`; an alias after it is refused where DynamoDB
    /// refuses one (`aliasable`), and read as a leftover token elsewhere.
    fn source(&mut self, aliasable: bool) -> Result<Source, PartiqlError> {
        let t = self.bump();
        let pos = pos_of(&t);
        let table = match t.tok {
            Tok::Quoted(s) | Tok::Str(s) => s,
            Tok::Word(w) if !is_keyword(&w) => w,
            _ => return Err(unexpected_term()),
        };
        let mut index = None;
        if self.eat_punct(".") {
            let t = self.bump();
            index = Some(match t.tok {
                Tok::Quoted(s) => s,
                Tok::Word(w) if !is_keyword(&w) => w,
                _ => return Err(PartiqlError::malformed("Invalid path dot component")),
            });
            if self.peek().is_punct(".") || self.peek().is_punct("[") {
                return Err(PartiqlError::msg(
                    "A path may contain at most 2 components in the FROM clause",
                ));
            }
        }
        if aliasable {
            let alias = match &self.peek().tok {
                Tok::Word(w) => w.eq_ignore_ascii_case("AS") || !is_keyword(w),
                Tok::Quoted(_) => true,
                _ => false,
            };
            if alias {
                return Err(PartiqlError::msg("Aliasing is not supported"));
            }
        }
        Ok(Source { table, index, pos })
    }

    /// A document path where only a path may stand (SET and REMOVE targets, ORDER BY keys).
    fn path_required(&mut self) -> Result<SynPath, PartiqlError> {
        let t = self.peek().clone();
        let root = match &t.tok {
            Tok::Quoted(s) => s.clone(),
            Tok::Word(w) if !is_keyword(w) => w.clone(),
            _ => return Err(unexpected_term()),
        };
        self.bump();
        self.path_steps(root, pos_of(&t))
    }

    fn path_steps(&mut self, root: String, pos: Pos) -> Result<SynPath, PartiqlError> {
        let mut steps = Vec::new();
        loop {
            if self.eat_punct(".") {
                let t = self.bump();
                match t.tok {
                    Tok::Quoted(s) => steps.push(Step::Attr(s)),
                    Tok::Word(w) if !is_keyword(&w) => steps.push(Step::Attr(w)),
                    Tok::Punct("*") => {
                        return Err(PartiqlError::msg(
                            "Unpivot path component like a.*.b are not supported",
                        ));
                    }
                    _ => return Err(PartiqlError::malformed("Invalid path dot component")),
                }
            } else if self.eat_punct("[") {
                let t = self.bump();
                match t.tok {
                    Tok::Str(s) => steps.push(Step::Attr(s)),
                    Tok::Num(ref n) => steps.push(Step::Index(list_index(n, &t, false)?)),
                    Tok::Punct("-") => {
                        let n = self.bump();
                        let Tok::Num(text) = &n.tok else {
                            return Err(unexpected_term());
                        };
                        steps.push(Step::Index(list_index(text, &n, true)?));
                    }
                    Tok::Punct("*") => {
                        return Err(PartiqlError::msg(
                            "Wildcard path component like a[*].b are not supported",
                        ));
                    }
                    _ => return Err(unexpected_term()),
                }
                self.expect_punct("]", "RIGHT_BRACKET")?;
            } else {
                return Ok(SynPath { root, steps, pos });
            }
        }
    }

    fn enter(&mut self) -> Result<(), PartiqlError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(PartiqlError::malformed(""));
        }
        Ok(())
    }

    pub(crate) fn expr(&mut self) -> Result<Expr, PartiqlError> {
        self.enter()?;
        let e = self.or();
        self.depth -= 1;
        e
    }

    fn or(&mut self) -> Result<Expr, PartiqlError> {
        let mut left = self.and()?;
        while self.peek().is_kw("OR") {
            let pos = pos_of(&self.bump());
            let right = self.and()?;
            left = Expr::Binary(BinOp::Or, Box::new(left), Box::new(right), pos);
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, PartiqlError> {
        let mut left = self.not()?;
        while self.peek().is_kw("AND") {
            let pos = pos_of(&self.bump());
            let right = self.not()?;
            left = Expr::Binary(BinOp::And, Box::new(left), Box::new(right), pos);
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, PartiqlError> {
        if self.peek().is_kw("NOT") {
            let pos = pos_of(&self.bump());
            self.enter()?;
            let inner = self.not();
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner?), pos));
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Expr, PartiqlError> {
        let left = self.additive()?;
        let t = self.peek().clone();
        let op = match &t.tok {
            Tok::Punct("=") => Some(BinOp::Eq),
            Tok::Punct("<>") | Tok::Punct("!=") => Some(BinOp::Ne),
            Tok::Punct("<") => Some(BinOp::Lt),
            Tok::Punct("<=") => Some(BinOp::Le),
            Tok::Punct(">") => Some(BinOp::Gt),
            Tok::Punct(">=") => Some(BinOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.bump();
            let right = self.additive()?;
            return Ok(Expr::Binary(
                op,
                Box::new(left),
                Box::new(right),
                pos_of(&t),
            ));
        }
        let negated =
            t.is_kw("NOT") && (self.peek_at(1).is_kw("BETWEEN") || self.peek_at(1).is_kw("IN"));
        if negated {
            self.bump();
        }
        let t = self.peek().clone();
        if self.eat_kw("BETWEEN") {
            let low = self.additive()?;
            self.expect_kw("AND")?;
            let high = self.additive()?;
            return Ok(Expr::Between {
                subject: Box::new(left),
                low: Box::new(low),
                high: Box::new(high),
                negated,
                pos: pos_of(&t),
            });
        }
        if self.eat_kw("IN") {
            let list = match self.additive()? {
                Expr::List(items, _) => items,
                // `IN (x)` with one member parses as a parenthesised term.
                other => vec![other],
            };
            return Ok(Expr::In {
                subject: Box::new(left),
                list,
                negated,
                pos: pos_of(&t),
            });
        }
        if self.eat_kw("IS") {
            let negated = self.eat_kw("NOT");
            let ty = self.bump();
            let type_name = match &ty.tok {
                Tok::Word(w) => w.to_ascii_uppercase(),
                _ => return Err(PartiqlError::malformed("Expected type name")),
            };
            return Ok(Expr::Is {
                subject: Box::new(left),
                type_name,
                negated,
                pos: pos_of(&t),
            });
        }
        Ok(left)
    }

    fn additive(&mut self) -> Result<Expr, PartiqlError> {
        let mut left = self.unary()?;
        loop {
            let t = self.peek().clone();
            let op = if t.is_punct("+") {
                BinOp::Add
            } else if t.is_punct("-") {
                BinOp::Sub
            } else {
                return Ok(left);
            };
            self.bump();
            let right = self.unary()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right), pos_of(&t));
        }
    }

    /// A leading sign folds into a number literal; DynamoDB has no other unary arithmetic.
    fn unary(&mut self) -> Result<Expr, PartiqlError> {
        let t = self.peek().clone();
        if t.is_punct("-") || t.is_punct("+") {
            self.bump();
            let n = self.bump();
            let Tok::Num(text) = n.tok else {
                return Err(unexpected_term());
            };
            let text = if t.is_punct("-") {
                format!("-{text}")
            } else {
                text
            };
            return Ok(Expr::Num(text, pos_of(&t)));
        }
        self.term()
    }

    fn term(&mut self) -> Result<Expr, PartiqlError> {
        self.enter()?;
        let e = self.term_inner();
        self.depth -= 1;
        e
    }

    fn term_inner(&mut self) -> Result<Expr, PartiqlError> {
        let t = self.bump();
        let pos = pos_of(&t);
        match t.tok {
            Tok::Str(s) => Ok(Expr::Str(s, pos)),
            Tok::Num(n) => Ok(Expr::Num(n, pos)),
            Tok::Param => {
                self.params += 1;
                Ok(Expr::Param(self.params - 1, pos))
            }
            Tok::Quoted(name) => self.path_steps(name, pos).map(Expr::Path),
            Tok::Punct("(") => {
                let first = self.expr()?;
                if self.eat_punct(",") {
                    let mut items = vec![first];
                    items.extend(self.expr_list(")", "RIGHT_PAREN")?);
                    return Ok(Expr::List(items, pos));
                }
                self.expect_punct(")", "RIGHT_PAREN")?;
                Ok(first)
            }
            Tok::Punct("[") => {
                let items = self.expr_list("]", "RIGHT_BRACKET")?;
                Ok(Expr::List(items, pos))
            }
            Tok::Punct("<<") => {
                let items = self.expr_list(">>", "RIGHT_DOUBLE_ANGLE_BRACKET")?;
                Ok(Expr::Bag(items, pos))
            }
            Tok::Punct("{") => self.map(pos),
            Tok::Word(w) => {
                if self.peek().is_punct("(")
                    && (!is_keyword(&w)
                        || FUNCTION_KEYWORDS.contains(&w.to_ascii_lowercase().as_str()))
                {
                    self.bump();
                    let args = self.expr_list(")", "RIGHT_PAREN")?;
                    return Ok(Expr::Call(w, args, pos));
                }
                match w.to_ascii_uppercase().as_str() {
                    "TRUE" => Ok(Expr::Bool(true, pos)),
                    "FALSE" => Ok(Expr::Bool(false, pos)),
                    "NULL" => Ok(Expr::Null(pos)),
                    "MISSING" => Ok(Expr::Missing(pos)),
                    _ if is_keyword(&w) => Err(unexpected_term()),
                    _ => self.path_steps(w, pos).map(Expr::Path),
                }
            }
            _ => Err(unexpected_term()),
        }
    }

    /// Comma-separated expressions up to the closing `close` (which may come at once).
    fn expr_list(&mut self, close: &str, name: &str) -> Result<Vec<Expr>, PartiqlError> {
        let mut items = Vec::new();
        if self.eat_punct(close) {
            return Ok(items);
        }
        loop {
            items.push(self.expr()?);
            if !self.eat_punct(",") {
                break;
            }
        }
        self.expect_punct(close, name)?;
        Ok(items)
    }

    fn map(&mut self, pos: Pos) -> Result<Expr, PartiqlError> {
        let mut entries = Vec::new();
        if self.eat_punct("}") {
            return Ok(Expr::Map(entries, pos));
        }
        loop {
            let key = self.expr()?;
            self.expect_punct(":", "COLON")?;
            let value = self.expr()?;
            entries.push((key, value));
            if !self.eat_punct(",") {
                break;
            }
        }
        self.expect_punct("}", "RIGHT_CURLY")?;
        Ok(Expr::Map(entries, pos))
    }
}

/// A list index as written; DynamoDB takes `-0` as 0 and refuses any other negative index,
/// pointing at the digits.
fn list_index(text: &str, at: &Token, negative: bool) -> Result<u64, PartiqlError> {
    let out_of_range = || {
        let shown = if negative {
            format!("-{text}")
        } else {
            text.to_string()
        };
        PartiqlError(format!(
            "List index is not within the allowable range; index: [{shown}] at {}",
            at.at()
        ))
    };
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(unexpected_term());
    }
    let value: u64 = text.parse().map_err(|_| out_of_range())?;
    if negative && value != 0 {
        return Err(out_of_range());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> String {
        parse(src).unwrap_err().0
    }

    #[test]
    fn select_with_index_projection_where_and_order() {
        let p = parse(
            "SELECT a, b.c[1] FROM \"T\".\"idx\" WHERE a = ? AND b IN [1, ?] ORDER BY a DESC",
        )
        .unwrap();
        assert_eq!(p.params, 2);
        let SynStatement::Select {
            projection,
            source,
            where_,
            order_by,
        } = p.stmt
        else {
            panic!("not a select")
        };
        assert_eq!(projection.unwrap().len(), 2);
        assert_eq!(source.table, "T");
        assert_eq!(source.index.as_deref(), Some("idx"));
        assert!(where_.is_some());
        assert_eq!(order_by.len(), 1);
        assert!(order_by[0].1);
    }

    #[test]
    fn not_binds_looser_than_a_comparison() {
        let p = parse("SELECT * FROM t WHERE NOT a = 1").unwrap();
        let SynStatement::Select {
            where_: Some(Expr::Not(inner, _)),
            ..
        } = p.stmt
        else {
            panic!("expected NOT at the top")
        };
        assert!(matches!(*inner, Expr::Binary(BinOp::Eq, ..)));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let p = parse("SELECT * FROM t WHERE a = 1 OR b = 2 AND c = 3").unwrap();
        let SynStatement::Select {
            where_: Some(Expr::Binary(BinOp::Or, _, right, _)),
            ..
        } = p.stmt
        else {
            panic!("expected OR at the top")
        };
        assert!(matches!(*right, Expr::Binary(BinOp::And, ..)));
    }

    #[test]
    fn leftovers_and_unknown_statements() {
        let leftover =
            "Statement wasn't well formed, can't be processed: Unexpected token after expression";
        assert_eq!(err("SELECT * FROM t WHERE pk = 1 foo"), leftover);
        assert_eq!(err("SELECT * FROM t WHERE pk = 1)"), leftover);
        assert_eq!(err("DELETE FROM t WHERE pk = 1 ORDER BY pk"), leftover);
        assert_eq!(err("SELECT * FROM t ORDER BY pk WHERE pk = 1"), leftover);
        assert_eq!(err("INSERT INTO \"t\" x VALUE {'pk': 1}"), leftover);
        assert_eq!(
            err("SLECT * FROM t"),
            "Statement wasn't well formed, can't be processed: Expected data manipulation"
        );
        assert_eq!(
            err("SELECT * FROM t WHERE"),
            "Statement wasn't well formed, can't be processed: Unexpected term"
        );
    }

    #[test]
    fn aliases_are_refused() {
        for src in [
            "SELECT * FROM \"t\" x WHERE pk = 'x'",
            "SELECT * FROM \"t\" AS x WHERE pk = 'x'",
            "UPDATE \"t\" x SET a = 3 WHERE pk = 'x'",
            "DELETE FROM \"t\" x WHERE pk = 'x'",
        ] {
            assert_eq!(err(src), "Aliasing is not supported", "{src}");
        }
    }

    #[test]
    fn a_reserved_word_after_a_dot_is_an_invalid_path_component() {
        assert_eq!(
            err("SELECT * FROM t WHERE attribute_exists(m.inner)"),
            "Statement wasn't well formed, can't be processed: Invalid path dot component"
        );
        assert!(parse("SELECT * FROM t WHERE attribute_exists(m.\"inner\")").is_ok());
    }

    #[test]
    fn negative_list_index_points_at_the_digits() {
        assert_eq!(
            err("SELECT l[-1] FROM \"t\" WHERE pk='i'"),
            "List index is not within the allowable range; index: [-1] at 1:11:1"
        );
        assert!(parse("SELECT l[-0] FROM \"t\" WHERE pk='i'").is_ok());
    }

    #[test]
    fn from_first_update_and_comma_separated_assignments() {
        let p =
            parse("FROM \"t\" WHERE pk = ? SET c = ?, d = 1 REMOVE e RETURNING ALL NEW *").unwrap();
        assert_eq!(p.params, 2);
        let SynStatement::Update {
            assignments,
            returning,
            ..
        } = p.stmt
        else {
            panic!("not an update")
        };
        assert_eq!(assignments.len(), 3);
        assert_eq!(
            returning,
            Some(ReturningSyn {
                all: true,
                new: true
            })
        );
    }

    #[test]
    fn returning_shapes() {
        assert_eq!(
            err("UPDATE t SET a = 1 WHERE pk = 1 RETURNING ALL NEW a"),
            "Expected '*' after ( MODIFIED | ALL ) ( NEW | OLD ) in RETURNING clause"
        );
        assert_eq!(
            err("INSERT INTO t VALUE {'a': 1} RETURNING ALL OLD *"),
            "RETURNING is not supported in INSERT"
        );
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let src = format!(
            "SELECT * FROM t WHERE {}a = 1{}",
            "(".repeat(5000),
            ")".repeat(5000)
        );
        assert!(parse(&src).is_err());
        let nots = format!("SELECT * FROM t WHERE {} a = 1", "NOT ".repeat(5000));
        assert!(parse(&nots).is_err());
    }

    #[test]
    fn a_trailing_semicolon_and_comment_are_fine() {
        assert!(parse("SELECT a FROM \"t\" WHERE a = 'x--y'; -- done").is_ok());
    }
}
