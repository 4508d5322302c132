//! `&&` / `||` / parentheses over conditions, shared by JSON patterns and the per-field
//! conditions of space-delimited patterns. The syntax page fixes the precedence:
//! "() > && > ||".

use crate::PatternError;
use crate::lex::Token;

/// Parentheses deeper than this are refused: no real pattern needs them (the API caps patterns
/// at 1024 characters anyway) and recursion must not be able to exhaust the stack.
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone)]
pub(crate) enum Expr<L> {
    Leaf(L),
    All(Vec<Expr<L>>),
    Any(Vec<Expr<L>>),
}

impl<L> Expr<L> {
    pub(crate) fn eval<F: FnMut(&L) -> bool>(&self, f: &mut F) -> bool {
        match self {
            Expr::Leaf(l) => f(l),
            Expr::All(v) => v.iter().all(|e| e.eval(f)),
            Expr::Any(v) => v.iter().any(|e| e.eval(f)),
        }
    }

    pub(crate) fn leaves(&self) -> Vec<&L> {
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(e) = stack.pop() {
            match e {
                Expr::Leaf(l) => out.push(l),
                Expr::All(v) | Expr::Any(v) => stack.extend(v),
            }
        }
        out
    }
}

/// A read position in a token list, handed to leaf parsers.
pub(crate) struct Cursor<'t> {
    toks: &'t [Token],
    pos: usize,
}

impl<'t> Cursor<'t> {
    pub(crate) fn peek(&self) -> Option<&'t Token> {
        self.toks.get(self.pos)
    }

    pub(crate) fn next(&mut self) -> Option<&'t Token> {
        let t = self.toks.get(self.pos);
        if t.is_some() {
            self.pos += 1;
        }
        t
    }
}

/// Parses the whole of `toks` as one expression whose leaves `leaf` reads.
pub(crate) fn parse<L>(
    toks: &[Token],
    leaf: &mut impl FnMut(&mut Cursor<'_>) -> Result<L, PatternError>,
) -> Result<Expr<L>, PatternError> {
    let mut c = Cursor { toks, pos: 0 };
    let e = or_expr(&mut c, leaf, 0)?;
    if c.peek().is_some() {
        return Err(PatternError::invalid(
            "unexpected token after a complete condition",
        ));
    }
    Ok(e)
}

fn or_expr<L>(
    c: &mut Cursor<'_>,
    leaf: &mut impl FnMut(&mut Cursor<'_>) -> Result<L, PatternError>,
    depth: usize,
) -> Result<Expr<L>, PatternError> {
    let mut items = vec![and_expr(c, leaf, depth)?];
    while c.peek() == Some(&Token::Or) {
        c.next();
        items.push(and_expr(c, leaf, depth)?);
    }
    Ok(if items.len() == 1 {
        items.remove(0)
    } else {
        Expr::Any(items)
    })
}

fn and_expr<L>(
    c: &mut Cursor<'_>,
    leaf: &mut impl FnMut(&mut Cursor<'_>) -> Result<L, PatternError>,
    depth: usize,
) -> Result<Expr<L>, PatternError> {
    let mut items = vec![primary(c, leaf, depth)?];
    while c.peek() == Some(&Token::And) {
        c.next();
        items.push(primary(c, leaf, depth)?);
    }
    Ok(if items.len() == 1 {
        items.remove(0)
    } else {
        Expr::All(items)
    })
}

fn primary<L>(
    c: &mut Cursor<'_>,
    leaf: &mut impl FnMut(&mut Cursor<'_>) -> Result<L, PatternError>,
    depth: usize,
) -> Result<Expr<L>, PatternError> {
    match c.peek() {
        Some(Token::LParen) => {
            if depth >= MAX_DEPTH {
                return Err(PatternError::invalid("parentheses nested too deeply"));
            }
            c.next();
            let e = or_expr(c, leaf, depth + 1)?;
            match c.next() {
                Some(Token::RParen) => Ok(e),
                _ => Err(PatternError::invalid("unbalanced parentheses")),
            }
        }
        Some(_) => Ok(Expr::Leaf(leaf(c)?)),
        None => Err(PatternError::invalid("missing condition")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Leaves are single words, true when they say "t".
    fn run(src: &str) -> Result<bool, PatternError> {
        let toks = crate::lex::tokenize(src, crate::lex::Mode::Json)?;
        let e = parse(&toks, &mut |c: &mut Cursor<'_>| match c.next() {
            Some(Token::Word(w)) => Ok(w == "t"),
            _ => Err(PatternError::invalid("leaf")),
        })?;
        Ok(e.eval(&mut |b: &bool| *b))
    }

    #[test]
    fn and_binds_tighter_than_or() {
        assert!(run("t || f && f").unwrap());
        assert!(!run("(t || f) && f").unwrap());
        assert!(run("f && f || t").unwrap());
        assert!(!run("f && (f || t)").unwrap());
        assert!(run("((t))").unwrap());
    }

    #[test]
    fn malformed_expressions_are_refused() {
        for src in ["", "t &&", "|| t", "(t", "t)", "()", "t t", "(t || ) "] {
            assert!(run(src).is_err(), "{src:?}");
        }
        let deep = format!(
            "{}t{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert!(run(&deep).is_err());
        let ok = format!("{}t{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(run(&ok).unwrap());
    }

    #[test]
    fn leaves_are_listed() {
        let toks = crate::lex::tokenize("a && (b || c)", crate::lex::Mode::Json).unwrap();
        let e = parse(&toks, &mut |c: &mut Cursor<'_>| match c.next() {
            Some(Token::Word(w)) => Ok(w.clone()),
            _ => Err(PatternError::invalid("leaf")),
        })
        .unwrap();
        let mut names: Vec<&String> = e.leaves();
        names.sort();
        assert_eq!(names, ["a", "b", "c"]);
    }
}
