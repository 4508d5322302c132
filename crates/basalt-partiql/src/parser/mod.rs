//! Recursive-descent parser: tokens to [`SynStatement`]. Only syntax is checked here; what
//! the statement means (keys, types, functions) is checked when it is bound to values.
//!
//! Precedence, loosest first, as PartiQL defines it: OR, AND, NOT, comparisons (`=`, `<>`,
//! `<`, `<=`, `>`, `>=`, BETWEEN, IN, IS), `+`/`-`, unary minus, terms.

mod expr;

use crate::error::{INCOMPLETE_KEY, PartiqlError};
use crate::keywords::is_keyword;
use crate::lexer::{Tok, Token, lex};
use crate::syntax::{Assignment, Expr, Pos, ReturningSyn, Source, Step, SynPath, SynStatement};

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
            Some("FROM") => self.update_from_first(),
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
    fn update_from_first(&mut self) -> Result<SynStatement, PartiqlError> {
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
mod tests;
