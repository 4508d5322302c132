//! The expression grammar, loosest binding first:
//! `or`, `and`, prefix `not`, one comparison (`= != < <= > >=`, `like`, `=~`, `not like`,
//! `in [...]`, `not in [...]`), `+ -`, `* / %`, `^` (right-associative), unary `-`, and then
//! literals, fields, calls and parentheses.

use crate::ast::{Agg, AggFunc, BinOp, Expr, Func, Pattern};
use crate::error::QueryError;
use crate::lexer::{Tok, Token};
use crate::parser::Parser;
use crate::time::Period;

/// `and` and `or` are associative, so a long chain of them is built as a balanced tree, which
/// keeps evaluation shallow however many terms a filter lists.
fn balanced(op: BinOp, mut terms: Vec<Expr>) -> Expr {
    if terms.len() <= 1 {
        return terms.pop().unwrap_or(Expr::Num(1.0));
    }
    let right = terms.split_off(terms.len() / 2);
    Expr::Binary(
        op,
        Box::new(balanced(op, terms)),
        Box::new(balanced(op, right)),
    )
}

impl Parser<'_> {
    pub(crate) fn expr(&mut self) -> Result<Expr, QueryError> {
        self.enter()?;
        let e = self.or_expr()?;
        self.leave();
        Ok(e)
    }

    fn or_expr(&mut self) -> Result<Expr, QueryError> {
        let mut terms = vec![self.and_expr()?];
        while self.eat_word("or")? {
            terms.push(self.and_expr()?);
        }
        Ok(balanced(BinOp::Or, terms))
    }

    fn and_expr(&mut self) -> Result<Expr, QueryError> {
        let mut terms = vec![self.not_expr()?];
        while self.eat_word("and")? {
            terms.push(self.not_expr()?);
        }
        Ok(balanced(BinOp::And, terms))
    }

    fn not_expr(&mut self) -> Result<Expr, QueryError> {
        if self.eat_word("not")? {
            self.enter()?;
            let inner = self.not_expr()?;
            self.leave();
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, QueryError> {
        let left = self.additive()?;
        let op = match self.peek()?.tok {
            Tok::Eq => Some(BinOp::Eq),
            Tok::Ne => Some(BinOp::Ne),
            Tok::Lt => Some(BinOp::Lt),
            Tok::Le => Some(BinOp::Le),
            Tok::Gt => Some(BinOp::Gt),
            Tok::Ge => Some(BinOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.bump()?;
            let right = self.additive()?;
            return Ok(Expr::Binary(op, Box::new(left), Box::new(right)));
        }
        let negated = self.peek()?.is_word("not")
            && (self.peek2()?.is_word("like") || self.peek2()?.is_word("in"));
        if negated {
            self.bump()?;
        }
        let t = self.peek()?.clone();
        if t.tok == Tok::Tilde && !negated || t.is_word("like") {
            self.bump()?;
            let pattern = self.pattern()?;
            return Ok(Expr::Like {
                expr: Box::new(left),
                pattern,
                negated,
            });
        }
        if t.is_word("in") {
            self.bump()?;
            let list = self.list()?;
            return Ok(Expr::In {
                expr: Box::new(left),
                list,
                negated,
            });
        }
        Ok(left)
    }

    /// What `like` matches against: `/regex/` searches, a quoted string is a substring.
    fn pattern(&mut self) -> Result<Pattern, QueryError> {
        if let Tok::Str(s) = &self.peek()?.tok {
            let s = s.clone();
            self.bump()?;
            return Ok(Pattern::Substring(s));
        }
        Ok(Pattern::Regex(self.regex()?.0))
    }

    fn list(&mut self) -> Result<Vec<Expr>, QueryError> {
        self.expect(&Tok::LBracket)?;
        let mut list = Vec::new();
        if self.peek()?.tok == Tok::RBracket {
            self.bump()?;
            return Ok(list);
        }
        loop {
            list.push(self.additive()?);
            let t = self.bump()?;
            match t.tok {
                Tok::Comma => {}
                Tok::RBracket => return Ok(list),
                _ => return Err(self.unexpected(&t)),
            }
        }
    }

    /// A left-associative chain. Each link deepens the tree evaluation walks, so links count
    /// against the nesting limit like parentheses do.
    fn chain(
        &mut self,
        operand: fn(&mut Self) -> Result<Expr, QueryError>,
        operator: fn(&Tok) -> Option<BinOp>,
    ) -> Result<Expr, QueryError> {
        let mut left = operand(self)?;
        let mut links = 0;
        while let Some(op) = operator(&self.peek()?.tok) {
            self.bump()?;
            self.enter()?;
            links += 1;
            let right = operand(self)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        for _ in 0..links {
            self.leave();
        }
        Ok(left)
    }

    fn additive(&mut self) -> Result<Expr, QueryError> {
        self.chain(Self::multiplicative, |t| match t {
            Tok::Plus => Some(BinOp::Add),
            Tok::Minus => Some(BinOp::Sub),
            _ => None,
        })
    }

    fn multiplicative(&mut self) -> Result<Expr, QueryError> {
        self.chain(Self::power, |t| match t {
            Tok::Star => Some(BinOp::Mul),
            Tok::Slash => Some(BinOp::Div),
            Tok::Percent => Some(BinOp::Rem),
            _ => None,
        })
    }

    fn power(&mut self) -> Result<Expr, QueryError> {
        let base = self.unary()?;
        if self.peek()?.tok != Tok::Caret {
            return Ok(base);
        }
        self.bump()?;
        self.enter()?;
        let exponent = self.power()?;
        self.leave();
        Ok(Expr::Binary(BinOp::Pow, Box::new(base), Box::new(exponent)))
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        if self.peek()?.tok == Tok::Minus {
            self.bump()?;
            self.enter()?;
            let inner = self.unary()?;
            self.leave();
            return Ok(match inner {
                Expr::Num(n) => Expr::Num(-n),
                other => Expr::Neg(Box::new(other)),
            });
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, QueryError> {
        let t = self.bump()?;
        match t.tok {
            Tok::Num(n) => Ok(Expr::Num(n)),
            Tok::Str(ref s) => Ok(Expr::Str(s.clone())),
            Tok::Quoted(ref q) => Ok(Expr::Field(q.clone())),
            Tok::LParen => {
                let e = self.expr()?;
                self.expect(&Tok::RParen)?;
                Ok(e)
            }
            Tok::Word(ref w) if self.peek()?.tok == Tok::LParen => {
                let lower = w.to_ascii_lowercase();
                self.bump()?;
                if let Some(func) = AggFunc::by_name(&lower) {
                    return self.aggregate(func, &t);
                }
                self.call(&lower, &t)
            }
            Tok::Word(ref w) if Self::is_field_word(w) => Ok(Expr::Field(w.clone())),
            _ => Err(self.unexpected(&t)),
        }
    }

    /// A function call; the name and `(` are taken.
    fn call(&mut self, lower: &str, name: &Token) -> Result<Expr, QueryError> {
        let word = self.src.get(name.start..name.end).unwrap_or(lower);
        let Some((func, min, max)) = Func::by_name(lower) else {
            return Err(QueryError::at(
                format!("Unknown function: {word}"),
                self.src,
                name.start,
                name.end,
            ));
        };
        let mut args = Vec::new();
        if self.peek()?.tok != Tok::RParen {
            loop {
                if func.period_arg() == Some(args.len()) {
                    args.push(self.period()?);
                } else {
                    args.push(self.expr()?);
                }
                if self.peek()?.tok != Tok::Comma {
                    break;
                }
                self.bump()?;
            }
        }
        self.expect(&Tok::RParen)?;
        if args.len() < min || args.len() > max {
            return Err(QueryError::at(
                format!("Invalid number of arguments for function {word}"),
                self.src,
                name.start,
                self.prev_end,
            ));
        }
        Ok(Expr::Call(func, args))
    }

    fn period(&mut self) -> Result<Expr, QueryError> {
        let t = self.bump()?;
        if let Tok::Period(n, unit) = &t.tok
            && let Some(p) = Period::parse(*n, unit)
        {
            return Ok(Expr::Period(p));
        }
        Err(self.unexpected(&t))
    }

    /// An aggregate function call; the name and `(` are taken. Only `stats` may hold them,
    /// and not inside one another.
    fn aggregate(&mut self, func: AggFunc, name: &Token) -> Result<Expr, QueryError> {
        let word = self.src.get(name.start..name.end).unwrap_or_default();
        let Some(mut outer) = self.aggs.take() else {
            let why = if self.in_stats {
                "is not allowed here"
            } else {
                "can only be used in stats"
            };
            return Err(QueryError::at(
                format!("Aggregate function {word} {why}"),
                self.src,
                name.start,
                name.end,
            ));
        };
        let star = func == AggFunc::Count && matches!(self.peek()?.tok, Tok::Star | Tok::RParen);
        let arg = if star {
            if self.peek()?.tok == Tok::Star {
                self.bump()?;
            }
            None
        } else {
            Some(self.expr()?)
        };
        let mut percent = 0.0;
        if func == AggFunc::Pct {
            self.expect(&Tok::Comma)?;
            let t = self.bump()?;
            match t.tok {
                Tok::Num(p) if (0.0..=100.0).contains(&p) => percent = p,
                _ => return Err(self.unexpected(&t)),
            }
        }
        self.expect(&Tok::RParen)?;
        outer.push(Agg { func, arg, percent });
        let index = outer.len() - 1;
        self.aggs = Some(outer);
        Ok(Expr::Agg(index))
    }
}

#[cfg(test)]
mod tests {
    use crate::ast::{BinOp, Command, Expr, Pattern};

    fn filter(src: &str) -> Expr {
        match crate::parser::parse(&format!("filter {src}")) {
            Ok(mut c) => match c.remove(0) {
                Command::Filter(e) => e,
                other => panic!("{other:?}"),
            },
            Err(e) => panic!("{src:?}: {e}"),
        }
    }

    fn err(src: &str) -> String {
        match crate::parser::parse(src) {
            Ok(c) => panic!("{src:?} parsed: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn precedence() {
        // `(f1=10 or f3>25)` from the query syntax page.
        let e = filter("f1 = 10 or f3 > 25 and not f4 < 2 * 3 + 1");
        let Expr::Binary(BinOp::Or, _, right) = e else {
            panic!("{e:?}")
        };
        let Expr::Binary(BinOp::And, _, not) = *right else {
            panic!()
        };
        let Expr::Not(cmp) = *not else { panic!() };
        let Expr::Binary(BinOp::Lt, _, sum) = *cmp else {
            panic!()
        };
        assert!(matches!(*sum, Expr::Binary(BinOp::Add, _, _)));
        let e = filter("2 ^ 3 ^ 2 = -x");
        let Expr::Binary(BinOp::Eq, pow, neg) = e else {
            panic!()
        };
        assert!(
            matches!(*pow, Expr::Binary(BinOp::Pow, _, ref r) if matches!(**r, Expr::Binary(BinOp::Pow, _, _)))
        );
        assert!(matches!(*neg, Expr::Neg(_)));
    }

    #[test]
    fn like_forms() {
        // The four forms on the filter page: like /re/, =~ /re/, like "substring", not like.
        for src in [
            "f1 like /Exception/",
            "f1 =~ /Exception/",
            "f1 like \"Exception\"",
            "f1 like 'Exception'",
            "f1 not like /(?i)Exception/",
        ] {
            assert!(matches!(filter(src), Expr::Like { .. }), "{src}");
        }
        let Expr::Like {
            pattern, negated, ..
        } = filter("f1 not like /a\\/b/")
        else {
            panic!()
        };
        assert!(negated);
        let Pattern::Regex(r) = pattern else { panic!() };
        assert!(r.is_match("xa/by"));
        let Expr::In { list, negated, .. } = filter("statusCode not in [300, 400, \"500\"]") else {
            panic!()
        };
        assert!(negated);
        assert_eq!(list.len(), 3);
    }

    #[test]
    fn division_is_not_a_regex() {
        let e = filter("a / 2 / b > 1");
        assert!(matches!(e, Expr::Binary(BinOp::Gt, _, _)));
    }

    #[test]
    fn function_errors() {
        assert_eq!(err("fields nosuch(a)"), "Unknown function: nosuch");
        assert_eq!(
            err("fields substr(a)"),
            "Invalid number of arguments for function substr"
        );
        assert_eq!(
            err("fields count(*)"),
            "Aggregate function count can only be used in stats"
        );
        assert_eq!(
            err("filter sum(x) > 1"),
            "Aggregate function sum can only be used in stats"
        );
        assert_eq!(
            err("stats sum(count(*))"),
            "Aggregate function count is not allowed here"
        );
        assert_eq!(
            err("stats count(*) by bin(5x)"),
            "unexpected symbol found 5x at line 1 and position 22"
        );
        assert_eq!(
            err("fields bin(x)"),
            "unexpected symbol found x at line 1 and position 11"
        );
        assert_eq!(
            err("stats pct(x, 101)"),
            "unexpected symbol found 101 at line 1 and position 13"
        );
        assert!(err("filter a like /(/").starts_with("Invalid regular expression"));
        assert_eq!(
            err("filter a like 5"),
            "unexpected symbol found 5 at line 1 and position 14"
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("filter {}x{}", "(".repeat(10_000), ")".repeat(10_000));
        assert_eq!(err(&deep), "Query is too deeply nested");
        let negs = format!("fields {}x", "-".repeat(10_000));
        assert_eq!(err(&negs), "Query is too deeply nested");
        let nots = format!("filter {}x", "not ".repeat(10_000));
        assert_eq!(err(&nots), "Query is too deeply nested");
        let pows = format!("fields x{}", "^x".repeat(10_000));
        assert_eq!(err(&pows), "Query is too deeply nested");
        assert!(
            crate::parser::parse(&format!("filter {}x{}", "(".repeat(20), ")".repeat(20))).is_ok()
        );
        let sums = format!("fields x{}", " + x".repeat(10_000));
        assert_eq!(err(&sums), "Query is too deeply nested");
        assert!(crate::parser::parse(&format!("fields x{}", " - x".repeat(40))).is_ok());
        // Long and/or lists are fine: they are balanced, not nested.
        let ors = format!("filter x = 0{}", " or x = 1".repeat(5_000));
        assert!(crate::parser::parse(&ors).is_ok());
    }
}
