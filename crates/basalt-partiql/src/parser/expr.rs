//! Expressions: WHERE conditions, SET values, literals and paths.

use super::{FUNCTION_KEYWORDS, MAX_DEPTH, Parser, pos_of, unexpected_term};
use crate::error::PartiqlError;
use crate::keywords::is_keyword;
use crate::lexer::Tok;
use crate::syntax::{BinOp, Expr, Pos};

impl Parser {
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
